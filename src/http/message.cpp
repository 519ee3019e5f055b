// message.cpp: Request's lookups and Response's field block (see request.hpp, response.hpp).
#include <stdexcept>
#include <string>

#include "http/chars.hpp"
#include "mpg/http/request.hpp"
#include "mpg/http/response.hpp"

namespace mpg::http {

using detail::iequals;

const Field* Request::find_header(std::string_view name) const {
  for (const Field& f : headers)
    if (iequals(f.name, name)) return &f;
  return nullptr;
}

std::string_view Request::header(std::string_view name) const {
  const Field* f = find_header(name);
  return f ? f->value : std::string_view{};
}

std::string_view Request::param(std::string_view name) const {
  for (const Param& p : params)
    if (p.name == name) return p.value;
  return {};
}

void Request::clear() {
  method = target = path = query = body = {};
  version_minor = 1;
  keep_alive = true;
  headers.clear();
  params.clear();
  route = {};
  route_index_ = 0;
  route_status_ = 404;
  decoded_.clear();
}

namespace {

// kManagedFields: written by the session itself; a handler setting them would break framing or
// make the three servers' bytes differ.
constexpr std::string_view kManagedFields[] = {"content-length", "transfer-encoding", "connection",
                                               "date", "server"};

void check_field(std::string_view name, std::string_view value) {
  if (!detail::is_token(name)) throw std::invalid_argument("http: invalid field name");
  for (std::string_view managed : kManagedFields)
    if (iequals(name, managed))
      throw std::invalid_argument("http: field is written by the session: " + std::string(name));
  for (char c : value)
    if (!detail::is(c, detail::kValue))  // CR or LF would split the response
      throw std::invalid_argument("http: control character in field value");
}

}  // namespace

void Response::append_field(std::string_view name, std::string_view value) {
  fields_.append(name).append(": ").append(value).append("\r\n");
}

void Response::remove_field(std::string_view name) {
  std::size_t pos = 0;
  while (pos < fields_.size()) {
    std::size_t eol = fields_.find("\r\n", pos) + 2;
    std::string_view line_name =
        std::string_view(fields_).substr(pos, fields_.find(':', pos) - pos);
    if (iequals(line_name, name)) {
      fields_.erase(pos, eol - pos);
    } else {
      pos = eol;
    }
  }
}

void Response::set_header(std::string_view name, std::string_view value) {
  check_field(name, value);
  remove_field(name);
  append_field(name, value);
}

void Response::add_header(std::string_view name, std::string_view value) {
  check_field(name, value);
  append_field(name, value);
}

std::string_view Response::header(std::string_view name) const {
  std::string_view block = fields_;
  std::size_t pos = 0;
  while (pos < block.size()) {
    std::size_t eol = block.find("\r\n", pos);
    std::size_t colon = block.find(':', pos);
    if (iequals(block.substr(pos, colon - pos), name))
      return block.substr(colon + 2, eol - colon - 2);
    pos = eol + 2;
  }
  return {};
}

void Response::text(std::string_view content, int code) {
  status = code;
  set_content_type("text/plain");
  body.assign(content);
}

void Response::json(std::string_view content, int code) {
  status = code;
  set_content_type("application/json");
  body.assign(content);
}

void Response::write_chunk(std::string_view data) {
  chunked_ = true;
  if (data.empty()) return;  // RFC 9112 §7.1: a chunk of size 0 is the last-chunk
  body.append(data);
  chunk_ends_.push_back(body.size());
}

void Response::clear() {
  status = 200;
  body.clear();
  fields_.clear();
  chunk_ends_.clear();
  close_ = false;
  chunked_ = false;
}

}  // namespace mpg::http
