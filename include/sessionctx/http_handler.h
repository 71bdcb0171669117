// HttpHandler: the whole HTTP API of the Session Context Service (docs/api.md) as one
// framework-neutral function from request to response. An adapter for any HTTP
// framework copies method, target, headers and body in, and status, headers and body
// out (apps/http_server.cc does it for Boost.Beast in a few lines).
//
// Example:
//   HttpHandler handler(&service, verifier.get(), HandlerOptions{});
//   HttpResponse res = handler.Handle(HttpRequest{
//       "GET", "/session-context/acme/me/context", {{"Authorization", "Bearer …"}}, ""});
#ifndef SESSIONCTX_HTTP_HANDLER_H_
#define SESSIONCTX_HTTP_HANDLER_H_

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "sessionctx/http_status.h"
#include "sessionctx/session_service.h"
#include "sessionctx/token_verifier.h"

namespace sessionctx {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// HttpRequest: what the handler needs of a request. `target` is the raw request
// target: path and query, still percent-encoded.
struct HttpRequest {
  std::string method;
  std::string target;
  HttpHeaders headers;  // names compared case-insensitively
  std::string body;

  // Header returns the first value of header `name` (any case), or "" when absent.
  absl::string_view Header(absl::string_view name) const;
  bool HasHeader(absl::string_view name) const;
};

// HttpResponse: what the adapter sends back.
struct HttpResponse {
  int status = 200;
  HttpHeaders headers;
  std::string body;

  absl::string_view Header(absl::string_view name) const;
};

// TraceId: the trace id of a W3C Trace Context `traceparent` header value, e.g.
// "4bf92f3577b34da6a3ce929d0e0e4736" of
// "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; "" when the value is not
// a valid traceparent (wrong shape, upper-case hex, an all-zero id, version ff).
std::string TraceId(absl::string_view traceparent);

// The default limit on a request body (64 KiB): the handler's, and the server's while
// it reads a request.
inline constexpr size_t kDefaultMaxBodyBytes = 64 * 1024;

// HandlerOptions: per-handler settings.
struct HandlerOptions {
  // Largest request body accepted, in bytes; larger is 413.
  size_t max_body_bytes = kDefaultMaxBodyBytes;
  // The scope a token needs for the management routes.
  std::string management_scope = "session_context.context_manage";
  // Called with the whole status of every failure answered 500, 503 or 507, and the
  // trace id of the request's W3C `traceparent` header ("" when it brought none, see
  // TraceId). The answer itself says only that the store failed or is unavailable: a
  // store's own text (file paths, SQL) never reaches a client, it goes here, e.g. to
  // a server log. Unset: not reported. Must be thread-safe.
  std::function<void(const absl::Status& status, absl::string_view trace_id)> store_error_log;
};

// EventStreamStart: an authorised request for a tenant's event stream
// (HttpHandler::OpenEventStream).
struct EventStreamStart {
  std::string tenant;
  std::string after;              // the stream starts after this position
  int limit = kDefaultEventPage;  // events per chunk (the request's `limit`)
  bool resumed = false;  // the client named the position (Last-Event-ID or ?after=)
  std::string trace_id;  // of the opening request's traceparent ("" when none)
};

// EventChunk: the next piece of an event stream, as text/event-stream.
struct EventChunk {
  std::string text;  // events (and where to resume); empty when none followed
  std::string next;  // the position the stream goes on after
  bool end = false;  // `text` is an error event that ends the stream
};

class HttpHandler {
 public:
  // REQUIRES: `service` and `verifier` outlive the handler.
  HttpHandler(SessionService* service, const TokenVerifier* verifier, HandlerOptions options);

  // Handle serves one request. Thread-safe; never throws; every error response has a
  // JSON body {"code": status, "message": why}.
  HttpResponse Handle(const HttpRequest& request) const;

  // TryHandle answers `request` only if that needs no wait: a GET whose session the
  // store has at hand (SessionStore::TryGetText), or that is refused before the store
  // is asked. nullopt: nothing was done; call Handle on a thread that may block. For
  // event-loop servers, which serve cached reads on the loop's own thread.
  std::optional<HttpResponse> TryHandle(const HttpRequest& request) const;

