#include "sessionctx/memory_store.h"

#include <mutex>
#include <shared_mutex>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "sessionctx/backend_support.h"
#include "sessionctx/event_support.h"
#include "sessionctx/session_text.h"
#include "sessionctx/write_rules.h"

namespace sessionctx {
namespace {

// Tenant names cannot hold '/', so "tenant/sessionId" is unambiguous.
std::string FlatKey(const SessionKey& key) { return absl::StrCat(key.tenant, "/", key.session_id); }

// A context larger than this (as JSON text) is kept as separate members, so that
// writing one attribute of a session with thousands does not copy all of them.
constexpr size_t kLargeContextBytes = 16 * 1024;

// LargeContext: the members of a large context, by quoted key.
struct LargeContext {
  absl::flat_hash_map<std::string, std::string> members;  // quoted key -> value JSON
  size_t member_bytes = 0;  // the members' MemberBytes, summed

  // Bytes: the context's JSON text size: "{}", or the members and n - 1 commas.
  size_t Bytes() const { return members.empty() ? 2 : 1 + member_bytes; }

  static size_t MemberBytes(const std::string& key, const std::string& value) {
    return backend::MemberBytes(key.size(), value.size());
  }
  // FromText splits a context's JSON text into its members.
  static std::unique_ptr<LargeContext> FromText(absl::string_view context) {
    auto large = std::make_unique<LargeContext>();
    backend::ForEachMember(context, [&](absl::string_view k, absl::string_view v) {
      auto [it, inserted] = large->members.emplace(std::string(k), std::string(v));
      large->member_bytes += MemberBytes(it->first, it->second);
    });
    return large;
  }
  // The whole session as last assembled for a read, and the fields' text it was
  // assembled with (kept, so that a new text cannot reuse its address): reads of an
  // unchanged large session share one assembly. Every write replaces the fields' text.
  mutable std::mutex cache_mu;
  mutable std::shared_ptr<const SessionText> cache_for, cache;  // guarded by cache_mu

  std::string Text() const {
    std::string out;
    out.reserve(Bytes());
    out.push_back('{');
    for (const auto& [k, v] : members) {
      if (out.size() > 1) out.push_back(',');
      absl::StrAppend(&out, k, ":", v);
    }
    out.push_back('}');
    return out;
  }
};

// Entry: one session. `text` is an immutable snapshot that reads share; a write
// replaces it. A large context lives in `large`, and `text` then holds "{}" for it.
struct Entry {
  std::shared_ptr<const SessionText> text;
  std::unique_ptr<LargeContext> large;

  size_t Bytes() const { return text->json().size() + (large ? large->Bytes() - 2 : 0); }

  // Snapshot: the whole session as text (assembled for a large context).
  // REQUIRES: the shard lock held (shared is enough: a large context's assembly is
  // cached under its own lock).
  std::shared_ptr<const SessionText> Snapshot() const {
    if (large == nullptr) return text;
    std::lock_guard lock(large->cache_mu);
    if (large->cache_for != text) {
      large->cache = backend::TextLayout::WithContext(
          *text, large->Text(), {text->version(), text->modified_at(), text->expires_at()});
      large->cache_for = text;
    }
    return large->cache;
  }
};

// MakeEntry renders a record, outside any lock.
Entry MakeEntry(const SessionContext& record) {
  std::string context =
      record.context.is_object() ? backend::JsonText(record.context) : "{}";
  if (context.size() <= kLargeContextBytes) return Entry{backend::TextLayout::FromParts(record, context), nullptr};
  return Entry{backend::TextLayout::FromParts(record, "{}"), LargeContext::FromText(context)};
}

// CustomerIndex: the session ids of each customer ("tenant/customerId"), sorted. Moved
// by the writes that change a session's customer, under that session's shard lock
// (shard lock first, then this one's).
class CustomerIndex {
 public:
  // Move: `key` leaves `before`'s sessions and joins `after`'s (nullopt: none).
  void Move(const SessionKey& key, const std::optional<std::string>& before,
            const std::optional<std::string>& after) {
    if (before == after) return;
    std::lock_guard lock(mu_);
    if (before) {
      auto it = ids_.find(Name(key.tenant, *before));
      if (it != ids_.end()) {
        it->second.erase(key.session_id);
        if (it->second.empty()) ids_.erase(it);
      }
    }
    if (after) ids_[Name(key.tenant, *after)].insert(key.session_id);
  }

