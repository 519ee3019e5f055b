// rfc_head_test.cpp: the RFC 9112 rules on a request's head (request line, line endings, field
// syntax, Host), one case per rule. A refusal must be exactly one response with the rule's
// status and detail line, Connection: close, and a session that takes no more input.
#include <gtest/gtest.h>

#include "http/rules.hpp"
#include "http/test_support.hpp"

namespace mpg::http {
namespace {

using test::echo;
using test::expect_refused;
using test::expect_served;
using test::only_response;
using test::serve;

// --- Request line (RFC 9112 §3) ---

TEST(RfcRequestLine, WithoutVersionIs400NeverAnHttp09Reply) {
  expect_refused("GET /\r\nHost: a\r\n\r\n", detail::kBadVersion);
  test::Fed fed = serve(echo, "GET /\r\n\r\n");
  EXPECT_EQ(fed.out.rfind("HTTP/1.1 400 ", 0), 0u) << fed.out;  // a status line, not a bare body
}

TEST(RfcRequestLine, MethodEndingInLineEndIs400) {
  expect_refused("GET\r\nHost: a\r\n\r\n", detail::kBadVersion);
}

TEST(RfcRequestLine, InvalidCharacterInMethodIs400) {
  expect_refused("GE@T / HTTP/1.1\r\nHost: a\r\n\r\n", detail::kBadMethod);
  expect_refused("G\x80T / HTTP/1.1\r\nHost: a\r\n\r\n", detail::kBadMethod);
  expect_refused(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", detail::kBadMethod);
}

TEST(RfcRequestLine, UnknownMethodTokenIs501) {
  expect_refused("FOO / HTTP/1.1\r\nHost: a\r\n\r\n", detail::kUnknownMethod);
  expect_refused("get / HTTP/1.1\r\nHost: a\r\n\r\n", detail::kUnknownMethod);  // case-sensitive
}

TEST(RfcRequestLine, InvalidCharacterInTargetIs400) {
  for (std::string_view target : {"/\xff", "/{x}", "/a#frag", "/a\"b", "/a\x01", "/a|b", "/a\\b"}) {
    SCOPED_TRACE(target);
    expect_refused("GET " + std::string(target) + " HTTP/1.1\r\nHost: a\r\n\r\n",
                   detail::kBadTarget);
  }
}

TEST(RfcRequestLine, TwoSpacesAfterMethodAre400) {
  expect_refused("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", detail::kBadTarget);
}

TEST(RfcRequestLine, SpaceInsideTargetIs400) {
  expect_refused("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", detail::kBadVersion);
}

TEST(RfcRequestLine, MalformedVersionIs400) {
  for (std::string_view v :
       {"HTTP/1.10", "http/1.1", "HTTP/1.1 ", "HTTP/11", "HTTP/1", "HTTP/a.1"}) {
    SCOPED_TRACE(v);
    expect_refused("GET / " + std::string(v) + "\r\nHost: a\r\n\r\n", detail::kBadVersion);
  }
}

TEST(RfcRequestLine, MajorVersionOtherThanOneIs505) {
  expect_refused("GET / HTTP/2.0\r\nHost: a\r\n\r\n", detail::kUnsupportedVersion);
  expect_refused("GET / HTTP/0.9\r\nHost: a\r\n\r\n", detail::kUnsupportedVersion);
}

TEST(RfcRequestLine, HigherMinorVersionIsServedAsHttp11) {
  test::Fed fed = serve(echo, "GET / HTTP/1.2\r\nHost: a\r\n\r\n");
  test::Parsed p = only_response(fed.out);
  EXPECT_EQ(p.status, 200);
  EXPECT_FALSE(p.closes());
  EXPECT_EQ(fed.status, SessionStatus::kKeepReading);
}

TEST(RfcRequestLine, AsteriskFormOnlyForOptions) {
  EXPECT_NE(expect_served("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").find(" path=* "),
            std::string::npos);
  expect_refused("GET * HTTP/1.1\r\nHost: a\r\n\r\n", detail::kBadTargetForm);
}

TEST(RfcRequestLine, AbsoluteFormIsAcceptedAndSplit) {
  std::string body = expect_served("GET http://example.com:80/p/q?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_NE(body.find(" path=/p/q query=x=1 "), std::string::npos) << body;
  body = expect_served("GET http://example.com HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_NE(body.find(" path=/ query= "), std::string::npos) << body;
  expect_refused("GET ftp://example.com/ HTTP/1.1\r\nHost: h\r\n\r\n", detail::kBadTargetForm);
}

TEST(RfcRequestLine, TargetNeitherOriginNorAbsoluteFormIs400) {
  expect_refused("GET a HTTP/1.1\r\nHost: a\r\n\r\n", detail::kBadTargetForm);
  expect_refused("GET ?a HTTP/1.1\r\nHost: a\r\n\r\n", detail::kBadTargetForm);
}

TEST(RfcRequestLine, ConnectIs501) {
  expect_refused("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
                 detail::kConnect);
}

TEST(RfcRequestLine, OriginFormSplitsPathAndQuery) {
  std::string body = expect_served("GET /kv/a?x=1&y=?z HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_NE(body.find(" path=/kv/a query=x=1&y=?z "), std::string::npos) << body;
}

// --- Line endings (RFC 9112 §2.2) ---

TEST(RfcLineEndings, EmptyLinesBeforeRequestLineAreIgnored) {
  expect_served("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
}

TEST(RfcLineEndings, BareLFEndingRequestLineIs400) {
  expect_refused("GET / HTTP/1.1\nHost: a\r\n\r\n", detail::kBareLF);
}

TEST(RfcLineEndings, BareLFEndingFieldLineIs400) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", detail::kBareLF);
}

TEST(RfcLineEndings, BareLFAsTheEmptyLineIs400) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\n\n", detail::kBareLF);
  expect_refused("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", detail::kBareLF);
}

TEST(RfcLineEndings, BareCRInFieldValueIs400) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", detail::kBareCR);
}

TEST(RfcLineEndings, BareCRAfterRequestLineIs400) {
  expect_refused("GET / HTTP/1.1\rHost: a\r\n\r\n", detail::kBareCR);
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\n\rX", detail::kBareCR);
}

TEST(RfcLineEndings, EmptyLineBeforeRequestLineMustBeCRLF) {
  expect_refused("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", detail::kBareCR);
  expect_refused("\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", detail::kBareLF);
}

TEST(RfcLineEndings, WhitespaceBeforeFirstFieldIs400) {
  expect_refused("GET / HTTP/1.1\r\n Host: a\r\n\r\n", detail::kSpaceAfterStartLine);
}

// --- Field syntax (RFC 9112 §5, RFC 9110 §5.5) ---

TEST(RfcFields, ObsFoldIs400) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", detail::kObsFold);
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n", detail::kObsFold);
}

TEST(RfcFields, WhitespaceBetweenNameAndColonIs400) {
  expect_refused("GET / HTTP/1.1\r\nHost : a\r\n\r\n", detail::kSpaceBeforeColon);
  expect_refused("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", detail::kSpaceBeforeColon);
  expect_refused("GET / HTTP/1.1\r\nHo st: a\r\n\r\n", detail::kSpaceBeforeColon);
}

TEST(RfcFields, NulInFieldValueIs400) {
  expect_refused(std::string_view("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 29),
                 detail::kBadFieldValue);
}

TEST(RfcFields, ControlCharacterInFieldValueIs400) {
  expect_refused(
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01"
      "b\r\n\r\n",
      detail::kBadFieldValue);
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", detail::kBadFieldValue);
}

TEST(RfcFields, InvalidCharacterInFieldNameIs400) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nX@Y: b\r\n\r\n", detail::kBadFieldName);
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", detail::kBadFieldName);
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n", detail::kBadFieldName);
}

TEST(RfcFields, ObsTextInFieldValueIsAccepted) {
  std::string body = expect_served("GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n");
  EXPECT_NE(body.find("X: [caf\xc3\xa9]"), std::string::npos) << body;
}

TEST(RfcFields, ValueExcludesSurroundingWhitespace) {
  std::string body = expect_served("GET / HTTP/1.1\r\nHost: a\r\nX: \t a \t b \t\r\nY:\r\n\r\n");
  EXPECT_NE(body.find("X: [a \t b]\nY: []\n"), std::string::npos) << body;
}

TEST(RfcFields, LookupIsCaseInsensitive) {
  std::string value;
  serve([&](const Request& r, Response& res) { value = std::string(r.header("x-CUSTOM")); },
        "GET / HTTP/1.1\r\nHost: a\r\nX-Custom: v1\r\n\r\n");
  EXPECT_EQ(value, "v1");
}

// --- Host (RFC 9112 §3.2) ---

TEST(RfcHost, Http11WithoutHostIs400) {
  expect_refused("GET / HTTP/1.1\r\n\r\n", detail::kMissingHost);
}

TEST(RfcHost, Http10WithoutHostIsServed) { expect_served("GET / HTTP/1.0\r\n\r\n"); }

TEST(RfcHost, MoreThanOneHostIs400) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", detail::kRepeatedHost);
  expect_refused("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", detail::kRepeatedHost);
}

TEST(RfcHost, InvalidHostValueIs400) {
  for (std::string_view host : {"a b", "a/b", "[::1", "a:8x", "[]", "a@b", "[::1]x"}) {
    SCOPED_TRACE(host);
    expect_refused("GET / HTTP/1.1\r\nHost: " + std::string(host) + "\r\n\r\n", detail::kBadHost);
  }
}

TEST(RfcHost, ValidHostValuesAreServed) {
  for (std::string_view host : {"example.com", "example.com:8080", "127.0.0.1:80", "[::1]:8080",
                                "[::1]", "", "a:", "xn--bcher-kva.example"}) {
    SCOPED_TRACE(host);
    expect_served("GET / HTTP/1.1\r\nHost: " + std::string(host) + "\r\n\r\n");
  }
}

}  // namespace
}  // namespace mpg::http
