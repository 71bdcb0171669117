// Key pairs for token tests: freshly generated RSA 2048 and P-256 keys, as PEM and as
// a JSON Web Key (RFC 7517) of the public half.
#ifndef SESSIONCTX_TESTS_TEST_KEYS_H_
#define SESSIONCTX_TESTS_TEST_KEYS_H_

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <string>

#include "sessionctx/session_context.h"

namespace sessionctx::testing {

struct TestKey {
  std::string private_pem;
  std::string public_pem;
  Json jwk;  // public half, without kid
};

inline std::string Base64Url(const std::string& in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

inline std::string BnParam(EVP_PKEY* key, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(key, name, &bn);
  const int size = pad > 0 ? pad : BN_num_bytes(bn);
  std::string out(static_cast<size_t>(size), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), size);
  BN_free(bn);
  return out;
}

// MakeTestKey: a new RSA 2048 (rsa) or P-256 key pair.
inline TestKey MakeTestKey(bool rsa, size_t rsa_bits = 2048) {
  EVP_PKEY* key = rsa ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", rsa_bits)
                      : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  BIO* priv = BIO_new(BIO_s_mem());
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr);
  PEM_write_bio_PUBKEY(pub, key);
  auto read = [](BIO* b) {
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    return std::string(data, static_cast<size_t>(n));
  };
  TestKey k{read(priv), read(pub), Json::object()};
  if (rsa) {
    k.jwk = {{"kty", "RSA"},
             {"n", Base64Url(BnParam(key, OSSL_PKEY_PARAM_RSA_N))},
             {"e", Base64Url(BnParam(key, OSSL_PKEY_PARAM_RSA_E))}};
  } else {
    k.jwk = {{"kty", "EC"},
             {"crv", "P-256"},
             {"x", Base64Url(BnParam(key, OSSL_PKEY_PARAM_EC_PUB_X, 32))},
             {"y", Base64Url(BnParam(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32))}};
  }
  BIO_free(priv);
  BIO_free(pub);
  EVP_PKEY_free(key);
  return k;
}

// WithKid: `jwk` named `kid`.
inline Json WithKid(Json jwk, const std::string& kid) {
  jwk["kid"] = kid;
  return jwk;
}

}  // namespace sessionctx::testing

#endif  // SESSIONCTX_TESTS_TEST_KEYS_H_
