// The server's flag table (apps/server_flags.h) against what it drives: the parser's
// defaults, the limits' and handler's own defaults, README.md's flag table and
// docs/server.md's limits table.
#include "apps/server_flags.h"

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sessionctx/http_handler.h"

namespace sessionctx::apps {
namespace {

std::string ReadDoc(const std::string& relative) {
  std::ifstream in(std::string(SESSIONCTX_SOURCE_DIR) + "/" + relative);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<ServerFlags> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "sessionctx-server");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseServerFlags(static_cast<int>(argv.size()), argv.data());
}

TEST(ServerFlags, DefaultsAreTheLimitsAndHandlerDefaults) {
  absl::StatusOr<ServerFlags> f = Parse({});
  ASSERT_TRUE(f.ok()) << f.status();
  const ServerLimits limits;
  EXPECT_EQ(f->limits.max_body_bytes, limits.max_body_bytes);
  EXPECT_EQ(f->limits.max_body_bytes, HandlerOptions{}.max_body_bytes);
  EXPECT_EQ(f->limits.max_header_bytes, limits.max_header_bytes);
  EXPECT_EQ(f->limits.max_header_count, limits.max_header_count);
  EXPECT_EQ(f->limits.max_url_bytes, limits.max_url_bytes);
  EXPECT_EQ(f->limits.max_connections, limits.max_connections);
  EXPECT_EQ(f->limits.request_timeout, limits.request_timeout);
  EXPECT_EQ(f->limits.idle_timeout, limits.idle_timeout);
  EXPECT_EQ(f->host, "127.0.0.1");
  EXPECT_EQ(f->port, 8080);
  EXPECT_EQ(f->store_uri, "rocksdb:./data/sessions");
  EXPECT_EQ(f->anonymous_ttl_seconds, 3600);
  EXPECT_FALSE(f->io_threads.has_value());
  EXPECT_FALSE(f->threads.has_value());
  EXPECT_EQ(f->metrics_port, -1);
}

TEST(ServerFlags, ValuesAreReadAndBadOnesNamed) {
  absl::StatusOr<ServerFlags> f =
      Parse({"--max-body=10", "--request-timeout", "0.5", "--threads", "0", "--metrics-listen",
             "127.0.0.1:9464", "--access-log", "json", "--listen", "[::1]:0"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->limits.max_body_bytes, 10u);
  EXPECT_EQ(f->limits.request_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(f->threads, 0);
  EXPECT_EQ(f->metrics_port, 9464);
  EXPECT_EQ(f->access_log, AccessLogFormat::kJson);
  EXPECT_EQ(f->host, "[::1]");
  for (auto [args, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--max-url", "0"}, "--max-url must be an integer of at least 1"},
           {{"--max-body", "-1"}, "--max-body must be a non-negative integer"},
           {{"--idle-timeout", "0"}, "--idle-timeout must be a positive number of seconds"},
           {{"--listen", "nowhere"}, "--listen must be HOST:PORT"},
           {{"--access-log", "xml"}, "--access-log must be off, text or json"},
           {{"--nope", "1"}, "unknown flag --nope"},
           {{"--jwks-file", "a", "--jwt-secret-file", "b"}, "give one of"}}) {
    absl::StatusOr<ServerFlags> bad = Parse(args);
    ASSERT_FALSE(bad.ok()) << args[0];
    EXPECT_NE(bad.status().message().find(message), std::string::npos) << bad.status();
  }
}

TEST(ServerFlags, ReadmeTableIsTheGeneratedOne) {
  const std::string readme = ReadDoc("README.md");
  const std::string table = ServerFlagsMarkdown();
  EXPECT_NE(readme.find(table), std::string::npos)
      << "README.md's flag table differs from the flag table in apps/server_flags.cc; "
         "replace it with:\n"
      << table;
}

TEST(ServerFlags, UsageListsEveryFlag) {
  const std::string usage = ServerUsage();
  for (size_t i = 0; i < kServerFlagCount; ++i) {
    EXPECT_NE(usage.find(std::string("--") + kServerFlags[i].name + " "), std::string::npos)
        << kServerFlags[i].name;
  }
}

// docs/server.md's rows "| `--flag ARG` | default | …": each names a flag of the table
// with its default.
TEST(ServerFlags, ServerDocRowsMatchTheTable) {
  const std::string doc = ReadDoc("docs/server.md");
  const std::regex row(R"(\n\| `--([a-z-]+) [^`]*` \| ([^|]+) \|)");
  int rows = 0;
  for (std::sregex_iterator it(doc.begin(), doc.end(), row), end; it != end; ++it) {
    const std::string name = (*it)[1], shown = (*it)[2];
    const FlagSpec* spec = nullptr;
    for (size_t i = 0; i < kServerFlagCount; ++i) {
      if (name == kServerFlags[i].name) spec = &kServerFlags[i];
    }
    ASSERT_NE(spec, nullptr) << "docs/server.md names an unknown flag --" << name;
    ASSERT_NE(spec->fallback, nullptr) << name;
    EXPECT_EQ(shown.substr(0, shown.find_last_not_of(' ') + 1), spec->fallback) << name;
    ++rows;
  }
  EXPECT_GE(rows, 7);  // the limits table
}

}  // namespace
}  // namespace sessionctx::apps
