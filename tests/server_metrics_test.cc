// GET /metrics from outside: after a known set of requests the counters say exactly
// that, labels hold route templates (never a session id), refusals are counted by
// limit, and the separate metrics listener works.
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/http_client.h"
#include "tests/server_process.h"
#include "tests/store_fixture.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

using testing::Fetch;
using testing::Headers;
using testing::HttpConnection;
using testing::HttpReply;
using testing::ServerProcess;
using testing::TempDir;

// Samples: "name{labels}" → value, from the Prometheus text format.
std::map<std::string, double> ParseSamples(const std::string& text) {
  std::map<std::string, double> samples;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos || !absl::SimpleAtod(line.substr(space + 1), &value)) {
      continue;
    }
    samples[std::string(line.substr(0, space))] = value;
  }
  return samples;
}

class ServerMetricsTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> extra = {}) {
    secret_file_ = (dir_.path() / "secret").string();
    std::ofstream(secret_file_) << "metrics-secret\n";
    std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--store", "memory:",
                                     "--jwt-secret-file", secret_file_};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(server_.Start(dir_.path().string(), args));
    manage_ = {{"Authorization",
                "Bearer " + testing::MintToken(
                                secret_file_, "--tenant acme --scope session_context.context_manage")}};
    shopper_ = {{"Authorization",
                 "Bearer " + testing::MintToken(secret_file_, "--tenant acme --session s1")}};
  }

  TempDir dir_;
  std::string secret_file_;
  ServerProcess server_;
  Headers manage_, shopper_;
};

TEST_F(ServerMetricsTest, CountsAreExactlyTheRequestsMade) {
  Start();
  const int port = server_.port();
  HttpConnection c(port);
  ASSERT_EQ(c.Request("PUT", "/session-context/acme/context/s1?upsert=true", manage_,
                      R"({"currency":"EUR"})")->status, 204);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(c.Request("GET", "/session-context/acme/me/context", shopper_)->status, 200);
  }
  ASSERT_EQ(c.Request("PATCH", "/session-context/acme/me/context", shopper_,
                      R"({"currency":"CHF","metadata":{"version":1}})")->status, 204);
  ASSERT_EQ(c.Request("PATCH", "/session-context/acme/me/context", shopper_,
                      R"({"currency":"USD","metadata":{"version":1}})")->status, 409);
  ASSERT_EQ(c.Request("GET", "/session-context/acme/context/nobody", manage_)->status, 404);
  ASSERT_EQ(c.Request("GET", "/healthz")->status, 200);
  ASSERT_EQ(c.Request("GET", "/healthz")->status, 200);
  ASSERT_EQ(c.Request("GET", "/no/such/thing")->status, 404);
  ASSERT_EQ(Fetch(port, "GET", "/" + std::string(9000, 'x'))->status, 414);

  auto scrape = Fetch(port, "GET", "/metrics");
  ASSERT_TRUE(scrape);
  ASSERT_EQ(scrape->status, 200);
  EXPECT_EQ(scrape->Header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::map<std::string, double> m = ParseSamples(scrape->body);
  auto requests = [&](const std::string& method, const std::string& route, int status) {
    const std::string key = "sessionctx_http_requests_total{method=\"" + method + "\",route=\"" +
                            route + "\",status=\"" + std::to_string(status) + "\"}";
    auto it = m.find(key);
    return it == m.end() ? 0.0 : it->second;
  };
  const std::string own = "/session-context/{tenant}/me/context";
  const std::string managed = "/session-context/{tenant}/context/{sessionId}";
  EXPECT_EQ(requests("PUT", managed, 204), 1);
  EXPECT_EQ(requests("GET", own, 200), 3);
  EXPECT_EQ(requests("PATCH", own, 204), 1);
  EXPECT_EQ(requests("PATCH", own, 409), 1);
  EXPECT_EQ(requests("GET", managed, 404), 1);
  EXPECT_EQ(requests("GET", "/healthz", 200), 2);
  EXPECT_EQ(requests("GET", "unmatched", 404), 1);
  EXPECT_EQ(requests("GET", "unmatched", 414), 1);
  EXPECT_EQ(m.at("sessionctx_http_refused_total{limit=\"url\"}"), 1);
  EXPECT_EQ(m.at("sessionctx_http_refused_total{limit=\"body\"}"), 0);
  EXPECT_EQ(m.at("sessionctx_http_request_duration_seconds_count{route=\"" + own + "\"}"), 5);
  // `c` and the scrape's own are open; the 414's may still be closing.
  EXPECT_GE(m.at("sessionctx_http_open_connections"), 2);
  EXPECT_LE(m.at("sessionctx_http_open_connections"), 3);
  // The store's side: the PATCHes reached the store once each, one of them stale.
  EXPECT_EQ(m.at("sessionctx_store_operations_total{backend=\"memory\",operation=\"patch\",outcome=\"ok\"}"), 1);
  EXPECT_EQ(m.at("sessionctx_store_operations_total{backend=\"memory\",operation=\"patch\",outcome=\"conflict\"}"), 1);
  EXPECT_EQ(m.at("sessionctx_memory_sessions{backend=\"memory\"}"), 1);
  // Route templates only: no session id, no tenant, no raw path in any label.
  EXPECT_EQ(scrape->body.find("s1"), std::string::npos);
  EXPECT_EQ(scrape->body.find("nobody"), std::string::npos);
  EXPECT_EQ(scrape->body.find("acme"), std::string::npos);
  EXPECT_EQ(scrape->body.find("no/such"), std::string::npos);
}

