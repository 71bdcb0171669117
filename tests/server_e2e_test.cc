// End to end: the real sessionctx-server binary on a free loopback port, driven over
// HTTP through the README walk-through, then stopped with SIGTERM.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "sessionctx/jwt.h"
#include "sessionctx/session_context.h"
#include "tests/http_client.h"
#include "tests/password_redis.h"
#include "tests/server_process.h"
#include "tests/store_fixture.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

using testing::Fetch;
using testing::Headers;
using testing::HttpConnection;
using testing::RunCommand;
using testing::ServerProcess;
using testing::TempDir;

class ServerE2E : public ::testing::TestWithParam<std::string> {};

// StoreUri: the --store URI for a test parameter ("memory:", "rocksdb", "postgres",
// "redis", "redis_cluster"), with RocksDB under `dir`, PostgreSQL in a fresh schema and
// Redis under a fresh key prefix; "" when the test script started no such server.
std::string StoreUri(const std::string& param, const TempDir& dir) {
  if (param == "rocksdb") return "rocksdb:" + (dir.path() / "db").string();
  if (param == "redis" || param == "redis_cluster") {
    const std::string base =
        param == "redis" ? testing::RedisTestUri() : testing::RedisClusterTestUri();
    if (base.empty()) return "";
    return testing::WithQuery(base, "prefix=" + testing::FreshSchemaName() + ":");
  }
  if (param != "postgres") return param;
  if (testing::PostgresTestUri().empty()) return "";
  return testing::WithQuery(testing::PostgresTestUri(), "schema=" + testing::FreshSchemaName());
}

constexpr char kNoServer[] =
    "the backend's test server is not set (SESSIONCTX_TEST_PG_URI, "
    "SESSIONCTX_TEST_REDIS_URI, SESSIONCTX_TEST_REDIS_CLUSTER_URI)";

