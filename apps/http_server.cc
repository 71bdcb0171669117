#include "apps/http_server.h"

#include <sys/resource.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "apps/asio.h"
#include "apps/request_reading.h"
#include "sessionctx/http_routes.h"

namespace sessionctx::apps {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// What is read and thrown away after an error answer before the connection closes,
// so that the client sees the answer rather than a reset.
constexpr size_t kMaxDrainBytes = 1 << 20;
constexpr std::chrono::seconds kMaxDrainTime{2};

// HttpDate returns the current time as an IMF-fixdate, recomputed once a second per
// thread.
const std::string& HttpDate() {
  thread_local std::time_t last = 0;
  thread_local std::string text;
  const std::time_t now = std::time(nullptr);
  if (now != last) {
    last = now;
    std::tm tm;
    gmtime_r(&now, &tm);
    char buf[64];
    const size_t n = std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    text.assign(buf, n);
  }
  return text;
}

// Serialize renders the whole response as one buffer: status line, the handler's
// headers, Content-Length (never on 204), Connection, the body (not for HEAD).
std::string Serialize(const HttpResponse& res, bool keep_alive, bool http10, bool head) {
  const beast::string_view reason = http::obsolete_reason(static_cast<http::status>(res.status));
  size_t size = 128 + res.body.size();  // status line, Date, Content-Length, Connection
  for (const auto& [name, value] : res.headers) size += name.size() + value.size() + 4;
  std::string out;
  out.reserve(size);  // one allocation
  absl::StrAppend(&out, "HTTP/1.1 ", res.status, " ",
                  absl::string_view(reason.data(), reason.size()), "\r\nDate: ", HttpDate(),
                  "\r\n");
  for (const auto& [name, value] : res.headers) absl::StrAppend(&out, name, ": ", value, "\r\n");
  if (res.status != 204 && res.status >= 200) {
    absl::StrAppend(&out, "Content-Length: ", res.body.size(), "\r\n");
  }
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (http10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  if (!head) out += res.body;
  return out;
}

// ReadinessProbe runs the readiness check on a thread of its own, one check at a
// time: requests arriving while a check runs wait for that check's answer, so an
// outage that makes each check wait for a timeout never piles checks up.
class ReadinessProbe {
 public:
  explicit ReadinessProbe(ReadinessCheck check) : check_(std::move(check)) {}
  ~ReadinessProbe() {
    std::thread worker;
    {
      std::lock_guard<std::mutex> lock(mu_);
      worker = std::move(worker_);
    }
    if (worker.joinable()) worker.join();
  }

  void Check(std::function<void(HttpResponse)> done) {
    std::thread previous;
    {
      std::lock_guard<std::mutex> lock(mu_);
      waiters_.push_back(std::move(done));
      if (running_) return;
      running_ = true;
      previous = std::move(worker_);
      worker_ = std::thread([this] { Probe(); });
    }
    if (previous.joinable()) previous.join();
  }

 private:
  void Probe() {
    const absl::Status st = check_ ? check_() : absl::OkStatus();
    HttpResponse res;
    if (st.ok()) {
      res.status = 200;
      res.headers.emplace_back("Content-Type", "application/json");
      res.body = R"({"status":"ready"})";
    } else if (IsStorageFull(st)) {
      // Still 503 (not ready for traffic that writes), with the reason.
      res = ErrorResponse(503, "session store is out of space: writes are refused, reads are "
                               "served; not ready");
    } else {
      res = ErrorResponse(503, "session store does not answer; not ready");
    }
    std::vector<std::function<void(HttpResponse)>> waiters;
    {
      std::lock_guard<std::mutex> lock(mu_);
      waiters.swap(waiters_);
      running_ = false;
    }
    for (auto& w : waiters) w(res);
  }

  const ReadinessCheck check_;
  std::mutex mu_;
  bool running_ = false;                                    // guarded by mu_
  std::vector<std::function<void(HttpResponse)>> waiters_;  // guarded by mu_
  std::thread worker_;                                      // guarded by mu_
};

}  // namespace

class Connection;

// Socket and Stream: bound to one event loop's executor (no strand, no polymorphic
// executor): a connection lives on one loop, so its handlers never run concurrently.
using Executor = net::io_context::executor_type;
using Socket = net::basic_stream_socket<tcp, Executor>;
using Stream = beast::basic_stream<tcp, Executor>;
using Timer =
    net::basic_waitable_timer<std::chrono::steady_clock,
                              net::wait_traits<std::chrono::steady_clock>, Executor>;

class HttpServer::Impl {
 public:
  Impl(const HttpHandler* handler, ReadinessCheck readiness, AccessLog* log,
       HttpServerOptions options)
      : handler_(handler),
        log_(log),
        options_(std::move(options)),
        limits_(options_.limits),
        loops_(MakeLoops(options_.io_threads)),
        acceptor_(control()),
        accept_retry_(control()),
        grace_timer_(control()),
        readiness_(std::move(readiness)) {
    if (options_.handler_threads > 0) {
      pool_.emplace(static_cast<size_t>(options_.handler_threads));
    }
  }

