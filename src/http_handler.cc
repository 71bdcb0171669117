// The HTTP API of docs/api.md. Order of checks for every request:
//   route (404) → method (405) → body size (413) → token (401) → tenant, scope,
//   session claim (403) → content type (415) → body (400) → the operation.
#include "sessionctx/http_handler.h"

#include <limits>
#include <optional>
#include <variant>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "sessionctx/backend_support.h"
#include "sessionctx/http_routes.h"
#include "sessionctx/write_rules.h"

namespace sessionctx {
namespace {

bool IsOwn(Route r) {
  return r == Route::kOwnContext || r == Route::kOwnAttributes || r == Route::kOwnAttribute;
}

// What ParseIfMatch returns for a weak tag (W/"3"): no session has this version.
constexpr int64_t kWeakTag = std::numeric_limits<int64_t>::max();

bool QueryFlag(absl::string_view query, absl::string_view name) {
  absl::StatusOr<std::optional<std::string>> v = QueryValue(query, name);
  return v.ok() && *v && absl::AsciiStrToLower(**v) == "true";
}

HttpResponse NoContent() {
  HttpResponse res;
  res.status = 204;
  return res;
}

HttpResponse Unauthorized(absl::string_view why) {
  HttpResponse res = ErrorResponse(401, why);
  res.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
  return res;
}

// FromStatus renders a library error; store failures say so without internals (the
// handler's Fail logs their detail).
HttpResponse FromStatus(const absl::Status& st, const std::string& session_id) {
  const int code = HttpStatusFor(st);
  if (code == 401) return Unauthorized(st.message());
  std::string message(st.message());
  if (code == 507) {
    message = "session store is out of space: writes are refused until space is freed (reads "
              "are served); retry later";
  } else if (code == 503) {
    message = "session store is unavailable; retry later";
  } else if (code == 500) {
    message = absl::IsDataLoss(st) ? "stored session could not be read"
                                   : "session store failure";
  }
  Json extra = Json::object();
  if (code == 404) extra["sessionId"] = session_id;
  if (code == 409) {
    if (std::optional<int64_t> v = CurrentVersionOf(st)) extra["currentVersion"] = *v;
  }
  return ErrorResponse(code, message, extra);
}

// ParseIfMatch reads `"3"` or `3`. `*` means "any version" (no check). A weak tag
// (`W/"3"`) never matches: If-Match compares strongly (RFC 9110), so it is a 409.
absl::StatusOr<std::optional<int64_t>> ParseIfMatch(const HttpRequest& req) {
  if (!req.HasHeader("If-Match")) return std::optional<int64_t>();
  absl::string_view v = absl::StripAsciiWhitespace(req.Header("If-Match"));
  if (v == "*") return std::optional<int64_t>();
  if (absl::StartsWith(v, "W/")) return std::optional<int64_t>(kWeakTag);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  int64_t version = 0;
  if (!absl::SimpleAtoi(v, &version) || version < 1) {
    return absl::InvalidArgumentError("If-Match must be a session version such as \"3\"");
  }
  return std::optional<int64_t>(version);
}

bool IsJsonContentType(absl::string_view ct) {
  absl::string_view media = ct.substr(0, ct.find(';'));
  return absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(media), "application/json");
}

// Authenticate turns the Authorization header into a principal, or a 401.
std::variant<Principal, HttpResponse> Authenticate(const TokenVerifier& verifier,
                                                   const HttpRequest& req) {
  absl::string_view auth = absl::StripAsciiWhitespace(req.Header("Authorization"));
  if (auth.empty()) return Unauthorized("missing bearer token (Authorization: Bearer …)");
  if (auth.size() < 7 || !absl::EqualsIgnoreCase(auth.substr(0, 7), "Bearer ")) {
    return Unauthorized("Authorization must use the Bearer scheme");
  }
  absl::StatusOr<Principal> who = verifier.Verify(absl::StripAsciiWhitespace(auth.substr(7)));
  if (!who.ok()) return Unauthorized(who.status().message());
  return *std::move(who);
}

// Authorize checks tenant, scope and session claim (403), and fixes the session an own
// call addresses: the token's (and the customer of /me/sessions: the token's).
std::optional<HttpResponse> Authorize(const Principal& who,
                                      const std::string& management_scope,
                                      RouteMatch& m) {
  if (who.tenant != m.tenant) {
    return ErrorResponse(403, "token is not valid for tenant " + m.tenant);
  }
  if (m.spec->route == Route::kOwnSessions) {
    if (!who.customer_id) {
      return ErrorResponse(403,
                           "an anonymous token has no customer sessions; log in first");
    }
    m.customer_id = *who.customer_id;
    m.session_id = who.session_id;  // the current session, if the token names one
    if (absl::Status st = ValidateCustomerId(m.customer_id); !st.ok()) {
      return ErrorResponse(403, "token carries an invalid customer id");
    }
    return std::nullopt;
  }
  if (m.spec->route == Route::kEvents) {
    if (!who.HasScope(management_scope)) {
      return ErrorResponse(403, "token lacks the scope " + management_scope);
    }
    return std::nullopt;
  }
  if (m.spec->route == Route::kCustomerContexts) {
    if (!who.HasScope(management_scope)) {
      return ErrorResponse(403, "token lacks the scope " + management_scope);
    }
    if (absl::Status st = ValidateCustomerId(m.customer_id); !st.ok()) {
      return ErrorResponse(400, st.message());
    }
    return std::nullopt;
  }
  const bool own = IsOwn(m.spec->route);
  if (own) {
    if (who.session_id.empty()) return ErrorResponse(403, "token carries no session id");
    m.session_id = who.session_id;
  } else if (!who.HasScope(management_scope)) {
    return ErrorResponse(403, "token lacks the scope " + management_scope);
  }
  if (absl::Status st = ValidateSessionId(m.session_id); !st.ok()) {
    return own ? ErrorResponse(403, "token carries an invalid session id")
               : ErrorResponse(400, st.message());
  }
  return std::nullopt;
}

// ReadBody: the JSON object a write carries (415 for another media type, 400 when it
// is not a JSON object within the depth limit).
std::variant<Json, HttpResponse> ReadBody(const HttpRequest& req, int max_depth) {
  if (!req.body.empty() && !IsJsonContentType(req.Header("Content-Type"))) {
    return ErrorResponse(415, "request body must be application/json");
  }
  absl::StatusOr<Json> parsed = ParseJsonBody(req.body, max_depth);
  if (!parsed.ok()) return ErrorResponse(400, parsed.status().message());
  if (!parsed->is_object()) return ErrorResponse(400, "request body must be a JSON object");
  return *std::move(parsed);
}

// RecordResponse: 200 with the record's stored text and its version as ETag. No
// DOM: the body is a copy of the bytes the store handed out.
HttpResponse RecordResponse(const SessionText& record) {
  HttpResponse res;
  res.headers.reserve(2);
  res.headers.emplace_back("Content-Type", "application/json");
  res.headers.emplace_back("ETag", absl::StrCat("\"", record.version(), "\""));
  res.body.assign(record.json().data(), record.json().size());
  return res;
}

// CheckSaasToken: a PUT that involves a customer (stored or new) needs that customer's
// own token in the saas-token header.
absl::Status CheckSaasToken(const TokenVerifier& verifier, const HttpRequest& req,
                            const std::string& tenant, const SessionContext* stored,
                            const SessionContext& next) {
  const bool stored_customer = stored != nullptr && stored->customer_id.has_value();
  if (!stored_customer && !next.customer_id) return absl::OkStatus();
  absl::string_view saas = absl::StripAsciiWhitespace(req.Header("saas-token"));
  absl::ConsumePrefix(&saas, "Bearer ");
  if (saas.empty()) {
    return absl::PermissionDeniedError(
        "a customer session needs a saas-token header with that customer's token");
  }
  absl::StatusOr<Principal> customer = verifier.Verify(saas);
  if (!customer.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("saas-token is not valid: ", customer.status().message()));
  }
  if (customer->tenant != tenant) {
    return absl::PermissionDeniedError("saas-token is for another tenant");
  }
  if ((stored_customer && customer->customer_id != stored->customer_id) ||
      (next.customer_id && customer->customer_id != next.customer_id)) {
    return absl::PermissionDeniedError(
        "saas-token customer does not match the session's customerId");
  }
  return absl::OkStatus();
}

}  // namespace

