#include "apps/server_log.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace sessionctx::apps {

std::optional<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return std::nullopt;
}

namespace {

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "error";
}

}  // namespace

std::string FormatServerLogLine(LogFormat format, LogLevel level, std::string_view message,
                                std::string_view trace_id, std::string_view time_utc) {
  if (format == LogFormat::kText) {
    return absl::StrCat("sessionctx-server: ", level == LogLevel::kWarning ? "warning: " : "",
                        absl::string_view(message.data(), message.size()), "\n");
  }
  nlohmann::ordered_json line = {{"time", time_utc}, {"level", LevelName(level)},
                                 {"message", message}};
  if (!trace_id.empty()) line["trace_id"] = trace_id;
  // Bytes that are not UTF-8 (a store's text) become U+FFFD, never a broken line.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void ServerLog::Write(LogLevel level, std::string_view message, std::string_view trace_id) {
  std::string time;
  if (format_ == LogFormat::kJson) {
    time = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  }
  const std::string line = FormatServerLogLine(format_, level, message, trace_id, time);
  std::FILE* to = format_ == LogFormat::kText && level == LogLevel::kInfo ? out_ : err_;
  std::lock_guard<std::mutex> lock(mu_);
  std::fwrite(line.data(), 1, line.size(), to);
  std::fflush(to);
}

ServerLog& ProcessLog() {
  static ServerLog log;
  return log;
}

}  // namespace sessionctx::apps
