// The server in front of Redis when Redis stops or is killed mid-writes and comes
// back: requests during the outage are answered 503 (never a hang), /healthz keeps
// answering, /readyz follows Redis, the store reconnects by itself, and every write
// acknowledged over HTTP is in Redis afterwards. Stops the shared Redis test server:
// runs alone (SERIAL).
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
    // Each writer sets its own attribute to 1, 2, 3, … on one keep-alive connection;
    // acked[t] is the last value the server acknowledged.
    constexpr int kWriters = 4;
    std::atomic<bool> stop{false};
    std::atomic<int> refused{0}, hung{0}, other{0}, acks{0};
    std::vector<int> acked(kWriters, 0);
    std::vector<std::thread> writers;
    for (int t = 0; t < kWriters; ++t) {
      writers.emplace_back([&, t] {
        std::optional<HttpConnection> c;
        for (int i = 1; !stop; ++i) {
          if (!c || !c->connected()) c.emplace(server_.port());
          std::optional<HttpReply> r =
              c->Request("POST", "/session-context/acme/context/o1/attributes", manage_,
                         absl::StrCat("{\"key\":\"", how, t, "\",\"value\":", i, "}"));
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
    const int acks_at_restart = acks;
    for (int i = 0; i < 200 && acks < acks_at_restart + 50; ++i) {
      std::this_thread::sleep_for(milliseconds(20));
    }
    stop = true;
    for (std::thread& w : writers) w.join();
    EXPECT_GE(acks.load(), acks_at_restart + 50) << "writes did not resume";
    EXPECT_GT(refused.load(), 0) << "no write met the outage";
    EXPECT_EQ(hung.load(), 0) << "a request got no answer";
    EXPECT_EQ(other.load(), 0);

    HttpConnection c(server_.port());
    std::optional<HttpReply> r =
        c.Request("GET", "/session-context/acme/context/o1", manage_);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    const Json context = Json::parse(r->body)["context"];
    int lost = 0;
    for (int t = 0; t < kWriters; ++t) {
      const std::string name = absl::StrCat(how, t);
      const int stored = context.contains(name) ? context[name].get<int>() : 0;
      EXPECT_GE(stored, acked[t]) << name << ": an acknowledged write was lost";
      lost += stored < acked[t];
    }
    std::printf(
        "redis %s under the server: %d writes acknowledged, %d answered 503 during the "
        "outage, %d without an answer, acknowledged writes lost: %d\n",
        how, acks.load(), refused.load(), hung.load(), lost);
  }
  EXPECT_EQ(server_.Stop(), 0);
}

}  // namespace
}  // namespace sessionctx
