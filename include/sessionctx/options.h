// Options of the library, split by lifetime: StoreOptions live as long as a store,
// ServiceOptions as long as a SessionService. Plain structs with defaults in place.
//
// Example:
//   ServiceOptions options;
//   options.anonymous_ttl = absl::Minutes(30);
//   options.tenant_defaults["acme"].currency = "CHF";
#ifndef SESSIONCTX_OPTIONS_H_
#define SESSIONCTX_OPTIONS_H_

#include <cstddef>
#include <map>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "sessionctx/clock.h"
#include "sessionctx/session_events.h"

namespace sessionctx {

// StoreOptions apply to a whole store for its lifetime.
struct StoreOptions {
  // Source of "now" for expiry checks on reads and purges. Not owned; must outlive
  // the store. Default: the wall clock.
  const Clock* clock = Clock::Real();
  // The event feed: on, and its retention (session_events.h).
  EventOptions events;
};

// TenantDefaults fill the fields a Create call does not give.
struct TenantDefaults {
  std::optional<std::string> site_code;
  std::optional<std::string> currency;
  std::optional<std::string> target_location;
  std::optional<std::string> language;
};

// Limits on what one write may put into a record.
struct Limits {
  // Deepest JSON nesting accepted in a request body, counting the body's root
  // object as depth 1. Default 64.
  int max_json_depth = 64;
  // Largest record, measured as its JSON text, in bytes. Default 1 MiB.
  size_t max_record_bytes = 1 << 20;
};

// ServiceOptions apply to one SessionService.
struct ServiceOptions {
  // An anonymous session (no customerId) expires this long after its last write.
  // Default 1 hour. Customer sessions never expire.
  absl::Duration anonymous_ttl = absl::Hours(1);

  Limits limits;

  // Per-tenant defaults for Create, by tenant name; `fallback_defaults` serves
  // tenants not listed. Default: none (fields stay absent).
  std::map<std::string, TenantDefaults> tenant_defaults;
  TenantDefaults fallback_defaults;

  // Source of "now" for timestamps and expiry. Not owned. Default: the wall clock.
  const Clock* clock = Clock::Real();
};

}  // namespace sessionctx

#endif  // SESSIONCTX_OPTIONS_H_
