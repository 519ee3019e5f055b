// response.hpp: what a handler fills in; the session writes it out.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mpg::http {

// Response: one response under construction; owned by its ServerSession and reused (capacity
// and all) for the connection's next request. The session writes the status line, Server, Date,
// Content-Length (or Transfer-Encoding) and Connection itself; the handler sets the status, its
// own header fields and the body, whole (`body`) or in pieces (write_chunk).
class Response {
 public:
  int status = 200;  // 200..599; anything else is answered as 500
  std::string body;

  // set_header: replaces every field named `name` (ASCII case-insensitive) by one. Throws
  // std::invalid_argument for a name that is not a token, a value with CR, LF, NUL or another
  // control character (response splitting), or a field the session writes itself
  // (Content-Length, Transfer-Encoding, Connection, Date, Server).
  void set_header(std::string_view name, std::string_view value);
  // add_header: appends a field (e.g. a second Set-Cookie); checked as set_header.
  void add_header(std::string_view name, std::string_view value);
  // header: the first value of field `name`, or "" if absent.
  std::string_view header(std::string_view name) const;
  void set_content_type(std::string_view type) { set_header("Content-Type", type); }

  // text, json: set the status, a Content-Type and the body in one call.
  void text(std::string_view content, int code = 200);
  void json(std::string_view content, int code = 200);

  // write_chunk: appends `data` to the body as one piece of a streamed body, for a handler that
  // does not know the length up front, and makes this a chunked response: the session writes
  // Transfer-Encoding: chunked and each piece as one chunk, then the last-chunk "0\r\n\r\n"
  // (RFC 9112 §7.1). To an HTTP/1.0 client, which cannot read chunked (RFC 9112 §6.1), it
  // writes the pieces as one body without Content-Length and closes the connection after it
  // (the body ends at the close, RFC 9112 §6.3), as Go's net/http does. An empty `data` writes
  // no chunk (a zero-size chunk would end the body) but still makes the response chunked. The
  // session does no I/O: the pieces leave together when the handler returns, so a handler that
  // throws after writing some still gets a clean 500.
  void write_chunk(std::string_view data);
  // chunked: write_chunk was called; `body` holds the pieces, one after another.
  bool chunked() const { return chunked_; }
  // chunk_ends: where each piece ends in `body`, in order (for the serializer).
  const std::vector<std::size_t>& chunk_ends() const { return chunk_ends_; }

  // close_connection: answer with Connection: close and close after this response.
  void close_connection() { close_ = true; }
  bool closes_connection() const { return close_; }
  // header_block: the handler's fields as they will be written, "Name: value\r\n" each.
  std::string_view header_block() const { return fields_; }
  // clear: back to 200, no fields, no body, not chunked, keeping capacity.
  void clear();

 private:
  void append_field(std::string_view name, std::string_view value);
  void remove_field(std::string_view name);

  std::string fields_;
  std::vector<std::size_t> chunk_ends_;
  bool close_ = false;
  bool chunked_ = false;
};

}  // namespace mpg::http
