// The write rules every backend applies in its atomic step (backend_support.h):
// errors, guard and version, stamps, sizes, one attribute edited in a record's text.
#include "sessionctx/backend_support.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "sessionctx/base_fields.h"
#include "sessionctx/write_rules.h"
#include "src/json_text.h"

namespace sessionctx::backend {

absl::Status VersionConflictError(int64_t expected, int64_t current) {
  absl::Status st = absl::AbortedError(
      absl::StrCat("version conflict: the request is based on version ", expected,
                   ", the current version is ", current, "; read the session again"));
  st.SetPayload(kCurrentVersionPayload, absl::Cord(absl::StrCat(current)));
  return st;
}

absl::Status SessionNotFoundError(const SessionKey& key) {
  return absl::NotFoundError(absl::StrCat("no session ", key.session_id));
}

absl::Status SessionExistsError(const SessionKey& key) {
  return absl::AlreadyExistsError(absl::StrCat("session ", key.session_id, " exists"));
}

absl::Status GuardRefusedError() {
  return absl::PermissionDeniedError("session belongs to another customer");
}

absl::Status RecordTooLarge(size_t bytes, size_t max_bytes) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "session record would be ", bytes, " bytes, over the limit of ", max_bytes));
}

absl::Status StorageFullError(absl::string_view message) {
  absl::Status st = absl::UnavailableError(message);
  st.SetPayload(kStorageFullPayload, absl::Cord("1"));
  return st;
}

absl::Status WouldBlockError() {
  absl::Status st = absl::UnavailableError("the session is not at hand without a wait");
  st.SetPayload(kWouldBlockPayload, absl::Cord("1"));
  return st;
}

bool GuardAllows(const std::optional<CustomerGuard>& guard,
                 const std::optional<std::string>& customer_id) {
  return !guard || !customer_id || customer_id == guard->customer_id;
}

absl::Status CheckWrite(const std::optional<std::string>& customer_id, int64_t version,
                        const std::optional<CustomerGuard>& guard,
                        std::optional<int64_t> expected_version) {
  if (!GuardAllows(guard, customer_id)) return GuardRefusedError();
  if (expected_version && *expected_version != version) {
    return VersionConflictError(*expected_version, version);
  }
  return absl::OkStatus();
}

absl::Time ExpiryAt(const std::optional<std::string>& customer_id, const WriteTime& time) {
  return customer_id ? absl::InfiniteFuture() : time.now + time.anonymous_ttl;
}

Stamp NextStamp(const std::optional<std::string>& customer_id, int64_t version,
                const WriteTime& time) {
  // Whole milliseconds: the wire shows no more, and a read must equal the write.
  const WriteTime at{absl::FromUnixMillis(absl::ToUnixMillis(time.now)), time.anonymous_ttl};
  return Stamp{version + 1, at.now, ExpiryAt(customer_id, at)};
}

Stamp CreateStamp(const std::optional<std::string>& customer_id, const WriteTime& time) {
  return NextStamp(customer_id, 0, time);
}

void StampUpdate(SessionContext& session, const WriteTime& time) {
  const Stamp stamp = NextStamp(session.customer_id, session.version, time);
  session.version = stamp.version;
  session.modified_at = stamp.modified_at;
  session.expires_at = stamp.expires_at;
}

void StampCreate(SessionContext& session, const WriteTime& time) {
  const Stamp stamp = CreateStamp(session.customer_id, time);
  session.version = stamp.version;
  session.created_at = stamp.modified_at;
  session.modified_at = stamp.modified_at;
  session.expires_at = stamp.expires_at;
}

int64_t ExpiryMinute(absl::Time expires_at) {
  const int64_t seconds = absl::ToUnixSeconds(expires_at);
  return seconds / 60 - (seconds % 60 < 0 ? 1 : 0);
}

size_t RecordBytes(const SessionContext& session) {
  // The fields' text around an empty context, plus the context's own text: no copy of
  // the context's DOM (ToJson would make one), one render of it.
  const size_t context =
      session.context.is_object() ? JsonText(session.context).size() : 2;
  return TextLayout::FromParts(session, "{}")->json().size() - 2 + context;
}

absl::Status CheckRecordSize(const SessionContext& session, size_t max_bytes) {
  const size_t size = RecordBytes(session);
  return size > max_bytes ? RecordTooLarge(size, max_bytes) : absl::OkStatus();
}

