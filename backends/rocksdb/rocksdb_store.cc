#include "sessionctx/rocksdb_store.h"

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backends/rocksdb/record_codec.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/statistics.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "sessionctx/session_text.h"
#include "sessionctx/write_rules.h"
#include "src/json_text.h"

namespace sessionctx {
namespace {

using namespace rocksdb_internal;

constexpr size_t kStripes = 1024;

// By default a context up to this size (as JSON text) is kept inside the base record,
// so that a typical session is one point read; a larger one is spilled into a key per
// attribute, so that writing one attribute of a session with thousands does not
// rewrite the others (bench/rocksdb_bench.cc BM_Store_AttributeAddAtSize measures
// both sides; URI option inline_context_bytes).
constexpr int64_t kDefaultInlineContextBytes = 4096;

std::string QuotedKey(absl::string_view name) {
  std::string out;
  internal::AppendJsonString(out, name);
  return out;
}

// Translate turns a RocksDB status into the library's codes.
absl::Status Translate(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) return absl::UnavailableError(msg);
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return absl::FailedPreconditionError(
        absl::StrCat("the store is in use by another process (", s.ToString(), ")"));
  }
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  return absl::InternalError(msg);
}


void LogDataLoss(const SessionKey& key, const absl::Status& st) {
  std::fprintf(stderr, "sessionctx rocksdb: session %s/%s does not decode: %s\n",
               key.tenant.c_str(), key.session_id.c_str(), std::string(st.message()).c_str());
}

struct UriOptions {
  std::string path;
  bool sync = false;
  int64_t cache_mb = 32;
  int64_t inline_context_bytes = kDefaultInlineContextBytes;
};

