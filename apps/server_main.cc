// sessionctx-server: the full Session Context API over HTTP.
//
// The HTTP layer is apps/http_server.h (Boost.Beast over Asio); it hands each request
// to the library's HttpHandler. Everything here is flags and lifecycle.
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "apps/access_log.h"
#include "apps/flags.h"
#include "apps/http_server.h"
#include "apps/key_file.h"
#include "apps/openapi.h"
#include "apps/server_config.h"
#include "apps/server_metrics.h"
#include "prometheus/registry.h"
#include "sessionctx/http_handler.h"
#include "sessionctx/metrics_store.h"
#include "sessionctx/session_service.h"
#include "sessionctx/session_store.h"
#include "sessionctx/store_factory.h"
#include "sessionctx/jwt.h"

namespace sessionctx::apps {
namespace {

constexpr char kUsage[] = R"(usage: sessionctx-server [flags]
  --listen HOST:PORT          default 127.0.0.1:8080 (port 0 picks a free one)
  --store URI                 default rocksdb:./data/sessions (also memory:, postgresql://…)
  --jwt-secret-file FILE      HS256 shared secret (the file's bytes, trailing newline stripped)
  --jwt-public-key-file FILE  PEM public key: RSA for RS256, P-256 for ES256
  --jwks-file FILE            JSON Web Key Set (RSA, P-256, oct keys), chosen by the
                              token's kid; an unknown kid is refused (401)
  --key-reload-interval SECS  the key file is re-read on SIGHUP and, when it changed,
                              within about twice this time; default 1, 0 = SIGHUP only
  --jwt-issuer ISS            when given, a token's iss must equal it
  --jwt-audience AUD          when given, a token's aud must name it
  --config FILE               JSON: per-tenant defaults, claim names, leeway
  --anonymous-ttl SECONDS     default 3600
  --purge-interval SECONDS    purge expired sessions this often; default 300, 0 = never
  --access-log FORMAT         off, text (default: METHOD PATH STATUS MICROSus) or json
  --metrics-listen WHERE      where GET /metrics answers: "main" (default: the main port,
                              loopback clients only) or HOST:PORT (a listener of its own)

threads:
  --io-threads N              event-loop threads; default: one per core
  --threads N                 threads for requests that reach the store; 0 = on the
                              event-loop threads (only for a store that never blocks).
                              Default by store: memory: 0, rocksdb: 2 per core,
                              postgresql: 16

request limits (checked while reading; over a limit the answer says which):
  --max-body BYTES            request body, chunked included; default 65536 (413)
  --max-header-bytes BYTES    request header fields; default 16384 (431)
  --max-headers N             request header fields; default 100 (431)
  --max-url BYTES             request target; default 8192 (414)
  --request-timeout SECONDS   to send one request's header and body; default 10
  --idle-timeout SECONDS      keep-alive connection without a request; default 60
  --max-connections N         open connections; default 10000 (503 beyond)
  --shutdown-grace SECONDS    on SIGTERM/SIGINT, time left to requests in flight; default 10
)";

// DefaultHandlerThreads: where requests that reach the store run, by backend.
// memory: never blocks (a shard lock held for a copy), so its requests run on the
// I/O threads: a hop to another thread would cost more than the call. rocksdb: calls
// are short and CPU-bound, but a write stall or a cold read can block, so they get a
// small pool (more threads than cores only add wake-ups). postgresql: calls wait on
// the network: enough threads to keep the store's connection pool busy.
int64_t DefaultHandlerThreads(const std::string& store_uri, unsigned cores) {
  const std::string backend = StoreBackendName(store_uri);
  if (backend == "memory") return 0;
  if (backend == "rocksdb") return 2 * static_cast<int64_t>(cores);
  return 16;
}

// --- lifecycle ------------------------------------------------------------------

// RaiseDescriptorLimit lifts the soft limit on open files to the hard one, so that
// --max-connections is not cut short by a default of 1024.
void RaiseDescriptorLimit(size_t connections) {
  rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < connections + 64) {
    std::fprintf(stderr,
                 "sessionctx-server: open-file limit %llu is below --max-connections %zu; "
                 "connections beyond it wait in the listen queue\n",
                 static_cast<unsigned long long>(lim.rlim_cur), connections);
  }
}

// DevelopmentSecret returns the development HS256 secret at `path`, making one when
// there is none: created with mode 0600 in one step (never readable by others, not
// even for a moment), and refused when an existing one is readable by group or others.
absl::StatusOr<std::string> DevelopmentSecret(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, " is readable by group or others; chmod 600 it (or delete it to get a new one)"));
    }
    std::optional<std::string> existing = ReadFile(path);
    if (!existing) return absl::FailedPreconditionError("cannot read " + path);
    return StripTrailingNewline(*existing);
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::random_device rd;
  std::string secret;
  for (int i = 0; i < 32; ++i) absl::StrAppend(&secret, absl::Hex(rd() & 0xff, absl::kZeroPad2));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return absl::FailedPreconditionError("cannot create " + path);
  const std::string text = secret + "\n";
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!written) return absl::FailedPreconditionError("cannot write " + path);
  return secret;
}

