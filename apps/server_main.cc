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

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "apps/access_log.h"
#include "apps/cpu_count.h"
#include "apps/flags.h"
#include "apps/http_server.h"
#include "apps/key_file.h"
#include "apps/openapi.h"
#include "apps/server_config.h"
#include "apps/server_flags.h"
#include "apps/server_log.h"
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

// Log: the server's own messages (--log-format).
ServerLog& Log() { return ProcessLog(); }

// DefaultHandlerThreads: where requests that reach the store run, by backend.
// memory: never blocks (a shard lock held for a copy), so its requests run on the
// I/O threads: a hop to another thread would cost more than the call. rocksdb: calls
// are short and CPU-bound, but a write stall or a cold read can block, so they get a
// small pool (more threads than cores only add wake-ups). postgresql: and redis:
// calls wait on the network: enough threads to keep the store's connection pool busy.
int64_t DefaultHandlerThreads(const std::string& store_uri, int cores) {
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
    Log().Warning(absl::StrCat("open-file limit ", static_cast<uint64_t>(lim.rlim_cur),
                               " is below --max-connections ", connections,
                               "; connections beyond it wait in the listen queue"));
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
    Log().Info("keys reloaded from " + path);
  } else {
    Log().Warning(absl::StrCat("keys NOT reloaded (the keys in use stay): ", status.message()));
  }
}

// StoreErrorLog writes store failures to stderr: a message is written once, and again
// at most once a minute while it repeats (with how many were not written).
class StoreErrorLog {
 public:
  void Report(const absl::Status& st, absl::string_view trace_id) {
    const std::string text = st.ToString();
    const absl::Time now = absl::Now();
    std::lock_guard<std::mutex> lock(mu_);
    if (text == last_ && now - written_at_ < absl::Minutes(1)) {
      ++suppressed_;
      return;
    }
    if (suppressed_ > 0) {
      Log().Error(absl::StrCat("store error (", suppressed_, " more like the last)"));
    }
    Log().Write(LogLevel::kError, "store error: " + text,
                std::string_view(trace_id.data(), trace_id.size()));
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
  Log().Error(message);
  return 2;
}

// KeyFileOf: the key file the flags name, or the development secret (made when
// missing, with a hint printed on how to mint a token).
absl::StatusOr<KeyFile> KeyFileOf(const ServerFlags& flags) {
  if (flags.jwks_file) return KeyFile{KeyFile::Kind::kJwks, *flags.jwks_file};
  if (flags.jwt_public_key_file) return KeyFile{KeyFile::Kind::kPublicKey, *flags.jwt_public_key_file};
  if (flags.jwt_secret_file) return KeyFile{KeyFile::Kind::kSecret, *flags.jwt_secret_file};
  KeyFile file{KeyFile::Kind::kSecret, "./data/dev-jwt-secret"};
  absl::StatusOr<std::string> secret = DevelopmentSecret(file.path);
  if (!secret.ok()) return secret.status();
  Log().Info(absl::StrCat("no key given; using the development HS256 secret in ", file.path,
                          "; mint a token: sessionctl token --secret-file ", file.path,
                          " --tenant acme --session s1"));
  return file;
}

// Keys: the token verifier in use and what reloads it.
struct Keys {
  Keys(std::unique_ptr<TokenVerifier> loaded, const KeyFile& file, const JwtOptions& options,
       std::optional<KeyReloader::Version> version)
      : verifier(std::move(loaded)), reloader(file, options, &verifier, version) {}
  SwappableVerifier verifier;
  KeyReloader reloader;
};

absl::StatusOr<std::unique_ptr<Keys>> LoadKeys(const ServerFlags& flags, const JwtOptions& options) {
  absl::StatusOr<KeyFile> file = KeyFileOf(flags);
  if (!file.ok()) return file.status();
  // Stat'ed before the read, so that a rotation landing in between is reloaded.
  const std::optional<KeyReloader::Version> version = KeyReloader::StatFile(file->path);
  std::string warning;
  absl::StatusOr<std::unique_ptr<TokenVerifier>> loaded = LoadVerifier(*file, options, &warning);
  if (!loaded.ok()) return loaded.status();
  if (!warning.empty()) Log().Warning(warning);
  return std::make_unique<Keys>(*std::move(loaded), *file, options, version);
}

// ReadConfig: the service and token options, with --config applied.
absl::Status ReadConfig(const ServerFlags& flags, ServiceOptions& service, JwtOptions& jwt) {
  service.anonymous_ttl = absl::Seconds(flags.anonymous_ttl_seconds);
  jwt.issuer = flags.jwt_issuer;
  jwt.audience = flags.jwt_audience;
  if (!flags.config_file) return absl::OkStatus();
  std::optional<std::string> text = ReadFile(*flags.config_file);
  if (!text) return absl::InvalidArgumentError("cannot read --config " + *flags.config_file);
  if (absl::Status st = ApplyConfig(*text, service, jwt); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("config ", *flags.config_file, ": ", st.message()));
  }
  return absl::OkStatus();
}

