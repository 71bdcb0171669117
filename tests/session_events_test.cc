// The event feed, on every backend that keeps one: every committed write yields
// exactly one event of its type and version, in order per session; a refused write
// yields none; pages, tenants, the newest position; resuming after a restart loses
// and repeats nothing; retention refuses a position it dropped; concurrent writers
// checked against a reader that follows them, exactly; a kill -9 of the writer
// loses no event of an acknowledged write.
#include <atomic>
#include <map>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/kill_writer.h"
#include "tests/store_conformance.h"

namespace sessionctx {
namespace {

// EventBackends: the backends that keep an event feed (all of them).
std::vector<std::string> EventBackends() {
  std::vector<std::string> out;
  for (const std::string& b : testing::ConformanceBackends()) {
    out.push_back(b);
  }
  return out;
}

using Seen = std::tuple<std::string, EventType, int64_t>;  // session id, type, version

// Numbers: a position's numbers (one, or one per bucket of a Redis Cluster; "0" is
// none yet anywhere).
std::vector<uint64_t> Numbers(const std::string& position) {
  std::vector<uint64_t> out;
  for (absl::string_view part : absl::StrSplit(position, '.')) {
    uint64_t n = 0;
    EXPECT_TRUE(absl::SimpleAtoi(part, &n)) << position;
    out.push_back(n);
  }
  return out;
}

// After: whether position `a` comes after `b` (in every bucket at least as far, and
// not the same).
bool After(const std::string& a, const std::string& b) {
  std::vector<uint64_t> x = Numbers(a), y = Numbers(b);
  if (x.size() == 1 && x[0] == 0) x.assign(y.size(), 0);
  if (y.size() == 1 && y[0] == 0) y.assign(x.size(), 0);
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] < y[i]) return false;
  }
  return x != y;
}

// PerSession: each session's (type, version) in feed order.
std::map<std::string, std::vector<std::pair<EventType, int64_t>>> PerSession(
    const std::vector<Seen>& seen) {
  std::map<std::string, std::vector<std::pair<EventType, int64_t>>> out;
  for (const auto& [id, type, version] : seen) out[id].emplace_back(type, version);
  return out;
}

class SessionEvents : public StoreConformance {
 protected:
  // Ordered: whether the feed orders all events (one position per store); a Redis
  // Cluster orders each bucket's, so each session's (docs/events.md).
  bool Ordered() const { return GetParam() != "redis_cluster"; }

  // ExpectSame: `actual` is `expected`: in the same order, or where the feed orders
  // only each session's events, in the same order per session.
  void ExpectSame(const std::vector<Seen>& actual, const std::vector<Seen>& expected) {
    if (Ordered()) {
      EXPECT_EQ(actual, expected);
    } else {
      EXPECT_EQ(PerSession(actual), PerSession(expected));
    }
  }

  // NeverGiven: a well-formed position far past any this test's feed gives.
  std::string NeverGiven() const {
    if (Ordered()) return "999999";
    std::string out = "999999";
    for (int b = 1; b < 128; ++b) out += ".0";
    return out;
  }

  // Open the store again with `options` (a fresh one for memory).
  void Reopen(EventOptions options = {}) { OpenStore(options); }

