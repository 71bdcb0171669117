// The event stream of sessionctx-server, from outside: the real binary on a loopback
// port, Server-Sent Events read off a raw socket. Writes made over HTTP arrive as
// events; a client resumes by Last-Event-ID and misses and repeats nothing (also
// across a restart of the server on rocksdb:); a tenant sees only its own events;
// positions out of retention, malformed ones and a feed turned off get their
// statuses; a reader that stops reading is cut off while the server stays small;
// many streams share the server's few threads; a graceful stop ends every stream.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
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
using testing::FormatRequest;
using testing::Headers;
using testing::HttpConnection;
using testing::HttpReply;
using testing::ServerProcess;
using testing::TempDir;

// Message: one Server-Sent Events message (comments dropped).
struct Message {
  std::string id, event, data;
  bool has_id = false;
};

// EventStream: a client of GET …/events on a socket of its own.
class EventStream {
 public:
  EventStream(int port, const std::string& target, const Headers& headers,
              int receive_buffer = 0)
      : conn_(port, receive_buffer) {
    if (!conn_.Send(FormatRequest("GET", target, headers))) return;
    // The head: status line and fields, up to the empty line.
    const auto deadline = std::chrono::steady_clock::now() + seconds(10);
    while (buffer_.find("\r\n\r\n") == std::string::npos) {
      if (!Fill(deadline)) return;
    }
    const size_t end = buffer_.find("\r\n\r\n");
    head_ = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
    if (!absl::SimpleAtoi(head_.substr(9, 3), &status_)) status_ = 0;
  }

  int status() const { return status_; }
  const std::string& head() const { return head_; }
  // The rest of a non-stream answer (an error's JSON), once the server closed.
  std::string Rest() {
    Fill(std::chrono::steady_clock::now() + seconds(5));
    return buffer_;
  }

  // Next: the next message with data or an id, or nullopt after `timeout` or at the
  // end of the stream. Heartbeat comments are counted.
  std::optional<Message> Next(milliseconds timeout = milliseconds(10000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      size_t end;
      while ((end = buffer_.find("\n\n")) != std::string::npos) {
        std::string block = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        Message m;
        bool any = false;
        for (absl::string_view line : absl::StrSplit(block, '\n')) {
          if (absl::StartsWith(line, ":")) {
            ++heartbeats_;
            continue;
          }
          const size_t colon = line.find(':');
          absl::string_view field = line.substr(0, colon);
          absl::string_view value =
              colon == absl::string_view::npos ? "" : line.substr(colon + 1);
          if (absl::StartsWith(value, " ")) value.remove_prefix(1);
          if (field == "id") {
            m.id = std::string(value);
            m.has_id = any = true;
          } else if (field == "event") {
            m.event = std::string(value);
          } else if (field == "data") {
            m.data = std::string(value);
            any = true;
          }
        }
        if (any) return m;
      }
      if (!Fill(deadline)) return std::nullopt;
    }
  }

  // Events: the next `n` messages that carry data; fails the test when fewer come.
  std::vector<Message> Events(size_t n, milliseconds timeout = milliseconds(10000)) {
    std::vector<Message> out;
    while (out.size() < n) {
      std::optional<Message> m = Next(timeout);
      if (!m) {
        ADD_FAILURE() << "got " << out.size() << " events of " << n;
        break;
      }
      if (m->has_id) last_id_ = m->id;
      if (!m->data.empty()) out.push_back(*m);
    }
    return out;
  }

  // Ended: the server closes the stream within `timeout` (what it sent first is read
  // and dropped).
  bool Ended(milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!Fill(deadline)) return !open_;
      buffer_.clear();
    }
    return false;
  }

  const std::string& last_id() const { return last_id_; }
  int heartbeats() const { return heartbeats_; }
  int fd() const { return conn_.fd(); }

 private:
  bool Fill(std::chrono::steady_clock::time_point deadline) {
    const int left = static_cast<int>(std::chrono::duration_cast<milliseconds>(
                                          deadline - std::chrono::steady_clock::now())
                                          .count());
    if (left <= 0 || !open_) return false;
    pollfd p{conn_.fd(), POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) return false;
    char buf[65536];
    const ssize_t n = ::recv(conn_.fd(), buf, sizeof(buf), 0);
    if (n <= 0) {
      open_ = false;
      return false;
    }
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
  }

  HttpConnection conn_;
  std::string buffer_, head_, last_id_;
  int status_ = 0;
  int heartbeats_ = 0;
  bool open_ = true;
};

