// What the fuzz targets share: a fresh memory: store with known sessions behind a
// SessionService, an HS256 verifier and an HttpHandler, plus valid tokens the input
// can choose from (a fuzzer cannot forge a signature, but it should get past the
// token check to reach the routes). Fresh per input, so that every run replays.
#ifndef SESSIONCTX_FUZZ_FUZZ_ENV_H_
#define SESSIONCTX_FUZZ_FUZZ_ENV_H_

#include <cstdlib>
#include <memory>
#include <string>

#include "sessionctx/http_handler.h"
#include "sessionctx/memory_store.h"
#include "sessionctx/session_service.h"
#include "sessionctx/jwt.h"

namespace sessionctx::fuzz {

inline constexpr char kSecret[] = "fuzz-secret-fuzz-secret-fuzz-secret!";

// Tokens: 0 none, 1 shopper of acme/s1, 2 manager of acme, 3 customer c1 on acme/s2.
inline const std::string& Token(int which) {
  static const std::string* tokens = [] {
    const int64_t exp = absl::ToUnixSeconds(absl::Now()) + 10LL * 365 * 24 * 3600;
    auto sign = [&](Json claims) {
      claims["exp"] = exp;
      return *SignJwt(claims, JwtAlgorithm::kHS256, kSecret);
    };
    return new std::string[4]{
        "",
        sign({{"tenant", "acme"}, {"sessionId", "s1"}}),
        sign({{"tenant", "acme"}, {"scope", "session_context.context_manage"}}),
        sign({{"tenant", "acme"}, {"sessionId", "s2"}, {"customerId", "c1"}}),
    };
  }();
  return tokens[which & 3];
}

// Env: one input's world. Sessions: acme/s1 (anonymous, one attribute), acme/s2
// (customer c1), other/s1 (another tenant: must never change).
struct Env {
  Env() {
    // A small event ring: the default's 100,000 slots, made anew for every input, cost
    // more than the input itself (one input's events never fill 1,000).
    StoreOptions options;
    options.events.max_count = 1000;
    store = NewMemoryStore(options, 4);
    service = std::make_unique<SessionService>(store.get(), ServiceOptions{});
    verifier = *NewHs256Verifier(kSecret, JwtOptions{});
    handler = std::make_unique<HttpHandler>(service.get(), verifier.get(), HandlerOptions{});
    SessionContext s1{.session_id = "s1"};
    s1.context = {{"cart", {{"items", 2}}}};
    SessionContext s2{.session_id = "s2", .customer_id = "c1"};
    if (!service->Create("acme", s1).ok() || !service->Create("acme", s2).ok() ||
        !service->Create("other", SessionContext{.session_id = "s1"}).ok()) {
      std::abort();
    }
  }

  // CheckInvariants aborts when a response breaks what every answer promises, or
  // when another tenant's session changed.
  void CheckInvariants(const HttpResponse& res) const {
    if (res.status < 200 || res.status > 599) std::abort();
    if (res.status >= 400) {
      Json body = Json::parse(res.body, nullptr, /*allow_exceptions=*/false);
      if (!body.is_object() || body.value("code", 0) != res.status ||
          !body.contains("message") || !body["message"].is_string()) {
        std::abort();
      }
    }
    absl::StatusOr<SessionContext> other = store->Get({"other", "s1"});
    if (!other.ok() || other->version != 1 || !other->context.empty()) std::abort();
  }

  std::unique_ptr<SessionStore> store;
  std::unique_ptr<SessionService> service;
  std::unique_ptr<TokenVerifier> verifier;
  std::unique_ptr<HttpHandler> handler;
};

}  // namespace sessionctx::fuzz

#endif  // SESSIONCTX_FUZZ_FUZZ_ENV_H_