  // After: up to `n` of the customer's session ids that sort after `cursor`.
  std::vector<std::string> After(const CustomerKey& customer, const std::string& cursor,
                                 size_t n) const {
    std::vector<std::string> out;
    std::shared_lock lock(mu_);
    auto it = ids_.find(Name(customer.tenant, customer.customer_id));
    if (it == ids_.end()) return out;
    for (auto id = it->second.upper_bound(cursor);
         id != it->second.end() && out.size() < n; ++id) {
      out.push_back(*id);
    }
    return out;
  }

 private:
  // Tenant names hold no '/', so "tenant/customerId" is unambiguous.
  static std::string Name(const std::string& tenant, const std::string& customer) {
    return absl::StrCat(tenant, "/", customer);
  }
  mutable std::shared_mutex mu_;
  absl::flat_hash_map<std::string, absl::btree_set<std::string>> ids_;  // guarded by mu_
};

class MemoryStore final : public SessionStore {
 public:
  MemoryStore(const StoreOptions& options, int shards)
      : clock_(options.clock),
        shards_(static_cast<size_t>(std::max(shards, 1))),
        events_on_(options.events.enabled),
        events_(options.events) {}

  absl::StatusOr<SessionContext> Get(const SessionKey& key) override {
    absl::StatusOr<std::shared_ptr<const SessionText>> text = GetText(key);
    if (!text.ok()) return text.status();
    return (*text)->Record();
  }

  // Never waits: a shard lock held for a pointer copy.
  absl::StatusOr<std::shared_ptr<const SessionText>> TryGetText(const SessionKey& key) override {
    return GetText(key);
  }

  // A read copies a pointer under the shard lock: the snapshot it hands out is the
  // store's own, never changed (a write replaces it).
  absl::StatusOr<std::shared_ptr<const SessionText>> GetText(const SessionKey& key) override {
    const std::string k = FlatKey(key);
    Shard& shard = ShardFor(k);
    std::shared_lock lock(shard.mu);
    const Entry* live = FindLive(shard, k);
    if (live == nullptr) return backend::SessionNotFoundError(key);
    return live->Snapshot();
  }

  absl::Status Create(const SessionKey& key, const SessionContext& record) override {
    const std::string k = FlatKey(key);
    Entry entry = MakeEntry(record);
    Shard& shard = ShardFor(k);
    std::unique_lock lock(shard.mu);
    auto it = shard.records.find(k);
    if (it != shard.records.end()) {
      if (!it->second.text->IsExpiredAt(clock_->Now())) return backend::SessionExistsError(key);
      Reindex(shard, k, it->second.text->expires_at(), entry.text->expires_at());
      customers_.Move(key, it->second.text->customer_id(), entry.text->customer_id());
      Emit(key, EventType::kExpired, it->second.text->version());
      it->second = std::move(entry);
      Emit(key, EventType::kCreated, record.version);
      return absl::OkStatus();
    }
    Reindex(shard, k, absl::InfiniteFuture(), entry.text->expires_at());
    customers_.Move(key, std::nullopt, entry.text->customer_id());
    shard.records.emplace(k, std::move(entry));
    Emit(key, EventType::kCreated, record.version);
    return absl::OkStatus();
  }

  absl::Status CompareAndSet(const SessionKey& key, int64_t expected_version,
                             const SessionContext& record) override {
    const std::string k = FlatKey(key);
    Entry entry = MakeEntry(record);
    Shard& shard = ShardFor(k);
    std::unique_lock lock(shard.mu);
    Entry* live = FindLive(shard, k);
    if (live == nullptr) return backend::SessionNotFoundError(key);
    if (live->text->version() != expected_version) {
      return backend::VersionConflictError(expected_version, live->text->version());
    }
    Reindex(shard, k, live->text->expires_at(), entry.text->expires_at());
    customers_.Move(key, live->text->customer_id(), entry.text->customer_id());
    *live = std::move(entry);
    Emit(key, EventType::kChanged, record.version);
    return absl::OkStatus();
  }

  absl::Status Delete(const SessionKey& key, std::optional<int64_t> expected_version) override {
    const std::string k = FlatKey(key);
    Shard& shard = ShardFor(k);
    Entry gone;  // freed after the lock is released
    std::unique_lock lock(shard.mu);
    auto it = shard.records.find(k);
    if (it == shard.records.end()) return backend::SessionNotFoundError(key);
    const bool live = !it->second.text->IsExpiredAt(clock_->Now());
    if (live && expected_version && *expected_version != it->second.text->version()) {
      return backend::VersionConflictError(*expected_version, it->second.text->version());
    }
    Reindex(shard, k, it->second.text->expires_at(), absl::InfiniteFuture());
    customers_.Move(key, it->second.text->customer_id(), std::nullopt);
    Emit(key, live ? EventType::kDeleted : EventType::kExpired,
         it->second.text->version());
    gone = std::move(it->second);
    shard.records.erase(it);  // an expired record goes too
    return live ? absl::OkStatus() : backend::SessionNotFoundError(key);
  }

