// The server's front door, from outside: the real binary on a loopback port, hostile
// and ordinary clients over raw sockets. Each limit test sends the hostile input,
// checks the answer, and checks that the server stayed small and answers others.
#include <signal.h>

#include <atomic>
#include <fstream>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "sessionctx/session_context.h"
#include "tests/http_client.h"
#include "tests/server_process.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Fetch;
using testing::FormatRequest;
using testing::Headers;
using testing::HttpConnection;
using testing::HttpReply;
using testing::ServerProcess;
using testing::TempDir;

class ServerLimits : public ::testing::Test {
 protected:
  // StartServer runs the server on `store` (default memory:) with `extra` flags.
  void StartServer(std::vector<std::string> extra = {}, std::string store = "memory:") {
    secret_file_ = (dir_.path() / "secret").string();
    std::ofstream(secret_file_) << "limits-secret\n";
    std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--store", store,
                                     "--jwt-secret-file", secret_file_};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(server_.Start(dir_.path().string(), args));
    port_ = server_.port();
    manage_ = {{"Authorization", "Bearer " + testing::MintToken(
                                               secret_file_,
                                               "--tenant acme --scope session_context.context_manage")}};
    shopper_ = {{"Authorization",
                 "Bearer " + testing::MintToken(secret_file_, "--tenant acme --session s1")}};
  }

  // Responsive: a new client is answered at once.
  void ExpectResponsive() {
    std::optional<HttpReply> r = Fetch(port_, "GET", "/healthz");
    ASSERT_TRUE(r) << "the server stopped answering";
    EXPECT_EQ(r->status, 200);
  }

  static void ExpectJsonError(const std::optional<HttpReply>& r, int status) {
    ASSERT_TRUE(r) << "no answer where " << status << " was expected";
    EXPECT_EQ(r->status, status);
    const Json body = Json::parse(r->body, nullptr, false);
    ASSERT_FALSE(body.is_discarded()) << r->body;
    EXPECT_EQ(body["code"], status);
    EXPECT_TRUE(body["message"].is_string());
    EXPECT_EQ(r->Header("Content-Type"), "application/json");
  }

  TempDir dir_;
  std::string secret_file_;
  ServerProcess server_;
  int port_ = 0;
  Headers manage_, shopper_;
};

TEST_F(ServerLimits, KeepAliveConnectionServesManyRequests) {
  StartServer();
  HttpConnection c(port_);
  auto put = c.Request("PUT", "/session-context/acme/context/s1?upsert=true", manage_,
                       R"({"currency":"EUR"})");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 204);
  EXPECT_FALSE(put->HasHeader("Content-Length")) << "a 204 carries no Content-Length";
  for (int i = 0; i < 200; ++i) {
    auto r = c.Request("GET", "/session-context/acme/me/context", shopper_);
    ASSERT_TRUE(r) << "request " << i;
    ASSERT_EQ(r->status, 200);
    EXPECT_EQ(Json::parse(r->body)["currency"], "EUR");
    EXPECT_FALSE(r->HasHeader("Connection"));
    EXPECT_FALSE(r->Header("Date").empty());
  }
}

TEST_F(ServerLimits, PipelinedRequestsAreAnsweredInOrder) {
  StartServer();
  HttpConnection c(port_);
  ASSERT_TRUE(c.Send(FormatRequest("GET", "/healthz") + FormatRequest("GET", "/nowhere") +
                     FormatRequest("GET", "/healthz")));
  auto a = c.Read(), b = c.Read(), d = c.Read();
  ASSERT_TRUE(a && b && d);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(b->status, 404);
  EXPECT_EQ(d->status, 200);
}

