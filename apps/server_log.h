// ServerLog: the server's own messages (start, stop, key reloads, store errors, write
// refusals), apart from the access log. `--log-format text` (the default) writes
// "sessionctx-server: MESSAGE" lines, information on stdout and warnings and errors
// on stderr; `--log-format json` writes every message as one JSON object a line on
// stderr, with its time, level and, for a message about a request that carried a
// W3C `traceparent`, its trace id:
//   {"time":"2026-02-04T17:06:50.134Z","level":"error","message":"store error: …",
//    "trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}
//
// Example:
//   ServerLog log(LogFormat::kJson);
//   log.Info("listening on 127.0.0.1:8080");
#ifndef SESSIONCTX_APPS_SERVER_LOG_H_
#define SESSIONCTX_APPS_SERVER_LOG_H_

#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace sessionctx::apps {

// LogFormat: `--log-format text|json`.
enum class LogFormat { kText, kJson };

// ParseLogFormat reads "text" or "json"; nullopt for anything else.
std::optional<LogFormat> ParseLogFormat(std::string_view name);

enum class LogLevel { kInfo, kWarning, kError };

// FormatServerLogLine renders one message, newline included; `time_utc` (RFC 3339)
// and `trace_id` (empty: none) are written in json only.
std::string FormatServerLogLine(LogFormat format, LogLevel level, std::string_view message,
                                std::string_view trace_id, std::string_view time_utc);

// ServerLog writes messages as they come (a line at a time, flushed). Thread-safe.
class ServerLog {
 public:
  explicit ServerLog(LogFormat format = LogFormat::kText, std::FILE* out = stdout,
                     std::FILE* err = stderr)
      : format_(format), out_(out), err_(err) {}
  ServerLog(const ServerLog&) = delete;
  ServerLog& operator=(const ServerLog&) = delete;

  void set_format(LogFormat format) { format_ = format; }  // before any thread logs
  LogFormat format() const { return format_; }

  void Write(LogLevel level, std::string_view message, std::string_view trace_id = {});
  void Info(std::string_view message) { Write(LogLevel::kInfo, message); }
  void Warning(std::string_view message) { Write(LogLevel::kWarning, message); }
  void Error(std::string_view message) { Write(LogLevel::kError, message); }

 private:
  LogFormat format_;
  std::FILE* const out_;
  std::FILE* const err_;
  std::mutex mu_;  // one line at a time
};

// ProcessLog: the server's one log, for the program's parts to share (its format is
// set once, from --log-format, before any thread logs).
ServerLog& ProcessLog();

}  // namespace sessionctx::apps

#endif  // SESSIONCTX_APPS_SERVER_LOG_H_
