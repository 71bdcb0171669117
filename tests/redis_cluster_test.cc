// What redis+cluster:// promises beyond the conformance suite (which runs on the
// three-master cluster too), against real redis-server processes that
// scripts/with-redis-cluster.sh started: the slot of every key as Redis computes it,
// sessions spread over every master with each node's gauges, slots moved between
// masters under load, and a master killed under load while its replica takes over.
// The last two change the spare cluster: they run alone (SERIAL).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backends/redis/redis_client.h"
#include "backends/redis/redis_router.h"
#include "gtest/gtest.h"
#include "sessionctx/session_service.h"
#include "sessionctx/session_store.h"
#include "sessionctx/store_factory.h"
#include "tests/redis_cluster_ctl.h"
#include "tests/store_fixture.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

using testing::ClusterCtl;
using testing::ClusterPorts;
using testing::NodeCli;
using testing::Shell;

std::unique_ptr<redis::Connection> Connect(int port) {
  redis::RedisOptions options;
  options.host = "127.0.0.1";
  options.port = port;
  absl::StatusOr<std::unique_ptr<redis::Connection>> conn =
      redis::Connection::Open(options);
  return conn.ok() ? *std::move(conn) : nullptr;
}

#define REQUIRE_CLUSTER(uri)                                             \
  do {                                                                   \
    if ((uri).empty() || ClusterCtl().empty()) {                         \
      const char* why =                                                  \
          "SESSIONCTX_TEST_REDIS_CLUSTER_URI/_CTL are not set: start a " \
          "cluster with scripts/with-redis-cluster.sh";                  \
      if (testing::InCi()) FAIL() << why;                                \
      GTEST_SKIP() << why;                                               \
    }                                                                    \
  } while (0)

TEST(RedisClusterSlots, KeySlotAgreesWithClusterKeyslotOverManyKeys) {
  REQUIRE_CLUSTER(testing::RedisClusterTestUri());
  std::unique_ptr<redis::Connection> conn = Connect(ClusterPorts("main").front());
  ASSERT_NE(conn, nullptr);
  std::mt19937 rng(7);
  const std::string alphabet = "ab{}/:-_xyz019é";
  std::vector<std::string> keys = {"",
                                   "{}",
                                   "{}a",
                                   "a{}b",
                                   "{a}",
                                   "x{a}y{b}",
                                   "{{a}}",
                                   "}{a}",
                                   "sessionctx:{acme/s1}",
                                   "{user1000}.following"};
  while (keys.size() < 3000) {
    std::string k;
    const int n = static_cast<int>(rng() % 24);
    for (int i = 0; i < n; ++i) k.push_back(alphabet[rng() % alphabet.size()]);
    if (rng() % 3 == 0)
      k = absl::StrCat("p", rng() % 100, ":{t", rng(), "/s", rng(), "}");
    keys.push_back(k);
  }
  std::vector<redis::Command> asks(keys.size());
  std::vector<redis::Command*> commands;
  for (size_t i = 0; i < keys.size(); ++i) {
    asks[i].Add("CLUSTER").Add("KEYSLOT").Add(keys[i]);
    commands.push_back(&asks[i]);
  }
  absl::StatusOr<std::vector<redis::Reply>> replies = conn->Pipeline(commands);
  ASSERT_OK(replies);
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ((*replies)[i]->type, REDIS_REPLY_INTEGER);
    EXPECT_EQ(redis::KeySlot(keys[i]), (*replies)[i]->integer) << "key " << keys[i];
  }
}