// Call: one authorised request on its way to a route.
struct HttpHandler::Call {
  const HttpRequest& req;
  const RouteMatch& match;
  const Principal& who;
  const SessionKey key;
  const absl::string_view query;
  Json body;                       // writes only
  std::optional<int64_t> if_match;
  bool try_only = false;           // answer only without a wait (TryHandle)
  const HttpHandler::Responder* later = nullptr;  // set: a read may answer later
  bool* started = nullptr;                        // set true when it does
  EventStreamStart* stream = nullptr;  // set: OpenEventStream (the stream's start)
  std::string trace_id;                // of the request's traceparent; "" when none
};

// Fail: the answer to a failed call; a store failure's detail goes to the log.
HttpResponse HttpHandler::Fail(const absl::Status& st, const std::string& session_id,
                               absl::string_view trace_id) const {
  const int code = HttpStatusFor(st);
  // 501: a store without a feed (or with it turned off) is not a failure.
  if (code >= 500 && code != 501 && options_.store_error_log)
    options_.store_error_log(st, trace_id);
  return FromStatus(st, session_id);
}

HttpResponse HttpHandler::Fail(const absl::Status& st, const Call& call) const {
  return Fail(st, call.key.session_id, call.trace_id);
}

// OwnGuard: what an own call may touch: an anonymous session, or its own customer's.
std::optional<CustomerGuard> HttpHandler::OwnGuard(const Call& call) {
  return CustomerGuard{call.who.customer_id};
}

