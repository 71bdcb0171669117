// How the server reads one request: the parser's limits, the checks made once the
// header is in, what a read error means for the client, and the hand-over to the
// library's HttpRequest. Apart from the connection's I/O so that it can be fuzzed
// and tested on bytes alone.
#ifndef SESSIONCTX_APPS_REQUEST_READING_H_
#define SESSIONCTX_APPS_REQUEST_READING_H_

#include <optional>
#include <string>

#include "apps/asio.h"
#include "apps/http_server.h"
#include "sessionctx/http_handler.h"

namespace sessionctx::apps {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Rejection: a request refused before it reaches the handler.
struct Rejection {
  Refusal why;
  int status;  // the refusal's (kRefusals), but for a transfer coding without chunked
               // last
  std::string message;
};

// Room for the request line around the target ("PATCH " … " HTTP/1.1\r\n").
inline constexpr size_t kRequestLineSlack = 64;

// ConfigureParser sets `limits`' header and body limits on a fresh parser.
void ConfigureParser(RequestParser& parser, const ServerLimits& limits);

// CheckHeader makes the checks due once the header is read, in this order: target
// length (414), header field count and bytes (431), Content-Encoding other than
// identity (415), Transfer-Encoding other than chunked (501, or 400 when the last
// coding is chunked). nullopt: the request may go on.
std::optional<Rejection> CheckHeader(const RequestParser& parser, const ServerLimits& limits);

// RejectionForReadError: the answer owed for a parse error (431, 414, 413, 400).
// nullopt for errors that end the connection without an answer (timeout, EOF).
std::optional<Rejection> RejectionForReadError(boost::beast::error_code ec,
                                               const RequestParser& parser,
                                               const ServerLimits& limits);

// ToHttpRequest hands a complete message to the library's neutral form.
HttpRequest ToHttpRequest(boost::beast::http::request<boost::beast::http::string_body>&& msg);

}  // namespace sessionctx::apps

#endif  // SESSIONCTX_APPS_REQUEST_READING_H_