  // Tail: the newest position (where a reader starting now begins).
  std::string Tail() {
    absl::StatusOr<EventPage> page = store_->ReadEvents({.after = ""});
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) return "";
    EXPECT_TRUE(page->events.empty());
    return page->next;
  }

  // ReadAll: every event after `after`, `limit` a page; fails the test on an error
  // or a position out of order. `*next` (if given) gets where to resume.
  std::vector<SessionEvent> ReadAll(const std::string& after, int limit = 7,
                                    std::string* next = nullptr,
                                    std::optional<std::string> tenant = std::nullopt) {
    std::vector<SessionEvent> all;
    std::string at = after;
    for (int pages = 0; pages < 100000; ++pages) {
      absl::StatusOr<EventPage> page =
          store_->ReadEvents({.after = at, .limit = limit, .tenant = tenant});
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      EXPECT_LE(page->events.size(), static_cast<size_t>(limit));
      for (const SessionEvent& e : page->events) {
        EXPECT_TRUE(After(e.position, at)) << "positions increase";
        at = e.position;
        all.push_back(e);
      }
      if (page->next == at && page->events.empty()) break;
      at = page->next;
    }
    if (next) *next = at;
    return all;
  }

  static std::vector<Seen> Brief(const std::vector<SessionEvent>& events) {
    std::vector<Seen> out;
    for (const SessionEvent& e : events)
      out.emplace_back(e.key.session_id, e.type, e.version);
    return out;
  }
};

TEST_P(SessionEvents, EveryCommittedWriteYieldsOneEventOfItsTypeAndVersion) {
  const std::string start = Tail();
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1"}));  // v1
  ASSERT_OK(service_->Patch(
      {"acme", "s1"}, Json{{"currency", "CHF"}, {"metadata", {{"version", 1}}}}));  // v2
  ASSERT_OK(service_->SetAttribute({"acme", "s1"}, "gift wrap", true));             // v3
  ASSERT_OK(service_->DeleteAttribute({"acme", "s1"}, "absent"));     // nothing: no event
  ASSERT_OK(service_->DeleteAttribute({"acme", "s1"}, "gift wrap"));  // v4
  ASSERT_OK(
      service_->Put({"acme", "s1"}, Json{{"metadata", {{"version", 4}}}}, {}));  // v5
  ASSERT_OK(service_->Put({"acme", "s2"}, Json::object(), {.upsert = true}));    // s2 v1
  ASSERT_OK(service_->AttachCustomer({"acme", "s1"}, "c1"));                     // v6
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s3"}));
  ASSERT_OK(service_->AttachCustomer({"acme", "s3"}, "c1"));     // s3 v2
  ASSERT_OK(service_->Delete({"acme", "s2"}));                   // s2 v1
  ASSERT_OK(store_->EndCustomerSessions({"acme", "c1"}, "s3"));  // s1 v6
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s4"}));
  clock_.Advance(absl::Hours(2));
  ASSERT_OK(store_->PurgeExpired());  // s4 expired (on stores that purge)
  std::vector<SessionEvent> events = ReadAll(start);
  std::vector<Seen> expected = {
      {"s1", EventType::kCreated, 1}, {"s1", EventType::kChanged, 2},
      {"s1", EventType::kChanged, 3}, {"s1", EventType::kChanged, 4},
      {"s1", EventType::kChanged, 5}, {"s2", EventType::kCreated, 1},
      {"s1", EventType::kChanged, 6}, {"s3", EventType::kCreated, 1},
      {"s3", EventType::kChanged, 2}, {"s2", EventType::kDeleted, 1},
      {"s1", EventType::kEnded, 6},   {"s4", EventType::kCreated, 1},
      {"s4", EventType::kExpired, 1}};
  ExpectSame(Brief(events), expected);
  for (const SessionEvent& e : events) {
    EXPECT_EQ(e.key.tenant, "acme");
    EXPECT_GE(e.time, kStart);
  }
  // An expired session replaced by a new one: its expiry first, then the creation.
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s5"}));
  const std::string before = Tail();
  clock_.Advance(absl::Hours(2));
  ASSERT_OK(store_->Create({"acme", "s5"}, Record("s5")));
  ExpectSame(Brief(ReadAll(before)),
             {{"s5", EventType::kExpired, 1}, {"s5", EventType::kCreated, 1}});
}

