// What the redis:// backend promises beyond the conformance suite, against the real
// redis-server the test script started (scripts/with-redis.sh, appendfsync always):
// its URI, Redis's own expiry, one field per attribute, scripts the server lost, a full
// server (507), tampered bytes, a restart and a kill -9 of Redis mid-writes, a kill -9
// of the app, WAIT for replicas. These tests stop the shared server and change its
// settings: they run alone (SERIAL).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "backends/redis/redis_client.h"
#include "gtest/gtest.h"
#include "sessionctx/session_service.h"
#include "sessionctx/session_store.h"
#include "sessionctx/store_factory.h"
#include "tests/kill_writer.h"
#include "tests/password_redis.h"
#include "tests/store_fixture.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// Ctl: the test server's control script (stop, kill, start, cli …).
std::string Ctl() {
  const char* ctl = std::getenv("SESSIONCTX_TEST_REDIS_CTL");
  return ctl ? ctl : "";
}

// Cli runs redis-cli against the test server and returns its output, trimmed.
std::string Cli(const std::string& args) {
  return testing::Shell(absl::StrCat(Ctl(), " cli ", args));
}

int64_t CliNumber(const std::string& args) {
  int64_t n = 0;
  return absl::SimpleAtoi(Cli(args), &n) ? n : INT64_MIN;
}

int FreePort() {
  FILE* p = popen(
      "python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); "
      "print(s.getsockname()[1])'",
      "r");
  int port = 0;
  if (p != nullptr) {
    if (fscanf(p, "%d", &port) != 1) port = 0;
    pclose(p);
  }
  return port;
}

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SESSIONCTX_REQUIRE_BACKEND(factory_);
    if (Ctl().empty()) {
      if (testing::InCi()) FAIL() << "SESSIONCTX_TEST_REDIS_CTL is not set";
      GTEST_SKIP() << "SESSIONCTX_TEST_REDIS_CTL is not set";
    }
    prefix_ = factory_.Uri().substr(factory_.Uri().find("prefix=") + 7);
    absl::StatusOr<std::unique_ptr<SessionStore>> store = Open(factory_.Uri());
    ASSERT_OK(store);
    store_ = *std::move(store);
    ServiceOptions options;
    options.anonymous_ttl = absl::Minutes(30);
    service_ = std::make_unique<SessionService>(store_.get(), options);
  }
  void TearDown() override {
    if (!Ctl().empty()) (void)Cli("CONFIG SET maxmemory 0");
  }

  absl::StatusOr<std::unique_ptr<SessionStore>> Open(const std::string& uri) {
    return OpenSessionStore(uri, StoreOptions{});
  }
  // The session's key, quoted for the shell.
  std::string KeyOf(const std::string& id) const {
    return absl::StrCat("'", prefix_, "{acme/", id, "}'");
  }
  SessionKey Create(const std::string& id,
                    std::optional<std::string> customer = std::nullopt) {
    SessionContext s;
    s.session_id = id;
    s.customer_id = customer;
    s.context = Json{{"cart", {{"items", 2}}}};
    EXPECT_OK(service_->Create("acme", s));
    return {"acme", id};
  }

  testing::StoreFactory factory_{"redis"};
  std::string prefix_;
  std::unique_ptr<SessionStore> store_;
  std::unique_ptr<SessionService> service_;
};

