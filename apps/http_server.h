// HttpServer: the event-driven HTTP/1.1 front of sessionctx-server (Boost.Beast over
// Asio). A fixed number of I/O threads own every connection: they accept, read and
// parse requests, enforce the request limits while reading, and write responses. A
// request that reaches the store is handed to a separate pool of handler threads, so
// a store call that blocks (a database outage waiting on its timeout) delays only the
// requests that wait for the store, never the reading, writing or health checks of
// other connections.
//
// Example:
//   HttpServerOptions options;
//   options.port = 8080;
//   HttpServer server(&handler, ProbeStore, &access_log, options);
//   absl::StatusOr<int> port = server.Bind();
//   std::thread stopper([&] { WaitForSignal(); server.Shutdown(); });
//   server.Run();  // returns once stopped and drained
#ifndef SESSIONCTX_APPS_HTTP_SERVER_H_
#define SESSIONCTX_APPS_HTTP_SERVER_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apps/access_log.h"
#include "sessionctx/http_handler.h"

namespace sessionctx::apps {

// ServerLimits: what one client may send. Each is enforced while the request is read,
// before anything past it is buffered.
struct ServerLimits {
  // Bytes of request header fields (names, values and their separators); over: 431.
  size_t max_header_bytes = 16 * 1024;
  // Number of request header fields; over: 431.
  size_t max_header_count = 100;
  // Bytes of the request target (path and query); over: 414.
  size_t max_url_bytes = 8 * 1024;
  // Bytes of a request body, chunked bodies included; over: 413 as soon as it is
  // exceeded, then the connection closes.
  size_t max_body_bytes = 64 * 1024;
  // Time a client has to send one request's header and body, counted from its first
  // byte; also the time a response may take to be written. Past it: cut off.
  std::chrono::milliseconds request_timeout{10'000};
  // Time a keep-alive connection may wait for its next request; then it is closed.
  std::chrono::milliseconds idle_timeout{60'000};
  // Open connections; a connection beyond it is answered 503 and closed.
  size_t max_connections = 10'000;
};

// HttpServerOptions: where to listen and how many threads do what.
struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (Bind returns it)
  // Threads running the event loop. Default: one per core.
  int io_threads = 1;
  // Threads running requests that reach the store. 0: run them on the I/O threads
  // (only for stores that never block, such as memory:).
  int handler_threads = 16;
  ServerLimits limits;
};

// ReadinessCheck answers whether the store answers; called for GET /readyz on a
// thread of its own, never on an I/O thread.
using ReadinessCheck = std::function<absl::Status()>;

class HttpServer {
 public:
  // REQUIRES: `handler` and `log` outlive the server.
  HttpServer(const HttpHandler* handler, ReadinessCheck readiness, AccessLog* log,
             HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Bind opens the listening socket and returns the port it listens on.
  absl::StatusOr<int> Bind();

  // Run serves until Shutdown has drained every connection. REQUIRES: Bind succeeded.
  void Run();

  // Shutdown stops accepting, closes idle connections, lets requests in flight finish
  // (answered with "Connection: close") and closes what is still open after `grace`.
  // Thread-safe; returns at once; later calls do nothing.
  void Shutdown(std::chrono::milliseconds grace);

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace sessionctx::apps

#endif  // SESSIONCTX_APPS_HTTP_SERVER_H_
