// One end-to-end test for every framework adapter in examples/ (Beast, cpp-httplib,
// Poco, Pistache, cpprestsdk, CivetWeb, libevent): the adapter binary named by
// SESSIONCTX_ADAPTER_BIN runs as a child process on a free loopback port and is
// spoken to over a real socket. What an adapter can get wrong is what is asked: every
// header through (Authorization, If-Match, Content-Type), the raw target (attribute
// names with spaces, percent-encoded), whole bodies (chunked too), the answer's
// status, headers and body exactly (none after 204 or HEAD, so that keep-alive goes
// on), the body limit, a concurrent PATCH race, and a graceful stop.
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "sessionctx/jwt.h"
#include "tests/http_client.h"
#include "tests/server_process.h"

namespace sessionctx::testing {
namespace {

constexpr char kSecret[] = "adapter-e2e-secret";
constexpr char kBase[] = "/session-context/acme";

// Chunked: a PATCH of /me/context with `body` sent in chunks of `chunk` bytes.
std::string Chunked(const std::string& token, const std::string& body, size_t chunk) {
  std::string request = absl::StrCat("PATCH ", kBase,
                                     "/me/context HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                     "Authorization: Bearer ",
                                     token,
                                     "\r\nContent-Type: application/json\r\n"
                                     "Transfer-Encoding: chunked\r\n\r\n");
  for (size_t at = 0; at < body.size(); at += chunk) {
    const std::string piece = body.substr(at, chunk);
    absl::StrAppend(&request, absl::Hex(piece.size()), "\r\n", piece, "\r\n");
  }
  absl::StrAppend(&request, "0\r\n\r\n");
  return request;
}

std::string Token(Json claims) {
  claims["exp"] = absl::ToUnixSeconds(absl::Now()) + 600;
  return *SignJwt(claims, JwtAlgorithm::kHS256, kSecret);
}
Headers Bearer(const std::string& token, Headers more = {}) {
  more.emplace_back("Authorization", "Bearer " + token);
  return more;
}
Json BodyOf(const std::optional<HttpReply>& r) {
  return r ? Json::parse(r->body, nullptr, false) : Json();
}

class AdapterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("SESSIONCTX_ADAPTER_BIN");
    ASSERT_NE(bin, nullptr) << "SESSIONCTX_ADAPTER_BIN names the adapter to test";
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("adapter-e2e-", ::getpid(), "-", ++counter_);
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "secret") << kSecret << "\n";
    for (int attempt = 0; attempt < 3 && port_ == 0;
         ++attempt) {  // a port taken meanwhile
      const int port = FreePort();
      server_ = std::make_unique<ServerProcess>(std::filesystem::absolute(bin).string());
      if (server_->Start(dir_.string(),
                         {std::to_string(port), (dir_ / "secret").string()})) {
        port_ = server_->port();
      }
    }
    ASSERT_NE(port_, 0) << "the adapter did not start: " << bin;
    manage_ =
        Token({{"tenant", "acme"}, {"scope", "openid session_context.context_manage"}});
  }
  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Creates session `id` through the management PUT (upsert) and returns a shopper
  // token for it.
  std::string Seed(const std::string& id) {
    auto r = Fetch(port_, "PUT", absl::StrCat(kBase, "/context/", id, "?upsert=true"),
                   Bearer(manage_), R"({"currency":"EUR","context":{"a":1}})");
    EXPECT_TRUE(r && r->status == 204) << (r ? r->body : "no answer");
    return Token({{"tenant", "acme"}, {"sessionId", id}});
  }

  static std::atomic<int> counter_;
  std::filesystem::path dir_;
  std::unique_ptr<ServerProcess> server_;
  int port_ = 0;
  std::string manage_;
};
std::atomic<int> AdapterTest::counter_{0};