// ApplyStorePasswordFile puts the password --store-password-file names into the store
// URI (which is only ever logged redacted).
absl::Status ApplyStorePasswordFile(ServerFlags& flags) {
  if (!flags.store_password_file) return absl::OkStatus();
  std::optional<std::string> password = ReadFile(*flags.store_password_file);
  if (!password) {
    return absl::InvalidArgumentError("cannot read --store-password-file " +
                                      *flags.store_password_file);
  }
  absl::StatusOr<std::string> uri =
      StoreUriWithPassword(flags.store_uri, StripTrailingNewline(*std::move(password)));
  if (!uri.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--store-password-file: ", uri.status().message()));
  }
  flags.store_uri = *std::move(uri);
  return absl::OkStatus();
}

// Background: the threads beside the server: one waits for signals (SIGHUP reloads
// the keys, SIGTERM/SIGINT stop the server), one purges expired sessions, one
// watches the key file. Joined on destruction.
class Background {
 public:
  Background(const ServerFlags& flags, sigset_t signals, HttpServer& server,
             HttpServer* metrics_server, SessionService& service, ServerMetrics& metrics,
             KeyReloader& reloader)
      : flags_(flags) {
    threads_.emplace_back([=, this, &server, &reloader] {
      WaitForSignals(signals, server, metrics_server, reloader);
    });
    threads_.emplace_back([this, &service, &metrics] { Purge(service, metrics); });
    threads_.emplace_back([this, &reloader] { WatchKeys(reloader); });
  }
  ~Background() {
    for (std::thread& t : threads_) t.join();
  }

 private:
  void WaitForSignals(sigset_t signals, HttpServer& server, HttpServer* metrics_server,
                      KeyReloader& reloader) {
    int sig = 0;
    while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
      ReportReload(reloader.file().path, reloader.Reload());
    }
    Log().Info(absl::StrCat("signal ", sig, ", shutting down (grace ",
                            flags_.shutdown_grace.count() / 1000, "s)"));
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    server.Shutdown(flags_.shutdown_grace);
    if (metrics_server != nullptr) metrics_server->Shutdown(flags_.shutdown_grace);
  }

  // Every `interval` until the server stops, `work` (run without the lock).
  template <typename Work>
  void Every(std::chrono::milliseconds interval, Work work) {
    if (interval.count() == 0) return;
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, interval, [this] { return stopping_; })) {
      lock.unlock();
      work();
      lock.lock();
    }
  }

  void Purge(SessionService& service, ServerMetrics& metrics) {
    Every(std::chrono::seconds(flags_.purge_interval_seconds), [&] {
      absl::StatusOr<int64_t> purged = service.PurgeExpired();
      metrics.OnPurge(purged.ok(), purged.value_or(0));
      if (!purged.ok()) {
        Log().Error(absl::StrCat("purge failed: ", purged.status().message()));
      }
    });
  }

  void WatchKeys(KeyReloader& reloader) {
    Every(flags_.key_reload_interval, [&] {
      if (std::optional<absl::Status> st = reloader.ReloadIfChanged()) {
        ReportReload(reloader.file().path, *st);
      }
    });
  }

  const ServerFlags& flags_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::vector<std::thread> threads_;
};

// MainServerOptions: the main listener's options from the flags.
HttpServerOptions MainServerOptions(const ServerFlags& flags, int cpus, int64_t handler_threads,
                                    ServerMetrics& metrics) {
  HttpServerOptions options;
  options.host = flags.host;
  options.port = flags.port;
  options.io_threads = static_cast<int>(flags.io_threads.value_or(cpus));
  options.handler_threads = static_cast<int>(handler_threads);
  options.limits = flags.limits;
  options.events = flags.event_streams;
  options.observer = &metrics;
  HttpResponse openapi;
  openapi.headers.emplace_back("Content-Type", "application/json");
  openapi.body = kOpenApiJson;
  options.static_routes.emplace("/openapi.json", std::move(openapi));
  if (flags.metrics_port < 0) options.metrics = [&metrics] { return metrics.Scrape(); };
  options.metrics_allow = flags.metrics_allow;
  return options;
}

// StartMetricsServer: the metrics listener of its own, when --metrics-listen names one.
absl::Status StartMetricsServer(const ServerFlags& flags, ServerMetrics& metrics,
                                AccessLog& access_log, std::optional<HttpServer>& out) {
  if (flags.metrics_port < 0) return absl::OkStatus();
  HttpServerOptions options;
  options.host = flags.metrics_host;
  options.port = flags.metrics_port;
  options.handler_threads = 0;
  options.metrics = [&metrics] { return metrics.Scrape(); };
  // Whoever reaches this listener may scrape, unless --metrics-allow names who.
  options.metrics_loopback_only = !flags.metrics_allow.empty();
  options.metrics_allow = flags.metrics_allow;
  out.emplace(nullptr, nullptr, &access_log, options);
  absl::StatusOr<int> bound = out->Bind();
  if (!bound.ok()) return bound.status();
  Log().Info(absl::StrCat("metrics on ", flags.metrics_host, ":", *bound));
  return absl::OkStatus();
}