TEST(RedisUri, ErrorsNameWhatIsWrong) {
  struct Case {
    const char* uri;
    const char* names;
  } cases[] = {
      {"redis://127.0.0.1:0", "port"},
      {"redis://127.0.0.1:99999", "port"},
      {"redis://127.0.0.1:6379/x", "database"},
      {"redis://127.0.0.1:6379?pool_size=0", "pool_size"},
      {"redis://127.0.0.1:6379?timeout_ms=abc", "timeout_ms"},
      {"redis://127.0.0.1:6379?prefix=a{b", "prefix"},
      {"redis://127.0.0.1:6379?durability=replicas:0", "durability"},
      {"redis://127.0.0.1:6379?durability=always", "durability"},
      {"redis://127.0.0.1:6379?colour=blue", "colour"},
      {"redis://:6379", "host"},
      {"redis:127.0.0.1:6379", "//"},
      {"redis://s3cret@127.0.0.1:6379", "redis://:PASSWORD@host"},
      {"redis://[::1:6379", "']'"},
      {"redis://[::1]6379", ":PORT"},
      {"redis://::1:6379", "brackets"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::unique_ptr<SessionStore>> store =
        OpenSessionStore(c.uri, StoreOptions{});
    ASSERT_FALSE(store.ok()) << c.uri;
    EXPECT_TRUE(absl::IsInvalidArgument(store.status()))
        << c.uri << ": " << store.status();
    EXPECT_NE(store.status().message().find(c.names), absl::string_view::npos)
        << c.uri << ": " << store.status();
  }
  absl::StatusOr<redis::RedisOptions> full = redis::ParseRedisUri(
      "redis://app:p%40ss@db.example:6380/3?pool_size=4&timeout_ms=250&"
      "prefix=shop:&durability=replicas:2");
  ASSERT_OK(full);
  EXPECT_EQ(full->user, "app");
  EXPECT_EQ(full->password, "p@ss");
  EXPECT_EQ(full->host, "db.example");
  EXPECT_EQ(full->port, 6380);
  EXPECT_EQ(full->db, 3);
  EXPECT_EQ(full->pool_size, 4);
  EXPECT_EQ(full->timeout_ms, 250);
  EXPECT_EQ(full->prefix, "shop:");
  EXPECT_EQ(full->wait_replicas, 2);
  absl::StatusOr<redis::RedisOptions> password_alone =
      redis::ParseRedisUri("redis://:s3%3Acret@[::1]:6380");
  ASSERT_OK(password_alone);
  EXPECT_EQ(password_alone->user, "");
  EXPECT_EQ(password_alone->password, "s3:cret");
  EXPECT_EQ(password_alone->host, "::1");
  EXPECT_EQ(password_alone->port, 6380);
  absl::StatusOr<redis::RedisOptions> v6 = redis::ParseRedisUri("redis://[::1]");
  ASSERT_OK(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 6379);
}

// A redis-server of this test's own that asks for a password (and has an ACL user):
// the URI forms node-redis and redis-py use log in, over IPv4 and IPv6; a wrong
// password is refused with a message that does not repeat it.
TEST(RedisAuth, PasswordAloneAndAclUserLogInOverIpv4AndIpv6) {
  testing::PasswordRedis redis;
  ASSERT_TRUE(redis.ready());
  const int port = redis.port();
  for (const std::string& uri :
       {absl::StrCat("redis://:s3%3Acret@127.0.0.1:", port),
        absl::StrCat("redis://app:app-pw@127.0.0.1:", port),
        absl::StrCat("redis://:s3%3Acret@[::1]:", port)}) {
    absl::StatusOr<std::unique_ptr<SessionStore>> store = OpenSessionStore(uri, StoreOptions{});
    ASSERT_TRUE(store.ok()) << uri << ": " << store.status();
    SessionContext s;
    s.session_id = "auth-" + std::to_string(port);
    s.version = 1;
    const SessionKey key{"acme", s.session_id};
    const absl::Status created = (*store)->Create(key, s);
    EXPECT_TRUE(created.ok()) << uri << ": " << created;
    const absl::Status deleted = (*store)->Delete(key, std::nullopt);
    EXPECT_TRUE(deleted.ok()) << uri << ": " << deleted;
  }
  absl::StatusOr<std::unique_ptr<SessionStore>> wrong =
      OpenSessionStore(absl::StrCat("redis://:not-the-pw@127.0.0.1:", port), StoreOptions{});
  EXPECT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().ToString().find("not-the-pw"), std::string::npos) << wrong.status();
}

TEST(RedisReplyErrors, FullServerIsStorageFullOthersAreUnavailableOrInternal) {
  EXPECT_TRUE(IsStorageFull(
      redis::ReplyError("OOM command not allowed when used memory > 'maxmemory'.")));
  EXPECT_TRUE(IsStorageFull(redis::ReplyError(
      "MISCONF Errors writing to the AOF file: No space left on device")));
  EXPECT_TRUE(
      absl::IsUnavailable(redis::ReplyError("LOADING Redis is loading the dataset")));
  EXPECT_FALSE(IsStorageFull(redis::ReplyError("LOADING Redis is loading the dataset")));
  EXPECT_TRUE(absl::IsUnavailable(
      redis::ReplyError("READONLY You can't write against a replica")));
  EXPECT_TRUE(absl::IsInternal(redis::ReplyError("ERR unknown command")));
}

