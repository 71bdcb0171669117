// A customer's sessions, on every backend: listed a page at a time (none missing,
// none twice), ended all or all but one, exactly, while other writers run; the index
// after logins, imports, expiry, a restart and a kill -9 of the writer.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/kill_writer.h"
#include "tests/store_conformance.h"

namespace sessionctx {
namespace {

class CustomerSessions : public StoreConformance {
 protected:
  // A customer's session as a login leaves it: never expires.
  SessionContext OfCustomer(const std::string& id, const std::string& customer) {
    SessionContext s = Record(id);
    s.customer_id = customer;
    s.expires_at = absl::InfiniteFuture();
    return s;
  }

  // ListAll: every page of `customer`'s sessions, `limit` at a time; fails the test on
  // an error, a page over the limit or a page out of order.
  std::vector<CustomerSession> ListAll(const std::string& customer, int limit,
                                       const std::string& tenant = "acme") {
    std::vector<CustomerSession> all;
    std::string cursor;
    for (int pages = 0; pages < 10000; ++pages) {
      absl::StatusOr<CustomerSessionPage> page =
          store_->ListCustomerSessions({tenant, customer}, cursor, limit);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      EXPECT_LE(page->sessions.size(), static_cast<size_t>(limit));
      for (const CustomerSession& s : page->sessions) {
        EXPECT_GT(s.session_id, cursor) << "pages come in session id order";
        all.push_back(s);
      }
      if (page->next_cursor.empty()) break;
      EXPECT_FALSE(page->sessions.empty()) << "a page with a cursor holds sessions";
      cursor = page->next_cursor;
    }
    return all;
  }

  std::set<std::string> IdsOf(const std::string& customer,
                              const std::string& tenant = "acme") {
    std::set<std::string> ids;
    for (const CustomerSession& s : ListAll(customer, kMaxCustomerPage, tenant)) {
      EXPECT_TRUE(ids.insert(s.session_id).second) << s.session_id << " listed twice";
    }
    return ids;
  }

  // Reopen: the store closed and opened again on the same data (memory: kept open,
  // it has nothing to reopen).
  void Reopen() {
    if (GetParam() == "memory") return;
    service_.reset();
    store_.reset();
    absl::StatusOr<std::unique_ptr<SessionStore>> store = factory_.Open(&clock_);
    ASSERT_OK(store);
    store_ = *std::move(store);
    ServiceOptions options;
    options.clock = &clock_;
    service_ = std::make_unique<SessionService>(store_.get(), options);
  }
};

TEST_P(CustomerSessions, PagesListEverySessionOnceAndNoOneElses) {
  std::set<std::string> mine;
  for (int i = 0; i < 23; ++i) {
    const std::string id = absl::StrCat("c1-", i);
    ASSERT_OK(store_->Create({"acme", id}, OfCustomer(id, "c1")));
    mine.insert(id);
  }
  ASSERT_OK(store_->Create({"acme", "c2-a"}, OfCustomer("c2-a", "c2")));
  ASSERT_OK(store_->Create({"acme", "anon"}, Record("anon")));
  ASSERT_OK(store_->Create({"other", "c1-x"},
                           OfCustomer("c1-x", "c1")));  // same id, another tenant

  std::vector<CustomerSession> paged = ListAll("c1", 5);
  std::set<std::string> seen;
  for (const CustomerSession& s : paged) {
    EXPECT_TRUE(seen.insert(s.session_id).second) << s.session_id << " listed twice";
    absl::StatusOr<SessionContext> stored = store_->Get({"acme", s.session_id});
    ASSERT_OK(stored);
    EXPECT_EQ(s.version, stored->version);
    EXPECT_EQ(s.created_at, stored->created_at);
    EXPECT_EQ(s.modified_at, stored->modified_at);
    EXPECT_EQ(s.expires_at, absl::InfiniteFuture());
  }
  EXPECT_EQ(seen, mine);
  EXPECT_EQ(IdsOf("c2"), std::set<std::string>{"c2-a"});
  EXPECT_EQ(IdsOf("c1", "other"), std::set<std::string>{"c1-x"});
  EXPECT_TRUE(IdsOf("nobody").empty());

  // One page of exactly the limit: the cursor after it leads to an empty last page.
  absl::StatusOr<CustomerSessionPage> one =
      store_->ListCustomerSessions({"acme", "c2"}, "", 1);
  ASSERT_OK(one);
  ASSERT_EQ(one->sessions.size(), 1u);
  EXPECT_TRUE(one->next_cursor.empty());
}

TEST_P(CustomerSessions, BadQueriesAreInvalidArguments) {
  EXPECT_STATUS(store_->ListCustomerSessions({"acme", "c1"}, "", 0), kInvalidArgument);
  EXPECT_STATUS(store_->ListCustomerSessions({"acme", "c1"}, "", kMaxCustomerPage + 1),
                kInvalidArgument);
  EXPECT_STATUS(store_->ListCustomerSessions({"x", "c1"}, "", 10), kInvalidArgument);
  EXPECT_STATUS(store_->ListCustomerSessions({"acme", ""}, "", 10), kInvalidArgument);
  EXPECT_STATUS(store_->EndCustomerSessions({"acme", ""}, std::nullopt),
                kInvalidArgument);
  EXPECT_STATUS(service_->ListCustomerSessions({"acme", std::string("a\0b", 3)}, "", 10),
                kInvalidArgument);
}

TEST_P(CustomerSessions, LoginPutAndDeleteMoveTheSessionInTheIndex) {
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1"}));
  EXPECT_TRUE(IdsOf("c1").empty()) << "an anonymous session belongs to no customer";
  ASSERT_OK(service_->AttachCustomer({"acme", "s1"}, "c1"));
  EXPECT_EQ(IdsOf("c1"), std::set<std::string>{"s1"});
  // A PUT keeps the customer (a body without customerId keeps the stored one).
  ASSERT_OK(service_->Put({"acme", "s1"},
                          Json{{"currency", "CHF"}, {"metadata", {{"version", 2}}}},
                          PutOptions{}));
  ASSERT_OK(service_->SetAttribute({"acme", "s1"}, "a", 1));
  std::vector<CustomerSession> listed = ListAll("c1", 10);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].version, 4);
  // The library's compare-and-set may hand a session to another customer: it moves.
  SessionContext moved = *store_->Get({"acme", "s1"});
  moved.customer_id = "c2";
  moved.version = 5;
  ASSERT_OK(store_->CompareAndSet({"acme", "s1"}, 4, moved));
  EXPECT_TRUE(IdsOf("c1").empty());
  EXPECT_EQ(IdsOf("c2"), std::set<std::string>{"s1"});
  ASSERT_OK(service_->Delete({"acme", "s1"}));
  EXPECT_TRUE(IdsOf("c2").empty());
  EXPECT_EQ(*store_->EndCustomerSessions({"acme", "c2"}, std::nullopt), 0);
}