// Serve runs the server over `store` until a signal stops it.
int Serve(const ServerFlags& flags, sigset_t signals, SessionStore* store, Keys& keys,
          const ServiceOptions& service_options) {
  // Every store call is counted and timed (sessionctx::metrics).
  prometheus::Registry registry;
  MetricsStore metered(store, StoreBackendName(flags.store_uri), registry);
  ServerMetrics server_metrics(registry, [&metered] { metered.RefreshStats(); });
  SessionService service(&metered, service_options);
  HandlerOptions handler_options;
  handler_options.max_body_bytes = flags.limits.max_body_bytes;
  // A store failure's detail goes to the log, never to the client: a message repeats
  // at most once a minute, so a failing store cannot flood the log.
  StoreErrorLog store_error_log;
  handler_options.store_error_log = [&store_error_log](const absl::Status& st,
                                                       absl::string_view trace_id) {
    store_error_log.Report(st, trace_id);
  };
  const HttpHandler handler(&service, &keys.verifier, handler_options);
  RaiseDescriptorLimit(flags.limits.max_connections);
  const CpuCount cpus = UsableCpus();
  const int64_t threads = flags.threads.value_or(DefaultHandlerThreads(flags.store_uri, cpus.count));
  const HttpServerOptions options = MainServerOptions(flags, cpus.count, threads, server_metrics);
  AccessLog access_log(flags.access_log, stdout);
  HttpServer server(&handler, [store] { return store->Ready(); }, &access_log, options);
  absl::StatusOr<int> bound = server.Bind();
  if (!bound.ok()) return Fail(std::string(bound.status().message()));
  Log().Info(absl::StrCat("listening on ", flags.host, ":", *bound, " (store ",
                          RedactedStoreUri(flags.store_uri), ", ", options.io_threads,
                          options.io_threads == 1 ? " I/O thread, " : " I/O threads, ", threads,
                          " handler threads; ", cpus.count, cpus.count == 1 ? " CPU" : " CPUs",
                          " usable: ", cpus.why, ")"));
  std::optional<HttpServer> metrics_server;
  if (absl::Status st = StartMetricsServer(flags, server_metrics, access_log, metrics_server);
      !st.ok()) {
    return Fail(std::string(st.message()));
  }
  std::fflush(stdout);
  {
    Background background(flags, signals, server, metrics_server ? &*metrics_server : nullptr,
                          service, server_metrics, keys.reloader);
    std::thread metrics_runner([&] {
      if (metrics_server) metrics_server->Run();
    });
    server.Run();  // returns once a signal stopped it and every connection is done
    metrics_runner.join();
  }
  return 0;
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

  absl::StatusOr<ServerFlags> flags = ParseServerFlags(argc, argv);
  if (!flags.ok()) {
    const bool unknown = absl::StartsWith(flags.status().message(), "unknown flag");
    return Fail(absl::StrCat(flags.status().message(), unknown ? "\n" + ServerUsage() : ""));
  }
  Log().set_format(flags->log_format);
  if (flags->help) {
    std::fputs(ServerUsage().c_str(), stdout);
    return 0;
  }
  ServiceOptions service_options;
  JwtOptions jwt_options;
  if (absl::Status st = ReadConfig(*flags, service_options, jwt_options); !st.ok()) {
    return Fail(std::string(st.message()));
  }
  absl::StatusOr<std::unique_ptr<Keys>> keys = LoadKeys(*flags, jwt_options);
  if (!keys.ok()) return Fail(std::string(keys.status().message()));
  if (absl::Status st = ApplyStorePasswordFile(*flags); !st.ok()) {
    return Fail(std::string(st.message()));
  }
  StoreOptions store_options;
  store_options.events = flags->events;
  absl::StatusOr<std::unique_ptr<SessionStore>> store =
      OpenSessionStore(flags->store_uri, store_options);
  if (!store.ok()) {
    return Fail(absl::StrCat("cannot open store ", RedactedStoreUri(flags->store_uri), ": ",
                             store.status().message()));
  }
  const int code = Serve(*flags, signals, store->get(), **keys, service_options);
  if (code != 0) return code;
  store->reset();  // close the store: flushes what it buffers
  Log().Info("stopped");
  return 0;
}

}  // namespace
}  // namespace sessionctx::apps

int main(int argc, char** argv) { return sessionctx::apps::Main(argc, argv); }
