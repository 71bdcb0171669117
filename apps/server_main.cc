// sessionctx-server: the full Session Context API over HTTP.
//
// The part that embeds the library is the adapter below (ToRequest / Serve): copy
// method, target, headers and body into an HttpRequest, call HttpHandler::Handle, copy
// the HttpResponse back. Everything else is flags and lifecycle.
#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "apps/flags.h"
#include "apps/server_config.h"
#include "sessionctx/http_handler.h"
#include "sessionctx/session_service.h"
#include "sessionctx/session_store.h"
#include "sessionctx/token_verifier.h"

namespace sessionctx::apps {
namespace {

constexpr char kUsage[] = R"(usage: sessionctx-server [flags]
  --listen HOST:PORT          default 127.0.0.1:8080 (port 0 picks a free one)
  --store URI                 default rocksdb:./data/sessions (also memory:, postgresql://…)
  --jwt-secret-file FILE      HS256 shared secret (the file's bytes, trailing newline stripped)
  --jwt-public-key-file FILE  PEM public key: RSA for RS256, P-256 for ES256
  --config FILE               JSON: per-tenant defaults, claim names, leeway
  --anonymous-ttl SECONDS     default 3600
  --max-body BYTES            default 65536
  --purge-interval SECONDS    purge expired sessions this often; default 300, 0 = never
  --threads N                 worker threads; default: 8 per core, at least 16
)";

// --- the adapter: cpp-httplib <-> HttpHandler ------------------------------------

HttpRequest ToRequest(const httplib::Request& in) {
  HttpRequest out;
  out.method = in.method;
  out.target = in.target;  // raw: the handler percent-decodes path segments itself
  for (const auto& [name, value] : in.headers) out.headers.emplace_back(name, value);
  out.body = in.body;
  return out;
}

void Serve(const HttpHandler& handler, const httplib::Request& in, httplib::Response& out) {
  HttpResponse res = handler.Handle(ToRequest(in));
  out.status = res.status;
  std::string content_type = "application/json";
  for (auto& [name, value] : res.headers) {
    if (name == "Content-Type") {
      content_type = value;
    } else {
      out.set_header(name, value);
    }
  }
  if (!res.body.empty()) out.set_content(res.body, content_type);
}

// --- lifecycle ------------------------------------------------------------------

thread_local std::chrono::steady_clock::time_point request_start;

std::string DevelopmentSecret(const std::string& path) {
  if (std::optional<std::string> existing = ReadFile(path)) {
    return StripTrailingNewline(*existing);
  }
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::random_device rd;
  std::string secret;
  for (int i = 0; i < 32; ++i) absl::StrAppend(&secret, absl::Hex(rd() & 0xff, absl::kZeroPad2));
  std::ofstream(path) << secret << "\n";
  std::filesystem::permissions(path, std::filesystem::perms::owner_read |
                                         std::filesystem::perms::owner_write);
  return secret;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "sessionctx-server: %s\n", message.c_str());
  return 2;
}

int Main(int argc, char** argv) {
  // Signals go to one waiting thread, which stops the server. Blocked first, before
  // any thread exists (the store starts its own), so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Flags flags;
  if (std::string err = flags.Parse(argc, argv, 1, {"help"}); !err.empty()) return Fail(err);
  if (flags.Has("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const std::string listen = flags.Get("listen", "127.0.0.1:8080");
  const std::string store_uri = flags.Get("store", "rocksdb:./data/sessions");
  const std::optional<std::string> secret_file = flags.Get("jwt-secret-file");
  const std::optional<std::string> public_key_file = flags.Get("jwt-public-key-file");
  const std::optional<std::string> config_file = flags.Get("config");
  int64_t ttl = 3600, max_body = 65536, purge_interval = 300, threads = 0;
  for (auto [name, out] : {std::pair{"anonymous-ttl", &ttl}, std::pair{"max-body", &max_body},
                           std::pair{"purge-interval", &purge_interval},
                           std::pair{"threads", &threads}}) {
    if (std::optional<std::string> v = flags.Get(name)) {
      if (!absl::SimpleAtoi(*v, out) || *out < 0) {
        return Fail(absl::StrCat("--", name, " must be a non-negative integer"));
      }
    }
  }
  if (std::optional<std::string> unknown = flags.Unknown()) {
    return Fail("unknown flag --" + *unknown + "\n" + kUsage);
  }
  if (secret_file && public_key_file) {
    return Fail("give --jwt-secret-file or --jwt-public-key-file, not both");
  }
  const size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return Fail("--listen must be HOST:PORT, e.g. 127.0.0.1:8080");
  }
  const std::string host = listen.substr(0, colon);

  ServiceOptions service_options;
  service_options.anonymous_ttl = absl::Seconds(ttl);
  JwtOptions jwt_options;
  if (config_file) {
    std::optional<std::string> text = ReadFile(*config_file);
    if (!text) return Fail("cannot read --config " + *config_file);
    if (absl::Status st = ApplyConfig(*text, service_options, jwt_options); !st.ok()) {
      return Fail(absl::StrCat("config ", *config_file, ": ", st.message()));
    }
  }

  absl::StatusOr<std::unique_ptr<TokenVerifier>> verifier;
  if (public_key_file) {
    std::optional<std::string> pem = ReadFile(*public_key_file);
    if (!pem) return Fail("cannot read --jwt-public-key-file " + *public_key_file);
    verifier = NewPublicKeyVerifier(*pem, jwt_options);
  } else if (secret_file) {
    std::optional<std::string> secret = ReadFile(*secret_file);
    if (!secret) return Fail("cannot read --jwt-secret-file " + *secret_file);
    verifier = NewHs256Verifier(StripTrailingNewline(*secret), jwt_options);
  } else {
    const std::string path = "./data/dev-jwt-secret";
    verifier = NewHs256Verifier(DevelopmentSecret(path), jwt_options);
    std::printf(
        "sessionctx-server: no key given; using the development HS256 secret in %s\n"
        "  mint a token: sessionctl token --secret-file %s --tenant acme --session s1\n",
        path.c_str(), path.c_str());
  }
  if (!verifier.ok()) return Fail(std::string(verifier.status().message()));

  StoreOptions store_options;
  absl::StatusOr<std::unique_ptr<SessionStore>> store = OpenSessionStore(store_uri, store_options);
  if (!store.ok()) {
    return Fail(absl::StrCat("cannot open store ", store_uri, ": ", store.status().message()));
  }
  SessionService service(store->get(), service_options);
  HandlerOptions handler_options;
  handler_options.max_body_bytes = static_cast<size_t>(max_body);
  const HttpHandler handler(&service, verifier->get(), handler_options);


  httplib::Server server;
  const size_t workers =
      threads > 0 ? static_cast<size_t>(threads)
                  : std::max<size_t>(16, 8 * std::max(1u, std::thread::hardware_concurrency()));
  server.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  server.set_payload_max_length(static_cast<size_t>(max_body));
  server.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    request_start = std::chrono::steady_clock::now();
    return httplib::Server::HandlerResponse::Unhandled;
  });
  auto serve = [&handler](const httplib::Request& in, httplib::Response& out) {
    Serve(handler, in, out);
  };
  server.Get(".*", serve);
  server.Post(".*", serve);
  server.Put(".*", serve);
  server.Patch(".*", serve);
  server.Delete(".*", serve);
  server.Options(".*", serve);
  // Errors cpp-httplib raises itself (413 over --max-body, 400 on a bad request line)
  // get the same JSON body as the handler's.
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request&, httplib::Response& out) {
        if (!out.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        const std::string why = out.status == 413
                                    ? "request body is over the configured limit"
                                    : absl::StrCat("request refused with status ", out.status);
        HttpResponse err = ErrorResponse(out.status, why);
        out.set_content(err.body, "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }));
  std::mutex log_mu;
  server.set_logger([&log_mu](const httplib::Request& in, const httplib::Response& out) {
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - request_start)
                            .count();
    const std::string path = in.target.substr(0, in.target.find('?'));
    std::lock_guard<std::mutex> lock(log_mu);
    std::fprintf(stdout, "%s %s %d %lldus\n", in.method.c_str(), path.c_str(), out.status,
                 static_cast<long long>(micros));
    std::fflush(stdout);
  });

  const int bound = port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
  if (bound < 0) return Fail("cannot listen on " + listen);
  std::printf("sessionctx-server: listening on %s:%d (store %s, %zu workers)\n", host.c_str(),
              bound, store_uri.c_str(), workers);
  std::fflush(stdout);

  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;
  std::thread signal_waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::printf("sessionctx-server: signal %d, shutting down\n", sig);
    std::fflush(stdout);
    {
      std::lock_guard<std::mutex> lock(stop_mu);
      stopping = true;
    }
    stop_cv.notify_all();
    server.stop();
  });
  std::thread purger([&] {
    if (purge_interval == 0) return;
    std::unique_lock<std::mutex> lock(stop_mu);
    while (!stop_cv.wait_for(lock, std::chrono::seconds(purge_interval), [&] { return stopping; })) {
      lock.unlock();
      absl::StatusOr<int64_t> purged = service.PurgeExpired();
      if (!purged.ok()) {
        std::fprintf(stderr, "sessionctx-server: purge failed: %s\n",
                     std::string(purged.status().message()).c_str());
      }
      lock.lock();
    }
  });

  const bool ok = server.listen_after_bind();
  if (!ok && !stopping) {
    // listen failed on its own: wake the signal thread so it can end.
    pthread_kill(signal_waiter.native_handle(), SIGTERM);
  }
  signal_waiter.join();
  purger.join();
  store->reset();  // close the store: flushes what it buffers
  std::printf("sessionctx-server: stopped\n");
  return 0;
}

}  // namespace
}  // namespace sessionctx::apps

int main(int argc, char** argv) { return sessionctx::apps::Main(argc, argv); }