TEST_P(CustomerSessions, EndAllButOneThenAll) {
  for (const char* id : {"p1", "p2", "p3", "p4", "p5"}) {
    ASSERT_OK(store_->Create({"acme", id}, OfCustomer(id, "c1")));
  }
  ASSERT_OK(store_->Create({"acme", "d1"}, OfCustomer("d1", "c2")));
  ASSERT_OK(store_->Create({"acme", "anon"}, Record("anon")));
  ASSERT_OK(store_->Create({"other", "p1"}, OfCustomer("p1", "c1")));

  absl::StatusOr<int64_t> ended = service_->EndCustomerSessions({"acme", "c1"}, "p3");
  ASSERT_OK(ended);
  EXPECT_EQ(*ended, 4);
  EXPECT_EQ(IdsOf("c1"), std::set<std::string>{"p3"});
  for (const char* id : {"p1", "p2", "p4", "p5"})
    EXPECT_STATUS(store_->Get({"acme", id}), kNotFound);
  EXPECT_OK(store_->Get({"acme", "p3"}));

  EXPECT_EQ(*service_->EndCustomerSessions({"acme", "c1"}, std::nullopt), 1);
  EXPECT_STATUS(store_->Get({"acme", "p3"}), kNotFound);
  EXPECT_TRUE(IdsOf("c1").empty());
  EXPECT_EQ(*service_->EndCustomerSessions({"acme", "c1"}, std::nullopt), 0);
  // Nobody else's sessions were touched.
  EXPECT_OK(store_->Get({"acme", "d1"}));
  EXPECT_OK(store_->Get({"acme", "anon"}));
  EXPECT_OK(store_->Get({"other", "p1"}));
  EXPECT_EQ(IdsOf("c1", "other"), std::set<std::string>{"p1"});
}

