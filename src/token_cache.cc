#include "src/token_cache.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <memory>

namespace sessionctx::internal {

TokenDigest DigestOf(absl::string_view token) {
  // The digest fetched once and a context per thread, reused: OpenSSL's one-shot
  // SHA256() fetches the algorithm (a shared lock) and allocates a context per call.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local const std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(),
                                                                           EVP_MD_CTX_free);
  TokenDigest d;
  unsigned int n = 0;
  if (sha256 == nullptr || ctx == nullptr || EVP_DigestInit_ex(ctx.get(), sha256, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), token.data(), token.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), d.data(), &n) != 1) {
    SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), d.data());
  }
  return d;
}

TokenCache::TokenCache(size_t capacity)
    : per_shard_(std::max<size_t>(1, capacity / kShards)), shards_(kShards) {}

std::optional<Principal> TokenCache::Find(const TokenDigest& digest, absl::Time now) {
  Shard& shard = ShardFor(digest);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.entries.find(digest);
  if (it == shard.entries.end()) return std::nullopt;
  if (now >= it->second.valid_until) {
    shard.entries.erase(it);
    return std::nullopt;
  }
  return it->second;
}

void TokenCache::Insert(const TokenDigest& digest, const Principal& principal, absl::Time now) {
  Shard& shard = ShardFor(digest);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.entries.size() >= per_shard_ && !shard.entries.contains(digest)) {
    absl::erase_if(shard.entries, [now](const auto& e) { return now >= e.second.valid_until; });
    if (shard.entries.size() >= per_shard_) shard.entries.erase(shard.entries.begin());
  }
  shard.entries.insert_or_assign(digest, principal);
}

size_t TokenCache::size() {
  size_t n = 0;
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    n += shard.entries.size();
  }
  return n;
}

}  // namespace sessionctx::internal
