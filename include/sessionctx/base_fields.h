// kBaseFields: the record's optional string fields in one table — JSON name, member,
// validator, which writes may set them, and the tenant default that fills them — so
// that JSON conversion, the write rules, tenant defaults and the stores' codecs all
// treat the same fields the same way.
//
// Example:
//   for (const BaseField& f : kBaseFields) {
//     if (session.*f.member) json[f.name] = *(session.*f.member);
//   }
#ifndef SESSIONCTX_BASE_FIELDS_H_
#define SESSIONCTX_BASE_FIELDS_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "sessionctx/options.h"
#include "sessionctx/session_context.h"

namespace sessionctx {

// BaseField describes one optional string field of SessionContext.
struct BaseField {
  const char* name;                                    // JSON member, e.g. "siteCode"
  std::optional<std::string> SessionContext::*member;
  absl::Status (*validate)(absl::string_view);
  bool patchable;    // PATCH (own session) may set or remove it
  bool replaceable;  // PUT (management) replaces it with the body's
  // The tenant default that fills it when a session is created; nullptr: none.
  std::optional<std::string> TenantDefaults::*tenant_default;
};

// The order is part of stored formats (RocksDB's base record, PostgreSQL's columns):
// append only.
inline constexpr BaseField kBaseFields[] = {
    {"customerId", &SessionContext::customer_id, ValidateCustomerId, false, false, nullptr},
    {"siteCode", &SessionContext::site_code, ValidateSiteCode, true, true,
     &TenantDefaults::site_code},
    {"currency", &SessionContext::currency, ValidateCurrency, true, true,
     &TenantDefaults::currency},
    {"cartId", &SessionContext::cart_id, ValidateCartId, false, true, nullptr},
    {"targetLocation", &SessionContext::target_location, ValidateTargetLocation, true, true,
     &TenantDefaults::target_location},
    {"language", &SessionContext::language, ValidateLanguage, true, true,
     &TenantDefaults::language},
};
inline constexpr int kBaseFieldCount = sizeof(kBaseFields) / sizeof(kBaseFields[0]);

}  // namespace sessionctx

#endif  // SESSIONCTX_BASE_FIELDS_H_
