// The token interface's own parts: no cryptography here (src/jwt.cc verifies JWTs).
#include "sessionctx/token_verifier.h"

#include <mutex>
#include <shared_mutex>

namespace sessionctx {

bool Principal::HasScope(absl::string_view scope) const {
  for (const std::string& s : scopes) {
    if (s == scope) return true;
  }
  return false;
}

SwappableVerifier::SwappableVerifier(std::shared_ptr<const TokenVerifier> initial)
    : current_(std::move(initial)) {}

void SwappableVerifier::Replace(std::shared_ptr<const TokenVerifier> next) {
  std::unique_lock lock(mu_);
  current_.swap(next);
  lock.unlock();
  // `next` now holds the old verifier: it goes when the last Verify using it is done.
}

absl::StatusOr<Principal> SwappableVerifier::Verify(absl::string_view token) const {
  std::shared_lock lock(mu_);
  const std::shared_ptr<const TokenVerifier> current = current_;
  lock.unlock();
  return current->Verify(token);
}

}  // namespace sessionctx
