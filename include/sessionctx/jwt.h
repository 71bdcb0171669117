// The shipped TokenVerifier: JSON Web Tokens signed with HS256 (shared secret),
// RS256 or ES256 (PEM public key, or a JSON Web Key Set), over OpenSSL. Target
// sessionctx::jwt; the handler itself (sessionctx::http) does not need it.
//
// Example:
//   JwtOptions options;                       // claim names, leeway, clock
//   auto verifier = NewHs256Verifier(secret, options).value();
//   absl::StatusOr<Principal> who = verifier->Verify(token);  // Unauthenticated if bad
#ifndef SESSIONCTX_JWT_H_
#define SESSIONCTX_JWT_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sessionctx/clock.h"
#include "sessionctx/session_context.h"
#include "sessionctx/token_verifier.h"

namespace sessionctx {

// ClaimNames: which JWT claims carry the principal's parts.
struct ClaimNames {
  std::string tenant = "tenant";
  std::string session_id = "sessionId";
  std::string customer_id = "customerId";
  std::string scope = "scope";  // a space-separated string (an array is accepted too)
};

// JwtOptions tune a JWT verifier.
struct JwtOptions {
  ClaimNames claims;
  // Tolerance for clock skew on `exp` and `nbf`. Default 0: a token is expired from
  // the second its `exp` names.
  absl::Duration leeway = absl::ZeroDuration();
  const Clock* clock = Clock::Real();  // not owned
  // When set, a token's `iss` must equal it (else 401).
  std::optional<std::string> issuer;
  // When set, a token's `aud` (a string, or an array of strings) must name it.
  std::optional<std::string> audience;
  // Verified tokens remembered, by their SHA-256 digest, so that a token seen again
  // skips decoding and the signature check (tens of µs for RS256/ES256): at most this
  // many, each until its `exp` (plus leeway). Only tokens that verified are kept. The
  // cache belongs to one verifier: a verifier made from new keys starts empty, so a
  // removed key's tokens stop matching at once. 0 turns it off. Default 10000.
  size_t cache_entries = 10000;
};

enum class JwtAlgorithm { kHS256, kRS256, kES256 };

const char* JwtAlgorithmName(JwtAlgorithm alg);

// NewHs256Verifier: tokens signed with HMAC-SHA256 under `secret` (non-empty).
absl::StatusOr<std::unique_ptr<TokenVerifier>> NewHs256Verifier(std::string secret,
                                                                JwtOptions options);

// NewPublicKeyVerifier: tokens signed with the private half of `pem` (a PEM public
// key or certificate). An RSA key verifies RS256, a P-256 key ES256; any other alg
// in a token's header, `none` included, is refused.
absl::StatusOr<std::unique_ptr<TokenVerifier>> NewPublicKeyVerifier(const std::string& pem,
                                                                    JwtOptions options);

// NewJwksVerifier: tokens signed under any key of a JSON Web Key Set (RFC 7517), a
// JSON object `{"keys": [...]}`. RSA keys (n, e; 2048 bits or more) verify RS256,
// EC keys on P-256 (crv, x, y) ES256, "oct" keys (k) HS256. The token's header `kid`
// picks the key; a kid the set does not hold is refused (Unauthenticated), and so is
// a token without a kid when the set holds several keys. Keys whose `use` is not
// "sig", whose `alg` is another algorithm, or of another `kty` are skipped. Returns
// InvalidArgument naming the bad key when a usable key is malformed, two keys share a
// kid, or no usable key is left.
//
// Example:
//   {"keys": [{"kty": "EC", "crv": "P-256", "kid": "2026-11", "x": "...", "y": "..."},
//             {"kty": "RSA", "kid": "2026-05", "n": "...", "e": "AQAB"}]}
absl::StatusOr<std::unique_ptr<TokenVerifier>> NewJwksVerifier(const std::string& jwks,
                                                                JwtOptions options);

// SignJwt mints a compact JWT over `claims`. `key` is the shared secret for HS256,
// or a PEM private key for RS256/ES256; a non-empty `kid` goes into the header. For
// development tokens and tests.
absl::StatusOr<std::string> SignJwt(const Json& claims, JwtAlgorithm alg, const std::string& key,
                                    const std::string& kid = "");

}  // namespace sessionctx

#endif  // SESSIONCTX_JWT_H_