TEST_P(ServerE2E, ReadmeWalkThroughOverHttp) {
  TempDir dir;
  const std::string secret_file = (dir.path() / "secret").string();
  std::ofstream(secret_file) << "e2e-secret\n";
  std::string store = StoreUri(GetParam(), dir);
  if (store.empty()) {
    if (testing::InCi()) FAIL() << kNoServer;
    GTEST_SKIP() << kNoServer;
  }
  ServerProcess server;
  ASSERT_TRUE(server.Start(dir.path().string(),
                           {"--listen", "127.0.0.1:0", "--store", store, "--jwt-secret-file",
                            secret_file}));
  const std::string ctl = SESSIONCTL_BIN;
  const std::string manage = RunCommand(ctl + " token --secret-file " + secret_file +
                                 " --tenant acme --scope session_context.context_manage");
  const std::string session =
      RunCommand(ctl + " token --secret-file " + secret_file + " --tenant acme --session s1");
  ASSERT_FALSE(manage.empty());
  ASSERT_FALSE(session.empty());

  // One keep-alive connection carries the whole walk-through.
  HttpConnection http(server.port());
  ASSERT_TRUE(http.connected());
  const Headers as_manager = {{"Authorization", "Bearer " + manage}};
  const Headers as_shopper = {{"Authorization", "Bearer " + session}};

  auto health = http.Request("GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto ready = http.Request("GET", "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);

  auto put = http.Request("PUT", "/session-context/acme/context/s1?upsert=true", as_manager,
                          R"({"siteCode":"main","currency":"EUR","language":"en"})");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 204);

  auto get = http.Request("GET", "/session-context/acme/me/context", as_shopper);
  ASSERT_TRUE(get);
  ASSERT_EQ(get->status, 200);
  EXPECT_EQ(get->Header("ETag"), "\"1\"");
  EXPECT_EQ(get->Header("Content-Type"), "application/json");
  Json record = Json::parse(get->body);
  EXPECT_EQ(record["currency"], "EUR");
  EXPECT_EQ(record["metadata"]["version"], 1);

  auto patch = http.Request("PATCH", "/session-context/acme/me/context", as_shopper,
                            R"({"currency":"CHF","metadata":{"version":1}})");
  ASSERT_TRUE(patch);
  EXPECT_EQ(patch->status, 204);

  auto stale = http.Request("PATCH", "/session-context/acme/me/context", as_shopper,
                            R"({"currency":"USD","metadata":{"version":1}})");
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->status, 409);
  EXPECT_EQ(Json::parse(stale->body)["code"], 409);

  auto add = http.Request("POST", "/session-context/acme/me/context/attributes", as_shopper,
                          R"({"key":"gift wrap","value":true})");
  ASSERT_TRUE(add);
  EXPECT_EQ(add->status, 201);
  EXPECT_EQ(add->body, "\"gift wrap\"");

  auto del =
      http.Request("DELETE", "/session-context/acme/me/context/attributes/gift%20wrap", as_shopper);
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 204);

  auto final_get = http.Request("GET", "/session-context/acme/context/s1", as_manager);
  ASSERT_TRUE(final_get);
  Json final_record = Json::parse(final_get->body);
  EXPECT_EQ(final_record["currency"], "CHF");
  EXPECT_EQ(final_record["metadata"]["version"], 4);
  EXPECT_EQ(final_record["context"], Json::object());

  // README's login: the management PUT gives s1 its customer, with the customer's
  // token as saas-token; then s1 answers that token and no longer the anonymous one.
  const std::string customer_s1 = RunCommand(ctl + " token --secret-file " + secret_file +
                                             " --tenant acme --session s1 --customer c1");
  Headers login_headers = as_manager;
  login_headers.emplace_back("saas-token", customer_s1);
  auto login_s1 = http.Request(
      "PUT", "/session-context/acme/context/s1", login_headers,
      R"({"customerId":"c1","siteCode":"main","currency":"CHF","language":"en","metadata":{"version":4}})");
  ASSERT_TRUE(login_s1);
  EXPECT_EQ(login_s1->status, 204) << login_s1->body;
  auto as_c1 = http.Request("GET", "/session-context/acme/me/context",
                            {{"Authorization", "Bearer " + customer_s1}});
  ASSERT_TRUE(as_c1);
  EXPECT_EQ(as_c1->status, 200);
  EXPECT_EQ(Json::parse(as_c1->body)["customerId"], "c1");
  auto as_anonymous = http.Request("GET", "/session-context/acme/me/context", as_shopper);
  ASSERT_TRUE(as_anonymous);
  EXPECT_EQ(as_anonymous->status, 403);

  // The shopper logs in on a second device (s2), which signs out the others; then the
  // back office lists what is left and logs the customer out everywhere.
  const std::string customer = RunCommand(ctl + " token --secret-file " + secret_file +
                                          " --tenant acme --session s2 --customer c1");
  const Headers as_customer = {{"Authorization", "Bearer " + customer}};
  Headers with_saas = as_manager;
  with_saas.emplace_back("saas-token", customer);
  auto login = http.Request("PUT", "/session-context/acme/context/s2?upsert=true", with_saas,
                            R"({"customerId":"c1"})");
  ASSERT_TRUE(login);
  EXPECT_EQ(login->status, 204) << login->body;
  auto mine = http.Request("GET", "/session-context/acme/me/sessions", as_customer);
  ASSERT_TRUE(mine);
  ASSERT_EQ(mine->status, 200) << mine->body;
  Json listed = Json::parse(mine->body);
  ASSERT_EQ(listed["sessions"].size(), 2u) << mine->body;
  EXPECT_EQ(listed["sessions"][1]["sessionId"], "s2");
  EXPECT_EQ(listed["sessions"][1]["current"], true);
  auto others = http.Request("DELETE", "/session-context/acme/me/sessions?except=current",
                             as_customer);
  ASSERT_TRUE(others);
  EXPECT_EQ(others->status, 200);
  EXPECT_EQ(Json::parse(others->body), (Json{{"ended", 1}}));
  auto anonymous = http.Request("GET", "/session-context/acme/me/sessions", as_shopper);
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 403);
  auto left =
      http.Request("GET", "/session-context/acme/customers/c1/contexts", as_manager);
  ASSERT_TRUE(left);
  EXPECT_EQ(Json::parse(left->body)["sessions"].size(), 1u) << left->body;
  auto everywhere =
      http.Request("DELETE", "/session-context/acme/customers/c1/contexts", as_manager);
  ASSERT_TRUE(everywhere);
  EXPECT_EQ(Json::parse(everywhere->body), (Json{{"ended", 1}}));
  auto gone = http.Request("GET", "/session-context/acme/me/context", as_customer);
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404);

  auto too_big = http.Request("POST", "/session-context/acme/me/context/attributes", as_shopper,
                              std::string(70000, 'x'));
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->status, 413);
  EXPECT_EQ(Json::parse(too_big->body, nullptr, false)["code"], 413);
  EXPECT_EQ(too_big->Header("Connection"), "close");

  EXPECT_EQ(server.Stop(), 0);
  // The access log has a line per request, and never the token.
  const std::string log = server.Output();
  EXPECT_NE(log.find("PATCH /session-context/acme/me/context 409 "), std::string::npos) << log;
  EXPECT_EQ(log.find(session), std::string::npos);
}