HttpHandler::HttpHandler(SessionService* service, const TokenVerifier* verifier,
                         HandlerOptions options)
    : service_(service), verifier_(verifier), options_(std::move(options)) {}

// What HandleUnchecked answers in try-only mode when the answer needs a wait.
constexpr int kWouldWait = 0;

std::optional<HttpResponse> HttpHandler::TryHandle(const HttpRequest& request) const {
  bool started = false;  // stays false: with no responder, no read starts
  return TryHandleWith(request, nullptr, &started);
}

std::optional<HttpResponse> HttpHandler::TryHandle(const HttpRequest& request,
                                                   const Responder& respond,
                                                   bool* started) const {
  return TryHandleWith(request, &respond, started);
}

std::optional<HttpResponse> HttpHandler::TryHandleWith(const HttpRequest& request,
                                                       const Responder* respond,
                                                       bool* started) const {
  *started = false;
  if (request.method != "GET") return std::nullopt;
  try {
    HttpResponse res = HandleUnchecked(request, /*try_only=*/true, respond, started);
    if (res.status == kWouldWait) return std::nullopt;
    return res;
  } catch (...) {
    return std::nullopt;  // *started: the store answers; else Handle, on a thread that
                          // may block
  }
}

HttpResponse HttpHandler::Handle(const HttpRequest& request) const {
  try {
    return HandleUnchecked(request, /*try_only=*/false);
  } catch (const std::exception&) {
    return ErrorResponse(500, "internal error while serving the request");
  } catch (...) {
    return ErrorResponse(500, "internal error while serving the request");
  }
}