  // Walks each shard's expiry index up to now: the cost grows with what expired (and
  // the sessions of the current minute), not with what is stored.
  absl::StatusOr<int64_t> PurgeExpired() override {
    const absl::Time now = clock_->Now();
    const int64_t now_minute = backend::ExpiryMinute(now);
    int64_t removed = 0;
    for (Shard& shard : shards_) {
      std::vector<Entry> gone;  // freed after the lock is released
      std::unique_lock lock(shard.mu);
      for (auto it = shard.expiry.begin(); it != shard.expiry.end() && it->first <= now_minute;) {
        auto record = shard.records.find(it->second);
        if (record == shard.records.end() || !record->second.text->IsExpiredAt(now)) {
          ++it;  // expires later in the current minute
          continue;
        }
        const SessionKey key = KeyOf(record->first);
        customers_.Move(key, record->second.text->customer_id(), std::nullopt);
        Emit(key, EventType::kExpired, record->second.text->version());
        gone.push_back(std::move(record->second));
        shard.records.erase(record);
        it = shard.expiry.erase(it);
        ++removed;
      }
    }
    events_.Trim(now);
    return removed;
  }

  absl::Status ForEach(
      const std::function<bool(const SessionKey&, const SessionContext&)>& visit) override {
    const absl::Time now = clock_->Now();
    for (Shard& shard : shards_) {
      // Take the shard's live snapshots, so that `visit` runs without the lock.
      std::vector<std::pair<std::string, std::shared_ptr<const SessionText>>> batch;
      {
        std::shared_lock lock(shard.mu);
        for (const auto& [k, entry] : shard.records) {
          if (!entry.text->IsExpiredAt(now)) batch.emplace_back(k, entry.Snapshot());
        }
      }
      for (const auto& [k, text] : batch) {
        absl::StatusOr<SessionContext> record = text->Record();
        if (!record.ok()) return record.status();
        if (!visit(KeyOf(k), *record)) {
          return absl::OkStatus();
        }
      }
    }
    return absl::OkStatus();
  }

  // One step under the shard lock, on the stored text: the base fields are parsed
  // (not the context), the body applied to them, and only the context members the
  // body names are merged into the context's text; a body without `context` keeps
  // the context as it is (a large one is not even copied).
  absl::StatusOr<int64_t> Patch(const SessionKey& key, const PatchWrite& write) override {
    const std::string k = FlatKey(key);
    Shard& shard = ShardFor(k);
    Entry replaced;  // freed after the lock is released
    std::unique_lock lock(shard.mu);
    Entry* live = FindLive(shard, k);
    if (live == nullptr) return backend::SessionNotFoundError(key);
    const SessionText& text = *live->text;
    absl::StatusOr<SessionContext> fields = text.Fields();
    if (!fields.ok()) return fields.status();
    absl::StatusOr<SessionContext> next = backend::PatchFields(*fields, write);
    if (!next.ok()) return next.status();
    Entry entry;
    std::optional<std::string> context;
    if (write.body.contains("context")) {
      context = live->large ? backend::PatchedContext(live->large->Text(), write.body)
                            : backend::PatchedContext(text.context_json(), write.body);
    }
    if (!context) {  // the context as it is (a large one is moved, not copied)
      entry.text = backend::TextLayout::FromParts(*next, text.context_json());
      entry.large = std::move(live->large);
    } else if (context->size() <= kLargeContextBytes) {
      entry.text = backend::TextLayout::FromParts(*next, *context);
    } else {
      entry.text = backend::TextLayout::FromParts(*next, "{}");
      entry.large = LargeContext::FromText(*context);
    }
    if (entry.Bytes() > write.max_record_bytes) {
      // Nothing changed: a large context moved into `entry` goes back.
      if (!context) live->large = std::move(entry.large);
      return backend::RecordTooLarge(entry.Bytes(), write.max_record_bytes);
    }
    Reindex(shard, k, text.expires_at(), entry.text->expires_at());
    replaced = std::exchange(*live, std::move(entry));
    Emit(key, EventType::kChanged, next->version);
    return next->version;
  }

