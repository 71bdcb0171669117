// The write rules every backend must apply alike, each checked in the store's own
// atomic step and tested with real concurrent writers: conditional deletes and
// attribute writes (If-Match), no U+0000 anywhere, an exact record size whatever runs
// concurrently, writers racing a deleter, anonymous writers racing a login, imports
// that never move a session backwards.
#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sessionctx/backend_support.h"
#include "sessionctx/session_service.h"
#include "sessionctx/write_rules.h"
#include "tests/store_conformance.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

using WriteRuleConformance = StoreConformance;

// --- If-Match on every write -------------------------------------------------------

TEST_P(WriteRuleConformance, DeleteWithAnExpectedVersionDeletesOnlyAtThatVersion) {
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1"}));
  ASSERT_OK(service_->SetAttribute({"acme", "s1"}, "a", 1));  // version 2
  const absl::Status stale = store_->Delete({"acme", "s1"}, 1);
  EXPECT_TRUE(absl::IsAborted(stale)) << stale;
  EXPECT_EQ(CurrentVersionOf(stale), 2);
  ASSERT_OK(store_->Get({"acme", "s1"}));
  EXPECT_OK(store_->Delete({"acme", "s1"}, 2));
  EXPECT_STATUS(store_->Get({"acme", "s1"}), kNotFound);
  EXPECT_STATUS(store_->Delete({"acme", "s1"}, 2), kNotFound);
}

TEST_P(WriteRuleConformance, AttributeWritesWithAnExpectedVersionWriteOnlyAtThatVersion) {
  const SessionKey key{"acme", "s1"};
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1", .context = {{"a", 1}}}));
  absl::StatusOr<int64_t> stale = service_->SetAttribute(key, "b", 2, std::nullopt, 7);
  EXPECT_TRUE(absl::IsAborted(stale.status())) << stale.status();
  EXPECT_EQ(CurrentVersionOf(stale.status()), 1);
  absl::StatusOr<bool> stale_delete = service_->DeleteAttribute(key, "a", std::nullopt, 7);
  EXPECT_TRUE(absl::IsAborted(stale_delete.status())) << stale_delete.status();
  // Nothing changed, not even for a delete of an absent attribute at a stale version.
  EXPECT_STATUS(service_->DeleteAttribute(key, "nothere", std::nullopt, 7), kAborted);
  absl::StatusOr<SessionContext> s = service_->Get(key);
  ASSERT_OK(s);
  EXPECT_EQ(s->version, 1);
  EXPECT_EQ(s->context, Json({{"a", 1}}));

  EXPECT_EQ(service_->SetAttribute(key, "b", 2, std::nullopt, 1).value_or(-1), 2);
  EXPECT_EQ(service_->DeleteAttribute(key, "a", std::nullopt, 2).value_or(false), true);
  // At the current version, deleting an absent attribute succeeds and changes nothing.
  EXPECT_EQ(service_->DeleteAttribute(key, "nothere", std::nullopt, 3).value_or(true), false);
  s = service_->Get(key);
  ASSERT_OK(s);
  EXPECT_EQ(s->version, 3);
  EXPECT_EQ(s->context, Json({{"b", 2}}));
}

