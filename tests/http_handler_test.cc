// The HTTP API of docs/api.md through the framework-neutral handler: every route and
// every row of the status table, bodies checked.
#include "sessionctx/http_handler.h"

#include <cstring>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sessionctx/backend_support.h"
#include "sessionctx/http_routes.h"
#include "sessionctx/jwt.h"
#include "sessionctx/memory_store.h"
#include "tests/handler_fixture.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

// A store that fails every call with a given status, for the 500/503 rows.
class FailingStore : public SessionStoreWrapper {
 public:
  FailingStore(SessionStore* target, absl::Status failure)
      : SessionStoreWrapper(target), failure_(std::move(failure)) {}
  absl::StatusOr<SessionContext> Get(const SessionKey&) override { return failure_; }
  absl::StatusOr<std::shared_ptr<const SessionText>> GetText(const SessionKey&) override {
    return failure_;
  }
  absl::Status CompareAndSet(const SessionKey&, int64_t, const SessionContext&) override {
    return failure_;
  }
  absl::Status Delete(const SessionKey&, std::optional<int64_t>) override { return failure_; }

 private:
  absl::Status failure_;
};

using testing::HandlerTest;
using testing::kManage;
using testing::kNow;
using testing::kSecret;

const char kOwn[] = "/session-context/acme/me/context";

// A store where the shopper logs in (customer c1 attached) just before every write
// reaches the store: the moment between any check the handler could make and the
// write itself.
class LoginBeforeWrite : public SessionStoreWrapper {
 public:
  using SessionStoreWrapper::SessionStoreWrapper;
  absl::StatusOr<AttributeResult> UpdateAttribute(const SessionKey& key,
                                                  const AttributeWrite& write) override {
    Login(key);
    return SessionStoreWrapper::UpdateAttribute(key, write);
  }
  absl::StatusOr<int64_t> Patch(const SessionKey& key, const PatchWrite& write) override {
    Login(key);
    return SessionStoreWrapper::Patch(key, write);
  }

 private:
  void Login(const SessionKey& key) {
    absl::StatusOr<SessionContext> s = target()->Get(key);
    if (!s.ok() || s->customer_id) return;
    SessionContext next = *s;
    next.customer_id = "c1";
    next.version = s->version + 1;
    next.expires_at = absl::InfiniteFuture();
    EXPECT_OK(target()->CompareAndSet(key, s->version, next));
  }
};

TEST(OwnRouteGuard, AnonymousTokenCannotWriteIntoASessionLoggedInMeanwhile) {
  ManualClock clock(kNow);
  StoreOptions so;
  so.clock = &clock;
  std::unique_ptr<SessionStore> memory = NewMemoryStore(so);
  LoginBeforeWrite store(memory.get());
  ServiceOptions opts;
  opts.clock = &clock;
  SessionService service(&store, opts);
  JwtOptions jo;
  jo.clock = &clock;
  std::unique_ptr<TokenVerifier> verifier = *NewHs256Verifier(kSecret, jo);
  HttpHandler handler(&service, verifier.get(), HandlerOptions{});
  const std::string anonymous =
      *SignJwt({{"tenant", "acme"}, {"sessionId", "s1"}, {"exp", absl::ToUnixSeconds(kNow) + 600}},
               JwtAlgorithm::kHS256, kSecret);
  auto call = [&](const std::string& method, const std::string& target, const std::string& body) {
    HttpRequest req{method, target, {{"Authorization", "Bearer " + anonymous}}, body};
    if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
    return handler.Handle(req);
  };
  for (const auto& [method, target, body] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"POST", std::string(kOwn) + "/attributes", R"({"key":"k","value":1})"},
           {"DELETE", std::string(kOwn) + "/attributes/a", ""},
           {"PATCH", kOwn, R"({"currency":"CHF","metadata":{"version":2}})"}}) {
    SCOPED_TRACE(method);
    SessionContext anon;
    anon.session_id = "s1";
    anon.context = Json{{"a", 1}};
    (void)memory->Delete({"acme", "s1"});     // from the round before, if any
    ASSERT_OK(service.Create("acme", anon));  // anonymous, version 1
    HttpResponse r = call(method, target, body);
    EXPECT_EQ(r.status, 403) << r.body;
    // The login went through (version 2); the anonymous write did not.
    absl::StatusOr<SessionContext> after = memory->Get({"acme", "s1"});
    ASSERT_OK(after);
    EXPECT_EQ(after->customer_id, "c1");
    EXPECT_EQ(after->version, 2);
    EXPECT_EQ(after->context, (Json{{"a", 1}}));
    EXPECT_FALSE(after->currency.has_value());
  }
}

// --- routes ----------------------------------------------------------------------