  // One step under the shard lock. A small context is rewritten as text (one member
  // found and replaced, no DOM); a large one changes only the member written.
  absl::StatusOr<AttributeResult> UpdateAttribute(const SessionKey& key,
                                                  const AttributeWrite& write) override {
    const std::string k = FlatKey(key);
    Shard& shard = ShardFor(k);
    std::shared_ptr<const SessionText> replaced;  // freed after the lock is released
    std::unique_lock lock(shard.mu);
    Entry* live = FindLive(shard, k);
    if (live == nullptr) return backend::SessionNotFoundError(key);
    const SessionText& t = *live->text;
    if (absl::Status st = backend::CheckWrite(t.customer_id(), t.version(), write.guard, write.expected_version); !st.ok()) {
      return st;
    }
    const backend::Stamp stamp = backend::NextStamp(t.customer_id(), t.version(), {write.now, write.anonymous_ttl});
    if (live->large != nullptr) {
      LargeContext& large = *live->large;
      const std::string quoted = backend::QuotedJsonString(write.name);
      auto old = large.members.find(quoted);
      if (!write.value) {
        if (old == large.members.end()) return AttributeResult{t.version(), false};
        large.member_bytes -= LargeContext::MemberBytes(quoted, old->second);
        large.members.erase(old);
      } else {
        std::string value = backend::JsonText(*write.value);
        const size_t old_bytes = old == large.members.end() ? 0 : LargeContext::MemberBytes(quoted, old->second);
        const size_t added = LargeContext::MemberBytes(quoted, value);
        // The record's size as it will be: the new version's digits, the member's change.
        const size_t member_bytes = large.member_bytes - old_bytes + added;
        const size_t bytes = backend::BytesAtVersion(t, stamp.version) - 2 + 1 + member_bytes;
        if (bytes > write.max_record_bytes) return backend::RecordTooLarge(bytes, write.max_record_bytes);
        large.members.insert_or_assign(quoted, std::move(value));
        large.member_bytes = member_bytes;
      }
      Reindex(shard, k, t.expires_at(), stamp.expires_at);
      replaced = std::exchange(live->text, backend::TextLayout::WithContext(t, "{}", stamp));
      Emit(key, EventType::kChanged, stamp.version);
      return AttributeResult{stamp.version, true};
    }
    absl::StatusOr<std::optional<std::string>> next = backend::EditContext(t, write);
    if (!next.ok()) return next.status();
    if (!*next) return AttributeResult{t.version(), false};
    std::shared_ptr<const SessionText> text;
    if ((*next)->size() <= kLargeContextBytes) {
      text = backend::TextLayout::WithContext(t, **next, stamp);
    } else {
      live->large = LargeContext::FromText(**next);
      text = backend::TextLayout::WithContext(t, "{}", stamp);
    }
    Reindex(shard, k, t.expires_at(), stamp.expires_at);
    replaced = std::exchange(live->text, std::move(text));
    Emit(key, EventType::kChanged, stamp.version);
    return AttributeResult{stamp.version, true};
  }

  // The index names the customer's sessions (exact: it changes under the session's
  // shard lock, with the session); each is then read under its shard lock.
  absl::StatusOr<CustomerSessionPage> ListCustomerSessions(const CustomerKey& customer,
                                                           const std::string& cursor,
                                                           int limit) override {
    if (absl::Status st = backend::CheckCustomerQuery(customer, limit); !st.ok())
      return st;
    const absl::Time now = clock_->Now();
    return backend::ListFromIndex(
        cursor, limit,
        [&](const std::string& after,
            size_t n) -> absl::StatusOr<std::vector<std::string>> {
          return customers_.After(customer, after, n);
        },
        [&](const std::string& id) -> absl::StatusOr<std::optional<CustomerSession>> {
          const std::string k = FlatKey({customer.tenant, id});
          Shard& shard = ShardFor(k);
          std::shared_lock lock(shard.mu);
          auto it = shard.records.find(k);
          if (it == shard.records.end() || it->second.text->IsExpiredAt(now) ||
              it->second.text->customer_id() != customer.customer_id) {
            return std::nullopt;  // expired, or changed since the index was read
          }
          return backend::SummaryOf(*it->second.text, id);
        });
  }