// Writers that each read the version and write at it: of all writes based on one
// version, exactly one changes the session. A store that checks, then writes, lets
// two through.
TEST_P(WriteRuleConformance, ConcurrentConditionalWritesLandOncePerVersion) {
  const SessionKey key{"acme", "cas"};
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "cas"}));
  constexpr int kThreads = 4, kRounds = 40;
  std::mutex mu;
  std::vector<int64_t> changed_from;  // the version each write that changed it read
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kRounds; ++i) {
        absl::StatusOr<SessionContext> s = service_->Get(key);
        if (!s.ok()) {
          ++errors;
          continue;
        }
        absl::Status st;
        bool changed = true;  // a delete of an attribute already gone changes nothing
        if (i % 2 == 0) {
          st = service_->SetAttribute(key, absl::StrCat("t", i % 3), i, std::nullopt, s->version).status();
        } else {
          absl::StatusOr<bool> r = service_->DeleteAttribute(key, absl::StrCat("t", i % 3), std::nullopt, s->version);
          st = r.status();
          changed = r.ok() && *r;
        }
        if (st.ok() && changed) {
          std::lock_guard lock(mu);
          changed_from.push_back(s->version);
        } else if (!st.ok() && !absl::IsAborted(st)) {
          ++errors;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  absl::StatusOr<SessionContext> s = service_->Get(key);
  ASSERT_OK(s);
  std::multiset<int64_t> bases(changed_from.begin(), changed_from.end());
  for (int64_t v = 1; v < s->version; ++v) {
    EXPECT_EQ(bases.count(v), 1u) << "writes that changed version " << v;
  }
  EXPECT_EQ(static_cast<int64_t>(changed_from.size()), s->version - 1);
  EXPECT_GT(s->version, kRounds / 2);
}

// A conditional delete racing writers: it deletes only the version it names.
TEST_P(WriteRuleConformance, ConditionalDeleteRacingWritersDeletesOnlyItsVersion) {
  for (int round = 0; round < 20; ++round) {
    const SessionKey key{"acme", absl::StrCat("d", round)};
    ASSERT_OK(service_->Create("acme", SessionContext{.session_id = key.session_id}));
    std::atomic<bool> stop{false};
    std::thread writer([&] {
      for (int i = 0; i < 30 && !stop; ++i) (void)service_->SetAttribute(key, "w", i);
    });
    absl::Status st;
    int64_t based_on = 0;
    do {
      absl::StatusOr<SessionContext> s = service_->Get(key);
      if (!s.ok()) break;
      based_on = s->version;
      st = service_->Delete(key, based_on);
    } while (absl::IsAborted(st));
    stop = true;
    writer.join();
    SCOPED_TRACE(key.session_id);
    EXPECT_OK(st);
    EXPECT_STATUS(store_->Get(key), kNotFound);
  }
}

// --- U+0000 --------------------------------------------------------------------------

TEST_P(WriteRuleConformance, NulIsRefusedInEveryStringBeforeAnyStoreSeesIt) {
  const SessionKey key{"acme", "n1"};
  const std::string nul("a\0b", 3);
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "n1", .context = {{"a", 1}}}));
  EXPECT_STATUS(service_->Create("acme", SessionContext{.session_id = "n2", .cart_id = nul}),
                kInvalidArgument);
  EXPECT_STATUS(service_->Create("acme", SessionContext{.session_id = "n3", .context = {{"k", {nul}}}}),
                kInvalidArgument);
  EXPECT_STATUS(service_->SetAttribute(key, nul, 1), kInvalidArgument);
  EXPECT_STATUS(service_->SetAttribute(key, "v", Json{{"x", nul}}), kInvalidArgument);
  EXPECT_STATUS(service_->SetAttribute(key, "v", Json{{nul, 1}}), kInvalidArgument);
  EXPECT_STATUS(service_->DeleteAttribute(key, std::string("a\0", 2)), kInvalidArgument);
  EXPECT_STATUS(service_->Patch(key, Json{{"siteCode", nul}, {"metadata", {{"version", 1}}}}),
                kInvalidArgument);
  EXPECT_STATUS(service_->Patch(key, Json{{"context", {{"a", nul}}}, {"metadata", {{"version", 1}}}}),
                kInvalidArgument);
  EXPECT_STATUS(service_->Put(key, Json{{"cartId", nul}, {"metadata", {{"version", 1}}}}, PutOptions{}),
                kInvalidArgument);
  EXPECT_STATUS(service_->AttachCustomer(key, nul), kInvalidArgument);
  SessionContext imported = Record("n4");
  imported.context = Json{{"x", nul}};
  EXPECT_STATUS(store_->Import({{{"acme", "n4"}, imported}}), kInvalidArgument);
  EXPECT_STATUS(store_->Get({"acme", "n4"}), kNotFound);
  absl::StatusOr<SessionContext> s = service_->Get(key);
  ASSERT_OK(s);
  EXPECT_EQ(s->version, 1);
  EXPECT_EQ(s->context, Json({{"a", 1}}));
  EXPECT_FALSE(s->customer_id.has_value());
}

// --- the record's size, exact under concurrency ----------------------------------------

class ExactSize : public StoreConformance {
 protected:
  static constexpr size_t kLimit = 3000;