TEST(RedisUnreachable, OpenAndCallsFailUnavailableWithinTheTimeout) {
  const int port = FreePort();
  ASSERT_GT(port, 0);
  const auto start = steady_clock::now();
  absl::StatusOr<std::unique_ptr<SessionStore>> store = OpenSessionStore(
      absl::StrCat("redis://127.0.0.1:", port, "?timeout_ms=300"), StoreOptions{});
  EXPECT_TRUE(absl::IsUnavailable(store.status())) << store.status();
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(3));
}

TEST_F(RedisStoreTest, AnonymousSessionsCarryRedisExpiryAndCustomerSessionsPersist) {
  Create("anon");
  Create("cust", "c-1");
  // With the event feed (the default), Redis's own expiry falls an hour (the sweep's
  // grace) after the session's, and the expiry index holds the session's.
  constexpr int64_t kGrace = 60 * 60 * 1000;
  const int64_t ttl = CliNumber("PTTL " + KeyOf("anon"));
  EXPECT_GT(ttl, kGrace + 29 * 60 * 1000);
  EXPECT_LE(ttl, kGrace + 30 * 60 * 1000);
  EXPECT_EQ(CliNumber("PTTL " + KeyOf("cust")), -1);  // no expiry
  EXPECT_EQ(Cli(absl::StrCat("ZSCORE '", prefix_, "expiry' acme/anon")),
            Cli("HGET " + KeyOf("anon") + " x"));
  EXPECT_EQ(Cli(absl::StrCat("ZSCORE '", prefix_, "expiry' acme/cust")), "");
  // A write moves Redis's expiry with the session's.
  ASSERT_OK(Cli("PEXPIRE " + KeyOf("anon") + " 60000") == "1"
                ? absl::OkStatus()
                : absl::InternalError("PEXPIRE"));
  ASSERT_OK(service_->SetAttribute({"acme", "anon"}, "a", 1));
  EXPECT_GT(CliNumber("PTTL " + KeyOf("anon")), kGrace + 29 * 60 * 1000);
  ASSERT_OK(service_->SetAttribute({"acme", "cust"}, "a", 1));
  EXPECT_EQ(CliNumber("PTTL " + KeyOf("cust")), -1);
  // Nothing is due yet.
  absl::StatusOr<int64_t> purged = store_->PurgeExpired();
  ASSERT_OK(purged);
  EXPECT_EQ(*purged, 0);
  // Without a feed, Redis's expiry is the session's, and nothing is ever swept.
  absl::StatusOr<std::unique_ptr<SessionStore>> plain =
      OpenSessionStore(factory_.Uri(), StoreOptions{.events = {.enabled = false}});
  ASSERT_OK(plain);
  SessionService service(plain->get(),
                         ServiceOptions{.anonymous_ttl = absl::Minutes(30)});
  ASSERT_OK(service.Create("acme", SessionContext{.session_id = "plain"}));
  EXPECT_LE(CliNumber("PTTL " + KeyOf("plain")), 30 * 60 * 1000);
  EXPECT_EQ(Cli(absl::StrCat("ZSCORE '", prefix_, "expiry' acme/plain")), "");
}