TEST_F(HandlerTest, GetOwnContextReturnsRecordWithEtag) {
  Seed("s1");
  HttpResponse r = Call("GET", kOwn, SessionToken("s1"));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("ETag"), "\"1\"");
  EXPECT_EQ(r.Header("content-type"), "application/json");
  Json b = Body(r);
  EXPECT_EQ(b["sessionId"], "s1");
  EXPECT_EQ(b["currency"], "EUR");
  EXPECT_EQ(b["context"], (Json{{"a", 1}}));
  EXPECT_EQ(b["metadata"]["version"], 1);
  EXPECT_EQ(b["metadata"]["createdAt"], "2027-01-15T08:00:00.000Z");
  EXPECT_FALSE(b.contains("customerId"));
}

TEST_F(HandlerTest, SessionTokenNeverReachesAnotherSession) {
  Seed("s1");
  Seed("s2");
  ASSERT_OK(service_->SetAttribute({"acme", "s2"}, "secret", "s2-only"));
  HttpResponse r = Call("GET", kOwn, SessionToken("s1"));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["sessionId"], "s1");
  EXPECT_FALSE(Body(r)["context"].contains("secret"));
  ExpectError(Call("GET", "/session-context/acme/context/s2", SessionToken("s1")), 403);
  ExpectError(Call("DELETE", "/session-context/acme/context/s2", SessionToken("s1")), 403);
}

TEST_F(HandlerTest, GetOwnContextMissingIs404WithSessionId) {
  HttpResponse r = Call("GET", kOwn, SessionToken("nope"));
  ExpectError(r, 404);
  EXPECT_EQ(Body(r)["sessionId"], "nope");
}

TEST_F(HandlerTest, PatchOwnContextAppliesAndReturns204) {
  Seed("s1");
  HttpResponse r = Call("PATCH", kOwn, SessionToken("s1"),
                        R"({"currency":"CHF","cartId":"ignored","context":{"b":2},"metadata":{"version":1}})");
  EXPECT_EQ(r.status, 204);
  EXPECT_TRUE(r.body.empty());
  SessionContext s = *service_->Get({"acme", "s1"});
  EXPECT_EQ(s.currency, "CHF");
  EXPECT_FALSE(s.cart_id.has_value());
  EXPECT_EQ(s.context, (Json{{"a", 1}, {"b", 2}}));
  EXPECT_EQ(s.version, 2);
}

TEST_F(HandlerTest, PatchWithStaleVersionIs409WithCurrentVersion) {
  Seed("s1");
  ASSERT_EQ(Call("PATCH", kOwn, SessionToken("s1"), R"({"metadata":{"version":1}})").status, 204);
  HttpResponse r = Call("PATCH", kOwn, SessionToken("s1"),
                        R"({"currency":"USD","metadata":{"version":1}})");
  ExpectError(r, 409, "current version is 2");
  EXPECT_EQ(Body(r)["currentVersion"], 2);
  EXPECT_EQ(service_->Get({"acme", "s1"})->currency, "EUR");
}

TEST_F(HandlerTest, IfMatchStandsInForBodyVersion) {
  Seed("s1");
  EXPECT_EQ(Call("PATCH", kOwn, SessionToken("s1"), R"({"currency":"CHF"})",
                 {{"If-Match", "\"1\""}})
                .status,
            204);
  ExpectError(Call("PATCH", kOwn, SessionToken("s1"), R"({"currency":"USD"})",
                   {{"If-Match", "\"1\""}}),
              409);
}

TEST_F(HandlerTest, WeakIfMatchNeverMatches) {
  Seed("s1");
  HttpResponse r = Call("PATCH", kOwn, SessionToken("s1"), R"({"currency":"CHF"})",
                        {{"If-Match", "W/\"1\""}});
  ExpectError(r, 409, "weak");
  EXPECT_EQ(Body(r)["currentVersion"], 1);
  r = Call("PUT", "/session-context/acme/context/s1", ManageToken(), R"({"currency":"CHF"})",
           {{"If-Match", "W/\"1\""}});
  ExpectError(r, 409, "weak");
  EXPECT_EQ(service_->Get({"acme", "s1"})->version, 1) << "nothing changed";
  EXPECT_EQ(service_->Get({"acme", "s1"})->currency, "EUR");
}

TEST_F(HandlerTest, IfMatchAndBodyVersionMustBothMatch) {
  Seed("s1");
  ExpectError(Call("PATCH", kOwn, SessionToken("s1"),
                   R"({"currency":"CHF","metadata":{"version":1}})", {{"If-Match", "\"2\""}}),
              409);
  EXPECT_EQ(service_->Get({"acme", "s1"})->version, 1);
  ExpectError(Call("PATCH", kOwn, SessionToken("s1"), R"({"currency":"CHF"})",
                   {{"If-Match", "banana"}}),
              400, "If-Match");
}

TEST_F(HandlerTest, PostOwnAttributeReturns201WithKey) {
  Seed("s1");
  HttpResponse r = Call("POST", "/session-context/acme/me/context/attributes", SessionToken("s1"),
                        R"({"key":"gift wrap","value":{"paper":"red"}})");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(Body(r), Json("gift wrap"));
  EXPECT_EQ(service_->Get({"acme", "s1"})->context["gift wrap"], (Json{{"paper", "red"}}));
}