  absl::StatusOr<int> Bind() {
    beast::error_code ec;
    const net::ip::address address = net::ip::make_address(options_.host, ec);
    if (ec) return absl::InvalidArgumentError("not an IP address: " + options_.host);
    const tcp::endpoint endpoint(address, static_cast<unsigned short>(options_.port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.host, ":",
                                                 options_.port, ": ", ec.message()));
    }
    return acceptor_.local_endpoint().port();
  }

  // Run: one thread per loop (this one runs the first), until Shutdown drained them.
  void Run() {
    net::post(control(), [this] { Accept(); });
    std::vector<std::thread> threads;
    for (size_t i = 1; i < loops_.size(); ++i) {
      threads.emplace_back([loop = loops_[i].get()] { loop->ioc.run(); });
    }
    std::thread watcher;
    if (handler_ != nullptr) watcher = std::thread([this] { WatchEvents(); });
    loops_[0]->ioc.run();
    for (std::thread& t : threads) t.join();
    {
      std::lock_guard<std::mutex> lock(waiting_mu_);
      watching_ = false;
    }
    waiting_cv_.notify_all();
    if (watcher.joinable()) watcher.join();
    if (pool_) pool_->join();
  }

  // Event streams: a stream with nothing to send waits here, at `position`, until
  // the feed's newest position differs from it.
  void WaitForEvents(const std::shared_ptr<Connection>& c, uint64_t id,
                     std::string position) {
    bool first = false;
    {
      std::lock_guard<std::mutex> lock(waiting_mu_);
      first = waiting_.empty();
      waiting_[id] = {c, std::move(position)};
    }
    // Only the first waiter wakes the watcher (asleep while none waits); the others
    // are seen at its next poll.
    if (first) waiting_cv_.notify_all();
  }
  // A stream that closed waits no more.
  void StopWaiting(uint64_t id) {
    std::lock_guard<std::mutex> lock(waiting_mu_);
    waiting_.erase(id);
  }
  // A stream may open unless `max_streams` are open (then false).
  bool AcquireStream() {
    size_t open = streams_.load();
    do {
      if (open >= options_.events.max_streams) return false;
    } while (!streams_.compare_exchange_weak(open, open + 1));
    return true;
  }
  void ReleaseStream() { streams_.fetch_sub(1); }

  void Shutdown(std::chrono::milliseconds grace) {
    net::post(control(), [this, grace] {
      if (stopping_.exchange(true)) return;
      beast::error_code ec;
      acceptor_.close(ec);
      accept_retry_.cancel();
      for (const std::shared_ptr<Connection>& c : Live()) PostToConnection(c, &Impl::Stop);
      grace_timer_.expires_after(grace);
      grace_timer_.async_wait([this](beast::error_code ec) {
        if (ec) return;  // every connection closed first
        for (const std::shared_ptr<Connection>& c : Live()) PostToConnection(c, &Impl::Kill);
      });
      MaybeFinish();
    });
  }