TEST(RedisClusterUri, ErrorsNameWhatIsWrong) {
  struct Case {
    const char* uri;
    const char* message;
  } cases[] = {
      {"redis+cluster://127.0.0.1:7000,127.0.0.1:x", "port"},
      {"redis+cluster://127.0.0.1:7000,", "no host"},
      {"redis+cluster://127.0.0.1:7000/2", "database 0"},
      {"redis://127.0.0.1:7000,127.0.0.1:7001", "redis+cluster://"},
      {"redis+cluster://127.0.0.1:7000?pool_size=0", "pool_size"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<redis::RedisOptions> parsed = redis::ParseRedisUri(c.uri);
    ASSERT_FALSE(parsed.ok()) << c.uri;
    EXPECT_TRUE(absl::IsInvalidArgument(parsed.status()));
    EXPECT_NE(parsed.status().message().find(c.message), absl::string_view::npos)
        << c.uri << ": " << parsed.status();
  }
  absl::StatusOr<redis::RedisOptions> ok = redis::ParseRedisUri(
      "redis+cluster://u:p%40w@10.0.0.1:7000,10.0.0.2:7001,10.0.0.3?prefix=x:");
  ASSERT_OK(ok);
  EXPECT_TRUE(ok->cluster);
  ASSERT_EQ(ok->seeds.size(), 3u);
  EXPECT_EQ(ok->seeds[1], (std::pair<std::string, int>{"10.0.0.2", 7001}));
  EXPECT_EQ(ok->seeds[2].second, 6379);
  EXPECT_EQ(ok->password, "p@w");
  // No node answers: Unavailable, naming the cluster.
  absl::StatusOr<std::unique_ptr<SessionStore>> store =
      OpenSessionStore("redis+cluster://127.0.0.1:1,127.0.0.1:2?timeout_ms=200", {});
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(absl::IsUnavailable(store.status())) << store.status();
  EXPECT_NE(store.status().message().find("seed"), absl::string_view::npos);
}

// Every master forgets the scripts (a restart, SCRIPT FLUSH, a replica promoted that
// never saw them): an import batch spread over all of them, and single writes, send
// the scripts' source again where they were missing and land.
// The buckets' layout: each tag's slot is the middle of its share of the slots (so
// masters serving equal ranges serve equal shares of the buckets), and a session's
// key, its bucket's event stream and its expiry index share one slot.
TEST(RedisClusterSlots, ABucketsSessionsStreamAndExpiryIndexShareOneSlot) {
  std::set<std::string> tags;
  for (int b = 0; b < redis::kBuckets; ++b) {
    const std::string& tag = redis::BucketTag(b);
    EXPECT_EQ(redis::KeySlot("{" + tag + "}"), b * 128 + 64) << tag;
    tags.insert(tag);
  }
  EXPECT_EQ(tags.size(), static_cast<size_t>(redis::kBuckets));
  std::map<int, int> per_bucket;
  for (int i = 0; i < 2000; ++i) {
    const std::string id = absl::StrCat("s", i);
    const std::string key = redis::SessionKeyName("p:", true, "acme", id);
    const int bucket = redis::BucketOf("acme/" + id);
    ++per_bucket[bucket];
    EXPECT_EQ(key, absl::StrCat("p:{", redis::BucketTag(bucket), "}acme/", id));
    EXPECT_EQ(redis::KeySlot(key),
              redis::KeySlot(absl::StrCat("p:events:{", redis::BucketTag(bucket), "}")));
  }
  EXPECT_EQ(per_bucket.size(), static_cast<size_t>(redis::kBuckets));
  EXPECT_EQ(redis::SessionKeyName("p:", false, "acme", "s1"), "p:{acme/s1}");
}

// A cluster holding sessions in the layout before buckets is refused at open, with
// what to do; a fresh one is marked with its layout.
TEST(RedisClusterStore, AClusterOfTheLayoutBeforeBucketsIsRefusedNotShownEmpty) {
  REQUIRE_CLUSTER(testing::RedisClusterTestUri());
  const std::string prefix = testing::FreshSchemaName() + ":";
  const std::string uri =
      testing::WithQuery(testing::RedisClusterTestUri(), "prefix=" + prefix);
  absl::StatusOr<std::unique_ptr<SessionStore>> fresh =
      OpenSessionStore(uri, StoreOptions{});
  ASSERT_OK(fresh);
  const std::string marker = prefix + "layout";
  const int marker_port = testing::SessionPortOf(marker);
  EXPECT_EQ(NodeCli(marker_port, "GET " + marker), "buckets:128");
  // An older store's session, under another prefix.
  const std::string old_prefix = testing::FreshSchemaName() + ":";
  const std::string old_key = old_prefix + "{acme/old}";
  ASSERT_EQ(NodeCli(testing::SessionPortOf(old_key), "HSET '" + old_key + "' v 1"), "1");
  absl::StatusOr<std::unique_ptr<SessionStore>> old = OpenSessionStore(
      testing::WithQuery(testing::RedisClusterTestUri(), "prefix=" + old_prefix),
      StoreOptions{});
  EXPECT_TRUE(absl::IsFailedPrecondition(old.status())) << old.status();
  EXPECT_NE(old.status().message().find("sessionctl export"), std::string::npos)
      << old.status();
  EXPECT_NE(old.status().message().find(old_key), std::string::npos) << old.status();
}

TEST(RedisClusterStore, ScriptsEveryMasterLostAreSentAgain) {
  testing::StoreFactory factory("redis_cluster");
  REQUIRE_CLUSTER(testing::RedisClusterTestUri());
  absl::StatusOr<std::unique_ptr<SessionStore>> store =
      factory.Open(StoreOptions{}.clock);
  ASSERT_OK(store);
  for (const int port : ClusterPorts("main"))
    ASSERT_EQ(NodeCli(port, "script flush"), "OK");
  std::vector<ImportRecord> records;
  const absl::Time now = absl::Now();
  for (int i = 0; i < 90; ++i) {
    SessionContext r;
    r.session_id = absl::StrCat("i", i);
    r.version = 3;
    r.created_at = r.modified_at = now;
    r.expires_at = now + absl::Hours(1);
    records.push_back(ImportRecord{{"acme", r.session_id}, r});
  }
  absl::StatusOr<ImportResult> imported = (*store)->Import(records, ImportOptions{});
  ASSERT_OK(imported);
  EXPECT_EQ(imported->written, 90);
  for (const int port : ClusterPorts("main"))
    ASSERT_EQ(NodeCli(port, "script flush"), "OK");
  SessionService service(store->get(), ServiceOptions{});
  for (int i = 0; i < 90; i += 7) {
    const SessionKey key{"acme", absl::StrCat("i", i)};
    absl::StatusOr<int64_t> v = service.SetAttribute(key, "after", true);
    ASSERT_OK(v);
    EXPECT_EQ(*v, 4);
    absl::StatusOr<SessionContext> s = service.Get(key);
    ASSERT_OK(s);
    EXPECT_EQ(s->context["after"], true);
  }
}

TEST(RedisClusterStore, SessionsSpreadOverEveryMasterWhoseGaugesNameIt) {
  testing::StoreFactory factory("redis_cluster");
  REQUIRE_CLUSTER(testing::RedisClusterTestUri());
  absl::StatusOr<std::unique_ptr<SessionStore>> store =
      factory.Open(StoreOptions{}.clock);
  ASSERT_OK(store);
  SessionService service(store->get(), ServiceOptions{});
  constexpr int kSessions = 300;
  for (int i = 0; i < kSessions; ++i) {
    ASSERT_OK(service.Create("acme", SessionContext{.session_id = absl::StrCat("s", i)}));
  }
  EXPECT_OK((*store)->Ready());
  std::map<std::string, double> slots, trips;
  double refreshes = -1;
  for (const StoreStat& s : (*store)->Stats()) {
    if (s.name == "sessionctx_redis_cluster_map_refreshes_total") refreshes = s.value;
    if (s.labels.size() != 1 || s.labels[0].first != "node") continue;
    if (s.name == "sessionctx_redis_cluster_slots") slots[s.labels[0].second] = s.value;
    if (s.name == "sessionctx_redis_round_trips_total")
      trips[s.labels[0].second] = s.value;
  }
  EXPECT_GE(refreshes, 1);
  double served = 0;
  for (const int port : ClusterPorts("main")) {
    const std::string node = absl::StrCat("127.0.0.1:", port);
    EXPECT_GT(slots[node], 0) << node;
    EXPECT_GT(trips[node], 0) << node << " served none of the sessions";
    served += slots[node];
  }
  EXPECT_EQ(served, redis::kSlots);
  int seen = 0;
  ASSERT_OK((*store)->ForEach([&](const SessionKey&, const SessionContext&) {
    ++seen;
    return true;
  }));
  EXPECT_EQ(seen, kSessions);
}

// Load: writers that each add attributes of their own ("w<thread>_<n>") to sessions
// of `ids`, and a reader; every acknowledged attribute recorded, every failure timed.
class Load {
 public:
  Load(SessionService* service, std::vector<std::string> ids)
      : service_(service), ids_(std::move(ids)), start_(steady_clock::now()) {}
  ~Load() { Stop(); }

  void Start(int writers) {
    for (int t = 0; t < writers; ++t) {
      threads_.emplace_back([this, t] {
        for (int n = 0; !stop_; ++n) {
          const std::string& id = ids_[(t * 7919 + n) % ids_.size()];
          const std::string name = absl::StrCat("w", t, "_", n);
          absl::StatusOr<int64_t> v = service_->SetAttribute({"acme", id}, name, n);
          Record(v.status(), id, name);
        }
      });
    }
    threads_.emplace_back([this] {
      for (int n = 0; !stop_; ++n) {
        absl::StatusOr<SessionContext> s = service_->Get({"acme", ids_[n % ids_.size()]});
        Record(s.status(), "", "");
      }
    });
  }
  void Stop() {
    stop_ = true;
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }
  double Now() const {
    return std::chrono::duration<double>(steady_clock::now() - start_).count();
  }
  int64_t acks() const { return acks_; }

  // Lost: acknowledged attributes missing from the store now.
  int64_t Lost() {
    int64_t lost = 0;
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, names] : acked_) {
      absl::StatusOr<SessionContext> s = service_->Get({"acme", id});
      for (const std::string& name : names) {
        if (!s.ok() || !s->context.contains(name)) ++lost;
      }
    }
    return lost;
  }

  std::mutex mu_;
  int64_t failed_ = 0, other_ = 0;  // guarded by mu_
  double first_failure_ = -1, last_failure_ = -1;
  std::string last_other_;

 private:
  void Record(const absl::Status& st, const std::string& id, const std::string& name) {
    if (st.ok()) {
      ++acks_;
      if (!id.empty()) {
        std::lock_guard<std::mutex> lock(mu_);
        acked_[id].push_back(name);
      }
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++failed_;
    if (first_failure_ < 0) first_failure_ = Now();
    last_failure_ = Now();
    if (!absl::IsUnavailable(st)) {
      ++other_;
      last_other_ = st.ToString();
    }
  }

  SessionService* service_;
  const std::vector<std::string> ids_;
  const steady_clock::time_point start_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> acks_{0};
  std::map<std::string, std::vector<std::string>> acked_;  // guarded by mu_
};

class RedisSpareCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_CLUSTER(testing::RedisSpareClusterUri());
    prefix_ = testing::FreshSchemaName() + ":";
  }
  absl::StatusOr<std::unique_ptr<SessionStore>> Open(const std::string& options) {
    return OpenSessionStore(testing::WithQuery(testing::RedisSpareClusterUri(),
                                               "prefix=" + prefix_ + options),
                            StoreOptions{});
  }
  std::vector<std::string> Ids(int n, int port = 0) {
    return testing::SessionIdsOn(port, prefix_, n);
  }
  std::string NodeId(int port) { return NodeCli(port, "cluster myid"); }
  void WaitOk() { ASSERT_TRUE(testing::WaitClusterOk("spare")); }
  std::string prefix_;
};

TEST_F(RedisSpareCluster, SlotsMovedUnderLoadLoseNothingAcknowledged) {
  absl::StatusOr<std::unique_ptr<SessionStore>> store = Open("");
  ASSERT_OK(store);
  SessionService service(store->get(), ServiceOptions{});
  const std::vector<std::string> ids = Ids(300);
  for (const std::string& id : ids) {
    ASSERT_OK(service.Create("acme", SessionContext{.session_id = id}));
  }
  // The two masters without a replica trade 2,000 slots each way, with their keys.
  const std::pair<int, int> replicated = testing::ReplicatedMaster();
  std::vector<int> movers;
  for (const int port : ClusterPorts("spare")) {
    if (port != replicated.first && port != replicated.second) movers.push_back(port);
  }
  ASSERT_EQ(movers.size(), 2u);
  Load load(&service, ids);
  load.Start(2);
  std::this_thread::sleep_for(milliseconds(300));
  const double began = load.Now();
  for (const auto& [from, to] :
       {std::pair{movers[0], movers[1]}, {movers[1], movers[0]}}) {
    // After a failover or a move the nodes take a moment to agree on the slots;
    // redis-cli moves slots only then.
    ASSERT_EQ(std::system(absl::StrCat(ClusterCtl(), " settled spare").c_str()), 0);
    const std::string out = Shell(absl::StrCat(
        "redis-cli --cluster reshard 127.0.0.1:", from, " --cluster-from ", NodeId(from),
        " --cluster-to ", NodeId(to), " --cluster-slots 2000 --cluster-yes"));
    ASSERT_NE(out.find("Moving slot"), std::string::npos) << out;
  }
  const double ended = load.Now();
  std::this_thread::sleep_for(milliseconds(300));
  load.Stop();
  WaitOk();
  const int64_t lost = load.Lost();
  int64_t redirects = 0;
  for (const StoreStat& s : (*store)->Stats()) {
    if (s.name == "sessionctx_redis_cluster_redirects_total") redirects += s.value;
  }
  std::printf(
      "reshard: 4000 slots moved in %.1f s under load; %lld writes and reads "
      "acknowledged, "
      "%lld failed (first at %.2f s, last at %.2f s, of %.2f-%.2f s), %lld redirects "
      "followed, lost: %lld\n",
      ended - began, static_cast<long long>(load.acks()),
      static_cast<long long>(load.failed_), load.first_failure_, load.last_failure_,
      began, ended, static_cast<long long>(redirects), static_cast<long long>(lost));
  EXPECT_EQ(lost, 0) << "acknowledged writes lost while slots moved";
  EXPECT_EQ(load.other_, 0) << load.last_other_;
  EXPECT_EQ(load.failed_, 0) << "requests failed while slots moved";
  EXPECT_GT(redirects, 0) << "no request met a moving slot";
  EXPECT_GT(load.acks(), 1000);
}

