#include "backends/rocksdb/write_guard.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "sessionctx/backend_support.h"

namespace sessionctx::rocksdb_internal {

absl::Status Translate(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string msg = absl::StrCat("rocksdb ", what, ": ", s.ToString());
  if (s.IsNoSpace()) return backend::StorageFullError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut() || s.IsIOError()) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}

void ErrorListener::OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* error) {
  if (error == nullptr || error->ok()) return;
  std::lock_guard<std::mutex> lock(mu_);
  error_ = *error;
  pending_.store(true, std::memory_order_release);
}

void ErrorListener::OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status error,
                                         bool* auto_recovery) {
  error.PermitUncheckedError();
  if (auto_recovery != nullptr) *auto_recovery = false;
}

std::optional<rocksdb::Status> ErrorListener::Take() {
  if (!pending_.load(std::memory_order_acquire)) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  pending_.store(false, std::memory_order_relaxed);
  return error_;
}

WriteGuard::WriteGuard(rocksdb::DB* db, std::shared_ptr<ErrorListener> listener)
    : db_(db), listener_(std::move(listener)), recovery_([this] { RecoverLoop(); }) {}

void WriteGuard::CheckBackground() {
  if (std::optional<rocksdb::Status> error = listener_->Take()) Refuse(*error, "background work");
}

WriteGuard::~WriteGuard() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  recovery_.join();
}

absl::Status WriteGuard::Write(const rocksdb::WriteOptions& options, rocksdb::WriteBatch& batch,
                               absl::string_view what) {
  CheckBackground();
  if (Refusing()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (refusing_.load(std::memory_order_relaxed)) {
      refused_writes_.fetch_add(1, std::memory_order_relaxed);
      return Refusal();
    }
  }
  rocksdb::Status s;
  {
#if defined(__SANITIZE_THREAD__)
    // ThreadSanitizer cannot see how RocksDB hands a waiting writer's batch to the
    // leader of its write group (inside the library, not instrumented), and reports
    // the leader's copy as a race: under it, writes enter RocksDB one at a time.
    std::lock_guard<std::mutex> one_at_a_time(tsan_write_mu_);
#endif
    s = db_->Write(options, &batch);
  }
  if (s.ok()) return absl::OkStatus();
  // Whatever failed in RocksDB's write path (the WAL, or a background flush that has
  // stopped writes): no further write until it has recovered.
  if (s.IsIOError() || s.IsNoSpace() || s.IsCorruption()) Refuse(s, what);
  return Translate(s, what);
}

absl::Status WriteGuard::Ready() {
  CheckBackground();
  if (!Refusing()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  return refusing_.load(std::memory_order_relaxed) ? Refusal() : absl::OkStatus();
}

absl::Status WriteGuard::Refusal() const {
  const std::string msg = absl::StrCat("rocksdb: writes refused since ", absl::FormatTime(since_),
                                       " after: ", cause_, "; retrying recovery");
  return no_space_ ? backend::StorageFullError(msg) : absl::UnavailableError(msg);
}

void WriteGuard::Refuse(const rocksdb::Status& cause, absl::string_view what) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (refusing_.load(std::memory_order_relaxed)) return;  // said once
    no_space_ = cause.IsNoSpace();
    cause_ = absl::StrCat(what, ": ", cause.ToString());
    since_ = absl::Now();
    refusing_.store(true, std::memory_order_release);
    faults_.fetch_add(1, std::memory_order_relaxed);
    std::fprintf(stderr,
                 "sessionctx rocksdb: a write failed (%s); writes are refused, reads are served, "
                 "until RocksDB recovers (retried with back-off)\n",
                 cause_.c_str());
  }
  cv_.notify_all();
}

void WriteGuard::RecoverLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || refusing_.load(std::memory_order_relaxed); });
    if (stopping_) return;
    // Resume() flushes the memtables onto new files and starts a new WAL; while the
    // disk is still full it fails and changes nothing. (RocksDB may be recovering by
    // itself meanwhile: then Resume() is Busy, and OK once that is done.)
    absl::Duration backoff = absl::Milliseconds(100);
    while (!stopping_) {
      if (cv_.wait_for(lock, absl::ToChronoMilliseconds(backoff), [&] { return stopping_; })) return;
      lock.unlock();
      const rocksdb::Status resumed = db_->Resume();
      lock.lock();
      if (resumed.ok()) {
        std::fprintf(stderr,
                     "sessionctx rocksdb: recovered; writes resume after %.1f s (%llu writes "
                     "refused meanwhile)\n",
                     absl::ToDoubleSeconds(absl::Now() - since_),
                     static_cast<unsigned long long>(refused_writes_.load()));
        refusing_.store(false, std::memory_order_release);
        break;
      }
      backoff = std::min(backoff * 2, absl::Seconds(2));
    }
  }
}

std::vector<StoreStat> WriteGuard::Stats() const {
  return {
      {"sessionctx_rocksdb_writes_refused",
       "1 while writes are refused after an I/O error (e.g. a full disk), else 0",
       Refusing() ? 1.0 : 0.0},
      {"sessionctx_rocksdb_write_faults_total",
       "Times writes began to be refused after an I/O error", static_cast<double>(faults_.load())},
      {"sessionctx_rocksdb_refused_writes_total", "Writes refused while RocksDB recovered",
       static_cast<double>(refused_writes_.load())},
  };
}

}  // namespace sessionctx::rocksdb_internal
