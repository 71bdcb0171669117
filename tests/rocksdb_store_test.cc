// What the rocksdb: backend promises beyond the conformance suite: durability across a
// kill -9, reopen, DataLoss on undecodable bytes, one process at a time.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "backends/rocksdb/record_codec.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "sessionctx/session_service.h"
#include "sessionctx/session_store.h"
#include "sessionctx/store_factory.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

using testing::TempDir;

std::string Uri(const TempDir& dir, const std::string& query = "") {
  return "rocksdb:" + (dir.path() / "db").string() + query;
}

TEST(RocksDbStore, ReopenAfterCleanCloseKeepsEveryRecord) {
  TempDir dir;
  {
    auto store = OpenSessionStore(Uri(dir), StoreOptions{});
    ASSERT_OK(store);
    SessionService service(store->get(), ServiceOptions{});
    for (int i = 0; i < 100; ++i) {
      SessionContext s;
      s.session_id = absl::StrCat("s", i);
      s.customer_id = i % 2 ? std::optional<std::string>("c") : std::nullopt;
      ASSERT_OK(service.Create("acme", s));
      ASSERT_OK(service.SetAttribute({"acme", s.session_id}, "n", i));
    }
  }
  auto store = OpenSessionStore(Uri(dir), StoreOptions{});
  ASSERT_OK(store);
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<SessionContext> s = (*store)->Get({"acme", absl::StrCat("s", i)});
    ASSERT_OK(s);
    EXPECT_EQ(s->version, 2);
    EXPECT_EQ(s->context["n"], i);
    EXPECT_EQ(s->customer_id.has_value(), i % 2 == 1);
  }
}

TEST(RocksDbStore, UndecodableValueIsDataLoss) {
  TempDir dir;
  {
    auto store = OpenSessionStore(Uri(dir), StoreOptions{});
    ASSERT_OK(store);
    SessionService service(store->get(), ServiceOptions{});
    ASSERT_OK(service.Create("acme", SessionContext{.session_id = "bad"}));
    ASSERT_OK(service.Create("acme", SessionContext{.session_id = "good"}));
  }
  {
    // Overwrite the base record with garbage behind the library's back.
    rocksdb::Options options;
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {"expiry", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, (dir.path() / "db").string(), families, &handles, &db).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[0],
                        rocksdb_internal::BaseKey({"acme", "bad"}), "\x01\xc1garbage")
                    .ok());
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  auto store = OpenSessionStore(Uri(dir), StoreOptions{});
  ASSERT_OK(store);
  EXPECT_STATUS((*store)->Get({"acme", "bad"}), kDataLoss);
  EXPECT_STATUS((*store)->CompareAndSet({"acme", "bad"}, 1, SessionContext{.session_id = "bad"}),
                kDataLoss);
  EXPECT_OK((*store)->Get({"acme", "good"}));
  int visited = 0;
  ASSERT_OK((*store)->ForEach([&](const SessionKey&, const SessionContext&) {
    ++visited;
    return true;
  }));
  EXPECT_EQ(visited, 1);
}

TEST(RocksDbStore, SecondOpenOfSamePathFailsAtOnce) {
  TempDir dir;
  auto first = OpenSessionStore(Uri(dir), StoreOptions{});
  ASSERT_OK(first);
  const auto start = std::chrono::steady_clock::now();
  auto second = OpenSessionStore(Uri(dir), StoreOptions{});
  EXPECT_STATUS(second, kFailedPrecondition);
  EXPECT_NE(second.status().message().find("another process"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(RocksDbStore, UriOptionsAreChecked) {
  TempDir dir;
  EXPECT_OK(OpenSessionStore(Uri(dir, "?sync=true&cache_mb=8"), StoreOptions{}));
  EXPECT_STATUS(OpenSessionStore(Uri(dir, "?sync=maybe"), StoreOptions{}), kInvalidArgument);
  EXPECT_STATUS(OpenSessionStore(Uri(dir, "?bogus=1"), StoreOptions{}), kInvalidArgument);
  EXPECT_STATUS(OpenSessionStore("rocksdb:", StoreOptions{}), kInvalidArgument);
}

// --- crash durability --------------------------------------------------------------

// The child writes forever: creates sessions, adds attributes, patches; after each
// acknowledged write it reports "session version\n" to the parent.
[[noreturn]] void WriterChild(const std::string& uri, int fd, int round) {
  auto store = OpenSessionStore(uri, StoreOptions{});
  if (!store.ok()) _exit(3);
  ServiceOptions options;
  options.anonymous_ttl = absl::Hours(24);
  SessionService service(store->get(), options);
  std::mt19937 rng(round);
  for (int i = 0;; ++i) {
    const std::string id = absl::StrCat("r", round, "-", i % 50);
    int64_t version = 0;
    absl::StatusOr<SessionContext> current = service.Get({"acme", id});
    if (!current.ok()) {
      absl::StatusOr<SessionContext> created = service.Create("acme", SessionContext{.session_id = id});
      if (!created.ok()) _exit(4);
      version = created->version;
    } else if (rng() % 2) {
      absl::StatusOr<int64_t> v = service.SetAttribute({"acme", id}, absl::StrCat("a", i), i);
      if (!v.ok()) _exit(5);
      version = *v;
    } else {
      absl::StatusOr<int64_t> p = service.Patch(
          {"acme", id}, Json{{"context", {{"p", i}}}, {"metadata", {{"version", current->version}}}});
      if (!p.ok()) _exit(6);
      version = *p;
    }
    const std::string line = absl::StrCat(id, " ", version, "\n");
    if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(7);
  }
}

TEST(RocksDbDurability, KillNineLosesNoAcknowledgedWrite) {
  const char* env = std::getenv("SESSIONCTX_CRASH_ROUNDS");
  const int rounds = env ? std::atoi(env) : 5;
  TempDir dir;
  const std::string uri = Uri(dir);
  std::mt19937 rng(std::random_device{}());
  std::map<std::string, int64_t> acked;
  int64_t total_acks = 0;
  for (int round = 0; round < rounds; ++round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      WriterChild(uri, fds[1], round);
    }
    close(fds[1]);
    // Let it write for a random while, then kill it without warning.
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 400));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited early with " << WEXITSTATUS(status);
    // Everything it reported was acknowledged before the kill.
    FILE* in = fdopen(fds[0], "r");
    char id[128];
    long long version = 0;
    while (fscanf(in, "%127s %lld", id, &version) == 2) {
      acked[id] = std::max<int64_t>(acked[id], version);
      ++total_acks;
    }
    fclose(in);

    auto store = OpenSessionStore(uri, StoreOptions{});
    ASSERT_OK(store);
    for (const auto& [session, version] : acked) {
      absl::StatusOr<SessionContext> s = (*store)->Get({"acme", session});
      ASSERT_OK(s);
      EXPECT_GE(s->version, version) << session;
    }
    ASSERT_OK((*store)->ForEach([](const SessionKey&, const SessionContext&) { return true; }));
  }
  EXPECT_GT(total_acks, 0);
  std::printf("crash rounds: %d, acknowledged writes checked: %lld\n", rounds,
              static_cast<long long>(total_acks));
}

}  // namespace
}  // namespace sessionctx
