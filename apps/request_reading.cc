#include "apps/request_reading.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "apps/access_log.h"

namespace sessionctx::apps {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {

absl::string_view View(beast::string_view s) { return absl::string_view(s.data(), s.size()); }

// Refuse: a rejection answered with the refusal's status.
Rejection Refuse(Refusal why, std::string message) {
  return Rejection{why, SpecOf(why).status, std::move(message)};
}

}  // namespace

void ConfigureParser(RequestParser& parser, const ServerLimits& limits) {
  parser.header_limit(
      static_cast<uint32_t>(limits.max_url_bytes + limits.max_header_bytes + kRequestLineSlack));
  parser.body_limit(limits.max_body_bytes);
}

std::optional<Rejection> CheckHeader(const RequestParser& parser, const ServerLimits& limits) {
  const auto& req = parser.get();
  const beast::string_view target = req.target();
  if (target.size() > limits.max_url_bytes) {
    return Refuse(Refusal::kUrl,
                  absl::StrCat("request target is ", target.size(),
                               " bytes, over the limit of ", limits.max_url_bytes));
  }
  size_t count = 0, bytes = 0;
  for (const auto& field : req) {
    ++count;
    bytes += field.name_string().size() + field.value().size() + 4;  // ": " and CRLF
  }
  if (count > limits.max_header_count) {
    return Refuse(
        Refusal::kHeaderCount,
        absl::StrCat("request has ", count, " header fields, over the limit of ",
                     limits.max_header_count));
  }
  if (bytes > limits.max_header_bytes) {
    return Refuse(Refusal::kHeaderBytes,
                  absl::StrCat("request header fields are ", bytes,
                               " bytes, over the limit of ", limits.max_header_bytes));
  }
  if (auto it = req.find(http::field::content_encoding); it != req.end()) {
    const absl::string_view coding = absl::StripAsciiWhitespace(View(it->value()));
    if (!absl::EqualsIgnoreCase(coding, "identity")) {
      return Refuse(
          Refusal::kContentEncoding,
          absl::StrCat("Content-Encoding ",
                       EscapeForLog(std::string_view(coding.data(), coding.size())),
                       " is not supported; send the body uncompressed"));
    }
  }
  if (auto it = req.find(http::field::transfer_encoding); it != req.end()) {
    const absl::string_view coding = absl::StripAsciiWhitespace(View(it->value()));
    if (!absl::EqualsIgnoreCase(coding, "chunked")) {
      return Rejection{
          Refusal::kTransferEncoding,
          parser.chunked() ? SpecOf(Refusal::kTransferEncoding).status : 400,
          absl::StrCat("Transfer-Encoding ",
                       EscapeForLog(std::string_view(coding.data(), coding.size())),
                       " is not supported; only chunked")};
    }
  }
  return std::nullopt;
}

std::optional<Rejection> RejectionForReadError(beast::error_code ec, const RequestParser& parser,
                                               const ServerLimits& limits) {
  if (ec == http::error::header_limit) {
    // The header block is over its limit. The parser takes the request line as soon
    // as it is whole: without one, the target alone is too long (414); with one, the
    // header fields are (431).
    if (parser.get().target().empty()) {
      return Refuse(Refusal::kUrl, absl::StrCat("request target is over the limit of ",
                                                limits.max_url_bytes, " bytes"));
    }
    return Refuse(Refusal::kHeaderBytes,
                  absl::StrCat("request header fields are over the limit of ",
                               limits.max_header_bytes, " bytes"));
  }
  if (ec == http::error::buffer_overflow) {
    return Refuse(Refusal::kHeaderBytes, "request header is over its limit");
  }
  if (ec == http::error::body_limit) {
    return Refuse(Refusal::kBody, absl::StrCat("request body is over the limit of ",
                                               limits.max_body_bytes, " bytes"));
  }
  if (ec.category() == beast::error_code(http::error::end_of_stream).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message) {
    return Refuse(Refusal::kMalformed, "malformed HTTP request: " + ec.message());
  }
  return std::nullopt;
}

HttpRequest ToHttpRequest(http::request<http::string_body>&& msg) {
  HttpRequest req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  req.headers.reserve(8);
  for (const auto& field : msg) {
    req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  req.body = std::move(msg.body());
  return req;
}

}  // namespace sessionctx::apps
