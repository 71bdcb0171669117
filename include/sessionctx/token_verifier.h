// Bearer tokens: TokenVerifier turns a token into a Principal. The HTTP handler needs
// only this interface (target sessionctx::http, no crypto library); the shipped JWT
// verifiers are in jwt.h (target sessionctx::jwt, OpenSSL). Bring your own by
// implementing Verify.
//
// Example:
//   class StaticTokens : public sessionctx::TokenVerifier {
//     absl::StatusOr<Principal> Verify(absl::string_view token) const override {
//       if (token != "s3cret") return absl::UnauthenticatedError("unknown token");
//       return Principal{.tenant = "acme", .session_id = "s1"};
//     }
//   };
#ifndef SESSIONCTX_TOKEN_VERIFIER_H_
#define SESSIONCTX_TOKEN_VERIFIER_H_

#include <memory>
#include <shared_mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sessionctx {

// Principal: who a verified token speaks for.
struct Principal {
  std::string tenant;                      // empty when the token names none
  std::string session_id;                  // empty for tokens without a session
  std::optional<std::string> customer_id;  // set for logged-in customers
  std::vector<std::string> scopes;
  // valid_until: the token's `exp` plus the leeway; from then on it is refused.
  absl::Time valid_until = absl::InfiniteFuture();

  bool HasScope(absl::string_view scope) const;
};

// TokenVerifier checks a bearer token. Thread-safe.
class TokenVerifier {
 public:
  virtual ~TokenVerifier() = default;
  // Verify returns the principal, or Unauthenticated with a message that says why
  // (never the token itself).
  virtual absl::StatusOr<Principal> Verify(absl::string_view token) const = 0;
};

// SwappableVerifier forwards to a verifier that can be replaced while tokens are being
// verified: key rotation without a restart. A Verify that started before Replace
// finishes with the old keys; every Verify that starts after it uses the new ones.
// Thread-safe.
//
// Example:
//   SwappableVerifier verifier(*NewJwksVerifier(ReadFile("keys.json"), options));
//   ...  // on SIGHUP:
//   if (auto next = NewJwksVerifier(ReadFile("keys.json"), options); next.ok()) {
//     verifier.Replace(*std::move(next));
//   }
class SwappableVerifier final : public TokenVerifier {
 public:
  // REQUIRES: `initial` is not null.
  explicit SwappableVerifier(std::shared_ptr<const TokenVerifier> initial);

  // Replace makes `next` (not null) the verifier of every later Verify.
  void Replace(std::shared_ptr<const TokenVerifier> next);

  absl::StatusOr<Principal> Verify(absl::string_view token) const override;

 private:
  // A lock, not std::atomic<std::shared_ptr>: libstdc++ 12's version of the latter
  // is invisible to ThreadSanitizer. Held only to copy or swap the pointer.
  mutable std::shared_mutex mu_;
  std::shared_ptr<const TokenVerifier> current_;  // guarded by mu_
};

}  // namespace sessionctx

#endif  // SESSIONCTX_TOKEN_VERIFIER_H_