HttpResponse HttpHandler::HandleUnchecked(const HttpRequest& req, bool try_only,
                                          const Responder* later, bool* started,
                                          EventStreamStart* stream) const {
  const size_t qpos = req.target.find('?');
  const absl::string_view path = absl::string_view(req.target).substr(0, qpos);
  absl::StatusOr<std::optional<RouteMatch>> routed = MatchRoute(path);
  if (!routed.ok()) return ErrorResponse(400, routed.status().message());
  const RouteSpec* spec = *routed ? (*routed)->spec : nullptr;
  if (spec == nullptr || (spec->route != Route::kHealthz && spec->head)) {
    return ErrorResponse(404, "no such route");  // the server's own routes are not ours
  }
  if (!Allows(*spec, req.method)) return MethodNotAllowed(*spec, req.method);
  if (spec->route == Route::kHealthz) {
    HttpResponse res;
    res.headers.emplace_back("Content-Type", "application/json");
    res.body = R"({"status":"ok"})";
    return res;
  }
  RouteMatch& m = **routed;
  if (absl::Status st = ValidateTenant(m.tenant); !st.ok()) return ErrorResponse(400, st.message());
  const bool takes_body = req.method == "PATCH" || req.method == "PUT" || req.method == "POST";
  if (takes_body && req.body.size() > options_.max_body_bytes) {
    return ErrorResponse(413, absl::StrCat("request body is ", req.body.size(),
                                           " bytes, over the limit of ",
                                           options_.max_body_bytes));
  }
  std::variant<Principal, HttpResponse> who = Authenticate(*verifier_, req);
  if (auto* res = std::get_if<HttpResponse>(&who)) return std::move(*res);
  const Principal& principal = std::get<Principal>(who);
  if (std::optional<HttpResponse> denied = Authorize(principal, options_.management_scope, m)) {
    return *std::move(denied);
  }
  const absl::string_view query = qpos == std::string::npos
                                      ? absl::string_view()
                                      : absl::string_view(req.target).substr(qpos + 1);
  Call call{req, m, principal, SessionKey{m.tenant, m.session_id}, query};
  call.try_only = try_only;
  call.later = later;
  call.started = started;
  call.stream = stream;
  call.trace_id = TraceId(req.Header("traceparent"));
  if (takes_body) {
    std::variant<Json, HttpResponse> body =
        ReadBody(req, service_->options().limits.max_json_depth);
    if (auto* res = std::get_if<HttpResponse>(&body)) return std::move(*res);
    call.body = std::get<Json>(std::move(body));
  }
  return Dispatch(call);
}

// Dispatch: an authorised call, its If-Match read, to its route.
HttpResponse HttpHandler::Dispatch(Call& call) const {
  absl::StatusOr<std::optional<int64_t>> if_match = ParseIfMatch(call.req);
  if (!if_match.ok()) return ErrorResponse(400, if_match.status().message());
  call.if_match = *if_match;
  if (call.if_match == kWeakTag) {
    if (call.try_only) return HttpResponse{kWouldWait};  // reads the store
    return WeakTagConflict(call);
  }
  switch (call.match.spec->route) {
    case Route::kOwnContext:
    case Route::kOwnAttributes:
    case Route::kOwnAttribute:
      return ServeOwn(call);
    case Route::kContext:
      return ServeContext(call);
    case Route::kContextAttributes:
      return ServeSetAttribute(call);
    case Route::kContextAttribute:
      return ServeDeleteAttribute(call);
    case Route::kCustomerContexts:
    case Route::kOwnSessions:
      if (call.try_only) return HttpResponse{kWouldWait};  // reads the store
      return ServeCustomerSessions(call);
    case Route::kEvents:
      if (call.try_only) return HttpResponse{kWouldWait};  // reads the store
      return ServeEvents(call);
    default:
      return ErrorResponse(500, "unrouted request");
  }
}

// Own calls: a session that belongs to a customer is only that customer's. A read
// checks it on the record read; a write carries it into the store as a guard, checked
// in the same atomic step as the write (a login between a check and the write cannot
// slip through).
HttpResponse HttpHandler::ServeOwn(const Call& call) const {
  switch (call.match.spec->route) {
    case Route::kOwnContext:
      if (call.req.method == "GET") return GetSession(call, /*own=*/true);
      return ServePatch(call);
    case Route::kOwnAttributes:
      return ServeSetAttribute(call);
    default:
      return ServeDeleteAttribute(call);
  }
}

// GetSession: the session as stored; an own call only if anonymous or the token's
// customer's. In try-only mode, kWouldWait when the store would have to wait.
HttpResponse HttpHandler::GetSession(const Call& call, bool own) const {
  absl::StatusOr<std::shared_ptr<const SessionText>> current =
      call.try_only ? service_->TryGetText(call.key) : service_->GetText(call.key);
  if (call.try_only && IsWouldBlock(current.status())) {
    if (call.later != nullptr && StartGet(call, own)) *call.started = true;
    return HttpResponse{kWouldWait};
  }
  return SessionAnswer(current, call.key.session_id, call.trace_id,
                       own ? OwnGuard(call) : std::optional<CustomerGuard>());
}