  // Responder takes an answer given later (TryHandle with a responder).
  using Responder = std::function<void(HttpResponse)>;

  // TryHandle, and when the answer needs a wait on a store that reads asynchronously
  // (SessionStore::GetTextAsync: a network store), starts that read: `*started` is
  // then true, TryHandle returns nullopt, and `respond` runs once, later, on a thread
  // of the store's (it must not block: post the answer to the loop). nullopt with
  // `*started` false: nothing was done; call Handle on a thread that may block.
  std::optional<HttpResponse> TryHandle(const HttpRequest& request,
                                        const Responder& respond, bool* started) const;

  // The event stream (GET /session-context/{tenant}/events, docs/events.md). Handle
  // answers it with the events that follow the client's position now (one page,
  // then the answer ends and an EventSource reconnects with Last-Event-ID): every
  // adapter serves the feed. A server that holds streams open uses these instead:
  //
  // OpenEventStream checks the request as Handle would (route, token, scope, the
  // position): an answer to send when refused, else where the stream starts. May
  // block (reads the feed's newest position when the client named none).
  std::variant<HttpResponse, EventStreamStart> OpenEventStream(
      const HttpRequest& request) const;
  // ReadEventStream: the events of `stream.tenant` after `after`, at most
  // `stream.limit`, as the stream's text. A failure (a position out of retention,
  // the store unavailable) is an error event that ends the stream. Blocks on the
  // store.
  EventChunk ReadEventStream(const EventStreamStart& stream,
                             const std::string& after) const;
  // EventTail: the feed's newest position ("" when the store cannot say now). Blocks
  // on the store.
  std::string EventTail() const;

 private:
  struct Call;  // an authorised request on its way to a route (http_handler.cc)

  // TryHandle for both public forms (`respond` nullptr: no read may start).
  std::optional<HttpResponse> TryHandleWith(const HttpRequest& request,
                                            const Responder* respond,
                                            bool* started) const;
  static std::optional<CustomerGuard> OwnGuard(const Call& call);
  HttpResponse Fail(const absl::Status& status, const std::string& session_id,
                    absl::string_view trace_id) const;
  HttpResponse Fail(const absl::Status& status, const Call& call) const;
  HttpResponse HandleUnchecked(const HttpRequest& request, bool try_only,
                               const Responder* later = nullptr, bool* started = nullptr,
                               EventStreamStart* stream = nullptr) const;
  HttpResponse GetSession(const Call& call, bool own) const;
  HttpResponse SessionAnswer(
      const absl::StatusOr<std::shared_ptr<const SessionText>>& current,
      const std::string& session_id, absl::string_view trace_id,
      const std::optional<CustomerGuard>& guard) const;
  bool StartGet(const Call& call, bool own) const;
  HttpResponse Dispatch(Call& call) const;
  HttpResponse ServeOwn(const Call& call) const;
  HttpResponse ServePatch(const Call& call) const;
  HttpResponse WeakTagConflict(const Call& call) const;
  HttpResponse ServeContext(const Call& call) const;
  HttpResponse ServeSetAttribute(const Call& call) const;
  HttpResponse ServeDeleteAttribute(const Call& call) const;
  HttpResponse ServeCustomerSessions(const Call& call) const;
  HttpResponse ServeEvents(const Call& call) const;

  SessionService* const service_;
  const TokenVerifier* const verifier_;
  const HandlerOptions options_;
};

// ErrorResponse builds the JSON error response of docs/api.md, {"code", "message"} plus
// the members of `extra` (an object, e.g. {"sessionId": …}). For adapters that produce
// errors of their own too (e.g. a 413 raised by the framework before the handler runs).
HttpResponse ErrorResponse(int status, absl::string_view message,
                           const Json& extra = Json::object());

}  // namespace sessionctx

#endif  // SESSIONCTX_HTTP_HANDLER_H_