  // For connections.
  const HttpHandler* handler() const { return handler_; }
  HttpObserver* observer() const { return options_.observer; }
  const HttpServerOptions& options() const { return options_; }
  AccessLog& log() const { return *log_; }
  const ServerLimits& limits() const { return limits_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  net::thread_pool* pool() { return pool_ ? &*pool_ : nullptr; }
  ReadinessProbe& readiness() { return readiness_; }

  void Forget(uint64_t id) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      connections_.erase(id);
    }
    if (stopping()) net::post(control(), [this] { MaybeFinish(); });
  }

 private:
  // Loop: one event loop, run by one thread; a work guard keeps it running while it
  // has nothing to do, until the server has stopped.
  struct Loop {
    net::io_context ioc{1};  // one thread: Asio may skip its internal locking
    std::optional<net::executor_work_guard<Executor>> work{ioc.get_executor()};
  };

  static std::vector<std::unique_ptr<Loop>> MakeLoops(int n) {
    std::vector<std::unique_ptr<Loop>> loops;
    for (int i = 0; i < std::max(1, n); ++i) loops.push_back(std::make_unique<Loop>());
    return loops;
  }

  // control: the first loop's executor, which runs the acceptor, the timers and the
  // shutdown.
  Executor control() { return loops_[0]->ioc.get_executor(); }

  static void Stop(Connection& c);
  static void Kill(Connection& c);
  void PostToConnection(const std::shared_ptr<Connection>& c, void (*fn)(Connection&));

  std::vector<std::shared_ptr<Connection>> Live() {
    std::vector<std::shared_ptr<Connection>> live;
    std::lock_guard<std::mutex> lock(mu_);
    live.reserve(connections_.size());
    for (auto& [id, weak] : connections_) {
      if (std::shared_ptr<Connection> c = weak.lock()) live.push_back(std::move(c));
    }
    return live;
  }

  // On the control loop: once stopping and no connection is left (none waits on a
  // handler thread either: those hold their connection), the loops may run out of
  // work and Run return.
  void MaybeFinish() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!connections_.empty()) return;
    grace_timer_.cancel();
    for (const std::unique_ptr<Loop>& loop : loops_) loop->work.reset();
  }

  void Accept();
  void OnAccept(beast::error_code ec, Socket socket);
  void Refuse(Socket& socket);
  static void Wake(Connection& c);

  // WatchEvents: the watcher thread. While streams wait, it reads the feed's newest
  // position every `poll` and wakes each stream that waits at another position.
  void WatchEvents() {
    std::unique_lock<std::mutex> lock(waiting_mu_);
    while (watching_) {
      if (waiting_.empty()) {
        waiting_cv_.wait(lock);
        continue;
      }
      waiting_cv_.wait_for(lock, options_.events.poll);
      if (!watching_ || waiting_.empty()) continue;
      lock.unlock();
      const std::string tail = handler_->EventTail();  // may block: not under the lock
      lock.lock();
      if (tail.empty()) continue;  // the store cannot say now: try again later
      for (auto it = waiting_.begin(); it != waiting_.end();) {
        if (it->second.second == tail) {
          ++it;
          continue;
        }
        if (std::shared_ptr<Connection> c = it->second.first.lock()) {
          PostToConnection(c, &Impl::Wake);
        }
        it = waiting_.erase(it);
      }
    }
  }

  const HttpHandler* const handler_;
  AccessLog* const log_;
  const HttpServerOptions options_;
  const ServerLimits limits_;
  std::vector<std::unique_ptr<Loop>> loops_;
  size_t next_loop_ = 0;  // where the next connection goes; on the control loop
  net::basic_socket_acceptor<tcp, Executor> acceptor_;
  net::basic_waitable_timer<std::chrono::steady_clock, net::wait_traits<std::chrono::steady_clock>,
                            Executor>
      accept_retry_, grace_timer_;
  std::optional<net::thread_pool> pool_;
  ReadinessProbe readiness_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  uint64_t next_id_ = 0;                                                 // guarded by mu_
  std::unordered_map<uint64_t, std::weak_ptr<Connection>> connections_;  // guarded by mu_
  std::atomic<size_t> streams_{0};  // event streams open
  std::mutex waiting_mu_;
  std::condition_variable waiting_cv_;
  bool watching_ = true;  // guarded by waiting_mu_
  // Streams waiting for events, by connection id: the connection and its position.
  std::unordered_map<uint64_t, std::pair<std::weak_ptr<Connection>, std::string>>
      waiting_;  // guarded by waiting_mu_
};