// Concurrent clients over HTTP on one session: some add attributes, others increment
// a counter by read, PATCH on that version, retry on 409, while /metrics and /readyz are scraped.
// Nothing acknowledged is lost. (Also the server's run under ThreadSanitizer.)
TEST_P(ServerE2E, ConcurrentClientsLoseNoAcknowledgedWrite) {
  TempDir dir;
  const std::string secret_file = (dir.path() / "secret").string();
  std::ofstream(secret_file) << "e2e-secret-e2e-secret-e2e-secret\n";
  std::string store = StoreUri(GetParam(), dir);
  if (store.empty()) {
    if (testing::InCi()) FAIL() << kNoServer;
    GTEST_SKIP() << kNoServer;
  }
  ServerProcess server;
  ASSERT_TRUE(server.Start(dir.path().string(),
                           {"--listen", "127.0.0.1:0", "--store", store, "--jwt-secret-file",
                            secret_file, "--access-log", "off", "--threads", "4"}));
  const std::string secret = "e2e-secret-e2e-secret-e2e-secret";
  const int64_t exp = absl::ToUnixSeconds(absl::Now()) + 600;
  const std::string manage = *SignJwt(
      {{"tenant", "acme"}, {"scope", "session_context.context_manage"}, {"exp", exp}},
      JwtAlgorithm::kHS256, secret);
  const std::string shopper =
      *SignJwt({{"tenant", "acme"}, {"sessionId", "s1"}, {"exp", exp}}, JwtAlgorithm::kHS256, secret);
  auto put = Fetch(server.port(), "PUT", "/session-context/acme/context/s1?upsert=true",
                   {{"Authorization", "Bearer " + manage}}, R"({"context":{"n":0}})");
  ASSERT_TRUE(put);
  ASSERT_EQ(put->status, 204);

  constexpr int kWriters = 3, kAdds = 20, kIncrements = 10;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {  // attribute adds, each its own key
      HttpConnection c(server.port());
      for (int i = 0; i < kAdds; ++i) {
        auto r = c.Request("POST", "/session-context/acme/me/context/attributes",
                           {{"Authorization", "Bearer " + shopper}},
                           absl::StrCat(R"({"key":"w)", w, "-", i, R"(","value":)", i, "}"));
        if (!r || r->status != 201) ++failures;
      }
    });
    threads.emplace_back([&] {  // read, increment n, PATCH on that version; retry on 409
      HttpConnection c(server.port());
      const Headers auth = {{"Authorization", "Bearer " + shopper}};
      for (int i = 0; i < kIncrements; ++i) {
        for (int attempt = 0;; ++attempt) {
          auto get = c.Request("GET", "/session-context/acme/me/context", auth);
          if (!get || get->status != 200 || attempt > 200) {
            ++failures;
            return;
          }
          Json record = Json::parse(get->body);
          const int64_t n = record["context"]["n"].get<int64_t>();
          auto patch = c.Request("PATCH", "/session-context/acme/me/context", auth,
                                 Json{{"context", {{"n", n + 1}}},
                                      {"metadata", {{"version", record["metadata"]["version"]}}}}
                                     .dump());
          if (patch && patch->status == 204) break;
          if (!patch || patch->status != 409) {
            ++failures;
            return;
          }
        }
      }
    });
  }
  threads.emplace_back([&] {  // scrapes meanwhile
    for (int i = 0; i < 10; ++i) {
      auto m = Fetch(server.port(), "GET", "/metrics");
      auto r = Fetch(server.port(), "GET", "/readyz");
      if (!m || m->status != 200 || !r || r->status != 200) ++failures;
    }
  });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);

  auto get = Fetch(server.port(), "GET", "/session-context/acme/context/s1",
                   {{"Authorization", "Bearer " + manage}});
  ASSERT_TRUE(get);
  ASSERT_EQ(get->status, 200);
  Json record = Json::parse(get->body);
  EXPECT_EQ(record["context"]["n"], kWriters * kIncrements);
  EXPECT_EQ(record["context"].size(), size_t{1 + kWriters * kAdds});
  EXPECT_EQ(record["metadata"]["version"], 1 + kWriters * (kAdds + kIncrements));
  EXPECT_EQ(server.Stop(), 0);
}

#ifdef SESSIONCTX_HAVE_ROCKSDB
// sessionctl events prints the feed as JSON lines; --after resumes; a bad position
// is refused with its reason.
TEST(Sessionctl, EventsPrintsTheFeedAsJsonLinesAndResumesAfterAPosition) {
  TempDir dir;
  const std::string ctl = SESSIONCTL_BIN;
  const std::string a = "rocksdb:" + (dir.path() / "a").string();
  RunCommand(ctl + " put " + a + " acme s1 --json '{}'");
  RunCommand(ctl + " put " + a + " acme s1 --json '{\"currency\":\"CHF\"}'");
  RunCommand(ctl + " put " + a + " other s2 --json '{}'");
  RunCommand(ctl + " delete " + a + " acme s1");
  std::vector<Json> lines;
  for (absl::string_view line :
       absl::StrSplit(RunCommand(ctl + " events --store " + a), '\n')) {
    if (!line.empty()) lines.push_back(Json::parse(line, nullptr, false));
  }
  ASSERT_EQ(lines.size(), 4u);
  const char* types[] = {"created", "changed", "created", "deleted"};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(lines[i]["type"], types[i]);
    EXPECT_EQ(lines[i]["position"], std::to_string(i + 1));
  }
  EXPECT_EQ(lines[2]["tenant"], "other");
  EXPECT_EQ(lines[3]["version"], 2);
  const std::string acme_after_1 =
      RunCommand(ctl + " events " + a + " --tenant acme --after 1");
  EXPECT_EQ(std::count(acme_after_1.begin(), acme_after_1.end(), '\n'), 1)
      << "two lines: " << acme_after_1;
  EXPECT_EQ(acme_after_1.find("other"), std::string::npos) << acme_after_1;
  EXPECT_EQ(RunCommand(ctl + " events " + a + " --after now"), "");
  const std::string bad =
      RunCommand(ctl + " events " + a + " --after x 2>&1; echo rc=$?");
  EXPECT_NE(bad.find("event position must be a number"), std::string::npos) << bad;
  EXPECT_NE(bad.find("rc=2"), std::string::npos) << bad;
}

