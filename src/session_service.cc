#include "sessionctx/session_service.h"

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sessionctx/backend_support.h"
#include "sessionctx/base_fields.h"
#include "sessionctx/write_rules.h"

namespace sessionctx {
namespace {

// Create and delete can race an upsert; a few rounds settle any such race.
constexpr int kMaxUpsertRounds = 16;

// CheckJson: what ParseJsonBody checks of a body, for JSON a library caller built:
// the depth limit and no U+0000.
absl::Status CheckJson(const Json& body, int max_depth, absl::string_view what) {
  if (JsonDepthExceeds(body, max_depth)) {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON nesting is deeper than the limit of ", max_depth));
  }
  return RejectNul(body, what);
}

}  // namespace

SessionService::SessionService(SessionStore* store, ServiceOptions options)
    : store_(store), options_(std::move(options)) {}

absl::Time SessionService::Now() const { return options_.clock->Now(); }

absl::StatusOr<SessionContext> SessionService::Get(const SessionKey& key) const {
  return store_->Get(key);
}

absl::StatusOr<std::shared_ptr<const SessionText>> SessionService::GetText(
    const SessionKey& key) const {
  return store_->GetText(key);
}

absl::StatusOr<std::shared_ptr<const SessionText>> SessionService::TryGetText(
    const SessionKey& key) const {
  return store_->TryGetText(key);
}

bool SessionService::GetTextAsync(const SessionKey& key,
                                  SessionStore::TextCallback& done) const {
  return store_->GetTextAsync(key, done);
}

const TenantDefaults& SessionService::DefaultsFor(const std::string& tenant) const {
  auto it = options_.tenant_defaults.find(tenant);
  return it == options_.tenant_defaults.end() ? options_.fallback_defaults : it->second;
}

void SessionService::FillDefaults(SessionContext& session, const Json& body,
                                  const std::string& tenant) const {
  const TenantDefaults& d = DefaultsFor(tenant);
  for (const BaseField& f : kBaseFields) {
    // An explicit null stays absent.
    if (f.tenant_default != nullptr && !body.contains(f.name)) {
      session.*f.member = d.*f.tenant_default;
    }
  }
}

absl::StatusOr<SessionContext> SessionService::Create(const std::string& tenant,
                                                      SessionContext given) {
  if (absl::Status st = ValidateTenant(tenant); !st.ok()) return st;
  if (absl::Status st = CheckJson(given.context, options_.limits.max_json_depth - 1, "context");
      !st.ok()) {
    return st;
  }
  absl::StatusOr<SessionContext> record = NewSession(std::move(given), DefaultsFor(tenant));
  if (!record.ok()) return record.status();
  backend::StampCreate(*record, backend::WriteTime{Now(), options_.anonymous_ttl});
  if (absl::Status st = backend::CheckRecordSize(*record, options_.limits.max_record_bytes); !st.ok()) {
    return st;
  }
  if (absl::Status st = store_->Create({tenant, record->session_id}, *record); !st.ok()) {
    return st;
  }
  return record;
}

absl::StatusOr<SessionContext> SessionService::ReadModifyWrite(
    const SessionKey& key, std::optional<int64_t> expected,
    const std::function<absl::StatusOr<SessionContext>(const SessionContext&)>& change) {
  absl::StatusOr<SessionContext> current = store_->Get(key);
  if (!current.ok()) return current.status();
  if (expected && *expected != current->version) {
    return backend::VersionConflictError(*expected, current->version);
  }
  absl::StatusOr<SessionContext> next = change(*current);
  if (!next.ok()) return next.status();
  backend::StampUpdate(*next, backend::WriteTime{Now(), options_.anonymous_ttl});
  if (absl::Status st = backend::CheckRecordSize(*next, options_.limits.max_record_bytes); !st.ok()) {
    return st;
  }
  // A conflict carries the current version (CompareAndSet's contract).
  if (absl::Status st = store_->CompareAndSet(key, current->version, *next); !st.ok()) return st;
  return next;
}

absl::StatusOr<int64_t> SessionService::Patch(const SessionKey& key, const Json& body,
                                              std::optional<int64_t> if_match,
                                              std::optional<CustomerGuard> guard) {
  if (absl::Status st = CheckJson(body, options_.limits.max_json_depth, "request body");
      !st.ok()) {
    return st;
  }
  absl::StatusOr<std::optional<int64_t>> body_version = ReadVersion(body);
  if (!body_version.ok()) return body_version.status();
  // Validate the body before touching the store, so a bad body is 400 even when the
  // session is missing or the version stale.
  if (absl::StatusOr<SessionContext> dry = ApplyPatch(SessionContext{}, body); !dry.ok()) {
    return dry.status();
  }
  absl::StatusOr<int64_t> expected = ExpectedVersion(*body_version, if_match);
  if (!expected.ok()) {
    if (absl::IsAborted(expected.status())) {
      absl::StatusOr<SessionContext> current = store_->Get(key);
      if (!current.ok()) return current.status();
      if (!backend::GuardAllows(guard, current->customer_id)) return backend::GuardRefusedError();
      return backend::VersionConflictError(*body_version.value(), current->version);
    }
    return expected.status();
  }
  return store_->Patch(key, PatchWrite{body, *expected, Now(), options_.anonymous_ttl,
                                       options_.limits.max_record_bytes, std::move(guard)});
}

absl::StatusOr<PutResult> SessionService::Put(const SessionKey& key, const Json& body,
                                              const PutOptions& options) {
  if (absl::Status st = CheckJson(body, options_.limits.max_json_depth, "request body");
      !st.ok()) {
    return st;
  }
  absl::StatusOr<std::optional<int64_t>> body_version = ReadVersion(body);
  if (!body_version.ok()) return body_version.status();
  {
    SessionContext probe;
    probe.session_id = key.session_id;
    if (absl::StatusOr<SessionContext> dry = ApplyPut(probe, body); !dry.ok()) {
      return dry.status();
    }
  }
  const auto authorize = [&](const SessionContext* stored, const SessionContext& next) {
    return options.authorize ? options.authorize(stored, next) : absl::OkStatus();
  };
  for (int round = 0; round < kMaxUpsertRounds; ++round) {
    absl::StatusOr<SessionContext> current = store_->Get(key);
    if (absl::IsNotFound(current.status())) {
      if (!options.upsert) return current.status();
      SessionContext fresh;
      fresh.session_id = key.session_id;
      if (absl::Status st = ValidateSessionId(key.session_id); !st.ok()) return st;
      absl::StatusOr<SessionContext> next = ApplyPut(fresh, body);
      if (!next.ok()) return next.status();
      FillDefaults(*next, body, key.tenant);
      if (absl::Status st = authorize(nullptr, *next); !st.ok()) return st;
      backend::StampCreate(*next, backend::WriteTime{Now(), options_.anonymous_ttl});
      if (absl::Status st = backend::CheckRecordSize(*next, options_.limits.max_record_bytes);
          !st.ok()) {
        return st;
      }
      absl::Status st = store_->Create(key, *next);
      if (absl::IsAlreadyExists(st)) continue;  // created concurrently: update it instead
      if (!st.ok()) return st;
      return PutResult{*std::move(next), true};
    }
    if (!current.ok()) return current.status();
    absl::StatusOr<int64_t> expected = ExpectedVersion(*body_version, options.if_match);
    if (!expected.ok()) {
      if (absl::IsAborted(expected.status())) {
        return backend::VersionConflictError(*body_version.value(), current->version);
      }
      return expected.status();
    }
    if (*expected != current->version) return backend::VersionConflictError(*expected, current->version);
    absl::StatusOr<SessionContext> next = ApplyPut(*current, body);
    if (!next.ok()) return next.status();
    if (absl::Status st = authorize(&*current, *next); !st.ok()) return st;
    backend::StampUpdate(*next, backend::WriteTime{Now(), options_.anonymous_ttl});
    if (absl::Status st = backend::CheckRecordSize(*next, options_.limits.max_record_bytes); !st.ok()) {
      return st;
    }
    absl::Status st = store_->CompareAndSet(key, current->version, *next);
    if (absl::IsNotFound(st) && options.upsert) continue;  // deleted concurrently
    if (!st.ok()) return st;
    return PutResult{*std::move(next), false};
  }
  return absl::AbortedError("session kept being created and deleted concurrently; retry");
}

absl::StatusOr<int64_t> SessionService::SetAttribute(const SessionKey& key,
                                                     const std::string& name, const Json& value,
                                                     std::optional<CustomerGuard> guard,
                                                     std::optional<int64_t> if_match) {
  if (absl::Status st = ValidateAttributeName(name); !st.ok()) return st;
  if (value.is_null()) {
    return absl::InvalidArgumentError("attribute value is required and must not be null");
  }
  if (absl::Status st = CheckJson(value, options_.limits.max_json_depth - 1, "attribute value");
      !st.ok()) {
    return st;
  }
  absl::StatusOr<AttributeResult> r = store_->UpdateAttribute(
      key, AttributeWrite{name, value, Now(), options_.anonymous_ttl,
                          options_.limits.max_record_bytes, std::move(guard), if_match});
  if (!r.ok()) return r.status();
  return r->version;
}

absl::StatusOr<bool> SessionService::DeleteAttribute(const SessionKey& key,
                                                     const std::string& name,
                                                     std::optional<CustomerGuard> guard,
                                                     std::optional<int64_t> if_match) {
  if (absl::Status st = ValidateAttributeName(name); !st.ok()) return st;
  absl::StatusOr<AttributeResult> r = store_->UpdateAttribute(
      key, AttributeWrite{name, std::nullopt, Now(), options_.anonymous_ttl,
                          options_.limits.max_record_bytes, std::move(guard), if_match});
  if (!r.ok()) return r.status();
  return r->changed;
}

absl::Status SessionService::Delete(const SessionKey& key, std::optional<int64_t> if_match) {
  return store_->Delete(key, if_match);
}

absl::StatusOr<SessionContext> SessionService::AttachCustomer(const SessionKey& key,
                                                              const std::string& customer_id) {
  // Login races other writes of the same session; retry on a concurrent change.
  while (true) {
    absl::StatusOr<SessionContext> r =
        ReadModifyWrite(key, std::nullopt, [&](const SessionContext& current) {
          SessionContext next = current;
          absl::Status st = sessionctx::AttachCustomer(next, customer_id);
          if (!st.ok()) return absl::StatusOr<SessionContext>(st);
          return absl::StatusOr<SessionContext>(next);
        });
    if (!absl::IsAborted(r.status())) return r;
  }
}

absl::StatusOr<int64_t> SessionService::PurgeExpired() { return store_->PurgeExpired(); }

absl::StatusOr<CustomerSessionPage> SessionService::ListCustomerSessions(
    const CustomerKey& customer, const std::string& cursor, int limit) const {
  if (absl::Status st = backend::CheckCustomerQuery(customer, limit); !st.ok()) return st;
  return store_->ListCustomerSessions(customer, cursor, limit);
}

absl::StatusOr<int64_t> SessionService::EndCustomerSessions(
    const CustomerKey& customer, const std::optional<std::string>& keep) {
  if (absl::Status st = backend::CheckCustomerQuery(customer, std::nullopt); !st.ok())
    return st;
  return store_->EndCustomerSessions(customer, keep);
}

}  // namespace sessionctx
