// JWT verification and signing over OpenSSL's EVP interface. The decoder is small
// and strict: three base64url parts, a JSON header naming exactly the configured
// algorithm, a JSON claims object with a numeric `exp`.
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cmath>
#include <memory>
#include <mutex>
#include <shared_mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sessionctx/jwt.h"
#include "src/token_cache.h"

namespace sessionctx {
namespace {

constexpr size_t kMaxTokenBytes = 16 * 1024;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

absl::Status Unauthenticated(absl::string_view why) {
  return absl::UnauthenticatedError(std::string(why));
}

std::string Base64UrlEncode(absl::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

// Strict base64url without padding, as JWS requires.
std::optional<std::string> Base64UrlDecode(absl::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
  };
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;  // stray bits
  return out;
}

std::string HmacSha256(absl::string_view key, absl::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

// ES256 signatures are r||s (32 bytes each); OpenSSL wants DER.
std::optional<std::string> RawEcdsaToDer(absl::string_view raw) {
  if (raw.size() != 64) return std::nullopt;
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) return std::nullopt;
  std::string out(reinterpret_cast<char*>(der), len);
  OPENSSL_free(der);
  return out;
}

std::optional<std::string> DerEcdsaToRaw(absl::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(d2i_ECDSA_SIG(nullptr, &p, der.size()));
  if (!sig) return std::nullopt;
  std::string out(64, '\0');
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), reinterpret_cast<unsigned char*>(&out[0]),
                   32) != 32 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), reinterpret_cast<unsigned char*>(&out[32]),
                   32) != 32) {
    return std::nullopt;
  }
  return out;
}

bool IsP256(EVP_PKEY* key) {
  char name[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_group_name(key, name, sizeof(name), &len) != 1) return false;
  return std::string(name) == "prime256v1" || std::string(name) == "P-256";
}

absl::StatusOr<JwtAlgorithm> AlgorithmForKey(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      // As for a key set's RSA keys: a shorter modulus is factorable in reach.
      if (EVP_PKEY_get_bits(key) < 2048) {
        return absl::InvalidArgumentError(
            absl::StrCat("RSA key has ", EVP_PKEY_get_bits(key), " bits; at least 2048 are required"));
      }
      return JwtAlgorithm::kRS256;
    case EVP_PKEY_EC:
      if (IsP256(key)) return JwtAlgorithm::kES256;
      return absl::InvalidArgumentError("EC key is not on P-256: ES256 needs P-256");
    default:
      return absl::InvalidArgumentError("key is neither RSA nor EC P-256");
  }
}

// VerifyKey: one key a token may be signed with.
struct VerifyKey {
  JwtAlgorithm alg;
  std::string secret;  // HS256
  Pkey key;            // RS256, ES256
};

struct HeaderFields {
  std::string alg;
  std::optional<std::string> kid;
};

// JwtVerifier checks tokens against a fixed set of keys. With one key and no key ids
// (a secret or a PEM key) every token is checked against that key; with a key set
// (JWKS) the token's `kid` picks the key.
class JwtVerifier final : public TokenVerifier {
 public:
  // `kids[i]` names `keys[i]`; an empty `kids` means a single unnamed key.
  JwtVerifier(std::vector<std::string> kids, std::vector<VerifyKey> keys, JwtOptions options)
      : kids_(std::move(kids)),
        keys_(std::move(keys)),
        options_(std::move(options)),
        cache_(options_.cache_entries > 0
                   ? std::make_unique<internal::TokenCache>(options_.cache_entries)
                   : nullptr) {}

  absl::StatusOr<Principal> Verify(absl::string_view token) const override {
    if (token.empty()) return Unauthenticated("bearer token is empty");
    if (token.size() > kMaxTokenBytes) return Unauthenticated("bearer token is too long");
    if (cache_ == nullptr) return VerifyUncached(token);
    const internal::TokenDigest digest = internal::DigestOf(token);
    const absl::Time now = options_.clock->Now();
    if (std::optional<Principal> cached = cache_->Find(digest, now)) return *std::move(cached);
    absl::StatusOr<Principal> p = VerifyUncached(token);
    if (p.ok()) cache_->Insert(digest, *p, now);
    return p;
  }