TEST(Sessionctl, PutGetExportImportDeletePurge) {
  TempDir dir;
  const std::string ctl = SESSIONCTL_BIN;
  const std::string a = "rocksdb:" + (dir.path() / "a").string();
  const std::string b = "rocksdb:" + (dir.path() / "b").string();
  const std::string put = RunCommand(
      ctl + " put --store " + a +
      " --tenant acme --session s1 --json '{\"currency\":\"EUR\",\"context\":{\"k\":[1,2]}}'");
  EXPECT_EQ(Json::parse(put, nullptr, false)["metadata"]["version"], 1) << put;
  RunCommand(ctl + " put " + a + " acme s2 --json '{\"customerId\":\"c1\"}'");
  Json got = Json::parse(RunCommand(ctl + " get " + a + " acme s1"), nullptr, false);
  EXPECT_EQ(got["currency"], "EUR");
  EXPECT_EQ(got["context"]["k"], Json::array({1, 2}));

  const std::string file = (dir.path() / "export.jsonl").string();
  RunCommand(ctl + " export --store " + a + " --out " + file + " 2>/dev/null");
  std::ifstream in(file);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) ++lines;
  EXPECT_EQ(lines, 2);

  // Import into another store, with one bad line in the middle.
  const std::string with_bad = (dir.path() / "bad.jsonl").string();
  {
    std::ifstream src(file);
    std::ofstream dst(with_bad);
    std::string first;
    std::getline(src, first);
    dst << first << "\n{not json\n";
    dst << src.rdbuf();
  }
  const std::string report = RunCommand(ctl + " import --store " + b + " --in " + with_bad +
                                        " 2>&1; echo exit=$?");
  EXPECT_NE(report.find("line 2:"), std::string::npos) << report;
  EXPECT_NE(report.find("imported 2 sessions, 0 skipped (stored at a newer version), 1 lines failed"), std::string::npos) << report;
  EXPECT_NE(report.find("exit=1"), std::string::npos) << report;
  Json imported = Json::parse(RunCommand(ctl + " get " + b + " acme s1"), nullptr, false);
  EXPECT_EQ(imported, got);
  Json customer = Json::parse(RunCommand(ctl + " get " + b + " acme s2"), nullptr, false);
  EXPECT_EQ(customer["customerId"], "c1");
  // The import indexed s2 under its customer: listed, then logged out everywhere.
  const std::string listed =
      RunCommand(ctl + " sessions " + b + " --tenant acme --customer c1 2>/dev/null");
  Json summary = Json::parse(listed, nullptr, false);
  EXPECT_EQ(summary["sessionId"], "s2") << listed;
  EXPECT_EQ(summary["version"], 1) << listed;
  EXPECT_NE(RunCommand(ctl + " logout " + b + " --tenant acme --customer c1 --except s9")
                .find("ended 1 sessions"),
            std::string::npos);
  EXPECT_EQ(
      RunCommand(ctl + " sessions " + b + " --tenant acme --customer c1 2>/dev/null"),
      "");
  EXPECT_NE(RunCommand(ctl + " sessions " + b + " --tenant acme 2>&1; echo exit=$?")
                .find("--customer is required"),
            std::string::npos);

  EXPECT_NE(RunCommand(ctl + " delete " + b + " acme s1; echo exit=$?").find("exit=0"),
            std::string::npos);
  EXPECT_NE(RunCommand(ctl + " get " + b + " acme s1 2>&1; echo exit=$?").find("exit=2"),
            std::string::npos);
  EXPECT_NE(RunCommand(ctl + " purge-expired " + b).find("purged 0"), std::string::npos);
  EXPECT_NE(RunCommand(ctl + " frobnicate 2>&1; echo exit=$?").find("exit=2"), std::string::npos);
}