size_t AttributeBytes(const std::string& name, const Json& value) {
  return MemberBytes(QuotedJsonString(name).size(), JsonText(value).size());
}

size_t Digits(int64_t version) {
  size_t n = 1;
  for (; version >= 10; version /= 10) ++n;
  return n;
}

absl::StatusOr<std::optional<std::string>> EditContext(const SessionText& text,
                                                       const AttributeWrite& write) {
  const std::string quoted = QuotedJsonString(write.name);
  const absl::string_view context = text.context_json();
  if (!write.value) {
    if (!FindMember(context, quoted)) return std::optional<std::string>();
    return std::optional<std::string>(internal::RemoveMember(context, quoted));
  }
  std::string next = internal::SetMember(context, quoted, JsonText(*write.value));
  const size_t bytes = BytesAtVersion(text, text.version() + 1) - context.size() + next.size();
  if (bytes > write.max_record_bytes) return RecordTooLarge(bytes, write.max_record_bytes);
  return std::optional<std::string>(std::move(next));
}

// How deep a context_json may nest (a deeper context goes through the DOM).
constexpr int kImportContextDepth = 64;

std::string ImportContextJson(const ImportRecord& r) {
  if (!r.context_json.empty()) return r.context_json;
  return r.record.context.is_object() ? JsonText(r.record.context) : "{}";
}

const std::vector<ImportRecord>& ParsedImportRecords(
    const std::vector<ImportRecord>& records, std::vector<ImportRecord>& storage) {
  const bool any = std::any_of(records.begin(), records.end(), [](const ImportRecord& r) {
    return !r.context_json.empty();
  });
  if (!any) return records;
  storage = records;
  for (ImportRecord& r : storage) {
    if (r.context_json.empty()) continue;
    r.record.context = Json::parse(r.context_json);  // canonical, so valid
    r.context_json.clear();
  }
  return storage;
}

absl::Status CheckImportKeys(const std::vector<ImportRecord>& records) {
  absl::flat_hash_set<std::pair<std::string, std::string>> seen;
  seen.reserve(records.size());
  for (const ImportRecord& r : records) {
    if (r.record.session_id != r.key.session_id) {
      return absl::InvalidArgumentError(
          absl::StrCat("import: session ", r.key.session_id, " holds a record of another id"));
    }
    if (!seen.emplace(r.key.tenant, r.key.session_id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("import: session ", r.key.session_id, " appears twice in one batch"));
    }
    // No store may be handed a NUL (see ValidateNoNul).
    absl::Status st = ValidateNoNul(r.key.session_id, "sessionId");
    for (const BaseField& f : kBaseFields) {
      if (st.ok() && r.record.*f.member) st = ValidateNoNul(*(r.record.*f.member), f.name);
    }
    if (st.ok() && r.context_json.empty()) st = RejectNul(r.record.context, "context");
    if (st.ok() && !r.context_json.empty() &&
        (r.context_json[0] != '{' ||
         !IsCanonicalJson(r.context_json, kImportContextDepth))) {
      st = absl::InvalidArgumentError(
          "context_json is not an object's JSON text as the library renders it");
    }
    if (!st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("import: session ", r.key.session_id, ": ", st.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckCustomerQuery(const CustomerKey& customer, std::optional<int> limit) {
  if (absl::Status st = ValidateTenant(customer.tenant); !st.ok()) return st;
  if (absl::Status st = ValidateCustomerId(customer.customer_id); !st.ok()) return st;
  if (limit && (*limit < 1 || *limit > kMaxCustomerPage)) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit must be from 1 to ", kMaxCustomerPage, ", not ", *limit));
  }
  return absl::OkStatus();
}

CustomerSession SummaryOf(const SessionText& text, const std::string& session_id) {
  return CustomerSession{session_id, text.version(), text.created_at(),
                         text.modified_at(), text.expires_at()};
}

CustomerSession SummaryOf(const SessionContext& record) {
  return CustomerSession{record.session_id, record.version, record.created_at,
                         record.modified_at, record.expires_at};
}

CustomerSessionPage PageOf(std::vector<CustomerSession> sorted, int limit,
                           bool more_after) {
  CustomerSessionPage page;
  const size_t n = static_cast<size_t>(std::max(limit, 0));
  if (sorted.size() > n) {
    sorted.resize(n);
    more_after = true;
  }
  page.sessions = std::move(sorted);
  if (more_after && !page.sessions.empty())
    page.next_cursor = page.sessions.back().session_id;
  return page;
}

}  // namespace sessionctx::backend