void ReportReload(const std::string& path, const absl::Status& status) {
  if (status.ok()) {
    std::printf("sessionctx-server: keys reloaded from %s\n", path.c_str());
  } else {
    std::printf("sessionctx-server: keys NOT reloaded (the keys in use stay): %s\n",
                std::string(status.message()).c_str());
  }
  std::fflush(stdout);
}

// StoreErrorLog writes store failures to stderr: a message is written once, and again
// at most once a minute while it repeats (with how many were not written).
class StoreErrorLog {
 public:
  void Report(const absl::Status& st) {
    const std::string text = st.ToString();
    const absl::Time now = absl::Now();
    std::lock_guard<std::mutex> lock(mu_);
    if (text == last_ && now - written_at_ < absl::Minutes(1)) {
      ++suppressed_;
      return;
    }
    if (suppressed_ > 0) {
      std::fprintf(stderr, "sessionctx-server: store error (%lld more like the last)\n",
                   static_cast<long long>(suppressed_));
    }
    std::fprintf(stderr, "sessionctx-server: store error: %s\n", text.c_str());
    last_ = text;
    written_at_ = now;
    suppressed_ = 0;
  }

 private:
  std::mutex mu_;
  std::string last_;       // guarded by mu_
  absl::Time written_at_;  // guarded by mu_
  int64_t suppressed_ = 0; // guarded by mu_
};

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
  sigaddset(&signals, SIGHUP);
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
  const std::optional<std::string> jwks_file = flags.Get("jwks-file");
  const std::optional<std::string> jwt_issuer = flags.Get("jwt-issuer");
  const std::optional<std::string> jwt_audience = flags.Get("jwt-audience");
  const std::optional<std::string> config_file = flags.Get("config");
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  int64_t ttl = 3600, purge_interval = 300, io_threads = cores, threads = -1;
  ServerLimits limits;
  int64_t max_body = static_cast<int64_t>(limits.max_body_bytes),
          max_header_bytes = static_cast<int64_t>(limits.max_header_bytes),
          max_headers = static_cast<int64_t>(limits.max_header_count),
          max_url = static_cast<int64_t>(limits.max_url_bytes),
          max_connections = static_cast<int64_t>(limits.max_connections);
  for (auto [name, out] : {std::pair{"anonymous-ttl", &ttl}, std::pair{"max-body", &max_body},
                           std::pair{"purge-interval", &purge_interval},
                           std::pair{"threads", &threads}, std::pair{"io-threads", &io_threads},
                           std::pair{"max-header-bytes", &max_header_bytes},
                           std::pair{"max-headers", &max_headers}, std::pair{"max-url", &max_url},
                           std::pair{"max-connections", &max_connections}}) {
    if (std::optional<std::string> v = flags.Get(name)) {
      if (!absl::SimpleAtoi(*v, out) || *out < 0) {
        return Fail(absl::StrCat("--", name, " must be a non-negative integer"));
      }
    }
  }
  if (threads < 0) threads = DefaultHandlerThreads(store_uri, cores);
  if (io_threads < 1 || max_connections < 1 || max_url < 1 || max_header_bytes < 1 ||
      max_headers < 1) {
    return Fail("--io-threads, --max-connections, --max-url, --max-header-bytes and "
                "--max-headers must be at least 1");
  }
  std::chrono::milliseconds request_timeout = limits.request_timeout,
                            idle_timeout = limits.idle_timeout, shutdown_grace{10'000},
                            key_reload_interval{1'000};
  for (auto [name, out] : {std::pair{"request-timeout", &request_timeout},
                           std::pair{"idle-timeout", &idle_timeout},
                           std::pair{"shutdown-grace", &shutdown_grace},
                           std::pair{"key-reload-interval", &key_reload_interval}}) {
    if (std::optional<std::string> v = flags.Get(name)) {
      double seconds = 0;
      const bool zero_ok = out == &key_reload_interval;
      if (!absl::SimpleAtod(*v, &seconds) || !(seconds > 0 || (zero_ok && seconds == 0)) ||
          seconds > 1e6) {
        return Fail(absl::StrCat("--", name, " must be a ", zero_ok ? "non-negative" : "positive",
                                 " number of seconds"));
      }
      *out = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(seconds * 1000)));
    }
  }
  const std::optional<AccessLogFormat> log_format =
      ParseAccessLogFormat(flags.Get("access-log", "text"));
  if (!log_format) return Fail("--access-log must be off, text or json");
  const std::string metrics_listen = flags.Get("metrics-listen", "main");
  std::string metrics_host;
  int metrics_port = -1;  // -1: on the main port
  if (metrics_listen != "main") {
    const size_t at = metrics_listen.rfind(':');
    if (at == std::string::npos || !absl::SimpleAtoi(metrics_listen.substr(at + 1), &metrics_port) ||
        metrics_port < 0 || metrics_port > 65535) {
      return Fail("--metrics-listen must be main or HOST:PORT, e.g. 127.0.0.1:9464");
    }
    metrics_host = metrics_listen.substr(0, at);
  }
  if (std::optional<std::string> unknown = flags.Unknown()) {
    return Fail("unknown flag --" + *unknown + "\n" + kUsage);
  }
  if (int(secret_file.has_value()) + int(public_key_file.has_value()) +
          int(jwks_file.has_value()) > 1) {
    return Fail("give one of --jwt-secret-file, --jwt-public-key-file and --jwks-file");
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
  jwt_options.issuer = jwt_issuer;
  jwt_options.audience = jwt_audience;
  if (config_file) {
    std::optional<std::string> text = ReadFile(*config_file);
    if (!text) return Fail("cannot read --config " + *config_file);
    if (absl::Status st = ApplyConfig(*text, service_options, jwt_options); !st.ok()) {
      return Fail(absl::StrCat("config ", *config_file, ": ", st.message()));
    }
  }

  KeyFile key_file;
  if (jwks_file) {
    key_file = {KeyFile::Kind::kJwks, *jwks_file};
  } else if (public_key_file) {
    key_file = {KeyFile::Kind::kPublicKey, *public_key_file};
  } else if (secret_file) {
    key_file = {KeyFile::Kind::kSecret, *secret_file};
  } else {
    key_file = {KeyFile::Kind::kSecret, "./data/dev-jwt-secret"};
    absl::StatusOr<std::string> secret = DevelopmentSecret(key_file.path);
    if (!secret.ok()) return Fail(std::string(secret.status().message()));
    std::printf(
        "sessionctx-server: no key given; using the development HS256 secret in %s\n"
        "  mint a token: sessionctl token --secret-file %s --tenant acme --session s1\n",
        key_file.path.c_str(), key_file.path.c_str());
  }
  std::string key_warning;
  // Stat'ed before the read, so that a rotation landing in between is reloaded.
  const std::optional<KeyReloader::Version> key_version = KeyReloader::StatFile(key_file.path);
  absl::StatusOr<std::unique_ptr<TokenVerifier>> loaded =
      LoadVerifier(key_file, jwt_options, &key_warning);
  if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
  if (!key_warning.empty()) std::fprintf(stderr, "sessionctx-server: warning: %s\n", key_warning.c_str());
  SwappableVerifier verifier(*std::move(loaded));
  KeyReloader key_reloader(key_file, jwt_options, &verifier, key_version);


  StoreOptions store_options;
  absl::StatusOr<std::unique_ptr<SessionStore>> store = OpenSessionStore(store_uri, store_options);
  if (!store.ok()) {
    return Fail(absl::StrCat("cannot open store ", store_uri, ": ", store.status().message()));
  }
  // Every store call is counted and timed (sessionctx::metrics).
  prometheus::Registry registry;
  MetricsStore metered(store->get(), StoreBackendName(store_uri), registry);
  ServerMetrics server_metrics(registry, [&metered] { metered.RefreshStats(); });
  SessionService service(&metered, service_options);
  HandlerOptions handler_options;
  handler_options.max_body_bytes = static_cast<size_t>(max_body);
  // A store failure's detail goes to the log, never to the client: a message repeats
  // at most once a minute, so a failing store cannot flood the log.
  StoreErrorLog store_error_log;
  handler_options.store_error_log = [&store_error_log](const absl::Status& st) {
    store_error_log.Report(st);
  };
  const HttpHandler handler(&service, &verifier, handler_options);


  limits.max_body_bytes = static_cast<size_t>(max_body);
  limits.max_header_bytes = static_cast<size_t>(max_header_bytes);
  limits.max_header_count = static_cast<size_t>(max_headers);
  limits.max_url_bytes = static_cast<size_t>(max_url);
  limits.max_connections = static_cast<size_t>(max_connections);
  limits.request_timeout = request_timeout;
  limits.idle_timeout = idle_timeout;
  RaiseDescriptorLimit(limits.max_connections);

  HttpServerOptions server_options;
  server_options.host = host;
  server_options.port = port;
  server_options.io_threads = static_cast<int>(io_threads);
  server_options.handler_threads = static_cast<int>(threads);
  server_options.limits = limits;
  server_options.observer = &server_metrics;
  HttpResponse openapi;
  openapi.headers.emplace_back("Content-Type", "application/json");
  openapi.body = kOpenApiJson;
  server_options.static_routes.emplace("/openapi.json", std::move(openapi));
  if (metrics_port < 0) server_options.metrics = [&server_metrics] { return server_metrics.Scrape(); };
  AccessLog access_log(*log_format, stdout);
  SessionStore* const raw_store = store->get();
  HttpServer server(&handler, [raw_store] { return raw_store->Ready(); }, &access_log,
                    server_options);
  absl::StatusOr<int> bound = server.Bind();
  if (!bound.ok()) return Fail(std::string(bound.status().message()));
  std::printf("sessionctx-server: listening on %s:%d (store %s, %lld I/O threads, %lld handler "
              "threads)\n",
              host.c_str(), *bound, store_uri.c_str(), static_cast<long long>(io_threads),
              static_cast<long long>(threads));
  std::optional<HttpServer> metrics_server;
  if (metrics_port >= 0) {
    HttpServerOptions options;
    options.host = metrics_host;
    options.port = metrics_port;
    options.handler_threads = 0;
    options.metrics = [&server_metrics] { return server_metrics.Scrape(); };
    options.metrics_loopback_only = false;  // whoever reaches this listener may scrape
    metrics_server.emplace(nullptr, nullptr, &access_log, options);
    absl::StatusOr<int> metrics_bound = metrics_server->Bind();
    if (!metrics_bound.ok()) return Fail(std::string(metrics_bound.status().message()));
    std::printf("sessionctx-server: metrics on %s:%d\n", metrics_host.c_str(), *metrics_bound);
  }
  std::fflush(stdout);

  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;
  std::thread signal_waiter([&] {
    int sig = 0;
    while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
      ReportReload(key_reloader.file().path, key_reloader.Reload());
    }
    std::printf("sessionctx-server: signal %d, shutting down (grace %llds)\n", sig,
                static_cast<long long>(shutdown_grace.count() / 1000));
    std::fflush(stdout);
    {
      std::lock_guard<std::mutex> lock(stop_mu);
      stopping = true;
    }
    stop_cv.notify_all();
    server.Shutdown(shutdown_grace);
    if (metrics_server) metrics_server->Shutdown(shutdown_grace);
  });
  std::thread purger([&] {
    if (purge_interval == 0) return;
    std::unique_lock<std::mutex> lock(stop_mu);
    while (!stop_cv.wait_for(lock, std::chrono::seconds(purge_interval), [&] { return stopping; })) {
      lock.unlock();
      absl::StatusOr<int64_t> purged = service.PurgeExpired();
      server_metrics.OnPurge(purged.ok(), purged.value_or(0));
      if (!purged.ok()) {
        std::fprintf(stderr, "sessionctx-server: purge failed: %s\n",
                     std::string(purged.status().message()).c_str());
      }
      lock.lock();
    }
  });

  std::thread key_watcher([&] {
    if (key_reload_interval.count() == 0) return;
    std::unique_lock<std::mutex> lock(stop_mu);
    while (!stop_cv.wait_for(lock, key_reload_interval, [&] { return stopping; })) {
      lock.unlock();
      if (std::optional<absl::Status> st = key_reloader.ReloadIfChanged()) {
        ReportReload(key_reloader.file().path, *st);
      }
      lock.lock();
    }
  });
  std::thread metrics_runner([&] {
    if (metrics_server) metrics_server->Run();
  });
  server.Run();  // returns once a signal stopped it and every connection is done
  metrics_runner.join();
  signal_waiter.join();
  purger.join();
  key_watcher.join();
  store->reset();  // close the store: flushes what it buffers
  std::printf("sessionctx-server: stopped\n");
  return 0;
}

}  // namespace
}  // namespace sessionctx::apps

int main(int argc, char** argv) { return sessionctx::apps::Main(argc, argv); }
