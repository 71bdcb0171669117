// The server's flag table (apps/server_flags.h) against what it drives: the parser's
// defaults, the limits' and handler's own defaults, README.md's flag table and
// docs/server.md's limits table.
#include "apps/server_flags.h"

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "apps/cpu_count.h"
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
           {{"--log-format", "xml"}, "--log-format must be text or json"},
           {{"--metrics-allow", "10.0.0.1/8"}, "--metrics-allow 10.0.0.1/8 has bits set past"},
           {{"--metrics-allow", "10.0.0.0/33"}, "prefix length must be 0 to 32"},
           {{"--metrics-allow", "pods"}, "pods is not an address range"},
           {{"--nope", "1"}, "unknown flag --nope"},
           {{"--jwks-file", "a", "--jwt-secret-file", "b"}, "give one of"}}) {
    absl::StatusOr<ServerFlags> bad = Parse(args);
    ASSERT_FALSE(bad.ok()) << args[0];
    EXPECT_NE(bad.status().message().find(message), std::string::npos) << bad.status();
  }
}

// A fake environment for ParseServerFlags.
const char* FakeEnv(const char* name) {
  static const std::map<std::string, std::string> env = {
      {"SESSIONCTX_STORE", "memory:"}, {"SESSIONCTX_MAX_BODY", "1234"},
      {"SESSIONCTX_ACCESS_LOG", ""},  // set but empty: not given
      {"SESSIONCTX_LISTEN", "127.0.0.1:9"}};
  auto it = env.find(name);
  return it == env.end() ? nullptr : it->second.c_str();
}

const char* BadEnv(const char* name) {
  return std::string(name) == "SESSIONCTX_IDLE_TIMEOUT" ? "soon" : nullptr;
}

TEST(ServerFlags, EveryFlagMayComeFromTheEnvironmentAndTheCommandLineWins) {
  EXPECT_EQ(FlagEnvName("max-body"), "SESSIONCTX_MAX_BODY");
  EXPECT_EQ(FlagEnvName("store-password-file"), "SESSIONCTX_STORE_PASSWORD_FILE");
  std::vector<std::string> args = {"sessionctx-server", "--listen", "127.0.0.1:7"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  absl::StatusOr<ServerFlags> f = ParseServerFlags(static_cast<int>(argv.size()), argv.data(), FakeEnv);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->store_uri, "memory:");
  EXPECT_EQ(f->limits.max_body_bytes, 1234u);
  EXPECT_EQ(f->port, 7);  // the flag, not SESSIONCTX_LISTEN
  EXPECT_EQ(f->access_log, AccessLogFormat::kText);  // empty: the default
  absl::StatusOr<ServerFlags> bad = ParseServerFlags(1, argv.data(), BadEnv);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("SESSIONCTX_IDLE_TIMEOUT must be a positive number"),
            std::string::npos)
      << bad.status();
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

TEST(IpNetwork, ContainsTheAddressesOfItsPrefixOnly) {
  absl::StatusOr<IpNetwork> pods = ParseIpNetwork("10.0.0.0/8");
  ASSERT_TRUE(pods.ok()) << pods.status();
  EXPECT_TRUE(pods->Contains("10.1.2.3"));
  EXPECT_TRUE(pods->Contains("::ffff:10.1.2.3"));  // IPv4 on an IPv6 socket
  EXPECT_FALSE(pods->Contains("11.0.0.1"));
  EXPECT_FALSE(pods->Contains("fd00::1"));
  EXPECT_FALSE(pods->Contains("not an address"));
  absl::StatusOr<IpNetwork> v6 = ParseIpNetwork("fd00::/8");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_TRUE(v6->Contains("fd12:3456::1"));
  EXPECT_FALSE(v6->Contains("fe80::1"));
  EXPECT_FALSE(v6->Contains("10.0.0.1"));
  absl::StatusOr<IpNetwork> odd = ParseIpNetwork("192.168.1.128/25");
  ASSERT_TRUE(odd.ok()) << odd.status();
  EXPECT_TRUE(odd->Contains("192.168.1.200"));
  EXPECT_FALSE(odd->Contains("192.168.1.127"));
  absl::StatusOr<IpNetwork> one = ParseIpNetwork("192.0.2.7");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_TRUE(one->Contains("192.0.2.7"));
  EXPECT_FALSE(one->Contains("192.0.2.8"));
  absl::StatusOr<std::vector<IpNetwork>> list = ParseIpNetworks("10.0.0.0/8, fd00::/8");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->size(), 2u);
  EXPECT_FALSE(ParseIpNetworks("10.0.0.0/8,").ok());
}

// --- the default thread counts: the CPUs the process may use ---------------------

TEST(CpuCount, CpuMaxIsAQuotaOverAPeriodRoundedUp) {
  EXPECT_EQ(CpuQuota("100000 100000\n"), 1);
  EXPECT_EQ(CpuQuota("150000 100000"), 2);
  EXPECT_EQ(CpuQuota("50000 100000"), 1);
  EXPECT_EQ(CpuQuota("max 100000"), std::nullopt);
  EXPECT_EQ(CpuQuota(""), std::nullopt);
  EXPECT_EQ(CpuQuota("0 100000"), std::nullopt);
}

// A cgroup tree on disk, as the kernel mounts it: the smallest quota of the process's
// cgroup and its parents counts.
TEST(CpuCount, TheCgroupQuotaOfTheProcessOrAParentCutsTheCount) {
  const std::filesystem::path root = std::filesystem::temp_directory_path() /
                                     ("cpu_count_" + std::to_string(getpid()));
  std::filesystem::create_directories(root / "kubepods" / "pod1");
  auto write = [](const std::filesystem::path& path, const std::string& text) {
    std::ofstream(path) << text;
  };
  write(root / "cpu.max", "max 100000\n");
  write(root / "kubepods" / "cpu.max", "100000 100000\n");
  write(root / "kubepods" / "pod1" / "cpu.max", "max 100000\n");
  write(root / "self-cgroup", "0::/kubepods/pod1\n");
  CpuCount cpus = UsableCpus(root.string(), (root / "self-cgroup").string());
  EXPECT_EQ(cpus.count, 1);
  EXPECT_NE(cpus.why.find("cgroup cpu.max allows 1"), std::string::npos) << cpus.why;
  // No quota anywhere: the cores the affinity mask allows.
  write(root / "kubepods" / "cpu.max", "max 100000\n");
  cpus = UsableCpus(root.string(), (root / "self-cgroup").string());
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  EXPECT_EQ(cpus.count, CPU_COUNT(&set)) << cpus.why;
  std::filesystem::remove_all(root);
}

// What `taskset -c 0` does: a process allowed one core counts one.
TEST(CpuCount, AnAffinityMaskOfOneCoreCountsOne) {
  const pid_t child = fork();
  if (child == 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    if (sched_setaffinity(0, sizeof(one), &one) != 0) _exit(2);
    _exit(UsableCpus("/nonexistent", "/nonexistent").count == 1 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace sessionctx::apps