// The sweep expires what is due, each session with its `expired` event; a session
// Redis dropped itself (past the grace) still gets its event (version unknown: 0).
TEST_F(RedisStoreTest, TheSweepExpiresDueSessionsWithTheirEvents) {
  ManualClock clock(absl::Now());
  absl::StatusOr<std::unique_ptr<SessionStore>> store =
      OpenSessionStore(factory_.Uri(), StoreOptions{.clock = &clock});
  ASSERT_OK(store);
  SessionService service(
      store->get(), ServiceOptions{.anonymous_ttl = absl::Minutes(30), .clock = &clock});
  for (const char* id : {"due", "dropped", "later"}) {
    ASSERT_OK(service.Create("acme", SessionContext{.session_id = id}));
  }
  ASSERT_OK(service.SetAttribute({"acme", "due"}, "a", 1));  // version 2
  clock.Advance(absl::Minutes(20));
  ASSERT_OK(service.SetAttribute({"acme", "later"}, "a", 1));  // its expiry moves on
  absl::StatusOr<EventPage> tail = (*store)->ReadEvents({.after = ""});
  ASSERT_OK(tail);
  ASSERT_EQ(Cli("DEL " + KeyOf("dropped")), "1");  // as Redis's own expiry would
  clock.Advance(absl::Minutes(15));
  absl::StatusOr<int64_t> purged = (*store)->PurgeExpired();
  ASSERT_OK(purged);
  EXPECT_EQ(*purged, 2);
  EXPECT_EQ(CliNumber("EXISTS " + KeyOf("due")), 0);
  EXPECT_EQ(CliNumber("EXISTS " + KeyOf("later")), 1);
  EXPECT_EQ(CliNumber(absl::StrCat("ZCARD '", prefix_, "expiry'")), 1);
  absl::StatusOr<EventPage> page = (*store)->ReadEvents({.after = tail->next});
  ASSERT_OK(page);
  ASSERT_EQ(page->events.size(), 2u);
  std::map<std::string, int64_t> expired;
  for (const SessionEvent& e : page->events) {
    EXPECT_EQ(e.type, EventType::kExpired);
    EXPECT_EQ(e.time, clock.Now());
    expired[e.key.session_id] = e.version;
  }
  EXPECT_EQ(expired, (std::map<std::string, int64_t>{{"due", 2}, {"dropped", 0}}));
  // Swept once: a second sweep finds nothing.
  EXPECT_EQ(*(*store)->PurgeExpired(), 0);
}

TEST_F(RedisStoreTest, EachAttributeIsAFieldOfItsOwnInTheSessionsOneHash) {
  const SessionKey key = Create("fields");
  for (int i = 0; i < 5; ++i)
    ASSERT_OK(service_->SetAttribute(key, absl::StrCat("a", i), i * 11));
  EXPECT_EQ(Cli("HGET " + KeyOf("fields") + " '\"a3\"'"), "33");
  EXPECT_EQ(Cli("HGET " + KeyOf("fields") + " '\"cart\"'"), "{\"items\":2}");
  // One key per session: the session's whole state is in its hash (beside it, the
  // store's own event stream and expiry index).
  EXPECT_EQ(Cli(absl::StrCat("--scan --pattern '", prefix_, "{*'")),
            absl::StrCat(prefix_, "{acme/fields}"));
  EXPECT_EQ(Cli(absl::StrCat("TYPE '", prefix_, "events'")), "stream");
  EXPECT_EQ(Cli(absl::StrCat("TYPE '", prefix_, "expiry'")), "zset");
  // The stored size is the record's JSON size.
  absl::StatusOr<std::shared_ptr<const SessionText>> text = store_->GetText(key);
  ASSERT_OK(text);
  EXPECT_EQ(CliNumber("HGET " + KeyOf("fields") + " n"),
            static_cast<int64_t>((*text)->json().size()));
}