TEST_F(HandlerTest, DeleteOwnAttributeDecodesName) {
  Seed("s1");
  ASSERT_OK(service_->SetAttribute({"acme", "s1"}, "gift wrap", true));
  HttpResponse r =
      Call("DELETE", "/session-context/acme/me/context/attributes/gift%20wrap", SessionToken("s1"));
  EXPECT_EQ(r.status, 204);
  EXPECT_FALSE(service_->Get({"acme", "s1"})->context.contains("gift wrap"));
  // Absent attribute: still 204, no version bump.
  const int64_t v = service_->Get({"acme", "s1"})->version;
  EXPECT_EQ(Call("DELETE", "/session-context/acme/me/context/attributes/none", SessionToken("s1"))
                .status,
            204);
  EXPECT_EQ(service_->Get({"acme", "s1"})->version, v);
}

TEST_F(HandlerTest, ManagementGetReturnsRecordWithEtag) {
  Seed("s1");
  HttpResponse r = Call("GET", "/session-context/acme/context/s1", ManageToken());
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("ETag"), "\"1\"");
  EXPECT_EQ(Body(r)["sessionId"], "s1");
}

TEST_F(HandlerTest, PutUpsertCreatesAndPutReplaces) {
  EXPECT_EQ(Call("PUT", "/session-context/acme/context/n1?upsert=true", ManageToken(),
                 R"({"currency":"EUR","cartId":"c1","context":{"x":1}})")
                .status,
            204);
  SessionContext s = *service_->Get({"acme", "n1"});
  EXPECT_EQ(s.version, 1);
  EXPECT_EQ(s.cart_id, "c1");
  EXPECT_EQ(Call("PUT", "/session-context/acme/context/n1", ManageToken(),
                 R"({"language":"de","metadata":{"version":1}})")
                .status,
            204);
  s = *service_->Get({"acme", "n1"});
  EXPECT_EQ(s.version, 2);
  EXPECT_FALSE(s.currency.has_value());
  EXPECT_FALSE(s.cart_id.has_value());
  EXPECT_EQ(s.language, "de");
  EXPECT_EQ(s.context, Json::object());
}

TEST_F(HandlerTest, PutMissingWithoutUpsertIs404) {
  ExpectError(Call("PUT", "/session-context/acme/context/n1", ManageToken(),
                   R"({"metadata":{"version":1}})"),
              404);
}

TEST_F(HandlerTest, PutBodySessionIdMustMatchPath) {
  ExpectError(Call("PUT", "/session-context/acme/context/n1?upsert=true", ManageToken(),
                   R"({"sessionId":"other"})"),
              400, "sessionId");
}

TEST_F(HandlerTest, PutCustomerSessionNeedsMatchingSaasToken) {
  Seed("s1", "cust-1");
  const std::string body = R"({"currency":"USD","metadata":{"version":1}})";
  ExpectError(Call("PUT", "/session-context/acme/context/s1", ManageToken(), body), 403,
              "saas-token");
  ExpectError(Call("PUT", "/session-context/acme/context/s1", ManageToken(), body,
                   {{"saas-token", CustomerToken("s1", "cust-2")}}),
              403);
  ExpectError(Call("PUT", "/session-context/acme/context/s1", ManageToken(), body,
                   {{"saas-token", "garbage"}}),
              403);
  EXPECT_EQ(service_->Get({"acme", "s1"})->currency, "EUR");
  EXPECT_EQ(Call("PUT", "/session-context/acme/context/s1", ManageToken(), body,
                 {{"saas-token", CustomerToken("s1", "cust-1")}})
                .status,
            204);
  SessionContext s = *service_->Get({"acme", "s1"});
  EXPECT_EQ(s.currency, "USD");
  EXPECT_EQ(s.customer_id, "cust-1");  // a body without customerId keeps it
}

TEST_F(HandlerTest, PutCannotHandSessionToAnotherCustomer) {
  Seed("s1", "cust-1");
  ExpectError(Call("PUT", "/session-context/acme/context/s1", ManageToken(),
                   R"({"customerId":"cust-2","metadata":{"version":1}})",
                   {{"saas-token", CustomerToken("s1", "cust-1")}}),
              403);
  ExpectError(Call("PUT", "/session-context/acme/context/s1", ManageToken(),
                   R"({"customerId":"cust-2","metadata":{"version":1}})",
                   {{"saas-token", CustomerToken("s1", "cust-2")}}),
              403);
  EXPECT_EQ(service_->Get({"acme", "s1"})->customer_id, "cust-1");
}