  void SetUp() override {
    StoreConformance::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    ServiceOptions options;
    options.clock = &clock_;
    options.anonymous_ttl = absl::Hours(1);
    options.limits.max_record_bytes = kLimit;
    limited_ = std::make_unique<SessionService>(store_.get(), options);
  }

  // ExpectExactSize: the store knows the record's exact size: an attribute that
  // brings it to the limit exactly is accepted, one byte more is refused. Probed on
  // the write that adds a digit to the version (999 -> 1000), whose byte a store
  // must count too.
  void ExpectExactSize(const SessionKey& key) {
    absl::StatusOr<SessionContext> s = limited_->Get(key);
    ASSERT_OK(s);
    int64_t power = 10;
    while (power <= s->version + 1) power *= 10;
    for (int64_t v = s->version; v < power - 1; ++v) ASSERT_OK(limited_->SetAttribute(key, "tick", v));
    s = limited_->Get(key);
    ASSERT_OK(s);
    ASSERT_EQ(s->version + 1, power);
    SessionContext next = *s;
    SetAttribute(next, "pad", "");
    next.version += 1;
    const size_t empty_pad = backend::RecordBytes(next);
    ASSERT_LE(empty_pad, kLimit);
    const std::string pad(kLimit - empty_pad, 'x');
    EXPECT_STATUS(limited_->SetAttribute(key, "pad", pad + "x"), kResourceExhausted);
    absl::StatusOr<int64_t> fits = limited_->SetAttribute(key, "pad", pad);
    ASSERT_TRUE(fits.ok()) << "a record of exactly " << kLimit << " bytes was refused: " << fits.status();
    absl::StatusOr<SessionContext> full = limited_->Get(key);
    ASSERT_OK(full);
    EXPECT_EQ(backend::RecordBytes(*full), kLimit);
    EXPECT_STATUS(limited_->SetAttribute(key, "pad", pad + "x"), kResourceExhausted);
    EXPECT_EQ(limited_->Get(key)->version, *fits);
    ASSERT_OK(limited_->DeleteAttribute(key, "pad"));
  }

  std::unique_ptr<SessionService> limited_;
};

// Writers of one attribute name (set with values of changing sizes, delete) racing:
// whichever lands last, the size the store tracks is the record's.
TEST_P(ExactSize, RacingWritersOfOneAttributeKeepTheSizeExact) {
  const SessionKey key{"acme", "size"};
  ASSERT_OK(limited_->Create("acme", SessionContext{.session_id = "size"}));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 60; ++i) {
        absl::Status st = t % 2 == 0
                              ? limited_->SetAttribute(key, "k", std::string(1 + (i * 37 + t) % 300, 'v')).status()
                              : limited_->DeleteAttribute(key, "k").status();
        EXPECT_OK(st);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ExpectExactSize(key);
}

// The same for PATCH: base fields set and removed, members replaced and merged into
// objects, "context": null, racing attribute writers.
TEST_P(ExactSize, RacingPatchesAndAttributeWritesKeepTheSizeExact) {
  const SessionKey key{"acme", "patched"};
  ASSERT_OK(limited_->Create("acme", SessionContext{.session_id = "patched", .site_code = "m"}));
  const std::vector<Json> patches = {
      {{"siteCode", "a \"quoted\" site é"}, {"currency", "CHF"}, {"context", {{"obj", {{"x", 1}, {"y", {1, 2}}}}}}},
      {{"siteCode", nullptr}, {"context", {{"obj", {{"y", nullptr}, {"z", "é\n"}}}, {"s", "plain"}}}},
      {{"language", "de-CH"}, {"context", {{"obj", {{"deep", {{"a", {true, false, nullptr}}}}}}, {"s", nullptr}}}},
      {{"context", nullptr}, {"targetLocation", "DE"}},
      {{"currency", nullptr}, {"context", {{"n", 12.5}, {"obj", "now a string"}}}},
      {{"siteCode", "base \"fields\" only"}, {"language", nullptr}},  // no context member
      {{"currency", "JPY"}, {"siteCode", nullptr}, {"targetLocation", nullptr}},
  };
  std::thread attributes([&] {
    for (int i = 0; i < 60; ++i) {
      EXPECT_OK(i % 3 == 2 ? limited_->DeleteAttribute(key, "k").status()
                           : limited_->SetAttribute(key, "k", Json{{"i", i}, {"s", std::string(i, 'q')}}).status());
    }
  });
  std::thread patcher([&] {
    for (int i = 0; i < 40; ++i) {
      const Json& patch = patches[i % patches.size()];
      absl::Status st;
      do {
        absl::StatusOr<SessionContext> s = limited_->Get(key);
        ASSERT_OK(s);
        Json body = patch;
        body["metadata"] = {{"version", s->version}};
        st = limited_->Patch(key, body).status();
      } while (absl::IsAborted(st));
      EXPECT_OK(st);
    }
  });
  attributes.join();
  patcher.join();
  ExpectExactSize(key);
}

