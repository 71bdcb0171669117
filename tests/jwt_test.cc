// JWT verification (docs/api.md, Tokens): HS256, RS256, ES256 and every way a token is refused.
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "sessionctx/token_verifier.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

struct KeyPair {
  std::string private_pem;
  std::string public_pem;
};

KeyPair MakeKey(bool rsa) {
  EVP_PKEY* key = rsa ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})
                      : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  BIO* priv = BIO_new(BIO_s_mem());
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr);
  PEM_write_bio_PUBKEY(pub, key);
  auto read = [](BIO* b) {
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    return std::string(data, n);
  };
  KeyPair kp{read(priv), read(pub)};
  BIO_free(priv);
  BIO_free(pub);
  EVP_PKEY_free(key);
  return kp;
}

const KeyPair& Rsa() {
  static const KeyPair* k = new KeyPair(MakeKey(true));
  return *k;
}
const KeyPair& Ec() {
  static const KeyPair* k = new KeyPair(MakeKey(false));
  return *k;
}

Json Claims() {
  return Json{{"tenant", "acme"},
              {"sessionId", "s1"},
              {"customerId", "c1"},
              {"scope", "a b session_context.context_manage"},
              {"exp", absl::ToUnixSeconds(kNow) + 600}};
}

class JwtTest : public ::testing::Test {
 protected:
  JwtTest() : clock_(kNow) { options_.clock = &clock_; }
  std::unique_ptr<TokenVerifier> Hs(const std::string& secret = "s3cret") {
    return *NewHs256Verifier(secret, options_);
  }
  ManualClock clock_;
  JwtOptions options_;
};

TEST_F(JwtTest, ValidHs256YieldsPrincipal) {
  absl::StatusOr<Principal> p = Hs()->Verify(*SignJwt(Claims(), JwtAlgorithm::kHS256, "s3cret"));
  ASSERT_OK(p);
  EXPECT_EQ(p->tenant, "acme");
  EXPECT_EQ(p->session_id, "s1");
  EXPECT_EQ(p->customer_id, "c1");
  EXPECT_TRUE(p->HasScope("session_context.context_manage"));
  EXPECT_FALSE(p->HasScope("session_context"));
}

TEST_F(JwtTest, IssuerIsCheckedWhenConfigured) {
  options_.issuer = "https://auth.example";
  Json claims = Claims();
  EXPECT_STATUS(Hs()->Verify(*SignJwt(claims, JwtAlgorithm::kHS256, "s3cret")), kUnauthenticated);
  claims["iss"] = "https://evil.example";
  EXPECT_STATUS(Hs()->Verify(*SignJwt(claims, JwtAlgorithm::kHS256, "s3cret")), kUnauthenticated);
  claims["iss"] = "https://auth.example";
  EXPECT_OK(Hs()->Verify(*SignJwt(claims, JwtAlgorithm::kHS256, "s3cret")));
}

TEST_F(JwtTest, AudienceIsCheckedWhenConfigured) {
  options_.audience = "sessionctx";
  Json claims = Claims();
  EXPECT_STATUS(Hs()->Verify(*SignJwt(claims, JwtAlgorithm::kHS256, "s3cret")), kUnauthenticated);
  claims["aud"] = "billing";
  EXPECT_STATUS(Hs()->Verify(*SignJwt(claims, JwtAlgorithm::kHS256, "s3cret")), kUnauthenticated);
  claims["aud"] = "sessionctx";
  EXPECT_OK(Hs()->Verify(*SignJwt(claims, JwtAlgorithm::kHS256, "s3cret")));
  claims["aud"] = Json::array({"billing", "sessionctx"});
  EXPECT_OK(Hs()->Verify(*SignJwt(claims, JwtAlgorithm::kHS256, "s3cret")));
}

TEST_F(JwtTest, IssuerAndAudienceAreIgnoredWhenNotConfigured) {
  Json claims = Claims();
  claims["iss"] = "anyone";
  claims["aud"] = "anything";
  EXPECT_OK(Hs()->Verify(*SignJwt(claims, JwtAlgorithm::kHS256, "s3cret")));
}