TEST_F(HandlerTest, PutSettingCustomerOnAnonymousSessionNeedsThatCustomersToken) {
  Seed("s1");
  ExpectError(Call("PUT", "/session-context/acme/context/s1", ManageToken(),
                   R"({"customerId":"cust-1","metadata":{"version":1}})"),
              403);
  EXPECT_EQ(Call("PUT", "/session-context/acme/context/s1", ManageToken(),
                 R"({"customerId":"cust-1","metadata":{"version":1}})",
                 {{"saas-token", CustomerToken("s1", "cust-1")}})
                .status,
            204);
}

TEST_F(HandlerTest, ManagementAttributeRoutesReturn204) {
  Seed("s1");
  EXPECT_EQ(Call("POST", "/session-context/acme/context/s1/attributes", ManageToken(),
                 R"({"key":"k","value":[1,2]})")
                .status,
            204);
  EXPECT_EQ(service_->Get({"acme", "s1"})->context["k"], Json::array({1, 2}));
  EXPECT_EQ(Call("DELETE", "/session-context/acme/context/s1/attributes/k", ManageToken()).status,
            204);
  EXPECT_FALSE(service_->Get({"acme", "s1"})->context.contains("k"));
}

TEST_F(HandlerTest, DeleteSessionThenItIsGone) {
  Seed("s1");
  EXPECT_EQ(Call("DELETE", "/session-context/acme/context/s1", ManageToken()).status, 204);
  ExpectError(Call("GET", "/session-context/acme/context/s1", ManageToken()), 404);
  ExpectError(Call("DELETE", "/session-context/acme/context/s1", ManageToken()), 404);
}

TEST_F(HandlerTest, PercentEncodedSessionIdInPath) {
  ASSERT_EQ(Call("PUT", "/session-context/acme/context/a%2Fb%20c?upsert=true", ManageToken(),
                 "{}")
                .status,
            204);
  EXPECT_OK(service_->Get({"acme", "a/b c"}));
}

TEST_F(HandlerTest, HealthzAnswers200) {
  EXPECT_EQ(Call("GET", "/healthz", "").status, 200);
}

// --- 400 -------------------------------------------------------------------------

TEST_F(HandlerTest, BadBodiesAre400NamingTheProblem) {
  Seed("s1");
  struct Case {
    std::string body;
    std::string fragment;
  };
  const Case kCases[] = {
      {"{\"currency\":", "malformed JSON"},
      {"{\"siteCode\":\"\xc3\x28\",\"metadata\":{\"version\":1}}", "malformed JSON"},
      {"[1,2]", "JSON object"},
      {"{\"currency\":5,\"metadata\":{\"version\":1}}", "currency"},
      {"{\"currency\":\"euro\",\"metadata\":{\"version\":1}}", "currency"},
      {"{\"targetLocation\":\"DEU\",\"metadata\":{\"version\":1}}", "targetLocation"},
      {"{\"language\":\"en_US\",\"metadata\":{\"version\":1}}", "language"},
      {"{\"context\":[1],\"metadata\":{\"version\":1}}", "context"},
      {"{\"currency\":\"EUR\"}", "metadata.version"},
      {"{\"metadata\":{\"version\":\"1\"}}", "metadata.version"},
      {"{\"context\":" + std::string(70, '[') + std::string(70, ']') + "}", "nesting"},
      // Found by the write_rules fuzzer: a number beyond a double was a 500.
      {"{\"context\":{\"n\":1e999},\"metadata\":{\"version\":1}}", "number overflow"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.body);
    ExpectError(Call("PATCH", kOwn, SessionToken("s1"), c.body), 400, c.fragment);
  }
  EXPECT_EQ(service_->Get({"acme", "s1"})->version, 1);
}

TEST_F(HandlerTest, EmptyWriteBodyIs400) {
  Seed("s1");
  ExpectError(Call("PATCH", kOwn, SessionToken("s1"), ""), 400, "empty");
  ExpectError(Call("PUT", "/session-context/acme/context/s1", ManageToken(), ""), 400, "empty");
}

TEST_F(HandlerTest, NestingAtTheLimitIsAccepted) {
  Seed("s1");
  // Root object (1) + context (2) + 62 arrays = 64 levels.
  std::string body = "{\"context\":{\"deep\":" + std::string(62, '[') + std::string(62, ']') +
                     "},\"metadata\":{\"version\":1}}";
  EXPECT_EQ(Call("PATCH", kOwn, SessionToken("s1"), body).status, 204);
}

TEST_F(HandlerTest, InvalidTenantIs400) {
  ExpectError(Call("GET", "/session-context/AC/me/context", SessionToken("s1", "AC")), 400,
              "tenant");
  ExpectError(Call("GET", "/session-context/averyveryverylongtenant/me/context",
                   SessionToken("s1")),
              400, "tenant");
}

TEST_F(HandlerTest, AttributeBodiesAreChecked) {
  Seed("s1");
  const std::string path = "/session-context/acme/me/context/attributes";
  ExpectError(Call("POST", path, SessionToken("s1"), R"({"value":1})"), 400, "key");
  ExpectError(Call("POST", path, SessionToken("s1"), R"({"key":"","value":1})"), 400, "key");
  ExpectError(Call("POST", path, SessionToken("s1"), R"({"key":"k"})"), 400, "value");
  ExpectError(Call("POST", path, SessionToken("s1"), R"({"key":"k","value":null})"), 400,
              "value");
  EXPECT_EQ(service_->Get({"acme", "s1"})->version, 1);
}