class ServerEvents : public ::testing::Test {
 protected:
  void TwoServersShareOneFeed(const std::string& store);

  void StartServer(std::vector<std::string> extra = {}, std::string store = "memory:") {
    secret_file_ = (dir_.path() / "secret").string();
    std::ofstream(secret_file_) << "events-secret\n";
    std::vector<std::string> args = {"--listen", "127.0.0.1:0",       "--store",
                                     store,      "--jwt-secret-file", secret_file_};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(server_.Start(dir_.path().string(), args)) << server_.Output();
    port_ = server_.port();
    manage_ = Auth("--tenant acme --scope session_context.context_manage");
  }

  Headers Auth(const std::string& args) {
    return {{"Authorization", "Bearer " + testing::MintToken(secret_file_, args)}};
  }

  // Write: one management write over HTTP; fails the test unless it succeeds.
  void Write(const std::string& method, const std::string& target,
             const std::string& body, const Headers& auth) {
    std::optional<HttpReply> r = Fetch(port_, method, target, auth, body);
    ASSERT_TRUE(r);
    ASSERT_LT(r->status, 300) << method << " " << target << ": " << r->body;
  }
  void Put(const std::string& id, const std::string& tenant = "acme") {
    Write("PUT",
          absl::StrCat("/session-context/", tenant, "/context/", id, "?upsert=true"),
          "{}",
          tenant == "acme"
              ? manage_
              : Auth("--tenant " + tenant + " --scope session_context.context_manage"));
  }
  void SetAttribute(const std::string& id, const std::string& key, int value) {
    Write("POST", absl::StrCat("/session-context/acme/context/", id, "/attributes"),
          absl::StrCat(R"({"key":")", key, R"(","value":)", value, "}"), manage_);
  }

  static Json Data(const Message& m) { return Json::parse(m.data); }

  TempDir dir_;
  ServerProcess server_;
  std::string secret_file_;
  int port_ = 0;
  Headers manage_;
};

TEST_F(ServerEvents, WritesArriveAsEventsAndLastEventIdResumesExactly) {
  StartServer({"--events-heartbeat", "0.2"});
  EventStream stream(port_, "/session-context/acme/events", manage_);
  ASSERT_EQ(stream.status(), 200) << stream.head();
  EXPECT_NE(stream.head().find("Content-Type: text/event-stream"), std::string::npos);
  // A client that named no position is told where it starts.
  std::optional<Message> start = stream.Next();
  ASSERT_TRUE(start && start->has_id && start->data.empty());
  Put("s1");
  SetAttribute("s1", "a", 1);
  Write("DELETE", "/session-context/acme/context/s1", "", manage_);
  std::vector<Message> events = stream.Events(3);
  ASSERT_EQ(events.size(), 3u);
  const char* types[] = {"created", "changed", "deleted"};
  const int versions[] = {1, 2, 2};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(events[i].event, types[i]);
    const Json e = Data(events[i]);
    EXPECT_EQ(e["type"], types[i]);
    EXPECT_EQ(e["sessionId"], "s1");
    EXPECT_EQ(e["tenant"], "acme");
    EXPECT_EQ(e["version"], versions[i]);
    EXPECT_EQ(e["position"], events[i].id) << "the SSE id is the position";
    EXPECT_FALSE(e.contains("context")) << "events carry no session values";
  }
  // Heartbeats keep an idle stream alive.
  EXPECT_FALSE(stream.Next(milliseconds(700)));
  EXPECT_GE(stream.heartbeats(), 2);
  const std::string resume_at = stream.last_id();
  // Written while no client listens, read on reconnection from Last-Event-ID.
  Put("s2");
  Put("s3");
  Headers resume = manage_;
  resume.emplace_back("Last-Event-ID", resume_at);
  EventStream again(port_, "/session-context/acme/events", resume);
  ASSERT_EQ(again.status(), 200);
  std::vector<Message> missed = again.Events(2);
  ASSERT_EQ(missed.size(), 2u);
  EXPECT_EQ(Data(missed[0])["sessionId"], "s2");
  EXPECT_EQ(Data(missed[1])["sessionId"], "s3");
  EXPECT_FALSE(again.Next(milliseconds(300))) << "nothing repeated, nothing extra";
  // ?after= names the position too; the first stream saw the same events.
  EventStream after(port_, absl::StrCat("/session-context/acme/events?after=", resume_at),
                    manage_);
  EXPECT_EQ(Data(after.Events(1)[0])["sessionId"], "s2");
  EXPECT_EQ(Data(stream.Events(2)[1])["sessionId"], "s3");
}