TEST_P(CustomerSessions, AnExpiredSessionIsNeverListedNorCounted) {
  // A customer session expires only when imported with an expiry.
  SessionContext soon = OfCustomer("soon", "c1");
  soon.expires_at = clock_.Now() + absl::Minutes(1);
  ASSERT_OK(store_->Import({ImportRecord{{"acme", "soon"}, soon}}));
  ASSERT_OK(store_->Create({"acme", "stays"}, OfCustomer("stays", "c1")));
  std::vector<CustomerSession> listed = ListAll("c1", 10);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].session_id, "soon");
  EXPECT_EQ(listed[0].expires_at, soon.expires_at);
  clock_.Advance(absl::Minutes(2));
  EXPECT_EQ(IdsOf("c1"), std::set<std::string>{"stays"});
  EXPECT_EQ(*store_->EndCustomerSessions({"acme", "c1"}, std::nullopt), 1);
  (void)store_->PurgeExpired();
  EXPECT_TRUE(IdsOf("c1").empty());
}

TEST_P(CustomerSessions, ImportBuildsAndMovesTheIndex) {
  std::vector<ImportRecord> records;
  for (int i = 0; i < 30; ++i) {
    const std::string id = absl::StrCat("i", i);
    records.push_back({{"acme", id}, OfCustomer(id, i % 3 == 0 ? "c2" : "c1")});
  }
  records.push_back({{"acme", "anon"}, Record("anon")});
  ASSERT_OK(store_->Import(records));
  EXPECT_EQ(IdsOf("c1").size(), 20u);
  EXPECT_EQ(IdsOf("c2").size(), 10u);
  // An import over a stored session moves it to the imported record's customer.
  SessionContext over = OfCustomer("i1", "c3");
  over.version = 9;
  ASSERT_OK(store_->Import({ImportRecord{{"acme", "i1"}, over}}));
  EXPECT_EQ(IdsOf("c1").size(), 19u);
  EXPECT_EQ(IdsOf("c3"), std::set<std::string>{"i1"});
}

TEST_P(CustomerSessions, TheIndexSurvivesARestart) {
  for (int i = 0; i < 12; ++i) {
    const std::string id = absl::StrCat("r", i);
    ASSERT_OK(service_->Create("acme", SessionContext{.session_id = id}));
    ASSERT_OK(service_->AttachCustomer({"acme", id}, "c1"));
  }
  ASSERT_OK(service_->Delete({"acme", "r0"}));
  Reopen();
  ASSERT_NE(store_, nullptr);
  std::set<std::string> ids = IdsOf("c1");
  EXPECT_EQ(ids.size(), 11u);
  EXPECT_FALSE(ids.contains("r0"));
  EXPECT_EQ(*store_->EndCustomerSessions({"acme", "c1"}, "r5"), 10);
  Reopen();
  EXPECT_EQ(IdsOf("c1"), std::set<std::string>{"r5"});
}

