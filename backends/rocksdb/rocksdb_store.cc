#include "sessionctx/rocksdb_store.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backends/rocksdb/info_log.h"
#include "backends/rocksdb/record_codec.h"
#include "backends/rocksdb/rocksdb_options.h"
#include "backends/rocksdb/write_guard.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/snapshot.h"
#include "rocksdb/sst_file_writer.h"
#include "rocksdb/statistics.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "sessionctx/backend_support.h"
#include "sessionctx/event_support.h"
#include "sessionctx/session_text.h"
#include "sessionctx/write_rules.h"

namespace sessionctx {
namespace {

using namespace rocksdb_internal;

constexpr size_t kStripes = 1024;

// View: a Slice as an absl::string_view (Debian's Abseil has its own string_view).
absl::string_view View(const rocksdb::Slice& s) {
  return absl::string_view(s.data(), s.size());
}

// The "events" column family's one key that is not a position (9 bytes, sorting after
// every position): the highest position trimming dropped.
constexpr char kTrimmedKey[] = "\xff\xff\xff\xff\xff\xff\xff\xff\x01";

// By default a context up to this size (as JSON text) is kept inside the base record,
// so that a typical session is one point read; a larger one is spilled into a key per
// attribute, so that writing one attribute of a session with thousands does not
// rewrite the others (bench/rocksdb_bench.cc BM_Store_AttributeAddAtSize measures
// both sides; URI option inline_context_bytes).
constexpr int64_t kDefaultInlineContextBytes = 4096;

// ExpiryBucket: the start of the minute `t` falls in (the expiry index's granularity).
absl::Time ExpiryBucket(absl::Time t) {
  if (t == absl::InfiniteFuture()) return t;
  return absl::FromUnixSeconds(backend::ExpiryMinute(t) * 60);
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
  int64_t import_buffer_mb = 256;  // what a bulk import holds before a part goes in
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
    } else if (kv.first == "import_buffer_mb") {
      if (!absl::SimpleAtoi(kv.second, &out.import_buffer_mb) ||
          out.import_buffer_mb < 1) {
        return absl::InvalidArgumentError(
            "rocksdb: import_buffer_mb must be a positive integer");
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
               rocksdb::ColumnFamilyHandle* expiry,
               rocksdb::ColumnFamilyHandle* customers,
               rocksdb::ColumnFamilyHandle* events, bool sync,
               size_t inline_context_bytes, size_t import_buffer_bytes,
               const StoreOptions& options, uint64_t last_event, uint64_t trimmed_events,
               std::shared_ptr<ErrorListener> errors)
      : db_(std::move(db)),
        records_(records),
        expiry_(expiry),
        customers_(customers),
        events_(events),
        clock_(options.clock),
        event_options_(options.events),
        inline_context_bytes_(inline_context_bytes),
        import_buffer_bytes_(import_buffer_bytes),
        stripes_(kStripes),
        sequencer_(last_event),
        trimmed_(trimmed_events),
        guard_(std::make_unique<WriteGuard>(db_.get(), std::move(errors))) {
    write_options_.sync = sync;
  }

  ~RocksDbStore() override {
    const bool refusing = guard_->Refusing();
    guard_.reset();  // no recovery runs from here on
    // A WAL whose writer failed is never written again (see write_guard.h); what it
    // acknowledged is on disk already, the rest was refused.
    if (!refusing) db_->FlushWAL(/*sync=*/true);
    db_->DestroyColumnFamilyHandle(records_);
    db_->DestroyColumnFamilyHandle(expiry_);
    db_->DestroyColumnFamilyHandle(customers_);
    db_->DestroyColumnFamilyHandle(events_);
    db_->Close();
  }

  // Not ready while writes are refused (a full disk, say), though reads are served.
  absl::Status Ready() override {
    if (absl::Status st = guard_->Ready(); !st.ok()) return st;
    return SessionStore::Ready();
  }

  std::vector<StoreStat> Stats() override {
    std::vector<StoreStat> stats = guard_->Stats();
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
    absl::StatusOr<Stored> live = ReadLive(key);
    if (!live.ok()) return live.status();
    if (live->text) return live->text->Record();
    // A spilled session is several keys: read them again from one snapshot, so that
    // a write committed between two reads is seen whole or not at all.
    rocksdb::ManagedSnapshot snapshot(db_.get());
    live = ReadLive(key, snapshot.snapshot());
    if (!live.ok()) return live.status();
    if (live->text) return live->text->Record();
    return ReadWhole(key, *std::move(live->base), snapshot.snapshot());
  }

  // From the memtables and the block cache only (kBlockCacheTier): RocksDB answers
  // Incomplete where it would read the disk. A spilled session is several reads: not
  // tried.
  absl::StatusOr<std::shared_ptr<const SessionText>> TryGetText(const SessionKey& key) override {
    absl::StatusOr<std::optional<Stored>> stored = ReadStored(key, nullptr, rocksdb::kBlockCacheTier);
    if (!stored.ok()) return stored.status();
    if (!*stored || (*stored)->IsExpiredAt(clock_->Now())) return backend::SessionNotFoundError(key);
    if (!(*stored)->text) return backend::WouldBlockError();
    return std::move((*stored)->text);
  }

  // A small session is one point read, and its stored text is what goes out: no
  // field is decoded or rendered again.
  absl::StatusOr<std::shared_ptr<const SessionText>> GetText(const SessionKey& key) override {
    absl::StatusOr<Stored> live = ReadLive(key);
    if (!live.ok()) return live.status();
    if (live->text) return std::move(live->text);
    // A spilled session: its attributes' texts joined (no DOM), beside the base, all
    // read from one snapshot (as in Get).
    rocksdb::ManagedSnapshot snapshot(db_.get());
    live = ReadLive(key, snapshot.snapshot());
    if (!live.ok()) return live.status();
    if (live->text) return std::move(live->text);
    absl::StatusOr<std::string> context = ReadContextText(key, snapshot.snapshot());
    if (!context.ok()) return context.status();
    return backend::TextLayout::FromParts(live->base->fields, *context);
  }

  absl::Status Create(const SessionKey& key, const SessionContext& record) override {
    WriteLock lock(*this, key);
    absl::StatusOr<std::optional<Stored>> old = ReadStored(key);
    if (!old.ok()) return old.status();
    rocksdb::WriteBatch batch;
    Events events;
    if (*old) {
      if (!(*old)->IsExpiredAt(clock_->Now())) return backend::SessionExistsError(key);
      if (absl::Status st = EraseInto(batch, key, **old); !st.ok()) return st;
      events.push_back({key, EventType::kExpired, (*old)->version()});
    }
    absl::StatusOr<size_t> written = WriteRecordInto(batch, key, record, nullptr);
    if (!written.ok()) return written.status();
    MoveExpiryInto(batch, key, std::nullopt, record.expires_at);
    MoveCustomerInto(batch, key, std::nullopt, record.customer_id);
    events.push_back({key, EventType::kCreated, record.version});
    return Commit(batch, "create", events);
  }

  absl::Status CompareAndSet(const SessionKey& key, int64_t expected_version,
                             const SessionContext& record) override {
    WriteLock lock(*this, key);
    absl::StatusOr<Stored> old = ReadLive(key);
    if (!old.ok()) return old.status();
    if (old->version() != expected_version) {
      return backend::VersionConflictError(expected_version, old->version());
    }
    std::optional<Json> old_attributes;  // what is spilled into keys of their own
    if (old->base) {
      absl::StatusOr<Json> read = ReadContext(key);
      if (!read.ok()) return read.status();
      old_attributes = *std::move(read);
    }
    rocksdb::WriteBatch batch;
    absl::StatusOr<size_t> written =
        WriteRecordInto(batch, key, record, old_attributes ? &*old_attributes : nullptr);
    if (!written.ok()) return written.status();
    MoveExpiryInto(batch, key, old->expires_at(), record.expires_at);
    MoveCustomerInto(batch, key, old->customer_id(), record.customer_id);
    return Commit(batch, "compare-and-set", {{key, EventType::kChanged, record.version}});
  }

  absl::Status Delete(const SessionKey& key, std::optional<int64_t> expected_version) override {
    WriteLock lock(*this, key);
    absl::StatusOr<std::optional<Stored>> old = ReadStored(key);
    if (!old.ok()) return old.status();
    if (!*old) return backend::SessionNotFoundError(key);
    const bool live = !(*old)->IsExpiredAt(clock_->Now());
    if (live && expected_version && *expected_version != (*old)->version()) {
      return backend::VersionConflictError(*expected_version, (*old)->version());
    }
    rocksdb::WriteBatch batch;
    if (absl::Status st = EraseInto(batch, key, **old); !st.ok()) return st;
    if (absl::Status st = Commit(
            batch, "delete",
            {{key, live ? EventType::kDeleted : EventType::kExpired, (*old)->version()}});
        !st.ok()) {
      return st;
    }
    return live ? absl::OkStatus() : backend::SessionNotFoundError(key);
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
      WriteLock lock(*this, parsed->key);
      absl::StatusOr<std::optional<Stored>> stored = ReadStored(parsed->key);
      if (!stored.ok() && !absl::IsDataLoss(stored.status())) return stored.status();
      rocksdb::WriteBatch batch;
      Events events;
      if (stored.ok() && *stored && (*stored)->IsExpiredAt(now)) {
        if (absl::Status st = EraseInto(batch, parsed->key, **stored); !st.ok()) return st;
        events.push_back({parsed->key, EventType::kExpired, (*stored)->version()});
        ++removed;
      } else if (stored.ok() && *stored && (*stored)->expires_at() != absl::InfiniteFuture()) {
        const std::string own = ExpiryKey(ExpiryBucket((*stored)->expires_at()), parsed->key);
        if (own == entry) continue;  // its own entry, due within the minute: not expired yet
        batch.Put(expiry_, own, "");  // a stale entry goes; the session keeps its own
      }
      batch.Delete(expiry_, entry);  // done with, or stale (an older expiry, a login)
      if (absl::Status st = Commit(batch, "purge", events); !st.ok()) {
        return st;
      }
    }
    if (absl::Status st = TrimEvents(now); !st.ok()) return st;
    return removed;
  }