TEST_F(ServerEvents, ATenantSeesOnlyItsOwnEventsAndNeedsTheScope) {
  StartServer();
  const Headers other = Auth("--tenant other --scope session_context.context_manage");
  EventStream theirs(port_, "/session-context/other/events?after=0", other);
  ASSERT_EQ(theirs.status(), 200);
  Put("mine");
  Put("theirs", "other");
  std::vector<Message> got = theirs.Events(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(Data(got[0])["sessionId"], "theirs");
  EXPECT_EQ(Data(got[0])["tenant"], "other");
  // Refused before a stream starts, each with its status and a JSON error.
  std::optional<HttpReply> r =
      Fetch(port_, "GET", "/session-context/other/events", manage_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  r = Fetch(port_, "GET", "/session-context/acme/events",
            Auth("--tenant acme --session s1"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_NE(r->body.find("scope"), std::string::npos) << r->body;
  r = Fetch(port_, "GET", "/session-context/acme/events");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = Fetch(port_, "POST", "/session-context/acme/events", manage_, "{}");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->Header("Allow"), "GET");
}

TEST_F(ServerEvents, BadPositionsRetentionAndAFeedTurnedOffGetTheirStatuses) {
  StartServer({"--events-max-count", "3", "--purge-interval", "1"});
  std::optional<HttpReply> r =
      Fetch(port_, "GET", "/session-context/acme/events?after=12abc", manage_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("position"), std::string::npos) << r->body;
  r = Fetch(port_, "GET", "/session-context/acme/events?limit=0", manage_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  r = Fetch(port_, "GET", "/session-context/acme/events?after=99", manage_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 410) << "a position this feed never gave";
  for (int i = 0; i < 6; ++i) Put(absl::StrCat("r", i));
  // The purge (every second) trims the feed to 3 events: position 1 is gone.
  int status = 0;
  for (int i = 0; i < 50 && status != 410; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
    r = Fetch(port_, "GET", "/session-context/acme/events?after=1", manage_);
    ASSERT_TRUE(r);
    status = r->status;
  }
  EXPECT_EQ(status, 410);
  EXPECT_NE(r->body.find("read the sessions again"), std::string::npos) << r->body;
  EXPECT_EQ(Json::parse(r->body)["code"], 410);

  server_.Stop();
  ServerProcess off;
  std::vector<std::string> args = {
      "--listen",          "127.0.0.1:0", "--store",  "memory:",
      "--jwt-secret-file", secret_file_,  "--events", "off"};
  ASSERT_TRUE(off.Start(dir_.path().string(), args));
  r = Fetch(off.port(), "GET", "/session-context/acme/events", manage_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 501);
}

TEST_F(ServerEvents, AReaderThatStopsReadingIsCutOffAndTheServerStaysSmall) {
  // Under AddressSanitizer freed memory waits in a quarantine (256 MB by default)
  // and would count as growth: keep it small, so that the server's size says what
  // it holds (no effect on other builds).
  const char* asan = std::getenv("ASAN_OPTIONS");
  const std::string asan_options =
      absl::StrCat(asan ? asan : "", asan && *asan ? ":" : "", "quarantine_size_mb=4");
  setenv("ASAN_OPTIONS", asan_options.c_str(), 1);
  StartServer({"--request-timeout", "1"});
  EventStream slow(port_, "/session-context/acme/events", manage_,
                   /*receive_buffer=*/4096);
  ASSERT_EQ(slow.status(), 200);
  const long rss_before = server_.RssKb();
  // Long session ids make big events: the socket buffers fill after a few MB.
  const std::string id(250, 'x');
  Put(id);
  HttpConnection writer(port_);
  const std::string target =
      absl::StrCat("/session-context/acme/context/", id, "/attributes");
  int writes = 0;
  auto cut_off = [&] {
    std::optional<HttpReply> m = Fetch(port_, "GET", "/metrics");
    return m && m->body.find("sessionctx_http_refused_total{limit=\"slow_reader\"} 1") !=
                    std::string::npos;
  };
  const auto deadline = std::chrono::steady_clock::now() + seconds(60);
  while (!cut_off() && std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 500; ++i, ++writes) {
      std::optional<HttpReply> w = writer.Request(
          "POST", target, manage_, absl::StrCat(R"({"key":"n","value":)", writes, "}"));
      ASSERT_TRUE(w && w->status == 204);
    }
  }
  EXPECT_TRUE(cut_off()) << "after " << writes << " writes";
  EXPECT_TRUE(slow.Ended(seconds(20))) << "the server closed the stream";
  EXPECT_LT(server_.RssKb() - rss_before, 64 * 1024) << "the server buffered the backlog";
  std::optional<HttpReply> health = Fetch(port_, "GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  // A reader that keeps up still gets the newest event.
  EventStream fresh(port_, "/session-context/acme/events", manage_);
  ASSERT_TRUE(fresh.Next());
  SetAttribute(id, "last", 1);
  EXPECT_EQ(fresh.Events(1).size(), 1u);
}

TEST_F(ServerEvents, ManyStreamsShareTheServersThreadsAndAGracefulStopEndsThemAll) {
  StartServer({"--io-threads", "1", "--threads", "4", "--events-max-streams", "150"});
  std::vector<std::unique_ptr<EventStream>> streams;
  for (int i = 0; i < 150; ++i) {
    streams.push_back(
        std::make_unique<EventStream>(port_, "/session-context/acme/events", manage_));
    ASSERT_EQ(streams.back()->status(), 200) << i;
  }
  std::optional<HttpReply> over =
      Fetch(port_, "GET", "/session-context/acme/events", manage_);
  ASSERT_TRUE(over);
  EXPECT_EQ(over->status, 503) << "one stream over --events-max-streams";
  std::ifstream status("/proc/" + std::to_string(server_.pid()) + "/status");
  std::string line;
  int threads = 0;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) threads = std::stoi(line.substr(8));
  }
  EXPECT_LT(threads, 20) << "a thread per stream";
  Put("everyone");
  for (auto& s : streams) {
    std::vector<Message> got = s->Events(1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(Data(got[0])["sessionId"], "everyone");
  }
  const auto stop_began = std::chrono::steady_clock::now();
  server_.Signal(SIGTERM);
  for (auto& s : streams) EXPECT_TRUE(s->Ended(seconds(5)));
  EXPECT_EQ(server_.Wait(seconds(10)), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - stop_began, seconds(5))
      << "streams do not hold a stop for its grace";
}

// Two servers on one store (PostgreSQL, Redis, a Redis Cluster): a stream on either
// sees the writes made through both, each once, in order per session.
void ServerEvents::TwoServersShareOneFeed(const std::string& store) {
  StartServer({}, store);
  const int port_a = port_;
  ServerProcess b;
  std::vector<std::string> args = {"--listen", "127.0.0.1:0",       "--store",
                                   store,      "--jwt-secret-file", secret_file_};
  ASSERT_TRUE(b.Start(dir_.path().string(), args));
  EventStream on_a(port_a, "/session-context/acme/events?after=0", manage_);
  EventStream on_b(b.port(), "/session-context/acme/events?after=0", manage_);
  ASSERT_EQ(on_a.status(), 200);
  ASSERT_EQ(on_b.status(), 200);
  constexpr int kWrites = 20;
  for (int i = 0; i < kWrites; ++i) {
    port_ = i % 2 == 0 ? port_a : b.port();  // alternate the servers
    if (i < 2) {
      Put(absl::StrCat("x", i));
    } else {
      SetAttribute(absl::StrCat("x", i % 2), "n", i);
    }
  }
  for (EventStream* stream : {&on_a, &on_b}) {
    std::vector<Message> got = stream->Events(kWrites);
    ASSERT_EQ(got.size(), static_cast<size_t>(kWrites));
    std::map<std::string, int64_t> last;
    for (const Message& m : got) {
      const Json e = Data(m);
      EXPECT_EQ(e["version"].get<int64_t>(), last[e["sessionId"]] + 1) << m.data;
      last[e["sessionId"]] = e["version"].get<int64_t>();
    }
    EXPECT_EQ(last["x0"], kWrites / 2);
    EXPECT_EQ(last["x1"], kWrites / 2);
  }
}

#ifdef SESSIONCTX_HAVE_POSTGRES
TEST_F(ServerEvents, TwoServersOnOneDatabaseShareOneFeed) {
  if (testing::PostgresTestUri().empty()) {
    if (testing::InCi()) FAIL() << "SESSIONCTX_TEST_PG_URI is not set";
    GTEST_SKIP() << "SESSIONCTX_TEST_PG_URI is not set: start a server with "
                    "scripts/with-postgres.sh";
  }
  TwoServersShareOneFeed(testing::WithQuery(testing::PostgresTestUri(),
                                            "schema=" + testing::FreshSchemaName()));
}
#endif

#ifdef SESSIONCTX_HAVE_REDIS
TEST_F(ServerEvents, TwoServersOnOneRedisShareOneFeed) {
  if (testing::RedisTestUri().empty()) {
    if (testing::InCi()) FAIL() << "SESSIONCTX_TEST_REDIS_URI is not set";
    GTEST_SKIP() << "SESSIONCTX_TEST_REDIS_URI is not set: start a server with "
                    "scripts/with-redis.sh";
  }
  TwoServersShareOneFeed(testing::WithQuery(
      testing::RedisTestUri(), "prefix=" + testing::FreshSchemaName() + ":"));
}

TEST_F(ServerEvents, TwoServersOnOneRedisClusterShareOneFeed) {
  if (testing::RedisClusterTestUri().empty()) {
    if (testing::InCi()) FAIL() << "SESSIONCTX_TEST_REDIS_CLUSTER_URI is not set";
    GTEST_SKIP() << "SESSIONCTX_TEST_REDIS_CLUSTER_URI is not set: start a cluster with "
                    "scripts/with-redis-cluster.sh";
  }
  TwoServersShareOneFeed(testing::WithQuery(
      testing::RedisClusterTestUri(), "prefix=" + testing::FreshSchemaName() + ":"));
}
#endif

#ifdef SESSIONCTX_HAVE_ROCKSDB
TEST_F(ServerEvents, AReaderResumesAcrossARestartOfTheServerOnRocksDb) {
  const std::string store = "rocksdb:" + (dir_.path() / "db").string();
  StartServer({}, store);
  Put("a1");
  Put("a2");
  EventStream first(port_, "/session-context/acme/events?after=0", manage_);
  std::vector<Message> seen = first.Events(2);
  ASSERT_EQ(seen.size(), 2u);
  const std::string at = seen[1].id;
  Put("a3");
  ASSERT_EQ(server_.Stop(), 0);
  ServerProcess again;
  std::vector<std::string> args = {"--listen", "127.0.0.1:0",       "--store",
                                   store,      "--jwt-secret-file", secret_file_};
  ASSERT_TRUE(again.Start(dir_.path().string(), args));
  port_ = again.port();
  Put("a4");
  Headers resume = manage_;
  resume.emplace_back("Last-Event-ID", at);
  EventStream second(port_, "/session-context/acme/events", resume);
  std::vector<Message> rest = second.Events(2);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(Data(rest[0])["sessionId"], "a3");
  EXPECT_EQ(Data(rest[1])["sessionId"], "a4");
  EXPECT_FALSE(second.Next(milliseconds(300)));
}
#endif

}  // namespace
}  // namespace sessionctx