 private:
  absl::StatusOr<Principal> VerifyUncached(absl::string_view token) const {
    std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
    if (parts.size() != 3) return Unauthenticated("token is not a JWT (three dot-separated parts)");
    std::optional<std::string> header_text = Base64UrlDecode(parts[0]);
    std::optional<std::string> claims_text = Base64UrlDecode(parts[1]);
    std::optional<std::string> signature = Base64UrlDecode(parts[2]);
    if (!header_text || !claims_text || !signature) {
      return Unauthenticated("token is malformed: bad base64url");
    }
    absl::StatusOr<HeaderFields> header = ReadHeader(*header_text);
    if (!header.ok()) return header.status();
    if (header->alg == "none" || header->alg == "None" || header->alg == "NONE") {
      return Unauthenticated("unsigned tokens (alg none) are not accepted");
    }
    absl::StatusOr<const VerifyKey*> key = KeyFor(*header);
    if (!key.ok()) return key.status();
    if (signature->empty()) return Unauthenticated("token has no signature");
    const absl::string_view signing_input(token.data(), parts[0].size() + 1 + parts[1].size());
    if (!SignatureValid(**key, signing_input, *signature)) {
      return Unauthenticated("token signature is invalid");
    }
    Json claims = Json::parse(*claims_text, nullptr, /*allow_exceptions=*/false);
    if (!claims.is_object()) return Unauthenticated("token claims are not a JSON object");
    return PrincipalFrom(claims);
  }