// SessionAnswer: the answer to a read of `session_id`: the record, or why not (the
// guard of an own call refuses another customer's session).
HttpResponse HttpHandler::SessionAnswer(
    const absl::StatusOr<std::shared_ptr<const SessionText>>& current,
    const std::string& session_id, absl::string_view trace_id,
    const std::optional<CustomerGuard>& guard) const {
  if (!current.ok()) return Fail(current.status(), session_id, trace_id);
  if (!backend::GuardAllows(guard, (*current)->customer_id())) {
    return Fail(backend::GuardRefusedError(), session_id, trace_id);
  }
  return RecordResponse(**current);
}

// StartGet: the read of GetSession started on the store's asynchronous path, its
// answer built and handed to the call's responder when it arrives.
bool HttpHandler::StartGet(const Call& call, bool own) const {
  SessionStore::TextCallback done =
      [this, id = call.key.session_id, trace_id = call.trace_id,
       guard = own ? OwnGuard(call) : std::optional<CustomerGuard>(),
       respond =
           *call.later](absl::StatusOr<std::shared_ptr<const SessionText>> current) {
        HttpResponse res;
        try {
          res = SessionAnswer(current, id, trace_id, guard);
        } catch (...) {
          res = ErrorResponse(500, "internal error while serving the request");
        }
        respond(std::move(res));
      };
  return service_->GetTextAsync(call.key, done);
}

// WeakTagConflict: a write whose If-Match holds a weak tag never matches (RFC 9110
// compares strongly); the 409 names the current version, as for a stale one.
HttpResponse HttpHandler::WeakTagConflict(const Call& call) const {
  absl::StatusOr<SessionContext> current = service_->Get(call.key);
  if (!current.ok()) return Fail(current.status(), call);
  if (IsOwn(call.match.spec->route) &&
      !backend::GuardAllows(OwnGuard(call), current->customer_id)) {
    return Fail(backend::GuardRefusedError(), call);
  }
  return ErrorResponse(409,
                       absl::StrCat("If-Match holds a weak entity tag, which never matches; send "
                                    "the strong tag \"", current->version, "\""),
                       Json{{"currentVersion", current->version}});
}

HttpResponse HttpHandler::ServePatch(const Call& call) const {
  absl::StatusOr<int64_t> r = service_->Patch(call.key, call.body, call.if_match, OwnGuard(call));
  return r.ok() ? NoContent() : Fail(r.status(), call);
}

// GET, PUT (with the saas-token rule) and DELETE of /context/{sessionId}.
HttpResponse HttpHandler::ServeContext(const Call& call) const {
  if (call.req.method == "GET") return GetSession(call, /*own=*/false);
  if (call.req.method == "DELETE") {
    absl::Status st = service_->Delete(call.key, call.if_match);
    return st.ok() ? NoContent() : Fail(st, call);
  }
  PutOptions put;
  put.upsert = QueryFlag(call.query, "upsert");
  put.if_match = call.if_match;
  put.authorize = [&](const SessionContext* stored, const SessionContext& next) {
    return CheckSaasToken(*verifier_, call.req, call.key.tenant, stored, next);
  };
  absl::StatusOr<PutResult> r = service_->Put(call.key, call.body, put);
  return r.ok() ? NoContent() : Fail(r.status(), call);
}

// POST …/attributes: 201 with the key for own calls, 204 for management calls.
HttpResponse HttpHandler::ServeSetAttribute(const Call& call) const {
  absl::StatusOr<AttributeRequest> attr = ParseAttributeRequest(call.body);
  if (!attr.ok()) return ErrorResponse(400, attr.status().message());
  absl::StatusOr<int64_t> r = service_->SetAttribute(
      call.key, attr->key, attr->value,
      IsOwn(call.match.spec->route) ? OwnGuard(call) : std::optional<CustomerGuard>(),
      call.if_match);
  if (!r.ok()) return Fail(r.status(), call);
  if (!IsOwn(call.match.spec->route)) return NoContent();
  HttpResponse res;
  res.status = 201;
  res.headers.emplace_back("Content-Type", "application/json");
  res.body = Json(attr->key).dump(-1, ' ', false, Json::error_handler_t::replace);
  return res;
}

