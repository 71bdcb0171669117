#include "apps/access_log.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sessionctx::apps {

std::optional<AccessLogFormat> ParseAccessLogFormat(std::string_view name) {
  if (name == "off") return AccessLogFormat::kOff;
  if (name == "text") return AccessLogFormat::kText;
  if (name == "json") return AccessLogFormat::kJson;
  return std::nullopt;
}

std::string EscapeForLog(std::string_view raw) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size());
  for (const char c : raw) {
    const auto b = static_cast<unsigned char>(c);
    if (b > 0x20 && b < 0x7f && c != '\\') {
      out += c;
    } else {
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 0xf];
    }
  }
  return out;
}

namespace {

// JsonString quotes an already log-escaped string: only '"' is left to escape (the
// backslash and every control byte were turned into \xHH, whose backslash is escaped
// here as JSON needs).
std::string JsonString(std::string_view escaped) {
  std::string out = "\"";
  for (const char c : escaped) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace

std::string FormatAccessLogLine(AccessLogFormat format, const AccessLogEntry& e,
                                std::string_view time_utc) {
  const std::string method = EscapeForLog(e.method);
  const std::string path = EscapeForLog(e.path);
  if (format == AccessLogFormat::kJson) {
    return absl::StrCat("{\"time\":", JsonString(time_utc),
                        ",\"remote\":", JsonString(EscapeForLog(e.remote)),
                        ",\"method\":", JsonString(method), ",\"path\":", JsonString(path),
                        ",\"status\":", e.status, ",\"micros\":", e.micros,
                        ",\"bytes\":", e.bytes,
                        e.trace_id.empty() ? "" : ",\"trace_id\":",
                        e.trace_id.empty() ? "" : JsonString(EscapeForLog(e.trace_id)), "}\n");
  }
  return absl::StrCat(method, " ", path, " ", e.status, " ", e.micros, "us\n");
}

AccessLog::AccessLog(AccessLogFormat format, std::FILE* out, size_t max_buffered_bytes)
    : format_(format), out_(out), max_buffered_bytes_(max_buffered_bytes) {
  if (enabled()) writer_ = std::thread([this] { Run(); });
}

AccessLog::~AccessLog() {
  if (!enabled()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  writer_.join();
}

void AccessLog::Write(const AccessLogEntry& entry) {
  if (!enabled()) return;
  std::string time;
  if (format_ == AccessLogFormat::kJson) {
    time = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  }
  const std::string line = FormatAccessLogLine(format_, entry, time);
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (buffer_.size() + line.size() > max_buffered_bytes_) {
      ++dropped_;
      return;
    }
    was_empty = buffer_.empty();
    buffer_ += line;
  }
  if (was_empty) wake_.notify_one();
}

void AccessLog::Run() {
  std::string batch;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !buffer_.empty(); });
    if (buffer_.empty() && stopping_) return;
    batch.swap(buffer_);
    const uint64_t dropped = dropped_;
    dropped_ = 0;
    lock.unlock();
    if (dropped > 0) {
      batch += absl::StrCat("[access log: ", dropped, " lines dropped, the reader was too slow]\n");
    }
    std::fwrite(batch.data(), 1, batch.size(), out_);
    std::fflush(out_);
    batch.clear();
    lock.lock();
  }
}

}  // namespace sessionctx::apps
