// InfoLog: RocksDB's informational log (the LOG file in the store's folder), written
// by the store instead of RocksDB's own file logger. Debian's RocksDB keeps assert()
// live, and its logger asserts when it appends after a failed append: on a full disk
// the first log line RocksDB writes after the failure (e.g. from its own error
// recovery) would abort the whole process. This logger drops a line it cannot write
// and tries again with the next one. Internal to the rocksdb backend.
#ifndef SESSIONCTX_BACKENDS_ROCKSDB_INFO_LOG_H_
#define SESSIONCTX_BACKENDS_ROCKSDB_INFO_LOG_H_

#include <atomic>
#include <memory>
#include <string>

#include "rocksdb/env.h"

namespace sessionctx::rocksdb_internal {

class InfoLog final : public rocksdb::Logger {
 public:
  // Open appends to `path` (a previous file moves to `path`.old). Never fails: a file
  // that cannot be opened leaves a logger that writes nothing.
  static std::shared_ptr<InfoLog> Open(const std::string& path);
  ~InfoLog() override;

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override;
  // Lines that could not be written (a full disk, say).
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  explicit InfoLog(int fd) : fd_(fd) {}
  rocksdb::Status CloseImpl() override;

  int fd_;  // -1: writes nothing
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace sessionctx::rocksdb_internal

#endif  // SESSIONCTX_BACKENDS_ROCKSDB_INFO_LOG_H_
