// WriteGuard: the RocksDB store's writes, refused from the first I/O error (a full
// disk, most often) until RocksDB has recovered, which it retries by itself.
//
// Debian's RocksDB keeps assert() live, and a file writer that failed once asserts
// (aborting the process) when written again; RocksDB itself stops writes after such
// an error (its background-error state) and recovers with DB::Resume(). The guard
// makes sure the store never drives RocksDB past that point: from the failed write
// on, writes are answered StorageFullError (no space) or Unavailable without touching
// RocksDB, reads go on, and a thread calls Resume() with back-off until it succeeds.
// The state changes are logged once each, to stderr. Internal to the rocksdb backend.
#ifndef SESSIONCTX_BACKENDS_ROCKSDB_WRITE_GUARD_H_
#define SESSIONCTX_BACKENDS_ROCKSDB_WRITE_GUARD_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "rocksdb/db.h"
#include "rocksdb/listener.h"
#include "rocksdb/write_batch.h"
#include "sessionctx/session_store.h"

namespace sessionctx::rocksdb_internal {

// Translate turns a RocksDB status into the library's codes, by the status's code
// alone: an engine error is always a store failure (StorageFullError for no space,
// DataLoss, Unavailable or Internal: 5xx over HTTP, where the message, which may name
// files, is logged and never sent), never one of the codes of a caller's mistake.
absl::Status Translate(const rocksdb::Status& s, absl::string_view what);

// ErrorListener: RocksDB's background errors as they happen (a flush that found the
// disk full stops writes before any write of ours fails), and RocksDB's own recovery
// from a full disk switched off: it waits for free space of a whole write buffer
// (64 MiB) before it tries, and meanwhile makes DB::Resume() answer Busy. The guard
// recovers instead, as soon as RocksDB can flush again. Set it in the options before
// the DB opens.
class ErrorListener : public rocksdb::EventListener {
 public:
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status* error) override;
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason reason, rocksdb::Status error,
                            bool* auto_recovery) override;
  // Take: the background error seen since the last call, if any.
  std::optional<rocksdb::Status> Take();

 private:
  std::atomic<bool> pending_{false};
  std::mutex mu_;
  rocksdb::Status error_;  // guarded by mu_
};

class WriteGuard {
 public:
  // REQUIRES: `db` outlives the guard; `listener` was in the options `db` was opened
  // with. Starts the recovery thread (idle until needed).
  WriteGuard(rocksdb::DB* db, std::shared_ptr<ErrorListener> listener);
  ~WriteGuard();
  WriteGuard(const WriteGuard&) = delete;
  WriteGuard& operator=(const WriteGuard&) = delete;

  // Write commits `batch`, or refuses it while writes are refused. An I/O error (or
  // any error that stops RocksDB's writes) starts the refusal. Thread-safe.
  absl::Status Write(const rocksdb::WriteOptions& options, rocksdb::WriteBatch& batch,
                     absl::string_view what);

  // Ready: OK, or the status writes are refused with.
  absl::Status Ready();

  // Refusing: whether writes are refused now.
  bool Refusing() const { return refusing_.load(std::memory_order_acquire); }

  // Stats: whether writes are refused, how often that began, how many were refused.
  std::vector<StoreStat> Stats() const;

 private:
  absl::Status Refusal() const;  // REQUIRES: mu_ held
  void Refuse(const rocksdb::Status& cause, absl::string_view what);
  // CheckBackground: refuse if RocksDB reported a background error meanwhile.
  void CheckBackground();
  void RecoverLoop();

  rocksdb::DB* const db_;
  const std::shared_ptr<ErrorListener> listener_;
  std::atomic<bool> refusing_{false};
  std::atomic<uint64_t> faults_{0};         // times refusing began
  std::atomic<uint64_t> refused_writes_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool no_space_ = false;   // guarded by mu_: the cause was a full disk
  std::string cause_;       // guarded by mu_: RocksDB's text, for the log
  absl::Time since_;        // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  std::thread recovery_;
#if defined(__SANITIZE_THREAD__)
  std::mutex tsan_write_mu_;  // see Write
#endif
};

}  // namespace sessionctx::rocksdb_internal

#endif  // SESSIONCTX_BACKENDS_ROCKSDB_WRITE_GUARD_H_