// A customer's index is a sorted set that cleans itself: a deleted session leaves it,
// an entry whose session is gone is pruned by the next listing, logout everywhere
// leaves no key behind, and the index expires with its last session.
TEST_F(RedisStoreTest, TheCustomerIndexCleansItself) {
  const std::string index = absl::StrCat("'", prefix_, "customer:{acme/c1}'");
  Create("x1", "c1");
  Create("x2", "c1");
  EXPECT_EQ(CliNumber("ZCARD " + index), 2);
  EXPECT_EQ(CliNumber("PTTL " + index), -1) << "customer sessions never expire";
  ASSERT_OK(service_->Delete({"acme", "x1"}));
  EXPECT_EQ(CliNumber("ZCARD " + index), 1);
  EXPECT_EQ(CliNumber("ZADD " + index + " inf ghost"), 1);  // a writer died mid-way, say
  absl::StatusOr<CustomerSessionPage> page =
      store_->ListCustomerSessions({"acme", "c1"}, "", 10);
  ASSERT_OK(page);
  ASSERT_EQ(page->sessions.size(), 1u);
  EXPECT_EQ(page->sessions[0].session_id, "x2");
  EXPECT_EQ(CliNumber("ZCARD " + index), 1) << "the ghost was pruned";
  EXPECT_EQ(*store_->EndCustomerSessions({"acme", "c1"}, std::nullopt), 1);
  EXPECT_EQ(CliNumber("EXISTS " + index), 0);
  SessionContext soon;
  soon.session_id = "soon";
  soon.customer_id = "c1";
  soon.version = 1;
  soon.created_at = soon.modified_at = absl::Now();
  soon.expires_at = absl::Now() + absl::Seconds(60);
  ASSERT_OK(store_->Import({ImportRecord{{"acme", "soon"}, soon}}));
  const int64_t ttl = CliNumber("PTTL " + index);
  EXPECT_GT(ttl, 50'000);
  EXPECT_LE(ttl, 60'000);
}

TEST_F(RedisStoreTest, ScriptsTheServerLostAreSentAgain) {
  const SessionKey key = Create("flush");
  ASSERT_EQ(Cli("SCRIPT FLUSH"), "OK");
  absl::StatusOr<int64_t> v = service_->SetAttribute(key, "after", true);
  ASSERT_OK(v);
  EXPECT_EQ(*v, 2);
  ASSERT_EQ(Cli("SCRIPT FLUSH"), "OK");
  ASSERT_OK(
      service_->Patch(key, Json{{"currency", "CHF"}, {"metadata", {{"version", 2}}}}));
  absl::StatusOr<SessionContext> s = service_->Get(key);
  ASSERT_OK(s);
  EXPECT_EQ(s->currency, "CHF");
  EXPECT_EQ(s->context["after"], true);
}

TEST_F(RedisStoreTest, AFullServerRefusesWritesAsStorageFullAndStillServesReads) {
  const SessionKey key = Create("full");
  ASSERT_EQ(Cli("CONFIG SET maxmemory 1"), "OK");
  EXPECT_TRUE(IsStorageFull(service_->SetAttribute(key, "a", 1).status()));
  EXPECT_TRUE(IsStorageFull(
      service_->Patch(key, Json{{"currency", "CHF"}, {"metadata", {{"version", 1}}}})
          .status()));
  EXPECT_TRUE(IsStorageFull(
      service_->Create("acme", SessionContext{.session_id = "new"}).status()));
  absl::StatusOr<SessionContext> s = service_->Get(key);
  ASSERT_OK(s);
  EXPECT_EQ(s->version, 1);  // nothing was half applied
  ASSERT_EQ(Cli("CONFIG SET maxmemory 0"), "OK");
  absl::StatusOr<int64_t> v = service_->SetAttribute(key, "a", 1);
  ASSERT_OK(v);
  EXPECT_EQ(*v, 2);
}

TEST_F(RedisStoreTest, TamperedHashesAreDataLossNotACrash) {
  Create("sized");
  Create("versioned");
  ASSERT_EQ(Cli("HSET " + KeyOf("sized") + " n 5"), "0");
  EXPECT_TRUE(absl::IsDataLoss(store_->Get({"acme", "sized"}).status()));
  ASSERT_EQ(Cli("HSET " + KeyOf("versioned") + " v abc"), "0");
  EXPECT_TRUE(absl::IsDataLoss(store_->GetText({"acme", "versioned"}).status()));
  ASSERT_EQ(Cli("HDEL " + KeyOf("versioned") + " v"), "1");
  EXPECT_TRUE(absl::IsDataLoss(store_->GetText({"acme", "versioned"}).status()));
  // The walk skips what no longer decodes and goes on.
  Create("fine");
  int visited = 0;
  ASSERT_OK(store_->ForEach(
      [&](const SessionKey&, const SessionContext&) { return ++visited; }));
  EXPECT_EQ(visited, 1);
}

TEST_F(RedisStoreTest, ThePoolNeverOpensMoreThanPoolSize) {
  absl::StatusOr<std::unique_ptr<SessionStore>> small =
      Open(testing::WithQuery(factory_.Uri(), "pool_size=2"));
  ASSERT_OK(small);
  SessionService service(small->get(), ServiceOptions{});
  const SessionKey key = Create("pooled");
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) failures += !service.Get(key).ok();
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  std::map<std::string, double> stats;
  for (const StoreStat& s : (*small)->Stats()) stats[s.name] = s.value;
  EXPECT_LE(stats["sessionctx_redis_pool_open"], 2);
  EXPECT_EQ(stats["sessionctx_redis_pool_size"], 2);
  EXPECT_GE(stats["sessionctx_redis_round_trips_total"], 400);
}

// Writers that record every acknowledged version; the test compares them with what
// Redis holds after it came back.
struct Writers {
  explicit Writers(SessionService* service) : service(service) {}
  void Start(int threads, int sessions) {
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([this, t, sessions] {
        for (int i = 0; !stop; ++i) {
          const SessionKey key{"acme", absl::StrCat("w", (t * 7 + i) % sessions)};
          absl::StatusOr<int64_t> v = service->SetAttribute(key, absl::StrCat("t", t), i);
          if (v.ok()) {
            std::lock_guard<std::mutex> lock(mu);
            acked[key.session_id] = std::max(acked[key.session_id], *v);
            ++acks;
          } else if (absl::IsUnavailable(v.status())) {
            ++refused;
            std::this_thread::sleep_for(milliseconds(5));
          } else {
            ++other;
            last_other = v.status().ToString();
          }
        }
      });
    }
  }
  void Stop() {
    stop = true;
    for (std::thread& t : pool) t.join();
  }
  SessionService* service;
  std::vector<std::thread> pool;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> acks{0}, refused{0}, other{0};
  std::mutex mu;
  std::map<std::string, int64_t> acked;  // guarded by mu
  std::string last_other;                // last error that was neither OK nor Unavailable
};

