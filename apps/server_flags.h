// The server's flags in one table (kServerFlags): name, argument, default, help and
// how each is read. The usage text (--help), the parser and the README's flag table
// come from it; a test checks README.md and docs/server.md against it.
#ifndef SESSIONCTX_APPS_SERVER_FLAGS_H_
#define SESSIONCTX_APPS_SERVER_FLAGS_H_

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "apps/access_log.h"
#include "apps/http_server.h"
#include "apps/ip_network.h"
#include "apps/server_log.h"

namespace sessionctx::apps {

// ServerFlags: what the command line asks of the server.
struct ServerFlags {
  std::string host;  // --listen
  int port = 0;
  std::string store_uri;
  std::optional<std::string> store_password_file;  // its content: the store's password
  std::optional<std::string> jwt_secret_file, jwt_public_key_file, jwks_file;
  std::optional<std::string> jwt_issuer, jwt_audience, config_file;
  std::chrono::milliseconds key_reload_interval{0};  // 0: SIGHUP only
  std::chrono::milliseconds shutdown_grace{0};
  int64_t anonymous_ttl_seconds = 0;
  int64_t purge_interval_seconds = 0;  // 0: never
  std::optional<int64_t> io_threads;   // unset: one per usable CPU (UsableCpus)
  std::optional<int64_t> threads;      // unset: by store (DefaultHandlerThreads)
  ServerLimits limits;
  EventOptions events;               // --events, --events-max-count, --events-max-age
  EventStreamOptions event_streams;  // --events-heartbeat, --events-max-streams
  AccessLogFormat access_log = AccessLogFormat::kText;
  std::string metrics_host;
  int metrics_port = -1;  // -1: GET /metrics on the main port
  std::vector<IpNetwork> metrics_allow;  // --metrics-allow: beyond loopback
  LogFormat log_format = LogFormat::kText;
  bool help = false;
};

// FlagSpec: one flag of the table.
struct FlagSpec {
  const char* name;      // without the dashes, e.g. "max-body"
  const char* arg;       // what it takes, e.g. "BYTES"; nullptr for a switch
  const char* fallback;  // the default as a command-line value; nullptr: none
  const char* shown;     // the default as the docs show it when it is not a value
  const char* help;      // one sentence
  // Reads `value` into `flags`; the error says what the value must be, the caller
  // names the flag.
  absl::Status (*read)(absl::string_view value, ServerFlags& flags);
};

// kServerFlags: every flag, in the order --help and the README list them.
extern const FlagSpec kServerFlags[];
extern const size_t kServerFlagCount;

// EnvLookup: an environment variable's value, or nullptr when it is not set.
using EnvLookup = const char* (*)(const char* name);

// SystemEnv: the process's environment (std::getenv).
inline const char* SystemEnv(const char* name) { return std::getenv(name); }

// FlagEnvName: the environment variable that sets flag `name`: "SESSIONCTX_" and the
// name in upper case, '-' as '_' (--max-body: SESSIONCTX_MAX_BODY).
std::string FlagEnvName(absl::string_view name);

// ParseServerFlags reads argv[1..]: "--name value" or "--name=value". A flag not given
// is read from its environment variable (FlagEnvName; set and not empty), else takes
// its default: the command line wins over the environment. InvalidArgument names the
// flag (or the variable) and what it must be.
absl::StatusOr<ServerFlags> ParseServerFlags(int argc, char** argv,
                                             EnvLookup env = &SystemEnv);

// ServerUsage: the --help text.
std::string ServerUsage();

// ServerFlagsMarkdown: the README's flag table (header, separator, a row per flag).
std::string ServerFlagsMarkdown();

}  // namespace sessionctx::apps

#endif  // SESSIONCTX_APPS_SERVER_FLAGS_H_