// Own routes, keep-alive: every answer on one connection, in order.
TEST_F(AdapterTest, OwnRoutesOnOneConnection) {
  const std::string shopper = Seed("s1");
  HttpConnection c(port_);
  ASSERT_TRUE(c.connected());

  auto got = c.Request("GET", absl::StrCat(kBase, "/me/context"), Bearer(shopper));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200) << got->body;
  EXPECT_EQ(got->Header("ETag"), "\"1\"");
  EXPECT_TRUE(absl::StartsWith(got->Header("Content-Type"), "application/json"));
  EXPECT_EQ(BodyOf(got)["currency"], "EUR");

  // An attribute whose name has a space: percent-encoded in the path of the delete.
  auto added =
      c.Request("POST", absl::StrCat(kBase, "/me/context/attributes"), Bearer(shopper),
                R"({"key":"gift wrap","value":{"paper":"red"}})");
  ASSERT_TRUE(added);
  EXPECT_EQ(added->status, 201) << added->body;
  EXPECT_EQ(added->body, "\"gift wrap\"");

  auto patched =
      c.Request("PATCH", absl::StrCat(kBase, "/me/context"),
                Bearer(shopper, {{"If-Match", "\"2\""}}), R"({"currency":"CHF"})");
  ASSERT_TRUE(patched);
  EXPECT_EQ(patched->status, 204) << patched->body;
  EXPECT_EQ(patched->body, "");

  auto removed =
      c.Request("DELETE", absl::StrCat(kBase, "/me/context/attributes/gift%20wrap"),
                Bearer(shopper));
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->status, 204) << removed->body;

  auto after = c.Request("GET", absl::StrCat(kBase, "/me/context"), Bearer(shopper));
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(after->Header("ETag"), "\"4\"");
  const Json body = BodyOf(after);
  EXPECT_EQ(body["currency"], "CHF");
  EXPECT_EQ(body["context"], (Json{{"a", 1}}));
}

// Management routes and the error statuses an adapter must pass through.
TEST_F(AdapterTest, ManagementRoutesAndErrors) {
  Seed("m1");
  const std::string path = absl::StrCat(kBase, "/context/m1");
  auto got = Fetch(port_, "GET", path, Bearer(manage_));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(BodyOf(got)["sessionId"], "m1");

  auto added = Fetch(port_, "POST", path + "/attributes", Bearer(manage_),
                     R"({"key":"note","value":"vip"})");
  ASSERT_TRUE(added);
  EXPECT_EQ(added->status, 204) << added->body;

  auto expect_error = [&](const std::optional<HttpReply>& r, int status,
                          const char* what) {
    ASSERT_TRUE(r) << what << ": no answer";
    EXPECT_EQ(r->status, status) << what << ": " << r->body;
    EXPECT_EQ(BodyOf(r)["code"], status) << what << ": " << r->body;
  };
  expect_error(Fetch(port_, "GET", path), 401, "no token");
  expect_error(
      Fetch(port_, "GET", path, Bearer(Token({{"tenant", "acme"}, {"sessionId", "x"}}))),
      403, "a shopper token on a management route");
  expect_error(
      Fetch(port_, "GET", absl::StrCat(kBase, "/context/nobody"), Bearer(manage_)), 404,
      "unknown session");
  expect_error(Fetch(port_, "PUT", path, Bearer(manage_, {{"If-Match", "\"2\""}}), "{"),
               400, "malformed JSON");
  {
    HttpConnection c(port_);
    ASSERT_TRUE(
        c.Send(FormatRequest("PUT", path, Bearer(manage_, {{"If-Match", "\"2\""}}),
                             "currency=USD", "text/plain")));
    expect_error(c.Read(), 415, "a body that is not JSON");
  }
  expect_error(Fetch(port_, "PUT", path, Bearer(manage_, {{"If-Match", "\"1\""}}),
                     R"({"currency":"USD"})"),
               409, "a stale If-Match");
  auto stale = Fetch(port_, "DELETE", path, Bearer(manage_, {{"If-Match", "\"1\""}}));
  ASSERT_TRUE(stale);
  EXPECT_EQ(BodyOf(stale)["currentVersion"], 2);

  auto wrong_method =
      Fetch(port_, "POST", absl::StrCat(kBase, "/me/context"),
            Bearer(Token({{"tenant", "acme"}, {"sessionId", "m1"}})), "{}");
  expect_error(wrong_method, 405, "POST on /me/context");
  ASSERT_TRUE(wrong_method);
  EXPECT_NE(wrong_method->Header("Allow").find("PATCH"), std::string::npos);

  auto deleted = Fetch(port_, "DELETE", path, Bearer(manage_, {{"If-Match", "\"2\""}}));
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->status, 204);
  expect_error(Fetch(port_, "GET", path, Bearer(manage_)), 404, "a deleted session");
}