TEST_F(RedisStoreTest, RestartAndKillNineOfRedisMidWritesLoseNothingAcknowledged) {
  absl::StatusOr<std::unique_ptr<SessionStore>> store =
      Open(testing::WithQuery(factory_.Uri(), "timeout_ms=500"));
  ASSERT_OK(store);
  ServiceOptions options;
  options.anonymous_ttl = absl::Hours(1);
  SessionService service(store->get(), options);
  absl::StatusOr<EventPage> start = (*store)->ReadEvents({.after = ""});
  ASSERT_OK(start);
  constexpr int kSessions = 20;
  for (int i = 0; i < kSessions; ++i) {
    ASSERT_OK(service.Create("acme", SessionContext{.session_id = absl::StrCat("w", i)}));
  }
  for (const char* how : {"stop", "kill"}) {
    SCOPED_TRACE(how);
    Writers writers(&service);
    writers.Start(4, kSessions);
    std::this_thread::sleep_for(milliseconds(300));
    const int64_t acks_before = writers.acks;
    ASSERT_EQ(std::system(absl::StrCat(Ctl(), " ", how, " >/dev/null").c_str()), 0);
    std::this_thread::sleep_for(milliseconds(500));  // the outage
    ASSERT_EQ(std::system(absl::StrCat(Ctl(), " start >/dev/null").c_str()), 0);
    // The store reconnects by itself: writes are acknowledged again.
    const int64_t acks_at_restart = writers.acks;
    const auto deadline = steady_clock::now() + std::chrono::seconds(10);
    while (writers.acks < acks_at_restart + 100 && steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(20));
    }
    writers.Stop();
    EXPECT_GT(acks_before, 0);
    EXPECT_GE(writers.acks, acks_at_restart + 100)
        << "writes did not resume after the restart";
    EXPECT_GT(writers.refused, 0) << "no write met the outage";
    EXPECT_EQ(writers.other, 0) << writers.last_other;
    for (const auto& [id, version] : writers.acked) {
      absl::StatusOr<SessionContext> s = service.Get({"acme", id});
      ASSERT_OK(s);
      EXPECT_GE(s->version, version) << id << ": an acknowledged write was lost";
    }
    std::printf(
        "redis %s: %lld writes acknowledged, %lld refused (503) during the outage, lost: "
        "0\n",
        how, static_cast<long long>(writers.acks.load()),
        static_cast<long long>(writers.refused.load()));
  }
  // The feed resumes across both restarts from the position taken before: each
  // session's events in version order, each once, up to its last acknowledged write.
  std::map<std::string, std::vector<int64_t>> seen;
  std::string after = start->next;
  for (;;) {
    absl::StatusOr<EventPage> page = (*store)->ReadEvents({.after = after, .limit = 500});
    ASSERT_OK(page);
    for (const SessionEvent& e : page->events)
      seen[e.key.session_id].push_back(e.version);
    if (page->events.empty()) break;
    after = page->next;
  }
  ASSERT_EQ(seen.size(), static_cast<size_t>(kSessions));
  for (const auto& [id, versions] : seen) {
    for (size_t i = 0; i < versions.size(); ++i) {
      EXPECT_EQ(versions[i], static_cast<int64_t>(i) + 1) << id << ": event " << i;
    }
    absl::StatusOr<SessionContext> s = service.Get({"acme", id});
    ASSERT_OK(s);
    EXPECT_EQ(versions.back(), s->version) << id << ": the last write has its event";
  }
}

