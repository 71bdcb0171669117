#include "sessionctx/session_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sessionctx/backend_support.h"
#include "sessionctx/write_rules.h"

namespace sessionctx {

absl::StatusOr<std::shared_ptr<const SessionText>> SessionStore::GetText(const SessionKey& key) {
  absl::StatusOr<SessionContext> record = Get(key);
  if (!record.ok()) return record.status();
  return SessionText::FromRecord(*record);
}

std::optional<int64_t> CurrentVersionOf(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kCurrentVersionPayload);
  int64_t v = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &v)) return std::nullopt;
  return v;
}

absl::StatusOr<std::shared_ptr<const SessionText>> SessionStore::TryGetText(const SessionKey&) {
  return backend::WouldBlockError();
}

bool SessionStore::GetTextAsync(const SessionKey&, TextCallback&) { return false; }

bool IsWouldBlock(const absl::Status& status) {
  return absl::IsUnavailable(status) && status.GetPayload(kWouldBlockPayload).has_value();
}

bool IsStorageFull(const absl::Status& status) {
  return absl::IsUnavailable(status) && status.GetPayload(kStorageFullPayload).has_value();
}

absl::Status SessionStore::Ready() {
  absl::StatusOr<SessionContext> probe = Get({"readyz", "readiness-probe"});
  if (probe.ok() || absl::IsNotFound(probe.status())) return absl::OkStatus();
  return probe.status();
}

namespace {

// DirectImport: the default BulkImport, each batch imported as it is added.
class DirectImport final : public BulkImport {
 public:
  DirectImport(SessionStore& store, const ImportOptions& options)
      : store_(store), options_(options) {}
  absl::StatusOr<ImportResult> Add(std::vector<ImportRecord>& records) override {
    absl::StatusOr<ImportResult> r = store_.Import(records, options_);
    if (r.ok()) records.clear();
    return r;
  }
  absl::StatusOr<ImportResult> Finish() override { return ImportResult{}; }

 private:
  SessionStore& store_;
  const ImportOptions options_;
};

}  // namespace

std::unique_ptr<BulkImport> SessionStore::BeginImport(const ImportOptions& options) {
  return std::make_unique<DirectImport>(*this, options);
}

absl::StatusOr<ImportResult> SessionStore::Import(const std::vector<ImportRecord>& records,
                                                  const ImportOptions& options) {
  if (absl::Status st = backend::CheckImportKeys(records); !st.ok()) return st;
  std::vector<ImportRecord> parsed;
  ImportResult result;
  for (const ImportRecord& r : backend::ParsedImportRecords(records, parsed)) {
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
      if (!backend::ImportReplaces(current->version, r.record.version, options)) {
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
  Json context = std::exchange(current->context, Json::object());
  absl::StatusOr<SessionContext> next = backend::PatchFields(*current, write);
  if (!next.ok()) return next.status();
  next->context = std::move(context);
  backend::PatchContext(next->context, write.body);
  if (absl::Status st = backend::CheckRecordSize(*next, write.max_record_bytes); !st.ok()) {
    return st;
  }
  absl::Status st = CompareAndSet(key, write.expected_version, *next);
  if (absl::IsAborted(st) && write.guard) {
    // Changed since the read: if the change was a login the guard refuses, say so.
    absl::StatusOr<SessionContext> now = Get(key);
    if (now.ok() && !backend::GuardAllows(write.guard, now->customer_id)) {
      return backend::GuardRefusedError();
    }
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
    const int64_t expected = record.version;
    if (absl::Status st = backend::CheckWrite(record.customer_id, expected, write.guard,
                                              write.expected_version);
        !st.ok()) {
      return st;
    }
    if (write.value) {
      SetAttribute(record, write.name, *write.value);
    } else if (!RemoveAttribute(record, write.name)) {
      return AttributeResult{expected, false};
    }
    backend::StampUpdate(record, backend::WriteTime{write.now, write.anonymous_ttl});
    if (absl::Status st = backend::CheckRecordSize(record, write.max_record_bytes); !st.ok()) {
      return st;
    }
    absl::Status st = CompareAndSet(key, expected, record);
    if (st.ok()) return AttributeResult{record.version, true};
    if (!absl::IsAborted(st)) return st;
  }
}

absl::StatusOr<EventPage> SessionStore::ReadEvents(const EventQuery&) {
  return absl::UnimplementedError("this store keeps no event feed");
}

Json ToJson(const CustomerSession& s) {
  Json out = {{"sessionId", s.session_id},
              {"version", s.version},
              {"createdAt", FormatTimestamp(s.created_at)},
              {"modifiedAt", FormatTimestamp(s.modified_at)}};
  if (s.expires_at != absl::InfiniteFuture())
    out["expiresAt"] = FormatTimestamp(s.expires_at);
  return out;
}

absl::StatusOr<CustomerSessionPage> SessionStore::ListCustomerSessions(
    const CustomerKey& customer, const std::string& cursor, int limit) {
  if (absl::Status st = backend::CheckCustomerQuery(customer, limit); !st.ok()) return st;
  std::vector<CustomerSession> found;
  absl::Status st = ForEach([&](const SessionKey& key, const SessionContext& record) {
    if (key.tenant == customer.tenant && record.customer_id == customer.customer_id &&
        key.session_id > cursor) {
      found.push_back(backend::SummaryOf(record));
    }
    return true;
  });
  if (!st.ok()) return st;
  std::sort(found.begin(), found.end(),
            [](const CustomerSession& a, const CustomerSession& b) {
              return a.session_id < b.session_id;
            });
  return backend::PageOf(std::move(found), limit, false);
}

absl::StatusOr<int64_t> SessionStore::EndCustomerSessions(
    const CustomerKey& customer, const std::optional<std::string>& keep) {
  if (absl::Status st = backend::CheckCustomerQuery(customer, std::nullopt); !st.ok())
    return st;
  std::vector<std::string> ids;
  absl::Status st = ForEach([&](const SessionKey& key, const SessionContext& record) {
    if (key.tenant == customer.tenant && record.customer_id == customer.customer_id &&
        key.session_id != keep) {
      ids.push_back(key.session_id);
    }
    return true;
  });
  if (!st.ok()) return st;
  int64_t ended = 0;
  for (const std::string& id : ids) {
    absl::Status deleted = Delete(SessionKey{customer.tenant, id});
    if (deleted.ok()) ++ended;
    if (!deleted.ok() && !absl::IsNotFound(deleted)) return deleted;
  }
  return ended;
}

}  // namespace sessionctx