TEST_F(JwtTest, ValidRs256) {
  auto v = NewPublicKeyVerifier(Rsa().public_pem, options_);
  ASSERT_OK(v);
  ASSERT_OK((*v)->Verify(*SignJwt(Claims(), JwtAlgorithm::kRS256, Rsa().private_pem)));
}

TEST_F(JwtTest, ValidEs256) {
  auto v = NewPublicKeyVerifier(Ec().public_pem, options_);
  ASSERT_OK(v);
  absl::StatusOr<std::string> token = SignJwt(Claims(), JwtAlgorithm::kES256, Ec().private_pem);
  ASSERT_OK(token);
  ASSERT_OK((*v)->Verify(*token));
}

TEST_F(JwtTest, AlgNoneIsRefused) {
  // {"alg":"none"} . claims . (empty signature)
  std::string token = *SignJwt(Claims(), JwtAlgorithm::kHS256, "s3cret");
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  const std::string none_header = "eyJhbGciOiJub25lIn0";  // {"alg":"none"}
  absl::StatusOr<Principal> p = Hs()->Verify(absl::StrCat(none_header, ".", parts[1], "."));
  EXPECT_STATUS(p, kUnauthenticated);
  EXPECT_STATUS(Hs()->Verify(absl::StrCat(none_header, ".", parts[1], ".", parts[2])),
                kUnauthenticated);
}

TEST_F(JwtTest, WrongSecretIsRefused) {
  absl::StatusOr<Principal> p = Hs()->Verify(*SignJwt(Claims(), JwtAlgorithm::kHS256, "other"));
  EXPECT_STATUS(p, kUnauthenticated);
  EXPECT_NE(p.status().message().find("signature"), std::string::npos);
}

TEST_F(JwtTest, WrongRsaKeyIsRefused) {
  KeyPair other = MakeKey(true);
  auto v = NewPublicKeyVerifier(Rsa().public_pem, options_);
  EXPECT_STATUS((*v)->Verify(*SignJwt(Claims(), JwtAlgorithm::kRS256, other.private_pem)),
                kUnauthenticated);
}

TEST_F(JwtTest, AlgorithmConfusionIsRefused) {
  // HS256 signed with the RSA public key's PEM as the "secret".
  auto v = NewPublicKeyVerifier(Rsa().public_pem, options_);
  absl::StatusOr<Principal> p =
      (*v)->Verify(*SignJwt(Claims(), JwtAlgorithm::kHS256, Rsa().public_pem));
  EXPECT_STATUS(p, kUnauthenticated);
  // An ES256 token against an RSA key, and RS256 against an HS256 verifier.
  EXPECT_STATUS((*v)->Verify(*SignJwt(Claims(), JwtAlgorithm::kES256, Ec().private_pem)),
                kUnauthenticated);
  EXPECT_STATUS(Hs()->Verify(*SignJwt(Claims(), JwtAlgorithm::kRS256, Rsa().private_pem)),
                kUnauthenticated);
}

TEST_F(JwtTest, ExpiredIsRefused) {
  Json c = Claims();
  c["exp"] = absl::ToUnixSeconds(kNow) - 1;
  absl::StatusOr<Principal> p = Hs()->Verify(*SignJwt(c, JwtAlgorithm::kHS256, "s3cret"));
  EXPECT_STATUS(p, kUnauthenticated);
  EXPECT_NE(p.status().message().find("expired"), std::string::npos);
  c["exp"] = absl::ToUnixSeconds(kNow);  // exp is the first invalid second
  EXPECT_STATUS(Hs()->Verify(*SignJwt(c, JwtAlgorithm::kHS256, "s3cret")), kUnauthenticated);
}