  static absl::StatusOr<HeaderFields> ReadHeader(const std::string& text) {
    Json header = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!header.is_object()) return Unauthenticated("token header is not a JSON object");
    HeaderFields fields;
    auto alg = header.find("alg");
    if (alg == header.end() || !alg->is_string()) {
      return Unauthenticated("token header has no alg");
    }
    fields.alg = alg->get<std::string>();
    if (auto kid = header.find("kid"); kid != header.end()) {
      if (!kid->is_string()) return Unauthenticated("token header kid is not a string");
      fields.kid = kid->get<std::string>();
    }
    // RFC 7515 section 4.1.11: a header's `crit` names extensions the verifier must
    // understand, or refuse the token. This verifier understands none.
    if (header.contains("crit")) {
      return Unauthenticated("token header has crit: critical extensions are not supported");
    }
    return fields;
  }

  // KeyFor picks the key the token names and checks that its algorithm is the key's.
  absl::StatusOr<const VerifyKey*> KeyFor(const HeaderFields& header) const {
    const VerifyKey* key = nullptr;
    if (kids_.empty() || (keys_.size() == 1 && kids_.front().empty())) {
      key = &keys_.front();  // one key without a name: any kid the token gives is moot
    } else if (header.kid) {
      for (size_t i = 0; i < kids_.size(); ++i) {
        if (kids_[i] == *header.kid) key = &keys_[i];
      }
      if (key == nullptr) return Unauthenticated("token kid names no key of the key set");
    } else if (keys_.size() == 1) {
      key = &keys_.front();
    } else {
      return Unauthenticated("token header has no kid: the key set holds several keys");
    }
    if (header.alg != JwtAlgorithmName(key->alg)) {
      return Unauthenticated(absl::StrCat("token algorithm ", header.alg,
                                          " is not the configured ", JwtAlgorithmName(key->alg)));
    }
    return key;
  }

  static bool SignatureValid(const VerifyKey& key, absl::string_view input,
                             const std::string& signature) {
    if (key.alg == JwtAlgorithm::kHS256) {
      const std::string mac = HmacSha256(key.secret, input);
      return mac.size() == signature.size() &&
             CRYPTO_memcmp(mac.data(), signature.data(), mac.size()) == 0;
    }
    std::string der;
    if (key.alg == JwtAlgorithm::kES256) {
      std::optional<std::string> converted = RawEcdsaToDer(signature);
      if (!converted) return false;
      der = std::move(*converted);
    }
    const std::string& sig = key.alg == JwtAlgorithm::kES256 ? der : signature;
    std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
    if (!ctx ||
        EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.key.get()) != 1) {
      return false;
    }
    return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()),
                            sig.size(), reinterpret_cast<const unsigned char*>(input.data()),
                            input.size()) == 1;
  }

  absl::StatusOr<Principal> PrincipalFrom(const Json& claims) const {
    const double now = absl::ToDoubleSeconds(options_.clock->Now() - absl::UnixEpoch());
    const double leeway = absl::ToDoubleSeconds(options_.leeway);
    auto exp = claims.find("exp");
    if (exp == claims.end()) return Unauthenticated("token has no exp claim");
    if (!exp->is_number() || !std::isfinite(exp->get<double>())) {
      return Unauthenticated("token exp claim is not a number");
    }
    if (now >= exp->get<double>() + leeway) return Unauthenticated("token has expired");
    const double until = exp->get<double>() + leeway;
    if (auto nbf = claims.find("nbf"); nbf != claims.end()) {
      if (!nbf->is_number()) return Unauthenticated("token nbf claim is not a number");
      if (now + leeway < nbf->get<double>()) return Unauthenticated("token is not yet valid");
    }
    if (options_.issuer) {
      auto iss = claims.find("iss");
      if (iss == claims.end() || !iss->is_string() || iss->get<std::string>() != *options_.issuer) {
        return Unauthenticated("token is not from the expected issuer (iss)");
      }
    }
    if (options_.audience) {
      auto aud = claims.find("aud");
      bool named = false;
      if (aud != claims.end() && aud->is_string()) named = aud->get<std::string>() == *options_.audience;
      if (aud != claims.end() && aud->is_array()) {
        for (const Json& a : *aud) named |= a.is_string() && a.get<std::string>() == *options_.audience;
      }
      if (!named) return Unauthenticated("token is not for this audience (aud)");
    }
    Principal p;
    p.valid_until = until >= 9e15 ? absl::InfiniteFuture()
                                  : absl::UnixEpoch() + absl::Milliseconds(std::floor(until * 1000));
    const ClaimNames& names = options_.claims;
    auto read_string = [&](const std::string& name, std::string& out) -> absl::Status {
      auto it = claims.find(name);
      if (it == claims.end() || it->is_null()) return absl::OkStatus();
      if (!it->is_string()) return Unauthenticated(absl::StrCat("token claim ", name, " is not a string"));
      out = it->get<std::string>();
      return absl::OkStatus();
    };
    if (absl::Status st = read_string(names.tenant, p.tenant); !st.ok()) return st;
    if (absl::Status st = read_string(names.session_id, p.session_id); !st.ok()) return st;
    std::string customer;
    if (absl::Status st = read_string(names.customer_id, customer); !st.ok()) return st;
    if (!customer.empty()) p.customer_id = customer;
    if (auto scope = claims.find(names.scope); scope != claims.end()) {
      if (scope->is_string()) {
        for (absl::string_view s :
             absl::StrSplit(scope->get_ref<const std::string&>(), ' ', absl::SkipEmpty())) {
          p.scopes.emplace_back(s);
        }
      } else if (scope->is_array()) {
        for (const Json& s : *scope) {
          if (s.is_string()) p.scopes.push_back(s.get<std::string>());
        }
      }
    }
    return p;
  }

  const std::vector<std::string> kids_;
  const std::vector<VerifyKey> keys_;  // never empty
  const JwtOptions options_;
  const std::unique_ptr<internal::TokenCache> cache_;  // null when off
};

absl::StatusOr<Pkey> ReadPublicKey(const std::string& pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return absl::InternalError("out of memory");
  if (EVP_PKEY* key = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr)) {
    return Pkey(key);
  }
  BIO_reset(bio.get());
  if (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    Pkey key(X509_get_pubkey(cert));
    X509_free(cert);
    if (key) return key;
  }
  return absl::InvalidArgumentError(
      "public key file is not a PEM public key (BEGIN PUBLIC KEY) or certificate");
}


// --- JSON Web Key Sets (RFC 7517, RFC 7518 section 6) ---------------------------

struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};

// JwkBytes reads member `name` of `jwk`: a base64url string of at least one byte.
absl::StatusOr<std::string> JwkBytes(const Json& jwk, const char* name, const std::string& where) {
  auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": member ", name, " must be a string"));
  }
  std::optional<std::string> bytes = Base64UrlDecode(it->get_ref<const std::string&>());
  if (!bytes || bytes->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": member ", name, " must be non-empty base64url"));
  }
  return *std::move(bytes);
}

