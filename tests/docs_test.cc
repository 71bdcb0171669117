// What the docs say that can be checked mechanically: every route of the route table
// is documented in docs/api.md with each of its methods, and every CMake option is in
// docs/embedding.md's options table.
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "sessionctx/http_routes.h"

namespace sessionctx {
namespace {

std::string ReadSource(const std::string& relative) {
  std::ifstream in(std::string(SESSIONCTX_SOURCE_DIR) + "/" + relative);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Docs, ApiMdDocumentsEveryRouteWithEachOfItsMethods) {
  const std::string api = ReadSource("docs/api.md");
  ASSERT_FALSE(api.empty());
  for (const RouteSpec& spec : kRoutes) {
    absl::string_view path = spec.path;
    absl::ConsumePrefix(&path, "/session-context/{tenant}");  // api.md's base path
    for (absl::string_view method : absl::StrSplit(spec.allow, ", ")) {
      const std::string shown = "`" + std::string(method) + " " + std::string(path);
      EXPECT_NE(api.find(shown), std::string::npos)
          << "docs/api.md does not document " << shown << "`";
    }
  }
}

TEST(Docs, EmbeddingMdListsEveryCmakeOption) {
  const std::string cmake = ReadSource("CMakeLists.txt");
  const std::string embedding = ReadSource("docs/embedding.md");
  ASSERT_FALSE(embedding.empty());
  const std::regex option(R"(option\((SESSIONCTX_[A-Z_]+))");
  int options = 0;
  for (auto it = std::sregex_iterator(cmake.begin(), cmake.end(), option);
       it != std::sregex_iterator(); ++it, ++options) {
    const std::string row = "| `" + (*it)[1].str() + "` |";
    EXPECT_NE(embedding.find(row), std::string::npos)
        << "docs/embedding.md's options table has no row " << row;
  }
  EXPECT_GE(options, 10);
}

}  // namespace
}  // namespace sessionctx
