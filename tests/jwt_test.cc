// JWT verification (docs/api.md, Tokens): HS256, RS256, ES256 and every way a token is refused.
#include <openssl/hmac.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "sessionctx/jwt.h"
#include "src/token_cache.h"
#include "tests/test_keys.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

using testing::MakeTestKey;
using testing::TestKey;
using testing::WithKid;

const TestKey& Rsa() {
  static const TestKey* k = new TestKey(MakeTestKey(true));
  return *k;
}
const TestKey& Ec() {
  static const TestKey* k = new TestKey(MakeTestKey(false));
  return *k;
}
const TestKey& Rsa2() {
  static const TestKey* k = new TestKey(MakeTestKey(true));
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
  const TestKey& other = Rsa2();
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

// An RSA public key is held to the same minimum as a key set's: 2048 bits.
TEST_F(JwtTest, RsaPemKeysUnder2048BitsAreRefused) {
  absl::StatusOr<std::unique_ptr<TokenVerifier>> v =
      NewPublicKeyVerifier(MakeTestKey(true, 1024).public_pem, options_);
  EXPECT_STATUS(v, kInvalidArgument);
  EXPECT_NE(v.status().message().find("2048"), std::string::npos) << v.status();
}

// RFC 7515 section 4.1.11: a token whose header names critical extensions (`crit`)
// must be refused by a verifier that understands none of them.
TEST_F(JwtTest, CritHeaderIsRefused) {
  auto sign = [](const Json& header) {
    const std::string input =
        absl::StrCat(testing::Base64Url(header.dump()), ".", testing::Base64Url(Claims().dump()));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), "s3cret", 6, reinterpret_cast<const unsigned char*>(input.data()),
         input.size(), mac, &n);
    return absl::StrCat(input, ".", testing::Base64Url(std::string(reinterpret_cast<char*>(mac), n)));
  };
  ASSERT_OK(Hs()->Verify(sign(Json{{"alg", "HS256"}, {"typ", "JWT"}})));  // the signing is right
  absl::StatusOr<Principal> p = Hs()->Verify(sign(Json{{"alg", "HS256"}, {"crit", {"b64"}}, {"b64", false}}));
  EXPECT_STATUS(p, kUnauthenticated);
  EXPECT_NE(p.status().message().find("crit"), std::string::npos) << p.status();
  EXPECT_STATUS(Hs()->Verify(sign(Json{{"alg", "HS256"}, {"crit", Json::array()}})), kUnauthenticated);
}

// --- key sets (JWKS) ----------------------------------------------------------------

std::string KeySet(std::initializer_list<Json> keys) {
  Json list = Json::array();
  for (const Json& k : keys) list.push_back(k);
  return Json{{"keys", list}}.dump();
}

TEST_F(JwtTest, JwksPicksTheKeyByKid) {
  auto v = NewJwksVerifier(KeySet({WithKid(Rsa().jwk, "r1"), WithKid(Ec().jwk, "e1"),
                                   {{"kty", "oct"}, {"kid", "h1"}, {"k", "c2VjcmV0LXNlY3JldA"}}}),
                           options_);
  ASSERT_OK(v);
  absl::StatusOr<Principal> p =
      (*v)->Verify(*SignJwt(Claims(), JwtAlgorithm::kRS256, Rsa().private_pem, "r1"));
  ASSERT_OK(p);
  EXPECT_EQ(p->tenant, "acme");
  EXPECT_OK((*v)->Verify(*SignJwt(Claims(), JwtAlgorithm::kES256, Ec().private_pem, "e1")));
  EXPECT_OK((*v)->Verify(*SignJwt(Claims(), JwtAlgorithm::kHS256, "secret-secret", "h1")));
}