// A chunked body is read whole.
// The event feed in its one-page form (HttpHandler::Handle): what the writes
// before it produced, as text/event-stream, each event with its position as id; a
// position past the feed is 410.
TEST_F(AdapterTest, EventsAnswerTheFeedAsAPage) {
  Seed("e1");
  auto added = Fetch(port_, "POST", absl::StrCat(kBase, "/context/e1/attributes"),
                     Bearer(manage_), R"({"key":"k","value":2})");
  ASSERT_TRUE(added && added->status == 204);
  auto page =
      Fetch(port_, "GET", absl::StrCat(kBase, "/events?after=0"), Bearer(manage_));
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200) << page->body;
  EXPECT_EQ(page->Header("Content-Type"), "text/event-stream");
  EXPECT_NE(page->body.find("id: 1\nevent: created\ndata: {"), std::string::npos)
      << page->body;
  EXPECT_NE(page->body.find("id: 2\nevent: changed\ndata: {"), std::string::npos)
      << page->body;
  auto resumed = Fetch(port_, "GET", absl::StrCat(kBase, "/events"),
                       Bearer(manage_, {{"Last-Event-ID", "1"}}));
  ASSERT_TRUE(resumed);
  EXPECT_EQ(resumed->body.find("event: created"), std::string::npos) << resumed->body;
  EXPECT_NE(resumed->body.find("event: changed"), std::string::npos) << resumed->body;
  auto gone =
      Fetch(port_, "GET", absl::StrCat(kBase, "/events?after=99"), Bearer(manage_));
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 410) << gone->body;
}

TEST_F(AdapterTest, ChunkedBody) {
  const std::string shopper = Seed("c1");
  const std::string body =
      R"({"currency":"JPY","context":{"chunked":true},"metadata":{"version":1}})";
  HttpConnection c(port_);
  ASSERT_TRUE(c.Send(Chunked(shopper, body, 16)));  // chunks of 16 bytes
  auto patched = c.Read();
  ASSERT_TRUE(patched);
  EXPECT_EQ(patched->status, 204) << patched->body;

  auto got = c.Request("GET", absl::StrCat(kBase, "/me/context"), Bearer(shopper));
  ASSERT_TRUE(got);
  EXPECT_EQ(BodyOf(got)["currency"], "JPY");
  EXPECT_EQ(BodyOf(got)["context"]["chunked"], true);
}