// Imports go in batches (one WriteBatch each here); a session that appears twice ends
// as its later line says, a re-run changes nothing, and a bad line costs only itself.
void ImportInBatchesIsIdempotentAndTheLaterLineWins(const std::string& store, const TempDir& dir) {
  const std::string ctl = SESSIONCTL_BIN;
  const std::string file = (dir.path() / "in.jsonl").string();
  constexpr int kSessions = 4500;  // more than two batches
  {
    std::ofstream out(file);
    for (int i = 0; i < kSessions; ++i) {
      Json session = {{"sessionId", absl::StrCat("s", i)},
                      {"currency", "EUR"},
                      {"context", {{"i", i}}},
                      {"metadata",
                       {{"version", 3}, {"createdAt", "2026-11-01T10:00:00.000Z"},
                        {"modifiedAt", "2026-11-01T10:05:00.000Z"}}}};
      out << Json{{"tenant", "acme"}, {"expiresAt", "2099-01-01T00:00:00.000Z"}, {"session", session}}
                 .dump()
          << "\n";
      if (i == 2100) out << "{\"tenant\":\"acme\"}\n";  // no session: line 2102 fails
    }
    Json again = {{"sessionId", "s7"}, {"currency", "CHF"}, {"context", Json::object()},
                  {"metadata", {{"version", 9}, {"createdAt", "2026-11-01T10:00:00.000Z"},
                                {"modifiedAt", "2026-11-02T10:00:00.000Z"}}}};
    out << Json{{"tenant", "acme"}, {"expiresAt", "2099-01-01T00:00:00.000Z"}, {"session", again}}
               .dump()
        << "\n";
  }
  for (int run = 0; run < 2; ++run) {
    SCOPED_TRACE(run);
    const std::string report =
        RunCommand(ctl + " import --store " + store + " --in " + file + " 2>&1; echo exit=$?");
    EXPECT_NE(report.find("line 2102: session is missing"), std::string::npos) << report;
    // The second run finds s7 at version 9, and skips its earlier line (version 3).
    EXPECT_NE(report.find(run == 0 ? absl::StrCat("imported ", kSessions + 1,
                                                  " sessions, 0 skipped (stored at a newer "
                                                  "version), 1 lines failed")
                                   : absl::StrCat("imported ", kSessions,
                                                  " sessions, 1 skipped (stored at a newer "
                                                  "version), 1 lines failed")),
              std::string::npos)
        << report;
    EXPECT_NE(report.find("exit=1"), std::string::npos) << report;
    Json s7 = Json::parse(RunCommand(ctl + " get " + store + " acme s7"), nullptr, false);
    EXPECT_EQ(s7["currency"], "CHF");
    EXPECT_EQ(s7["metadata"]["version"], 9);
    Json s4000 = Json::parse(RunCommand(ctl + " get " + store + " acme s4000"), nullptr, false);
    EXPECT_EQ(s4000["context"]["i"], 4000);
    EXPECT_EQ(s4000["metadata"]["version"], 3);
  }
  // An older state of s7 never moves it back, unless the operator says --overwrite.
  const std::string older = (dir.path() / "older.jsonl").string();
  {
    Json s7 = {{"sessionId", "s7"}, {"currency", "USD"}, {"context", Json::object()},
               {"metadata", {{"version", 2}, {"createdAt", "2026-11-01T10:00:00.000Z"},
                             {"modifiedAt", "2026-11-01T11:00:00.000Z"}}}};
    std::ofstream(older) << Json{{"tenant", "acme"}, {"expiresAt", "2099-01-01T00:00:00.000Z"},
                                 {"session", s7}}.dump() << "\n";
  }
  std::string report =
      RunCommand(ctl + " import --store " + store + " --in " + older + " 2>&1; echo exit=$?");
  EXPECT_NE(report.find("imported 0 sessions, 1 skipped"), std::string::npos) << report;
  EXPECT_NE(report.find("exit=0"), std::string::npos) << report;
  EXPECT_EQ(Json::parse(RunCommand(ctl + " get " + store + " acme s7"), nullptr, false)["metadata"]["version"], 9);
  report = RunCommand(ctl + " import --overwrite --store " + store + " --in " + older + " 2>&1; echo exit=$?");
  EXPECT_NE(report.find("imported 1 sessions, 0 skipped"), std::string::npos) << report;
  Json s7 = Json::parse(RunCommand(ctl + " get " + store + " acme s7"), nullptr, false);
  EXPECT_EQ(s7["metadata"]["version"], 2);
  EXPECT_EQ(s7["currency"], "USD");

  const std::string exported = (dir.path() / "out.jsonl").string();
  RunCommand(ctl + " export --store " + store + " --out " + exported + " 2>/dev/null");
  std::ifstream in(exported);
  int lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  EXPECT_EQ(lines, kSessions);
}

