// The server's request reading up to the handler, on raw bytes: Beast's parser with
// the server's limits, the header checks, the hand-over to HttpRequest, the handler
// over memory:. A refusal must be one of the statuses the server answers before the
// handler; a request that passes must respect every limit; the handler's answer must
// keep its promises (fuzz_env.h).
#include <cstddef>
#include <cstdint>

#include "apps/request_reading.h"
#include "fuzz/fuzz_env.h"

namespace {

using namespace sessionctx;
using namespace sessionctx::apps;
namespace http = boost::beast::http;

void CheckRejection(const Rejection& r) {
  switch (r.status) {
    case 400: case 413: case 414: case 415: case 431: case 501:
      break;
    default:
      std::abort();
  }
  if (r.message.empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ServerLimits limits;  // the defaults, smaller where a fuzzer can reach them
  limits.max_body_bytes = 4096;
  limits.max_header_bytes = 2048;
  limits.max_url_bytes = 1024;
  limits.max_header_count = 20;
  RequestParser parser;
  ConfigureParser(parser, limits);
  parser.eager(true);
  size_t offset = 0;
  bool header_checked = false;
  boost::beast::error_code ec;
  while (offset < size && !parser.is_done()) {
    const size_t used = parser.put(boost::asio::const_buffer(data + offset, size - offset), ec);
    offset += used;
    if (ec == http::error::need_more) {
      ec = {};
      break;  // the input ends inside a request: the client closes
    }
    if (ec) break;
    if (parser.is_header_done() && !header_checked) {
      header_checked = true;
      if (std::optional<Rejection> r = CheckHeader(parser, limits)) {
        CheckRejection(*r);
        return 0;
      }
    }
    if (used == 0) break;
  }
  if (!ec && !parser.is_done()) {
    // As Beast's read does at the end of the stream: put_eof only after some bytes
    // (its precondition), end_of_stream when the client sent nothing.
    if (parser.got_some()) {
      parser.put_eof(ec);
    } else {
      ec = http::error::end_of_stream;
    }
  }
  if (ec) {
    if (std::optional<Rejection> r = RejectionForReadError(ec, parser, limits)) CheckRejection(*r);
    return 0;
  }
  if (!parser.is_done()) return 0;
  if (!header_checked) {
    if (std::optional<Rejection> r = CheckHeader(parser, limits)) {
      CheckRejection(*r);
      return 0;
    }
  }
  HttpRequest req = ToHttpRequest(parser.release());
  if (req.body.size() > limits.max_body_bytes || req.target.size() > limits.max_url_bytes ||
      req.headers.size() > limits.max_header_count) {
    std::abort();  // a limit did not hold
  }
  fuzz::Env env;
  env.CheckInvariants(env.handler->Handle(req));
  return 0;
}
