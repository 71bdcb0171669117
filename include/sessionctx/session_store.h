// SessionStore: the atomic interface every backend implements, and the writes it takes.
//
// A store keeps records by (tenant, sessionId). A record whose `expires_at` has passed
// (per StoreOptions::clock) behaves exactly as a missing one. The service validates a
// request and builds the write; the store applies it in one atomic step, and that step
// is where the rules that depend on the stored session are enforced: the customer
// guard, the expected version, the PATCH body (whitelisted fields, merged context),
// the stamp (version + 1, modifiedAt, expiry) and the size limit. Backends do it with
// the shared functions of backend_support.h, so that every backend answers alike;
// docs/writing-a-backend.md lists what a backend owes and how the conformance suite
// checks it.
//
// Every method is thread-safe: a store is shared by all request threads.
//
// A store comes from its backend's header (memory_store.h, rocksdb_store.h,
// postgres_store.h), or from a URI through store_factory.h.
//
// Example:
//   absl::StatusOr<std::unique_ptr<SessionStore>> store =
//       OpenRocksDbStore("rocksdb:/var/lib/sessions", StoreOptions{});
//   absl::StatusOr<SessionContext> s = (*store)->Get({"acme", "3f2a…"});
#ifndef SESSIONCTX_SESSION_STORE_H_
#define SESSIONCTX_SESSION_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sessionctx/options.h"
#include "sessionctx/session_context.h"
#include "sessionctx/session_events.h"
#include "sessionctx/session_text.h"

namespace sessionctx {

// CustomerGuard: a write that may land only on a session that is anonymous or
// belongs to `customer_id` (unset: anonymous sessions only). The shopper's own routes
// pass the token's customer, so an anonymous token can never write into a session its
// shopper has logged into — checked in the same atomic step as the write.
struct CustomerGuard {
  std::optional<std::string> customer_id;
};

// AttributeWrite is one atomic change of one custom attribute.
struct AttributeWrite {
  std::string name;
  std::optional<Json> value;      // nullopt: delete the attribute
  absl::Time now;                 // the write's time (modifiedAt, expiry)
  absl::Duration anonymous_ttl;   // expiry policy for anonymous sessions
  size_t max_record_bytes = 1 << 20;
  std::optional<CustomerGuard> guard;  // checked atomically with the write
  // When set, the write happens only while the session is at this version (an
  // If-Match header), checked in the same atomic step: VersionConflictError otherwise.
  std::optional<int64_t> expected_version;
};

// AttributeResult: the record's version after the write, and whether the write
// changed it (deleting an absent attribute changes nothing and bumps no version).
// The record itself is not returned: copying a large context per write is what makes
// attribute writes slow.
struct AttributeResult {
  int64_t version = 0;
  bool changed = false;
};

// PatchWrite is one PATCH: a body the core has validated (ApplyPatch accepted it),
// the version the caller read, and the write's time and policy.
struct PatchWrite {
  Json body;
  int64_t expected_version = 0;
  absl::Time now;
  absl::Duration anonymous_ttl;
  size_t max_record_bytes = 1 << 20;
  std::optional<CustomerGuard> guard;  // checked atomically with the write
};

// ImportRecord: a record put in place as it is, e.g. read back from an export: its
// version, times and expiry are kept.
struct ImportRecord {
  SessionKey key;
  SessionContext record;  // REQUIRES: record.session_id == key.session_id
  // context_json, when not empty, stands for record.context (then ignored): the
  // context object's JSON text exactly as the library renders it (compact, keys in
  // order; see backend::IsCanonicalJson), e.g. the text cut from an export line. A
  // store keeps it without a parse and a render; Import refuses one that is not
  // canonical (InvalidArgument).
  std::string context_json;
};

// ImportOptions tune one Import call.
struct ImportOptions {
  // Replace a stored live session even when its version is newer than the imported
  // record's (an operator restoring an older state on purpose). By default such a
  // record is skipped, so that an import never moves a session backwards.
  bool overwrite_newer = false;
};

// ImportResult: what an Import call did with its records.
struct ImportResult {
  int64_t written = 0;  // created, or put in place over an older or equal version
  int64_t skipped = 0;  // left alone: the stored live session had a newer version
};

// BulkImport: one import of many batches (sessionctl import restoring an export),
// which a store may write its own faster way. Made by SessionStore::BeginImport.
class BulkImport {
 public:
  virtual ~BulkImport() = default;
  // Add takes one batch, checked as Import checks it (InvalidArgument, e.g. a key
  // twice in the batch; then nothing of it is taken and `records` is left as it was).
  // A taken batch's records are moved out of `records`; they land at once (the
  // default) or at Finish (rocksdb), with the counts returned then. A later batch may
  // hold a session again: its record follows the earlier one as with two Import
  // calls. Safe to call from several threads; batches added concurrently must not
  // share a session.
  virtual absl::StatusOr<ImportResult> Add(std::vector<ImportRecord>& records) = 0;
  // Finish writes what Add held and returns its counts. Call it once, after the last
  // Add; a BulkImport destroyed without Finish drops what it held.
  virtual absl::StatusOr<ImportResult> Finish() = 0;
};

// StoreStat: one gauge a backend reports about itself, e.g. the sessions it holds or
// its connection pool's use. Read by metrics decorators at scrape time.
struct StoreStat {
  using Labels = std::vector<std::pair<std::string, std::string>>;
  std::string name;  // a Prometheus metric name, e.g. "sessionctx_memory_sessions"
  std::string help;  // one line, for the metric's HELP
  double value = 0;
  Labels labels;  // e.g. {{"node", "10.0.0.7:6379"}}: one gauge per part of the backend
};

// CustomerKey: one customer of one tenant (the sessions a customer logged into).
struct CustomerKey {
  std::string tenant;
  std::string customer_id;
};

// CustomerSession: one session in a listing of a customer's sessions (no context).
struct CustomerSession {
  std::string session_id;
  int64_t version = 0;
  absl::Time created_at = absl::UnixEpoch();
  absl::Time modified_at = absl::UnixEpoch();
  absl::Time expires_at = absl::InfiniteFuture();  // never, unless imported with one