// --- 401 -------------------------------------------------------------------------

TEST_F(HandlerTest, BadTokensAre401WithChallenge) {
  Seed("s1");
  Json expired = {{"tenant", "acme"}, {"sessionId", "s1"}, {"exp", absl::ToUnixSeconds(kNow) - 5}};
  Json early = {{"tenant", "acme"}, {"sessionId", "s1"}, {"exp", absl::ToUnixSeconds(kNow) + 600},
                {"nbf", absl::ToUnixSeconds(kNow) + 300}};
  const std::string no_exp = *SignJwt({{"tenant", "acme"}, {"sessionId", "s1"}},
                                      JwtAlgorithm::kHS256, kSecret);
  const std::string other_key =
      *SignJwt({{"tenant", "acme"}, {"sessionId", "s1"}, {"exp", absl::ToUnixSeconds(kNow) + 60}},
               JwtAlgorithm::kHS256, "wrong");
  const std::string good = SessionToken("s1");
  const std::string none = "eyJhbGciOiJub25lIn0." + good.substr(good.find('.') + 1,
                                                                  good.rfind('.') - good.find('.'));
  for (const std::string& token :
       {std::string(), std::string("not-a-jwt"), Token(expired), Token(early), no_exp, other_key,
        none}) {
    SCOPED_TRACE(token);
    HttpResponse r = Call("GET", kOwn, token);
    ExpectError(r, 401);
    EXPECT_TRUE(absl::StartsWith(r.Header("WWW-Authenticate"), "Bearer"));
  }
  HttpResponse basic = handler_->Handle(
      HttpRequest{"GET", kOwn, {{"Authorization", "Basic dXNlcjpwYXNz"}}, ""});
  ExpectError(basic, 401);
  EXPECT_FALSE(basic.Header("WWW-Authenticate").empty());
}

// --- 403 -------------------------------------------------------------------------

TEST_F(HandlerTest, TokenForAnotherTenantIs403) {
  Seed("s1");
  ExpectError(Call("GET", kOwn, SessionToken("s1", "other")), 403, "tenant");
  ExpectError(Call("GET", "/session-context/acme/context/s1", ManageToken("other")), 403);
}

TEST_F(HandlerTest, ManagementWithoutScopeIs403) {
  Seed("s1");
  ExpectError(Call("GET", "/session-context/acme/context/s1",
                   Token({{"tenant", "acme"}, {"scope", "session_context.read"}})),
              403, "scope");
}

TEST_F(HandlerTest, OwnCallWithoutSessionClaimIs403) {
  ExpectError(Call("GET", kOwn, ManageToken()), 403, "session");
}

TEST_F(HandlerTest, AnonymousTokenCannotReadSessionAfterLogin) {
  Seed("s1");
  ASSERT_OK(service_->AttachCustomer({"acme", "s1"}, "cust-1"));
  ExpectError(Call("GET", kOwn, SessionToken("s1")), 403);
  ExpectError(Call("PATCH", kOwn, SessionToken("s1"), R"({"metadata":{"version":2}})"), 403);
  ExpectError(Call("GET", kOwn, CustomerToken("s1", "cust-2")), 403);
  EXPECT_EQ(Call("GET", kOwn, CustomerToken("s1", "cust-1")).status, 200);
}

// --- 404, 405 --------------------------------------------------------------------

TEST_F(HandlerTest, UnknownRouteIs404) {
  for (const char* path : {"/", "/session-context", "/session-context/acme/me",
                           "/session-context/acme/me/context/x", "/session-context/acme/other/x",
                           "/session-context/acme/context/s1/attributes/k/more"}) {
    SCOPED_TRACE(path);
    ExpectError(Call("GET", path, ManageToken()), 404);
  }
}

TEST_F(HandlerTest, WrongMethodIs405WithAllow) {
  HttpResponse r = Call("POST", kOwn, SessionToken("s1"), "{}");
  ExpectError(r, 405);
  EXPECT_EQ(r.Header("Allow"), "GET, PATCH");
  r = Call("PATCH", "/session-context/acme/context/s1", ManageToken(), "{}");
  ExpectError(r, 405);
  EXPECT_EQ(r.Header("Allow"), "GET, PUT, DELETE");
  EXPECT_EQ(Call("GET", "/session-context/acme/me/context/attributes", SessionToken("s1"))
                .Header("Allow"),
            "POST");
}