  absl::Status ForEach(
      const std::function<bool(const SessionKey&, const SessionContext&)>& visit) override {
    const absl::Time now = clock_->Now();
    rocksdb::ReadOptions read;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, records_));
    std::optional<SessionKey> current;
    SessionContext record;
    bool live = false, spilled = false;
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
        live = false;
        std::string bytes = it->value().ToString();
        spilled = !IsTextRecord(bytes);
        absl::StatusOr<SessionContext> decoded = DecodeRecord(std::move(bytes));
        if (!decoded.ok()) {
          LogDataLoss(parsed->key, decoded.status());
          continue;
        }
        record = *std::move(decoded);
        live = !record.IsExpiredAt(now);
      } else if (current && live && spilled && parsed->key == *current) {
        absl::StatusOr<Json> value = DecodeValue(it->value().ToString());
        if (value.ok()) record.context[parsed->attribute] = *std::move(value);
      }
    }
    if (!flush()) return absl::OkStatus();
    return Translate(it->status(), "scan");
  }

  // Sessions go in WriteBatches of up to kImportGroup, each written under the
  // stripes of its keys (taken in order, so two imports cannot deadlock). A bounded
  // group keeps the locks held at once few (ThreadSanitizer's deadlock detector, for
  // one, tracks at most 64 per thread) and writers of other keys unblocked.
  absl::StatusOr<ImportResult> Import(const std::vector<ImportRecord>& records,
                                      const ImportOptions& options) override {
    if (absl::Status st = backend::CheckImportKeys(records); !st.ok()) return st;
    ImportResult result;
    const absl::Time now = clock_->Now();
    constexpr size_t kImportGroup = 48;
    for (size_t begin = 0; begin < records.size(); begin += kImportGroup) {
      const size_t end = std::min(records.size(), begin + kImportGroup);
      std::vector<size_t> stripes;
      for (size_t i = begin; i < end; ++i) stripes.push_back(StripeIndex(records[i].key));
      std::sort(stripes.begin(), stripes.end());
      stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
      std::shared_lock bulk(bulk_);
      std::vector<std::unique_lock<std::mutex>> locks;
      locks.reserve(stripes.size());
      for (size_t i : stripes) locks.emplace_back(stripes_.at(i));
      rocksdb::WriteBatch batch;
      Events events;
      for (size_t i = begin; i < end; ++i) {
        const ImportRecord& r = records[i];
        absl::StatusOr<std::optional<Stored>> old = ReadStored(r.key);
        if (!old.ok() && !absl::IsDataLoss(old.status())) return old.status();
        EventType type = EventType::kCreated;
        if (old.ok() && *old) {
          const bool live = !(*old)->IsExpiredAt(now);
          if (live &&
              !backend::ImportReplaces((*old)->version(), r.record.version, options)) {
            ++result.skipped;
            continue;
          }
          if (absl::Status st = EraseInto(batch, r.key, **old); !st.ok()) return st;
          if (live) {
            type = EventType::kChanged;
          } else {
            events.push_back({r.key, EventType::kExpired, (*old)->version()});
          }
        }
        events.push_back({r.key, type, r.record.version});
        ++result.written;
        const Json* context = r.context_json.empty() && r.record.context.is_object()
                                  ? &r.record.context
                                  : nullptr;
        absl::StatusOr<size_t> written = WriteInto(
            batch, r.key, r.record, backend::ImportContextJson(r), context, nullptr);
        if (!written.ok()) return written.status();
        MoveExpiryInto(batch, r.key, std::nullopt, r.record.expires_at);
        MoveCustomerInto(batch, r.key, std::nullopt, r.record.customer_id);
      }
      if (absl::Status st = Commit(batch, "import", events); !st.ok()) {
        return st;
      }
    }
    return result;
  }

  std::unique_ptr<BulkImport> BeginImport(const ImportOptions& options) override {
    return std::make_unique<BulkIngest>(*this, options);
  }

  // CustomerIds: up to `n` session ids of `customer` from the index, after `cursor`.
  absl::StatusOr<std::vector<std::string>> CustomerIds(const CustomerKey& customer,
                                                       const std::string& cursor,
                                                       size_t n) {
    const std::string prefix = CustomerPrefix(customer.tenant, customer.customer_id);
    std::string bound = prefix;
    bound.back() = '\1';  // past every key of this prefix
    const rocksdb::Slice upper(bound);
    rocksdb::ReadOptions read;
    read.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, customers_));
    std::vector<std::string> ids;
    for (it->Seek(prefix + cursor); it->Valid() && ids.size() < n; it->Next()) {
      std::string id = it->key().ToString().substr(prefix.size());
      if (id == cursor) continue;  // the cursor itself (the last one listed)
      ids.push_back(std::move(id));
    }
    if (absl::Status st = Translate(it->status(), "read customer index"); !st.ok())
      return st;
    return ids;
  }

  // The index is written in the same WriteBatch as the session, so it is exact; each
  // session it names is read for its summary (an imported one may have expired).
  absl::StatusOr<CustomerSessionPage> ListCustomerSessions(const CustomerKey& customer,
                                                           const std::string& cursor,
                                                           int limit) override {
    if (absl::Status st = backend::CheckCustomerQuery(customer, limit); !st.ok())
      return st;
    const absl::Time now = clock_->Now();
    return backend::ListFromIndex(
        cursor, limit,
        [&](const std::string& after, size_t n) {
          return CustomerIds(customer, after, n);
        },
        [&](const std::string& id) -> absl::StatusOr<std::optional<CustomerSession>> {
          absl::StatusOr<std::optional<Stored>> stored =
              ReadStored({customer.tenant, id});
          if (!stored.ok() && !absl::IsDataLoss(stored.status())) return stored.status();
          if (!stored.ok() || !*stored || (*stored)->IsExpiredAt(now))
            return std::nullopt;
          const Stored& s = **stored;
          if (s.text) return backend::SummaryOf(*s.text, id);
          CustomerSession summary = backend::SummaryOf(s.base->fields);
          summary.session_id = id;
          return summary;
        });
  }

  // Each session the index names is deleted under its stripe, in its own batch, if it
  // still belongs to the customer.
  absl::StatusOr<int64_t> EndCustomerSessions(
      const CustomerKey& customer, const std::optional<std::string>& keep) override {
    if (absl::Status st = backend::CheckCustomerQuery(customer, std::nullopt); !st.ok())
      return st;
    absl::StatusOr<std::vector<std::string>> ids = CustomerIds(customer, "", SIZE_MAX);
    if (!ids.ok()) return ids.status();
    const absl::Time now = clock_->Now();
    int64_t ended = 0;
    for (const std::string& id : *ids) {
      if (id == keep) continue;
      const SessionKey key{customer.tenant, id};
      WriteLock lock(*this, key);
      absl::StatusOr<std::optional<Stored>> stored = ReadStored(key);
      if (!stored.ok()) return stored.status();
      if (!*stored || (*stored)->customer_id() != customer.customer_id) continue;
      rocksdb::WriteBatch batch;
      if (absl::Status st = EraseInto(batch, key, **stored); !st.ok()) return st;
      const bool live = !(*stored)->IsExpiredAt(now);
      if (absl::Status st = Commit(batch, "end customer sessions",
                                   {{key, live ? EventType::kEnded : EventType::kExpired,
                                     (*stored)->version()}});
          !st.ok()) {
        return st;
      }
      if (live) ++ended;
    }
    return ended;
  }

  // BuildCustomerIndex: the index entries of the sessions a store written before the
  // index existed holds, once (kCustomerIndexBuilt records it). Runs at open, before
  // any write.
  absl::Status BuildCustomerIndex() {
    std::string marker;
    rocksdb::Status got =
        db_->Get(rocksdb::ReadOptions(), customers_, kCustomerIndexBuilt, &marker);
    if (got.ok()) return absl::OkStatus();
    if (!got.IsNotFound()) return Translate(got, "read customer index");
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), records_));
    rocksdb::WriteBatch batch;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::optional<ParsedKey> parsed = ParseRecordKey(it->key().ToString());
      if (!parsed || !parsed->is_base) continue;
      absl::StatusOr<SessionContext> record = DecodeRecord(it->value().ToString());
      if (!record.ok() || !record->customer_id) continue;
      batch.Put(customers_, CustomerIndexKey(parsed->key, *record->customer_id), "");
      if (batch.Count() >= 1000) {
        if (absl::Status st = Commit(batch, "build customer index"); !st.ok()) return st;
        batch.Clear();
      }
    }
    if (absl::Status st = Translate(it->status(), "scan"); !st.ok()) return st;
    batch.Put(customers_, kCustomerIndexBuilt, "");
    return Commit(batch, "build customer index");
  }

  // A session is patched in one step under its stripe. A small one: one read, the
  // fields patched, only the context members the body names replaced in the text,
  // one write. A spilled one: PatchSpilled.
  absl::StatusOr<int64_t> Patch(const SessionKey& key, const PatchWrite& write) override {
    WriteLock lock(*this, key);
    absl::StatusOr<Stored> live = ReadLive(key);
    if (!live.ok()) return live.status();
    if (live->text) {
      const SessionText& text = *live->text;
      absl::StatusOr<SessionContext> fields = text.Fields();
      if (!fields.ok()) return fields.status();
      absl::StatusOr<SessionContext> next = backend::PatchFields(*fields, write);
      if (!next.ok()) return next.status();
      const std::string context = backend::PatchedContext(text.context_json(), write.body)
                                      .value_or(std::string(text.context_json()));
      rocksdb::WriteBatch batch;
      absl::StatusOr<size_t> written =
          WriteInto(batch, key, *next, context, nullptr, nullptr, write.max_record_bytes);
      if (!written.ok()) return written.status();
      MoveExpiryInto(batch, key, text.expires_at(), next->expires_at);
      if (absl::Status st =
              Commit(batch, "patch", {{key, EventType::kChanged, next->version}});
          !st.ok()) {
        return st;
      }
      return next->version;
    }
    return PatchSpilled(key, *std::move(live->base), write);
  }

  // ContextPatch: what a PATCH did to a spilled session's attribute keys.
  struct ContextPatch {
    int64_t change = 0;  // the attributes' share of the record's size, after - before
    absl::flat_hash_set<std::string> removed;  // attributes it removed
    bool written_any = false;                  // whether it wrote one
  };

  // ClearSpilled: every attribute key of `key` deleted into `batch` ("context": null).
  absl::StatusOr<ContextPatch> ClearSpilled(const SessionKey& key, rocksdb::WriteBatch& batch) {
    absl::StatusOr<Json> all = ReadContext(key);
    if (!all.ok()) return all.status();
    ContextPatch out;
    for (auto it = all->begin(); it != all->end(); ++it) {
      batch.Delete(records_, AttributeKey(key, it.key()));
      out.change -= static_cast<int64_t>(backend::AttributeBytes(it.key(), *it));
    }
    return out;
  }

  // PatchSpilledContext: the attributes `patch` names, each read, merged and written
  // into `batch` as its own key (null removes one).
  absl::StatusOr<ContextPatch> PatchSpilledContext(const SessionKey& key, const Json& patch,
                                                   rocksdb::WriteBatch& batch) {
    ContextPatch out;
    for (auto it = patch.begin(); it != patch.end(); ++it) {
      const std::string attr_key = AttributeKey(key, it.key());
      std::string old_bytes;
      rocksdb::Status got = db_->Get(rocksdb::ReadOptions(), records_, attr_key, &old_bytes);
      if (!got.ok() && !got.IsNotFound()) return Translate(got, "read attribute");
      std::optional<Json> old;
      if (got.ok()) {
        absl::StatusOr<Json> decoded = DecodeValue(old_bytes);
        if (!decoded.ok()) {
          LogDataLoss(key, decoded.status());
          return decoded.status();
        }
        old = *std::move(decoded);
        out.change -= static_cast<int64_t>(backend::AttributeBytes(it.key(), *old));
      }
      if (it->is_null()) {
        if (old) {
          batch.Delete(records_, attr_key);
          out.removed.insert(it.key());
        }
        continue;
      }
      Json value = old ? *std::move(old) : Json();
      MergePatch(value, *it);
      out.change += static_cast<int64_t>(backend::AttributeBytes(it.key(), value));
      batch.Put(records_, attr_key, EncodeValue(value));
      out.written_any = true;
    }
    return out;
  }

  // PatchSpilled: a spilled session patched under its stripe (held by the caller):
  // the base fields, and only the attributes the body's context names, each read,
  // merged and written as its own key; "context": null removes every attribute key.
  absl::StatusOr<int64_t> PatchSpilled(const SessionKey& key, Base base, const PatchWrite& write) {
    base.fields.context = Json::object();
    absl::StatusOr<SessionContext> next = backend::PatchFields(base.fields, write);
    if (!next.ok()) return next.status();
    // The record's size, tracked by difference: the fields' share, then each
    // attribute's (`change`), then the comma that comes or goes with an empty context.
    int64_t bytes = base.json_bytes + static_cast<int64_t>(backend::RecordBytes(*next)) -
                    static_cast<int64_t>(backend::RecordBytes(base.fields));
    absl::StatusOr<bool> had_any = HasAttributeOtherThan(key, {});
    if (!had_any.ok()) return had_any.status();
    rocksdb::WriteBatch batch;
    const auto c = write.body.find("context");
    ContextPatch patched;
    if (c != write.body.end()) {
      absl::StatusOr<ContextPatch> done = c->is_null() ? ClearSpilled(key, batch)
                                                       : PatchSpilledContext(key, *c, batch);
      if (!done.ok()) return done.status();
      patched = *std::move(done);
    }
    const int64_t change = patched.change;
    const bool written_any = patched.written_any;
    const absl::flat_hash_set<std::string>& removed = patched.removed;
    bool becomes_empty = !written_any && (!*had_any || (c != write.body.end() && c->is_null()));
    if (!written_any && *had_any && !becomes_empty && !removed.empty()) {
      absl::StatusOr<bool> others = HasAttributeOtherThan(key, removed);
      if (!others.ok()) return others.status();
      becomes_empty = !*others;
    }
    bytes += ContextBytesChange(change, !*had_any, becomes_empty);
    if (bytes > static_cast<int64_t>(write.max_record_bytes)) {
      return backend::RecordTooLarge(static_cast<size_t>(bytes), write.max_record_bytes);
    }
    MoveExpiryInto(batch, key, base.fields.expires_at, next->expires_at);
    Base written{*std::move(next), bytes};
    batch.Put(records_, BaseKey(key), EncodeBase(written));
    if (absl::Status st =
            Commit(batch, "patch", {{key, EventType::kChanged, written.fields.version}});
        !st.ok()) {
      return st;
    }
    return written.fields.version;
  }

  absl::StatusOr<AttributeResult> UpdateAttribute(const SessionKey& key,
                                                  const AttributeWrite& write) override {
    WriteLock lock(*this, key);
    absl::StatusOr<Stored> live = ReadLive(key);
    if (!live.ok()) return live.status();
    if (absl::Status st = backend::CheckWrite(live->customer_id(), live->version(), write.guard, write.expected_version);
        !st.ok()) {
      return st;
    }
    if (live->text) return UpdateTextAttribute(key, *live->text, write);
    Base& base = *live->base;
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
      old_size = backend::AttributeBytes(write.name, *old);
    }
    if (!write.value && !got.ok()) return AttributeResult{base.fields.version, false};
    // The record's size after the write, exact: the attribute's change, a comma that
    // comes or goes when the context was or becomes empty, the new version's digits.
    bool was_empty = false, becomes_empty = false;
    if (!got.ok() || !write.value) {
      absl::StatusOr<bool> others = HasAttributeOtherThan(key, {write.name});
      if (!others.ok()) return others.status();
      was_empty = !got.ok() && !*others;
      becomes_empty = !write.value && !*others;
    }
    const int64_t new_size =
        base.json_bytes + ContextBytesChange(
                              static_cast<int64_t>((write.value ? backend::AttributeBytes(write.name, *write.value) : 0)) -
                                  static_cast<int64_t>(old_size),
                              was_empty, becomes_empty) +
        static_cast<int64_t>(backend::Digits(base.fields.version + 1) - backend::Digits(base.fields.version));
    if (write.value && new_size > static_cast<int64_t>(write.max_record_bytes)) {
      return backend::RecordTooLarge(static_cast<size_t>(new_size), write.max_record_bytes);
    }
    rocksdb::WriteBatch batch;
    const absl::Time old_expiry = base.fields.expires_at;
    backend::StampUpdate(base.fields, backend::WriteTime{write.now, write.anonymous_ttl});
    base.json_bytes = new_size;
    MoveExpiryInto(batch, key, old_expiry, base.fields.expires_at);
    batch.Put(records_, BaseKey(key), EncodeBase(base));
    if (write.value) {
      batch.Put(records_, attr_key, EncodeValue(*write.value));
    } else {
      batch.Delete(records_, attr_key);
    }
    if (absl::Status st = Commit(batch, "attribute write",
                                 {{key, EventType::kChanged, base.fields.version}});
        !st.ok()) {
      return st;
    }
    return AttributeResult{base.fields.version, true};
  }

 private:
  // Stored: what a session's base key holds, in one of two forms.
  struct Stored {
    std::shared_ptr<const SessionText> text;  // a small session, all of it
    std::optional<Base> base;                 // a spilled one: fields; attributes apart

    int64_t version() const { return text ? text->version() : base->fields.version; }
    absl::Time expires_at() const { return text ? text->expires_at() : base->fields.expires_at; }
    const std::optional<std::string>& customer_id() const {
      return text ? text->customer_id() : base->fields.customer_id;
    }
    bool IsExpiredAt(absl::Time now) const { return expires_at() <= now; }
  };

  // DecodeRecord: a base key's bytes as a record (for a spilled session, without its
  // attributes).
  static absl::StatusOr<SessionContext> DecodeRecord(std::string bytes) {
    if (IsTextRecord(bytes)) {
      absl::StatusOr<std::shared_ptr<const SessionText>> text = DecodeText(std::move(bytes));
      if (!text.ok()) return text.status();
      return (*text)->Record();
    }
    absl::StatusOr<Base> base = DecodeBase(bytes);
    if (!base.ok()) return base.status();
    return std::move(base->fields);
  }

  // UpdateTextAttribute: one member replaced in a small session's text, the text
  // written back (one read, one write). Past the inline limit the context is spilled.
  // REQUIRES: the key's stripe is held; `text` is live and the guard allowed it.
  absl::StatusOr<AttributeResult> UpdateTextAttribute(const SessionKey& key,
                                                      const SessionText& text,
                                                      const AttributeWrite& write) {
    absl::StatusOr<std::optional<std::string>> edited = backend::EditContext(text, write);
    if (!edited.ok()) return edited.status();
    if (!*edited) return AttributeResult{text.version(), false};
    const std::string& next = **edited;
    const backend::Stamp stamp = backend::NextStamp(text.customer_id(), text.version(), {write.now, write.anonymous_ttl});
    rocksdb::WriteBatch batch;
    MoveExpiryInto(batch, key, text.expires_at(), stamp.expires_at);
    if (next.size() <= inline_context_bytes_) {
      batch.Put(records_, BaseKey(key),
                EncodeText(*backend::TextLayout::WithContext(text, next, stamp)));
    } else {
      absl::StatusOr<SessionContext> fields = text.Fields();
      if (!fields.ok()) return fields.status();
      fields->version = stamp.version;
      fields->modified_at = stamp.modified_at;
      fields->expires_at = stamp.expires_at;
      absl::StatusOr<size_t> written = WriteInto(batch, key, *fields, next, nullptr, nullptr);
      if (!written.ok()) return written.status();
    }
    if (absl::Status st =
            Commit(batch, "attribute write", {{key, EventType::kChanged, stamp.version}});
        !st.ok()) {
      return st;
    }
    return AttributeResult{stamp.version, true};
  }

  size_t StripeIndex(const SessionKey& key) const {
    return stripes_.IndexOf(absl::Hash<std::string>{}(SessionPrefix(key)));
  }
  std::mutex& StripeFor(const SessionKey& key) { return stripes_.at(StripeIndex(key)); }

  // ReadStored: what the base key holds, if anything (expired or not); DataLoss when
  // it does not decode (logged).
  // The Read* functions read the latest state, or `snapshot`'s when given.
  // With `tier` kBlockCacheTier, WouldBlockError where the disk would be read.
  absl::StatusOr<std::optional<Stored>> ReadStored(
      const SessionKey& key, const rocksdb::Snapshot* snapshot = nullptr,
      rocksdb::ReadTier tier = rocksdb::kReadAllTier) {
    std::string bytes;
    rocksdb::ReadOptions read;
    read.snapshot = snapshot;
    read.read_tier = tier;
    rocksdb::Status s = db_->Get(read, records_, BaseKey(key), &bytes);
    if (s.IsNotFound()) return std::optional<Stored>();
    if (s.IsIncomplete() && tier == rocksdb::kBlockCacheTier) return backend::WouldBlockError();
    if (!s.ok()) return Translate(s, "read");
    Stored stored;
    if (IsTextRecord(bytes)) {
      absl::StatusOr<std::shared_ptr<const SessionText>> text = DecodeText(std::move(bytes));
      if (!text.ok()) {
        LogDataLoss(key, text.status());
        return text.status();
      }
      stored.text = *std::move(text);
    } else {
      absl::StatusOr<Base> base = DecodeBase(bytes);
      if (!base.ok()) {
        LogDataLoss(key, base.status());
        return base.status();
      }
      stored.base = *std::move(base);
    }
    return std::optional<Stored>(std::move(stored));
  }

  absl::StatusOr<Stored> ReadLive(const SessionKey& key, const rocksdb::Snapshot* snapshot = nullptr) {
    absl::StatusOr<std::optional<Stored>> stored = ReadStored(key, snapshot);
    if (!stored.ok()) return stored.status();
    if (!*stored || (*stored)->IsExpiredAt(clock_->Now())) return backend::SessionNotFoundError(key);
    return **std::move(stored);
  }

  // ForEachAttribute calls `visit(name, stored value)` for each attribute key of a
  // spilled session, in key order, until it returns an error (Cancelled: stop, OK).
  template <typename Visit>
  absl::Status ForEachAttribute(const SessionKey& key, const rocksdb::Snapshot* snapshot, Visit&& visit) {
    const std::string prefix = AttributePrefix(key);
    // The bound keeps the iterator from reading past this session's attributes.
    std::string bound = SessionPrefix(key);
    bound += static_cast<char>(kAttributeMarker + 1);
    const rocksdb::Slice upper(bound);
    rocksdb::ReadOptions read;
    read.iterate_upper_bound = &upper;
    read.snapshot = snapshot;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, records_));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      const rocksdb::Slice k = it->key();
      absl::Status st = visit(absl::string_view(k.data() + prefix.size(), k.size() - prefix.size()), it->value());
      if (absl::IsCancelled(st)) return absl::OkStatus();  // the visitor has seen enough
      if (!st.ok()) {
        LogDataLoss(key, st);
        return st;
      }
    }
    return Translate(it->status(), "read attributes");
  }

  // HasAttributeOtherThan: whether a spilled session has an attribute key whose name
  // is not in `names` (reads at most |names| + 1 keys).
  absl::StatusOr<bool> HasAttributeOtherThan(const SessionKey& key,
                                             const absl::flat_hash_set<std::string>& names) {
    bool found = false;
    absl::Status st = ForEachAttribute(key, nullptr, [&](absl::string_view name, const rocksdb::Slice&) {
      found = !names.contains(name);
      return found ? absl::CancelledError() : absl::OkStatus();
    });
    if (!st.ok()) return st;
    return found;
  }

  // ContextBytesChange: how much a context's JSON text grows when its members'
  // backend::AttributeBytes ("name":value,) grow by `change`: "{}" has no comma to drop, so a
  // context that was or becomes empty differs by one byte.
  static int64_t ContextBytesChange(int64_t change, bool was_empty, bool becomes_empty) {
    return change + (was_empty && !becomes_empty ? -1 : 0) + (!was_empty && becomes_empty ? 1 : 0);
  }

  // ReadContext: a spilled session's attributes.
  absl::StatusOr<Json> ReadContext(const SessionKey& key, const rocksdb::Snapshot* snapshot = nullptr) {
    Json context = Json::object();
    absl::Status st = ForEachAttribute(key, snapshot, [&](absl::string_view name, const rocksdb::Slice& bytes) {
      absl::StatusOr<Json> value = DecodeValue(bytes.ToString());
      if (!value.ok()) return value.status();
      context[std::string(name)] = *std::move(value);
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    return context;
  }

  // ReadContextText: a spilled session's context as JSON text, its attributes' stored
  // texts joined in key order (the order a DOM of the context would have).
  absl::StatusOr<std::string> ReadContextText(const SessionKey& key, const rocksdb::Snapshot* snapshot) {
    std::string context = "{";
    absl::Status st = ForEachAttribute(key, snapshot, [&](absl::string_view name, const rocksdb::Slice& bytes) {
      absl::StatusOr<std::string> value = ValueText(bytes);
      if (!value.ok()) return value.status();
      if (context.size() > 1) context.push_back(',');
      backend::AppendJsonString(context, name);
      context.push_back(':');
      context += *value;
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    context.push_back('}');
    return context;
  }

  absl::StatusOr<SessionContext> ReadWhole(const SessionKey& key, Base base,
                                           const rocksdb::Snapshot* snapshot = nullptr) {
    absl::StatusOr<Json> context = ReadContext(key, snapshot);
    if (!context.ok()) return context.status();
    base.fields.context = *std::move(context);
    return std::move(base.fields);
  }

  // The expiry index holds one entry per anonymous session at its expiry rounded down
  // to the minute (ExpiryBucket). A write that moves the expiry within the same minute
  // (every write of an active shopper, in practice) leaves the index alone: one Put
  // instead of three. A purge visits a session up to a minute early, sees it is not
  // expired yet and leaves its entry in place.
  void MoveExpiryInto(rocksdb::WriteBatch& batch, const SessionKey& key,
                      std::optional<absl::Time> old_expiry, absl::Time expiry) {
    if (old_expiry && ExpiryBucket(*old_expiry) == ExpiryBucket(expiry)) return;
    if (old_expiry) DropExpiryInto(batch, key, *old_expiry);
    if (expiry != absl::InfiniteFuture()) {
      batch.Put(expiry_, ExpiryKey(ExpiryBucket(expiry), key), "");
    }
  }
  void DropExpiryInto(rocksdb::WriteBatch& batch, const SessionKey& key, absl::Time expires_at) {
    if (expires_at != absl::InfiniteFuture()) {
      batch.Delete(expiry_, ExpiryKey(ExpiryBucket(expires_at), key));
    }
  }

  absl::StatusOr<size_t> WriteRecordInto(rocksdb::WriteBatch& batch, const SessionKey& key,
                                         const SessionContext& record,
                                         const Json* old_attributes) {
    static const Json kNone = Json::object();
    const Json& context = record.context.is_object() ? record.context : kNone;
    return WriteInto(batch, key, record, backend::JsonText(context), &context,
                     old_attributes);
  }

  // WriteInto writes a session given as its fields (`fields.context` ignored) and its
  // context's JSON text. A small context: one text record. A large one: a binary base
  // and a key per attribute, only those that differ from `old_attributes` (the
  // attributes the session has in keys of their own now; null: none), whose stale keys
  // go in both cases. `context` is the parsed context when the caller has it. Over
  // `max_bytes` the record is refused (ResourceExhausted) and nothing is added to
  // `batch`. Returns the record's JSON size.
  absl::StatusOr<size_t> WriteInto(rocksdb::WriteBatch& batch, const SessionKey& key,
                                   const SessionContext& fields, absl::string_view context_json,
                                   const Json* context, const Json* old_attributes,
                                   size_t max_bytes = SIZE_MAX) {
    static const Json kNone = Json::object();
    const Json& old = old_attributes ? *old_attributes : kNone;
    if (context_json.size() <= inline_context_bytes_) {
      std::shared_ptr<const SessionText> text =
          backend::TextLayout::FromParts(fields, context_json);
      const size_t json_bytes = text->json().size();
      if (json_bytes > max_bytes) return backend::RecordTooLarge(json_bytes, max_bytes);
      batch.Put(records_, BaseKey(key), EncodeText(*text));
      for (auto it = old.begin(); it != old.end(); ++it) {
        batch.Delete(records_, AttributeKey(key, it.key()));
      }
      return json_bytes;
    }
    // Spilled: the size without rendering the whole text (the fields around an empty
    // context, plus the context's text).
    const size_t json_bytes =
        backend::TextLayout::FromParts(fields, "{}")->json().size() - 2 +
        context_json.size();
    if (json_bytes > max_bytes) return backend::RecordTooLarge(json_bytes, max_bytes);
    if (old_attributes == nullptr || old_attributes->empty()) {
      // Nothing spilled before: each attribute's stored text is cut from the context's
      // own (the library's compact text, so a member's value text is what rendering
      // the value alone gives), unless a key holds an escape (then the DOM below).
      std::vector<std::pair<absl::string_view, absl::string_view>> members;
      bool plain = true;
      backend::ForEachMember(
          context_json, [&](absl::string_view quoted, absl::string_view value) {
            plain = plain && quoted.find('\\') == absl::string_view::npos;
            members.emplace_back(quoted.substr(1, quoted.size() - 2), value);
          });
      if (plain) {
        Base base;
        base.fields = fields;
        base.fields.context = Json::object();
        base.json_bytes = static_cast<int64_t>(json_bytes);
        batch.Put(records_, BaseKey(key), EncodeBase(base));
        std::string stored;
        for (const auto& [name, value] : members) {
          stored.assign(1, kFormatValueTextV3);
          stored.append(value.data(), value.size());
          batch.Put(records_, AttributeKey(key, std::string(name)), stored);
        }
        return json_bytes;
      }
    }
    Json parsed;
    if (context == nullptr) {
      parsed = Json::parse(context_json, nullptr, /*allow_exceptions=*/false);
      context = &parsed;
    }
    Base base;
    base.fields = fields;
    base.fields.context = Json::object();
    base.json_bytes = static_cast<int64_t>(json_bytes);
    batch.Put(records_, BaseKey(key), EncodeBase(base));
    for (auto it = old.begin(); it != old.end(); ++it) {
      if (!context->contains(it.key())) batch.Delete(records_, AttributeKey(key, it.key()));
    }
    for (auto it = context->begin(); it != context->end(); ++it) {
      auto prev = old.find(it.key());
      if (prev == old.end() || *prev != *it) {
        batch.Put(records_, AttributeKey(key, it.key()), EncodeValue(*it));
      }
    }
    return json_bytes;
  }

  // MoveCustomerInto: the session's entry in the customer index moved from `before`'s
  // sessions to `after`'s (nullopt: none).
  void MoveCustomerInto(rocksdb::WriteBatch& batch, const SessionKey& key,
                        const std::optional<std::string>& before,
                        const std::optional<std::string>& after) {
    if (before == after) return;
    if (before) batch.Delete(customers_, CustomerIndexKey(key, *before));
    if (after) batch.Put(customers_, CustomerIndexKey(key, *after), "");
  }

  // EraseInto removes the base, every attribute, the expiry and customer entries.
  absl::Status EraseInto(rocksdb::WriteBatch& batch, const SessionKey& key, const Stored& stored) {
    batch.Delete(records_, BaseKey(key));
    DropExpiryInto(batch, key, stored.expires_at());
    MoveCustomerInto(batch, key, stored.customer_id(), std::nullopt);
    if (stored.text) return absl::OkStatus();  // a small session has no attribute keys
    // Bounded to this session's attribute keys: without a bound, the iterator's last
    // step would pass over every deleted key that follows (a delete cost as many
    // steps as sessions were deleted after it in key order).
    const std::string prefix = AttributePrefix(key);
    return ForEachAttribute(key, nullptr,
                            [&](absl::string_view name, const rocksdb::Slice&) {
                              batch.Delete(records_, absl::StrCat(prefix, name));
                              return absl::OkStatus();
                            });
  }

  // A write's events, appended to its batch by Commit.
  struct PendingEvent {
    SessionKey key;
    EventType type;
    int64_t version;
  };
  using Events = std::vector<PendingEvent>;

  // WriteLock: what a write holds from its first read to its commit: the bulk lock,
  // shared (a bulk import's files go in between writes, never inside one), then its
  // session's stripe.
  class WriteLock {
   public:
    WriteLock(RocksDbStore& store, const SessionKey& key)
        : bulk_(store.bulk_), stripe_(store.StripeFor(key)) {}

   private:
    std::shared_lock<std::shared_mutex> bulk_;
    std::lock_guard<std::mutex> stripe_;
  };

  // BulkIngest: the rocksdb BulkImport. Add renders each record into the keys and
  // values a WriteBatch of Import would hold (on the caller's thread) and keeps them;
  // at Finish, or once import_buffer_mb are held (that part then goes in on a second
  // thread while Add goes on), the held sessions are sorted, each
  // session's records resolved in the order they were added (Import's rule), and the
  // survivors written as one table file per column family (with their events) and
  // ingested in one atomic step while writes wait. A session already stored by then
  // (an earlier part of this import, or another writer) goes through Import instead,
  // its records in order.
  class BulkIngest final : public BulkImport {
   public:
    BulkIngest(RocksDbStore& store, const ImportOptions& options)
        : store_(store), options_(options) {}

    ~BulkIngest() override {
      std::lock_guard lock(mu_);
      WaitIngesting().IgnoreError();  // its failure was reported, or nobody asks
      for (const std::string& file : files_) std::remove(file.c_str());
    }

    absl::StatusOr<ImportResult> Add(std::vector<ImportRecord>& records) override {
      if (absl::Status st = backend::CheckImportKeys(records); !st.ok()) return st;
      std::vector<Held> held;
      held.reserve(records.size());
      size_t bytes = 0;
      for (ImportRecord& r : records) {
        Held& h = held.emplace_back();
        h.version = r.record.version;
        const std::string rendered =
            r.context_json.empty() ? backend::ImportContextJson(r) : std::string();
        const absl::string_view context_json =
            r.context_json.empty() ? rendered : r.context_json;
        if (context_json.size() <= store_.inline_context_bytes_) {
          // A small new session: what WriteInto, MoveExpiryInto and MoveCustomerInto
          // put, without a WriteBatch in between.
          h.entries.push_back(
              {kRecords,
               {BaseKey(r.key),
                EncodeText(*backend::TextLayout::FromParts(r.record, context_json))}});
          if (r.record.expires_at != absl::InfiniteFuture()) {
            h.entries.push_back(
                {kExpiry, {ExpiryKey(ExpiryBucket(r.record.expires_at), r.key), ""}});
          }
          if (r.record.customer_id) {
            h.entries.push_back(
                {kCustomers, {CustomerIndexKey(r.key, *r.record.customer_id), ""}});
          }
        } else {  // spilled: the keys a WriteBatch of Import would hold
          rocksdb::WriteBatch batch;
          const Json* context = r.context_json.empty() && r.record.context.is_object()
                                    ? &r.record.context
                                    : nullptr;
          absl::StatusOr<size_t> written =
              store_.WriteInto(batch, r.key, r.record, context_json, context, nullptr);
          if (!written.ok()) return written.status();
          store_.MoveExpiryInto(batch, r.key, std::nullopt, r.record.expires_at);
          store_.MoveCustomerInto(batch, r.key, std::nullopt, r.record.customer_id);
          Collector collect(store_, h.entries);
          if (rocksdb::Status st = batch.Iterate(&collect); !st.ok())
            return Translate(st, "import");
          if (h.entries.empty() ||
              h.entries.front().first != kRecords) {  // base key first
            return absl::InternalError("import: a session's first key is not its record");
          }
        }
        bytes += sizeof(Held);
        for (const auto& [family, entry] : h.entries)
          bytes += entry.key.size() + entry.value.size();
      }
      std::lock_guard lock(mu_);
      for (size_t i = 0; i < records.size(); ++i) {
        held[i].record = std::move(records[i]);
        held[i].order = next_order_++;
        bytes += held[i].record.context_json.size();
        held_.push_back(std::move(held[i]));
      }
      records.clear();
      held_bytes_ += bytes;
      if (held_bytes_ >= store_.import_buffer_bytes_) {  // this part goes in; Add goes on
        if (absl::Status st = WaitIngesting(); !st.ok()) return st;
        ingesting_ = std::async(
            std::launch::async,
            [this, run = std::move(held_)]() mutable { return Ingest(std::move(run)); });
        held_.clear();
        held_bytes_ = 0;
      }
      return ImportResult{};
    }

    absl::StatusOr<ImportResult> Finish() override {
      std::lock_guard lock(mu_);
      if (absl::Status st = WaitIngesting(); !st.ok()) return st;
      if (absl::Status st = Ingest(std::move(held_)); !st.ok()) return st;
      held_.clear();
      held_bytes_ = 0;
      return result_;
    }

   private:
    enum Family : uint32_t { kRecords, kExpiry, kCustomers, kEvents, kFamilies };
    struct Entry {
      std::string key, value;
    };
    struct Held {
      ImportRecord record;
      int64_t version = 0;
      uint64_t order = 0;  // the order Add took it in
      std::vector<std::pair<Family, Entry>> entries;
    };

    // Collector: a WriteBatch's puts as (family, key, value).
    class Collector : public rocksdb::WriteBatch::Handler {
     public:
      Collector(RocksDbStore& store, std::vector<std::pair<Family, Entry>>& out)
          : store_(store), out_(out) {}
      rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& key,
                            const rocksdb::Slice& value) override {
        Family f = kRecords;
        if (cf == store_.expiry_->GetID()) f = kExpiry;
        if (cf == store_.customers_->GetID()) f = kCustomers;
        if (cf == store_.events_->GetID()) f = kEvents;
        out_.push_back({f, Entry{key.ToString(), value.ToString()}});
        return rocksdb::Status::OK();
      }
      // A new session's batch only puts; anything else is not for a table file.
      rocksdb::Status DeleteCF(uint32_t, const rocksdb::Slice&) override {
        return rocksdb::Status::NotSupported("delete in a bulk import");
      }

     private:
      RocksDbStore& store_;
      std::vector<std::pair<Family, Entry>>& out_;
    };

    // SortedOrder: the indexes of `keys` in byte order of the keys (ties: index
    // order), sorting 16-byte prefixes as integers and comparing whole keys only on
    // equal prefixes (keep the comparisons in cache).
    static std::vector<uint32_t> SortedOrder(const std::vector<absl::string_view>& keys) {
      struct Item {
        uint64_t hi = 0, lo = 0;
        uint32_t index = 0;
      };
      std::vector<Item> items(keys.size());
      for (size_t i = 0; i < keys.size(); ++i) {
        unsigned char bytes[16] = {};
        std::memcpy(bytes, keys[i].data(), std::min<size_t>(16, keys[i].size()));
        for (int b = 0; b < 8; ++b) items[i].hi = items[i].hi << 8 | bytes[b];
        for (int b = 8; b < 16; ++b) items[i].lo = items[i].lo << 8 | bytes[b];
        items[i].index = static_cast<uint32_t>(i);
      }
      std::sort(items.begin(), items.end(), [&keys](const Item& a, const Item& b) {
        if (a.hi != b.hi) return a.hi < b.hi;
        if (a.lo != b.lo) return a.lo < b.lo;
        const int c = keys[a.index].compare(keys[b.index]);
        return c != 0 ? c < 0 : a.index < b.index;
      });
      std::vector<uint32_t> order(items.size());
      for (size_t i = 0; i < items.size(); ++i) order[i] = items[i].index;
      return order;
    }

    // SortEntries puts `entries` in key order, unless they are in order already.
    // They come in session order; an index key is a prefix (an expiry, a customer)
    // followed by the session's own prefix, so sorting by that prefix alone, stably,
    // orders whole keys: `prefix_bytes` says how long it is (npos: the whole key).
    template <typename PrefixBytes>
    static void SortEntries(std::vector<Entry>& entries, PrefixBytes prefix_bytes) {
      auto by_key = [](const Entry& a, const Entry& b) { return a.key < b.key; };
      if (std::is_sorted(entries.begin(), entries.end(), by_key)) return;
      std::vector<absl::string_view> keys(entries.size());
      for (size_t i = 0; i < entries.size(); ++i) {
        keys[i] =
            absl::string_view(entries[i].key).substr(0, prefix_bytes(entries[i].key));
      }
      std::vector<Entry> sorted;
      sorted.reserve(entries.size());
      for (uint32_t i : SortedOrder(keys)) sorted.push_back(std::move(entries[i]));
      entries = std::move(sorted);
    }

    // WaitIngesting waits for the part being put in place, if any; its status (a
    // failure is kept: every later call reports it). Holds mu_.
    absl::Status WaitIngesting() {
      if (ingesting_.valid()) failed_.Update(ingesting_.get());
      return failed_;
    }

    // Ingest puts `held` in place (see the class comment). Runs under mu_, or as the
    // one part in flight (ingesting_), whichever comes first: never two at once.
    absl::Status Ingest(std::vector<Held> held) {
      if (held.empty()) return absl::OkStatus();
      // By session key bytes (each record's first entry: its base key), then by order.
      std::vector<absl::string_view> base_keys(held.size());
      for (size_t i = 0; i < held.size(); ++i)
        base_keys[i] = held[i].entries.front().second.key;
      const std::vector<uint32_t> sorted = SortedOrder(base_keys);
      std::vector<Entry> families[kFamilies];
      std::vector<std::vector<ImportRecord>> through_import;  // per session, in order
      absl::Status st;
      {
        std::unique_lock bulk(store_.bulk_);  // writes wait from here to the ingestion
        Events events;
        for (size_t begin = 0, end; begin < sorted.size(); begin = end) {
          const SessionKey& key = held[sorted[begin]].record.key;
          for (end = begin + 1;
               end < sorted.size() && base_keys[sorted[end]] == base_keys[sorted[begin]];
               ++end) {
          }
          absl::StatusOr<std::optional<Stored>> stored = store_.ReadStored(key);
          if (!stored.ok() ||
              *stored) {  // stored already (or unreadable): Import decides
            std::vector<ImportRecord>& records = through_import.emplace_back();
            for (size_t i = begin; i < end; ++i) {
              records.push_back(std::move(held[sorted[i]].record));
            }
            continue;
          }
          size_t winner = sorted[begin];
          events.push_back({key, EventType::kCreated, held[winner].version});
          ++result_.written;
          for (size_t j = begin + 1; j < end; ++j) {
            const size_t i = sorted[j];
            if (!backend::ImportReplaces(held[winner].version, held[i].version,
                                         options_)) {
              ++result_.skipped;
              continue;
            }
            winner = i;
            events.push_back({key, EventType::kChanged, held[i].version});
            ++result_.written;
          }
          for (auto& [family, entry] : held[winner].entries) {
            families[family].push_back(std::move(entry));
          }
        }
        uint64_t first = 0;
        if (store_.event_options_.enabled && !events.empty()) {
          first = store_.sequencer_.ReserveRange(events.size());
          const absl::Time now = store_.clock_->Now();
          families[kEvents].reserve(events.size());
          for (size_t i = 0; i < events.size(); ++i) {
            const PendingEvent& e = events[i];
            families[kEvents].push_back(
                {backend::EventKey(first + i),
                 backend::EncodeEvent({"", e.key, e.type, e.version, now})});
          }
        }
        // What is left of the held records is freed on a second thread meanwhile.
        events.clear();
        std::thread free_held([held = std::move(held)] {});
        st = WriteAndIngest(families);
        free_held.join();
        if (first != 0) store_.sequencer_.Done(first);
      }
      if (!st.ok()) return st;
      for (const std::vector<ImportRecord>& records : through_import) {
        for (const ImportRecord& r : records) {  // one call each: a key once per call
          absl::StatusOr<ImportResult> r_result = store_.Import({r}, options_);
          if (!r_result.ok()) return r_result.status();
          result_.written += r_result->written;
          result_.skipped += r_result->skipped;
        }
      }
      return absl::OkStatus();
    }

    // WriteAndIngest writes the entries of each family into table files with the
    // family's own options, sorted (records and events come in order already), the
    // records split in two files so that two threads share the work; then ingests
    // them all in one atomic step (moved into the database, not copied).
    absl::Status WriteAndIngest(std::vector<Entry> (&families)[kFamilies]) {
      rocksdb::ColumnFamilyHandle* const handles[kFamilies] = {
          store_.records_, store_.expiry_, store_.customers_, store_.events_};
      struct File {
        uint32_t family;
        std::vector<Entry> entries;
        std::string path;
        rocksdb::Status status;
      };
      std::vector<File> files;
      std::vector<Entry>& records = families[kRecords];
      if (records.size() > 1) {  // the second half in a file of its own
        const auto half =
            records.begin() + static_cast<std::ptrdiff_t>(records.size() / 2);
        files.push_back(
            {kRecords,
             {std::make_move_iterator(half), std::make_move_iterator(records.end())},
             "",
             {}});
        records.erase(half, records.end());
      }
      for (uint32_t f = 0; f < kFamilies; ++f) {
        if (!families[f].empty()) files.push_back({f, std::move(families[f]), "", {}});
      }
      if (files.empty()) return absl::OkStatus();
      for (File& file : files) {
        file.path =
            absl::StrCat(store_.db_->GetName(), "/bulk-import-", ++files_made_, ".sst");
        files_.push_back(file.path);
      }
      // The first half of the records on this thread, the rest on a second one.
      auto write = [&](size_t from, size_t to) {
        for (size_t i = from; i < to; ++i) {
          File& file = files[i];
          if (file.family == kExpiry) {
            SortEntries(file.entries, [](const std::string&) { return size_t{8}; });
          } else if (file.family == kCustomers) {  // "<tenant>/<customerId>\0"
            SortEntries(file.entries,
                        [](const std::string& k) { return k.find('\0') + 1; });
          } else {
            SortEntries(file.entries,
                        [](const std::string&) { return std::string::npos; });
          }
          rocksdb::SstFileWriter writer(rocksdb::EnvOptions(),
                                        store_.db_->GetOptions(handles[file.family]),
                                        handles[file.family]);
          rocksdb::Status s = writer.Open(file.path);
          for (size_t e = 0; s.ok() && e < file.entries.size(); ++e) {
            s = writer.Put(file.entries[e].key, file.entries[e].value);
          }
          if (s.ok()) s = writer.Finish();
          file.status = s;
          std::vector<Entry>().swap(file.entries);
        }
      };
      const size_t split = files.size() > 1 && files[0].family == kRecords ? 1 : 0;
      std::thread second(write, split, files.size());
      write(0, split);
      second.join();
      // Records in two files: sorted, and the halves in order, so they do not overlap.
      std::vector<rocksdb::IngestExternalFileArg> args;
      for (File& file : files) {
        if (!file.status.ok()) {
          for (const File& f : files) std::remove(f.path.c_str());
          files_.clear();
          return Translate(file.status, "import: write a table file");
        }
        auto it = std::find_if(args.begin(), args.end(), [&](const auto& a) {
          return a.column_family == handles[file.family];
        });
        if (it == args.end()) {
          it = args.insert(args.end(), rocksdb::IngestExternalFileArg());
          it->column_family = handles[file.family];
          it->options.move_files = true;
        }
        it->external_files.push_back(file.path);
      }
      rocksdb::Status s = store_.db_->IngestExternalFiles(args);
      for (const File& file : files)
        std::remove(file.path.c_str());  // moved in, or failed
      files_.clear();
      return Translate(s, "import: ingest table files");
    }

    RocksDbStore& store_;
    const ImportOptions options_;
    std::mutex mu_;
    std::vector<Held> held_;               // guarded by mu_
    size_t held_bytes_ = 0;                // guarded by mu_
    std::future<absl::Status> ingesting_;  // the part being put in place; guarded by mu_
    absl::Status failed_;                  // the first failure; guarded by mu_
    uint64_t next_order_ = 0;              // guarded by mu_
    // Touched only by the one Ingest running (see Ingest).
    ImportResult result_;
    uint64_t files_made_ = 0;
    std::vector<std::string> files_;  // written, not ingested yet
  };

  const std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* const records_;
  rocksdb::ColumnFamilyHandle* const expiry_;
  rocksdb::ColumnFamilyHandle* const customers_;
  rocksdb::ColumnFamilyHandle* const events_;
  const Clock* const clock_;
  const EventOptions event_options_;
  const size_t inline_context_bytes_;
  const size_t import_buffer_bytes_;  // see BulkIngest
  rocksdb::WriteOptions write_options_;
  // Commit writes a batch through the guard (refused while RocksDB recovers), with
  // `events` in the same batch under positions of their own: the write and its
  // events commit together or not at all. The caller holds the stripes of the
  // events' sessions, so one session's events are in the order of its writes.
  absl::Status Commit(rocksdb::WriteBatch& batch, absl::string_view what,
                      const Events& events = {}) {
    if (!event_options_.enabled || events.empty()) {
      return guard_->Write(write_options_, batch, what);
    }
    const absl::Time now = clock_->Now();
    std::vector<uint64_t> positions;
    positions.reserve(events.size());
    for (const PendingEvent& e : events) {
      positions.push_back(sequencer_.Reserve());
      batch.Put(events_, backend::EventKey(positions.back()),
                backend::EncodeEvent({"", e.key, e.type, e.version, now}));
    }
    absl::Status st = guard_->Write(write_options_, batch, what);
    for (uint64_t position : positions) sequencer_.Done(position);
    return st;
  }

  // TrimEvents drops the events past the retention's count or age.
  absl::Status TrimEvents(absl::Time now) {
    if (!event_options_.enabled) return absl::OkStatus();
    const uint64_t readable = sequencer_.Readable();
    const uint64_t max_count =
        static_cast<uint64_t>(backend::RetentionCount(event_options_, 1'000'000));
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), events_));
    it->Seek(backend::EventKey(0));
    std::optional<uint64_t> first;
    if (it->Valid()) first = backend::EventKeyPosition(View(it->key()));
    if (!first || *first > readable) return Translate(it->status(), "trim events");
    // Positions up to `cut` go: those past the count, then those older than the age.
    uint64_t cut = readable > max_count ? readable - max_count : 0;
    for (it->Seek(backend::EventKey(std::max(*first, cut + 1))); it->Valid();
         it->Next()) {
      std::optional<uint64_t> position = backend::EventKeyPosition(View(it->key()));
      if (!position || *position > readable) break;
      absl::StatusOr<SessionEvent> e = backend::DecodeEvent(View(it->value()), *position);
      if (e.ok() && e->time >= now - event_options_.max_age) break;
      cut = *position;
    }
    if (absl::Status st = Translate(it->status(), "trim events"); !st.ok()) return st;
    if (cut < *first) return absl::OkStatus();
    rocksdb::WriteBatch batch;
    batch.DeleteRange(events_, backend::EventKey(*first), backend::EventKey(cut + 1));
    batch.Put(events_, kTrimmedKey, backend::EventKey(cut));
    if (absl::Status st = guard_->Write(write_options_, batch, "trim events"); !st.ok()) {
      return st;
    }
    trimmed_.store(cut);
    return absl::OkStatus();
  }

  // Events after a position: read up to the sequencer's watermark, never past a
  // position whose batch is still in flight.
  absl::StatusOr<EventPage> ReadEvents(const EventQuery& query) override {
    if (!event_options_.enabled) return EventsOffError();
    if (absl::Status st = CheckEventQuery(query); !st.ok()) return st;
    const uint64_t readable = sequencer_.Readable();
    EventPage page;
    // Positions handed out are stored ones: a failed batch leaves a gap, and the
    // sequencer starts again after the last stored position when the store opens, so a
    // gap at the end may be handed out again. The newest position is therefore the last
    // stored one, not the watermark.
    if (query.after.empty()) {
      std::unique_ptr<rocksdb::Iterator> it(
          db_->NewIterator(rocksdb::ReadOptions(), events_));
      it->SeekForPrev(backend::EventKey(readable));
      std::optional<uint64_t> last;
      if (it->Valid()) last = backend::EventKeyPosition(View(it->key()));
      if (absl::Status st = Translate(it->status(), "read events"); !st.ok()) return st;
      page.next = absl::StrCat(last.value_or(trimmed_.load()));
      return page;
    }
    absl::StatusOr<uint64_t> after = ParseEventPosition(query.after);
    if (!after.ok()) return after.status();
    if (*after < trimmed_.load() || *after > readable) {
      std::unique_ptr<rocksdb::Iterator> it(
          db_->NewIterator(rocksdb::ReadOptions(), events_));
      it->Seek(backend::EventKey(0));
      std::string oldest;
      if (it->Valid() && backend::EventKeyPosition(View(it->key()))) {
        oldest = absl::StrCat(*backend::EventKeyPosition(View(it->key())));
      }
      return EventsGoneError(query.after, oldest);
    }
    const std::string upper_key = backend::EventKey(readable + 1);
    const rocksdb::Slice upper(upper_key);
    rocksdb::ReadOptions read;
    read.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, events_));
    size_t budget = static_cast<size_t>(query.limit) * 16;
    uint64_t position = *after;
    for (it->Seek(backend::EventKey(*after + 1));
         it->Valid() && page.events.size() < static_cast<size_t>(query.limit) &&
         budget > 0;
         it->Next(), --budget) {
      std::optional<uint64_t> at = backend::EventKeyPosition(View(it->key()));
      if (!at) break;
      absl::StatusOr<SessionEvent> e = backend::DecodeEvent(View(it->value()), *at);
      if (!e.ok()) return e.status();
      position = *at;
      if (query.tenant && e->key.tenant != *query.tenant) continue;
      page.events.push_back(*std::move(e));
    }
    if (absl::Status st = Translate(it->status(), "read events"); !st.ok()) return st;
    page.next = absl::StrCat(position);
    return page;
  }

  // Every read-check-write of one session holds its stripe; RocksDB is single-process
  // (its LOCK file), so in-process locks make compare-and-set atomic.
  // (std::mutex rather than absl::Mutex, so that ThreadSanitizer sees them.)
  backend::Striped<std::mutex> stripes_;
  // Held shared by every write from its first read to its commit, and exclusively
  // while a bulk import checks its sessions and ingests its files (BulkIngest).
  std::shared_mutex bulk_;
  backend::EventSequencer sequencer_;
  std::atomic<uint64_t> trimmed_;      // the highest position trimming dropped (0: none)
  std::unique_ptr<WriteGuard> guard_;  // reset first when the store closes
};

}  // namespace

