// The fixture of the HTTP handler tests: a memory store and a SessionService on a
// manual clock, an HS256 verifier, and the handler, with helpers to mint tokens, call
// routes and check error bodies.
#ifndef SESSIONCTX_TESTS_HANDLER_FIXTURE_H_
#define SESSIONCTX_TESTS_HANDLER_FIXTURE_H_

#include <memory>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "sessionctx/http_handler.h"
#include "sessionctx/jwt.h"
#include "sessionctx/memory_store.h"
#include "sessionctx/session_service.h"
#include "tests/test_util.h"

namespace sessionctx::testing {

inline const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);
inline constexpr char kSecret[] = "handler-test-secret";
inline constexpr char kManage[] = "session_context.context_manage";

class HandlerTest : public ::testing::Test {
 protected:
  HandlerTest() : clock_(kNow) {
    StoreOptions so;
    so.clock = &clock_;
    store_ = NewMemoryStore(so);
    ServiceOptions opts;
    opts.clock = &clock_;
    service_ = std::make_unique<SessionService>(store_.get(), opts);
    JwtOptions jo;
    jo.clock = &clock_;
    verifier_ = *NewHs256Verifier(kSecret, jo);
    HandlerOptions ho;
    ho.max_body_bytes = 4096;
    handler_ = std::make_unique<HttpHandler>(service_.get(), verifier_.get(), ho);
  }

  std::string Token(Json claims) {
    if (!claims.contains("exp")) claims["exp"] = absl::ToUnixSeconds(kNow) + 600;
    return *SignJwt(claims, JwtAlgorithm::kHS256, kSecret);
  }
  std::string SessionToken(const std::string& session,
                           const std::string& tenant = "acme") {
    return Token({{"tenant", tenant}, {"sessionId", session}});
  }
  std::string CustomerToken(const std::string& session, const std::string& customer) {
    return Token({{"tenant", "acme"}, {"sessionId", session}, {"customerId", customer}});
  }
  std::string ManageToken(const std::string& tenant = "acme") {
    return Token({{"tenant", tenant}, {"scope", std::string("openid ") + kManage}});
  }

  HttpResponse Call(const std::string& method, const std::string& target,
                    const std::string& token, const std::string& body = "",
                    HttpHeaders extra = {}) {
    HttpRequest req{method, target, std::move(extra), body};
    if (!token.empty()) req.headers.emplace_back("Authorization", "Bearer " + token);
    if (!body.empty() && !req.HasHeader("Content-Type")) {
      req.headers.emplace_back("Content-Type", "application/json");
    }
    return handler_->Handle(req);
  }

  // Creates session `id` in tenant acme at version 1.
  void Seed(const std::string& id, std::optional<std::string> customer = std::nullopt) {
    SessionContext s;
    s.session_id = id;
    s.currency = "EUR";
    s.customer_id = customer;
    s.context = Json{{"a", 1}};
    ASSERT_OK(service_->Create("acme", s));
  }

  static Json Body(const HttpResponse& r) { return Json::parse(r.body, nullptr, false); }

  // Every error: the status, and a JSON body {"code": status, "message": …}.
  static void ExpectError(const HttpResponse& r, int status,
                          const std::string& fragment = "") {
    EXPECT_EQ(r.status, status) << r.body;
    Json b = Body(r);
    ASSERT_TRUE(b.is_object()) << r.body;
    EXPECT_EQ(b["code"], status);
    ASSERT_TRUE(b["message"].is_string());
    if (!fragment.empty()) {
      EXPECT_NE(b["message"].get<std::string>().find(fragment), std::string::npos)
          << r.body;
    }
  }

  ManualClock clock_;
  std::unique_ptr<SessionStore> store_;
  std::unique_ptr<SessionService> service_;
  std::unique_ptr<TokenVerifier> verifier_;
  std::unique_ptr<HttpHandler> handler_;
};

}  // namespace sessionctx::testing

#endif  // SESSIONCTX_TESTS_HANDLER_FIXTURE_H_
