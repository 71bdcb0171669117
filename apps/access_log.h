// The server's access log: one line per request, written by a background thread so
// that a slow reader of stdout never stalls a request thread.
//
// Example:
//   AccessLog log(AccessLogFormat::kText, stdout);
//   log.Write({"127.0.0.1:50312", "GET", "/healthz", 200, 35, 15});
//   // GET /healthz 200 35us
#ifndef SESSIONCTX_APPS_ACCESS_LOG_H_
#define SESSIONCTX_APPS_ACCESS_LOG_H_

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace sessionctx::apps {

// AccessLogFormat: `--access-log off|text|json`.
enum class AccessLogFormat { kOff, kText, kJson };

// ParseAccessLogFormat reads "off", "text" or "json"; nullopt for anything else.
std::optional<AccessLogFormat> ParseAccessLogFormat(std::string_view name);

// AccessLogEntry: what is logged of one request. Never a header (so never a token),
// never the query string.
struct AccessLogEntry {
  std::string_view remote;  // "address:port" of the client
  std::string_view method;  // as received
  std::string_view path;    // the request target up to '?', still percent-encoded
  int status = 0;
  int64_t micros = 0;       // from the request's first byte to the response written
  size_t bytes = 0;         // response bytes sent
  std::string_view trace_id;  // of the request's W3C traceparent; "" when none (json only)
};

// EscapeForLog returns `raw` with every byte outside printable ASCII (control bytes,
// space, DEL, bytes >= 0x80) and the backslash written as \xHH, so that a hostile
// request line can neither forge log lines nor send terminal escapes.
std::string EscapeForLog(std::string_view raw);

// FormatAccessLogLine renders one entry, newline included:
//   text: METHOD PATH STATUS MICROSus
//   json: {"time":…,"remote":…,"method":…,"path":…,"status":…,"micros":…,"bytes":…}
//         and "trace_id":… when the request carried a valid traceparent
// `time_utc` is the RFC 3339 time of the response (json only).
std::string FormatAccessLogLine(AccessLogFormat format, const AccessLogEntry& entry,
                                std::string_view time_utc);

// AccessLog buffers lines and writes them to `out` from its own thread. Thread-safe.
// Lines beyond `max_buffered_bytes` waiting for a stalled reader are dropped and
// counted (the count is written once the reader catches up). The destructor writes
// what is buffered.
class AccessLog {
 public:
  AccessLog(AccessLogFormat format, std::FILE* out, size_t max_buffered_bytes = 8 << 20);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  bool enabled() const { return format_ != AccessLogFormat::kOff; }
  // json: lines carry fields (time, trace id) that text lines do not.
  bool json() const { return format_ == AccessLogFormat::kJson; }
  void Write(const AccessLogEntry& entry);

 private:
  void Run();

  const AccessLogFormat format_;
  std::FILE* const out_;
  const size_t max_buffered_bytes_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::string buffer_;      // guarded by mu_
  uint64_t dropped_ = 0;    // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  std::thread writer_;
};

}  // namespace sessionctx::apps

#endif  // SESSIONCTX_APPS_ACCESS_LOG_H_