// Every route of the table, its template filled in, answers a method it does not
// list with 405 and that route's Allow; its label is its template; the server's own
// routes are not the handler's (404).
TEST_F(HandlerTest, EveryRouteOfTheTableAnswers405WithItsAllow) {
  for (const RouteSpec& spec : kRoutes) {
    std::string path = spec.path;
    for (auto [from, to] : {std::pair{"{tenant}", "acme"}, std::pair{"{sessionId}", "s1"},
                            std::pair{"{attributeName}", "k"}}) {
      if (size_t at = path.find(from); at != std::string::npos)
        path.replace(at, strlen(from), to);
    }
    SCOPED_TRACE(path);
    EXPECT_STREQ(RouteLabel(path), spec.path);
    const char* refused = Allows(spec, "PATCH") ? "TRACE" : "PATCH";
    HttpResponse r = Call(refused, path, ManageToken(), "{}");
    const bool server_route = spec.head && spec.route != Route::kHealthz;
    if (server_route) {
      ExpectError(r, 404);
      continue;
    }
    ExpectError(r, 405);
    EXPECT_EQ(r.Header("Allow"), spec.allow);
  }
  EXPECT_STREQ(RouteLabel("/session-context/acme/context/s1/more"), "unmatched");
  EXPECT_STREQ(RouteLabel("/session-context/acme/context/%zz"),
               "/session-context/{tenant}/context/{sessionId}");
  ExpectError(Call("GET", "/session-context/acme/context/%zz", ManageToken()), 400);
  // An escaped letter is the letter.
  Seed("s1");
  EXPECT_EQ(Call("GET", "/session-context/acme/%63ontext/s1", ManageToken()).status, 200);
}

// TryHandle: a GET the store has at hand is answered as Handle answers it; anything
// that may wait (a write, a weak If-Match that reads, a store that would block) is
// left to Handle, with nothing done.
TEST_F(HandlerTest, TryHandleAnswersOnlyWhatNeedsNoWait) {
  Seed("s1");
  auto request = [&](const std::string& method, const std::string& token, HttpHeaders extra = {},
                     const std::string& body = "") {
    HttpRequest req{method, kOwn, std::move(extra), body};
    req.headers.emplace_back("Authorization", "Bearer " + token);
    if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
    return req;
  };
  const HttpRequest get = request("GET", SessionToken("s1"));
  std::optional<HttpResponse> now = handler_->TryHandle(get);
  ASSERT_TRUE(now.has_value());
  const HttpResponse later = handler_->Handle(get);
  EXPECT_EQ(now->status, 200);
  EXPECT_EQ(now->body, later.body);
  EXPECT_EQ(now->Header("ETag"), later.Header("ETag"));
  // Refusals before the store are answered too.
  std::optional<HttpResponse> unauthorized = handler_->TryHandle(request("GET", "garbage"));
  ASSERT_TRUE(unauthorized.has_value());
  EXPECT_EQ(unauthorized->status, 401);
  EXPECT_FALSE(handler_->TryHandle(request("PATCH", SessionToken("s1"), {},
                                           R"({"currency":"CHF","metadata":{"version":1}})")));
  EXPECT_EQ(service_->Get({"acme", "s1"})->version, 1);  // the PATCH was not applied
  EXPECT_FALSE(handler_->TryHandle(request("GET", SessionToken("s1"), {{"If-Match", "W/\"1\""}})));

  // A store that never has a session at hand: every GET is left to Handle.
  class NeverAtHand : public SessionStoreWrapper {
   public:
    using SessionStoreWrapper::SessionStoreWrapper;
    absl::StatusOr<std::shared_ptr<const SessionText>> TryGetText(const SessionKey&) override {
      return backend::WouldBlockError();
    }
  } remote(store_.get());
  SessionService remote_service(&remote, ServiceOptions{});
  HttpHandler remote_handler(&remote_service, verifier_.get(), HandlerOptions{});
  EXPECT_FALSE(remote_handler.TryHandle(get).has_value());
  EXPECT_EQ(remote_handler.Handle(get).status, 200);
}

// --- 413, 415 --------------------------------------------------------------------

TEST_F(HandlerTest, BodyOverLimitIs413) {
  Seed("s1");
  std::string body = "{\"context\":{\"big\":\"" + std::string(5000, 'x') +
                     "\"},\"metadata\":{\"version\":1}}";
  ExpectError(Call("PATCH", kOwn, SessionToken("s1"), body), 413);
  EXPECT_EQ(service_->Get({"acme", "s1"})->version, 1);
}

TEST_F(HandlerTest, NonJsonContentTypeIs415) {
  Seed("s1");
  ExpectError(Call("PATCH", kOwn, SessionToken("s1"), R"({"metadata":{"version":1}})",
                   {{"Content-Type", "text/plain"}}),
              415);
  HttpRequest no_type{"PATCH", kOwn, {{"Authorization", "Bearer " + SessionToken("s1")}},
                      R"({"metadata":{"version":1}})"};
  ExpectError(handler_->Handle(no_type), 415);
  EXPECT_EQ(Call("PATCH", kOwn, SessionToken("s1"), R"({"metadata":{"version":1}})",
                 {{"Content-Type", "application/json; charset=utf-8"}})
                .status,
            204);
}