// A line as export writes it has its context kept as text, without a DOM; the same
// session written any other way (spacing, member order, escapes, number forms) imports
// to the same record, and a bad field in either form is named.
TEST(Sessionctl, ImportTakesExportLinesAndHandWrittenOnesAlike) {
  TempDir dir;
  const std::string ctl = SESSIONCTL_BIN;
  const std::string store = "rocksdb:" + (dir.path() / "db").string();
  const std::string context =
      R"({"cart":{"qty":2,"sku":"sku-1"},"name":"Zoë \"Z\"","price":406.56,"tags":[true,null]})";
  auto session = [&](const std::string& id, const std::string& ctx,
                     const std::string& currency) {
    return absl::StrCat(
        R"({"expiresAt":"2099-01-01T00:00:00.000Z","session":{"context":)", ctx,
        R"(,"currency":")", currency,
        R"(","metadata":{"createdAt":"2026-11-18T10:00:00.000Z","modifiedAt":"2026-11-18T10:00:00.000Z","version":3},"sessionId":")",
        id, R"("},"tenant":"acme"})");
  };
  const std::string by_hand =
      R"({ "tenant": "acme", "session": {"sessionId":"hand", "currency":"EUR", "context": {"tags":[true, null], "price":406.560, "name":"Zo\u00eb \"Z\"", "cart":{"sku":"sku-1","qty":2}}, "metadata":{"version":3,"createdAt":"2026-11-18T10:00:00.000Z","modifiedAt":"2026-11-18T10:00:00.000Z"}}, "expiresAt":"2099-01-01T00:00:00.000Z" })";
  const std::string file = (dir.path() / "in.jsonl").string();
  {
    std::ofstream out(file);
    out << session("canonical", context, "EUR") << "\n"
        << by_hand << "\n"
        << session("bad-currency", context, "eur") << "\n"
        << session("big-number", R"({"n":12345678901234567890})", "EUR") << "\n";
  }
  const std::string report = RunCommand(ctl + " import --store " + store + " --in " +
                                        file + " 2>&1; echo exit=$?");
  EXPECT_NE(report.find("line 3: "), std::string::npos) << report;
  EXPECT_NE(report.find("currency"), std::string::npos) << report;
  EXPECT_NE(
      report.find(
          "imported 3 sessions, 0 skipped (stored at a newer version), 1 lines failed"),
      std::string::npos)
      << report;
  Json canonical =
      Json::parse(RunCommand(ctl + " get " + store + " acme canonical"), nullptr, false);
  Json hand =
      Json::parse(RunCommand(ctl + " get " + store + " acme hand"), nullptr, false);
  ASSERT_TRUE(canonical.is_object()) << canonical;
  EXPECT_EQ(canonical["context"], Json::parse(context));
  EXPECT_EQ(canonical["metadata"]["version"], 3);
  canonical["sessionId"] = "hand";
  EXPECT_EQ(hand, canonical);
  Json big =
      Json::parse(RunCommand(ctl + " get " + store + " acme big-number"), nullptr, false);
  EXPECT_EQ(big["context"]["n"], Json::parse("12345678901234567890"));
}

TEST(Sessionctl, ImportInBatchesIsIdempotentAndTheLaterLineWins) {
  TempDir dir;
  ImportInBatchesIsIdempotentAndTheLaterLineWins("rocksdb:" + (dir.path() / "db").string(), dir);
}

#ifdef SESSIONCTX_HAVE_REDIS
// The same on redis:// (pipelined batches of scripts).
TEST(Sessionctl, ImportOnRedisIsIdempotentAndTheLaterLineWins) {
  TempDir dir;
  const std::string store = StoreUri("redis", dir);
  if (store.empty()) {
    if (testing::InCi()) FAIL() << kNoServer;
    GTEST_SKIP() << kNoServer;
  }
  ImportInBatchesIsIdempotentAndTheLaterLineWins(store, dir);
}
#endif

TEST(ServerRestart, AcknowledgedWritesSurviveRestartOnRocksDb) {
  TempDir dir;
  const std::string secret_file = (dir.path() / "secret").string();
  std::ofstream(secret_file) << "e2e-secret\n";
  const std::string store = "rocksdb:" + (dir.path() / "db").string();
  const std::string manage = RunCommand(std::string(SESSIONCTL_BIN) + " token --secret-file " +
                                 secret_file + " --tenant acme --scope session_context.context_manage");
  const Headers as_manager = {{"Authorization", "Bearer " + manage}};
  {
    ServerProcess server;
    ASSERT_TRUE(server.Start(dir.path().string(), {"--listen", "127.0.0.1:0", "--store", store,
                                                   "--jwt-secret-file", secret_file}));
    HttpConnection http(server.port());
    for (int i = 0; i < 20; ++i) {
      auto r = http.Request("PUT", absl::StrCat("/session-context/acme/context/k", i, "?upsert=true"),
                            as_manager, R"({"currency":"EUR"})");
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 204);
    }
    EXPECT_EQ(server.Stop(), 0);
  }
  ServerProcess server;
  ASSERT_TRUE(server.Start(dir.path().string(), {"--listen", "127.0.0.1:0", "--store", store,
                                                 "--jwt-secret-file", secret_file}));
  HttpConnection http(server.port());
  for (int i = 0; i < 20; ++i) {
    auto r = http.Request("GET", absl::StrCat("/session-context/acme/context/k", i), as_manager);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(server.Stop(), 0);
}
#endif