namespace backend {

rocksdb::Options EngineOptions(int64_t cache_mb) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(2);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(static_cast<size_t>(cache_mb) << 20);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // A bloom filter over the memtable's whole keys too: a write first looks its
  // session up, and a new session's key is in no memtable, so the look-up ends at the
  // filter instead of a skip-list search (2 % of the write buffer, 1.3 MiB of 64).
  options.memtable_whole_key_filtering = true;
  options.memtable_prefix_bloom_size_ratio = 0.02;
  return options;
}

}  // namespace backend

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
  rocksdb::Options db_options = backend::EngineOptions(parsed->cache_mb);
  db_options.create_missing_column_families = true;
  // RocksDB's LOG, written by a logger that survives a full disk (info_log.h).
  db_options.info_log = InfoLog::Open((std::filesystem::path(parsed->path) / "LOG").string());
  auto errors = std::make_shared<ErrorListener>();
  db_options.listeners.push_back(errors);
  // Tickers only (no histograms, no timers): what the block-cache hit ratio needs.
  db_options.statistics = rocksdb::CreateDBStatistics();
  db_options.statistics->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
  const rocksdb::ColumnFamilyOptions cf_options(db_options);
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, cf_options},
      {"expiry", cf_options},
      {"customers", cf_options},
      {"events", cf_options}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(db_options), parsed->path, families,
                                        &handles, &raw);
  if (!s.ok()) {
    // For the operator starting a program (never an HTTP answer): RocksDB's own text,
    // e.g. that another process holds the store's LOCK file.
    const std::string why = absl::StrCat("rocksdb: cannot open ", parsed->path, ": ", s.ToString());
    if (s.IsIOError()) {
      return absl::FailedPreconditionError(
          absl::StrCat(why, " (is another process using the store, or the folder not writable?)"));
    }
    return s.IsCorruption() ? absl::DataLossError(why) : absl::InternalError(why);
  }
  // The feed resumes after the newest event stored (or the newest trimmed).
  uint64_t last_event = 0, trimmed_events = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(
        raw->NewIterator(rocksdb::ReadOptions(), handles[3]));
    for (it->SeekToLast(); it->Valid(); it->Prev()) {
      const std::string key = it->key().ToString();
      if (key == kTrimmedKey) {
        trimmed_events = backend::EventKeyPosition(View(it->value())).value_or(0);
        continue;
      }
      last_event = backend::EventKeyPosition(key).value_or(0);
      break;
    }
  }
  auto store = std::make_unique<RocksDbStore>(
      std::unique_ptr<rocksdb::DB>(raw), handles[0], handles[1], handles[2], handles[3],
      parsed->sync, static_cast<size_t>(parsed->inline_context_bytes),
      static_cast<size_t>(parsed->import_buffer_mb) << 20, options,
      std::max(last_event, trimmed_events), trimmed_events, std::move(errors));
  if (absl::Status st = store->BuildCustomerIndex(); !st.ok()) return st;
  return store;
}

}  // namespace sessionctx