// --- 500, 503 --------------------------------------------------------------------

TEST_F(HandlerTest, StoreUnreachableIs503WithoutInternals) {
  FailingStore failing(store_.get(), absl::UnavailableError("connect to 10.0.0.5:5432 password=hunter2 failed"));
  SessionService service(&failing, ServiceOptions{});
  HttpHandler handler(&service, verifier_.get(), HandlerOptions{});
  HttpResponse r = handler.Handle(HttpRequest{
      "GET", "/session-context/acme/context/s1", {{"Authorization", "Bearer " + ManageToken()}}, ""});
  ExpectError(r, 503, "unavailable");
  EXPECT_EQ(r.body.find("hunter2"), std::string::npos);
  EXPECT_EQ(r.body.find("10.0.0.5"), std::string::npos);
}

TEST_F(HandlerTest, StoreFailureIs500WithoutInternals) {
  FailingStore failing(store_.get(), absl::InternalError("rocksdb: corruption in /var/x.sst"));
  SessionService service(&failing, ServiceOptions{});
  HttpHandler handler(&service, verifier_.get(), HandlerOptions{});
  HttpResponse r = handler.Handle(HttpRequest{
      "DELETE", "/session-context/acme/context/s1", {{"Authorization", "Bearer " + ManageToken()}}, ""});
  ExpectError(r, 500, "store");
  EXPECT_EQ(r.body.find("sst"), std::string::npos);
}

