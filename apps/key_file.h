// The server's token keys: read from the key file named on the command line, and
// read again when the operator rotates them (SIGHUP, or the file changing), without a
// restart and without dropping a request.
#ifndef SESSIONCTX_APPS_KEY_FILE_H_
#define SESSIONCTX_APPS_KEY_FILE_H_

#include <sys/stat.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sessionctx/jwt.h"

namespace sessionctx::apps {

// KeyFile names the file the keys come from and how to read it.
struct KeyFile {
  enum class Kind {
    kSecret,     // HS256: the file's bytes, trailing newline stripped
    kPublicKey,  // PEM public key or certificate: RS256 (RSA) or ES256 (P-256)
    kJwks,       // JSON Web Key Set: keys chosen by the token's kid
  };
  Kind kind = Kind::kSecret;
  std::string path;
};

// LoadVerifier reads `file` and returns a verifier of its keys, or an error naming
// the file and what is wrong with it. `warning`, when given, receives a note on a
// weak key (an HS256 secret under 32 bytes) or is cleared.
absl::StatusOr<std::unique_ptr<TokenVerifier>> LoadVerifier(const KeyFile& file,
                                                            const JwtOptions& options,
                                                            std::string* warning = nullptr);

// KeyReloader keeps a SwappableVerifier on the keys of a KeyFile. Thread-safe.
class KeyReloader {
 public:
  // Version: what tells one state of the key file from another.
  struct Version {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = -1;
    int64_t mtime_ns = -1;
    bool operator==(const Version&) const = default;
  };
  // StatFile: the file's version now (nullopt when it cannot be stat'ed).
  static std::optional<Version> StatFile(const std::string& path);

  // `verifier` (not owned) must hold the keys loaded from `file` when it was at
  // `loaded`, which the caller stat'ed *before* reading the file: a change that
  // lands between that stat and the read is then seen as a change, and loaded again.
  KeyReloader(KeyFile file, JwtOptions options, SwappableVerifier* verifier,
              std::optional<Version> loaded);

  // Reload reads the file now. On success later tokens are checked against its keys;
  // on error the keys in use stay and the error is returned.
  absl::Status Reload();

  // ReloadIfChanged reloads when the file (its inode, size or modification time)
  // changed since the last load and has looked the same on two calls in a row, so a
  // file caught half-written is not loaded. Returns what happened: nullopt when
  // nothing changed (or a failed load of this same version was already reported).
  std::optional<absl::Status> ReloadIfChanged();

  const KeyFile& file() const { return file_; }

 private:
  std::optional<Version> Stat() const { return StatFile(file_.path); }
  absl::Status LoadLocked(const std::optional<Version>& version);

  const KeyFile file_;
  const JwtOptions options_;
  SwappableVerifier* const verifier_;
  std::mutex mu_;
  std::optional<Version> loaded_;   // version in use (or last tried and failed)
  std::optional<Version> pending_;  // a changed version seen once, awaiting a second look
};

}  // namespace sessionctx::apps

#endif  // SESSIONCTX_APPS_KEY_FILE_H_