// Connection: one client, on one event loop for its whole life. Requests are served
// one at a time in arrival order (pipelined ones wait in the read buffer).
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(HttpServer::Impl* server, Socket socket, uint64_t id)
      : server_(server),
        limits_(server->limits()),
        stream_(std::move(socket)),
        buffer_(limits_.max_url_bytes + limits_.max_header_bytes + kRequestLineSlack + 8192),
        id_(id) {
    beast::error_code ec;
    const tcp::endpoint peer = stream_.socket().remote_endpoint(ec);
    if (!ec) {
      address_ = peer.address().to_string();
      remote_ = absl::StrCat(address_, ":", peer.port());
      loopback_ = peer.address().is_loopback() ||
                  (peer.address().is_v6() && peer.address().to_v6().is_v4_mapped() &&
                   peer.address().to_v6().to_v4().is_loopback());
    }
    if (HttpObserver* o = server_->observer()) o->OnConnectionOpened();
  }

  ~Connection() {
    if (HttpObserver* o = server_->observer()) o->OnConnectionClosed();
    server_->Forget(id_);
  }

  void Start() { ReadNext(); }

  // Stop: the server is shutting down. An idle connection closes now, and so does
  // an event stream; a request in flight finishes and its answer says
  // "Connection: close".
  void Stop() {
    if (state_ == State::kIdle || state_ == State::kStreaming) Close();
  }
  void Kill() { Close(); }

  // Wake: the feed has news for a waiting event stream.
  void Wake() {
    if (state_ != State::kStreaming || stream_busy_) return;
    heartbeat_.cancel();
    FetchEvents();
  }

 private:
  enum class State {
    kIdle,
    kReading,
    kHandling,
    kWriting,
    kClosing,
    kStreaming,
    kClosed
  };

  // --- event streams: the head, then chunks of events as they come, each written
  // whole before the next is read (so at most one chunk is held per stream); a
  // chunk the client does not take within the request timeout cuts it off.

  // Blocking: `work` on a handler thread (inline when there are none), then `then`
  // with its result back on this connection's loop.
  template <typename Work, typename Then>
  void Blocking(Work work, Then then) {
    net::thread_pool* pool = server_->pool();
    if (pool == nullptr) return then(work());
    net::post(*pool, [self = shared_from_this(), work = std::move(work),
                      then = std::move(then)]() mutable {
      auto result = work();
      net::post(self->stream_.get_executor(),
                [self, then = std::move(then), result = std::move(result)]() mutable {
                  if (self->state_ != State::kClosed) then(std::move(result));
                });
    });
  }

  void OpenEvents(HttpRequest req) {
    const HttpHandler* handler = server_->handler();
    if (HttpObserver* o = server_->observer()) o->OnHandedOff();
    Blocking([handler, req = std::move(req)] { return handler->OpenEventStream(req); },
             [this](std::variant<HttpResponse, EventStreamStart> opened) {
               if (auto* res = std::get_if<HttpResponse>(&opened))
                 return Respond(*std::move(res));
               StartStream(std::get<EventStreamStart>(std::move(opened)));
             });
  }

  void StartStream(EventStreamStart start) {
    if (server_->stopping()) return Respond(ErrorResponse(503, "server is stopping"));
    if (!server_->AcquireStream()) {
      return Respond(
          ErrorResponse(503, absl::StrCat("server holds its limit of ",
                                          server_->options().events.max_streams,
                                          " event streams; retry later")));
    }
    counted_stream_ = true;
    state_ = State::kStreaming;
    status_ = 200;
    if (HttpObserver* o = server_->observer()) {
      o->OnRequest(method_, path_, status_,
                   std::chrono::duration<double>(Clock::now() - started_).count());
    }
    std::string head = absl::StrCat(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: "
        "no-store\r\n"
        "Connection: close\r\nDate: ",
        HttpDate(), "\r\n\r\nretry: 2000\n\n");
    // A client that named no position learns where it starts, so that it resumes
    // from there (Last-Event-ID) even if it leaves before the first event.
    if (!start.resumed) absl::StrAppend(&head, "id: ", start.after, "\n\n");
    stream_at_ = start.after;
    stream_start_ = std::move(start);
    WatchPeer();
    WriteStream(std::move(head), /*last=*/false);
  }

  // WatchPeer: reads (and drops) what the client sends; its end ends the stream.
  void WatchPeer() {
    stream_.async_read_some(net::buffer(drain_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->Close();
                              self->WatchPeer();
                            });
  }

  void FetchEvents() {
    stream_busy_ = true;
    const HttpHandler* handler = server_->handler();
    Blocking([handler, start = *stream_start_,
              at = stream_at_] { return handler->ReadEventStream(start, at); },
             [this](EventChunk chunk) {
               if (state_ != State::kStreaming) return;
               stream_at_ = chunk.next;
               if (!chunk.text.empty())
                 return WriteStream(std::move(chunk.text), chunk.end);
               stream_busy_ = false;
               server_->WaitForEvents(shared_from_this(), id_, stream_at_);
               ArmHeartbeat();
             });
  }

  void ArmHeartbeat() {
    heartbeat_.expires_after(server_->options().events.heartbeat);
    heartbeat_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->state_ != State::kStreaming || self->stream_busy_) return;
      self->WriteStream(": heartbeat\n\n", /*last=*/false);
    });
  }

  // WriteStream sends `text`, then reads on (or, after the `last` text, closes).
  void WriteStream(std::string text, bool last) {
    stream_busy_ = true;
    out_ = std::move(text);
    write_timer_.expires_after(limits_.request_timeout);
    write_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;  // written in time
      if (HttpObserver* o = self->server_->observer()) o->OnRefused(Refusal::kSlowReader);
      self->Close();  // a reader that does not take what it is sent is cut off
    });
    net::async_write(stream_, net::buffer(out_),
                     [self = shared_from_this(), last](beast::error_code ec, size_t n) {
                       self->write_timer_.cancel();
                       self->streamed_ += n;
                       if (ec || last) return self->Close();
                       self->FetchEvents();
                     });
  }

  void ReadNext() {
    if (server_->stopping()) return Close();
    if (buffer_.size() > 0) return BeginRequest();  // a pipelined request is waiting
    state_ = State::kIdle;
    stream_.expires_after(limits_.idle_timeout);
    stream_.async_read_some(buffer_.prepare(std::min<size_t>(8192, buffer_.max_size())),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->OnFirstBytes(ec, n);
                            });
  }

  void OnFirstBytes(beast::error_code ec, size_t n) {
    if (ec) return Close();  // idle timeout, the client left, or the server stops
    buffer_.commit(n);
    BeginRequest();
  }

  void BeginRequest() {
    state_ = State::kReading;
    started_ = Clock::now();
    stream_.expires_after(limits_.request_timeout);
    parser_.emplace();
    ConfigureParser(*parser_, limits_);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              self->OnHeader(ec);
                            });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    const auto& req = parser_->get();
    method_ = std::string(req.method_string());
    const beast::string_view target = req.target();
    path_ = std::string(target.substr(0, target.find('?')));
    if (std::optional<Rejection> r = CheckHeader(*parser_, limits_)) {
      return Reject(r->why, r->status, r->message);
    }
    if (parser_->is_done()) return Dispatch();
    if (auto it = req.find(http::field::expect); it != req.end()) {
      if (!absl::EqualsIgnoreCase(absl::string_view(it->value().data(), it->value().size()),
                                  "100-continue")) {
        return Reject(Refusal::kExpect, SpecOf(Refusal::kExpect).status,
                      "only Expect: 100-continue is supported");
      }
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      return net::async_write(stream_, net::buffer(kContinue),
                              [self = shared_from_this()](beast::error_code ec, size_t) {
                                if (ec) return self->Close();
                                self->ReadBody();
                              });
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->OnReadError(ec);
                       self->Dispatch();
                     });
  }

  void OnReadError(beast::error_code ec) {
    if (std::optional<Rejection> r = RejectionForReadError(ec, *parser_, limits_)) {
      return Reject(r->why, r->status, r->message);
    }
    if (ec == beast::error::timeout) {
      if (HttpObserver* o = server_->observer()) o->OnRefused(Refusal::kRequestTimeout);
    }
    Close();  // timeout, the client left mid-request, or the server was killed
  }

  void Dispatch() {
    http::request<http::string_body> msg = parser_->release();
    parser_.reset();
    keep_alive_ = msg.keep_alive();
    http10_ = msg.version() == 10;
    head_ = msg.method() == http::verb::head;
    HttpRequest req = ToHttpRequest(std::move(msg));
    if (server_->log().json()) trace_id_ = TraceId(req.Header("traceparent"));
    state_ = State::kHandling;
    stream_.expires_never();  // the store bounds its own calls

    auto respond = [self = shared_from_this()](HttpResponse res) {
      net::post(self->stream_.get_executor(),
                [self, res = std::move(res)]() mutable { self->Respond(std::move(res)); });
    };
    if (path_ == "/metrics" && server_->options().metrics) return Respond(Metrics(req));
    if (auto it = server_->options().static_routes.find(path_);
        it != server_->options().static_routes.end()) {
      if (std::optional<HttpResponse> refused = RefusedMethod(req))
        return Respond(*std::move(refused));
      return Respond(it->second);
    }
    const HttpHandler* handler = server_->handler();
    if (handler == nullptr) return Respond(ErrorResponse(404, "no such route"));
    if (path_ == "/healthz") return Respond(handler->Handle(req));
    if (const RouteSpec* spec = RouteOf(path_);
        spec != nullptr && spec->route == Route::kEvents && req.method == "GET") {
      return OpenEvents(std::move(req));
    }
    if (path_ == "/readyz") {
      if (std::optional<HttpResponse> refused = RefusedMethod(req))
        return Respond(*std::move(refused));
      return server_->readiness().Check(std::move(respond));
    }
    net::thread_pool* pool = server_->pool();
    if (pool == nullptr) return Respond(handler->Handle(req));
    // A read the store has at hand is answered here, one a network store reads
    // asynchronously is answered when its answer arrives; only what may wait hops.
    bool started = false;
    if (std::optional<HttpResponse> now = handler->TryHandle(req, respond, &started)) {
      return Respond(*std::move(now));
    }
    if (started) return;
    if (HttpObserver* o = server_->observer()) o->OnHandedOff();
    net::post(*pool, [handler, req = std::move(req), respond = std::move(respond)] {
      respond(handler->Handle(req));
    });
  }

  // RefusedMethod: the 405 for a method the route of the request's path (one of the
  // server's own) does not allow.
  std::optional<HttpResponse> RefusedMethod(const HttpRequest& req) const {
    const RouteSpec* spec = RouteOf(path_);
    if (spec == nullptr || Allows(*spec, req.method)) return std::nullopt;
    return MethodNotAllowed(*spec, req.method);
  }

  HttpResponse Metrics(const HttpRequest& req) {
    if (std::optional<HttpResponse> refused = RefusedMethod(req))
      return *std::move(refused);
    if (server_->options().metrics_loopback_only && !loopback_ && !MetricsAllowed()) {
      return ErrorResponse(403, server_->options().metrics_allow.empty()
                                    ? "metrics are served to loopback clients only"
                                    : "metrics are served to loopback clients and the "
                                      "--metrics-allow networks only");
    }
    HttpResponse res;
    res.headers.emplace_back("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    res.body = server_->options().metrics();
    return res;
  }

  bool MetricsAllowed() const {
    for (const IpNetwork& n : server_->options().metrics_allow) {
      if (n.Contains(address_)) return true;
    }
    return false;
  }

  void Reject(Refusal why, int status, const std::string& message) {
    if (HttpObserver* o = server_->observer()) o->OnRefused(why);
    keep_alive_ = false;
    http10_ = false;
    head_ = false;
    if (method_.empty()) method_ = "-";
    if (path_.empty()) path_ = "-";
    if (started_ == Clock::time_point()) started_ = Clock::now();
    Respond(ErrorResponse(status, message));
  }

  void Respond(HttpResponse res) {
    if (state_ == State::kClosed) return;  // killed at the end of a shutdown's grace
    if (server_->stopping()) keep_alive_ = false;
    status_ = res.status;
    // Counted before the answer leaves, so a client that has read it sees it counted.
    if (HttpObserver* o = server_->observer()) {
      o->OnRequest(method_, path_, status_,
                   std::chrono::duration<double>(Clock::now() - started_).count());
    }
    out_ = Serialize(res, keep_alive_, http10_, head_);
    state_ = State::kWriting;
    stream_.expires_after(limits_.request_timeout);
    net::async_write(stream_, net::buffer(out_),
                     [self = shared_from_this()](beast::error_code ec, size_t n) {
                       self->OnWritten(ec, n);
                     });
  }

  void OnWritten(beast::error_code ec, size_t n) {
    if (server_->log().enabled()) {
      const int64_t micros =
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_).count();
      server_->log().Write({remote_, method_, path_, status_, micros, n, trace_id_});
    }
    method_.clear();
    trace_id_.clear();
    path_.clear();
    started_ = Clock::time_point();
    out_.clear();
    if (ec) return Close();
    if (!keep_alive_) return LingeringClose();
    ReadNext();
  }

  // LingeringClose: after an answer that ends the connection, stop sending, then read
  // and discard what the client still sends (bounded in bytes and time) so that its
  // unread request bytes do not turn the close into a reset that destroys the answer.
  void LingeringClose() {
    state_ = State::kClosing;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return Close();
    buffer_.consume(buffer_.size());
    stream_.expires_after(std::min<std::chrono::milliseconds>(limits_.request_timeout, kMaxDrainTime));
    Drain();
  }

  void Drain() {
    stream_.async_read_some(net::buffer(drain_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kMaxDrainBytes) return self->Close();
                              self->Drain();
                            });
  }

  void Close() {
    if (state_ == State::kClosed) return;
    if (state_ == State::kStreaming && server_->log().enabled()) {
      const int64_t micros =
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_)
              .count();
      server_->log().Write({remote_, method_, path_, status_, micros, streamed_, trace_id_});
    }
    state_ = State::kClosed;
    if (counted_stream_) {
      counted_stream_ = false;
      server_->ReleaseStream();
      server_->StopWaiting(id_);
    }
    heartbeat_.cancel();
    write_timer_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  HttpServer::Impl* const server_;
  const ServerLimits& limits_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const uint64_t id_;
  std::string remote_ = "-";
  std::string address_;  // the client's address alone
  bool loopback_ = false;
  State state_ = State::kIdle;
  Clock::time_point started_;
  std::string method_, path_;
  std::string trace_id_;  // of the request's traceparent, for the access log
  bool keep_alive_ = true, http10_ = false, head_ = false;
  int status_ = 0;
  std::string out_;
  std::array<char, 4096> drain_;
  size_t drained_ = 0;
  // An event stream's state (StartStream).
  std::optional<EventStreamStart> stream_start_;
  std::string stream_at_;     // the position the stream has sent up to
  bool stream_busy_ = false;  // a read of the feed or a write is under way
  bool counted_stream_ = false;
  size_t streamed_ = 0;  // bytes sent on the stream
  Timer heartbeat_{stream_.get_executor()};
  Timer write_timer_{stream_.get_executor()};

  friend class HttpServer::Impl;
};

