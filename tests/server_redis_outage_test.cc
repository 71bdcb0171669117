// The server in front of Redis when Redis stops or is killed mid-writes and comes
// back: requests during the outage are answered 503 (never a hang), /healthz keeps
// answering, /readyz follows Redis, the store reconnects by itself, and every write
// acknowledged over HTTP is in Redis afterwards. And the same in front of a Redis
// Cluster whose master is killed: 503 while its replica is elected, then everything
// continues. Stops the shared Redis test server and kills a master of the spare
// cluster: runs alone (SERIAL).
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/http_client.h"
#include "tests/redis_cluster_ctl.h"
#include "tests/server_process.h"
#include "tests/store_fixture.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Headers;
using testing::HttpConnection;
using testing::HttpReply;
using testing::ServerProcess;
using testing::TempDir;

// AttributeWriters: `n` threads, each setting its own attribute "<stem><t>" of the
// session at `path` to 1, 2, 3, … over one keep-alive connection; acked[t] is the
// last value the server acknowledged. A 503 is counted and retried after 5 ms.
class AttributeWriters {
 public:
  AttributeWriters(int port, const std::string& path, const Headers& headers,
                   const std::string& stem, int n)
      : acked(n, 0) {
    for (int t = 0; t < n; ++t) {
      threads_.emplace_back([=, this] {
        std::optional<HttpConnection> c;
        for (int i = 1; !stop_; ++i) {
          if (!c || !c->connected()) c.emplace(port);
          std::optional<HttpReply> r =
              c->Request("POST", path + "/attributes", headers,
                         absl::StrCat("{\"key\":\"", stem, t, "\",\"value\":", i, "}"));
          if (!r) {
            ++hung;
            c.reset();
          } else if (r->status / 100 == 2) {
            acked[t] = i;
            ++acks;
          } else if (r->status == 503) {
            ++refused;
            std::this_thread::sleep_for(milliseconds(5));
          } else {
            ++other;
          }
        }
      });
    }
  }
  ~AttributeWriters() { Stop(); }
  void Stop() {
    stop_ = true;
    for (std::thread& w : threads_) w.join();
    threads_.clear();
  }
  // Lost: the writers whose acknowledged value `context` lacks (after Stop).
  int Lost(const Json& context, const std::string& stem) const {
    int lost = 0;
    for (size_t t = 0; t < acked.size(); ++t) {
      const std::string name = absl::StrCat(stem, t);
      const int stored = context.contains(name) ? context[name].get<int>() : 0;
      EXPECT_GE(stored, acked[t]) << name << ": an acknowledged write was lost";
      lost += stored < acked[t];
    }
    return lost;
  }

  std::atomic<int> refused{0}, hung{0}, other{0}, acks{0};
  std::vector<int> acked;  // each written by its own thread; read after Stop

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

class ServerRedisOutage : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* ctl = std::getenv("SESSIONCTX_TEST_REDIS_CTL");
    if (testing::RedisTestUri().empty() || ctl == nullptr) {
      if (testing::InCi()) FAIL() << "SESSIONCTX_TEST_REDIS_URI / _CTL are not set";
      GTEST_SKIP() << "SESSIONCTX_TEST_REDIS_URI / _CTL are not set";
    }
    ctl_ = ctl;
    secret_file_ = (dir_.path() / "secret").string();
    std::ofstream(secret_file_) << "redis-outage-secret\n";
    const std::string store =
        testing::WithQuery(testing::RedisTestUri(),
                           "prefix=" + testing::FreshSchemaName() + ":&timeout_ms=500");
    ASSERT_TRUE(
        server_.Start(dir_.path().string(),
                      {"--listen", "127.0.0.1:0", "--store", store, "--jwt-secret-file",
                       secret_file_, "--threads", "4", "--access-log", "off"}));
    manage_ = {{"Authorization",
                "Bearer " + testing::MintToken(
                                secret_file_,
                                "--tenant acme --scope session_context.context_manage")}};
  }

  // Status of one request on a new connection; 0 when there is no answer in time.
  int StatusOf(const std::string& method, const std::string& target,
               const Headers& headers = {}, const std::string& body = "") {
    HttpConnection c(server_.port());
    if (!c.connected() || !c.Send(testing::FormatRequest(method, target, headers, body)))
      return 0;
    std::optional<HttpReply> r = c.Read(seconds(10));
    return r ? r->status : 0;
  }

  TempDir dir_;
  std::string ctl_;
  std::string secret_file_;
  ServerProcess server_;
  Headers manage_;
};

