// response.hpp: what a handler fills in; the session writes it out.
#pragma once
#include <string>
#include <string_view>

namespace mpg::http {

// Response: one response under construction; owned by its ServerSession and reused (capacity
// and all) for the connection's next request. The session writes the status line, Server, Date,
// Content-Length and Connection itself; the handler sets the status, its own header fields and
// the body.
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

  // close_connection: answer with Connection: close and close after this response.
  void close_connection() { close_ = true; }
  bool closes_connection() const { return close_; }
  // header_block: the handler's fields as they will be written, "Name: value\r\n" each.
  std::string_view header_block() const { return fields_; }
  // clear: back to 200, no fields, no body, keeping capacity.
  void clear();

 private:
  void append_field(std::string_view name, std::string_view value);
  void remove_field(std::string_view name);

  std::string fields_;
  bool close_ = false;
};

}  // namespace mpg::http
