// SmallFilesystem: a tmpfs of a few MiB mounted for one test (root only), with a
// ballast file that takes part of it: a test fills the rest, then frees space by
// removing the ballast.
#ifndef SESSIONCTX_TESTS_SMALL_FILESYSTEM_H_
#define SESSIONCTX_TESTS_SMALL_FILESYSTEM_H_

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/test_util.h"

namespace sessionctx::testing {

class SmallFilesystem {
 public:
  // Mounts `mib` MiB at a new folder and writes `ballast_mib` MiB into it. Check
  // ok(): mounting needs root.
  SmallFilesystem(int mib, int ballast_mib) {
    char pattern[] = "/tmp/sessionctx-small-XXXXXX";
    if (mkdtemp(pattern) == nullptr) return;
    path_ = pattern;
    if (std::system(absl::StrCat("mount -t tmpfs -o size=", mib, "m tmpfs ", path_, " 2>/dev/null").c_str()) != 0) {
      std::filesystem::remove(path_);
      path_.clear();
      return;
    }
    mounted_ = true;
    std::ofstream ballast(Ballast(), std::ios::binary);
    const std::string mib_of_zeros(1 << 20, '\0');
    for (int i = 0; i < ballast_mib; ++i) ballast << mib_of_zeros;
  }
  ~SmallFilesystem() {
    if (mounted_) (void)std::system(absl::StrCat("umount -l ", path_).c_str());
    if (!path_.empty()) std::filesystem::remove_all(path_);
  }

  bool ok() const { return mounted_; }
  const std::string& path() const { return path_; }
  // FreeBallast removes the ballast file: its space is free again.
  void FreeBallast() const { std::filesystem::remove(Ballast()); }

  // Why a test cannot run without it.
  static std::string Problem() {
    return "cannot mount a tmpfs (needs root: mount -t tmpfs); the full-disk tests need one";
  }

 private:
  std::string Ballast() const { return path_ + "/ballast"; }

  std::string path_;
  bool mounted_ = false;
};

// Fails in CI (CI=true), skips elsewhere, when no small filesystem can be mounted.
#define SESSIONCTX_REQUIRE_SMALL_FILESYSTEM(fs)                                    \
  do {                                                                             \
    if (!(fs).ok()) {                                                              \
      if (::sessionctx::testing::InCi()) {                                         \
        FAIL() << ::sessionctx::testing::SmallFilesystem::Problem();               \
      } else {                                                                     \
        GTEST_SKIP() << ::sessionctx::testing::SmallFilesystem::Problem();         \
      }                                                                            \
    }                                                                              \
  } while (0)

}  // namespace sessionctx::testing

#endif  // SESSIONCTX_TESTS_SMALL_FILESYSTEM_H_