#ifdef SESSIONCTX_HAVE_ROCKSDB
// On rocksdb a GET of a session in RocksDB's memtable or block cache is answered on the
// I/O thread that read it; only writes (and reads that would touch the disk) are handed
// to the handler threads.
TEST_F(ServerMetricsTest, CachedReadsAreAnsweredWithoutAHandOff) {
  Start({"--store", "rocksdb:" + (dir_.path() / "db").string()});
  const int port = server_.port();
  HttpConnection c(port);
  ASSERT_EQ(c.Request("PUT", "/session-context/acme/context/s1?upsert=true", manage_,
                      R"({"currency":"EUR"})")->status, 204);
  auto handed_off = [&] {
    return ParseSamples(Fetch(port, "GET", "/metrics")->body).at("sessionctx_http_handed_off_total");
  };
  const double after_put = handed_off();
  EXPECT_EQ(after_put, 1);  // the write
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(c.Request("GET", "/session-context/acme/me/context", shopper_)->status, 200);
  }
  EXPECT_EQ(handed_off(), after_put);
  ASSERT_EQ(c.Request("PATCH", "/session-context/acme/me/context", shopper_,
                      R"({"currency":"CHF","metadata":{"version":1}})")->status, 204);
  EXPECT_EQ(handed_off(), after_put + 1);
  const auto m = ParseSamples(Fetch(port, "GET", "/metrics")->body);
  EXPECT_EQ(m.at("sessionctx_http_requests_total{method=\"GET\",route=\"/session-context/{tenant}/me/context\",status=\"200\"}"), 20);
}
#endif

#ifdef SESSIONCTX_HAVE_REDIS
// On redis a GET is read asynchronously: answered when Redis's answer arrives, without
// the handler threads; writes still go to them. The store counts the reads as gets.
TEST_F(ServerMetricsTest, RedisReadsAreAnsweredAsynchronouslyWithoutAHandOff) {
  if (testing::RedisTestUri().empty()) {
    if (testing::InCi()) FAIL() << "SESSIONCTX_TEST_REDIS_URI is not set";
    GTEST_SKIP() << "SESSIONCTX_TEST_REDIS_URI is not set";
  }
  Start({"--store", testing::WithQuery(testing::RedisTestUri(),
                                       "prefix=" + testing::FreshSchemaName() + ":")});
  const int port = server_.port();
  HttpConnection c(port);
  ASSERT_EQ(c.Request("PUT", "/session-context/acme/context/s1?upsert=true", manage_,
                      R"({"currency":"EUR"})")
                ->status,
            204);
  auto handed_off = [&] {
    return ParseSamples(Fetch(port, "GET", "/metrics")->body)
        .at("sessionctx_http_handed_off_total");
  };
  const double after_put = handed_off();
  EXPECT_EQ(after_put, 1);  // the write
  for (int i = 0; i < 20; ++i) {
    std::optional<HttpReply> r =
        c.Request("GET", "/session-context/acme/me/context", shopper_);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    EXPECT_EQ(nlohmann::json::parse(r->body)["currency"], "EUR");
  }
  // A missing session is answered the same way: 404.
  EXPECT_EQ(c.Request("GET", "/session-context/acme/context/nobody", manage_)->status,
            404);
  EXPECT_EQ(handed_off(), after_put);
  ASSERT_EQ(c.Request("PATCH", "/session-context/acme/me/context", shopper_,
                      R"({"currency":"CHF","metadata":{"version":1}})")
                ->status,
            204);
  EXPECT_EQ(handed_off(), after_put + 1);
  const auto m = ParseSamples(Fetch(port, "GET", "/metrics")->body);
  EXPECT_EQ(m.at("sessionctx_store_operations_total{backend=\"redis\",operation=\"get\","
                 "outcome=\"ok\"}"),
            20);
  EXPECT_GE(m.at("sessionctx_redis_round_trips_total{backend=\"redis\"}"), 1);
}
#endif

