// The write rules of the Session Context Service as pure functions: no store, no
// clock, no I/O. The service composes them; tests check them alone.
//
// Example (what PATCH does, minus the store):
//   absl::StatusOr<Json> body = ParseJsonBody(text, limits.max_json_depth);
//   absl::StatusOr<SessionContext> next = ApplyPatch(current, *body);
// (the stamp and the size limit, which a store applies in its atomic step, are in
// backend_support.h).
#ifndef SESSIONCTX_WRITE_RULES_H_
#define SESSIONCTX_WRITE_RULES_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sessionctx/options.h"
#include "sessionctx/session_context.h"

namespace sessionctx {

// ParseJsonBody parses a request body. InvalidArgument when the body is empty,
// malformed, not valid UTF-8, nested deeper than `max_depth` (the root is 1), or
// holds U+0000 in a string or member name (RejectNul).
absl::StatusOr<Json> ParseJsonBody(absl::string_view body, int max_depth);

// RejectNul: InvalidArgument when a string or member name anywhere in `value` holds
// U+0000 (NUL), naming where (`where` is the value's own name, e.g. "context").
// Some stores cannot keep a NUL, so the core refuses it before any store sees it.
absl::Status RejectNul(const Json& value, absl::string_view where);

// JsonDepthExceeds tells whether `value` nests deeper than `max_depth` (a scalar has
// depth 0, `{}` depth 1). Stops looking once the limit is passed.
bool JsonDepthExceeds(const Json& value, int max_depth);

// ReadVersion returns `metadata.version` of a write body: nullopt when absent,
// InvalidArgument when `metadata` is not an object or the version is not a positive
// integer.
absl::StatusOr<std::optional<int64_t>> ReadVersion(const Json& body);

// ExpectedVersion combines the body's version with an If-Match version: at least one
// is required (InvalidArgument otherwise), and when both are given they must agree
// (Aborted otherwise, as neither can then match the stored one).
absl::StatusOr<int64_t> ExpectedVersion(std::optional<int64_t> body_version,
                                        std::optional<int64_t> if_match);

// MergePatch applies an RFC 7386 JSON Merge Patch to `target` in place.
void MergePatch(Json& target, const Json& patch);

// ApplyPatch applies a PATCH body: only siteCode, currency, targetLocation, language
// and context are read; other members are ignored. A base field set to null is
// removed; `context` is merge-patched, `"context": null` empties it. Version and
// timestamps are left alone. InvalidArgument names the first bad field.
absl::StatusOr<SessionContext> ApplyPatch(const SessionContext& current, const Json& body);

// ApplyPut applies a PUT body: every base field (siteCode, currency, cartId,
// targetLocation, language) and `context` are replaced by the body's (absent or null
// means removed). `customerId` is taken from the body when given, else kept. The
// body's `sessionId`, when present, must equal `current.session_id`.
absl::StatusOr<SessionContext> ApplyPut(const SessionContext& current, const Json& body);

// An attribute write as sent to `POST …/attributes`.
struct AttributeRequest {
  std::string key;
  Json value;
};

// ParseAttributeRequest reads `{"key": string, "value": any JSON but null}`.
absl::StatusOr<AttributeRequest> ParseAttributeRequest(const Json& body);

// ValidateAttributeName: non-empty, at most 1024 bytes, valid UTF-8, no NUL.
absl::Status ValidateAttributeName(absl::string_view name);

// SetAttribute sets context[name] = value. Always a write (even with the same value):
// the caller asked for one and its version moves. REQUIRES: name valid, value not null.
void SetAttribute(SessionContext& session, const std::string& name, const Json& value);

// RemoveAttribute erases context[name]. Returns whether it was there.
bool RemoveAttribute(SessionContext& session, const std::string& name);

// AttachCustomer sets customerId on an anonymous session (login). Setting the same
// customer again is a no-op success; a different customer on a customer session is
// FailedPrecondition.
absl::Status AttachCustomer(SessionContext& session, const std::string& customer_id);

// NewSession builds a record for Create: the given fields win, `defaults` fill the
// rest, and an empty session_id is replaced by a fresh UUID v4. Validates every field.
absl::StatusOr<SessionContext> NewSession(SessionContext given, const TenantDefaults& defaults);

}  // namespace sessionctx

#endif  // SESSIONCTX_WRITE_RULES_H_
