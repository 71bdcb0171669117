// What the framework adapters in examples/ share, so that each adapter file holds only
// what its framework does differently: the handler over a memory store, built from the
// command line (PORT SECRET_FILE, the HS256 secret), the stop signals, a few threads
// for the frameworks whose callbacks run on an event loop, and the one rule every
// adapter applies when it writes an answer (no body after HEAD, 204 or 304).
//
//   int main(int argc, char** argv) {
//     std::unique_ptr<example::App> app = example::Start(argc, argv, "my_server");
//     if (!app) return 2;
//     …start the framework on app->port, calling app->handler->Handle…
//     example::Listening(app->port);
//     example::WaitForStop();
//     …stop the framework…
//   }
#ifndef SESSIONCTX_EXAMPLES_EXAMPLE_APP_H_
#define SESSIONCTX_EXAMPLES_EXAMPLE_APP_H_

#include <signal.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sessionctx/http_handler.h"
#include "sessionctx/jwt.h"
#include "sessionctx/memory_store.h"
#include "sessionctx/session_service.h"

namespace example {

// App: a store, the service over it, a verifier and the handler. Declared in the
// order they are built: the handler is destroyed first.
struct App {
  int port = 0;
  std::unique_ptr<sessionctx::SessionStore> store;
  std::unique_ptr<sessionctx::SessionService> service;
  std::unique_ptr<sessionctx::TokenVerifier> verifier;
  sessionctx::HandlerOptions options;  // options.max_body_bytes: the body limit
  std::unique_ptr<sessionctx::HttpHandler> handler;
};

// Start blocks SIGINT and SIGTERM in the calling thread — every thread started later
// inherits that, so that WaitForStop alone takes them — and builds the App from
// `PORT SECRET_FILE`. nullptr (with a message) on misuse.
inline std::unique_ptr<App> Start(int argc, char** argv, const char* name) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PORT SECRET_FILE\n", name);
    return nullptr;
  }
  std::ifstream secret_in(argv[2]);
  std::stringstream secret;
  secret << secret_in.rdbuf();
  std::string key = secret.str();
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();

  // [embed:handler-setup]
  auto app = std::make_unique<App>();
  app->port = std::atoi(argv[1]);
  app->store = sessionctx::NewMemoryStore(sessionctx::StoreOptions{});
  app->service = std::make_unique<sessionctx::SessionService>(
      app->store.get(), sessionctx::ServiceOptions{});
  absl::StatusOr<std::unique_ptr<sessionctx::TokenVerifier>> verifier =
      sessionctx::NewHs256Verifier(key, sessionctx::JwtOptions{});
  if (!verifier.ok()) {
    std::fprintf(stderr, "%s: %s\n", name, verifier.status().ToString().c_str());
    return nullptr;
  }
  app->verifier = std::move(*verifier);
  app->handler = std::make_unique<sessionctx::HttpHandler>(
      app->service.get(), app->verifier.get(), app->options);
  // [end:handler-setup]
  return app;
}

// Listening says where the server listens (the end-to-end test waits for this line).
inline void Listening(int port) {
  std::printf("listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
}

// WaitForStop returns once SIGINT or SIGTERM arrives (blocked by Start).
inline void WaitForStop() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  int sig = 0;
  sigwait(&stop, &sig);
}

// HasBody: whether an answer to `method` with `status` carries a body on the wire.
// HEAD gets the headers of the GET it stands for, Content-Length included, no body.
inline bool HasBody(const std::string& method, int status) {
  return method != "HEAD" && status != 204 && status != 304 && status >= 200;
}

// WorkerPool: a few threads that run the handler off a framework's event-loop
// thread, where a store that blocks (a RocksDB write stall, a database round trip)
// would stall every connection of that loop.
class WorkerPool {
 public:
  explicit WorkerPool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~WorkerPool() { Stop(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Post runs `task` on a thread of the pool; once the pool is stopping, at once on
  // the caller's thread (a request that arrives during a stop is still answered).
  void Post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!stopping_) {
        tasks_.push_back(std::move(task));
        ready_.notify_one();
        return;
      }
    }
    task();
  }

  // Stop runs what was posted, then joins the threads.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void Run() {
    while (true) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        ready_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty()) return;  // stopping, and nothing left
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace example

#endif  // SESSIONCTX_EXAMPLES_EXAMPLE_APP_H_
