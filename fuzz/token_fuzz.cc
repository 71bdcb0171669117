// Token verification on arbitrary bytes: as a bearer token (HS256 and ES256
// verifiers, and a JWKS verifier), and as a JSON Web Key Set. Nothing may crash; a
// refused token is Unauthenticated, a refused key set InvalidArgument.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "sessionctx/jwt.h"

namespace {

using namespace sessionctx;

// A P-256 public key (the verifier never needs the private half here).
constexpr char kEcPublicPem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAECpGsjx7Ef6I/9hdeaXFe3oZibZz1\n"
    "XGP53twGavnDhqpTD+nhkSo7pQZzzBkqrJLfoxL0AjVyteyud0GlCW5TZQ==\n"
    "-----END PUBLIC KEY-----\n";

constexpr char kJwks[] =
    R"({"keys":[{"kty":"oct","kid":"h1","k":"ZnV6ei1zZWNyZXQtZnV6ei1zZWNyZXQ"},)"
    R"({"kty":"EC","kid":"e1","crv":"P-256",)"
    R"("x":"CpGsjx7Ef6I_9hdeaXFe3oZibZz1XGP53twGavnDhqo","y":"Uw_p4ZEqO6UGc8wZKqyS36MS9AI1crXsrndBpQluU2U"}]})";

void CheckRefusal(const absl::StatusOr<Principal>& p) {
  if (!p.ok() && !absl::IsUnauthenticated(p.status())) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const TokenVerifier* hs = NewHs256Verifier("fuzz-secret", JwtOptions{})->release();
  static const TokenVerifier* es = [] {
    absl::StatusOr<std::unique_ptr<TokenVerifier>> v = NewPublicKeyVerifier(kEcPublicPem, {});
    if (!v.ok()) std::abort();
    return v->release();
  }();
  static const TokenVerifier* set = [] {
    absl::StatusOr<std::unique_ptr<TokenVerifier>> v = NewJwksVerifier(kJwks, {});
    if (!v.ok()) std::abort();
    return v->release();
  }();
  if (size < 1) return 0;
  const std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 4) {
    case 0: CheckRefusal(hs->Verify(input)); break;
    case 1: CheckRefusal(es->Verify(input)); break;
    case 2: CheckRefusal(set->Verify(input)); break;
    default: {
      absl::StatusOr<std::unique_ptr<TokenVerifier>> v = NewJwksVerifier(input, JwtOptions{});
      if (!v.ok() && !absl::IsInvalidArgument(v.status())) std::abort();
      if (v.ok()) CheckRefusal((*v)->Verify("e30.e30.AAAA"));
    }
  }
  return 0;
}
