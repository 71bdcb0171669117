// The HTTP handler inside CivetWeb (libcivetweb-dev, its C API). CivetWeb serves each
// connection on a worker thread of its own, so the handler is called there directly.
// It decodes the path unless told not to (`decode_url=no`: a decoded %2F would split
// a segment), reads chunked bodies through mg_read, and writes what it is given, so
// the adapter sets Content-Length itself and writes no body after HEAD, 204 or 304.
//
//   civetweb_server 8080 secret-file
#include <civetweb.h>

#include <string>

#include "example_app.h"

namespace {

// [embed:civetweb-adapter]
int Serve(mg_connection* conn, void* data) {
  const auto& app = *static_cast<const example::App*>(data);
  const mg_request_info* info = mg_get_request_info(conn);
  sessionctx::HttpRequest in;
  in.method = info->request_method;
  in.target = info->local_uri_raw;  // not decoded: decode_url=no
  if (info->query_string != nullptr) in.target += std::string("?") + info->query_string;
  for (int i = 0; i < info->num_headers; ++i) {
    in.headers.emplace_back(info->http_headers[i].name, info->http_headers[i].value);
  }
  const size_t limit = app.options.max_body_bytes;
  char buf[8192];
  int n = 0;
  while (in.body.size() <= limit && (n = mg_read(conn, buf, sizeof(buf))) > 0) {
    in.body.append(buf, static_cast<size_t>(n));  // chunked bodies are decoded by mg_read
  }
  sessionctx::HttpResponse res =
      in.body.size() > limit ? sessionctx::ErrorResponse(413, "request body is too large")
                             : app.handler->Handle(in);

  mg_response_header_start(conn, res.status);
  for (const auto& [name, value] : res.headers) {
    mg_response_header_add(conn, name.c_str(), value.c_str(), -1);
  }
  if (res.status == 413) mg_response_header_add(conn, "Connection", "close", -1);
  if (res.status != 204 && res.status != 304) {
    mg_response_header_add(conn, "Content-Length",
                           std::to_string(res.body.size()).c_str(), -1);
  }
  mg_response_header_send(conn);
  if (example::HasBody(in.method, res.status))
    mg_write(conn, res.body.data(), res.body.size());
  return res.status;  // handled: CivetWeb keeps the connection for the next request
}
// [end:civetweb-adapter]

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<example::App> app = example::Start(argc, argv, "civetweb_server");
  if (!app) return 2;
  mg_init_library(0);
  const std::string ports = "127.0.0.1:" + std::to_string(app->port);
  // A keep-alive connection holds a worker thread while open; head and body go out in
  // two writes, so Nagle's wait is turned off.
  // clang-format off
  const char* options[] = {"listening_ports", ports.c_str(), "num_threads", "64",
                           "enable_keep_alive", "yes", "tcp_nodelay", "1",
                           "decode_url", "no", "request_timeout_ms", "30000", nullptr};
  // clang-format on
  mg_callbacks callbacks{};
  mg_context* ctx = mg_start(&callbacks, nullptr, options);
  if (ctx == nullptr) {
    std::fprintf(stderr, "civetweb_server: cannot listen on %s\n", ports.c_str());
    return 1;
  }
  mg_set_request_handler(ctx, "/", Serve, app.get());
  example::Listening(app->port);
  example::WaitForStop();
  mg_stop(ctx);  // stops accepting, waits for the requests under way
  mg_exit_library();
  return 0;
}