TEST_F(RedisStoreTest, DurabilityReplicasFailsAWriteNoReplicaConfirmedAndPassesWithOne) {
  absl::StatusOr<std::unique_ptr<SessionStore>> waiting =
      Open(testing::WithQuery(factory_.Uri(), "durability=replicas:1&timeout_ms=300"));
  ASSERT_OK(waiting);
  SessionService service(waiting->get(), ServiceOptions{});
  absl::StatusOr<SessionContext> created =
      service.Create("acme", SessionContext{.session_id = "waited"});
  ASSERT_TRUE(absl::IsUnavailable(created.status())) << created.status();
  EXPECT_NE(created.status().message().find("replicas"), absl::string_view::npos);
  EXPECT_FALSE(IsStorageFull(created.status()));

  // A real replica: the same write now passes.
  testing::TempDir dir;
  const int port = FreePort();
  const int64_t master_port = CliNumber("CONFIG GET port | tail -n 1");
  ASSERT_GT(master_port, 0);
  ASSERT_EQ(Cli("CONFIG SET repl-diskless-sync-delay 0"),
            "OK");  // the first sync at once
  ASSERT_EQ(
      std::system(absl::StrCat(
                      "redis-server --bind 127.0.0.1 --port ", port, " --dir ",
                      dir.path().string(), " --daemonize yes --save '' --pidfile ",
                      dir.path().string(), "/replica.pid --logfile ", dir.path().string(),
                      "/replica.log --replicaof 127.0.0.1 ", master_port, " >/dev/null")
                      .c_str()),
      0);
  bool linked = false;
  for (int i = 0; i < 100 && !linked; ++i) {
    linked = Cli("INFO replication").find("connected_slaves:1") != std::string::npos &&
             Cli("INFO replication").find("state=online") != std::string::npos;
    if (!linked) std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(linked) << Cli("INFO replication");
  absl::StatusOr<SessionContext> again =
      service.Create("acme", SessionContext{.session_id = "waited2"});
  EXPECT_OK(again);
  if (again.ok()) EXPECT_OK(service.SetAttribute({"acme", "waited2"}, "a", 1));
  (void)std::system(
      absl::StrCat("redis-cli -p ", port, " shutdown nosave >/dev/null 2>&1").c_str());
  for (int i = 0;
       i < 50 && Cli("INFO replication").find("connected_slaves:0") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(milliseconds(100));
  }
}

TEST_F(RedisStoreTest, KillNineOfTheAppLosesNoAcknowledgedWrite) {
  std::mt19937 rng(std::random_device{}());
  std::map<std::string, int64_t> acked;
  int64_t acks = 0;
  for (int round = 0; round < 3; ++round) {
    testing::KillWriterOnce(factory_.Uri(), round, rng, acked, &acks);
    if (HasFatalFailure()) return;
  }
  ASSERT_FALSE(acked.empty());
  for (const auto& [id, version] : acked) {
    absl::StatusOr<SessionContext> s = store_->Get({"acme", id});
    ASSERT_OK(s);
    EXPECT_GE(s->version, version) << id;
  }
  std::printf("kill -9 of the app, 3 rounds: %lld acknowledged writes checked\n",
              static_cast<long long>(acks));
}

}  // namespace
}  // namespace sessionctx