TEST_F(JwtTest, JwksRefusesAnUnknownKidAMissingKidAndAKeyOfAnotherKid) {
  auto v = NewJwksVerifier(KeySet({WithKid(Rsa().jwk, "r1"), WithKid(Ec().jwk, "e1")}), options_);
  ASSERT_OK(v);
  absl::StatusOr<Principal> unknown =
      (*v)->Verify(*SignJwt(Claims(), JwtAlgorithm::kRS256, Rsa().private_pem, "r9"));
  EXPECT_STATUS(unknown, kUnauthenticated);
  EXPECT_NE(unknown.status().message().find("kid"), absl::string_view::npos);
  EXPECT_STATUS((*v)->Verify(*SignJwt(Claims(), JwtAlgorithm::kRS256, Rsa().private_pem)),
                kUnauthenticated);
  // Signed by the RSA key but naming the EC key's kid: wrong algorithm for that key.
  EXPECT_STATUS((*v)->Verify(*SignJwt(Claims(), JwtAlgorithm::kRS256, Rsa().private_pem, "e1")),
                kUnauthenticated);
  // Right kid, other RSA key: bad signature.
  EXPECT_STATUS((*v)->Verify(*SignJwt(Claims(), JwtAlgorithm::kRS256, Rsa2().private_pem, "r1")),
                kUnauthenticated);
}

TEST_F(JwtTest, JwksWithOneUnnamedKeyAcceptsTokensWithOrWithoutKid) {
  auto v = NewJwksVerifier(KeySet({Ec().jwk}), options_);
  ASSERT_OK(v);
  EXPECT_OK((*v)->Verify(*SignJwt(Claims(), JwtAlgorithm::kES256, Ec().private_pem)));
  EXPECT_OK((*v)->Verify(*SignJwt(Claims(), JwtAlgorithm::kES256, Ec().private_pem, "any")));
}

TEST_F(JwtTest, JwksSkipsKeysItDoesNotVerifyWith) {
  Json enc = WithKid(Rsa2().jwk, "enc");
  enc["use"] = "enc";
  Json rs384 = WithKid(Rsa2().jwk, "rs384");
  rs384["alg"] = "RS384";
  auto v = NewJwksVerifier(
      KeySet({enc, rs384, {{"kty", "OKP"}, {"kid", "ed"}, {"crv", "Ed25519"}, {"x", "AA"}},
              WithKid(Rsa().jwk, "r1")}),
      options_);
  ASSERT_OK(v);
  EXPECT_OK((*v)->Verify(*SignJwt(Claims(), JwtAlgorithm::kRS256, Rsa().private_pem, "r1")));
  EXPECT_STATUS((*v)->Verify(*SignJwt(Claims(), JwtAlgorithm::kRS256, Rsa2().private_pem, "enc")),
                kUnauthenticated);
}

TEST_F(JwtTest, MalformedKeySetsAreRefusedNamingTheProblem) {
  auto refused = [&](const std::string& text, absl::string_view says) {
    absl::StatusOr<std::unique_ptr<TokenVerifier>> v = NewJwksVerifier(text, options_);
    SCOPED_TRACE(text);
    EXPECT_STATUS(v, kInvalidArgument);
    EXPECT_NE(v.status().message().find(says), absl::string_view::npos) << v.status().message();
  };
  refused("not json", "not a JSON object");
  refused("{}", "keys");
  refused(R"({"keys": []})", "no RS256, ES256 or HS256");
  refused(KeySet({WithKid(Rsa().jwk, "a"), WithKid(Ec().jwk, "a")}), "used twice");
  refused(KeySet({Rsa().jwk, Ec().jwk}), "needs a kid");
  Json bad_point = Ec().jwk;
  bad_point["y"] = bad_point["x"];  // (x, x) is not on the curve
  refused(KeySet({bad_point}), "keys[0]");
  Json short_x = Ec().jwk;
  short_x["x"] = "AAAA";
  refused(KeySet({short_x}), "32 bytes");
  Json no_n = Rsa().jwk;
  no_n.erase("n");
  refused(KeySet({no_n}), "member n");
  Json small = Rsa().jwk;
  small["n"] = "AQAB";
  refused(KeySet({small}), "2048");
  refused(KeySet({{{"kty", "oct"}, {"k", ""}}}), "member k");
  refused(KeySet({{{"kty", "EC"}, {"crv", "P-384"}, {"x", "AA"}, {"y", "AA"}}}), "P-256");
}

