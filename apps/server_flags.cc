#include "apps/server_flags.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "apps/flags.h"

namespace sessionctx::apps {
namespace {

using std::chrono::milliseconds;

// ReadCount: a whole number at least `min` into `out` (an integer or an optional one).
template <typename T>
absl::Status ReadCount(absl::string_view v, int64_t min, T& out) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(v, &n) || n < min) {
    return absl::InvalidArgumentError(min == 0 ? "must be a non-negative integer"
                                               : absl::StrCat("must be an integer of at least ", min));
  }
  out = static_cast<T>(n);
  return absl::OkStatus();
}

// ReadSeconds: a number of seconds (fractions allowed, at most 10^6) into `out`,
// rounded up to the millisecond; 0 only when `zero_ok`.
absl::Status ReadSeconds(absl::string_view v, bool zero_ok, milliseconds& out) {
  double seconds = 0;
  if (!absl::SimpleAtod(v, &seconds) || !(seconds > 0 || (zero_ok && seconds == 0)) ||
      seconds > 1e6) {
    return absl::InvalidArgumentError(
        absl::StrCat("must be a ", zero_ok ? "non-negative" : "positive", " number of seconds"));
  }
  out = milliseconds(static_cast<int64_t>(std::ceil(seconds * 1000)));
  return absl::OkStatus();
}

// ReadHostPort: HOST:PORT, port 0 to 65535.
absl::Status ReadHostPort(absl::string_view v, std::string& host, int& port) {
  const size_t colon = v.rfind(':');
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(v.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError("must be HOST:PORT, e.g. 127.0.0.1:8080");
  }
  host = std::string(v.substr(0, colon));
  return absl::OkStatus();
}

absl::Status ReadString(absl::string_view v, std::string& out) {
  out = std::string(v);
  return absl::OkStatus();
}

absl::Status ReadOptional(absl::string_view v, std::optional<std::string>& out) {
  out = std::string(v);
  return absl::OkStatus();
}

absl::Status ReadAccessLog(absl::string_view v, ServerFlags& f) {
  std::optional<AccessLogFormat> format = ParseAccessLogFormat(std::string_view(v.data(), v.size()));
  if (!format) return absl::InvalidArgumentError("must be off, text or json");
  f.access_log = *format;
  return absl::OkStatus();
}

absl::Status ReadMetricsListen(absl::string_view v, ServerFlags& f) {
  if (v == "main") {
    f.metrics_port = -1;
    return absl::OkStatus();
  }
  if (!ReadHostPort(v, f.metrics_host, f.metrics_port).ok()) {
    return absl::InvalidArgumentError("must be main or HOST:PORT, e.g. 127.0.0.1:9464");
  }
  return absl::OkStatus();
}

absl::Status ReadMetricsAllow(absl::string_view v, ServerFlags& f) {
  absl::StatusOr<std::vector<IpNetwork>> networks = ParseIpNetworks(v);
  if (!networks.ok()) return networks.status();
  f.metrics_allow = *std::move(networks);
  return absl::OkStatus();
}

absl::Status ReadLogFormat(absl::string_view v, ServerFlags& f) {
  std::optional<LogFormat> format = ParseLogFormat(std::string_view(v.data(), v.size()));
  if (!format) return absl::InvalidArgumentError("must be text or json");
  f.log_format = *format;
  return absl::OkStatus();
}

}  // namespace

