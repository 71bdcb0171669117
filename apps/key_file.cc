#include "apps/key_file.h"

#include "absl/strings/str_cat.h"
#include "apps/flags.h"
#include "apps/server_log.h"

namespace sessionctx::apps {

// An HS256 secret shorter than the hash's output (RFC 7518 section 3.2) can be
// brute-forced from one token; it is accepted (the key file is the operator's) with
// a warning on every load.
constexpr size_t kMinSecretBytes = 32;

absl::StatusOr<std::unique_ptr<TokenVerifier>> LoadVerifier(const KeyFile& file,
                                                            const JwtOptions& options,
                                                            std::string* warning) {
  if (warning) warning->clear();
  std::optional<std::string> text = ReadFile(file.path);
  if (!text) return absl::FailedPreconditionError(absl::StrCat("cannot read ", file.path));
  absl::StatusOr<std::unique_ptr<TokenVerifier>> verifier;
  switch (file.kind) {
    case KeyFile::Kind::kSecret: {
      std::string secret = StripTrailingNewline(*std::move(text));
      if (warning && !secret.empty() && secret.size() < kMinSecretBytes) {
        *warning = absl::StrCat("the HS256 secret in ", file.path, " is ", secret.size(),
                                " bytes; use at least ", kMinSecretBytes,
                                " random bytes (e.g. openssl rand -hex 32)");
      }
      verifier = NewHs256Verifier(std::move(secret), options);
      break;
    }
    case KeyFile::Kind::kPublicKey:
      verifier = NewPublicKeyVerifier(*text, options);
      break;
    case KeyFile::Kind::kJwks:
      verifier = NewJwksVerifier(*text, options);
      break;
  }
  if (!verifier.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(file.path, ": ", verifier.status().message()));
  }
  return verifier;
}

KeyReloader::KeyReloader(KeyFile file, JwtOptions options, SwappableVerifier* verifier,
                         std::optional<Version> loaded)
    : file_(std::move(file)), options_(std::move(options)), verifier_(verifier), loaded_(loaded) {}

std::optional<KeyReloader::Version> KeyReloader::StatFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return Version{st.st_dev, st.st_ino, st.st_size,
                 int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec};
}

absl::Status KeyReloader::LoadLocked(const std::optional<Version>& version) {
  loaded_ = version;
  pending_.reset();
  std::string warning;
  absl::StatusOr<std::unique_ptr<TokenVerifier>> next = LoadVerifier(file_, options_, &warning);
  if (!next.ok()) return next.status();
  verifier_->Replace(*std::move(next));
  if (!warning.empty()) ProcessLog().Warning(warning);
  return absl::OkStatus();
}

absl::Status KeyReloader::Reload() {
  std::lock_guard<std::mutex> lock(mu_);
  return LoadLocked(Stat());
}

std::optional<absl::Status> KeyReloader::ReloadIfChanged() {
  std::lock_guard<std::mutex> lock(mu_);
  const std::optional<Version> now = Stat();
  if (!now || now == loaded_) {
    pending_.reset();
    return std::nullopt;  // unchanged, or gone for now (a rename in progress)
  }
  if (now != pending_) {
    pending_ = now;  // look again next time: a writer may not be done
    return std::nullopt;
  }
  return LoadLocked(now);
}

}  // namespace sessionctx::apps