HttpResponse HttpHandler::ServeDeleteAttribute(const Call& call) const {
  absl::StatusOr<bool> r = service_->DeleteAttribute(
      call.key, call.match.attribute,
      IsOwn(call.match.spec->route) ? OwnGuard(call) : std::optional<CustomerGuard>(),
      call.if_match);
  return r.ok() ? NoContent() : Fail(r.status(), call);
}

// ServeCustomerSessions: GET lists one page of a customer's sessions, DELETE ends
// them (/me/sessions: the token's customer; ?except=current keeps the token's own
// session; management: ?except=<sessionId>). The cursor goes out base64url-encoded,
// so it needs no escaping in a URL.
namespace {

// What ServeEvents answers OpenEventStream when the stream may start.
constexpr int kStreamStarts = 1;

// The longest position a client may name (Last-Event-ID or ?after=).
constexpr size_t kMaxPositionBytes = 4096;

// EventText: one event as text/event-stream: its position as the `id`, its type as
// the `event`, its JSON as the `data`.
void AppendEvent(std::string& out, const SessionEvent& e) {
  absl::StrAppend(&out, "id: ", e.position, "\nevent: ", EventTypeName(e.type),
                  "\ndata: ", ToJson(e).dump(), "\n\n");
}

// EventPageText: a page's events, then (when the page passed over events of other
// tenants) an `id` alone, which moves the client's Last-Event-ID without an event.
std::string EventPageText(const EventPage& page) {
  std::string out;
  for (const SessionEvent& e : page.events) AppendEvent(out, e);
  if (!page.next.empty() &&
      (page.events.empty() || page.events.back().position != page.next)) {
    absl::StrAppend(&out, "id: ", page.next, "\n\n");
  }
  return out;
}

// EventErrorText: an error event (its data the JSON of an error answer), which ends
// the stream.
std::string EventErrorText(const HttpResponse& error) {
  return absl::StrCat("event: error\ndata: ", error.body, "\n\n");
}

}  // namespace

