// The backend author's API: what a SessionStore implementation calls so that it
// applies the write rules exactly as every other backend does. An embedder who only
// uses stores never needs this header (session_store.h, session_service.h and the
// backends' own headers are theirs); docs/writing-a-backend.md walks through a
// backend from the interface to the conformance suite.
//
// A backend owes, in one atomic step per write: the customer guard and the expected
// version (CheckWrite), the body applied (PatchFields, EditContext), the stamp
// (NextStamp: version + 1, modifiedAt, expiry), the size limit (RecordBytes and
// friends) and the errors below, each with its own status code. Everything here is a
// pure function of its arguments, except Striped, a lock (or any state) per stripe.
//
// Example (a Patch under the backend's own lock, the context merged as text):
//   std::lock_guard lock(stripes_.For(Hash(key)));
//   absl::StatusOr<SessionContext> next = backend::PatchFields(fields, write);
//   std::optional<std::string> context = backend::PatchedContext(old_context, write.body);
//   auto text = backend::TextLayout::FromParts(*next, context.value_or(old_context));
//   if (text->json().size() > write.max_record_bytes) return backend::RecordTooLarge(…);
#ifndef SESSIONCTX_BACKEND_SUPPORT_H_
#define SESSIONCTX_BACKEND_SUPPORT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sessionctx/session_context.h"
#include "sessionctx/session_store.h"
#include "sessionctx/session_text.h"

