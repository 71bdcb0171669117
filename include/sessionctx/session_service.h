// SessionService: the library's session operations over any SessionStore.
//
// It applies the write rules of the core (write_rules.h) and the optimistic
// concurrency rule: PATCH and PUT carry the version the caller read and fail with
// Aborted when the stored one differs, changing nothing. Attribute writes need no
// version from the caller and still lose nothing under concurrency.
//
// Thread-safe: one service serves all request threads.
//
// Example:
//   SessionService service(store.get(), ServiceOptions{});
//   absl::StatusOr<SessionContext> s = service.Create("acme", SessionContext{});
//   service.SetAttribute({"acme", s->session_id}, "giftWrap", true);
#ifndef SESSIONCTX_SESSION_SERVICE_H_
#define SESSIONCTX_SESSION_SERVICE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sessionctx/options.h"
#include "sessionctx/session_context.h"
#include "sessionctx/session_store.h"
#include "sessionctx/write_rules.h"

namespace sessionctx {

// PutOptions tune one PUT.
struct PutOptions {
  // Create the session (version 1, no version check) when it does not exist.
  bool upsert = false;
  // A version from an If-Match header; when the body has one too, both must match.
  std::optional<int64_t> if_match;
  // Called with the stored record (null when creating) and the record about to be
  // written; a non-OK status refuses the write and is returned as is. The HTTP handler
  // checks the saas-token rule here.
  std::function<absl::Status(const SessionContext* stored, const SessionContext& next)>
      authorize;
};

// PutResult: the record written and whether it was created.
struct PutResult {
  SessionContext record;
  bool created = false;
};

class SessionService {
 public:
  // REQUIRES: `store` outlives the service.
  SessionService(SessionStore* store, ServiceOptions options);
  SessionService(const SessionService&) = delete;
  SessionService& operator=(const SessionService&) = delete;

  const ServiceOptions& options() const { return options_; }
  SessionStore* store() const { return store_; }

  // Get: the live record, or NotFound.
  absl::StatusOr<SessionContext> Get(const SessionKey& key) const;

  // GetText: the live record as JSON text (session_text.h), or NotFound. The read
  // path of the HTTP API: no DOM of the context is built where the store keeps text.
  absl::StatusOr<std::shared_ptr<const SessionText>> GetText(const SessionKey& key) const;
  // TryGetText: GetText without waiting (SessionStore::TryGetText): IsWouldBlock when
  // the answer needs a wait.
  absl::StatusOr<std::shared_ptr<const SessionText>> TryGetText(const SessionKey& key) const;
  // GetTextAsync: GetText answered later, on a thread of the store's
  // (SessionStore::GetTextAsync); false when the store has no asynchronous path.
  bool GetTextAsync(const SessionKey& key, SessionStore::TextCallback& done) const;

  // Create a session of `tenant` (what a cart service does when it creates a cart):
  // fields not given come from the tenant's defaults, an empty session_id is
  // generated. AlreadyExists if the id is taken; InvalidArgument for a bad field.
  absl::StatusOr<SessionContext> Create(const std::string& tenant, SessionContext given);

  // Patch applies a PATCH body (see ApplyPatch). The expected version is the body's
  // `metadata.version` and/or `if_match`: at least one is required
  // (InvalidArgument); a mismatch is Aborted with the current version attached.
  // Returns the new version. With a `guard`, a session the guard refuses is
  // PermissionDenied, checked atomically with the write (see CustomerGuard).
  absl::StatusOr<int64_t> Patch(const SessionKey& key, const Json& body,
                                std::optional<int64_t> if_match = std::nullopt,
                                std::optional<CustomerGuard> guard = std::nullopt);

  // Put replaces the record (see ApplyPut and PutOptions). A session created by
  // upsert gets the tenant's defaults for base fields the body does not name.
  absl::StatusOr<PutResult> Put(const SessionKey& key, const Json& body,
                                const PutOptions& options);

  // SetAttribute adds or replaces one custom attribute; bumps the version and
  // returns the new one. `guard` as for Patch. With `if_match` (an If-Match header),
  // only while the session is at that version: Aborted with the current version
  // attached otherwise, atomically, and nothing changes.
  absl::StatusOr<int64_t> SetAttribute(const SessionKey& key, const std::string& name,
                                       const Json& value,
                                       std::optional<CustomerGuard> guard = std::nullopt,
                                       std::optional<int64_t> if_match = std::nullopt);

  // DeleteAttribute removes one custom attribute. Returns whether it was there; an
  // absent attribute changes nothing (no version bump). NotFound for no session.
  // `guard` and `if_match` as for SetAttribute.
  absl::StatusOr<bool> DeleteAttribute(const SessionKey& key, const std::string& name,
                                       std::optional<CustomerGuard> guard = std::nullopt,
                                       std::optional<int64_t> if_match = std::nullopt);

  // Delete ends the session (logout). NotFound if there is none. `if_match` as for
  // SetAttribute.
  absl::Status Delete(const SessionKey& key, std::optional<int64_t> if_match = std::nullopt);

  // AttachCustomer (login) sets customerId on an anonymous session, keeping its id
  // and context; from then on it never expires.
  absl::StatusOr<SessionContext> AttachCustomer(const SessionKey& key,
                                                const std::string& customer_id);

  // PurgeExpired removes expired records; returns how many.
  absl::StatusOr<int64_t> PurgeExpired();

  // ListCustomerSessions: one page of a customer's live sessions, by session id
  // (SessionStore::ListCustomerSessions). InvalidArgument for a bad tenant, customer
  // id or `limit` (1..kMaxCustomerPage).
  absl::StatusOr<CustomerSessionPage> ListCustomerSessions(const CustomerKey& customer,
                                                           const std::string& cursor,
                                                           int limit) const;

  // EndCustomerSessions: logs the customer out everywhere, or everywhere but `keep`;
  // returns how many sessions ended (SessionStore::EndCustomerSessions).
  absl::StatusOr<int64_t> EndCustomerSessions(const CustomerKey& customer,
                                              const std::optional<std::string>& keep);

 private:
  // Now: the time of a write, whole milliseconds are kept by the stamp.
  absl::Time Now() const;
  const TenantDefaults& DefaultsFor(const std::string& tenant) const;
  // FillDefaults gives a session created by PUT with upsert the tenant's defaults for
  // the base fields its body does not name.
  void FillDefaults(SessionContext& session, const Json& body, const std::string& tenant) const;
  absl::StatusOr<SessionContext> ReadModifyWrite(
      const SessionKey& key, std::optional<int64_t> expected,
      const std::function<absl::StatusOr<SessionContext>(const SessionContext&)>& change);

  SessionStore* const store_;
  const ServiceOptions options_;
};

}  // namespace sessionctx

#endif  // SESSIONCTX_SESSION_SERVICE_H_