TEST_F(ServerLimits, HeadHealthzHasLengthButNoBody) {
  StartServer();
  HttpConnection c(port_);
  ASSERT_TRUE(c.Send(FormatRequest("HEAD", "/healthz") + FormatRequest("GET", "/healthz")));
  auto head = c.Read(seconds(10), /*head=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("Content-Length"), "15");
  EXPECT_EQ(head->body, "");
  auto get = c.Read();  // would be garbled if HEAD had sent a body
  ASSERT_TRUE(get);
  EXPECT_EQ(get->body, R"({"status":"ok"})");
}

TEST_F(ServerLimits, Http10WithoutKeepAliveIsClosedAfterTheAnswer) {
  StartServer();
  HttpConnection c(port_);
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.0\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("Connection"), "close");
  EXPECT_TRUE(c.ClosedWithin(seconds(5)));
}

TEST_F(ServerLimits, MalformedRequestIs400AndClosed) {
  StartServer();
  HttpConnection c(port_);
  ASSERT_TRUE(c.Send("THIS IS NOT HTTP\r\n\r\n"));
  auto r = c.Read();
  ExpectJsonError(r, 400);
  EXPECT_TRUE(c.ClosedWithin(seconds(5)));
  ExpectResponsive();
}

TEST_F(ServerLimits, HeaderBytesOverTheLimitAre431) {
  StartServer({"--max-header-bytes", "4096"});
  auto r = Fetch(port_, "GET", "/healthz", {{"X-Big", std::string(5000, 'a')}});
  ExpectJsonError(r, 431);
  // Far over: the server stops reading at its limit instead of buffering it all.
  const long rss_before = server_.RssKb();
  HttpConnection c(port_);
  std::string huge = "GET /healthz HTTP/1.1\r\nX-Huge: " + std::string(8 << 20, 'b') + "\r\n\r\n";
  c.Send(huge);  // the server may close before all of it is sent
  ExpectJsonError(c.Read(), 431);
  EXPECT_LT(server_.RssKb() - rss_before, 4 * 1024) << "the server buffered the 8 MiB header";
  ExpectResponsive();
  // Just under the limit is fine.
  auto ok = Fetch(port_, "GET", "/healthz", {{"X-Big", std::string(3000, 'a')}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(ServerLimits, TooManyHeaderFieldsAre431) {
  StartServer();
  Headers many;
  for (int i = 0; i < 101; ++i) many.emplace_back(absl::StrCat("X-H", i), "1");
  ExpectJsonError(Fetch(port_, "GET", "/healthz", many), 431);
  many.resize(98);  // with Host: 99 fields
  auto ok = Fetch(port_, "GET", "/healthz", many);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  // 20,000 fields: over the byte limit long before they are all read.
  std::string flood = "GET /healthz HTTP/1.1\r\n";
  for (int i = 0; i < 20000; ++i) absl::StrAppend(&flood, "X-", i, ": 1\r\n");
  HttpConnection c(port_);
  c.Send(flood + "\r\n");
  ExpectJsonError(c.Read(), 431);
  ExpectResponsive();
}

TEST_F(ServerLimits, LongTargetIs414) {
  StartServer();
  ExpectJsonError(Fetch(port_, "GET", "/session-context/acme/context/" + std::string(9000, 'x')),
                  414);
  HttpConnection c(port_);
  c.Send("GET /" + std::string(200000, 'x') + " HTTP/1.1\r\nHost: a\r\n\r\n");
  ExpectJsonError(c.Read(), 414);
  ExpectResponsive();
}

TEST_F(ServerLimits, DeclaredBodyOverTheLimitIs413BeforeTheBodyIsSent) {
  StartServer({"--max-body", "1000"});
  HttpConnection c(port_);
  // Only the header: the answer must not wait for 10 MB that never come.
  ASSERT_TRUE(c.Send("POST /session-context/acme/me/context/attributes HTTP/1.1\r\nHost: a\r\n"
                     "Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"));
  auto r = c.Read(seconds(5));
  ExpectJsonError(r, 413);
  EXPECT_EQ(r->Header("Connection"), "close");
  EXPECT_TRUE(c.ClosedWithin(seconds(5)));
}

TEST_F(ServerLimits, ChunkedBodyOverTheLimitIs413WhileItIsRead) {
  StartServer();
  const long rss_before = server_.RssKb();
  HttpConnection c(port_);
  ASSERT_TRUE(c.Send("POST /session-context/acme/me/context/attributes HTTP/1.1\r\nHost: a\r\n"
                     "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"));
  // Unauthenticated, and as much as 400 MB on offer: the answer comes after the first
  // 64 KiB, and the server stops reading soon after.
  const std::string chunk = absl::StrCat(absl::Hex(64 * 1024), "\r\n", std::string(64 * 1024, 'x'),
                                         "\r\n");
  size_t sent = 0;
  while (sent < (400u << 20) && c.Send(chunk)) {
    sent += chunk.size();
    if (sent > (64u << 20)) break;  // the server should have cut us off long before
  }
  EXPECT_LT(sent, 64u << 20) << "the server kept reading a body far over its limit";
  ExpectJsonError(c.Read(seconds(5)), 413);
  EXPECT_LT(server_.RssKb() - rss_before, 16 * 1024) << "the server grew with the body";
  ExpectResponsive();
}

TEST_F(ServerLimits, ChunkedBodyWithinTheLimitIsServed) {
  StartServer();
  ASSERT_EQ(Fetch(port_, "PUT", "/session-context/acme/context/s1?upsert=true", manage_, "{}")
                ->status,
            204);
  HttpConnection c(port_);
  ASSERT_TRUE(c.Send("POST /session-context/acme/me/context/attributes HTTP/1.1\r\nHost: a\r\n" +
                     shopper_[0].first + ": " + shopper_[0].second +
                     "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "b\r\n{\"key\":\"k\",\r\na\r\n\"value\":7}\r\n0\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "\"k\"");
}

TEST_F(ServerLimits, CompressedBodyIs415WithoutDecoding) {
  StartServer();
  auto r = Fetch(port_, "POST", "/session-context/acme/me/context/attributes",
                 {{"Content-Encoding", "gzip"}}, std::string(60000, '\0'));
  ExpectJsonError(r, 415);
  EXPECT_NE(r->body.find("gzip"), std::string::npos);
  ExpectResponsive();
}

TEST_F(ServerLimits, UnsupportedTransferCodingIsRefused) {
  StartServer();
  HttpConnection c(port_);
  ASSERT_TRUE(c.Send("POST /session-context/acme/me/context/attributes HTTP/1.1\r\nHost: a\r\n"
                     "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"));
  ExpectJsonError(c.Read(), 501);
}

TEST_F(ServerLimits, ExpectContinueGetsA100ThenTheAnswer) {
  StartServer();
  ASSERT_EQ(Fetch(port_, "PUT", "/session-context/acme/context/s1?upsert=true", manage_, "{}")
                ->status,
            204);
  HttpConnection c(port_);
  const std::string body = R"({"key":"k","value":1})";
  ASSERT_TRUE(c.Send(absl::StrCat(
      "POST /session-context/acme/me/context/attributes HTTP/1.1\r\nHost: a\r\n",
      shopper_[0].first, ": ", shopper_[0].second,
      "\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ",
      body.size(), "\r\n\r\n")));
  // The interim answer comes before any body byte is sent.
  char buf[64] = {};
  pollfd p{c.fd(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  const ssize_t n = recv(c.fd(), buf, sizeof(buf) - 1, 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(c.Send(body));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201);
}

TEST_F(ServerLimits, SlowClientIsCutOffAtTheRequestDeadline) {
  StartServer({"--request-timeout", "1"});
  HttpConnection c(port_);
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: a\r\n"));  // and never the end
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.ClosedWithin(seconds(10)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(900));
  // A trickle that keeps sending one byte at a time does not extend the deadline.
  HttpConnection t(port_);
  std::atomic<bool> cut{false};
  std::thread trickle([&] {
    const std::string req = FormatRequest("GET", "/healthz", {{"X-Pad", std::string(100, 'p')}});
    for (char ch : req) {
      if (!t.Send(std::string(1, ch))) break;
      std::this_thread::sleep_for(milliseconds(100));
      if (cut) break;
    }
  });
  EXPECT_TRUE(t.ClosedWithin(seconds(10)));
  cut = true;
  trickle.join();
}

TEST_F(ServerLimits, SlowClientsDoNotStallOthers) {
  StartServer({"--io-threads", "1", "--request-timeout", "30"});
  ASSERT_EQ(Fetch(port_, "PUT", "/session-context/acme/context/s1?upsert=true", manage_,
                  R"({"currency":"EUR"})")
                ->status,
            204);
  std::vector<HttpConnection> slow;
  for (int i = 0; i < 64; ++i) {
    slow.emplace_back(port_);
    ASSERT_TRUE(slow.back().Send("PATCH /session-context/acme/me/context HTTP/1.1\r\nHost: a"));
  }
  HttpConnection half(port_);
  ASSERT_TRUE(half.Send(FormatRequest("PUT", "/session-context/acme/context/s2?upsert=true",
                                      manage_, std::string(100, ' ')).substr(0, 200)));
  // Everyone else is served as usual while those 65 wait, on one I/O thread.
  HttpConnection c(port_);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) {
    auto r = c.Request("GET", "/session-context/acme/me/context", shopper_);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(10));
  ExpectResponsive();
}

TEST_F(ServerLimits, IdleKeepAliveConnectionIsClosed) {
  StartServer({"--idle-timeout", "1"});
  HttpConnection c(port_);
  auto r = c.Request("GET", "/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.ClosedWithin(seconds(10)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(900));
}

TEST_F(ServerLimits, ConnectionsOverTheCapAre503) {
  StartServer({"--max-connections", "3"});
  std::vector<HttpConnection> held;
  for (int i = 0; i < 3; ++i) {
    held.emplace_back(port_);
    auto r = held.back().Request("GET", "/healthz");  // each is open and served
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  HttpConnection over(port_);
  ASSERT_TRUE(over.connected());
  ExpectJsonError(over.Read(seconds(5)), 503);
  EXPECT_TRUE(over.ClosedWithin(seconds(5)));
  // Once one leaves, a newcomer is served again.
  held.pop_back();
  std::optional<HttpReply> r;
  for (int i = 0; i < 100 && !(r && r->status == 200); ++i) {
    std::this_thread::sleep_for(milliseconds(20));
    r = Fetch(port_, "GET", "/healthz");
  }
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  for (HttpConnection& h : held) {
    auto again = h.Request("GET", "/healthz");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 200);
  }
}

TEST_F(ServerLimits, ReadyzAnswers200WhenTheStoreAnswers) {
  StartServer();
  auto r = Fetch(port_, "GET", "/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(Json::parse(r->body)["status"], "ready");
  auto wrong = Fetch(port_, "POST", "/readyz", {}, "{}");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 405);
  EXPECT_EQ(wrong->Header("Allow"), "GET");
}

TEST_F(ServerLimits, AccessLogEscapesTheRequestLineAndNeverHoldsAToken) {
  StartServer({"--access-log", "json"});
  HttpConnection c(port_);
  ASSERT_TRUE(c.Send(FormatRequest("GET", "/caf\xc3\xa9/", shopper_)));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  ASSERT_TRUE(c.Send(FormatRequest("GET", "/session-context/acme/me/context?token=x", shopper_)));
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  // Control bytes in the request line: refused by the parser, never echoed.
  ASSERT_TRUE(c.Send("GET /x\x1b[31mred\x7f HTTP/1.1\r\nHost: a\r\n\r\n"));
  ExpectJsonError(c.Read(), 400);
  ASSERT_EQ(server_.Stop(), 0);
  const std::string out = server_.Output();
  EXPECT_EQ(out.find(shopper_[0].second.substr(7)), std::string::npos) << "token in the log";
  EXPECT_EQ(out.find("token=x"), std::string::npos) << "query string in the log";
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
  EXPECT_EQ(out.find('\x7f'), std::string::npos);
  EXPECT_EQ(out.find('\xc3'), std::string::npos);
  std::vector<Json> lines;
  for (const auto& line : absl::StrSplit(out, '\n')) {
    if (line.empty() || line[0] != '{') continue;
    lines.push_back(Json::parse(line, nullptr, false));
    ASSERT_FALSE(lines.back().is_discarded()) << line;
    EXPECT_TRUE(lines.back().contains("time") && lines.back().contains("remote") &&
                lines.back().contains("micros"));
  }
  ASSERT_EQ(lines.size(), 3u) << out;
  EXPECT_EQ(lines[0]["path"], "/caf\\xc3\\xa9/");
  EXPECT_EQ(lines[1]["path"], "/session-context/acme/me/context");
  EXPECT_EQ(lines[2]["status"], 400);
  EXPECT_EQ(lines[2]["path"], "-");
}

// ServerReadEverything: the server on `port` has accepted at least `connections`
// connections and read every byte sent on them (`ss`: no receive queue left on its
// side), so that what was sent is a request in flight, not bytes in a socket.
bool ServerReadEverything(int port, int connections) {
  const std::string out = testing::RunCommand(
      absl::StrCat("ss -Htn state established '( sport = :", port, " )'"));
  int seen = 0;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipWhitespace())) {
    ++seen;
    if (!absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "0 ")) return false;
  }
  return seen >= connections;
}

// Graceful stop: requests in flight when SIGTERM comes get their whole answer, idle
// connections are closed, new ones refused, and every acknowledged write is kept.
TEST_F(ServerLimits, SigtermLetsRequestsInFlightFinish) {
  const std::string store = "rocksdb:" + (dir_.path() / "db").string();
  StartServer({}, store);
  HttpConnection idle(port_);
  ASSERT_EQ(idle.Request("GET", "/healthz")->status, 200);
  constexpr int kInFlight = 8;
  std::vector<HttpConnection> busy;
  std::vector<std::string> rest;
  for (int i = 0; i < kInFlight; ++i) {
    busy.emplace_back(port_);
    const std::string req =
        FormatRequest("PUT", absl::StrCat("/session-context/acme/context/g", i, "?upsert=true"),
                      manage_, R"({"currency":"EUR","language":"en"})");
    const size_t half = req.size() - 10;  // the header and part of the body
    ASSERT_TRUE(busy.back().Send(req.substr(0, half)));
    rest.push_back(req.substr(half));
  }
  ASSERT_TRUE(testing::WaitUntil([&] { return ServerReadEverything(port_, kInFlight + 1); }))
      << "the server did not read what was sent within 60 s";
  server_.Signal(SIGTERM);
  EXPECT_TRUE(idle.ClosedWithin(seconds(5))) << "an idle connection stays open";
  bool refused = false;
  for (int i = 0; i < 100 && !refused; ++i) {
    refused = !HttpConnection(port_).connected();
    if (!refused) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(refused) << "new connections are still accepted";
  for (int i = 0; i < kInFlight; ++i) {
    ASSERT_TRUE(busy[i].Send(rest[i]));
    auto r = busy[i].Read();
    ASSERT_TRUE(r) << "request " << i << " in flight got no answer";
    EXPECT_EQ(r->status, 204);
    EXPECT_EQ(r->Header("Connection"), "close");
  }
  EXPECT_EQ(server_.Wait(), 0);

  ServerProcess again;
  ASSERT_TRUE(again.Start(dir_.path().string(), {"--listen", "127.0.0.1:0", "--store", store,
                                                 "--jwt-secret-file", secret_file_}));
  for (int i = 0; i < kInFlight; ++i) {
    auto r = Fetch(again.port(), "GET", absl::StrCat("/session-context/acme/context/g", i),
                   manage_);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << "acknowledged write " << i << " was lost";
  }
  EXPECT_EQ(again.Stop(), 0);
}

TEST_F(ServerLimits, ShutdownGraceBoundsAStalledRequest) {
  StartServer({"--shutdown-grace", "1"});
  HttpConnection stalled(port_);
  ASSERT_TRUE(stalled.Send("GET /healthz HTTP/1.1\r\nHost: a\r\n"));  // never finished
  ASSERT_TRUE(testing::WaitUntil([&] { return ServerReadEverything(port_, 1); }));
  const auto start = std::chrono::steady_clock::now();
  server_.Signal(SIGTERM);
  EXPECT_EQ(server_.Wait(seconds(10)), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
  EXPECT_TRUE(stalled.ClosedWithin(seconds(1)));
}

}  // namespace
}  // namespace sessionctx