TEST_P(SessionEvents, RefusedWritesYieldNone) {
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1"}));
  ASSERT_OK(service_->AttachCustomer({"acme", "s1"}, "c1"));
  const std::string tail = Tail();
  EXPECT_STATUS(store_->CompareAndSet({"acme", "s1"}, 1, Record("s1", 2)), kAborted);
  EXPECT_STATUS(service_->Patch({"acme", "s1"}, Json{{"metadata", {{"version", 9}}}}),
                kAborted);
  EXPECT_STATUS(service_->SetAttribute({"acme", "s1"}, "a", 1, CustomerGuard{"c2"}),
                kPermissionDenied);
  EXPECT_STATUS(service_->SetAttribute({"acme", "s1"}, "a", 1, std::nullopt, 7),
                kAborted);
  EXPECT_STATUS(service_->SetAttribute({"acme", "s1"}, "big", std::string(2 << 20, 'x')),
                kResourceExhausted);
  EXPECT_STATUS(store_->Create({"acme", "s1"}, Record("s1")), kAlreadyExists);
  EXPECT_STATUS(service_->Delete({"acme", "nope"}), kNotFound);
  EXPECT_STATUS(service_->Delete({"acme", "s1"}, 1), kAborted);
  EXPECT_STATUS(service_->Patch({"acme", "nope"}, Json{{"metadata", {{"version", 1}}}}),
                kNotFound);
  EXPECT_TRUE(ReadAll(tail).empty());
  EXPECT_EQ(Tail(), tail);
}

TEST_P(SessionEvents, PagesTenantsAndTheNewestPosition) {
  const std::string start = Tail();
  for (int i = 0; i < 25; ++i) {
    ASSERT_OK(service_->Create(i % 3 == 0 ? "other" : "acme",
                               SessionContext{.session_id = absl::StrCat("p", i)}));
  }
  std::string next;
  std::vector<SessionEvent> all = ReadAll(start, 10, &next);
  ASSERT_EQ(all.size(), 25u);
  std::vector<Seen> created;
  for (int i = 0; i < 25; ++i)
    created.emplace_back(absl::StrCat("p", i), EventType::kCreated, 1);
  ExpectSame(Brief(all), created);
  EXPECT_EQ(next, Tail());
  EXPECT_EQ(next, all.back().position);
  std::vector<SessionEvent> acme = ReadAll(start, 4, nullptr, "acme");
  EXPECT_EQ(acme.size(), 16u);
  for (const SessionEvent& e : acme) EXPECT_EQ(e.key.tenant, "acme");
  // A reader starting now sees only what follows.
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "later"}));
  EXPECT_EQ(Brief(ReadAll(next)), (std::vector<Seen>{{"later", EventType::kCreated, 1}}));
}

TEST_P(SessionEvents, BadQueriesAreInvalidArguments) {
  EXPECT_STATUS(store_->ReadEvents({.after = "0", .limit = 0}), kInvalidArgument);
  EXPECT_STATUS(store_->ReadEvents({.after = "0", .limit = kMaxEventPage + 1}),
                kInvalidArgument);
  EXPECT_STATUS(store_->ReadEvents({.after = "12abc"}), kInvalidArgument);
  EXPECT_STATUS(store_->ReadEvents({.after = "-1"}), kInvalidArgument);
  EXPECT_STATUS(store_->ReadEvents({.after = "0", .tenant = ""}), kInvalidArgument);
  // A position this feed never gave is not silently "nothing new".
  absl::StatusOr<EventPage> ahead = store_->ReadEvents({.after = NeverGiven()});
  EXPECT_TRUE(IsEventsGone(ahead.status())) << ahead.status();
}

