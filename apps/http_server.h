// HttpServer: the event-driven HTTP/1.1 front of sessionctx-server (Boost.Beast over
// Asio). A fixed number of I/O threads each run an event loop of their own; a
// connection is accepted on the first and lives on one loop for its whole life (no
// strand, no cross-thread wake-up while it is served). The loops read and parse
// requests, enforce the request limits while reading, and write responses. A read the
// store has at hand (HttpHandler::TryHandle) is answered on the loop; any other
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
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apps/access_log.h"
#include "apps/ip_network.h"
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
  size_t max_body_bytes = kDefaultMaxBodyBytes;
  // Time a client has to send one request's header and body, counted from its first
  // byte; also the time a response may take to be written. Past it: cut off.
  std::chrono::milliseconds request_timeout{10'000};
  // Time a keep-alive connection may wait for its next request; then it is closed.
  std::chrono::milliseconds idle_timeout{60'000};
  // Open connections; a connection beyond it is answered 503 and closed.
  size_t max_connections = 10'000;
};

// Refusal: why the server refused or cut off a request before the handler saw it.
enum class Refusal {
  kHeaderBytes,
  kHeaderCount,
  kUrl,
  kBody,
  kContentEncoding,
  kTransferEncoding,
  kExpect,
  kMalformed,
  kConnections,
  kRequestTimeout,
  kSlowReader,  // an event stream's client took no chunk within the request timeout
};

// The refusals in one table: each one's metric label and the status it is answered
// with (0: the connection is cut off without an answer). docs/server.md lists them.
struct RefusalSpec {
  Refusal why;
  const char* name;  // the metric label, e.g. "header_bytes"
  int status;
};
inline constexpr RefusalSpec kRefusals[] = {
    {Refusal::kHeaderBytes, "header_bytes", 431},
    {Refusal::kHeaderCount, "header_count", 431},
    {Refusal::kUrl, "url", 414},
    {Refusal::kBody, "body", 413},
    {Refusal::kContentEncoding, "content_encoding", 415},
    // 400 when chunked is not the last coding
    {Refusal::kTransferEncoding, "transfer_encoding", 501},
    {Refusal::kExpect, "expect", 417},
    {Refusal::kMalformed, "malformed", 400},
    {Refusal::kConnections, "connections", 503},
    {Refusal::kRequestTimeout, "request_timeout", 0},
    {Refusal::kSlowReader, "slow_reader", 0},
};

// SpecOf: the table's row of `refusal`.
constexpr const RefusalSpec& SpecOf(Refusal refusal) {
  return kRefusals[static_cast<int>(refusal)];
}
static_assert(SpecOf(Refusal::kRequestTimeout).why == Refusal::kRequestTimeout &&
                  SpecOf(Refusal::kSlowReader).why == Refusal::kSlowReader,
              "kRefusals lists the refusals in their enum order");

// RefusalName: the metric label of a refusal, e.g. "header_bytes".
inline const char* RefusalName(Refusal refusal) { return SpecOf(refusal).name; }

// HttpObserver hears what the server does, for metrics. Called from I/O threads,
// concurrently: implementations are thread-safe and quick.
class HttpObserver {
 public:
  virtual ~HttpObserver() = default;
  virtual void OnConnectionOpened() = 0;
  virtual void OnConnectionClosed() = 0;
  virtual void OnRefused(Refusal why) = 0;
  // A request handed to the handler pool (it may wait on the store); requests
  // answered on the I/O thread are not.
  virtual void OnHandedOff() {}
  // One answered request: `path` is the raw path (no query), "-" when the request
  // line was never read.
  virtual void OnRequest(absl::string_view method, absl::string_view path, int status,
                         double seconds) = 0;
};

// EventStreamOptions: the event streams (GET /session-context/{tenant}/events), held
// open on the event loops without a thread each. A stream waits for news without
// asking the store; one watcher thread checks the feed's newest position every
// `poll` while any stream waits, and wakes the streams it has passed.
struct EventStreamOptions {
  // A comment line (": heartbeat") after this long without a write, so that
  // proxies and clients see the stream is alive.
  std::chrono::milliseconds heartbeat{15'000};
  // How often the feed's newest position is checked while streams wait.
  std::chrono::milliseconds poll{50};
  // Streams open at once; one beyond it is answered 503.
  size_t max_streams = 1'000;
};

// HttpServerOptions: where to listen and how many threads do what.
struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (Bind returns it)
  // Event loops, one thread each.
  int io_threads = 1;
  // Threads running requests that reach the store. 0: run them on the I/O threads
  // (only for stores that never block, such as memory:).
  int handler_threads = 16;
  ServerLimits limits;
  // Hears connections, refusals and answered requests; not owned; may be null.
  HttpObserver* observer = nullptr;
  // When set, GET /metrics answers its text (Prometheus exposition format) on the
  // I/O thread; with `metrics_loopback_only`, only to clients on a loopback address
  // or in one of `metrics_allow` (others get 403).
  std::function<std::string()> metrics;
  bool metrics_loopback_only = true;
  std::vector<IpNetwork> metrics_allow;
  // Fixed answers to GET (and HEAD) of a path, e.g. /openapi.json, served on the
  // I/O thread.
  std::map<std::string, HttpResponse> static_routes;
  EventStreamOptions events;
};

// ReadinessCheck answers whether the store answers; called for GET /readyz on a
// thread of its own, never on an I/O thread.
using ReadinessCheck = std::function<absl::Status()>;

class HttpServer {
 public:
  // REQUIRES: `handler` and `log` outlive the server. A null `handler` serves only
  // /metrics (and 404 elsewhere): a metrics-only listener.
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
