// Small helpers for tests: Debian's Abseil ships no status matchers.
#ifndef SESSIONCTX_TESTS_TEST_UTIL_H_
#define SESSIONCTX_TESTS_TEST_UTIL_H_

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace sessionctx::testing {

// RunCommand runs a shell command and returns its standard output (trailing newline
// stripped).
inline std::string RunCommand(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Shell: a command's standard output and error, without surrounding white space.
inline std::string Shell(const std::string& command) {
  const std::string out = RunCommand(command + " 2>&1");
  const size_t first = out.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return out.substr(first, out.find_last_not_of(" \t\r\n") - first + 1);
}

// WaitUntil polls `condition` every few milliseconds until it holds (true) or `limit`
// has passed (false). For a test that waits for something to happen: the limit is
// only there so that a test fails instead of hanging, never what a test measures.
inline bool WaitUntil(const std::function<bool()>& condition,
                      std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

#define SCTX_CONCAT_INNER(a, b) a##b
#define SCTX_CONCAT(a, b) SCTX_CONCAT_INNER(a, b)

#define ASSERT_OK(expr)                                                             \
  do {                                                                              \
    const auto& SCTX_CONCAT(_st, __LINE__) = (expr);                                \
    ASSERT_TRUE(::sessionctx::testing::StatusOf(SCTX_CONCAT(_st, __LINE__)).ok())   \
        << ::sessionctx::testing::StatusOf(SCTX_CONCAT(_st, __LINE__));             \
  } while (0)

#define EXPECT_OK(expr)                                                             \
  do {                                                                              \
    const auto& SCTX_CONCAT(_st, __LINE__) = (expr);                                \
    EXPECT_TRUE(::sessionctx::testing::StatusOf(SCTX_CONCAT(_st, __LINE__)).ok())   \
        << ::sessionctx::testing::StatusOf(SCTX_CONCAT(_st, __LINE__));             \
  } while (0)

#define EXPECT_STATUS(expr, code_)                                                  \
  do {                                                                              \
    const auto& SCTX_CONCAT(_st, __LINE__) = (expr);                                \
    EXPECT_EQ(::sessionctx::testing::StatusOf(SCTX_CONCAT(_st, __LINE__)).code(),   \
              absl::StatusCode::code_)                                              \
        << ::sessionctx::testing::StatusOf(SCTX_CONCAT(_st, __LINE__));             \
  } while (0)

// TempDir makes a fresh directory under the system temp folder and removes it when
// destroyed.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("sessionctx-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// PostgresTestUri: the server the test script started, from SESSIONCTX_TEST_PG_URI.
// Empty when unset.
inline std::string PostgresTestUri() {
  const char* uri = std::getenv("SESSIONCTX_TEST_PG_URI");
  return uri ? uri : "";
}

// RedisTestUri: the Redis server the test script started (scripts/with-redis.sh), from
// SESSIONCTX_TEST_REDIS_URI. Empty when unset.
inline std::string RedisTestUri() {
  const char* uri = std::getenv("SESSIONCTX_TEST_REDIS_URI");
  return uri ? uri : "";
}

// RedisClusterTestUri: the three-master Redis Cluster the test script started
// (scripts/with-redis-cluster.sh), from SESSIONCTX_TEST_REDIS_CLUSTER_URI; empty when
// unset. RedisSpareClusterUri: the other one, with a replica, whose slots the tests
// move and whose master they kill (SESSIONCTX_TEST_REDIS_SPARE_URI).
inline std::string RedisClusterTestUri() {
  const char* uri = std::getenv("SESSIONCTX_TEST_REDIS_CLUSTER_URI");
  return uri ? uri : "";
}
inline std::string RedisSpareClusterUri() {
  const char* uri = std::getenv("SESSIONCTX_TEST_REDIS_SPARE_URI");
  return uri ? uri : "";
}

// InCi: CI=true, where a test that needs a server must fail, never skip.
inline bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

}  // namespace sessionctx::testing

#endif  // SESSIONCTX_TESTS_TEST_UTIL_H_
