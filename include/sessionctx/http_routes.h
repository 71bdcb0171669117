// The routes of the HTTP API in one table: each path template, the methods it allows
// (a 405 answer's Allow header) and its template as a metric label. The handler
// routes with it, the server answers its own routes (/readyz, /metrics, …) and labels
// its metrics with it, so a route added here is added everywhere.
//
// Example (an embedder's own metrics, labelled as the server labels them):
//   requests.Add({{"route", RouteLabel(path)}, {"method", method}}).Increment();
#ifndef SESSIONCTX_HTTP_ROUTES_H_
#define SESSIONCTX_HTTP_ROUTES_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sessionctx/http_handler.h"

namespace sessionctx {

enum class Route {
  kOwnContext,  // the shopper's own session (the token's)
  kOwnAttributes,
  kOwnAttribute,
  kContext,  // any session of the tenant (management scope)
  kContextAttributes,
  kContextAttribute,
  kCustomerContexts,  // a customer's sessions (management scope)
  kOwnSessions,       // the sessions of the token's customer
  kEvents,            // the tenant's event feed, as Server-Sent Events (management scope)
  kHealthz,           // liveness, answered by HttpHandler
  kReadyz,            // readiness, metrics and the API description: answered by the
  kMetrics,           // server in front of the handler (sessionctx-server)
  kOpenApi,
};

struct RouteSpec {
  Route route;
  const char* path;   // the template: `{name}` matches one non-empty segment
  const char* allow;  // the methods, as the Allow header lists them
  bool head;          // HEAD is answered as GET (the probes and documents)
};

inline constexpr RouteSpec kRoutes[] = {
    {Route::kOwnContext, "/session-context/{tenant}/me/context", "GET, PATCH", false},
    {Route::kOwnAttributes, "/session-context/{tenant}/me/context/attributes", "POST",
     false},
    {Route::kOwnAttribute,
     "/session-context/{tenant}/me/context/attributes/{attributeName}", "DELETE", false},
    {Route::kContext, "/session-context/{tenant}/context/{sessionId}", "GET, PUT, DELETE",
     false},
    {Route::kContextAttributes,
     "/session-context/{tenant}/context/{sessionId}/attributes", "POST", false},
    {Route::kContextAttribute,
     "/session-context/{tenant}/context/{sessionId}/attributes/{attributeName}", "DELETE",
     false},
    {Route::kCustomerContexts,
     "/session-context/{tenant}/customers/{customerId}/contexts", "GET, DELETE", false},
    {Route::kOwnSessions, "/session-context/{tenant}/me/sessions", "GET, DELETE", false},
    {Route::kEvents, "/session-context/{tenant}/events", "GET", false},
    {Route::kHealthz, "/healthz", "GET", true},
    {Route::kReadyz, "/readyz", "GET", true},
    {Route::kMetrics, "/metrics", "GET", true},
    {Route::kOpenApi, "/openapi.json", "GET", true},
};

// RouteMatch: a path matched against kRoutes, with the values of its `{…}` segments
// percent-decoded ('+' stays '+').
struct RouteMatch {
  const RouteSpec* spec = nullptr;
  std::string tenant;
  std::string session_id;  // {sessionId}
  std::string attribute;   // {attributeName}
  std::string customer_id;  // {customerId}
};

// MatchRoute: the route `path` (without the query) addresses; nullopt when none.
// InvalidArgument when a segment holds a malformed percent-escape.
absl::StatusOr<std::optional<RouteMatch>> MatchRoute(absl::string_view path);

// QueryValue: the value of parameter `name` in `query` (the target after '?'),
// form-decoded ('+' is a space, %XX a byte); nullopt when absent. InvalidArgument,
// naming the parameter, for a malformed percent-escape.
absl::StatusOr<std::optional<std::string>> QueryValue(absl::string_view query,
                                                      absl::string_view name);

// RouteOf: the spec of the route `path` addresses, or nullptr.
const RouteSpec* RouteOf(absl::string_view path);

// RouteLabel: the template of the route `path` addresses, else "unmatched" ("-" stays
// "-", for an answer sent before a request line was read): a label of bounded
// cardinality.
const char* RouteLabel(absl::string_view path);

// Allows: whether `spec` allows `method` (exact, upper case).
bool Allows(const RouteSpec& spec, absl::string_view method);

// MethodNotAllowed: the 405 answer to `method` on `spec`, with its Allow header.
HttpResponse MethodNotAllowed(const RouteSpec& spec, absl::string_view method);

}  // namespace sessionctx

#endif  // SESSIONCTX_HTTP_ROUTES_H_