// The client's position: Last-Event-ID (an EventSource reconnecting), else ?after=,
// else none (the stream starts at the newest event). The store checks its form.
HttpResponse HttpHandler::ServeEvents(const Call& call) const {
  std::string after(call.req.Header("Last-Event-ID"));
  bool resumed = call.req.HasHeader("Last-Event-ID");
  absl::StatusOr<std::optional<std::string>> query_after =
      QueryValue(call.query, "after");
  if (!query_after.ok()) return ErrorResponse(400, query_after.status().message());
  if (!resumed && *query_after) {
    after = **query_after;
    resumed = true;
  }
  if (resumed && (after.empty() || after.size() > kMaxPositionBytes)) {
    return ErrorResponse(
        400, absl::StrCat("event position (Last-Event-ID or after) must be 1 to ",
                          kMaxPositionBytes, " characters"));
  }
  int limit = kDefaultEventPage;
  absl::StatusOr<std::optional<std::string>> limit_text = QueryValue(call.query, "limit");
  if (!limit_text.ok()) return ErrorResponse(400, limit_text.status().message());
  if (*limit_text &&
      (!absl::SimpleAtoi(**limit_text, &limit) || limit < 1 || limit > kMaxEventPage)) {
    return ErrorResponse(
        400, absl::StrCat("limit must be a number from 1 to ", kMaxEventPage));
  }
  // One page: the answer itself (Handle), or the check that the position is good
  // before a stream starts (OpenEventStream).
  absl::StatusOr<EventPage> page = service_->store()->ReadEvents(
      {.after = after, .limit = call.stream ? 1 : limit, .tenant = call.match.tenant});
  if (!page.ok()) return Fail(page.status(), "", call.trace_id);
  if (call.stream) {
    *call.stream = {call.match.tenant, resumed ? after : page->next, limit, resumed,
                    call.trace_id};
    return HttpResponse{kStreamStarts};
  }
  HttpResponse res;
  res.headers = {{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-store"}};
  res.body = absl::StrCat("retry: 1000\n\n", EventPageText(*page));
  return res;
}

std::variant<HttpResponse, EventStreamStart> HttpHandler::OpenEventStream(
    const HttpRequest& request) const {
  EventStreamStart start;
  try {
    HttpResponse res =
        HandleUnchecked(request, /*try_only=*/false, nullptr, nullptr, &start);
    if (res.status == kStreamStarts) return start;
    return res;
  } catch (...) {
    return ErrorResponse(500, "internal error while serving the request");
  }
}

EventChunk HttpHandler::ReadEventStream(const EventStreamStart& stream,
                                        const std::string& after) const {
  EventChunk chunk;
  absl::StatusOr<EventPage> page = service_->store()->ReadEvents(
      {.after = after, .limit = stream.limit, .tenant = stream.tenant});
  if (!page.ok()) {
    chunk.text = EventErrorText(Fail(page.status(), "", stream.trace_id));
    chunk.next = after;
    chunk.end = true;
    return chunk;
  }
  chunk.next = page->next;
  if (page->events.empty() && page->next == after) return chunk;
  chunk.text = EventPageText(*page);
  return chunk;
}

std::string HttpHandler::EventTail() const {
  absl::StatusOr<EventPage> page = service_->store()->ReadEvents({.after = ""});
  return page.ok() ? page->next : "";
}

HttpResponse HttpHandler::ServeCustomerSessions(const Call& call) const {
  const bool own = call.match.spec->route == Route::kOwnSessions;
  const CustomerKey customer{call.match.tenant, call.match.customer_id};
  if (call.req.method == "DELETE") {
    absl::StatusOr<std::optional<std::string>> except = QueryValue(call.query, "except");
    if (!except.ok()) return ErrorResponse(400, except.status().message());
    std::optional<std::string> keep = *except;
    if (own && keep) {
      if (*keep != "current") return ErrorResponse(400, "except must be current");
      if (call.who.session_id.empty()) {
        return ErrorResponse(403,
                             "except=current needs a token that carries a session id");
      }
      keep = call.who.session_id;
    }
    absl::StatusOr<int64_t> ended = service_->EndCustomerSessions(customer, keep);
    if (!ended.ok()) return Fail(ended.status(), "", call.trace_id);
    HttpResponse res;
    res.headers.emplace_back("Content-Type", "application/json");
    res.body = Json{{"ended", *ended}}.dump();
    return res;
  }
  absl::StatusOr<std::optional<std::string>> limit_text = QueryValue(call.query, "limit");
  absl::StatusOr<std::optional<std::string>> cursor_text =
      QueryValue(call.query, "cursor");
  if (!limit_text.ok()) return ErrorResponse(400, limit_text.status().message());
  if (!cursor_text.ok()) return ErrorResponse(400, cursor_text.status().message());
  int limit = kDefaultCustomerPage;
  if (*limit_text && (!absl::SimpleAtoi(**limit_text, &limit) || limit < 1 ||
                      limit > kMaxCustomerPage)) {
    return ErrorResponse(
        400, absl::StrCat("limit must be an integer from 1 to ", kMaxCustomerPage));
  }
  std::string cursor;
  if (*cursor_text &&
      (!absl::WebSafeBase64Unescape(**cursor_text, &cursor) || cursor.empty())) {
    return ErrorResponse(400, "cursor is not one a listing gave out (nextCursor)");
  }
  absl::StatusOr<CustomerSessionPage> page =
      service_->ListCustomerSessions(customer, cursor, limit);
  if (!page.ok()) return Fail(page.status(), "", call.trace_id);
  Json sessions = Json::array();
  for (const CustomerSession& s : page->sessions) {
    Json item = ToJson(s);
    if (own) item["current"] = s.session_id == call.who.session_id;
    sessions.push_back(std::move(item));
  }
  Json body = {{"sessions", std::move(sessions)}};
  if (!page->next_cursor.empty())
    body["nextCursor"] = absl::WebSafeBase64Escape(page->next_cursor);
  HttpResponse res;
  res.headers.emplace_back("Content-Type", "application/json");
  res.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return res;
}

}  // namespace sessionctx