absl::StatusOr<Pkey> PkeyFromParams(const char* type, OSSL_PARAM_BLD* bld, const std::string& where) {
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1 || key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": not a valid ", type, " public key"));
  }
  return Pkey(key);
}

absl::StatusOr<Pkey> RsaKeyFromJwk(const Json& jwk, const std::string& where) {
  absl::StatusOr<std::string> n = JwkBytes(jwk, "n", where);
  if (!n.ok()) return n.status();
  absl::StatusOr<std::string> e = JwkBytes(jwk, "e", where);
  if (!e.ok()) return e.status();
  if (n->size() < 256) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": RSA modulus under 2048 bits"));
  }
  auto bn = [](const std::string& b) {
    return std::unique_ptr<BIGNUM, BnFree>(
        BN_bin2bn(reinterpret_cast<const unsigned char*>(b.data()), static_cast<int>(b.size()),
                  nullptr));
  };
  std::unique_ptr<BIGNUM, BnFree> bn_n = bn(*n), bn_e = bn(*e);
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return absl::InternalError("out of memory");
  }
  return PkeyFromParams("RSA", bld.get(), where);
}

absl::StatusOr<Pkey> EcKeyFromJwk(const Json& jwk, const std::string& where) {
  auto crv = jwk.find("crv");
  if (crv == jwk.end() || *crv != "P-256") {
    return absl::InvalidArgumentError(absl::StrCat(where, ": EC keys must have crv P-256"));
  }
  absl::StatusOr<std::string> x = JwkBytes(jwk, "x", where);
  if (!x.ok()) return x.status();
  absl::StatusOr<std::string> y = JwkBytes(jwk, "y", where);
  if (!y.ok()) return y.status();
  if (x->size() != 32 || y->size() != 32) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": P-256 x and y must be 32 bytes each"));
  }
  const std::string point = absl::StrCat("\x04", *x, *y);  // uncompressed point
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return absl::InternalError("out of memory");
  }
  return PkeyFromParams("EC", bld.get(), where);  // fails for a point not on the curve
}

// KeyFromJwk reads one key. nullopt: a key this verifier has no use for (another
// use than signing, or an algorithm it does not verify), skipped.
absl::StatusOr<std::optional<VerifyKey>> KeyFromJwk(const Json& jwk, const std::string& where) {
  if (!jwk.is_object()) return absl::InvalidArgumentError(where + " must be an object");
  auto kty = jwk.find("kty");
  if (kty == jwk.end() || !kty->is_string()) {
    return absl::InvalidArgumentError(where + ": member kty must be a string");
  }
  if (auto use = jwk.find("use"); use != jwk.end() && *use != "sig") return std::nullopt;
  JwtAlgorithm alg;
  if (*kty == "RSA") {
    alg = JwtAlgorithm::kRS256;
  } else if (*kty == "EC") {
    alg = JwtAlgorithm::kES256;
  } else if (*kty == "oct") {
    alg = JwtAlgorithm::kHS256;
  } else {
    return std::nullopt;  // e.g. OKP (EdDSA): not verified here
  }
  if (auto a = jwk.find("alg"); a != jwk.end() && *a != JwtAlgorithmName(alg)) return std::nullopt;
  VerifyKey key{alg, std::string(), nullptr};
  if (alg == JwtAlgorithm::kHS256) {
    absl::StatusOr<std::string> k = JwkBytes(jwk, "k", where);
    if (!k.ok()) return k.status();
    key.secret = *std::move(k);
  } else {
    absl::StatusOr<Pkey> pkey =
        alg == JwtAlgorithm::kRS256 ? RsaKeyFromJwk(jwk, where) : EcKeyFromJwk(jwk, where);
    if (!pkey.ok()) return pkey.status();
    key.key = *std::move(pkey);
  }
  return std::optional<VerifyKey>(std::move(key));
}

}  // namespace

const char* JwtAlgorithmName(JwtAlgorithm alg) {
  switch (alg) {
    case JwtAlgorithm::kHS256:
      return "HS256";
    case JwtAlgorithm::kRS256:
      return "RS256";
    case JwtAlgorithm::kES256:
      return "ES256";
  }
  return "?";
}