  bool operator==(const CustomerSession&) const = default;
};

// ToJson: a session's line in a listing, as the HTTP routes and sessionctl print it:
// {"sessionId", "version", "createdAt", "modifiedAt"[, "expiresAt"]}.
Json ToJson(const CustomerSession& session);

// The most sessions one page of a listing holds, and how many when none is asked
// for (the HTTP routes' `limit`).
inline constexpr int kMaxCustomerPage = 1000;
inline constexpr int kDefaultCustomerPage = 100;

// CustomerSessionPage: one page of a customer's live sessions, by session id.
struct CustomerSessionPage {
  std::vector<CustomerSession> sessions;
  // Where the next page starts (pass it back as `cursor`); empty: this was the last.
  // Opaque to callers: today the last session id listed.
  std::string next_cursor;
};

// The payload URL under which an Aborted status carries the current version.
inline constexpr char kCurrentVersionPayload[] = "sessionctx/current-version";

// CurrentVersionOf returns the current version carried by a version conflict (an
// Aborted status from a write), if any.
std::optional<int64_t> CurrentVersionOf(const absl::Status& status);

// The payload URL that marks an Unavailable status as "out of storage".
inline constexpr char kStorageFullPayload[] = "sessionctx/storage-full";

// The payload URL that marks an Unavailable status as "would block" (TryGetText).
inline constexpr char kWouldBlockPayload[] = "sessionctx/would-block";

// IsWouldBlock: whether `status` is TryGetText's "the answer needs a wait".
bool IsWouldBlock(const absl::Status& status);

// IsStorageFull: whether `status` says the store's storage is full (HTTP 507): writes
// are refused, reads may still be served.
bool IsStorageFull(const absl::Status& status);

// SessionStore persists session records atomically.
class SessionStore {
 public:
  SessionStore() = default;
  SessionStore(const SessionStore&) = delete;
  SessionStore& operator=(const SessionStore&) = delete;
  virtual ~SessionStore() = default;

  // Get returns the live record. NotFound if missing or expired; DataLoss if the stored
  // bytes no longer decode; Unavailable if the store cannot be reached.
  virtual absl::StatusOr<SessionContext> Get(const SessionKey& key) = 0;

  // GetText returns the live record as JSON text (session_text.h): the read path of
  // the HTTP API, which builds no DOM where the backend can avoid it. Errors as Get.
  // The default serializes Get's record.
  virtual absl::StatusOr<std::shared_ptr<const SessionText>> GetText(const SessionKey& key);

  // TryGetText: GetText's answer when the store has it at hand (memory, a cache) and
  // can give it without waiting on a disk or the network; otherwise an Unavailable
  // status that IsWouldBlock recognises, and nothing else happened. For event-loop
  // servers: they answer what they can on the loop's thread and hand the rest to
  // threads that may block. The default: would block (a store that cannot tell).
  virtual absl::StatusOr<std::shared_ptr<const SessionText>> TryGetText(const SessionKey& key);

  // TextCallback receives an asynchronous read's answer (GetTextAsync).
  using TextCallback =
      std::function<void(absl::StatusOr<std::shared_ptr<const SessionText>>)>;

  // GetTextAsync: GetText without blocking the caller, for event-loop servers whose
  // store waits on a network. Returns true when the read has started: `done` then
  // runs once, later, on a thread of the store's, with GetText's answer (it must be
  // quick and never block: post the answer back to the caller's loop). Returns false,
  // leaving `done` alone, when the store has no such path (the default): call GetText
  // on a thread that may block.
  virtual bool GetTextAsync(const SessionKey& key, TextCallback& done);