TEST_P(SessionEvents, ResumingAfterARestartLosesAndRepeatsNothing) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(
        service_->Create("acme", SessionContext{.session_id = absl::StrCat("r", i)}));
  }
  std::string mid;
  ASSERT_EQ(ReadAll("0", 3, &mid).size(), 5u);
  for (int i = 5; i < 9; ++i) {
    ASSERT_OK(
        service_->Create("acme", SessionContext{.session_id = absl::StrCat("r", i)}));
  }
  Reopen();
  if (GetParam() == "memory") {
    // A memory store's feed dies with it: the old position is refused, not followed.
    EXPECT_TRUE(IsEventsGone(store_->ReadEvents({.after = mid}).status()));
    return;
  }
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "r9"}));
  std::vector<SessionEvent> rest = ReadAll(mid, 2);
  ASSERT_EQ(rest.size(), 5u);
  std::vector<Seen> expected;
  for (int i = 5; i < 10; ++i)
    expected.emplace_back(absl::StrCat("r", i), EventType::kCreated, 1);
  ExpectSame(Brief(rest), expected);
  // Positions keep increasing across the restart.
  EXPECT_TRUE(After(rest.back().position, rest[3].position));
}

TEST_P(SessionEvents, RetentionRefusesAPositionItDropped) {
  Reopen({.max_count = 5});
  const std::string start = Tail();
  // Twelve events of one session (on a Redis Cluster: of one bucket, which keeps its
  // share of the count, at least one).
  // Read as they come: memory's ring holds five at a time.
  std::vector<SessionEvent> all;
  std::string at = start;
  for (int i = 0; i < 12; ++i) {
    if (i == 0) {
      ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "t"}));
    } else {
      ASSERT_OK(service_->SetAttribute({"acme", "t"}, "n", i));
    }
    for (SessionEvent& e : ReadAll(at, 7, &at)) all.push_back(std::move(e));
  }
  ASSERT_EQ(all.size(), 12u);
  ASSERT_OK(store_->PurgeExpired());  // trims
  absl::StatusOr<EventPage> gone = store_->ReadEvents({.after = start});
  EXPECT_TRUE(IsEventsGone(gone.status())) << gone.status();
  EXPECT_NE(gone.status().message().find("read the sessions again"), std::string::npos);
  // The newest are still there, and a reader from the newest goes on.
  const size_t kept = Ordered() ? 5 : 1;
  const std::vector<SessionEvent> rest = ReadAll(all[all.size() - kept - 1].position);
  ASSERT_EQ(rest.size(), kept);
  EXPECT_EQ(rest.back().version, 12);
  EXPECT_TRUE(IsEventsGone(
      store_->ReadEvents({.after = all[all.size() - kept - 2].position}).status()));
}

TEST_P(SessionEvents, RetentionByAgeDropsWhatIsOlder) {
  const std::string start = Tail();
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK(
        service_->Create("acme", SessionContext{.session_id = absl::StrCat("a", i)}));
  }
  const std::string tail = Tail();
  clock_.Advance(absl::Hours(25));  // past the default age (a day)
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "fresh"}));
  ASSERT_OK(store_->PurgeExpired());  // the three expire; the day-old events go
  EXPECT_TRUE(IsEventsGone(store_->ReadEvents({.after = start}).status()));
  const std::vector<Seen> rest = Brief(ReadAll(tail));
  ASSERT_EQ(rest.size(), 4u);
  if (Ordered()) {
    EXPECT_EQ(rest[0], Seen("fresh", EventType::kCreated, 1));
  }
  EXPECT_EQ(std::multiset<Seen>(rest.begin(), rest.end()),
            (std::multiset<Seen>{{"fresh", EventType::kCreated, 1},
                                 {"a0", EventType::kExpired, 1},
                                 {"a1", EventType::kExpired, 1},
                                 {"a2", EventType::kExpired, 1}}));
}

TEST_P(SessionEvents, TurnedOffTheFeedIsRefusedAndWritesWork) {
  Reopen({.enabled = false});
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "off"}));
  EXPECT_STATUS(store_->ReadEvents({.after = ""}), kUnimplemented);
}

