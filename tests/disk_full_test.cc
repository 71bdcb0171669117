// A full disk under load, over HTTP with the real server on rocksdb: in a small
// filesystem (a tmpfs the test mounts), concurrent writers fill it while a reader
// reads. While it is full the server stays up: writes are 507, reads and /healthz are
// served, /readyz says why it is not ready. When space returns, writes resume without
// a restart; after a restart every acknowledged write is there.
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sessionctx/session_context.h"
#include "tests/http_client.h"
#include "tests/server_process.h"
#include "tests/small_filesystem.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

using testing::HttpConnection;
using testing::HttpReply;
using testing::ServerProcess;
using testing::SmallFilesystem;
using testing::TempDir;

constexpr int kSessions = 12;
constexpr int kWriters = 3;

std::string SessionPath(int i) { return absl::StrCat("/session-context/acme/context/s", i); }

TEST(DiskFull, RocksDbServerRefusesWritesKeepsReadingAndRecoversByItself) {
  SmallFilesystem fs(/*mib=*/10, /*ballast_mib=*/7);
  SESSIONCTX_REQUIRE_SMALL_FILESYSTEM(fs);
  TempDir dir;
  const std::string secret = (dir.path() / "secret").string();
  std::ofstream(secret) << "disk-full-secret-0123456789abcdef\n";
  const std::string store = "rocksdb:" + fs.path() + "/db";
  const std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--store", store,
                                         "--jwt-secret-file", secret, "--access-log", "off",
                                         "--purge-interval", "0"};
  ServerProcess server;
  ASSERT_TRUE(server.Start(dir.path().string(), args));
  const testing::Headers manage = {
      {"Authorization",
       "Bearer " + testing::MintToken(secret, "--tenant acme --scope session_context.context_manage")},
      {"Content-Type", "application/json"}};
  {
    HttpConnection c(server.port());
    for (int i = 0; i < kSessions; ++i) {
      std::optional<HttpReply> r = c.Request("PUT", SessionPath(i) + "?upsert=true", manage, "{}");
      ASSERT_TRUE(r && r->status == 204);
    }
  }

  // Fill: writers add 2 KB attributes until each has been refused 20 times; a reader
  // reads sessions and /healthz throughout.
  std::mutex mu;
  std::set<std::pair<int, std::string>> acked;  // (session, attribute) answered 204
  std::atomic<int> refused{0}, unexpected{0}, reads{0}, failed_reads{0};
  std::string first_unexpected;
  std::atomic<bool> writing{true};
  // Values that do not compress, so that RocksDB cannot flush them into the last few
  // KiB either: the disk stays full until the ballast goes.
  auto value_for = [](int t, int i) {
    std::string v = "\"";
    uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(t * 100003 + i + 1);
    for (int k = 0; k < 2000; ++k) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      v.push_back("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[x % 62]);
    }
    return v + "\"";
  };
  std::vector<std::thread> writers;
  for (int t = 0; t < kWriters; ++t) {
    writers.emplace_back([&, t] {
      auto c = std::make_unique<HttpConnection>(server.port());
      int mine = 0;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
      for (int i = 0; i < 20000 && mine < 20 && std::chrono::steady_clock::now() < deadline; ++i) {
        const int session = (t * 5 + i) % kSessions;
        const std::string key = absl::StrCat("w", t, "-", i);
        std::optional<HttpReply> r = c->Request("POST", SessionPath(session) + "/attributes", manage,
                                               absl::StrCat(R"({"key":")", key, R"(","value":)", value_for(t, i), "}"));
        if (r && r->status == 204) {
          std::lock_guard lock(mu);
          acked.emplace(session, key);
        } else if (r && r->status == 507 && absl::StrContains(r->body, "\"code\":507") &&
                   absl::StrContains(r->body, "out of space")) {
          ++mine;
          ++refused;
        } else {
          if (unexpected++ == 0) {
            std::lock_guard lock(mu);
            first_unexpected = r ? absl::StrCat(r->status, " ", r->body) : "no answer";
          }
          if (!r) c = std::make_unique<HttpConnection>(server.port());
        }
      }
    });
  }
  std::thread reader([&] {
    auto c = std::make_unique<HttpConnection>(server.port());
    for (int i = 0; writing && i < 100000; ++i) {
      std::optional<HttpReply> r = c->Request("GET", SessionPath(i % kSessions), manage);
      std::optional<HttpReply> h = c->Request("GET", "/healthz");
      ++reads;
      if (!r || r->status != 200 || !h || h->status != 200) {
        ++failed_reads;
        if (!r || !h) c = std::make_unique<HttpConnection>(server.port());
      }
    }
  });
  for (std::thread& w : writers) w.join();
  writing = false;
  reader.join();
  EXPECT_EQ(unexpected.load(), 0) << first_unexpected;
  EXPECT_EQ(failed_reads.load(), 0) << "of " << reads.load() << " reads";
  ASSERT_EQ(refused.load(), 20 * kWriters) << "the disk never filled";
  ASSERT_FALSE(acked.empty());

  // Full: not ready, and says why; reads served; the refusal counted.
  std::optional<HttpReply> ready = testing::Fetch(server.port(), "GET", "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_NE(ready->body.find("out of space"), std::string::npos) << ready->body;
  std::optional<HttpReply> metrics = testing::Fetch(server.port(), "GET", "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("sessionctx_rocksdb_writes_refused{backend=\"rocksdb\"} 1"),
            std::string::npos);
  std::optional<HttpReply> read = testing::Fetch(server.port(), "GET", SessionPath(0), manage);
  ASSERT_TRUE(read);
  EXPECT_EQ(read->status, 200);
  // Still full a second later: still refused (RocksDB's recovery cannot flush yet).
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::optional<HttpReply> still = testing::Fetch(server.port(), "POST", SessionPath(1) + "/attributes",
                                                  manage, R"({"key":"still","value":1})");
  ASSERT_TRUE(still);
  EXPECT_EQ(still->status, 507) << still->body;

  // Space returns (enough for RocksDB to flush what it holds in memory, which is what
  // its recovery writes first): writes resume by themselves, within seconds.
  fs.FreeBallast();
  const auto freed = std::chrono::steady_clock::now();
  int status = 0;
  {
    HttpConnection c(server.port());
    for (int i = 0; i < 200 && status != 204; ++i) {
      std::optional<HttpReply> r = c.Request("POST", SessionPath(0) + "/attributes", manage,
                                             R"({"key":"after","value":true})");
      status = r ? r->status : 0;
      if (status != 204) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  const double resumed_after =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - freed).count();
  ASSERT_EQ(status, 204) << "writes did not resume within 20 s of space returning";
  EXPECT_LT(resumed_after, 10.0);
  ready = testing::Fetch(server.port(), "GET", "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  std::printf("disk full: %zu writes acknowledged, %d refused with 507, %d reads served while "
              "filling, writes resumed %.1f s after space returned\n",
              acked.size(), refused.load(), reads.load(), resumed_after);

  // Restart: every acknowledged write is there.
  EXPECT_EQ(server.Stop(), 0);
  ServerProcess again;
  ASSERT_TRUE(again.Start(dir.path().string(), args));
  HttpConnection c(again.port());
  size_t lost = 0;
  for (int i = 0; i < kSessions; ++i) {
    std::optional<HttpReply> r = c.Request("GET", SessionPath(i), manage);
    ASSERT_TRUE(r && r->status == 200);
    const Json session = Json::parse(r->body, nullptr, false);
    for (const auto& [s, key] : acked) {
      if (s == i && !session["context"].contains(key)) ++lost;
    }
  }
  EXPECT_EQ(lost, 0u) << "of " << acked.size() << " acknowledged writes";
  EXPECT_EQ(again.Stop(), 0);
}

}  // namespace
}  // namespace sessionctx