  // Create stores a new record. AlreadyExists if a live record has the key (an expired
  // one is replaced). REQUIRES: record.session_id == key.session_id.
  virtual absl::Status Create(const SessionKey& key, const SessionContext& record) = 0;

  // CompareAndSet replaces the live record iff its version equals
  // `expected_version`. NotFound if missing or expired; on any other version nothing
  // changes and the result is VersionConflictError, which carries the current version.
  virtual absl::Status CompareAndSet(const SessionKey& key, int64_t expected_version,
                                     const SessionContext& record) = 0;

  // Delete removes the record. NotFound if missing or expired. With an
  // `expected_version`, only while the session is at that version, checked in the
  // same atomic step: VersionConflictError otherwise, and nothing changes.
  virtual absl::Status Delete(const SessionKey& key, std::optional<int64_t> expected_version) = 0;
  // Delete without a version: unconditional.
  absl::Status Delete(const SessionKey& key) { return Delete(key, std::nullopt); }

  // PurgeExpired removes every record expired now and returns how many it removed.
  // Customer sessions (never expiring) are not visited where the backend can avoid it.
  // A backend whose engine deletes expired records itself (redis://) has nothing to
  // remove and returns 0 without a round trip.
  virtual absl::StatusOr<int64_t> PurgeExpired() = 0;

  // ForEach calls `visit` for every live record until it returns false. Records
  // written during the walk may or may not be seen.
  virtual absl::Status ForEach(
      const std::function<bool(const SessionKey&, const SessionContext&)>& visit) = 0;

  // UpdateAttribute sets or deletes one custom attribute atomically, bumping the
  // version when something changed. NotFound if missing or expired;
  // PermissionDenied (GuardRefusedError) if `write.guard` refuses the session, and
  // VersionConflictError if `write.expected_version` is set and differs, both in the
  // same atomic step; ResourceExhausted if the record would exceed `max_record_bytes`
  // (the record's JSON size, exact whatever runs concurrently).
  // The default reads and compares-and-sets until no concurrent write intervenes; a
  // backend that can do it in one step overrides it.
  virtual absl::StatusOr<AttributeResult> UpdateAttribute(const SessionKey& key,
                                                          const AttributeWrite& write);

  // Patch applies a PATCH body (write_rules.h ApplyPatch) iff the live version equals
  // `write.expected_version`, and returns the new version. NotFound if missing or
  // expired; PermissionDenied (GuardRefusedError) if `write.guard` refuses the
  // session, in the same atomic step; VersionConflictError on another version
  // (nothing changes); ResourceExhausted over the size limit. The default reads, applies the rule in
  // the core and compares-and-sets; a backend that can do it in one step overrides it.
  virtual absl::StatusOr<int64_t> Patch(const SessionKey& key, const PatchWrite& write);

  // Import puts `records` in place, each created or replacing what is stored under
  // its key (expired, or live at the same or an older version; a newer live session
  // is skipped and counted unless `options.overwrite_newer`): what restoring an
  // export needs; a second import of the same records changes nothing. Each session
  // lands whole; postgresql writes the whole call in one statement (all or nothing),
  // rocksdb in WriteBatches of a few dozen sessions, the default one record at a time.
  // InvalidArgument if a key appears twice. The default creates each record, or
  // compares-and-sets it over the stored one.
  virtual absl::StatusOr<ImportResult> Import(const std::vector<ImportRecord>& records,
                                              const ImportOptions& options);
  // Import with the default options.
  absl::StatusOr<ImportResult> Import(const std::vector<ImportRecord>& records) {
    return Import(records, ImportOptions{});
  }

  // BeginImport: a bulk import into this store, with Import's rules and outcome. The
  // default imports each batch as it is added. rocksdb holds the batches (up to
  // 256 MiB at a time), sorts them and puts them in place as table files of its own
  // (RocksDB's external file ingestion): no write-ahead log, no memtable; writes of
  // other callers wait while the files go in, and a session that a writer created
  // meanwhile is imported over it by Import's rule.
  virtual std::unique_ptr<BulkImport> BeginImport(const ImportOptions& options);

  // ListCustomerSessions: one page of the live sessions whose customerId is
  // `customer`'s, ordered by session id, starting after `cursor` ("" the first page);
  // at most `limit` (1..kMaxCustomerPage, else InvalidArgument). Sessions written
  // while the pages are read may or may not be listed; none is listed twice. Every
  // backend keeps an index by customer, so the cost follows the customer's sessions,
  // not the store's size. The default scans every session (ForEach): a backend of
  // one's own should override it.
  virtual absl::StatusOr<CustomerSessionPage> ListCustomerSessions(
      const CustomerKey& customer, const std::string& cursor, int limit);