// Writers on many sessions while a reader follows the feed: the reader sees exactly
// the acknowledged writes (each once), in order per session, although the writers'
// batches commit out of position order.
TEST_P(SessionEvents, AReaderFollowingConcurrentWritersSeesEachWriteOnceInOrder) {
  constexpr int kWriters = 4, kSessions = 12, kWrites = 150;
  for (int s = 0; s < kSessions; ++s) {
    ASSERT_OK(
        service_->Create("acme", SessionContext{.session_id = absl::StrCat("w", s)}));
  }
  const std::string start = Tail();
  std::atomic<bool> done{false};
  std::vector<SessionEvent> followed;
  std::thread reader([&] {
    std::string at = start;
    for (bool last = false; !last;) {
      last = done.load();
      absl::StatusOr<EventPage> page = store_->ReadEvents({.after = at, .limit = 50});
      if (!page.ok()) {
        ADD_FAILURE() << page.status();
        return;
      }
      followed.insert(followed.end(), page->events.begin(), page->events.end());
      at = page->next;
      if (!page->events.empty()) last = false;
    }
  });
  std::mutex mu;
  std::set<std::pair<std::string, int64_t>> acked;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kWrites; ++i) {
        const std::string id = absl::StrCat("w", (w * 7 + i) % kSessions);
        absl::StatusOr<int64_t> v = service_->SetAttribute({"acme", id}, "n", i);
        ASSERT_OK(v);
        std::lock_guard lock(mu);
        acked.emplace(id, *v);
      }
    });
  }
  for (std::thread& t : writers) t.join();
  done = true;
  reader.join();
  std::set<std::pair<std::string, int64_t>> seen;
  std::map<std::string, int64_t> last_version;
  for (const SessionEvent& e : followed) {
    EXPECT_EQ(e.type, EventType::kChanged);
    EXPECT_TRUE(seen.emplace(e.key.session_id, e.version).second)
        << e.key.session_id << " v" << e.version << " seen twice";
    EXPECT_GT(e.version, last_version[e.key.session_id]) << "in order per session";
    last_version[e.key.session_id] = e.version;
  }
  EXPECT_EQ(seen, acked);
  EXPECT_EQ(followed.size(), static_cast<size_t>(kWriters * kWrites));
  ExpectSame(Brief(ReadAll(start, 1000)), Brief(followed));  // a second reader
}

// A writer process is killed (kill -9): the event of every write it was told had
// committed is in the feed when the store opens again.
TEST_P(SessionEvents, EveryAcknowledgedWriteHasItsEventAfterKillNine) {
  if (GetParam() == "memory") {
    // A memory store dies with its process: there is nothing to open again. The
    // same check runs in-process instead.
    const std::string start = Tail();
    ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "m1"}));
    ASSERT_OK(service_->SetAttribute({"acme", "m1"}, "n", 1));
    EXPECT_EQ(Brief(ReadAll(start)), (std::vector<Seen>{{"m1", EventType::kCreated, 1},
                                                        {"m1", EventType::kChanged, 2}}));
    return;
  }
  const std::string start = Tail();
  service_.reset();
  store_.reset();  // rocksdb: one process at a time
  std::mt19937 rng(24);
  std::map<std::string, int64_t> highest;
  int64_t acks = 0;
  std::set<std::pair<std::string, int64_t>> acked;
  testing::KillWriterOnce(factory_.Uri(), 1, rng, highest, &acks, &acked);
  ASSERT_GT(acked.size(), 50u) << "the writer acknowledged too little before the kill";
  Reopen();
  std::set<std::pair<std::string, int64_t>> written;
  for (const SessionEvent& e : ReadAll(start, 1000)) {
    EXPECT_TRUE(e.type == EventType::kCreated || e.type == EventType::kChanged);
    EXPECT_TRUE(written.emplace(e.key.session_id, e.version).second) << "twice";
  }
  for (const auto& a : acked) {
    EXPECT_TRUE(written.contains(a))
        << a.first << " v" << a.second << " acknowledged, no event";
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, SessionEvents, ::testing::ValuesIn(EventBackends()),
                         testing::BackendName);

}  // namespace
}  // namespace sessionctx