TEST_F(RedisSpareCluster, AMasterKilledUnderLoadIsReplacedByItsReplica) {
  // Two rounds: durability=server (asynchronous replication: what a failover can
  // lose, measured) and durability=replicas:1 (a write is acknowledged once the
  // replica has it: nothing acknowledged may be lost).
  for (const char* durability : {"server", "replicas:1"}) {
    SCOPED_TRACE(durability);
    prefix_ = testing::FreshSchemaName() + ":";
    WaitOk();
    const auto [master, replica] = testing::ReplicatedMaster();
    ASSERT_NE(master, 0) << "no master with a replica in the spare cluster";
    ASSERT_TRUE(testing::WaitReplicaLinked(replica));
    absl::StatusOr<std::unique_ptr<SessionStore>> store =
        Open(absl::StrCat("&timeout_ms=500&durability=", durability));
    ASSERT_OK(store);
    SessionService service(store->get(), ServiceOptions{});
    const std::vector<std::string> ids = Ids(100, master);  // all on the doomed master
    ASSERT_EQ(ids.size(), 100u);
    for (const std::string& id : ids) {
      ASSERT_OK(service.Create("acme", SessionContext{.session_id = id}));
    }
    Load load(&service, ids);
    load.Start(2);
    std::this_thread::sleep_for(milliseconds(500));
    const int64_t acks_before = load.acks();
    const double killed = load.Now();
    ASSERT_EQ(std::system(absl::StrCat(ClusterCtl(), " kill ", master).c_str()), 0);
    // The replica takes over (cluster-node-timeout 1000 ms, then an election).
    double promoted = -1;
    for (int i = 0; i < 300 && promoted < 0; ++i) {
      if (NodeCli(replica, "info replication").find("role:master") != std::string::npos) {
        promoted = load.Now();
      } else {
        std::this_thread::sleep_for(milliseconds(50));
      }
    }
    ASSERT_GT(promoted, 0) << "the replica was not promoted";
    WaitOk();
    const int64_t acks_at_promotion = load.acks();
    std::this_thread::sleep_for(milliseconds(1500));
    const int64_t acks_after = load.acks();
    load.Stop();
    // The old master comes back as the new one's replica.
    ASSERT_EQ(std::system(absl::StrCat(ClusterCtl(), " start ", master).c_str()), 0);
    WaitOk();
    const int64_t lost = load.Lost();
    std::printf(
        "failover (durability=%s): killed at %.2f s, replica master at %.2f s; %lld "
        "acknowledged before the kill, %lld after the promotion; %lld failed (first at "
        "%.2f s, last at %.2f s); acknowledged and lost: %lld\n",
        durability, killed, promoted, static_cast<long long>(acks_before),
        static_cast<long long>(acks_after - acks_at_promotion),
        static_cast<long long>(load.failed_), load.first_failure_, load.last_failure_,
        static_cast<long long>(lost));
    EXPECT_GT(acks_before, 0);
    EXPECT_GT(load.failed_, 0) << "no request met the failover";
    EXPECT_EQ(load.other_, 0) << "failures other than 503: " << load.last_other_;
    if (std::string(durability) == "server") {
      // Everything continues on the new master.
      EXPECT_GT(acks_after - acks_at_promotion, 100) << "requests did not resume";
      EXPECT_LT(load.last_failure_, promoted + 1.5)
          << "failures long after the promotion";
    } else {
      EXPECT_EQ(lost, 0) << "an acknowledged write was lost with durability=replicas:1";
    }
  }
}

}  // namespace
}  // namespace sessionctx
