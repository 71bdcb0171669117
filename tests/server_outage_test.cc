// The server in front of PostgreSQL when PostgreSQL goes away and comes back:
// /healthz keeps answering, /readyz says 503 during the outage and 200 after, and
// store calls blocked in the database never hold up the I/O threads.
#include <pqxx/pqxx>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "sessionctx/session_context.h"
#include "tests/http_client.h"
#include "tests/server_process.h"
#include "tests/store_fixture.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Fetch;
using testing::Headers;
using testing::HttpConnection;
using testing::HttpReply;
using testing::ServerProcess;
using testing::TempDir;

class ServerOutage : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::PostgresTestUri().empty()) {
      if (testing::InCi()) FAIL() << "SESSIONCTX_TEST_PG_URI is not set";
      GTEST_SKIP() << "SESSIONCTX_TEST_PG_URI is not set";
    }
    schema_ = testing::FreshSchemaName();
    secret_file_ = (dir_.path() / "secret").string();
    std::ofstream(secret_file_) << "outage-secret\n";
    const std::string store = testing::WithQuery(
        testing::PostgresTestUri(),
        "schema=" + schema_ + "&connect_timeout=2&acquire_timeout_ms=2000&statement_timeout_ms=20000");
    server_.CaptureStderr();  // the server's messages, as JSON lines
    ASSERT_TRUE(server_.Start(dir_.path().string(),
                              {"--listen", "127.0.0.1:0", "--store", store, "--jwt-secret-file",
                               secret_file_, "--threads", "4", "--log-format", "json"}));
    manage_ = {{"Authorization",
                "Bearer " + testing::MintToken(
                                secret_file_, "--tenant acme --scope session_context.context_manage")}};
  }

  // Status of one request on a new connection; 0 when there is no answer in time.
  int StatusOf(const std::string& method, const std::string& target, const Headers& headers = {},
               const std::string& body = "") {
    HttpConnection c(server_.port());
    if (!c.connected() || !c.Send(testing::FormatRequest(method, target, headers, body))) return 0;
    std::optional<HttpReply> r = c.Read(seconds(30));
    return r ? r->status : 0;
  }

  TempDir dir_;
  std::string schema_;
  std::string secret_file_;
  ServerProcess server_;
  Headers manage_;
};

TEST_F(ServerOutage, ReadyzFollowsTheDatabaseAndHealthzNeverTouchesIt) {
  const char* pg_ctl = std::getenv("SESSIONCTX_TEST_PG_CTL");
  if (pg_ctl == nullptr) {
    if (testing::InCi()) FAIL() << "SESSIONCTX_TEST_PG_CTL is not set";
    GTEST_SKIP() << "SESSIONCTX_TEST_PG_CTL is not set";
  }
  ASSERT_EQ(StatusOf("GET", "/readyz"), 200);
  ASSERT_EQ(StatusOf("PUT", "/session-context/acme/context/o1?upsert=true", manage_, "{}"), 204);

  ASSERT_EQ(std::system(absl::StrCat(pg_ctl, " -m fast -w stop >/dev/null").c_str()), 0);
  EXPECT_EQ(StatusOf("GET", "/healthz"), 200);
  EXPECT_EQ(StatusOf("GET", "/readyz"), 503);
  Headers traced = manage_;
  traced.emplace_back("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_EQ(StatusOf("GET", "/session-context/acme/context/o1", traced), 503);
  EXPECT_EQ(StatusOf("GET", "/healthz"), 200);

  ASSERT_EQ(std::system(absl::StrCat(pg_ctl, " -w start >/dev/null").c_str()), 0);
  int ready = 0;
  for (int i = 0; i < 150 && ready != 200; ++i) {
    ready = StatusOf("GET", "/readyz");
    if (ready != 200) std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(ready, 200) << "not ready again after the database came back";
  EXPECT_EQ(StatusOf("GET", "/session-context/acme/context/o1", manage_), 200);
  EXPECT_EQ(server_.Stop(), 0);
  // The outage's store error is a JSON line that names the failed request's trace.
  bool traced_error = false;
  for (absl::string_view line : absl::StrSplit(server_.Output(), '\n', absl::SkipEmpty())) {
    const Json j = Json::parse(line, nullptr, false);
    if (j.is_object() && j.value("level", "") == "error" &&
        absl::StartsWith(j.value("message", ""), "store error: ") &&
        j.value("trace_id", "") == "0af7651916cd43dd8448eb211c80319c") {
      traced_error = true;
    }
  }
  EXPECT_TRUE(traced_error) << server_.Output();
}

TEST_F(ServerOutage, StoreCallsBlockedInTheDatabaseDoNotHoldUpOthers) {
  ASSERT_EQ(StatusOf("PUT", "/session-context/acme/context/b1?upsert=true", manage_, "{}"), 204);
  // Another client locks the table: every store call now waits inside PostgreSQL.
  pqxx::connection locker(testing::PostgresTestUri());
  pqxx::work lock(locker);
  lock.exec("LOCK TABLE " + schema_ + ".sessions IN ACCESS EXCLUSIVE MODE");

  std::vector<std::thread> blocked;
  std::vector<int> statuses(4, -1);
  for (int i = 0; i < 4; ++i) {
    blocked.emplace_back([this, i, &statuses] {
      statuses[i] = StatusOf("GET", "/session-context/acme/context/b1", manage_);
    });
  }
  std::this_thread::sleep_for(milliseconds(500));
  // Meanwhile the event loop is free: health checks and malformed requests are
  // answered at once.
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(StatusOf("GET", "/healthz"), 200);
    ASSERT_EQ(StatusOf("GET", "/" + std::string(9000, 'x')), 414);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(10));
  for (int s : statuses) EXPECT_EQ(s, -1) << "a blocked call finished while the lock was held";

  lock.abort();  // the lock goes; the blocked calls complete
  for (std::thread& t : blocked) t.join();
  for (int s : statuses) EXPECT_EQ(s, 200);
  EXPECT_EQ(server_.Stop(), 0);
}

}  // namespace
}  // namespace sessionctx