namespace sessionctx::backend {

// --- errors: each outcome its own status, as the service and the HTTP layer read them

// VersionConflictError: Aborted (409), carrying the current version (CurrentVersionOf).
absl::Status VersionConflictError(int64_t expected, int64_t current);
// SessionNotFoundError: NotFound (404), for a missing or expired session.
absl::Status SessionNotFoundError(const SessionKey& key);
// SessionExistsError: AlreadyExists (409), for a Create on a live session.
absl::Status SessionExistsError(const SessionKey& key);
// GuardRefusedError: PermissionDenied (403), the session belongs to another customer.
absl::Status GuardRefusedError();
// RecordTooLarge: ResourceExhausted (413), the record would be `bytes` > `max_bytes`.
absl::Status RecordTooLarge(size_t bytes, size_t max_bytes);
// StorageFullError: Unavailable marked as out of storage (507): writes refused, reads
// served. `message` says why and since when (logged, never sent to a client).
absl::Status StorageFullError(absl::string_view message);

// WouldBlockError: TryGetText's answer when the session is not at hand (IsWouldBlock).
absl::Status WouldBlockError();

// --- a customer's sessions ------------------------------------------------------

// CheckCustomerQuery: InvalidArgument naming what is wrong with `customer` (tenant,
// customer id) or, when `limit` is given, the page size (1..kMaxCustomerPage).
absl::Status CheckCustomerQuery(const CustomerKey& customer, std::optional<int> limit);

// SummaryOf: a session's line in a listing.
CustomerSession SummaryOf(const SessionText& text, const std::string& session_id);
CustomerSession SummaryOf(const SessionContext& record);

// PageOf: the page of `sorted` (live sessions of one customer, by session id, all
// after the cursor) that holds at most `limit`, and where the next one starts.
CustomerSessionPage PageOf(std::vector<CustomerSession> sorted, int limit,
                           bool more_after);

// ListFromIndex: the page after `cursor` of a backend whose index by customer is exact.
// `ids(after, n)` gives up to n of the customer's session ids that sort after `after`,
// in order (StatusOr<std::vector<std::string>>); `summary(id)` reads one session
// (StatusOr<std::optional<CustomerSession>>: nullopt when it no longer lives or is no
// longer the customer's, e.g. changed since the index was read).
template <typename Ids, typename Summary>
absl::StatusOr<CustomerSessionPage> ListFromIndex(const std::string& cursor, int limit,
                                                  Ids&& ids, Summary&& summary) {
  std::vector<CustomerSession> found;
  std::string after = cursor;
  while (found.size() <= static_cast<size_t>(limit)) {
    absl::StatusOr<std::vector<std::string>> next =
        ids(after, static_cast<size_t>(limit) + 1);
    if (!next.ok()) return next.status();
    if (next->empty()) break;
    after = next->back();
    for (const std::string& id : *next) {
      absl::StatusOr<std::optional<CustomerSession>> one = summary(id);
      if (!one.ok()) return one.status();
      if (*one) found.push_back(**std::move(one));
    }
  }
  return PageOf(std::move(found), limit, false);
}

// --- guard and version: checked inside the store's atomic step -------------------

// GuardAllows: whether `guard` (if any) lets a write touch a session of `customer_id`:
// no guard, an anonymous session, or the guard's own customer.
bool GuardAllows(const std::optional<CustomerGuard>& guard,
                 const std::optional<std::string>& customer_id);

// CheckWrite: GuardRefusedError when `guard` refuses a session of `customer_id`, else a
// VersionConflictError when `expected_version` is set and is not `version`.
absl::Status CheckWrite(const std::optional<std::string>& customer_id, int64_t version,
                        const std::optional<CustomerGuard>& guard,
                        std::optional<int64_t> expected_version);

// --- the stamp: what every write sets -------------------------------------------

// WriteTime: when a write happens and the expiry policy it follows.
struct WriteTime {
  absl::Time now;
  absl::Duration anonymous_ttl;
};

// Stamp: the metadata a write leaves on a session.
struct Stamp {
  int64_t version = 0;
  absl::Time modified_at;  // whole milliseconds, as the wire shows them
  absl::Time expires_at;   // InfiniteFuture for a customer session
};

// ExpiryAt: anonymous sessions expire `anonymous_ttl` after the write; customer
// sessions never (InfiniteFuture). PostgreSQL's write functions state the same rule
// in SQL (CASE WHEN customer_id IS NULL …), held to it by the conformance suite.
absl::Time ExpiryAt(const std::optional<std::string>& customer_id, const WriteTime& time);

// NextStamp: the stamp of a write on a session of `customer_id` at `version`.
Stamp NextStamp(const std::optional<std::string>& customer_id, int64_t version,
                const WriteTime& time);
// CreateStamp: the stamp of a new session (version 1).
Stamp CreateStamp(const std::optional<std::string>& customer_id, const WriteTime& time);

// StampUpdate / StampCreate: NextStamp / CreateStamp applied to a record (a create
// also sets createdAt).
void StampUpdate(SessionContext& session, const WriteTime& time);
void StampCreate(SessionContext& session, const WriteTime& time);

// ExpiryMinute: the minute (Unix seconds / 60, rounded down) an expiry falls in: the
// granularity of the memory and rocksdb expiry indexes, so that a sliding expiry
// moves an index entry at most once a minute.
int64_t ExpiryMinute(absl::Time expires_at);

// --- a write applied -------------------------------------------------------------

// PatchFields: the PATCH `write` applied to a session's fields (`fields`, with an
// empty context: a large one would be copied): CheckWrite, then the body's base fields, then NextStamp. The
// result's context is empty: the backend merges the context (PatchedContext on text,
// PatchContext on a DOM). InvalidArgument for a bad body.
absl::StatusOr<SessionContext> PatchFields(const SessionContext& fields, const PatchWrite& write);

// PatchContext: the PATCH body's `context` applied to a context held as a DOM.
void PatchContext(Json& context, const Json& body);

// PatchedContext: `context_json` after the PATCH body's `context` (merge-patched,
// "context": null empties it); nullopt when the body has no `context`.
std::optional<std::string> PatchedContext(absl::string_view context_json, const Json& body);

// EditContext: `text`'s context with the attribute of `write` set (or removed), one
// member replaced in the text. nullopt when nothing changes (removing an absent
// attribute); RecordTooLarge when the record would pass write.max_record_bytes.
// REQUIRES: CheckWrite passed.
absl::StatusOr<std::optional<std::string>> EditContext(const SessionText& text,
                                                       const AttributeWrite& write);

// --- sizes: the limit is on the record's JSON text, exact under concurrency --------

// RecordBytes: the size of the record's JSON text.
size_t RecordBytes(const SessionContext& session);
// CheckRecordSize: RecordTooLarge when RecordBytes passes `max_bytes`.
absl::Status CheckRecordSize(const SessionContext& session, size_t max_bytes);
// MemberBytes: what one context member adds to a non-empty context's text, given its
// key's quoted size and its value's text size: `"key":value` and one comma. An empty
// context is "{}" (2 bytes); a context of n members is 1 + the members' MemberBytes.
inline size_t MemberBytes(size_t quoted_key_bytes, size_t value_bytes) {
  return quoted_key_bytes + 1 + value_bytes + 1;
}
// AttributeBytes: MemberBytes of attribute `name` set to `value`.
size_t AttributeBytes(const std::string& name, const Json& value);
// Digits: how many decimal digits `version` (positive) takes in a record's text.
size_t Digits(int64_t version);
// BytesAtVersion: the size of `text` stamped with `version` (its context as it is):
// the version's digits may change the size, the times' never do.
inline size_t BytesAtVersion(const SessionText& text, int64_t version) {
  return text.json().size() - Digits(text.version()) + Digits(version);
}

// --- import ----------------------------------------------------------------------

// CheckImportKeys: InvalidArgument when a key appears twice in `records`, a record
// is filed under another session id, holds U+0000 in a string, or has a
// context_json that is not a canonical object text.
absl::Status CheckImportKeys(const std::vector<ImportRecord>& records);

// ImportContextJson: an import record's context as text: its context_json when
// given, else its context rendered.
std::string ImportContextJson(const ImportRecord& r);

// ParsedImportRecords: for a store that works on the context's DOM, `records` with
// every context_json parsed into record.context (copies kept in `storage`); `records`
// itself when none has one. REQUIRES: CheckImportKeys(records) passed.
const std::vector<ImportRecord>& ParsedImportRecords(
    const std::vector<ImportRecord>& records, std::vector<ImportRecord>& storage);

// ImportReplaces: whether an imported record of `imported_version` goes in place of
// a stored live session at `stored_version` (see ImportOptions).
inline bool ImportReplaces(int64_t stored_version, int64_t imported_version,
                           const ImportOptions& options) {
  return options.overwrite_newer || stored_version <= imported_version;
}

// --- the text layout: a record's JSON text and where its context sits --------------

// TextLayout makes and takes apart SessionText, the read path's form (session_text.h).
struct TextLayout {
  // FromParts: the fields of `fields` (its context ignored) with `context_json`, the
  // compact text of a JSON object. REQUIRES: `context_json` is valid (the store's own
  // bytes, written from a validated record).
  static std::shared_ptr<const SessionText> FromParts(const SessionContext& fields,
                                                      absl::string_view context_json);
  // WithContext: `base` with `context_json` as its context and `stamp` as its
  // metadata; the other fields are `base`'s.
  static std::shared_ptr<const SessionText> WithContext(const SessionText& base,
                                                        absl::string_view context_json,
                                                        const Stamp& stamp);
  // FromStored rebuilds a text from what a store kept of one (json(), ContextBegin,
  // ContextEnd and the accessors). REQUIRES: the parts come from a SessionText (e.g.
  // read back under a checksum); nothing is re-validated. Nullptr when the offsets do
  // not fit `json` or do not frame an object.
  static std::shared_ptr<const SessionText> FromStored(std::string json, size_t context_begin,
                                                       size_t context_end, int64_t version,
                                                       std::optional<std::string> customer_id,
                                                       absl::Time created_at,
                                                       absl::Time modified_at,
                                                       absl::Time expires_at);
  // Where the context object sits in text.json(): [ContextBegin, ContextEnd).
  static size_t ContextBegin(const SessionText& text) { return text.context_begin_; }
  static size_t ContextEnd(const SessionText& text) { return text.context_end_; }
};

// --- JSON text the library wrote (compact, valid) ----------------------------------

// AppendJsonString appends `s` as a quoted JSON string ('"', '\' and control bytes
// escaped; other bytes, UTF-8 included, as they are).
void AppendJsonString(std::string& out, absl::string_view s);
// QuotedJsonString: `s` as a quoted JSON string, the form member keys are compared in.
std::string QuotedJsonString(absl::string_view s);
// JsonText: `value` rendered byte for byte as `value.dump()` renders it (compact,
// members in key order), in one pass that copies each string's runs of plain bytes
// whole: what a record's size and its stored text are made of. A string that is not
// valid UTF-8 throws as dump() does; AppendJson appends the same text to `out`.
std::string JsonText(const Json& value);
void AppendJson(std::string& out, const Json& value);

// MemberSpan: where one member of an object sits in its text.
struct MemberSpan {
  size_t begin = 0;        // the key's opening quote
  size_t end = 0;          // just past the value
  size_t value_begin = 0;  // the value's first byte
};
// FindMember: the member whose quoted key is `quoted_key` in `object`.
std::optional<MemberSpan> FindMember(absl::string_view object, absl::string_view quoted_key);
// ForEachMember calls `visit(quoted_key, value_json)` for each member of `object`.
template <typename Visit>
void ForEachMember(absl::string_view object, Visit&& visit);
// SkipString / SkipValue: the index just past the string (at `i`, a quote) or value
// starting at `i`.
size_t SkipString(absl::string_view text, size_t i);
size_t SkipValue(absl::string_view text, size_t i);

// IsJsonValue: whether `text` is exactly one JSON value (RFC 8259, strict; strings in
// valid UTF-8 without raw control bytes; whitespace around it allowed) nested at most
// `max_depth` deep. One pass, no DOM: for stored text before it is served.
bool IsJsonValue(absl::string_view text, int max_depth);
// IsCanonicalJson: whether `text` is one JSON value exactly as the library renders
// what it denotes (Json::dump): no whitespace, each object's keys in rising byte
// order without escapes, the library's escapes only (and no NUL), integers of at most
// 18 digits, decimals in their shortest form; at most `max_depth` deep. False means
// "not known to be canonical", not "invalid": the caller then parses and renders.
bool IsCanonicalJson(absl::string_view text, int max_depth);

// MergePatchText applies the merge patch `patch` (an object) to `object_json`, a
// compact JSON object text, touching only the members `patch` names; the result is
// MergePatch's, members possibly in another order.
std::string MergePatchText(absl::string_view object_json, const Json& patch);

// --- Striped: one T per stripe (a lock, a shard of a map) -------------------------

// Striped<T> holds `n` Ts and picks one by a hash, so that writes of different keys
// rarely share a lock while the number of locks stays fixed. Multi-stripe operations
// take stripes in index order (Indexes) so that two of them cannot deadlock.
template <typename T>
class Striped {
 public:
  explicit Striped(size_t n) : n_(n > 0 ? n : 1), items_(std::make_unique<T[]>(n_)) {}
  size_t size() const { return n_; }
  size_t IndexOf(size_t hash) const { return hash % n_; }
  T& For(size_t hash) { return items_[IndexOf(hash)]; }
  T& at(size_t index) { return items_[index]; }
  T* begin() { return items_.get(); }
  T* end() { return items_.get() + n_; }

 private:
  size_t n_;
  std::unique_ptr<T[]> items_;
};

template <typename Visit>
void ForEachMember(absl::string_view t, Visit&& visit) {
  size_t i = 1;  // past '{'
  while (i < t.size() && t[i] == '"') {
    const size_t key_end = SkipString(t, i);
    const size_t value_end = SkipValue(t, key_end + 1);
    visit(t.substr(i, key_end - i), t.substr(key_end + 1, value_end - key_end - 1));
    i = value_end;
    if (i < t.size() && t[i] == ',') ++i;
  }
}

}  // namespace sessionctx::backend

#endif  // SESSIONCTX_BACKEND_SUPPORT_H_