// clang-format off
const FlagSpec kServerFlags[] = {
  {"listen", "HOST:PORT", "127.0.0.1:8080", nullptr,
   "port 0 picks a free port (printed on start)",
   [](absl::string_view v, ServerFlags& f) { return ReadHostPort(v, f.host, f.port); }},
  {"store", "URI", "rocksdb:./data/sessions", nullptr,
   "`memory:`, `rocksdb:PATH[?sync=true&cache_mb=N&inline_context_bytes=N]`, `postgresql://…`, `redis://…`, `redis+cluster://host:port,…` "
   "(see `docs/backends.md`)",
   [](absl::string_view v, ServerFlags& f) { return ReadString(v, f.store_uri); }},
  {"store-password-file", "FILE", nullptr, "—",
   "the store's password, from this file (trailing newline stripped) instead of the URI, so "
   "that no secret is on the command line: `redis://`'s `:PASSWORD@`, `postgresql://`'s "
   "`password`",
   [](absl::string_view v, ServerFlags& f) { return ReadOptional(v, f.store_password_file); }},
  {"jwt-secret-file", "FILE", nullptr, "—",
   "HS256 key: the file's bytes, trailing newline stripped",
   [](absl::string_view v, ServerFlags& f) { return ReadOptional(v, f.jwt_secret_file); }},
  {"jwt-public-key-file", "FILE", nullptr, "—",
   "PEM public key: RSA → RS256, P-256 → ES256",
   [](absl::string_view v, ServerFlags& f) { return ReadOptional(v, f.jwt_public_key_file); }},
  {"jwks-file", "FILE", nullptr, "—",
   "JSON Web Key Set (RSA, P-256, `oct` keys), chosen by the token's `kid`; an unknown `kid` "
   "is 401",
   [](absl::string_view v, ServerFlags& f) { return ReadOptional(v, f.jwks_file); }},
  {"key-reload-interval", "SECONDS", "1", nullptr,
   "the key file is re-read on SIGHUP and, when it changed, within about twice this; `0` = "
   "SIGHUP only",
   [](absl::string_view v, ServerFlags& f) { return ReadSeconds(v, true, f.key_reload_interval); }},
  {"jwt-issuer", "ISS", nullptr, "—", "when given, a token's `iss` must equal it",
   [](absl::string_view v, ServerFlags& f) { return ReadOptional(v, f.jwt_issuer); }},
  {"jwt-audience", "AUD", nullptr, "—", "when given, a token's `aud` must name it",
   [](absl::string_view v, ServerFlags& f) { return ReadOptional(v, f.jwt_audience); }},
  {"config", "FILE", nullptr, "—", "JSON: per-tenant defaults, claim names, token leeway (an example is in README.md)",
   [](absl::string_view v, ServerFlags& f) { return ReadOptional(v, f.config_file); }},
  {"anonymous-ttl", "SECONDS", "3600", nullptr,
   "anonymous sessions expire this long after their last write; a customer's session (one "
   "with a `customerId`) never expires: it lasts until it is deleted or its customer is "
   "logged out",
   [](absl::string_view v, ServerFlags& f) { return ReadCount(v, 0, f.anonymous_ttl_seconds); }},
  {"purge-interval", "SECONDS", "300", nullptr,
   "how often expired sessions are purged; `0` = never",
   [](absl::string_view v, ServerFlags& f) { return ReadCount(v, 0, f.purge_interval_seconds); }},
  {"max-body", "BYTES", "65536", nullptr,
   "larger bodies are 413, chunked ones too, as soon as they pass it",
   [](absl::string_view v, ServerFlags& f) { return ReadCount(v, 0, f.limits.max_body_bytes); }},
  {"max-header-bytes", "BYTES", "16384", nullptr,
   "request header fields (names, values, separators); more is 431",
   [](absl::string_view v, ServerFlags& f) { return ReadCount(v, 1, f.limits.max_header_bytes); }},
  {"max-headers", "N", "100", nullptr, "request header fields; more is 431",
   [](absl::string_view v, ServerFlags& f) { return ReadCount(v, 1, f.limits.max_header_count); }},
  {"max-url", "BYTES", "8192", nullptr, "a longer request target is 414",
   [](absl::string_view v, ServerFlags& f) { return ReadCount(v, 1, f.limits.max_url_bytes); }},
  {"request-timeout", "SECONDS", "10", nullptr,
   "a request's header and body must arrive within it",
   [](absl::string_view v, ServerFlags& f) { return ReadSeconds(v, false, f.limits.request_timeout); }},
  {"idle-timeout", "SECONDS", "60", nullptr, "idle keep-alive connections are closed after it",
   [](absl::string_view v, ServerFlags& f) { return ReadSeconds(v, false, f.limits.idle_timeout); }},
  {"max-connections", "N", "10000", nullptr, "connections beyond it get 503",
   [](absl::string_view v, ServerFlags& f) { return ReadCount(v, 1, f.limits.max_connections); }},
  {"shutdown-grace", "SECONDS", "10", nullptr,
   "on SIGTERM/SIGINT, time left to requests in flight",
   [](absl::string_view v, ServerFlags& f) { return ReadSeconds(v, false, f.shutdown_grace); }},
  {"io-threads", "N", nullptr, "one per usable CPU",
   "event-loop threads: accept, read, write. Usable CPUs: those `sched_getaffinity` allows, cut "
   "to the cgroup's CPU quota (`cpu.max`), as a container's limits set them",
   [](absl::string_view v, ServerFlags& f) { return ReadCount(v, 1, f.io_threads); }},
  {"threads", "N", nullptr, "by store: `memory:` 0, `rocksdb:` 2 per usable CPU, `postgresql:`, `redis:` and `redis+cluster:` 16",
   "threads for requests that reach the store (0 = on the event-loop threads, only for a "
   "store that never blocks)",
   [](absl::string_view v, ServerFlags& f) { return ReadCount(v, 0, f.threads); }},
  {"events", "on|off", "on", nullptr,
   "the store keeps an event feed (`GET …/events`); `off` keeps none and answers it 501",
   [](absl::string_view v, ServerFlags& f) {
     if (v != "on" && v != "off") return absl::InvalidArgumentError("must be on or off");
     f.events.enabled = v == "on";
     return absl::OkStatus();
   }},
  {"events-max-count", "N", nullptr, "`memory:` 100000, others 1000000",
   "events kept at most (older ones are trimmed with the purge)",
   [](absl::string_view v, ServerFlags& f) { return ReadCount(v, 1, f.events.max_count); }},
  {"events-max-age", "SECONDS", "86400", nullptr, "events older than this are trimmed",
   [](absl::string_view v, ServerFlags& f) {
     milliseconds age{0};
     absl::Status st = ReadSeconds(v, false, age);
     f.events.max_age = absl::FromChrono(age);
     return st;
   }},
  {"events-heartbeat", "SECONDS", "15", nullptr,
   "an event stream without news gets a comment line this often",
   [](absl::string_view v, ServerFlags& f) { return ReadSeconds(v, false, f.event_streams.heartbeat); }},
  {"events-max-streams", "N", "1000", nullptr, "event streams open at once; more get 503",
   [](absl::string_view v, ServerFlags& f) { return ReadCount(v, 1, f.event_streams.max_streams); }},
  {"access-log", "off|text|json", "text", nullptr,
   "one line per request on stdout (`METHOD PATH STATUS MICROSECONDSus`), or JSON",
   ReadAccessLog},
  {"metrics-listen", "main|HOST:PORT", "main", nullptr,
   "`GET /metrics` (Prometheus) on the main port for loopback clients, or on a listener of "
   "its own",
   ReadMetricsListen},
  {"metrics-allow", "CIDR[,CIDR…]", nullptr, "loopback only",
   "clients in these networks may also scrape `/metrics` on the main port, e.g. "
   "`10.0.0.0/8,fd00::/8` for a Prometheus in the cluster; given with `--metrics-listen`, "
   "that listener too serves only loopback and them",
   ReadMetricsAllow},
  {"log-format", "text|json", "text", nullptr,
   "the server's own messages (start, stop, store errors): `text` lines on stdout and "
   "stderr, or `json` lines on stderr with time, level and the request's `traceparent` "
   "trace id",
   ReadLogFormat},
};
// clang-format on
const size_t kServerFlagCount = sizeof(kServerFlags) / sizeof(kServerFlags[0]);