absl::StatusOr<UriOptions> ParseUri(const std::string& uri) {
  UriOptions out;
  std::string rest = uri.substr(uri.find(':') + 1);
  if (rest.rfind("//", 0) == 0) rest = rest.substr(2);
  const size_t q = rest.find('?');
  out.path = rest.substr(0, q);
  if (out.path.empty()) {
    return absl::InvalidArgumentError("rocksdb: needs a path, e.g. rocksdb:./data/sessions");
  }
  if (q == std::string::npos) return out;
  for (absl::string_view pair : absl::StrSplit(rest.substr(q + 1), '&', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (kv.first == "sync") {
      if (kv.second != "true" && kv.second != "false") {
        return absl::InvalidArgumentError("rocksdb: sync must be true or false");
      }
      out.sync = kv.second == "true";
    } else if (kv.first == "cache_mb") {
      if (!absl::SimpleAtoi(kv.second, &out.cache_mb) || out.cache_mb < 0) {
        return absl::InvalidArgumentError("rocksdb: cache_mb must be a non-negative integer");
      }
    } else if (kv.first == "inline_context_bytes") {
      if (!absl::SimpleAtoi(kv.second, &out.inline_context_bytes) ||
          out.inline_context_bytes < 0 || out.inline_context_bytes > (1 << 20)) {
        return absl::InvalidArgumentError(
            "rocksdb: inline_context_bytes must be an integer from 0 to 1048576");
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat("rocksdb: unknown option ", kv.first));
    }
  }
  return out;
}

class RocksDbStore final : public SessionStore {
 public:
  RocksDbStore(std::unique_ptr<rocksdb::DB> db, rocksdb::ColumnFamilyHandle* records,
               rocksdb::ColumnFamilyHandle* expiry, bool sync, size_t inline_context_bytes,
               const Clock* clock)
      : db_(std::move(db)),
        records_(records),
        expiry_(expiry),
        clock_(clock),
        inline_context_bytes_(inline_context_bytes),
        stripes_(kStripes) {
    write_options_.sync = sync;
  }

  ~RocksDbStore() override {
    db_->FlushWAL(/*sync=*/true);
    db_->DestroyColumnFamilyHandle(records_);
    db_->DestroyColumnFamilyHandle(expiry_);
    db_->Close();
  }

  std::vector<StoreStat> Stats() override {
    std::vector<StoreStat> stats;
    uint64_t value = 0;
    if (db_->GetIntProperty("rocksdb.live-sst-files-size", &value)) {
      stats.push_back({"sessionctx_rocksdb_live_sst_bytes", "Bytes of the live SST files",
                       static_cast<double>(value)});
    }
    if (db_->GetIntProperty("rocksdb.block-cache-usage", &value)) {
      stats.push_back({"sessionctx_rocksdb_block_cache_bytes", "Bytes in the block cache",
                       static_cast<double>(value)});
    }
    if (db_->GetIntProperty("rocksdb.estimate-num-keys", &value)) {
      stats.push_back({"sessionctx_rocksdb_estimated_keys",
                       "RocksDB's estimate of the keys stored (records and attributes)",
                       static_cast<double>(value)});
    }
    if (const std::shared_ptr<rocksdb::Statistics> statistics = db_->GetDBOptions().statistics) {
      const double hits = static_cast<double>(statistics->getTickerCount(rocksdb::BLOCK_CACHE_HIT));
      const double misses =
          static_cast<double>(statistics->getTickerCount(rocksdb::BLOCK_CACHE_MISS));
      stats.push_back({"sessionctx_rocksdb_block_cache_hit_ratio",
                       "Block cache hits per block read since the store opened",
                       hits + misses > 0 ? hits / (hits + misses) : 0});
    }
    return stats;
  }

  absl::StatusOr<SessionContext> Get(const SessionKey& key) override {
    absl::StatusOr<Base> base = ReadLiveBase(key);
    if (!base.ok()) return base.status();
    return ReadWhole(key, *std::move(base));
  }

  // One point read for a session whose context is inline; the text goes out as
  // stored, no DOM.
  absl::StatusOr<std::shared_ptr<const SessionText>> GetText(const SessionKey& key) override {
    absl::StatusOr<Base> base = ReadLiveBase(key);
    if (!base.ok()) return base.status();
    if (base->inline_context) return SessionText::FromParts(base->fields, *base->inline_context);
    absl::StatusOr<SessionContext> whole = ReadWhole(key, *std::move(base));
    if (!whole.ok()) return whole.status();
    return SessionText::FromRecord(*whole);
  }

  absl::Status Create(const SessionKey& key, const SessionContext& record) override {
    std::lock_guard lock(StripeFor(key));
    absl::StatusOr<std::optional<Base>> old = ReadBase(key);
    if (!old.ok()) return old.status();
    rocksdb::WriteBatch batch;
    if (*old) {
      if (!(*old)->fields.IsExpiredAt(clock_->Now())) {
        return SessionExistsError(key);
      }
      if (absl::Status st = EraseInto(batch, key, **old); !st.ok()) return st;
    }
    (void)WriteWholeInto(batch, key, record, nullptr);
    return Translate(db_->Write(write_options_, &batch), "create");
  }

  absl::Status CompareAndSet(const SessionKey& key, int64_t expected_version,
                             const SessionContext& record) override {
    std::lock_guard lock(StripeFor(key));
    absl::StatusOr<Base> old = ReadLiveBase(key);
    if (!old.ok()) return old.status();
    if (old->fields.version != expected_version) {
      return VersionConflictError(expected_version, old->fields.version);
    }
    std::optional<Json> old_attributes;  // what is spilled into keys of their own
    if (!old->inline_context) {
      absl::StatusOr<Json> read = ReadContext(key);
      if (!read.ok()) return read.status();
      old_attributes = *std::move(read);
    }
    rocksdb::WriteBatch batch;
    if (old->fields.expires_at != record.expires_at) DropExpiryInto(batch, key, old->fields);
    (void)WriteWholeInto(batch, key, record, old_attributes ? &*old_attributes : nullptr);
    return Translate(db_->Write(write_options_, &batch), "compare-and-set");
  }

  absl::Status Delete(const SessionKey& key) override {
    std::lock_guard lock(StripeFor(key));
    absl::StatusOr<std::optional<Base>> old = ReadBase(key);
    if (!old.ok()) return old.status();
    if (!*old) return SessionNotFoundError(key);
    const bool live = !(*old)->fields.IsExpiredAt(clock_->Now());
    rocksdb::WriteBatch batch;
    if (absl::Status st = EraseInto(batch, key, **old); !st.ok()) return st;
    if (absl::Status st = Translate(db_->Write(write_options_, &batch), "delete"); !st.ok()) {
      return st;
    }
    return live ? absl::OkStatus() : SessionNotFoundError(key);
  }

  absl::StatusOr<int64_t> PurgeExpired() override {
    // The expiry index is sorted by time: read only what has expired, never a
    // customer session.
    const absl::Time now = clock_->Now();
    const std::string end = ExpiryKey(now + absl::Milliseconds(1), SessionKey{"", ""});
    std::vector<std::string> due;
    {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), expiry_));
      for (it->SeekToFirst(); it->Valid() && it->key().compare(end) < 0; it->Next()) {
        due.push_back(it->key().ToString());
      }
      if (absl::Status st = Translate(it->status(), "purge scan"); !st.ok()) return st;
    }
    int64_t removed = 0;
    for (const std::string& entry : due) {
      std::optional<ParsedExpiry> parsed = ParseExpiryKey(entry);
      if (!parsed) continue;
      std::lock_guard lock(StripeFor(parsed->key));
      absl::StatusOr<std::optional<Base>> base = ReadBase(parsed->key);
      rocksdb::WriteBatch batch;
      batch.Delete(expiry_, entry);
      if (base.ok() && *base && (*base)->fields.IsExpiredAt(now)) {
        if (absl::Status st = EraseInto(batch, parsed->key, **base); !st.ok()) return st;
        ++removed;
      } else if (!base.ok() && !absl::IsDataLoss(base.status())) {
        return base.status();
      }
      if (absl::Status st = Translate(db_->Write(write_options_, &batch), "purge"); !st.ok()) {
        return st;
      }
    }
    return removed;
  }

  absl::Status ForEach(
      const std::function<bool(const SessionKey&, const SessionContext&)>& visit) override {
    const absl::Time now = clock_->Now();
    rocksdb::ReadOptions read;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, records_));
    std::optional<SessionKey> current;
    SessionContext record;
    bool live = false;
    auto flush = [&]() -> bool {
      if (current && live) return visit(*current, record);
      return true;
    };
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::optional<ParsedKey> parsed = ParseRecordKey(it->key().ToString());
      if (!parsed) continue;
      if (parsed->is_base) {
        if (!flush()) return absl::OkStatus();
        current = parsed->key;
        absl::StatusOr<Base> base = DecodeBase(it->value().ToString());
        if (!base.ok()) {
          LogDataLoss(parsed->key, base.status());
          live = false;
          continue;
        }
        record = std::move(base->fields);
        live = !record.IsExpiredAt(now);
        if (base->inline_context) {
          record.context = Json::parse(*base->inline_context, nullptr, /*allow_exceptions=*/false);
          if (!record.context.is_object()) {
            LogDataLoss(parsed->key, absl::DataLossError("inline context does not parse"));
            live = false;
          }
        }
      } else if (current && live && parsed->key == *current) {
        absl::StatusOr<Json> value = DecodeValue(it->value().ToString());
        if (value.ok()) record.context[parsed->attribute] = *std::move(value);
      }
    }
    if (!flush()) return absl::OkStatus();
    return Translate(it->status(), "scan");
  }

  // A session whose context is inline is patched in one step under its stripe: one
  // read, the rule applied, one write. A spilled one takes the default read-CAS path.
  absl::StatusOr<int64_t> Patch(const SessionKey& key, const PatchWrite& write) override {
    {
      std::lock_guard lock(StripeFor(key));
      absl::StatusOr<Base> base = ReadLiveBase(key);
      if (!base.ok()) return base.status();
      if (base->inline_context) {
        if (!GuardAllows(write.guard, base->fields)) return GuardRefusedError();
        if (base->fields.version != write.expected_version) {
          return VersionConflictError(write.expected_version, base->fields.version);
        }
        const absl::Time old_expiry = base->fields.expires_at;
        absl::StatusOr<SessionContext> current = ReadWhole(key, *std::move(base));
        if (!current.ok()) return current.status();
        absl::StatusOr<SessionContext> next = ApplyPatch(*current, write.body);
        if (!next.ok()) return next.status();
        StampUpdate(*next, WriteStamp{write.now, write.anonymous_ttl});
        rocksdb::WriteBatch batch;
        if (old_expiry != next->expires_at) {
          DropExpiryInto(batch, key, Base{.fields = {.expires_at = old_expiry}});
        }
        absl::StatusOr<size_t> bytes = WriteWholeInto(batch, key, *next, nullptr, write.max_record_bytes);
        if (!bytes.ok()) return bytes.status();
        if (absl::Status st = Translate(db_->Write(write_options_, &batch), "patch"); !st.ok()) {
          return st;
        }
        return next->version;
      }
    }
    return SessionStore::Patch(key, write);
  }

  absl::StatusOr<AttributeResult> UpdateAttribute(const SessionKey& key,
                                                  const AttributeWrite& write) override {
    std::lock_guard lock(StripeFor(key));
    absl::StatusOr<Base> base = ReadLiveBase(key);
    if (!base.ok()) return base.status();
    if (!GuardAllows(write.guard, base->fields)) return GuardRefusedError();
    if (base->inline_context) return UpdateInlineAttribute(key, *std::move(base), write);
    const std::string attr_key = AttributeKey(key, write.name);
    std::string old_bytes;
    rocksdb::Status got = db_->Get(rocksdb::ReadOptions(), records_, attr_key, &old_bytes);
    if (!got.ok() && !got.IsNotFound()) return Translate(got, "read attribute");
    size_t old_size = 0;
    if (got.ok()) {
      absl::StatusOr<Json> old = DecodeValue(old_bytes);
      if (!old.ok()) {
        LogDataLoss(key, old.status());
        return old.status();
      }
      old_size = AttributeBytes(write.name, *old);
    }
    if (!write.value && !got.ok()) return AttributeResult{base->fields.version, false};
    const int64_t new_size = base->json_bytes - static_cast<int64_t>(old_size) +
                             (write.value ? static_cast<int64_t>(AttributeBytes(write.name, *write.value)) : 0);
    if (write.value && new_size > static_cast<int64_t>(write.max_record_bytes)) {
      return RecordTooLarge(static_cast<size_t>(new_size), write.max_record_bytes);
    }
    rocksdb::WriteBatch batch;
    const absl::Time old_expiry = base->fields.expires_at;
    StampUpdate(base->fields, WriteStamp{write.now, write.anonymous_ttl});
    base->json_bytes = new_size;
    if (old_expiry != base->fields.expires_at) DropExpiryInto(batch, key, Base{.fields = {.expires_at = old_expiry}});
    AddExpiryInto(batch, key, base->fields);
    batch.Put(records_, BaseKey(key), EncodeBase(*base));
    if (write.value) {
      batch.Put(records_, attr_key, EncodeValue(*write.value));
    } else {
      batch.Delete(records_, attr_key);
    }
    if (absl::Status st = Translate(db_->Write(write_options_, &batch), "attribute write");
        !st.ok()) {
      return st;
    }
    return AttributeResult{base->fields.version, true};
  }

 private:
  // UpdateInlineAttribute: the context is text in the base record: one member is
  // replaced in the text and the base written back (one read, one write). Past
  // the inline limit the context is spilled into attribute keys.
  // REQUIRES: the key's stripe is held; `base` is live and the guard allowed it.
  absl::StatusOr<AttributeResult> UpdateInlineAttribute(const SessionKey& key, Base base,
                                                        const AttributeWrite& write) {
    const std::string quoted = QuotedKey(write.name);
    const std::string& context = *base.inline_context;
    std::string next;
    if (!write.value) {
      if (!internal::FindMember(context, quoted)) return AttributeResult{base.fields.version, false};
      next = internal::RemoveMember(context, quoted);
    } else {
      next = internal::SetMember(context, quoted, write.value->dump());
    }
    const int64_t new_size = base.json_bytes - static_cast<int64_t>(context.size()) +
                             static_cast<int64_t>(next.size());
    if (write.value && new_size > static_cast<int64_t>(write.max_record_bytes)) {
      return RecordTooLarge(static_cast<size_t>(new_size), write.max_record_bytes);
    }
    rocksdb::WriteBatch batch;
    const absl::Time old_expiry = base.fields.expires_at;
    StampUpdate(base.fields, WriteStamp{write.now, write.anonymous_ttl});
    base.json_bytes = new_size;
    if (old_expiry != base.fields.expires_at) {
      DropExpiryInto(batch, key, Base{.fields = {.expires_at = old_expiry}});
    }
    AddExpiryInto(batch, key, base.fields);
    if (next.size() <= inline_context_bytes_) {
      base.inline_context = std::move(next);
    } else {  // spill: every attribute becomes a key of its own
      base.inline_context.reset();
      Json members = Json::parse(next, nullptr, /*allow_exceptions=*/false);
      for (auto it = members.begin(); it != members.end(); ++it) {
        batch.Put(records_, AttributeKey(key, it.key()), EncodeValue(*it));
      }
    }
    batch.Put(records_, BaseKey(key), EncodeBase(base));
    if (absl::Status st = Translate(db_->Write(write_options_, &batch), "attribute write");
        !st.ok()) {
      return st;
    }
    return AttributeResult{base.fields.version, true};
  }

  std::mutex& StripeFor(const SessionKey& key) {
    return stripes_[absl::Hash<std::string>{}(SessionPrefix(key)) % stripes_.size()];
  }

  // ReadBase: the base record if present (expired or not); DataLoss when it does not
  // decode (logged).
  absl::StatusOr<std::optional<Base>> ReadBase(const SessionKey& key) {
    std::string bytes;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), records_, BaseKey(key), &bytes);
    if (s.IsNotFound()) return std::optional<Base>();
    if (!s.ok()) return Translate(s, "read");
    absl::StatusOr<Base> base = DecodeBase(bytes);
    if (!base.ok()) {
      LogDataLoss(key, base.status());
      return base.status();
    }
    return std::optional<Base>(*std::move(base));
  }

  absl::StatusOr<Base> ReadLiveBase(const SessionKey& key) {
    absl::StatusOr<std::optional<Base>> base = ReadBase(key);
    if (!base.ok()) return base.status();
    if (!*base || (*base)->fields.IsExpiredAt(clock_->Now())) return SessionNotFoundError(key);
    return **std::move(base);
  }

  absl::StatusOr<Json> ReadContext(const SessionKey& key) {
    Json context = Json::object();
    const std::string prefix = AttributePrefix(key);
    // The bound keeps the iterator from reading past this session's attributes.
    std::string bound = SessionPrefix(key);
    bound += static_cast<char>(kAttributeMarker + 1);
    const rocksdb::Slice upper(bound);
    rocksdb::ReadOptions read;
    read.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, records_));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      absl::StatusOr<Json> value = DecodeValue(it->value().ToString());
      if (!value.ok()) {
        LogDataLoss(key, value.status());
        return value.status();
      }
      context[it->key().ToString().substr(prefix.size())] = *std::move(value);
    }
    if (absl::Status st = Translate(it->status(), "read attributes"); !st.ok()) return st;
    return context;
  }

  absl::StatusOr<SessionContext> ReadWhole(const SessionKey& key, Base base) {
    if (base.inline_context) {
      base.fields.context = Json::parse(*base.inline_context, nullptr, /*allow_exceptions=*/false);
      if (!base.fields.context.is_object()) {
        const absl::Status bad = absl::DataLossError("stored context does not parse");
        LogDataLoss(key, bad);
        return bad;
      }
      return std::move(base.fields);
    }
    absl::StatusOr<Json> context = ReadContext(key);
    if (!context.ok()) return context.status();
    base.fields.context = *std::move(context);
    return std::move(base.fields);
  }

  void AddExpiryInto(rocksdb::WriteBatch& batch, const SessionKey& key, const SessionContext& s) {
    if (s.expires_at != absl::InfiniteFuture()) batch.Put(expiry_, ExpiryKey(s.expires_at, key), "");
  }
  void DropExpiryInto(rocksdb::WriteBatch& batch, const SessionKey& key, const SessionContext& s) {
    if (s.expires_at != absl::InfiniteFuture()) batch.Delete(expiry_, ExpiryKey(s.expires_at, key));
  }
  void DropExpiryInto(rocksdb::WriteBatch& batch, const SessionKey& key, const Base& b) {
    DropExpiryInto(batch, key, b.fields);
  }

  // WriteWholeInto writes `record` over a session. `old_attributes`: the attributes
  // the session has in keys of their own (null when none: new, or inline). A small
  // context goes inline (and spilled keys are deleted); a large one is written as
  // attribute keys, only those that changed.
  // With `max_bytes`, a record larger than that is refused (ResourceExhausted) and
  // nothing is added to `batch`. Returns the record's JSON size.
  absl::StatusOr<size_t> WriteWholeInto(rocksdb::WriteBatch& batch, const SessionKey& key,
                                        const SessionContext& record, const Json* old_attributes,
                                        size_t max_bytes = SIZE_MAX) {
    static const Json kNone = Json::object();
    const Json& old = old_attributes ? *old_attributes : kNone;
    const Json& context = record.context.is_object() ? record.context : kNone;
    Base base;
    base.fields = record;
    base.fields.context = Json::object();
    std::string text = context.dump();
    const size_t json_bytes = SessionText::FromParts(record, text)->json().size();
    if (json_bytes > max_bytes) return RecordTooLarge(json_bytes, max_bytes);
    base.json_bytes = static_cast<int64_t>(json_bytes);
    const bool inline_context = text.size() <= inline_context_bytes_;
    if (inline_context) base.inline_context = std::move(text);
    batch.Put(records_, BaseKey(key), EncodeBase(base));
    AddExpiryInto(batch, key, record);
    for (auto it = old.begin(); it != old.end(); ++it) {
      if (inline_context || !context.contains(it.key())) {
        batch.Delete(records_, AttributeKey(key, it.key()));
      }
    }
    if (inline_context) return json_bytes;
    for (auto it = context.begin(); it != context.end(); ++it) {
      auto prev = old.find(it.key());
      if (prev == old.end() || *prev != *it) {
        batch.Put(records_, AttributeKey(key, it.key()), EncodeValue(*it));
      }
    }
    return json_bytes;
  }

  // EraseInto removes the base, every attribute and the expiry entry.
  absl::Status EraseInto(rocksdb::WriteBatch& batch, const SessionKey& key, const Base& base) {
    batch.Delete(records_, BaseKey(key));
    DropExpiryInto(batch, key, base.fields);
    if (base.inline_context) return absl::OkStatus();  // no attribute keys
    const std::string prefix = AttributePrefix(key);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), records_));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      batch.Delete(records_, it->key());
    }
    return Translate(it->status(), "erase");
  }

  const std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* const records_;
  rocksdb::ColumnFamilyHandle* const expiry_;
  const Clock* const clock_;
  const size_t inline_context_bytes_;
  rocksdb::WriteOptions write_options_;
  // Every read-check-write of one session holds its stripe; RocksDB is single-process
  // (its LOCK file), so in-process locks make compare-and-set atomic.
  // (std::mutex rather than absl::Mutex, so that ThreadSanitizer sees them.)
  std::vector<std::mutex> stripes_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SessionStore>> OpenRocksDbStore(const std::string& uri,
                                                               const StoreOptions& options) {
  absl::StatusOr<UriOptions> parsed = ParseUri(uri);
  if (!parsed.ok()) return parsed.status();
  std::error_code ec;
  std::filesystem::create_directories(parsed->path, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("rocksdb: cannot create ", parsed->path, ": ", ec.message()));
  }
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  // Tickers only (no histograms, no timers): what the block-cache hit ratio needs.
  db_options.statistics = rocksdb::CreateDBStatistics();
  db_options.statistics->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(static_cast<size_t>(parsed->cache_mb) << 20);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions cf_options(db_options);
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, cf_options}, {"expiry", cf_options}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(db_options), parsed->path, families,
                                        &handles, &raw);
  if (!s.ok()) return Translate(s, absl::StrCat("rocksdb: cannot open ", parsed->path));
  return std::make_unique<RocksDbStore>(std::unique_ptr<rocksdb::DB>(raw), handles[0], handles[1],
                                        parsed->sync,
                                        static_cast<size_t>(parsed->inline_context_bytes),
                                        options.clock);
}

}  // namespace sessionctx