// A PATCH of base fields alone that moves the version from 9 to 10 (one more digit)
// and changes the fields' sizes: the size stays exact.
TEST_P(ExactSize, BaseFieldPatchesAcrossAVersionDigitKeepTheSizeExact) {
  const SessionKey key{"acme", "digits"};
  ASSERT_OK(limited_->Create("acme", SessionContext{.session_id = "digits", .site_code = "m"}));
  for (int i = 0; i < 7; ++i) ASSERT_OK(limited_->SetAttribute(key, "a", i));  // version 8
  ASSERT_OK(limited_->Patch(key, Json{{"siteCode", "longer site"}, {"metadata", {{"version", 8}}}}));
  ASSERT_OK(limited_->Patch(key, Json{{"currency", "EUR"}, {"siteCode", nullptr}, {"metadata", {{"version", 9}}}}));
  ASSERT_EQ(limited_->Get(key)->version, 10);
  ExpectExactSize(key);
}

// --- writers racing a deleter ------------------------------------------------------------

// A write racing a delete finds the session or not: 2xx or 404 (a conflict for a
// conditional PATCH), never anything else (such as "too large").
TEST_P(WriteRuleConformance, WritersRacingADeleterSeeOnlySuccessOrNotFound) {
  std::atomic<int> wrong{0};
  std::mutex mu;
  std::string first_wrong;
  auto expect = [&](const absl::Status& st, bool conflict_allowed) {
    if (st.ok() || absl::IsNotFound(st) || (conflict_allowed && absl::IsAborted(st))) return;
    if (wrong++ == 0) {
      std::lock_guard lock(mu);
      first_wrong = st.ToString();
    }
  };
  for (int round = 0; round < 30; ++round) {
    const SessionKey key{"acme", absl::StrCat("race", round)};
    ASSERT_OK(service_->Create("acme", SessionContext{.session_id = key.session_id, .context = {{"k", 0}}}));
    std::vector<std::thread> threads;
    threads.emplace_back([&] {
      for (int i = 0; i < 15; ++i) expect(service_->SetAttribute(key, "k", i).status(), false);
    });
    threads.emplace_back([&] {
      for (int i = 0; i < 15; ++i) expect(service_->DeleteAttribute(key, "k").status(), false);
    });
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        absl::StatusOr<SessionContext> s = service_->Get(key);
        if (!s.ok()) {
          expect(s.status(), false);
          continue;
        }
        expect(service_->Patch(key, Json{{"context", {{"p", i}}}, {"metadata", {{"version", s->version}}}})
                   .status(),
               true);
      }
    });
    threads.emplace_back([&] { expect(service_->Delete(key), false); });
    for (std::thread& t : threads) t.join();
    EXPECT_STATUS(store_->Get(key), kNotFound);
  }
  EXPECT_EQ(wrong.load(), 0) << first_wrong;
}

// --- the own routes' guard against a login -------------------------------------------------