std::string FlagEnvName(absl::string_view name) {
  std::string out = "SESSIONCTX_";
  for (const char c : name) out += c == '-' ? '_' : absl::ascii_toupper(static_cast<unsigned char>(c));
  return out;
}

absl::StatusOr<ServerFlags> ParseServerFlags(int argc, char** argv, EnvLookup env) {
  Flags given;
  if (std::string err = given.Parse(argc, argv, 1, {"help"}); !err.empty()) {
    return absl::InvalidArgumentError(err);
  }
  ServerFlags flags;
  flags.help = given.Get("help").has_value();
  for (size_t i = 0; i < kServerFlagCount; ++i) {
    const FlagSpec& spec = kServerFlags[i];
    std::optional<std::string> value = given.Get(spec.name);
    std::string source = absl::StrCat("--", spec.name);
    if (!value) {
      const std::string variable = FlagEnvName(spec.name);
      if (const char* set = env(variable.c_str()); set != nullptr && *set != '\0') {
        value = set;
        source = variable;
      }
    }
    if (!value && spec.fallback == nullptr) continue;
    if (absl::Status st = spec.read(value ? *value : spec.fallback, flags); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(source, " ", st.message()));
    }
  }
  if (!given.positional().empty()) {
    return absl::InvalidArgumentError("unexpected argument " + given.positional().front());
  }
  if (std::optional<std::string> unknown = given.Unknown()) {
    return absl::InvalidArgumentError("unknown flag --" + *unknown);
  }
  if (int(flags.jwt_secret_file.has_value()) + int(flags.jwt_public_key_file.has_value()) +
          int(flags.jwks_file.has_value()) > 1) {
    return absl::InvalidArgumentError(
        "give one of --jwt-secret-file, --jwt-public-key-file and --jwks-file");
  }
  return flags;
}

