// Reading the server's --config file (JSON) into library options.
//
//   {
//     "defaults": {"siteCode": "main", "currency": "EUR", "targetLocation": "DE", "language": "de"},
//     "tenants":  {"acme": {"currency": "CHF", "targetLocation": "CH"}},
//     "claims":   {"tenant": "tenant", "sessionId": "sessionId", "customerId": "customerId", "scope": "scope"},
//     "jwtLeewaySeconds": 0
//   }
#ifndef SESSIONCTX_APPS_SERVER_CONFIG_H_
#define SESSIONCTX_APPS_SERVER_CONFIG_H_

#include <string>

#include "absl/status/status.h"
#include "sessionctx/options.h"
#include "sessionctx/jwt.h"

namespace sessionctx::apps {

// ApplyConfig reads `text` into `service` (tenant defaults) and `jwt` (claim names,
// leeway). InvalidArgument names the bad member.
absl::Status ApplyConfig(const std::string& text, ServiceOptions& service, JwtOptions& jwt);

}  // namespace sessionctx::apps

#endif  // SESSIONCTX_APPS_SERVER_CONFIG_H_
