#include "backends/rocksdb/info_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <sys/time.h>

namespace sessionctx::rocksdb_internal {

std::shared_ptr<InfoLog> InfoLog::Open(const std::string& path) {
  (void)::rename(path.c_str(), (path + ".old").c_str());  // keep the previous run's
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  return std::shared_ptr<InfoLog>(new InfoLog(fd));
}

InfoLog::~InfoLog() { (void)CloseImpl(); }

rocksdb::Status InfoLog::CloseImpl() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  return rocksdb::Status::OK();
}

void InfoLog::Logv(const char* format, va_list ap) {
  if (fd_ < 0) return;
  // One line, written with one write(2): "2026/11/29-12:00:00.123456 message\n".
  char line[4096];
  timeval now;
  ::gettimeofday(&now, nullptr);
  tm t;
  ::localtime_r(&now.tv_sec, &t);
  int n = std::snprintf(line, sizeof(line), "%04d/%02d/%02d-%02d:%02d:%02d.%06ld ", t.tm_year + 1900,
                        t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                        static_cast<long>(now.tv_usec));
  va_list copy;
  va_copy(copy, ap);
  const int body = std::vsnprintf(line + n, sizeof(line) - static_cast<size_t>(n) - 1, format, copy);
  va_end(copy);
  if (body > 0) n += std::min(body, static_cast<int>(sizeof(line)) - n - 2);
  if (n > 0 && line[n - 1] != '\n') line[n++] = '\n';
  ssize_t written;
  do {
    written = ::write(fd_, line, static_cast<size_t>(n));
  } while (written < 0 && errno == EINTR);
  if (written != n) dropped_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace sessionctx::rocksdb_internal