TEST_F(JwtTest, SwappableVerifierUsesTheNewKeysFromTheReplaceOn) {
  SwappableVerifier v(NewHs256Verifier("old-secret", options_).value());
  const std::string old_token = *SignJwt(Claims(), JwtAlgorithm::kHS256, "old-secret");
  const std::string new_token = *SignJwt(Claims(), JwtAlgorithm::kHS256, "new-secret");
  EXPECT_OK(v.Verify(old_token));
  EXPECT_STATUS(v.Verify(new_token), kUnauthenticated);
  v.Replace(NewHs256Verifier("new-secret", options_).value());
  EXPECT_STATUS(v.Verify(old_token), kUnauthenticated);
  EXPECT_OK(v.Verify(new_token));
}

// --- the verified-token cache --------------------------------------------------------

TEST_F(JwtTest, ACachedTokenIsRefusedFromItsExpOn) {
  auto v = Hs();  // cache on (default)
  Json claims = Claims();
  claims["exp"] = absl::ToUnixSeconds(kNow) + 60;
  const std::string token = *SignJwt(claims, JwtAlgorithm::kHS256, "s3cret");
  absl::StatusOr<Principal> first = v->Verify(token);
  ASSERT_OK(first);
  EXPECT_EQ(first->valid_until, kNow + absl::Seconds(60));
  EXPECT_OK(v->Verify(token));  // from the cache
  clock_.Advance(absl::Seconds(59));
  EXPECT_OK(v->Verify(token));
  clock_.Advance(absl::Seconds(1));
  EXPECT_STATUS(v->Verify(token), kUnauthenticated);
}

TEST_F(JwtTest, ACachedTokenStopsMatchingWhenItsKeyIsRemoved) {
  auto set = [&](std::initializer_list<Json> keys) {
    return std::shared_ptr<const TokenVerifier>(NewJwksVerifier(KeySet(keys), options_).value());
  };
  SwappableVerifier v(set({WithKid(Rsa().jwk, "old"), WithKid(Ec().jwk, "new")}));
  const std::string old_token = *SignJwt(Claims(), JwtAlgorithm::kRS256, Rsa().private_pem, "old");
  const std::string new_token = *SignJwt(Claims(), JwtAlgorithm::kES256, Ec().private_pem, "new");
  ASSERT_OK(v.Verify(old_token));
  ASSERT_OK(v.Verify(old_token));  // cached now
  v.Replace(set({WithKid(Ec().jwk, "new")}));
  EXPECT_STATUS(v.Verify(old_token), kUnauthenticated);
  EXPECT_OK(v.Verify(new_token));
}

TEST_F(JwtTest, ARefusedTokenIsNeverCached) {
  auto v = Hs();
  const std::string forged = *SignJwt(Claims(), JwtAlgorithm::kHS256, "other");
  EXPECT_STATUS(v->Verify(forged), kUnauthenticated);
  EXPECT_STATUS(v->Verify(forged), kUnauthenticated);
}

TEST(TokenCache, HoldsAtMostItsCapacityAndDropsExpiredEntries) {
  internal::TokenCache cache(32);  // 2 per shard
  const absl::Time now = kNow;
  Principal p;
  p.tenant = "acme";
  p.valid_until = now + absl::Seconds(10);
  for (int i = 0; i < 500; ++i) cache.Insert(internal::DigestOf(absl::StrCat("t", i)), p, now);
  EXPECT_LE(cache.size(), 32u);
  const internal::TokenDigest d = internal::DigestOf("kept");
  cache.Insert(d, p, now);
  ASSERT_TRUE(cache.Find(d, now + absl::Seconds(9)).has_value());
  EXPECT_EQ(cache.Find(d, now + absl::Seconds(9))->tenant, "acme");
  EXPECT_FALSE(cache.Find(d, now + absl::Seconds(10)).has_value());
  EXPECT_FALSE(cache.Find(internal::DigestOf("never"), now).has_value());
}

TEST(TokenCache, ConcurrentUseKeepsEveryEntryConsistent) {
  internal::TokenCache cache(1024);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        const std::string token = absl::StrCat("tok", i % 300);
        Principal p;
        p.tenant = token;
        p.valid_until = kNow + absl::Seconds(60);
        const internal::TokenDigest d = internal::DigestOf(token);
        if (std::optional<Principal> got = cache.Find(d, kNow)) {
          if (got->tenant != token) ++wrong;
        } else {
          cache.Insert(d, p, kNow);
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace sessionctx
