// The session context record: one per shopper session, per tenant.
//
// SessionContext is a plain value. ToJson / SessionContextFromJson convert it to and
// from the wire shape of the Session Context Service (docs/api.md): absent optional
// fields are omitted, `context` is always an object, timestamps are UTC ISO 8601
// with milliseconds.
//
// Example:
//   sessionctx::SessionContext s;
//   s.session_id = sessionctx::NewSessionId();
//   s.currency = "EUR";
//   std::string wire = sessionctx::ToJson(s).dump();
#ifndef SESSIONCTX_SESSION_CONTEXT_H_
#define SESSIONCTX_SESSION_CONTEXT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace sessionctx {

using Json = nlohmann::json;

// SessionKey identifies one record: sessions of different tenants never meet.
struct SessionKey {
  std::string tenant;
  std::string session_id;

  bool operator==(const SessionKey&) const = default;
};

// SessionContext is one stored record.
struct SessionContext {
  std::string session_id;
  std::optional<std::string> customer_id;  // set only for logged-in customers
  std::optional<std::string> site_code;
  std::optional<std::string> currency;         // ISO 4217 form, e.g. "EUR"
  std::optional<std::string> cart_id;
  std::optional<std::string> target_location;  // ISO 3166-1 alpha-2 form, e.g. "DE"
  std::optional<std::string> language;         // BCP 47 form, e.g. "de-CH"
  Json context = Json::object();               // custom attributes; always an object

  int64_t version = 0;  // 1 at creation, +1 on every successful write
  absl::Time created_at = absl::UnixEpoch();
  absl::Time modified_at = absl::UnixEpoch();

  // expires_at is not part of the wire shape: an anonymous session expires a
  // configured time after its last write; InfiniteFuture() means never (customer).
  absl::Time expires_at = absl::InfiniteFuture();

  bool IsExpiredAt(absl::Time now) const { return expires_at <= now; }
  bool operator==(const SessionContext&) const = default;
};

// ToJson returns the wire shape of docs/api.md (no tenant, no expiry).
Json ToJson(const SessionContext& session);

// SessionContextFromJson reads the wire shape back, strictly: every field must have
// its type and a valid value, `metadata` must be complete. Used for stored records and
// imports; request bodies go through the write rules instead. Returns
// InvalidArgument naming the first bad field. `expires_at` is left at never.
absl::StatusOr<SessionContext> SessionContextFromJson(const Json& json);

// FormatTimestamp renders `t` as "2026-02-04T17:06:50.134Z" (UTC, milliseconds).
std::string FormatTimestamp(absl::Time t);

// ParseTimestamp reads what FormatTimestamp writes (and any RFC 3339 time).
absl::StatusOr<absl::Time> ParseTimestamp(absl::string_view text);

// NewSessionId returns a random UUID v4 in lower-case canonical form. Thread-safe.
std::string NewSessionId();

// IsValidUtf8: whether `text` is well-formed UTF-8 (no overlong forms, no surrogates).
bool IsValidUtf8(absl::string_view text);

// Validation of single values. Each returns OK or InvalidArgument whose message
// names the field and says what was expected. No string of a record may hold U+0000
// (NUL): some stores cannot keep it, so every backend refuses it alike.
absl::Status ValidateNoNul(absl::string_view text, absl::string_view what);
absl::Status ValidateTenant(absl::string_view tenant);          // ^[a-z][a-z0-9]+$, 3-16
absl::Status ValidateSessionId(absl::string_view session_id);   // 1-256 chars, UTF-8, no controls
absl::Status ValidateCustomerId(absl::string_view customer_id); // 1-256 chars, no NUL
absl::Status ValidateSiteCode(absl::string_view site_code);     // non-empty, <= 256, no NUL
absl::Status ValidateCurrency(absl::string_view currency);      // [A-Z]{3}
absl::Status ValidateTargetLocation(absl::string_view country); // [A-Z]{2}
absl::Status ValidateLanguage(absl::string_view language);      // BCP 47 form
absl::Status ValidateCartId(absl::string_view cart_id);         // <= 256 chars, no NUL

}  // namespace sessionctx

#endif  // SESSIONCTX_SESSION_CONTEXT_H_