  // Every session the index holds for the customer when it is read is deleted under
  // its shard lock, unless it has left the customer meanwhile.
  absl::StatusOr<int64_t> EndCustomerSessions(
      const CustomerKey& customer, const std::optional<std::string>& keep) override {
    if (absl::Status st = backend::CheckCustomerQuery(customer, std::nullopt); !st.ok())
      return st;
    const absl::Time now = clock_->Now();
    int64_t ended = 0;
    for (const std::string& id : customers_.After(customer, "", SIZE_MAX)) {
      if (id == keep) continue;
      const SessionKey key{customer.tenant, id};
      const std::string k = FlatKey(key);
      Shard& shard = ShardFor(k);
      Entry gone;  // freed after the lock is released
      std::unique_lock lock(shard.mu);
      auto it = shard.records.find(k);
      if (it == shard.records.end() ||
          it->second.text->customer_id() != customer.customer_id) {
        continue;
      }
      const bool live = !it->second.text->IsExpiredAt(now);
      if (live) ++ended;
      Emit(key, live ? EventType::kEnded : EventType::kExpired,
           it->second.text->version());
      Reindex(shard, k, it->second.text->expires_at(), absl::InfiniteFuture());
      customers_.Move(key, it->second.text->customer_id(), std::nullopt);
      gone = std::move(it->second);
      shard.records.erase(it);
    }
    return ended;
  }

  absl::StatusOr<EventPage> ReadEvents(const EventQuery& query) override {
    if (!events_on_) return EventsOffError();
    return events_.Read(query);
  }

  std::vector<StoreStat> Stats() override {
    double sessions = 0, bytes = 0;
    for (Shard& shard : shards_) {
      std::shared_lock lock(shard.mu);
      sessions += static_cast<double>(shard.records.size());
      for (const auto& [k, entry] : shard.records) bytes += static_cast<double>(entry.Bytes());
    }
    return {{"sessionctx_memory_sessions", "Sessions held in memory, expired ones not yet purged included", sessions},
            {"sessionctx_memory_session_bytes", "JSON bytes of the sessions held in memory", bytes}};
  }

 private:
  struct Shard {
    // std::shared_mutex, not absl::Mutex: ThreadSanitizer sees std's locks (through
    // pthread), not those of an Abseil built without it.
    std::shared_mutex mu;
    absl::flat_hash_map<std::string, Entry> records;  // guarded by mu
    // The expiry index: (minute of expiry, key) of every record that expires; one
    // entry per record, moved only when a write changes its expiry's minute (so
    // sliding expiry costs nothing on most writes). Guarded by mu.
    absl::btree_set<std::pair<int64_t, std::string>> expiry;
  };


  // Reindex moves `k`'s expiry index entry from `before` to `after` (InfiniteFuture:
  // none). REQUIRES: shard.mu held exclusively.
  static void Reindex(Shard& shard, const std::string& k, absl::Time before, absl::Time after) {
    const bool had = before != absl::InfiniteFuture(), has = after != absl::InfiniteFuture();
    if (had && has && backend::ExpiryMinute(before) == backend::ExpiryMinute(after)) return;
    if (had) shard.expiry.erase(std::pair<int64_t, std::string>(backend::ExpiryMinute(before), k));
    if (has) shard.expiry.emplace(backend::ExpiryMinute(after), k);
  }

  static SessionKey KeyOf(const std::string& k) {
    const size_t slash = k.find('/');
    return SessionKey{k.substr(0, slash), k.substr(slash + 1)};
  }

  Shard& ShardFor(const std::string& k) { return shards_.For(absl::Hash<std::string>{}(k)); }

  // REQUIRES: shard.mu held (shared or exclusive).
  Entry* FindLive(Shard& shard, const std::string& k) {
    auto it = shard.records.find(k);
    if (it == shard.records.end() || it->second.text->IsExpiredAt(clock_->Now())) {
      return nullptr;
    }
    return &it->second;
  }

  // Emit appends the event of a write. REQUIRES: the session's shard lock held
  // exclusively, so that one session's events are in the order of its writes.
  void Emit(const SessionKey& key, EventType type, int64_t version) {
    if (events_on_) events_.Append(key, type, version, clock_->Now());
  }

  const Clock* const clock_;
  backend::Striped<Shard> shards_;
  CustomerIndex customers_;
  const bool events_on_;
  backend::EventRing events_;
};

}  // namespace

std::unique_ptr<SessionStore> NewMemoryStore(const StoreOptions& options, int shards) {
  return std::make_unique<MemoryStore>(options, shards);
}

}  // namespace sessionctx
