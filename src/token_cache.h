// TokenCache: verified tokens by SHA-256 digest, until they expire. Internal to the
// JWT verifier (token_verifier.cc).
#ifndef SESSIONCTX_SRC_TOKEN_CACHE_H_
#define SESSIONCTX_SRC_TOKEN_CACHE_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sessionctx/backend_support.h"  // Striped
#include "sessionctx/jwt.h"

namespace sessionctx::internal {

using TokenDigest = std::array<uint8_t, 32>;

// DigestOf: SHA-256 of `token`. A digest, not a fast hash: a key an attacker could
// make collide with another's token would let a forged token borrow its principal.
TokenDigest DigestOf(absl::string_view token);

// TokenCache is sharded; each shard has its own lock, so concurrent lookups of
// different tokens rarely meet. Thread-safe.
class TokenCache {
 public:
  // `capacity`: most tokens held (spread over the shards; at least one per shard).
  explicit TokenCache(size_t capacity);

  // Find returns the principal of a token verified before, if it is still valid at
  // `now`; an entry found expired is dropped.
  std::optional<Principal> Find(const TokenDigest& digest, absl::Time now);

  // Insert remembers a verified token. A full shard first drops its expired
  // entries, then, if still full, an arbitrary one.
  void Insert(const TokenDigest& digest, const Principal& principal, absl::Time now);

  size_t size();  // for tests

 private:
  static constexpr size_t kShards = 16;
  struct DigestHash {
    size_t operator()(const TokenDigest& d) const {
      uint64_t h;
      std::memcpy(&h, d.data() + 8, sizeof(h));  // uniform: it is a SHA-256
      return static_cast<size_t>(h);
    }
  };
  struct Shard {
    std::mutex mu;
    absl::flat_hash_map<TokenDigest, Principal, DigestHash> entries;  // guarded by mu
  };
  Shard& ShardFor(const TokenDigest& d) { return shards_.For(d[0]); }

  const size_t per_shard_;
  backend::Striped<Shard> shards_;
};

}  // namespace sessionctx::internal

#endif  // SESSIONCTX_SRC_TOKEN_CACHE_H_
