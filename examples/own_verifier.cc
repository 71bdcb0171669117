// The HTTP handler with a TokenVerifier of one's own (here: a fixed table of opaque
// tokens, as an API gateway in front might hand out), so that the program links
// sessionctx::http and sessionctx::memory only: no OpenSSL. It serves a few requests
// through HttpHandler::Handle directly, as any framework adapter would, and checks
// the answers.
//
//   own_verifier
#include <cstdio>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "sessionctx/http_handler.h"
#include "sessionctx/memory_store.h"
#include "sessionctx/session_service.h"
#include "sessionctx/token_verifier.h"

namespace {

// TableVerifier: opaque tokens mapped to who they speak for.
class TableVerifier final : public sessionctx::TokenVerifier {
 public:
  void Add(std::string token, sessionctx::Principal who) { table_[std::move(token)] = std::move(who); }
  absl::StatusOr<sessionctx::Principal> Verify(absl::string_view token) const override {
    auto it = table_.find(token);
    if (it == table_.end()) return absl::UnauthenticatedError("unknown token");
    return it->second;
  }

 private:
  absl::flat_hash_map<std::string, sessionctx::Principal> table_;
};

int Expect(const sessionctx::HttpResponse& res, int status, const char* what) {
  std::printf("%-44s %d %s\n", what, res.status, res.body.c_str());
  return res.status == status ? 0 : 1;
}

}  // namespace

int main() {
  auto store = sessionctx::NewMemoryStore(sessionctx::StoreOptions{});
  sessionctx::SessionService service(store.get(), sessionctx::ServiceOptions{});
  TableVerifier verifier;
  verifier.Add("shopper-token", sessionctx::Principal{.tenant = "acme", .session_id = "s1"});
  verifier.Add("backoffice-token",
               sessionctx::Principal{.tenant = "acme", .scopes = {"session_context.context_manage"}});
  const sessionctx::HttpHandler handler(&service, &verifier, sessionctx::HandlerOptions{});
  auto call = [&](const char* method, const char* target, const char* token, std::string body) {
    sessionctx::HttpRequest req{method, target, {{"Authorization", std::string("Bearer ") + token}}, std::move(body)};
    if (!req.body.empty()) req.headers.emplace_back("Content-Type", "application/json");
    return handler.Handle(req);
  };
  int failed = 0;
  failed += Expect(call("PUT", "/session-context/acme/context/s1?upsert=true", "backoffice-token",
                        R"({"currency":"EUR"})"),
                   204, "PUT (management token): create s1");
  failed += Expect(call("POST", "/session-context/acme/me/context/attributes", "shopper-token",
                        R"({"key":"giftWrap","value":true})"),
                   201, "POST attribute (shopper token)");
  failed += Expect(call("GET", "/session-context/acme/me/context", "shopper-token", ""), 200,
                   "GET own context");
  failed += Expect(call("GET", "/session-context/acme/me/context", "forged", ""), 401,
                   "GET with an unknown token");
  return failed == 0 ? 0 : 1;
}