absl::StatusOr<std::unique_ptr<TokenVerifier>> NewHs256Verifier(std::string secret,
                                                                JwtOptions options) {
  if (secret.empty()) return absl::InvalidArgumentError("HS256 secret is empty");
  std::vector<VerifyKey> keys;
  keys.push_back(VerifyKey{JwtAlgorithm::kHS256, std::move(secret), nullptr});
  return std::make_unique<JwtVerifier>(std::vector<std::string>(), std::move(keys),
                                       std::move(options));
}

absl::StatusOr<std::unique_ptr<TokenVerifier>> NewPublicKeyVerifier(const std::string& pem,
                                                                    JwtOptions options) {
  absl::StatusOr<Pkey> key = ReadPublicKey(pem);
  if (!key.ok()) return key.status();
  absl::StatusOr<JwtAlgorithm> alg = AlgorithmForKey(key->get());
  if (!alg.ok()) return alg.status();
  std::vector<VerifyKey> keys;
  keys.push_back(VerifyKey{*alg, std::string(), *std::move(key)});
  return std::make_unique<JwtVerifier>(std::vector<std::string>(), std::move(keys),
                                       std::move(options));
}

absl::StatusOr<std::unique_ptr<TokenVerifier>> NewJwksVerifier(const std::string& jwks,
                                                                JwtOptions options) {
  Json set = Json::parse(jwks, nullptr, /*allow_exceptions=*/false);
  if (!set.is_object()) return absl::InvalidArgumentError("key set is not a JSON object");
  auto list = set.find("keys");
  if (list == set.end() || !list->is_array()) {
    return absl::InvalidArgumentError("key set has no keys array");
  }
  std::vector<std::string> kids;
  std::vector<VerifyKey> keys;
  bool unnamed = false;
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string where = absl::StrCat("keys[", i, "]");
    absl::StatusOr<std::optional<VerifyKey>> key = KeyFromJwk((*list)[i], where);
    if (!key.ok()) return key.status();
    if (!key->has_value()) continue;
    std::string kid;
    if (auto k = (*list)[i].find("kid"); k != (*list)[i].end()) {
      if (!k->is_string()) return absl::InvalidArgumentError(where + ": member kid must be a string");
      kid = k->get<std::string>();
      for (const std::string& seen : kids) {
        if (seen == kid) return absl::InvalidArgumentError(where + ": kid " + kid + " is used twice");
      }
    } else {
      unnamed = true;
    }
    kids.push_back(std::move(kid));
    keys.push_back(**std::move(key));
  }
  if (keys.empty()) {
    return absl::InvalidArgumentError("key set holds no RS256, ES256 or HS256 signing key");
  }
  if (unnamed && keys.size() > 1) {
    return absl::InvalidArgumentError("every key of a set of several needs a kid");
  }
  return std::make_unique<JwtVerifier>(std::move(kids), std::move(keys), std::move(options));
}

absl::StatusOr<std::string> SignJwt(const Json& claims, JwtAlgorithm alg, const std::string& key,
                                    const std::string& kid) {
  Json header = {{"alg", JwtAlgorithmName(alg)}, {"typ", "JWT"}};
  if (!kid.empty()) header["kid"] = kid;
  const std::string input =
      absl::StrCat(Base64UrlEncode(header.dump()), ".", Base64UrlEncode(claims.dump()));
  if (alg == JwtAlgorithm::kHS256) {
    if (key.empty()) return absl::InvalidArgumentError("HS256 secret is empty");
    return absl::StrCat(input, ".", Base64UrlEncode(HmacSha256(key, input)));
  }
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(key.data(), static_cast<int>(key.size())));
  Pkey pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) return absl::InvalidArgumentError("signing key is not a PEM private key");
  absl::StatusOr<JwtAlgorithm> key_alg = AlgorithmForKey(pkey.get());
  if (!key_alg.ok()) return key_alg.status();
  if (*key_alg != alg) return absl::InvalidArgumentError("private key does not fit the algorithm");
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return absl::InternalError("signing failed");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(&sig[0]), &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return absl::InternalError("signing failed");
  }
  sig.resize(len);
  if (alg == JwtAlgorithm::kES256) {
    std::optional<std::string> raw = DerEcdsaToRaw(sig);
    if (!raw) return absl::InternalError("signing failed");
    sig = std::move(*raw);
  }
  return absl::StrCat(input, ".", Base64UrlEncode(sig));
}

}  // namespace sessionctx