TEST_F(ServerRedisOutage, WritesDuringAnOutageAre503AndNothingAcknowledgedIsLost) {
  ASSERT_EQ(
      StatusOf("PUT", "/session-context/acme/context/o1?upsert=true", manage_, "{}"),
      204);
  for (const char* how : {"stop", "kill"}) {
    SCOPED_TRACE(how);
    AttributeWriters writers(server_.port(), "/session-context/acme/context/o1", manage_,
                             how, 4);
    std::this_thread::sleep_for(milliseconds(300));
    ASSERT_EQ(std::system(absl::StrCat(ctl_, " ", how, " >/dev/null").c_str()), 0);
    std::this_thread::sleep_for(milliseconds(300));
    EXPECT_EQ(StatusOf("GET", "/healthz"), 200);
    EXPECT_EQ(StatusOf("GET", "/readyz"), 503);
    EXPECT_EQ(StatusOf("GET", "/session-context/acme/context/o1", manage_), 503);
    ASSERT_EQ(std::system(absl::StrCat(ctl_, " start >/dev/null").c_str()), 0);
    int ready = 0;
    for (int i = 0; i < 100 && ready != 200; ++i) {
      ready = StatusOf("GET", "/readyz");
      if (ready != 200) std::this_thread::sleep_for(milliseconds(50));
    }
    EXPECT_EQ(ready, 200) << "not ready again after Redis came back";
    const int acks_at_restart = writers.acks;
    for (int i = 0; i < 200 && writers.acks < acks_at_restart + 50; ++i) {
      std::this_thread::sleep_for(milliseconds(20));
    }
    writers.Stop();
    EXPECT_GE(writers.acks.load(), acks_at_restart + 50) << "writes did not resume";
    EXPECT_GT(writers.refused.load(), 0) << "no write met the outage";
    EXPECT_EQ(writers.hung.load(), 0) << "a request got no answer";
    EXPECT_EQ(writers.other.load(), 0);

    HttpConnection c(server_.port());
    std::optional<HttpReply> r =
        c.Request("GET", "/session-context/acme/context/o1", manage_);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    const int lost = writers.Lost(Json::parse(r->body)["context"], how);
    std::printf(
        "redis %s under the server: %d writes acknowledged, %d answered 503 during the "
        "outage, %d without an answer, acknowledged writes lost: %d\n",
        how, writers.acks.load(), writers.refused.load(), writers.hung.load(), lost);
  }
  EXPECT_EQ(server_.Stop(), 0);
}