  // EndCustomerSessions deletes the live sessions of `customer` ("log out
  // everywhere"), all of them or all but `keep` ("sign me out of my other devices"),
  // and returns how many it ended. When it returns, no session that belonged to the
  // customer when the call began is live (but `keep`), whatever writes ran
  // concurrently; a session that logs in to the customer after the call began may
  // survive. The default scans every session (ForEach) and deletes the customer's.
  virtual absl::StatusOr<int64_t> EndCustomerSessions(
      const CustomerKey& customer, const std::optional<std::string>& keep);

  // ReadEvents: one page of the store's event feed (session_events.h): the events
  // after `query.after`, in position order. Every write above that commits appends
  // its event in the same atomic step (PurgeExpired: one `expired` per session
  // removed; EndCustomerSessions: one `ended` per session), a write that fails
  // appends none. Errors: InvalidArgument (a malformed position or limit),
  // EventsGoneError (a position out of retention, or one this feed never gave: a
  // memory store restarted). PurgeExpired also trims the feed to its retention. The
  // default: Unimplemented (a store without a feed).
  virtual absl::StatusOr<EventPage> ReadEvents(const EventQuery& query);

  // Ready: OK when the store serves reads and writes now; otherwise why not
  // (Unavailable: unreachable; StorageFullError: writes refused, reads served). For
  // readiness probes: cheap, changes nothing. The default reads a session that does
  // not exist (NotFound is OK).
  virtual absl::Status Ready();

  // Stats returns the backend's own gauges (none by default). Cheap enough to call
  // on every metrics scrape; never blocks on the store's remote end.
  virtual std::vector<StoreStat> Stats() { return {}; }
};

// SessionStoreWrapper forwards every call to another store, so that a decorator
// (metrics, tracing, caching) overrides only what it needs. Does not own `target`.
class SessionStoreWrapper : public SessionStore {
 public:
  explicit SessionStoreWrapper(SessionStore* target) : target_(target) {}
  SessionStore* target() const { return target_; }

  absl::StatusOr<SessionContext> Get(const SessionKey& key) override {
    return target_->Get(key);
  }
  absl::StatusOr<std::shared_ptr<const SessionText>> GetText(const SessionKey& key) override {
    return target_->GetText(key);
  }
  absl::StatusOr<std::shared_ptr<const SessionText>> TryGetText(const SessionKey& key) override {
    return target_->TryGetText(key);
  }
  bool GetTextAsync(const SessionKey& key, TextCallback& done) override {
    return target_->GetTextAsync(key, done);
  }
  absl::Status Create(const SessionKey& key, const SessionContext& record) override {
    return target_->Create(key, record);
  }
  absl::Status CompareAndSet(const SessionKey& key, int64_t expected_version,
                             const SessionContext& record) override {
    return target_->CompareAndSet(key, expected_version, record);
  }
  using SessionStore::Delete;
  absl::Status Delete(const SessionKey& key, std::optional<int64_t> expected_version) override {
    return target_->Delete(key, expected_version);
  }
  absl::StatusOr<int64_t> PurgeExpired() override { return target_->PurgeExpired(); }
  absl::Status ForEach(
      const std::function<bool(const SessionKey&, const SessionContext&)>& visit) override {
    return target_->ForEach(visit);
  }
  absl::StatusOr<AttributeResult> UpdateAttribute(const SessionKey& key,
                                                  const AttributeWrite& write) override {
    return target_->UpdateAttribute(key, write);
  }
  absl::StatusOr<int64_t> Patch(const SessionKey& key, const PatchWrite& write) override {
    return target_->Patch(key, write);
  }
  using SessionStore::Import;
  absl::StatusOr<ImportResult> Import(const std::vector<ImportRecord>& records,
                                      const ImportOptions& options) override {
    return target_->Import(records, options);
  }
  std::unique_ptr<BulkImport> BeginImport(const ImportOptions& options) override {
    return target_->BeginImport(options);
  }
  absl::StatusOr<CustomerSessionPage> ListCustomerSessions(const CustomerKey& customer,
                                                           const std::string& cursor,
                                                           int limit) override {
    return target_->ListCustomerSessions(customer, cursor, limit);
  }
  absl::StatusOr<int64_t> EndCustomerSessions(
      const CustomerKey& customer, const std::optional<std::string>& keep) override {
    return target_->EndCustomerSessions(customer, keep);
  }
  absl::StatusOr<EventPage> ReadEvents(const EventQuery& query) override {
    return target_->ReadEvents(query);
  }
  absl::Status Ready() override { return target_->Ready(); }
  std::vector<StoreStat> Stats() override { return target_->Stats(); }

 private:
  SessionStore* const target_;
};

}  // namespace sessionctx

#endif  // SESSIONCTX_SESSION_STORE_H_