void HttpServer::Impl::Stop(Connection& c) { c.Stop(); }
void HttpServer::Impl::Wake(Connection& c) { c.Wake(); }
void HttpServer::Impl::Kill(Connection& c) { c.Kill(); }

void HttpServer::Impl::PostToConnection(const std::shared_ptr<Connection>& c,
                                        void (*fn)(Connection&)) {
  net::post(c->stream_.get_executor(), [c, fn] { fn(*c); });
}

// Accept: the next connection goes to the next loop in turn, once per connection;
// from then on it never leaves that loop.
void HttpServer::Impl::Accept() {
  net::io_context& loop = loops_[next_loop_]->ioc;
  next_loop_ = (next_loop_ + 1) % loops_.size();
  acceptor_.async_accept(loop, [this](beast::error_code ec, Socket s) {
    OnAccept(ec, std::move(s));
  });
}

void HttpServer::Impl::OnAccept(beast::error_code ec, Socket socket) {
  if (stopping()) return;
  if (ec) {
    // Out of descriptors, say: the pending connection stays queued, so wait a moment
    // instead of spinning on it.
    accept_retry_.expires_after(std::chrono::milliseconds(50));
    accept_retry_.async_wait([this](beast::error_code ec) {
      if (!ec && !stopping()) Accept();
    });
    return;
  }
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  std::shared_ptr<Connection> connection;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (connections_.size() < limits_.max_connections) {
      const uint64_t id = next_id_++;
      connection = std::make_shared<Connection>(this, std::move(socket), id);
      connections_.emplace(id, connection);
    }
  }
  if (connection) {
    net::post(connection->stream_.get_executor(), [connection] { connection->Start(); });
  } else {
    Refuse(socket);
  }
  Accept();
}

// Refuse: over the connection cap, a short answer, best effort, without waiting.
void HttpServer::Impl::Refuse(Socket& socket) {
  if (options_.observer != nullptr) options_.observer->OnRefused(Refusal::kConnections);
  const std::string busy = Serialize(
      ErrorResponse(SpecOf(Refusal::kConnections).status,
                    absl::StrCat("server is at its limit of ", limits_.max_connections,
                                 " open connections; retry later")),
      false, false, false);
  beast::error_code ignored;
  socket.non_blocking(true, ignored);
  socket.write_some(net::buffer(busy), ignored);
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

HttpServer::HttpServer(const HttpHandler* handler, ReadinessCheck readiness, AccessLog* log,
                       HttpServerOptions options)
    : impl_(std::make_shared<Impl>(handler, std::move(readiness), log, std::move(options))) {}

HttpServer::~HttpServer() = default;

absl::StatusOr<int> HttpServer::Bind() { return impl_->Bind(); }
void HttpServer::Run() { impl_->Run(); }
void HttpServer::Shutdown(std::chrono::milliseconds grace) { impl_->Shutdown(grace); }

}  // namespace sessionctx::apps