// A pod limited to one CPU (here by its affinity mask, as `taskset -c 0` sets it)
// gets one event loop, and the start-up line says why.
TEST(ServerContainer, UnderTasksetOfOneCoreItRunsOneIoThread) {
  TempDir dir;
  const std::string secret_file = (dir.path() / "secret").string();
  std::ofstream(secret_file) << "cpu-secret\n";
  ServerProcess server("/usr/bin/taskset");
  ASSERT_TRUE(server.Start(dir.path().string(),
                           {"-c", "0", SESSIONCTX_SERVER_BIN, "--listen", "127.0.0.1:0", "--store",
                            "rocksdb:" + (dir.path() / "db").string(), "--jwt-secret-file",
                            secret_file}));
  const std::string out = server.Output();
  EXPECT_NE(out.find(", 1 I/O thread, 2 handler threads; 1 CPU usable: "), std::string::npos)
      << out;
  EXPECT_NE(out.find("sched_getaffinity allows 1"), std::string::npos) << out;
  EXPECT_EQ(server.Stop(), 0);
}

// --log-format json: the server's own messages are JSON lines on stderr; the JSON access
// log carries the trace id of a request's traceparent.
TEST(ServerLogs, JsonMessagesOnStderrAndTheTraceIdInTheAccessLog) {
  TempDir dir;
  const std::string secret_file = (dir.path() / "secret").string();
  std::ofstream(secret_file) << "log-secret\n";
  ServerProcess server;
  server.CaptureStderr();
  ASSERT_TRUE(server.Start(dir.path().string(),
                           {"--listen", "127.0.0.1:0", "--store", "memory:",
                            "--jwt-secret-file", secret_file, "--log-format", "json",
                            "--access-log", "json"}));
  auto r = Fetch(server.port(), "GET", "/healthz",
                 {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}});
  ASSERT_TRUE(r);
  ASSERT_TRUE(testing::WaitUntil(
      [&] { return server.Output().find("\"path\":\"/healthz\"") != std::string::npos; }));
  EXPECT_EQ(server.Stop(), 0);
  bool listening = false, access = false, stopped = false;
  for (absl::string_view line : absl::StrSplit(server.Output(), '\n', absl::SkipEmpty())) {
    const Json j = Json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not a JSON line: " << line;
    if (j.contains("level")) {
      EXPECT_TRUE(j.contains("time")) << line;
      listening = listening || absl::StartsWith(j.value("message", ""), "listening on 127.0.0.1:");
      stopped = stopped || j.value("message", "") == "stopped";
    } else {
      access = j.value("path", "") == "/healthz";
      EXPECT_EQ(j.value("trace_id", ""), "4bf92f3577b34da6a3ce929d0e0e4736") << line;
    }
  }
  EXPECT_TRUE(listening && access && stopped) << server.Output();
}

// A store that cannot be opened is named in the error, its password is not.
TEST(ServerLogs, AStoreThatCannotBeOpenedIsNamedWithoutItsPassword) {
  TempDir dir;
  const std::string secret_file = (dir.path() / "secret").string();
  std::ofstream(secret_file) << "log-secret\n";
  ServerProcess server;
  server.CaptureStderr();
  EXPECT_FALSE(server.Start(dir.path().string(),
                            {"--listen", "127.0.0.1:0", "--store",
                             absl::StrCat("redis://app:hunter2@127.0.0.1:", testing::FreePort(),
                                          "?timeout_ms=300"),
                             "--jwt-secret-file", secret_file}));
  ASSERT_TRUE(testing::WaitUntil(
      [&] { return server.Output().find("cannot open store") != std::string::npos; }));
  const std::string out = server.Output();
  EXPECT_NE(out.find("cannot open store redis://app:***@127.0.0.1:"), std::string::npos) << out;
  EXPECT_EQ(out.find("hunter2"), std::string::npos) << out;
}