// The store's own text never reaches the client, but it reaches the log callback.
TEST_F(HandlerTest, StoreFailureDetailGoesToTheLogNotTheClient) {
  FailingStore failing(store_.get(), absl::UnavailableError("rocksdb write: IO error: No space left on device: /data/000123.log"));
  SessionService service(&failing, ServiceOptions{});
  HandlerOptions options;
  std::vector<std::string> logged;
  std::vector<std::string> traces;
  options.store_error_log = [&](const absl::Status& st, absl::string_view trace_id) {
    logged.emplace_back(st.message());
    traces.emplace_back(trace_id);
  };
  HttpHandler handler(&service, verifier_.get(), options);
  HttpResponse r = handler.Handle(HttpRequest{
      "DELETE", "/session-context/acme/context/s1",
      {{"Authorization", "Bearer " + ManageToken()},
       {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
      ""});
  ExpectError(r, 503);
  ASSERT_EQ(traces.size(), 1u);
  EXPECT_EQ(traces[0], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(r.body.find("000123"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("No space"), std::string::npos) << r.body;
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("/data/000123.log"), std::string::npos);
  // A caller's mistake is not a store failure: nothing logged.
  ExpectError(handler.Handle(HttpRequest{"PUT", "/session-context/acme/context/s1",
                                         {{"Authorization", "Bearer " + ManageToken()},
                                          {"Content-Type", "application/json"}},
                                         R"({"currency":"euro"})"}),
              400, "currency");
  EXPECT_EQ(logged.size(), 1u);
}

TEST(TraceId, IsTheSecondFieldOfAValidTraceparent) {
  EXPECT_EQ(TraceId("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
  // A later version may carry more fields after the flags.
  EXPECT_EQ(TraceId("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST(TraceId, IsEmptyForAnInvalidTraceparent) {
  for (const char* bad : {"", "00-4bf92f3577b34da6a3ce929d0e0e4736",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
                          "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
                          "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}) {
    EXPECT_EQ(TraceId(bad), "") << bad;
  }
}

// --- If-Match on every write ---------------------------------------------------------

// Each write route with a stale strong If-Match: 409 naming the current version, and
// the session unchanged; with the current one: the write happens.
TEST_F(HandlerTest, IfMatchMakesEveryWriteConditional) {
  struct Route {
    const char* method;
    std::string target;
    std::string body;
    bool own;
    int success;
  };
  const std::string mgmt = "/session-context/acme/context/s1";
  const std::vector<Route> routes = {
      {"POST", std::string(kOwn) + "/attributes", R"({"key":"k","value":1})", true, 201},
      {"DELETE", std::string(kOwn) + "/attributes/a", "", true, 204},
      {"POST", mgmt + "/attributes", R"({"key":"k","value":2})", false, 204},
      {"DELETE", mgmt + "/attributes/k", "", false, 204},
      {"PATCH", kOwn, R"({"currency":"CHF"})", true, 204},
      {"PUT", mgmt, R"({"currency":"USD"})", false, 204},
      {"DELETE", mgmt, "", false, 204},
  };
  Seed("s1");
  for (const Route& route : routes) {
    SCOPED_TRACE(absl::StrCat(route.method, " ", route.target));
    const std::string token = route.own ? SessionToken("s1") : ManageToken();
    absl::StatusOr<SessionContext> before = service_->Get({"acme", "s1"});
    ASSERT_OK(before);
    HttpResponse stale = Call(route.method, route.target, token, route.body,
                              {{"If-Match", absl::StrCat("\"", before->version - 1 + (before->version == 1 ? 5 : 0), "\"")}});
    ExpectError(stale, 409, absl::StrCat("the current version is ", before->version));
    EXPECT_EQ(Body(stale)["currentVersion"], before->version);
    absl::StatusOr<SessionContext> unchanged = service_->Get({"acme", "s1"});
    ASSERT_OK(unchanged);
    EXPECT_EQ(*unchanged, *before);
    HttpResponse ok = Call(route.method, route.target, token, route.body,
                           {{"If-Match", absl::StrCat("\"", before->version, "\"")}});
    EXPECT_EQ(ok.status, route.success) << ok.body;
  }
  EXPECT_EQ(Call("GET", mgmt, ManageToken()).status, 404);  // the conditional DELETE went through
}

// Without If-Match, attribute writes and DELETE stay unconditional; `*` is "any".
TEST_F(HandlerTest, WritesWithoutIfMatchOrWithStarAreUnconditional) {
  Seed("s1");
  EXPECT_EQ(Call("POST", std::string(kOwn) + "/attributes", SessionToken("s1"), R"({"key":"k","value":1})").status, 201);
  EXPECT_EQ(Call("DELETE", std::string(kOwn) + "/attributes/k", SessionToken("s1"), "", {{"If-Match", "*"}}).status, 204);
  EXPECT_EQ(Call("DELETE", "/session-context/acme/context/s1", ManageToken(), "", {{"If-Match", "*"}}).status, 204);
}

// A conditional delete of an attribute that is not there: at the current version it
// succeeds and changes nothing; at another version it is a conflict.
TEST_F(HandlerTest, ConditionalDeleteOfAnAbsentAttribute) {
  Seed("s1");
  const std::string target = std::string(kOwn) + "/attributes/nothere";
  ExpectError(Call("DELETE", target, SessionToken("s1"), "", {{"If-Match", "\"7\""}}), 409);
  EXPECT_EQ(Call("DELETE", target, SessionToken("s1"), "", {{"If-Match", "\"1\""}}).status, 204);
  EXPECT_EQ(service_->Get({"acme", "s1"})->version, 1);
}

// --- U+0000 ------------------------------------------------------------------------

TEST_F(HandlerTest, NulAnywhereInABodyOrPathIs400) {
  Seed("s1");
  const std::string mgmt = "/session-context/acme/context/s1";
  ExpectError(Call("PUT", mgmt, ManageToken(), R"({"cartId":"A\u0000B","metadata":{"version":1}})"), 400, "U+0000");
  ExpectError(Call("PATCH", kOwn, SessionToken("s1"), R"({"context":{"a":{"b":["x\u0000"]}},"metadata":{"version":1}})"), 400, "U+0000");
  ExpectError(Call("PATCH", kOwn, SessionToken("s1"), R"({"siteCode":"m\u0000","metadata":{"version":1}})"), 400, "U+0000");
  ExpectError(Call("POST", std::string(kOwn) + "/attributes", SessionToken("s1"), R"({"key":"a\u0000x","value":1})"), 400, "U+0000");
  ExpectError(Call("POST", mgmt + "/attributes", ManageToken(), R"({"key":"a","value":{"\u0000":1}})"), 400, "U+0000");
  ExpectError(Call("DELETE", mgmt + "/attributes/a%00x", ManageToken()), 400, "U+0000");
  ExpectError(Call("GET", "/session-context/acme/context/s%001", ManageToken()), 400);
  ExpectError(Call("PUT", "/session-context/acme/context/n1?upsert=true", ManageToken(), R"({"customerId":"c\u0000"})",
                   {{"saas-token", CustomerToken("n1", std::string("c\0", 2))}}),
              400, "U+0000");
  absl::StatusOr<SessionContext> s = service_->Get({"acme", "s1"});
  ASSERT_OK(s);
  EXPECT_EQ(s->version, 1);
  EXPECT_EQ(s->context, Json({{"a", 1}}));
  EXPECT_FALSE(s->cart_id.has_value());
}

TEST_F(HandlerTest, InvalidUtf8InPathIs400) {
  ExpectError(Call("PUT", "/session-context/acme/context/%ff%fe?upsert=true", ManageToken(), "{}"),
              400, "UTF-8");
  ExpectError(Call("DELETE", "/session-context/acme/context/s1/attributes/%c0%af", ManageToken()),
              400);
}

TEST_F(HandlerTest, GarbageRequestsNeverCrash) {
  for (const char* target : {"", "?", "%", "/session-context/%zz/me/context", "//", "/%00",
                             "/session-context/acme/context/%ff%fe"}) {
    HttpResponse r = Call("GET", target, ManageToken());
    EXPECT_GE(r.status, 400) << target;
    EXPECT_TRUE(Body(r).is_object()) << target;
  }
}

}  // namespace
}  // namespace sessionctx