// The race of "log out everywhere": while it runs, other threads write to the
// customer's sessions (attributes, PATCH), log anonymous sessions in to the customer,
// and anonymous sessions expire. When it returns, every session of the customer that
// existed when it began is gone, and stays gone once the writers stop; logins
// acknowledged before it began are among them.
TEST_P(CustomerSessions, EndingEverythingWhileOthersWriteLeavesNoOldSessionLive) {
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const std::string customer = absl::StrCat("race", round);
    std::vector<std::string> before;
    for (int i = 0; i < 30; ++i) {
      const std::string id = absl::StrCat(customer, "-old", i);
      ASSERT_OK(service_->Create("acme", SessionContext{.session_id = id}));
      ASSERT_OK(service_->AttachCustomer({"acme", id}, customer));
      before.push_back(id);
    }
    std::atomic<bool> stop{false}, ending{false};
    std::atomic<int> writes{0}, logins{0}, logins_during{0};
    std::vector<std::thread> threads;
    for (int w = 0; w < 2; ++w) {
      threads.emplace_back([&, w] {
        for (int i = 0; !stop; ++i) {
          const SessionKey key{"acme", before[(i * 7 + w) % before.size()]};
          if (i % 2) {
            if (service_->SetAttribute(key, absl::StrCat("a", w), i).ok()) ++writes;
          } else if (absl::StatusOr<SessionContext> s = service_->Get(key); s.ok()) {
            if (service_
                    ->Patch(key, Json{{"language", "de"},
                                      {"metadata", {{"version", s->version}}}})
                    .ok()) {
              ++writes;
            }
          }
        }
      });
    }
    threads.emplace_back([&] {  // logins into the customer, the whole time
      for (int i = 0; !stop; ++i) {
        const std::string id = absl::StrCat(customer, "-new", i);
        if (!service_->Create("acme", SessionContext{.session_id = id}).ok()) continue;
        const bool started = ending;
        if (!service_->AttachCustomer({"acme", id}, customer).ok()) continue;
        ++logins;
        if (started) ++logins_during;
      }
    });
    threads.emplace_back([&] {  // anonymous sessions written and left to expire
      for (int i = 0; !stop; ++i) {
        (void)service_->Create(
            "acme", SessionContext{.session_id = absl::StrCat(customer, "-anon", i)});
      }
    });
    // Logins acknowledged before the call began: the logins thread's, known by id.
    // Every writer has got going first (however busy the machine is).
    if (!testing::WaitUntil([&] { return writes >= 20 && logins >= 5; })) {
      stop = true;
      for (std::thread& t : threads) t.join();
      FAIL() << writes << " writes and " << logins << " logins in 60 s";
    }
    std::set<std::string> acknowledged_before = IdsOf(customer);
    clock_.Advance(absl::Hours(2));  // the anonymous sessions so far expire
    ending = true;
    absl::StatusOr<int64_t> ended =
        service_->EndCustomerSessions({"acme", customer}, std::nullopt);
    ASSERT_OK(ended);
    std::vector<std::string> live_after;
    for (const std::string& id : acknowledged_before) {
      if (store_->Get({"acme", id}).ok()) live_after.push_back(id);
    }
    stop = true;
    for (std::thread& t : threads) t.join();
    EXPECT_TRUE(live_after.empty())
        << live_after.size() << " sessions of the customer survived, e.g. "
        << live_after.front();
    EXPECT_GE(*ended, static_cast<int64_t>(before.size()));
    // None comes back: the writers ran on after the call, against deleted sessions.
    for (const std::string& id : before)
      EXPECT_STATUS(store_->Get({"acme", id}), kNotFound);
    for (const std::string& id : acknowledged_before) {
      SCOPED_TRACE(id);
      EXPECT_STATUS(store_->Get({"acme", id}), kNotFound);
    }
    // What is listed now is exactly what lives: the logins that came after the call.
    for (const std::string& id : IdsOf(customer)) {
      absl::StatusOr<SessionContext> s = store_->Get({"acme", id});
      ASSERT_OK(s);
      EXPECT_EQ(s->customer_id, customer);
      EXPECT_FALSE(acknowledged_before.contains(id));
    }
    EXPECT_GT(writes.load(), 0);
  }
}

// A writer process logging sessions in to a customer is killed (kill -9); every login
// it was told had landed is listed after the store is opened again, and ended.
TEST_P(CustomerSessions, EveryAcknowledgedLoginIsIndexedAfterKillNine) {
  if (GetParam() == "memory") {
    // A memory store dies with its process: there is nothing to open again. The
    // same check runs in-process instead.
    ASSERT_OK(store_->Create({"acme", "m1"}, OfCustomer("m1", "c1")));
    EXPECT_EQ(IdsOf("c1"), std::set<std::string>{"m1"});
    return;
  }
  const std::string uri = factory_.Uri();
  service_.reset();
  store_.reset();  // rocksdb: one process at a time
  std::mt19937 rng(std::random_device{}());
  const std::vector<std::string> lines = testing::KillAfterLines(
      [&](int fd) {
        auto store = OpenSessionStore(uri, StoreOptions{});
        if (!store.ok()) _exit(3);
        SessionService service(store->get(), ServiceOptions{});
        for (int i = 0;; ++i) {
          const std::string id = absl::StrCat("k", i);
          if (!service.Create("acme", SessionContext{.session_id = id}).ok()) _exit(4);
          if (!service.AttachCustomer({"acme", id}, "c1").ok()) _exit(5);
          testing::ReportLine(fd, id, 6);
        }
      },
      20 + rng() % 181);
  const std::set<std::string> acked(lines.begin(), lines.end());
  ASSERT_FALSE(acked.empty()) << "the writer acknowledged nothing before the kill";
  Reopen();
  ASSERT_NE(store_, nullptr);
  std::set<std::string> listed = IdsOf("c1");
  for (const std::string& a : acked)
    EXPECT_TRUE(listed.contains(a)) << a << " acknowledged, not listed";
  absl::StatusOr<int64_t> ended =
      store_->EndCustomerSessions({"acme", "c1"}, std::nullopt);
  ASSERT_OK(ended);
  EXPECT_GE(*ended, static_cast<int64_t>(acked.size()));
  EXPECT_TRUE(IdsOf("c1").empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, CustomerSessions,
                         ::testing::ValuesIn(testing::ConformanceBackends()),
                         testing::BackendName);

}  // namespace
}  // namespace sessionctx
