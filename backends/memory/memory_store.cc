#include "sessionctx/memory_store.h"

#include <mutex>
#include <shared_mutex>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "sessionctx/write_rules.h"

namespace sessionctx {
namespace {

// Tenant names cannot hold '/', so "tenant/sessionId" is unambiguous.
std::string FlatKey(const SessionKey& key) { return absl::StrCat(key.tenant, "/", key.session_id); }

class MemoryStore final : public SessionStore {
 public:
  MemoryStore(const StoreOptions& options, int shards)
      : clock_(options.clock), shards_(shards > 0 ? shards : 1) {}

  absl::StatusOr<SessionContext> Get(const SessionKey& key) override {
    const std::string k = FlatKey(key);
    Shard& shard = ShardFor(k);
    std::shared_lock lock(shard.mu);
    const Entry* live = FindLive(shard, k);
    if (live == nullptr) return SessionNotFoundError(key);
    return live->record;
  }

  absl::Status Create(const SessionKey& key, const SessionContext& record) override {
    const std::string k = FlatKey(key);
    Shard& shard = ShardFor(k);
    std::unique_lock lock(shard.mu);
    if (FindLive(shard, k) != nullptr) {
      return SessionExistsError(key);
    }
    shard.records.insert_or_assign(k, Entry{record, RecordBytes(record)});
    return absl::OkStatus();
  }

  absl::Status CompareAndSet(const SessionKey& key, int64_t expected_version,
                             const SessionContext& record) override {
    const std::string k = FlatKey(key);
    Shard& shard = ShardFor(k);
    std::unique_lock lock(shard.mu);
    Entry* live = FindLive(shard, k);
    if (live == nullptr) return SessionNotFoundError(key);
    if (live->record.version != expected_version) {
      return VersionConflictError(expected_version, live->record.version);
    }
    *live = Entry{record, RecordBytes(record)};
    return absl::OkStatus();
  }

  absl::Status Delete(const SessionKey& key) override {
    const std::string k = FlatKey(key);
    Shard& shard = ShardFor(k);
    std::unique_lock lock(shard.mu);
    const bool live = FindLive(shard, k) != nullptr;
    shard.records.erase(k);  // an expired record goes too
    return live ? absl::OkStatus() : SessionNotFoundError(key);
  }

  absl::StatusOr<int64_t> PurgeExpired() override {
    const absl::Time now = clock_->Now();
    int64_t removed = 0;
    for (Shard& shard : shards_) {
      std::unique_lock lock(shard.mu);
      absl::erase_if(shard.records, [&](const auto& kv) {
        const bool expired = kv.second.record.IsExpiredAt(now);
        removed += expired;
        return expired;
      });
    }
    return removed;
  }

  absl::Status ForEach(
      const std::function<bool(const SessionKey&, const SessionContext&)>& visit) override {
    const absl::Time now = clock_->Now();
    for (Shard& shard : shards_) {
      // Copy the shard's live records out, so `visit` runs without the lock.
      std::vector<std::pair<std::string, SessionContext>> batch;
      {
        std::shared_lock lock(shard.mu);
        for (const auto& [k, v] : shard.records) {
          if (!v.record.IsExpiredAt(now)) batch.emplace_back(k, v.record);
        }
      }
      for (const auto& [k, v] : batch) {
        const size_t slash = k.find('/');
        if (!visit(SessionKey{k.substr(0, slash), k.substr(slash + 1)}, v)) {
          return absl::OkStatus();
        }
      }
    }
    return absl::OkStatus();
  }

  // One step under the shard lock, in place: no retry loop, no copy of the record,
  // and the size is tracked by difference instead of by serialising the record.
  absl::StatusOr<AttributeResult> UpdateAttribute(const SessionKey& key,
                                                  const AttributeWrite& write) override {
    const std::string k = FlatKey(key);
    Shard& shard = ShardFor(k);
    std::unique_lock lock(shard.mu);
    Entry* live = FindLive(shard, k);
    if (live == nullptr) return SessionNotFoundError(key);
    SessionContext& record = live->record;
    if (!GuardAllows(write.guard, record)) return GuardRefusedError();
    auto old = record.context.find(write.name);
    const size_t old_bytes =
        old == record.context.end() ? 0 : AttributeBytes(write.name, *old);
    if (!write.value) {
      if (old == record.context.end()) return AttributeResult{record.version, false};
      record.context.erase(old);
      live->bytes -= old_bytes;
    } else {
      const size_t bytes = live->bytes - old_bytes + AttributeBytes(write.name, *write.value);
      if (bytes > write.max_record_bytes) return RecordTooLarge(bytes, write.max_record_bytes);
      SetAttribute(record, write.name, *write.value);
      live->bytes = bytes;
    }
    StampUpdate(record, WriteStamp{write.now, write.anonymous_ttl});
    return AttributeResult{record.version, true};
  }

  std::vector<StoreStat> Stats() override {
    double sessions = 0, bytes = 0;
    for (Shard& shard : shards_) {
      std::shared_lock lock(shard.mu);
      sessions += static_cast<double>(shard.records.size());
      for (const auto& [k, entry] : shard.records) bytes += static_cast<double>(entry.bytes);
    }
    return {{"sessionctx_memory_sessions", "Sessions held in memory, expired ones not yet purged included", sessions},
            {"sessionctx_memory_session_bytes", "JSON bytes of the sessions held in memory", bytes}};
  }

 private:
  struct Entry {
    SessionContext record;
    size_t bytes;  // RecordBytes(record), kept up to date by difference
  };

  struct Shard {
    // std::shared_mutex, not absl::Mutex: ThreadSanitizer sees std's locks (through
    // pthread), not those of an Abseil built without it.
    std::shared_mutex mu;
    absl::flat_hash_map<std::string, Entry> records;  // guarded by mu
  };

  Shard& ShardFor(const std::string& k) { return shards_[absl::Hash<std::string>{}(k) % shards_.size()]; }

  // REQUIRES: shard.mu held (shared or exclusive).
  Entry* FindLive(Shard& shard, const std::string& k) {
    auto it = shard.records.find(k);
    if (it == shard.records.end() || it->second.record.IsExpiredAt(clock_->Now())) {
      return nullptr;
    }
    return &it->second;
  }

  const Clock* const clock_;
  std::vector<Shard> shards_;
};

}  // namespace

std::unique_ptr<SessionStore> NewMemoryStore(const StoreOptions& options, int shards) {
  return std::make_unique<MemoryStore>(options, shards);
}

}  // namespace sessionctx