namespace {

// DefaultText: a flag's default as the docs show it.
std::string DefaultText(const FlagSpec& spec, bool markdown) {
  if (spec.fallback != nullptr) return markdown ? absl::StrCat("`", spec.fallback, "`") : spec.fallback;
  return spec.shown;
}

}  // namespace

// Wrapped: `text` in lines of at most `width`, each after the first indented by
// `indent` spaces.
std::string Wrapped(absl::string_view text, size_t indent, size_t width) {
  std::string out, line;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (!line.empty() && indent + line.size() + 1 + word.size() > width) {
      absl::StrAppend(&out, line, "\n", std::string(indent, ' '));
      line.clear();
    }
    absl::StrAppend(&line, line.empty() ? "" : " ", word);
  }
  return out + line;
}

std::string ServerUsage() {
  constexpr size_t kIndent = 32, kWidth = 92;
  std::string out =
      "usage: sessionctx-server [flags]\n"
      "Each flag may instead come from the environment: --max-body from SESSIONCTX_MAX_BODY,\n"
      "and so on (SESSIONCTX_ and the name in capitals, - as _); a flag given wins.\n";
  for (size_t i = 0; i < kServerFlagCount; ++i) {
    const FlagSpec& spec = kServerFlags[i];
    std::string name = absl::StrCat("  --", spec.name, " ", spec.arg);
    name = name.size() < kIndent ? name + std::string(kIndent - name.size(), ' ')
                                 : absl::StrCat(name, "\n", std::string(kIndent, ' '));
    std::string help = spec.help;
    if (spec.fallback != nullptr || absl::string_view(spec.shown) != "—") {
      absl::StrAppend(&help, " (default: ", DefaultText(spec, false), ")");
    }
    absl::StrAppend(&out, name, Wrapped(absl::StrReplaceAll(help, {{"`", ""}}), kIndent, kWidth),
                    "\n");
  }
  absl::StrAppend(&out, "  --help", std::string(kIndent - 8, ' '), "this text\n");
  return out;
}

std::string ServerFlagsMarkdown() {
  std::string out = "| flag | environment | default | |\n|---|---|---|---|\n";
  for (size_t i = 0; i < kServerFlagCount; ++i) {
    const FlagSpec& spec = kServerFlags[i];
    const std::string arg = absl::StrReplaceAll(spec.arg, {{"|", "\\|"}});
    absl::StrAppend(&out, "| `--", spec.name, " ", arg, "` | `", FlagEnvName(spec.name), "` | ",
                    DefaultText(spec, true), " | ", spec.help, " |\n");
  }
  return out;
}

}  // namespace sessionctx::apps