TEST_F(JwtTest, LeewayToleratesSmallSkew) {
  options_.leeway = absl::Seconds(30);
  Json c = Claims();
  c["exp"] = absl::ToUnixSeconds(kNow) - 10;
  c["nbf"] = absl::ToUnixSeconds(kNow) + 10;
  EXPECT_OK(Hs()->Verify(*SignJwt(c, JwtAlgorithm::kHS256, "s3cret")));
  c["exp"] = absl::ToUnixSeconds(kNow) - 31;
  EXPECT_STATUS(Hs()->Verify(*SignJwt(c, JwtAlgorithm::kHS256, "s3cret")), kUnauthenticated);
}

TEST_F(JwtTest, MissingExpIsRefused) {
  Json c = Claims();
  c.erase("exp");
  EXPECT_STATUS(Hs()->Verify(*SignJwt(c, JwtAlgorithm::kHS256, "s3cret")), kUnauthenticated);
  c["exp"] = "tomorrow";
  EXPECT_STATUS(Hs()->Verify(*SignJwt(c, JwtAlgorithm::kHS256, "s3cret")), kUnauthenticated);
}

TEST_F(JwtTest, NotYetValidIsRefused) {
  Json c = Claims();
  c["nbf"] = absl::ToUnixSeconds(kNow) + 60;
  absl::StatusOr<Principal> p = Hs()->Verify(*SignJwt(c, JwtAlgorithm::kHS256, "s3cret"));
  EXPECT_STATUS(p, kUnauthenticated);
  EXPECT_NE(p.status().message().find("not yet valid"), std::string::npos);
}

TEST_F(JwtTest, MalformedTokensAreRefused) {
  const std::string good = *SignJwt(Claims(), JwtAlgorithm::kHS256, "s3cret");
  for (const std::string& bad :
       {std::string(""), std::string("abc"), std::string("a.b"), std::string("a.b.c.d"),
        std::string("!!!.???.***"), good + "x", "x" + good, good.substr(0, good.rfind('.')) + ".",
        std::string("e30.e30.e30"), std::string(20000, 'a')}) {
    SCOPED_TRACE(bad.substr(0, 40));
    EXPECT_STATUS(Hs()->Verify(bad), kUnauthenticated);
  }
}

TEST_F(JwtTest, NonJsonClaimsAreRefusedEvenWhenSigned) {
  // A correctly signed token whose payload is not JSON.
  const std::string header = "eyJhbGciOiJIUzI1NiJ9";  // {"alg":"HS256"}
  const std::string payload = "bm90IGpzb24";          // "not json"
  std::string token = *SignJwt(Json::object(), JwtAlgorithm::kHS256, "s3cret");
  EXPECT_STATUS(Hs()->Verify(header + "." + payload + "." + token.substr(token.rfind('.') + 1)),
                kUnauthenticated);
}

TEST_F(JwtTest, ClaimNamesAreConfigurable) {
  options_.claims.tenant = "tid";
  options_.claims.session_id = "sid";
  options_.claims.scope = "scp";
  Json c = {{"tid", "acme"}, {"sid", "s9"}, {"scp", Json::array({"x", "y"})},
            {"exp", absl::ToUnixSeconds(kNow) + 60}};
  absl::StatusOr<Principal> p = Hs()->Verify(*SignJwt(c, JwtAlgorithm::kHS256, "s3cret"));
  ASSERT_OK(p);
  EXPECT_EQ(p->tenant, "acme");
  EXPECT_EQ(p->session_id, "s9");
  EXPECT_TRUE(p->HasScope("y"));
}

TEST_F(JwtTest, BadKeysAreRefusedAtConstruction) {
  EXPECT_STATUS(NewHs256Verifier("", options_), kInvalidArgument);
  EXPECT_STATUS(NewPublicKeyVerifier("not a pem", options_), kInvalidArgument);
  EXPECT_STATUS(NewPublicKeyVerifier(Rsa().private_pem.substr(0, 50), options_),
                kInvalidArgument);
}

}  // namespace
}  // namespace sessionctx