// A master of the spare cluster killed under writes over HTTP (durability=replicas:1,
// so that a write is acknowledged only once the replica has it): while the replica is
// elected, requests on the master's slots answer 503 and /readyz too; once it is
// master, /readyz is 200; once the old master is back as its replica, writes are
// acknowledged again; nothing acknowledged is lost.
TEST(ServerRedisClusterFailover,
     RequestsDuringTheElectionAre503AndNothingAcknowledgedIsLost) {
  if (testing::RedisSpareClusterUri().empty() || testing::ClusterCtl().empty()) {
    const char* why = "SESSIONCTX_TEST_REDIS_SPARE_URI / _CLUSTER_CTL are not set";
    if (testing::InCi()) FAIL() << why;
    GTEST_SKIP() << why;
  }
  ASSERT_TRUE(testing::WaitClusterOk("spare"));
  const auto [master, replica] = testing::ReplicatedMaster();
  ASSERT_NE(master, 0) << "no master with a replica in the spare cluster";
  ASSERT_TRUE(testing::WaitReplicaLinked(replica));
  TempDir dir;
  const std::string secret_file = (dir.path() / "secret").string();
  std::ofstream(secret_file) << "redis-cluster-failover-secret-0123456789abcdef\n";
  const std::string prefix = testing::FreshSchemaName() + ":";
  ServerProcess server;
  ASSERT_TRUE(server.Start(
      dir.path().string(),
      {"--listen", "127.0.0.1:0", "--store",
       testing::WithQuery(testing::RedisSpareClusterUri(),
                          "prefix=" + prefix + "&timeout_ms=500&durability=replicas:1"),
       "--jwt-secret-file", secret_file, "--threads", "4", "--access-log", "off"}));
  const Headers manage = {
      {"Authorization",
       "Bearer " +
           testing::MintToken(secret_file,
                              "--tenant acme --scope session_context.context_manage")}};
  auto status_of = [&](const std::string& target) {
    HttpConnection c(server.port());
    std::optional<HttpReply> r = c.Request("GET", target, manage);
    return r ? r->status : 0;
  };
  const std::string id = testing::SessionIdsOn(master, prefix, 1, "f").front();
  const std::string path = "/session-context/acme/context/" + id;
  {
    HttpConnection c(server.port());
    std::optional<HttpReply> r = c.Request("PUT", path + "?upsert=true", manage, "{}");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 204) << r->body;
  }

  AttributeWriters writers(server.port(), path, manage, "w", 2);
  std::this_thread::sleep_for(milliseconds(500));
  const int acks_before = writers.acks;
  ASSERT_EQ(std::system(absl::StrCat(testing::ClusterCtl(), " kill ", master).c_str()),
            0);
  const auto killed = std::chrono::steady_clock::now();
  EXPECT_EQ(status_of("/healthz"), 200);
  // /readyz: 503 while a slot's master is down, 200 once its replica serves them.
  bool unready = false;
  int ready = 0;
  for (int i = 0; i < 600 && !(unready && ready == 200); ++i) {
    ready = status_of("/readyz");
    unready |= ready == 503;
    if (ready != 200 || !unready) std::this_thread::sleep_for(milliseconds(20));
  }
  const double elected =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  EXPECT_TRUE(unready) << "never unready with a master down";
  EXPECT_EQ(ready, 200) << "not ready after the replica took over";
  EXPECT_EQ(status_of(path), 200);
  // The old master comes back as the new one's replica: writes are confirmed again.
  ASSERT_EQ(std::system(absl::StrCat(testing::ClusterCtl(), " start ", master).c_str()),
            0);
  ASSERT_TRUE(testing::WaitClusterOk("spare"));
  ASSERT_TRUE(testing::WaitReplicaLinked(master));
  const int acks_at_rejoin = writers.acks;
  for (int i = 0; i < 300 && writers.acks < acks_at_rejoin + 50; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  writers.Stop();
  EXPECT_GT(acks_before, 0);
  EXPECT_GE(writers.acks.load(), acks_at_rejoin + 50) << "writes did not resume";
  EXPECT_GT(writers.refused.load(), 0) << "no write met the failover";
  EXPECT_EQ(writers.hung.load(), 0) << "a request got no answer";
  EXPECT_EQ(writers.other.load(), 0) << "answers other than 2xx and 503";

  HttpConnection c(server.port());
  std::optional<HttpReply> r = c.Request("GET", path, manage);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  const int lost = writers.Lost(Json::parse(r->body)["context"], "w");
  std::printf(
      "redis cluster failover under the server (durability=replicas:1): ready again "
      "%.1f s after the kill; %d writes acknowledged, %d answered 503, %d without an "
      "answer, acknowledged writes lost: %d\n",
      elected, writers.acks.load(), writers.refused.load(), writers.hung.load(), lost);
  EXPECT_EQ(server.Stop(), 0);
}

}  // namespace
}  // namespace sessionctx
