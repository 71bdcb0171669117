#include "src/token_cache.h"

#include <openssl/sha.h>

namespace sessionctx::internal {

TokenDigest DigestOf(absl::string_view token) {
  TokenDigest d;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), d.data());
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