// HEAD (the handler answers it on /healthz): the GET's status and headers, no body;
// the connection goes on.
TEST_F(AdapterTest, HeadHasNoBody) {
  const std::string shopper = Seed("h1");
  HttpConnection c(port_);
  ASSERT_TRUE(c.Send(FormatRequest("HEAD", "/healthz")));
  auto head = c.Read(std::chrono::seconds(10), /*head=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(absl::StartsWith(head->Header("Content-Type"), "application/json"));
  EXPECT_EQ(head->body, "");
  // Had a body followed the head, it would now be read as the next answer.
  auto got = c.Request("GET", absl::StrCat(kBase, "/me/context"), Bearer(shopper));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(BodyOf(got)["sessionId"], "h1");
  auto health = c.Request("GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(BodyOf(health)["status"], "ok");
}

// A body over the limit (64 KiB) is 413, with Content-Length or chunked, and nothing
// is written; the adapter still serves.
TEST_F(AdapterTest, BodyOverTheLimit) {
  const std::string shopper = Seed("b1");
  const std::string big =
      absl::StrCat(R"({"context":{"big":")", std::string(70 * 1024, 'x'),
                   R"("},"metadata":{"version":1}})");
  {
    HttpConnection c(port_);
    ASSERT_TRUE(c.connected());
    c.Send(
        FormatRequest("PATCH", absl::StrCat(kBase, "/me/context"), Bearer(shopper), big));
    auto r = c.Read();
    ASSERT_TRUE(r) << "no answer to a body over the limit";
    EXPECT_EQ(r->status, 413) << r->body;
  }
  {
    HttpConnection c(port_);
    c.Send(Chunked(shopper, big, 8192));
    auto r = c.Read();
    ASSERT_TRUE(r) << "no answer to a chunked body over the limit";
    EXPECT_EQ(r->status, 413) << r->body;
  }
  auto got = Fetch(port_, "GET", absl::StrCat(kBase, "/me/context"), Bearer(shopper));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->Header("ETag"), "\"1\"") << "nothing was written";
}

// Writers racing on one session through the adapter, each on its own keep-alive
// connection, each PATCH conditional on the version it read: exactly one 204 per
// version, and the final version counts them.
TEST_F(AdapterTest, ConcurrentPatchRace) {
  const std::string shopper = Seed("r1");
  constexpr int kWriters = 4;
  constexpr int kAttempts = 40;
  absl::Mutex mu;
  std::vector<int64_t> won;  // the version each 204 was based on
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      HttpConnection c(port_);
      for (int i = 0; i < kAttempts; ++i) {
        auto got = c.Request("GET", absl::StrCat(kBase, "/me/context"), Bearer(shopper));
        if (!got || got->status != 200) {
          ++failures;
          return;
        }
        const int64_t version = BodyOf(got)["metadata"]["version"].get<int64_t>();
        auto r =
            c.Request("PATCH", absl::StrCat(kBase, "/me/context"),
                      Bearer(shopper, {{"If-Match", absl::StrCat("\"", version, "\"")}}),
                      absl::StrCat(R"({"context":{"w)", w, R"(":)", i, "}}"));
        if (!r || (r->status != 204 && r->status != 409)) {
          ++failures;
          return;
        }
        if (r->status == 204) {
          absl::MutexLock lock(&mu);
          won.push_back(version);
        }
      }
    });
  }
  for (std::thread& t : writers) t.join();
  ASSERT_EQ(failures.load(), 0);
  const std::set<int64_t> distinct(won.begin(), won.end());
  EXPECT_EQ(distinct.size(), won.size())
      << "two writes were accepted at the same version";
  auto final = Fetch(port_, "GET", absl::StrCat(kBase, "/me/context"), Bearer(shopper));
  ASSERT_TRUE(final);
  EXPECT_EQ(BodyOf(final)["metadata"]["version"], 1 + static_cast<int64_t>(won.size()));
  EXPECT_GE(won.size(), static_cast<size_t>(kAttempts)) << "too few writes went through";
}

// SIGTERM while clients keep sending (and an idle keep-alive connection is open): the
// adapter stops and exits 0 — no crash on requests that arrive during the stop.
TEST_F(AdapterTest, GracefulStopUnderLoad) {
  const std::string shopper = Seed("g1");
  HttpConnection idle(port_);
  auto got = idle.Request("GET", absl::StrCat(kBase, "/me/context"), Bearer(shopper));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200);
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&] {
      while (!stop) {
        HttpConnection c(port_);
        while (!stop) {
          auto r = c.Request("GET", absl::StrCat(kBase, "/me/context"), Bearer(shopper));
          if (!r) break;  // closed by the stop
          ++answered;
        }
        if (!c.connected()) return;  // nobody listens any more
      }
    });
  }
  while (answered < 200) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(server_->Stop(), 0) << "the adapter did not exit 0 on SIGTERM under load";
  stop = true;
  for (std::thread& t : clients) t.join();
}

}  // namespace
}  // namespace sessionctx::testing