TEST_F(ServerMetricsTest, RefusalsAreCountedByLimit) {
  Start({"--max-body", "100"});
  const int port = server_.port();
  ASSERT_EQ(Fetch(port, "POST", "/session-context/acme/me/context/attributes", {},
                  std::string(200, 'x'))->status, 413);
  ASSERT_EQ(Fetch(port, "POST", "/session-context/acme/me/context/attributes",
                  {{"Content-Encoding", "gzip"}}, "{}")->status, 415);
  HttpConnection bad(port);
  ASSERT_TRUE(bad.Send("NOT HTTP\r\n\r\n"));
  ASSERT_EQ(bad.Read()->status, 400);
  const auto m = ParseSamples(Fetch(port, "GET", "/metrics")->body);
  EXPECT_EQ(m.at("sessionctx_http_refused_total{limit=\"body\"}"), 1);
  EXPECT_EQ(m.at("sessionctx_http_refused_total{limit=\"content_encoding\"}"), 1);
  EXPECT_EQ(m.at("sessionctx_http_refused_total{limit=\"malformed\"}"), 1);
  EXPECT_EQ(m.at("sessionctx_http_refused_total{limit=\"url\"}"), 0);
}

TEST_F(ServerMetricsTest, SeparateListenerServesOnlyMetrics) {
  Start({"--metrics-listen", "127.0.0.1:0"});
  const std::string out = server_.Output();
  const std::string marker = "metrics on 127.0.0.1:";
  const size_t at = out.find(marker);
  ASSERT_NE(at, std::string::npos) << out;
  int metrics_port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      out.substr(at + marker.size(), out.find('\n', at) - at - marker.size()), &metrics_port));
  EXPECT_EQ(Fetch(server_.port(), "GET", "/metrics")->status, 404);
  auto scrape = Fetch(metrics_port, "GET", "/metrics");
  ASSERT_TRUE(scrape);
  EXPECT_EQ(scrape->status, 200);
  EXPECT_NE(scrape->body.find("sessionctx_http_requests_total"), std::string::npos);
  EXPECT_EQ(Fetch(metrics_port, "GET", "/healthz")->status, 404);
  EXPECT_EQ(server_.Stop(), 0);
}

// A Prometheus in the cluster scrapes from another host. The server runs in a network
// namespace of this test's own where 192.0.2.1 (a documentation address) sits on the
// loopback device: a client bound to it is not a loopback client.
std::string MetricsStatusFromOtherHost(const std::string& secret, const std::string& flags) {
  const std::string script = absl::StrCat(
      "ip link set lo up && ip addr add 192.0.2.1/32 dev lo || exit 3; ", SESSIONCTX_SERVER_BIN,
      " --listen 0.0.0.0:8080 --store memory: --access-log off --jwt-secret-file ", secret, " ",
      flags, " >/dev/null 2>&1 & ",
      "until curl -s -o /dev/null http://127.0.0.1:8080/healthz; do ",
      "kill -0 \\$! 2>/dev/null || exit 4; sleep 0.01; done; ",
      "curl -s -o /dev/null -w '%{http_code} ' --interface 192.0.2.1 "
      "http://192.0.2.1:8080/metrics; ",
      "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/metrics; kill \\$!; wait");
  return testing::Shell("unshare -n sh -c \"" + script + "\"");
}

TEST_F(ServerMetricsTest, MetricsAllowLetsTheNamedNetworksScrapeTheMainPort) {
  secret_file_ = (dir_.path() / "secret").string();
  std::ofstream(secret_file_) << "metrics-secret\n";
  // Default: loopback only.
  EXPECT_EQ(MetricsStatusFromOtherHost(secret_file_, ""), "403 200");
  EXPECT_EQ(MetricsStatusFromOtherHost(secret_file_, "--metrics-allow 192.0.2.0/24,fd00::/8"),
            "200 200");
  EXPECT_EQ(MetricsStatusFromOtherHost(secret_file_, "--metrics-allow 198.51.100.0/24"), "403 200");
}

}  // namespace
}  // namespace sessionctx
