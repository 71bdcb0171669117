#include "sessionctx/session_store.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sessionctx/base_fields.h"
#include "sessionctx/write_rules.h"

namespace sessionctx {

absl::StatusOr<std::shared_ptr<const SessionText>> SessionStore::GetText(const SessionKey& key) {
  absl::StatusOr<SessionContext> record = Get(key);
  if (!record.ok()) return record.status();
  return SessionText::FromRecord(*record);
}

absl::Status VersionConflictError(int64_t expected, int64_t current) {
  absl::Status st = absl::AbortedError(
      absl::StrCat("version conflict: the request is based on version ", expected,
                   ", the current version is ", current, "; read the session again"));
  st.SetPayload(kCurrentVersionPayload, absl::Cord(absl::StrCat(current)));
  return st;
}

std::optional<int64_t> CurrentVersionOf(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kCurrentVersionPayload);
  int64_t v = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &v)) return std::nullopt;
  return v;
}

bool GuardAllows(const std::optional<CustomerGuard>& guard,
                 const std::optional<std::string>& customer_id) {
  return !guard || !customer_id || customer_id == guard->customer_id;
}

bool GuardAllows(const std::optional<CustomerGuard>& guard, const SessionContext& session) {
  return GuardAllows(guard, session.customer_id);
}

absl::Status GuardRefusedError() {
  return absl::PermissionDeniedError("session belongs to another customer");
}

absl::Status StorageFullError(absl::string_view message) {
  absl::Status st = absl::UnavailableError(message);
  st.SetPayload(kStorageFullPayload, absl::Cord("1"));
  return st;
}

bool IsStorageFull(const absl::Status& status) {
  return absl::IsUnavailable(status) && status.GetPayload(kStorageFullPayload).has_value();
}

absl::Status SessionStore::Ready() {
  absl::StatusOr<SessionContext> probe = Get({"readyz", "readiness-probe"});
  if (probe.ok() || absl::IsNotFound(probe.status())) return absl::OkStatus();
  return probe.status();
}

absl::Status SessionNotFoundError(const SessionKey& key) {
  return absl::NotFoundError(absl::StrCat("no session ", key.session_id));
}

absl::Status SessionExistsError(const SessionKey& key) {
  return absl::AlreadyExistsError(absl::StrCat("session ", key.session_id, " exists"));
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
    if (st.ok()) st = RejectNul(r.record.context, "context");
    if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat("import: session ", r.key.session_id, ": ", st.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<ImportResult> SessionStore::Import(const std::vector<ImportRecord>& records,
                                                  const ImportOptions& options) {
  if (absl::Status st = CheckImportKeys(records); !st.ok()) return st;
  ImportResult result;
  for (const ImportRecord& r : records) {
    while (true) {  // a concurrent writer can only make the compare-and-set retry
      absl::Status st = Create(r.key, r.record);
      if (!absl::IsAlreadyExists(st)) {
        if (!st.ok()) return st;
        ++result.written;
        break;
      }
      absl::StatusOr<SessionContext> current = Get(r.key);
      if (absl::IsNotFound(current.status())) continue;  // gone or expired meanwhile
      if (!current.ok()) return current.status();
      if (!ImportReplaces(current->version, r.record.version, options)) {
        ++result.skipped;
        break;
      }
      st = CompareAndSet(r.key, current->version, r.record);
      if (st.ok()) {
        ++result.written;
        break;
      }
      if (!absl::IsAborted(st) && !absl::IsNotFound(st)) return st;
    }
  }
  return result;
}

absl::StatusOr<int64_t> SessionStore::Patch(const SessionKey& key, const PatchWrite& write) {
  absl::StatusOr<SessionContext> current = Get(key);
  if (!current.ok()) return current.status();
  if (!GuardAllows(write.guard, *current)) return GuardRefusedError();
  if (current->version != write.expected_version) {
    return VersionConflictError(write.expected_version, current->version);
  }
  absl::StatusOr<SessionContext> next = ApplyPatch(*current, write.body);
  if (!next.ok()) return next.status();
  StampUpdate(*next, WriteStamp{write.now, write.anonymous_ttl});
  if (absl::Status st = CheckRecordSize(*next, write.max_record_bytes); !st.ok()) return st;
  absl::Status st = CompareAndSet(key, write.expected_version, *next);
  if (absl::IsAborted(st) && write.guard) {
    // Changed since the read: if the change was a login the guard refuses, say so.
    absl::StatusOr<SessionContext> now = Get(key);
    if (now.ok() && !GuardAllows(write.guard, *now)) return GuardRefusedError();
  }
  if (!st.ok()) return st;
  return next->version;
}

absl::StatusOr<AttributeResult> SessionStore::UpdateAttribute(const SessionKey& key,
                                                              const AttributeWrite& write) {
  // Optimistic loop: a concurrent writer makes the compare-and-set fail, and the change
  // is applied again on what that writer left. Every round either succeeds or observes
  // a newer version, so the loop ends as soon as this writer is not overtaken.
  while (true) {
    absl::StatusOr<SessionContext> current = Get(key);
    if (!current.ok()) return current.status();
    SessionContext& record = *current;
    if (!GuardAllows(write.guard, record)) return GuardRefusedError();
    const int64_t expected = record.version;
    if (write.expected_version && *write.expected_version != expected) {
      return VersionConflictError(*write.expected_version, expected);
    }
    if (write.value) {
      SetAttribute(record, write.name, *write.value);
    } else if (!RemoveAttribute(record, write.name)) {
      return AttributeResult{expected, false};
    }
    StampUpdate(record, WriteStamp{write.now, write.anonymous_ttl});
    if (absl::Status st = CheckRecordSize(record, write.max_record_bytes); !st.ok()) {
      return st;
    }
    absl::Status st = CompareAndSet(key, expected, record);
    if (st.ok()) return AttributeResult{record.version, true};
    if (!absl::IsAborted(st)) return st;
  }
}

}  // namespace sessionctx