// Anonymous writers (the guard of an anonymous token) racing a login: every anonymous
// write that landed, landed before the login; every one after it is refused.
TEST_P(WriteRuleConformance, AnonymousWritesRacingALoginNeverLandAfterIt) {
  for (int round = 0; round < 10; ++round) {
    const SessionKey key{"acme", absl::StrCat("login", round)};
    ASSERT_OK(service_->Create("acme", SessionContext{.session_id = key.session_id}));
    const std::optional<CustomerGuard> anonymous = CustomerGuard{std::nullopt};
    std::mutex mu;
    std::vector<int64_t> landed;  // the versions anonymous writes produced
    std::atomic<int> unexpected{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < 2; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; i < 40; ++i) {
          absl::StatusOr<int64_t> v;
          if (t == 0) {
            v = service_->SetAttribute(key, "cart", i, anonymous);
          } else {
            absl::StatusOr<SessionContext> s = service_->Get(key);
            if (!s.ok()) {
              ++unexpected;
              continue;
            }
            v = service_->Patch(key, Json{{"context", {{"p", i}}}, {"metadata", {{"version", s->version}}}},
                                std::nullopt, anonymous);
          }
          if (v.ok()) {
            std::lock_guard lock(mu);
            landed.push_back(*v);
          } else if (!absl::IsPermissionDenied(v.status()) && !absl::IsAborted(v.status())) {
            ++unexpected;
          }
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200 * round));
    absl::StatusOr<SessionContext> login = service_->AttachCustomer(key, "c1");
    for (std::thread& t : writers) t.join();
    ASSERT_OK(login);
    SCOPED_TRACE(key.session_id);
    EXPECT_EQ(unexpected.load(), 0);
    for (int64_t v : landed) EXPECT_LT(v, login->version) << "an anonymous write landed after the login";
    EXPECT_EQ(static_cast<int64_t>(landed.size()), login->version - 2);
    absl::StatusOr<SessionContext> now = service_->Get(key);
    ASSERT_OK(now);
    EXPECT_EQ(now->version, login->version);
    EXPECT_EQ(now->customer_id, "c1");
  }
}

// --- imports never move a session backwards ----------------------------------------------

TEST_P(WriteRuleConformance, ImportSkipsARecordOlderThanTheStoredSession) {
  const SessionKey key{"acme", "imp"};
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "imp"}));
  ASSERT_OK(service_->SetAttribute(key, "a", 1));
  ASSERT_OK(service_->SetAttribute(key, "b", 2));  // version 3
  SessionContext older = Record("imp", 2);
  older.currency = "USD";
  absl::StatusOr<ImportResult> r = store_->Import({{key, older}});
  ASSERT_OK(r);
  EXPECT_EQ(r->written, 0);
  EXPECT_EQ(r->skipped, 1);
  absl::StatusOr<SessionContext> s = store_->Get(key);
  ASSERT_OK(s);
  EXPECT_EQ(s->version, 3);
  EXPECT_FALSE(s->currency.has_value());

  // The same version is put in place (a re-run of the same export changes nothing).
  SessionContext same = Record("imp", 3);
  r = store_->Import({{key, same}, {{"acme", "fresh"}, Record("fresh", 4)}});
  ASSERT_OK(r);
  EXPECT_EQ(r->written, 2);
  EXPECT_EQ(r->skipped, 0);
  EXPECT_EQ(store_->Get(key)->currency, "EUR");

  // The operator may force an older state.
  ImportOptions overwrite;
  overwrite.overwrite_newer = true;
  r = store_->Import({{key, older}}, overwrite);
  ASSERT_OK(r);
  EXPECT_EQ(r->written, 1);
  EXPECT_EQ(store_->Get(key)->version, 2);

  // An expired session is no session: a record of any version replaces it.
  SessionContext expiring = Record("old", 9);
  expiring.expires_at = clock_.Now() + absl::Minutes(1);
  ASSERT_OK(store_->Import({{{"acme", "old"}, expiring}}));
  clock_.Advance(absl::Minutes(2));
  r = store_->Import({{{"acme", "old"}, Record("old", 2)}});
  ASSERT_OK(r);
  EXPECT_EQ(r->written, 1);
  EXPECT_EQ(store_->Get({"acme", "old"})->version, 2);
}

INSTANTIATE_TEST_SUITE_P(Backends, WriteRuleConformance,
                         ::testing::ValuesIn(testing::ConformanceBackends()), testing::BackendName);
INSTANTIATE_TEST_SUITE_P(Backends, ExactSize, ::testing::ValuesIn(testing::ConformanceBackends()),
                         testing::BackendName);

}  // namespace
}  // namespace sessionctx