// A pod's configuration: every flag from the environment, the store's password from a
// file; nothing secret on the command line, in the output or in the process's argv.
TEST(ServerConfig, FlagsFromTheEnvironmentAndTheStorePasswordFromAFile) {
  testing::PasswordRedis redis;
  ASSERT_TRUE(redis.ready());
  TempDir dir;
  const std::string secret_file = (dir.path() / "secret").string();
  std::ofstream(secret_file) << "env-secret\n";
  const std::string password_file = (dir.path() / "redis-password").string();
  std::ofstream(password_file) << testing::PasswordRedis::kPassword << "\n";
  const std::string store = absl::StrCat("redis://127.0.0.1:", redis.port(), "?prefix=envtest:");
  setenv("SESSIONCTX_LISTEN", "127.0.0.1:0", 1);
  setenv("SESSIONCTX_STORE", store.c_str(), 1);
  setenv("SESSIONCTX_STORE_PASSWORD_FILE", password_file.c_str(), 1);
  setenv("SESSIONCTX_JWT_SECRET_FILE", secret_file.c_str(), 1);
  ServerProcess server;
  server.CaptureStderr();
  const bool started = server.Start(dir.path().string(), {});
  for (const char* v : {"SESSIONCTX_LISTEN", "SESSIONCTX_STORE", "SESSIONCTX_STORE_PASSWORD_FILE",
                        "SESSIONCTX_JWT_SECRET_FILE"}) {
    unsetenv(v);
  }
  ASSERT_TRUE(started) << server.Output();
  const std::string manage = RunCommand(std::string(SESSIONCTL_BIN) + " token --secret-file " +
                                        secret_file + " --tenant acme --scope " +
                                        "session_context.context_manage");
  auto put = Fetch(server.port(), "PUT", "/session-context/acme/context/env1?upsert=true",
                   {{"Authorization", "Bearer " + manage}, {"Content-Type", "application/json"}},
                   R"({"currency":"EUR"})");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 204) << put->body;
  std::ifstream cmdline("/proc/" + std::to_string(server.pid()) + "/cmdline");
  const std::string argv((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
  EXPECT_EQ(server.Stop(), 0);
  EXPECT_EQ(argv.find("s3:cret"), std::string::npos) << argv;
  EXPECT_EQ(server.Output().find("s3:cret"), std::string::npos) << server.Output();
  EXPECT_EQ(server.Output().find("s3%3Acret"), std::string::npos) << server.Output();
  EXPECT_NE(server.Output().find("store redis://:***@127.0.0.1:"), std::string::npos)
      << server.Output();
}

TEST(ServerKeys, DevelopmentSecretIsPrivateAndAnExposedOneIsRefused) {
  TempDir dir;
  {
    ServerProcess server;
    ASSERT_TRUE(server.Start(dir.path().string(), {"--listen", "127.0.0.1:0", "--store", "memory:"}));
    EXPECT_EQ(server.Stop(), 0);
  }
  const std::string secret = (dir.path() / "data" / "dev-jwt-secret").string();
  struct stat st;
  ASSERT_EQ(::stat(secret.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::filesystem::permissions(secret, std::filesystem::perms::group_read,
                               std::filesystem::perm_options::add);
  ServerProcess exposed;
  EXPECT_FALSE(exposed.Start(dir.path().string(), {"--listen", "127.0.0.1:0", "--store", "memory:"}))
      << "a group-readable development secret was used";
}

TEST(ServerKeys, IssuerAndAudienceAreCheckedWhenGiven) {
  TempDir dir;
  const std::string secret_file = (dir.path() / "secret").string();
  std::ofstream(secret_file) << "issuer-secret\n";
  ServerProcess server;
  ASSERT_TRUE(server.Start(dir.path().string(),
                           {"--listen", "127.0.0.1:0", "--store", "memory:", "--jwt-secret-file",
                            secret_file, "--jwt-issuer", "https://auth.example", "--jwt-audience",
                            "sessionctx"}));
  Json claims = {{"tenant", "acme"},
                 {"scope", "session_context.context_manage"},
                 {"exp", absl::ToUnixSeconds(absl::Now()) + 600}};
  auto status_with = [&](const Json& c) {
    const std::string token = *SignJwt(c, JwtAlgorithm::kHS256, "issuer-secret");
    auto r = Fetch(server.port(), "GET", "/session-context/acme/context/nobody",
                   {{"Authorization", "Bearer " + token}});
    return r ? r->status : 0;
  };
  EXPECT_EQ(status_with(claims), 401);
  claims["iss"] = "https://auth.example";
  EXPECT_EQ(status_with(claims), 401);  // still no aud
  claims["aud"] = "sessionctx";
  EXPECT_EQ(status_with(claims), 404);  // accepted: the session just does not exist
  claims["iss"] = "https://evil.example";
  EXPECT_EQ(status_with(claims), 401);
  EXPECT_EQ(server.Stop(), 0);
}

std::vector<std::string> Stores() {
  std::vector<std::string> stores = {"memory:"};
#ifdef SESSIONCTX_HAVE_ROCKSDB
  stores.push_back("rocksdb");
#endif
#ifdef SESSIONCTX_HAVE_POSTGRES
  stores.push_back("postgres");
#endif
#ifdef SESSIONCTX_HAVE_REDIS
  stores.push_back("redis");
  stores.push_back("redis_cluster");
#endif
  return stores;
}

INSTANTIATE_TEST_SUITE_P(Stores, ServerE2E, ::testing::ValuesIn(Stores()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "memory:" ? std::string("memory") : info.param;
                         });

}  // namespace
}  // namespace sessionctx
