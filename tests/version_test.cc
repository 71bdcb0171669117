// The generated version header agrees with itself and with the project's version.
#include "sessionctx/version.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sessionctx {
namespace {

TEST(Version, StringMatchesTheNumbers) {
  EXPECT_EQ(std::string(kVersion), absl::StrCat(SESSIONCTX_VERSION_MAJOR, ".",
                                                SESSIONCTX_VERSION_MINOR, ".",
                                                SESSIONCTX_VERSION_PATCH));
  EXPECT_EQ(SESSIONCTX_VERSION_MAJOR, 0);
  EXPECT_GE(SESSIONCTX_VERSION_MINOR, 2);
}

}  // namespace
}  // namespace sessionctx
