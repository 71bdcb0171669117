// The single definition of what a backend must do: every compiled-in backend runs
// every test here unchanged, through the SessionStore interface and through the
// SessionService on top of it.
#include "tests/store_conformance.h"

#include <atomic>
#include <future>
#include <map>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sessionctx/session_service.h"
#include "sessionctx/store_factory.h"
#include "sessionctx/write_rules.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

TEST_P(StoreConformance, CreateThenGetReturnsTheRecord) {
  SessionContext s = Record("s1");
  s.customer_id = "cust";
  s.site_code = "main";
  s.cart_id = "cart-1";
  s.target_location = "DE";
  s.language = "de-CH";
  s.context = Json{{"unicode", "Grüße ✓"}, {"nested", {{"list", {1, 2.5, true, nullptr}}}}};
  s.expires_at = absl::InfiniteFuture();
  ASSERT_OK(store_->Create({"acme", "s1"}, s));
  absl::StatusOr<SessionContext> got = store_->Get({"acme", "s1"});
  ASSERT_OK(got);
  EXPECT_EQ(*got, s);
}

TEST_P(StoreConformance, GetMissingIsNotFound) {
  EXPECT_STATUS(store_->Get({"acme", "nope"}), kNotFound);
}

TEST_P(StoreConformance, CreateOnExistingIdIsAlreadyExists) {
  ASSERT_OK(store_->Create({"acme", "s1"}, Record("s1")));
  SessionContext other = Record("s1");
  other.currency = "USD";
  EXPECT_STATUS(store_->Create({"acme", "s1"}, other), kAlreadyExists);
  EXPECT_EQ(store_->Get({"acme", "s1"})->currency, "EUR");
}

TEST_P(StoreConformance, CompareAndSetWithMatchingVersionReplaces) {
  ASSERT_OK(store_->Create({"acme", "s1"}, Record("s1")));
  SessionContext next = Record("s1", 2);
  next.currency = "CHF";
  ASSERT_OK(store_->CompareAndSet({"acme", "s1"}, 1, next));
  absl::StatusOr<SessionContext> got = store_->Get({"acme", "s1"});
  ASSERT_OK(got);
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->currency, "CHF");
}

TEST_P(StoreConformance, CompareAndSetWithStaleVersionIsAbortedAndChangesNothing) {
  ASSERT_OK(store_->Create({"acme", "s1"}, Record("s1")));
  ASSERT_OK(store_->CompareAndSet({"acme", "s1"}, 1, Record("s1", 2)));
  SessionContext stale = Record("s1", 2);
  stale.currency = "USD";
  EXPECT_STATUS(store_->CompareAndSet({"acme", "s1"}, 1, stale), kAborted);
  absl::StatusOr<SessionContext> got = store_->Get({"acme", "s1"});
  ASSERT_OK(got);
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->currency, "EUR");
}

TEST_P(StoreConformance, CompareAndSetConflictCarriesTheCurrentVersion) {
  ASSERT_OK(store_->Create({"acme", "s1"}, Record("s1")));
  ASSERT_OK(store_->CompareAndSet({"acme", "s1"}, 1, Record("s1", 2)));
  ASSERT_OK(store_->CompareAndSet({"acme", "s1"}, 2, Record("s1", 3)));
  const absl::Status st = store_->CompareAndSet({"acme", "s1"}, 1, Record("s1", 2));
  EXPECT_TRUE(absl::IsAborted(st)) << st;
  EXPECT_EQ(CurrentVersionOf(st), 3);
}

TEST_P(StoreConformance, CompareAndSetOnMissingIsNotFound) {
  EXPECT_STATUS(store_->CompareAndSet({"acme", "s1"}, 1, Record("s1", 2)), kNotFound);
  EXPECT_STATUS(store_->Get({"acme", "s1"}), kNotFound);
}

TEST_P(StoreConformance, DeleteRemovesTheRecord) {
  ASSERT_OK(store_->Create({"acme", "s1"}, Record("s1")));
  ASSERT_OK(store_->Delete({"acme", "s1"}));
  EXPECT_STATUS(store_->Get({"acme", "s1"}), kNotFound);
  EXPECT_STATUS(store_->Delete({"acme", "s1"}), kNotFound);
}

TEST_P(StoreConformance, TenantsAreIsolated) {
  SessionContext a = Record("same");
  SessionContext b = Record("same");
  b.currency = "USD";
  ASSERT_OK(store_->Create({"tenanta", "same"}, a));
  ASSERT_OK(store_->Create({"tenantb", "same"}, b));
  EXPECT_EQ(store_->Get({"tenanta", "same"})->currency, "EUR");
  EXPECT_EQ(store_->Get({"tenantb", "same"})->currency, "USD");
  ASSERT_OK(store_->Delete({"tenanta", "same"}));
  EXPECT_STATUS(store_->Get({"tenanta", "same"}), kNotFound);
  EXPECT_OK(store_->Get({"tenantb", "same"}));
}

TEST_P(StoreConformance, ExpiredEqualsMissing) {
  ASSERT_OK(store_->Create({"acme", "s1"}, Record("s1")));
  clock_.Advance(absl::Hours(1));
  EXPECT_STATUS(store_->Get({"acme", "s1"}), kNotFound);
  EXPECT_STATUS(store_->CompareAndSet({"acme", "s1"}, 1, Record("s1", 2)), kNotFound);
  EXPECT_STATUS(store_->Delete({"acme", "s1"}), kNotFound);
  EXPECT_STATUS(service_->SetAttribute({"acme", "s1"}, "a", 1), kNotFound);
  // An expired id can be created again, from version 1.
  ASSERT_OK(store_->Create({"acme", "s1"}, Record("s1")));
  EXPECT_EQ(store_->Get({"acme", "s1"})->version, 1);
}

TEST_P(StoreConformance, NotYetExpiredIsServed) {
  ASSERT_OK(store_->Create({"acme", "s1"}, Record("s1")));
  clock_.Advance(absl::Minutes(59));
  EXPECT_OK(store_->Get({"acme", "s1"}));
}

TEST_P(StoreConformance, PurgeRemovesOnlyExpiredAnonymousSessions) {
  ASSERT_OK(store_->Create({"acme", "old1"}, Record("old1")));
  ASSERT_OK(store_->Create({"acme", "old2"}, Record("old2")));
  SessionContext customer = Record("cust");
  customer.customer_id = "c-1";
  customer.expires_at = absl::InfiniteFuture();
  ASSERT_OK(store_->Create({"acme", "cust"}, customer));
  clock_.Advance(absl::Minutes(30));
  ASSERT_OK(store_->Create({"acme", "young"}, Record("young")));
  clock_.Advance(absl::Minutes(31));
  absl::StatusOr<int64_t> purged = store_->PurgeExpired();
  ASSERT_OK(purged);
  EXPECT_EQ(*purged, 2);
  for (const char* id : {"old1", "old2"})
    EXPECT_TRUE(absl::IsNotFound(store_->Get({"acme", id}).status()));
  EXPECT_OK(store_->Get({"acme", "cust"}));
  EXPECT_OK(store_->Get({"acme", "young"}));
  absl::StatusOr<int64_t> again = store_->PurgeExpired();
  ASSERT_OK(again);
  EXPECT_EQ(*again, 0);
}

// A purge follows every way a session's expiry moves: an attribute write and a
// compare-and-set push it later, a delete and a re-create over an expired id replace
// it; a session expiring later in the current minute stays.
TEST_P(StoreConformance, PurgeFollowsExpiryMovedByWrites) {
  for (const char* id : {"touched", "cas", "deleted", "recreated", "idle"}) {
    ASSERT_OK(store_->Create({"acme", id}, Record(id)));
  }
  clock_.Advance(absl::Minutes(40));
  ASSERT_OK(service_->SetAttribute({"acme", "touched"}, "a", 1));  // expiry now +1h
  SessionContext later = Record("cas", 2);
  later.expires_at = clock_.Now() + absl::Hours(1);
  ASSERT_OK(store_->CompareAndSet({"acme", "cas"}, 1, later));
  ASSERT_OK(store_->Delete({"acme", "deleted"}));
  clock_.Advance(absl::Minutes(21));  // the first three sessions' expiry has passed
  ASSERT_OK(store_->Create({"acme", "recreated"}, Record("recreated")));  // over an expired one
  SessionContext soon = Record("soon");
  soon.expires_at = clock_.Now() + absl::Seconds(1);
  ASSERT_OK(store_->Create({"acme", "soon"}, soon));
  absl::StatusOr<int64_t> purged = store_->PurgeExpired();
  ASSERT_OK(purged);
  EXPECT_EQ(*purged, 1);  // "idle"
  EXPECT_TRUE(absl::IsNotFound(store_->Get({"acme", "idle"}).status()));
  for (const char* id : {"touched", "cas", "recreated", "soon"}) {
    SCOPED_TRACE(id);
    EXPECT_OK(store_->Get({"acme", id}));
  }
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(*store_->PurgeExpired(), 1);  // "soon"
  EXPECT_TRUE(absl::IsNotFound(store_->Get({"acme", "soon"}).status()));
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(*store_->PurgeExpired(), 3);
  for (const char* id : {"touched", "cas", "recreated"}) {
    EXPECT_TRUE(absl::IsNotFound(store_->Get({"acme", id}).status())) << id;
  }
  EXPECT_EQ(*store_->PurgeExpired(), 0);
}

TEST_P(StoreConformance, ForEachVisitsEveryLiveRecord) {
  ASSERT_OK(store_->Create({"acme", "a"}, Record("a")));
  ASSERT_OK(store_->Create({"other", "b"}, Record("b")));
  clock_.Advance(absl::Minutes(30));
  ASSERT_OK(store_->Create({"acme", "c"}, Record("c")));
  clock_.Advance(absl::Minutes(31));  // a and b expire
  SessionContext d = Record("d");
  d.customer_id = "x";
  d.expires_at = absl::InfiniteFuture();
  ASSERT_OK(store_->Create({"acme", "d"}, d));
  std::vector<std::string> seen;
  ASSERT_OK(store_->ForEach([&](const SessionKey& key, const SessionContext& s) {
    EXPECT_EQ(key.session_id, s.session_id);
    seen.push_back(key.tenant + "/" + key.session_id);
    return true;
  }));
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"acme/c", "acme/d"}));
}

TEST_P(StoreConformance, UpdateAttributeSetsAndBumpsVersion) {
  ASSERT_OK(store_->Create({"acme", "s1"}, Record("s1")));
  clock_.Advance(absl::Seconds(5));
  absl::StatusOr<AttributeResult> r = store_->UpdateAttribute(
      {"acme", "s1"}, AttributeWrite{"gift wrap", Json{{"on", true}}, clock_.Now(),
                                     absl::Hours(1)});
  ASSERT_OK(r);
  EXPECT_TRUE(r->changed);
  absl::StatusOr<SessionContext> got = store_->Get({"acme", "s1"});
  ASSERT_OK(got);
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->context, (Json{{"k", "v"}, {"gift wrap", {{"on", true}}}}));
  EXPECT_EQ(got->modified_at, clock_.Now());
  EXPECT_EQ(r->version, 2);
}

// The guard of the shopper's own writes: checked by the store, in the write's own
// atomic step, on every backend.
TEST_P(StoreConformance, GuardedWritesOnAnotherCustomersSessionAreRefusedAndChangeNothing) {
  SessionContext customer = Record("s1");
  customer.customer_id = "c1";
  customer.context = Json{{"a", 1}};
  customer.expires_at = absl::InfiniteFuture();
  ASSERT_OK(store_->Create({"acme", "s1"}, customer));
  for (const std::optional<std::string>& who : {std::optional<std::string>(),
                                                 std::optional<std::string>("c2")}) {
    const CustomerGuard guard{who};
    EXPECT_STATUS(store_->UpdateAttribute(
                      {"acme", "s1"}, AttributeWrite{"k", Json(1), clock_.Now(), absl::Hours(1),
                                                     1 << 20, guard}),
                  kPermissionDenied);
    EXPECT_STATUS(store_->UpdateAttribute(
                      {"acme", "s1"}, AttributeWrite{"a", std::nullopt, clock_.Now(),
                                                     absl::Hours(1), 1 << 20, guard}),
                  kPermissionDenied);
    EXPECT_STATUS(store_->Patch({"acme", "s1"},
                                PatchWrite{Json{{"currency", "CHF"}, {"metadata", {{"version", 1}}}},
                                           1, clock_.Now(), absl::Hours(1), 1 << 20, guard}),
                  kPermissionDenied);
    EXPECT_STATUS(store_->Patch({"acme", "s1"},
                                PatchWrite{Json{{"context", {{"b", 2}}}, {"metadata", {{"version", 1}}}},
                                           1, clock_.Now(), absl::Hours(1), 1 << 20, guard}),
                  kPermissionDenied);
  }
  absl::StatusOr<SessionContext> got = store_->Get({"acme", "s1"});
  ASSERT_OK(got);
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->context, (Json{{"a", 1}}));
  EXPECT_EQ(got->currency, std::optional<std::string>("EUR"));
  // The session's own customer passes the guard.
  const CustomerGuard own{std::optional<std::string>("c1")};
  absl::StatusOr<AttributeResult> set = store_->UpdateAttribute(
      {"acme", "s1"}, AttributeWrite{"k", Json(1), clock_.Now(), absl::Hours(1), 1 << 20, own});
  ASSERT_OK(set);
  EXPECT_EQ(set->version, 2);
  ASSERT_OK(store_->Patch({"acme", "s1"},
                          PatchWrite{Json{{"currency", "CHF"}, {"metadata", {{"version", 2}}}}, 2,
                                     clock_.Now(), absl::Hours(1), 1 << 20, own}));
}

TEST_P(StoreConformance, GuardedWritesOnAnAnonymousSessionPass) {
  ASSERT_OK(store_->Create({"acme", "s1"}, Record("s1")));
  const CustomerGuard anonymous{};
  ASSERT_OK(store_->UpdateAttribute(
      {"acme", "s1"}, AttributeWrite{"k", Json(1), clock_.Now(), absl::Hours(1), 1 << 20, anonymous}));
  ASSERT_OK(store_->Patch({"acme", "s1"},
                          PatchWrite{Json{{"language", "de"}, {"metadata", {{"version", 2}}}}, 2,
                                     clock_.Now(), absl::Hours(1), 1 << 20, anonymous}));
  absl::StatusOr<AttributeResult> del = store_->UpdateAttribute(
      {"acme", "s1"}, AttributeWrite{"k", std::nullopt, clock_.Now(), absl::Hours(1), 1 << 20,
                                     anonymous});
  ASSERT_OK(del);
  EXPECT_TRUE(del->changed);
  EXPECT_EQ(del->version, 4);
}

TEST_P(StoreConformance, UpdateAttributeDeleteOfAbsentKeyChangesNothing) {
  ASSERT_OK(store_->Create({"acme", "s1"}, Record("s1")));
  absl::StatusOr<AttributeResult> r = store_->UpdateAttribute(
      {"acme", "s1"}, AttributeWrite{"absent", std::nullopt, clock_.Now(), absl::Hours(1)});
  ASSERT_OK(r);
  EXPECT_FALSE(r->changed);
  EXPECT_EQ(store_->Get({"acme", "s1"})->version, 1);
}

TEST_P(StoreConformance, UpdateAttributeDeleteRemovesKey) {
  ASSERT_OK(store_->Create({"acme", "s1"}, Record("s1")));
  absl::StatusOr<AttributeResult> r = store_->UpdateAttribute(
      {"acme", "s1"}, AttributeWrite{"k", std::nullopt, clock_.Now(), absl::Hours(1)});
  ASSERT_OK(r);
  EXPECT_TRUE(r->changed);
  absl::StatusOr<SessionContext> got = store_->Get({"acme", "s1"});
  EXPECT_EQ(got->context, Json::object());
  EXPECT_EQ(got->version, 2);
}

TEST_P(StoreConformance, UpdateAttributeRefusesOversizedRecord) {
  ASSERT_OK(store_->Create({"acme", "s1"}, Record("s1")));
  AttributeWrite w{"big", std::string(5000, 'x'), clock_.Now(), absl::Hours(1), 4096};
  EXPECT_STATUS(store_->UpdateAttribute({"acme", "s1"}, w), kResourceExhausted);
  EXPECT_EQ(store_->Get({"acme", "s1"})->version, 1);
}

TEST_P(StoreConformance, UpdateAttributeExtendsAnonymousExpiry) {
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1"}));
  clock_.Advance(absl::Minutes(50));
  ASSERT_OK(service_->SetAttribute({"acme", "s1"}, "a", 1));
  clock_.Advance(absl::Minutes(50));
  EXPECT_OK(store_->Get({"acme", "s1"}));
  clock_.Advance(absl::Minutes(11));
  EXPECT_STATUS(store_->Get({"acme", "s1"}), kNotFound);
}

TEST_P(StoreConformance, NoResurrectionAfterDelete) {
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1"}));
  ASSERT_OK(service_->Delete({"acme", "s1"}));
  EXPECT_STATUS(store_->CompareAndSet({"acme", "s1"}, 1, Record("s1", 2)), kNotFound);
  EXPECT_STATUS(service_->SetAttribute({"acme", "s1"}, "a", 1), kNotFound);
  EXPECT_STATUS(service_->DeleteAttribute({"acme", "s1"}, "a"), kNotFound);
  EXPECT_STATUS(service_->Patch({"acme", "s1"}, Json{{"metadata", {{"version", 1}}}}),
                kNotFound);
  EXPECT_STATUS(service_->Put({"acme", "s1"}, Json{{"metadata", {{"version", 1}}}}, {}),
                kNotFound);
  EXPECT_STATUS(store_->Get({"acme", "s1"}), kNotFound);
}

// --- the session operations of the service, on this backend ---------------------

TEST_P(StoreConformance, ServiceCreateAppliesTenantDefaults) {
  ServiceOptions options;
  options.clock = &clock_;
  options.tenant_defaults["acme"] = TenantDefaults{"main", "EUR", "DE", "de"};
  SessionService service(store_.get(), options);
  SessionContext given;
  given.cart_id = "cart-1";
  absl::StatusOr<SessionContext> s = service.Create("acme", given);
  ASSERT_OK(s);
  absl::StatusOr<SessionContext> got = store_->Get({"acme", s->session_id});
  ASSERT_OK(got);
  EXPECT_EQ(got->site_code, "main");
  EXPECT_EQ(got->currency, "EUR");
  EXPECT_EQ(got->cart_id, "cart-1");
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->created_at, kStart);
}

TEST_P(StoreConformance, ServiceCreateRefusesExistingSession) {
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1"}));
  EXPECT_STATUS(service_->Create("acme", SessionContext{.session_id = "s1"}), kAlreadyExists);
}

TEST_P(StoreConformance, PatchWithCurrentVersionAppliesAndBumps) {
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1"}));
  absl::StatusOr<int64_t> r = service_->Patch(
      {"acme", "s1"}, Json{{"currency", "CHF"}, {"metadata", {{"version", 1}}}});
  ASSERT_OK(r);
  EXPECT_EQ(*r, 2);
  EXPECT_EQ(store_->Get({"acme", "s1"})->currency, "CHF");
}

TEST_P(StoreConformance, PatchWithStaleVersionIsAbortedAndChangesNothing) {
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1"}));
  ASSERT_OK(service_->SetAttribute({"acme", "s1"}, "a", 1));  // version 2
  absl::StatusOr<int64_t> r = service_->Patch(
      {"acme", "s1"}, Json{{"currency", "CHF"}, {"metadata", {{"version", 1}}}});
  EXPECT_STATUS(r, kAborted);
  EXPECT_EQ(CurrentVersionOf(r.status()), 2);
  absl::StatusOr<SessionContext> got = store_->Get({"acme", "s1"});
  EXPECT_FALSE(got->currency.has_value());
  EXPECT_EQ(got->version, 2);
}

TEST_P(StoreConformance, PatchMergesContextPerRfc7386) {
  ASSERT_OK(service_->Create(
      "acme", SessionContext{.session_id = "s1",
                             .context = Json{{"keep", 1},
                                             {"drop", 2},
                                             {"nested", {{"x", 1}, {"y", {{"z", 1}}}}},
                                             {"list", {1, 2, 3}},
                                             {"scalar", "a"}}}));
  ASSERT_OK(service_->Patch(
      {"acme", "s1"},
      Json{{"context",
            {{"drop", nullptr},
             {"nested", {{"x", nullptr}, {"y", {{"w", 2}}}, {"n", {{"deep", nullptr}}}}},
             {"list", {9}},
             {"scalar", {{"now", "object"}}},
             {"fresh", {{"a", nullptr}, {"b", 1}}}}},
           {"metadata", {{"version", 1}}}}));
  absl::StatusOr<SessionContext> got = store_->Get({"acme", "s1"});
  ASSERT_OK(got);
  EXPECT_EQ(got->context, Json::parse(R"({"keep":1,"nested":{"y":{"z":1,"w":2},"n":{}},
      "list":[9],"scalar":{"now":"object"},"fresh":{"b":1}})"));
  EXPECT_EQ(got->version, 2);
}

// A PATCH that would take the record over the size limit changes nothing; one that
// shrinks it, or stays under, lands. Sizes are counted alike on every layout.
TEST_P(StoreConformance, PatchRefusesOversizedRecordAndChangesNothing) {
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1", .context = Json{{"a", "x"}}}));
  PatchWrite w{Json{{"context", {{"big", std::string(5000, 'x')}}}}, 1, clock_.Now(), absl::Hours(1), 4096};
  EXPECT_STATUS(store_->Patch({"acme", "s1"}, w), kResourceExhausted);
  absl::StatusOr<SessionContext> got = store_->Get({"acme", "s1"});
  ASSERT_OK(got);
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->context, Json::parse(R"({"a":"x"})"));
  w.body = Json{{"context", {{"big", std::string(3000, 'x')}}}};
  ASSERT_OK(store_->Patch({"acme", "s1"}, w));
  w.body = Json{{"context", {{"more", std::string(1500, 'y')}}}};
  w.expected_version = 2;
  EXPECT_STATUS(store_->Patch({"acme", "s1"}, w), kResourceExhausted);
  w.body = Json{{"currency", "CHF"}, {"context", {{"big", nullptr}, {"more", std::string(1500, 'y')}}}};
  ASSERT_OK(store_->Patch({"acme", "s1"}, w));
  got = store_->Get({"acme", "s1"});
  ASSERT_OK(got);
  EXPECT_EQ(got->version, 3);
  EXPECT_EQ(got->currency, "CHF");
  EXPECT_EQ(got->context, (Json{{"a", "x"}, {"more", std::string(1500, 'y')}}));
}

TEST_P(StoreConformance, PatchBaseFieldsSetAndRemove) {
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1", .site_code = "main",
                                                    .currency = "EUR", .cart_id = "c1"}));
  ASSERT_OK(service_->Patch({"acme", "s1"}, Json{{"siteCode", nullptr},
                                                  {"language", "de-CH"},
                                                  {"targetLocation", "CH"},
                                                  {"cartId", "ignored"},
                                                  {"metadata", {{"version", 1}}}}));
  absl::StatusOr<SessionContext> got = store_->Get({"acme", "s1"});
  ASSERT_OK(got);
  EXPECT_FALSE(got->site_code.has_value());
  EXPECT_EQ(got->currency, "EUR");
  EXPECT_EQ(got->language, "de-CH");
  EXPECT_EQ(got->target_location, "CH");
  EXPECT_EQ(got->cart_id, "c1");
}

TEST_P(StoreConformance, PatchContextNullEmptiesIt) {
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1",
                                                    .context = Json{{"a", 1}, {"b", 2}}}));
  ASSERT_OK(service_->Patch({"acme", "s1"},
                            Json{{"context", nullptr}, {"metadata", {{"version", 1}}}}));
  EXPECT_EQ(store_->Get({"acme", "s1"})->context, Json::object());
}

TEST_P(StoreConformance, PatchExtendsAnonymousExpiry) {
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1"}));
  clock_.Advance(absl::Minutes(50));
  ASSERT_OK(service_->Patch({"acme", "s1"}, Json{{"currency", "EUR"}, {"metadata", {{"version", 1}}}}));
  clock_.Advance(absl::Minutes(50));
  EXPECT_OK(store_->Get({"acme", "s1"}));
}

TEST_P(StoreConformance, PatchWithoutVersionIsInvalid) {
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1"}));
  EXPECT_STATUS(service_->Patch({"acme", "s1"}, Json{{"currency", "CHF"}}), kInvalidArgument);
  ASSERT_OK(service_->Patch({"acme", "s1"}, Json{{"currency", "CHF"}}, 1));  // If-Match
}

TEST_P(StoreConformance, PutWithStaleVersionIsAbortedAndChangesNothing) {
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1"}));
  ASSERT_OK(service_->Put({"acme", "s1"}, Json{{"metadata", {{"version", 1}}}}, {}));
  EXPECT_STATUS(service_->Put({"acme", "s1"},
                              Json{{"currency", "USD"}, {"metadata", {{"version", 1}}}}, {}),
                kAborted);
  EXPECT_FALSE(store_->Get({"acme", "s1"})->currency.has_value());
}

TEST_P(StoreConformance, PutUpsertCreatesMissingSessionAtVersionOne) {
  absl::StatusOr<PutResult> r =
      service_->Put({"acme", "new"}, Json{{"currency", "EUR"}, {"context", {{"a", 1}}}},
                    PutOptions{.upsert = true});
  ASSERT_OK(r);
  EXPECT_TRUE(r->created);
  absl::StatusOr<SessionContext> got = store_->Get({"acme", "new"});
  ASSERT_OK(got);
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->currency, "EUR");
  EXPECT_EQ(got->context, (Json{{"a", 1}}));
}

TEST_P(StoreConformance, PutUpsertCreationTakesTenantDefaultsForUnnamedFields) {
  ServiceOptions options;
  options.clock = &clock_;
  options.tenant_defaults["acme"] = TenantDefaults{"main", "EUR", "DE", "de"};
  SessionService service(store_.get(), options);
  ASSERT_OK(service.Put({"acme", "d1"}, Json{{"currency", "CHF"}, {"language", nullptr}},
                        PutOptions{.upsert = true}));
  absl::StatusOr<SessionContext> got = store_->Get({"acme", "d1"});
  ASSERT_OK(got);
  EXPECT_EQ(got->site_code, "main");
  EXPECT_EQ(got->currency, "CHF");
  EXPECT_EQ(got->target_location, "DE");
  EXPECT_FALSE(got->language.has_value());
  // A replacing PUT does not bring defaults back.
  ASSERT_OK(service.Put({"acme", "d1"}, Json{{"metadata", {{"version", 1}}}}, PutOptions{}));
  EXPECT_FALSE(store_->Get({"acme", "d1"})->site_code.has_value());
}

TEST_P(StoreConformance, PutWithoutUpsertOnMissingIsNotFound) {
  EXPECT_STATUS(service_->Put({"acme", "new"}, Json{{"metadata", {{"version", 1}}}}, {}),
                kNotFound);
}

TEST_P(StoreConformance, AttachCustomerMakesSessionPermanent) {
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1"}));
  ASSERT_OK(service_->SetAttribute({"acme", "s1"}, "a", 1));
  absl::StatusOr<SessionContext> r = service_->AttachCustomer({"acme", "s1"}, "cust-9");
  ASSERT_OK(r);
  EXPECT_EQ(r->customer_id, "cust-9");
  clock_.Advance(absl::Hours(24 * 365));
  absl::StatusOr<SessionContext> got = store_->Get({"acme", "s1"});
  ASSERT_OK(got);
  EXPECT_EQ(got->customer_id, "cust-9");
  EXPECT_EQ(got->context, (Json{{"a", 1}}));
  EXPECT_EQ(*store_->PurgeExpired(), 0);
}

TEST_P(StoreConformance, DeleteAttributeOfAbsentKeyDoesNotBumpVersion) {
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1"}));
  absl::StatusOr<bool> removed = service_->DeleteAttribute({"acme", "s1"}, "nothing");
  ASSERT_OK(removed);
  EXPECT_FALSE(*removed);
  EXPECT_EQ(store_->Get({"acme", "s1"})->version, 1);
}

// --- Import (sessionctl import: restoring an export) --------------------------------

TEST_P(StoreConformance, ImportCreatesAndReplacesKeepingVersionTimesAndExpiry) {
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "s1",
                                                    .context = Json{{"a", 1}, {"b", 1}}}));
  ASSERT_OK(service_->SetAttribute({"acme", "s1"}, "z", true));
  SessionContext replaced = Record("s1", 7);
  replaced.context = Json{{"b", 2}, {"c", {{"deep", {1, 2}}}}};
  replaced.modified_at = kStart + absl::Minutes(3);
  replaced.expires_at = kStart + absl::Minutes(63);
  SessionContext created = Record("s2", 4);
  created.customer_id = "cust";
  created.expires_at = absl::InfiniteFuture();
  const std::vector<ImportRecord> batch = {{{"acme", "s1"}, replaced}, {{"acme", "s2"}, created}};
  ASSERT_OK(store_->Import(batch));
  for (int round = 0; round < 2; ++round) {  // a second import of the same changes nothing
    SCOPED_TRACE(round);
    absl::StatusOr<SessionContext> s1 = store_->Get({"acme", "s1"});
    ASSERT_OK(s1);
    EXPECT_EQ(*s1, replaced);
    absl::StatusOr<SessionContext> s2 = store_->Get({"acme", "s2"});
    ASSERT_OK(s2);
    EXPECT_EQ(*s2, created);
    EXPECT_EQ(Json::parse((*store_->GetText({"acme", "s1"}))->json()), ToJson(replaced));
    ASSERT_OK(store_->Import(batch));
  }
  // Imported records behave as any other: the next write bumps the version.
  ASSERT_OK(service_->SetAttribute({"acme", "s1"}, "n", 1));
  EXPECT_EQ(store_->Get({"acme", "s1"})->version, 8);
  clock_.Advance(absl::Minutes(64));
  EXPECT_STATUS(store_->Get({"acme", "s1"}), kNotFound);  // its imported expiry holds
  EXPECT_OK(store_->Get({"acme", "s2"}));
}

TEST_P(StoreConformance, ImportReplacesAnExpiredSessionAndALargeContext) {
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "old"}));
  for (int i = 0; i < 400; ++i) {  // past every backend's inline limit
    ASSERT_OK(service_->SetAttribute({"acme", "old"}, absl::StrCat("attribute-", i), i));
  }
  clock_.Advance(absl::Hours(2));  // expired
  SessionContext small = Record("old", 2);
  small.context = Json{{"only", true}};
  ASSERT_OK(store_->Import({{{"acme", "old"}, small}}));
  absl::StatusOr<SessionContext> got = store_->Get({"acme", "old"});
  ASSERT_OK(got);
  EXPECT_EQ(got->context, Json::parse(R"({"only":true})"));
  EXPECT_EQ(got->version, 2);
}

// A record may bring its context as canonical text (sessionctl import cuts it out of
// the export line): every store keeps exactly that context, small or spilled.
TEST_P(StoreConformance, ImportKeepsAContextGivenAsText) {
  SessionContext small = Record("text-small", 3);
  small.context =
      Json{{"cart", {{"sku", "sku-1"}, {"qty", 2}}}, {"price", 406.56}, {"é", "\t"}};
  SessionContext large = Record("text-large", 5);
  for (int i = 0; i < 400; ++i) large.context[absl::StrCat("attribute-", i)] = i;
  std::vector<ImportRecord> batch = {{{"acme", "text-small"}, small},
                                     {{"acme", "text-large"}, large}};
  for (ImportRecord& r : batch) {
    r.context_json = r.record.context.dump();
    r.record.context = Json{{"ignored", true}};  // the text stands for the context
  }
  ASSERT_OK(store_->Import(batch));
  for (const SessionContext& want : {small, large}) {
    SCOPED_TRACE(want.session_id);
    absl::StatusOr<SessionContext> got = store_->Get({"acme", want.session_id});
    ASSERT_OK(got);
    EXPECT_EQ(*got, want);
    EXPECT_EQ(Json::parse((*store_->GetText({"acme", want.session_id}))->json()),
              ToJson(want));
  }
  // Imported text behaves as any context: an attribute write lands in it.
  ASSERT_OK(service_->SetAttribute({"acme", "text-small"}, "n", 1));
  EXPECT_EQ(store_->Get({"acme", "text-small"})->context.value("n", 0), 1);
}

TEST_P(StoreConformance, ImportRefusesAContextTextNotInTheLibrarysFormAndWritesNothing) {
  for (const std::string& text :
       {std::string("{\"b\":1,\"a\":2}"), std::string("{ \"a\":1}"), std::string("[1]"),
        std::string("{\"a\":\"\\u0000\"}"), std::string("{\"a\":1"),
        std::string("{\"a\":1.50}")}) {
    SCOPED_TRACE(text);
    ImportRecord ok{{"acme", "fine"}, Record("fine", 1)};
    ImportRecord bad{{"acme", "bad"}, Record("bad", 1)};
    bad.context_json = text;
    EXPECT_STATUS(store_->Import({ok, bad}), kInvalidArgument);
    EXPECT_STATUS(store_->Get({"acme", "fine"}), kNotFound);
    EXPECT_STATUS(store_->Get({"acme", "bad"}), kNotFound);
  }
}

// A bulk import ends as the same batches given to Import one after the other would:
// the same records, counts, indexes and each session's events. One tenant gets them
// through BeginImport, another through Import; a session stored before the bulk
// import began and one written while it runs are imported over by the same rule.
TEST_P(StoreConformance, BulkImportEndsAsImportingTheBatchesInTurnWould) {
  auto batches = [&](const std::string& tenant) {
    SessionContext large = Record("large", 2);
    for (int i = 0; i < 300; ++i) large.context[absl::StrCat("attribute-", i)] = i;
    SessionContext customer = Record("cust", 1);
    customer.customer_id = "c1";
    customer.expires_at = absl::InfiniteFuture();
    SessionContext customer_again = customer;
    customer_again.cart_id = "cart-2";  // same version: imported over
    SessionContext text = Record("text", 1);
    std::vector<std::vector<ImportRecord>> out = {
        {{{tenant, "a"}, Record("a", 3)},
         {{tenant, "cust"}, customer},
         {{tenant, "large"}, large},
         {{tenant, "text"}, text},
         {{tenant, "before"}, Record("before", 1)}},
        {{{tenant, "a"}, Record("a", 5)},
         {{tenant, "b"}, Record("b", 1)},
         {{tenant, "during"}, Record("during", 4)}},
        {{{tenant, "a"}, Record("a", 4)}, {{tenant, "cust"}, customer_again}}};
    out[0][3].context_json = R"({"as":"text","n":[1,2.5]})";  // context given as text
    return out;
  };
  ImportResult plain, bulk;
  ASSERT_OK(service_->Create("plain", SessionContext{.session_id = "before"}));
  ASSERT_OK(service_->Create("bulk", SessionContext{.session_id = "before"}));
  ASSERT_OK(service_->SetAttribute({"plain", "before"}, "x", 1));  // version 2: kept
  ASSERT_OK(service_->SetAttribute({"bulk", "before"}, "x", 1));
  // "during" is written before the plain import, and after the bulk one began: either
  // way the imported version 4 goes over the new session's version 1.
  ASSERT_OK(service_->Create("plain", SessionContext{.session_id = "during"}));
  for (std::vector<ImportRecord>& batch : batches("plain")) {
    absl::StatusOr<ImportResult> r = store_->Import(batch);
    ASSERT_OK(r);
    plain.written += r->written;
    plain.skipped += r->skipped;
  }
  std::unique_ptr<BulkImport> import = store_->BeginImport(ImportOptions{});
  ASSERT_OK(service_->Create("bulk", SessionContext{.session_id = "during"}));
  for (std::vector<ImportRecord>& batch : batches("bulk")) {
    const size_t size = batch.size();
    absl::StatusOr<ImportResult> r = import->Add(batch);
    ASSERT_OK(r);
    EXPECT_TRUE(batch.empty()) << size;
    bulk.written += r->written;
    bulk.skipped += r->skipped;
  }
  absl::StatusOr<ImportResult> finished = import->Finish();
  ASSERT_OK(finished);
  bulk.written += finished->written;
  bulk.skipped += finished->skipped;
  EXPECT_EQ(bulk.skipped, plain.skipped);
  EXPECT_EQ(bulk.written, plain.written);
  EXPECT_EQ(plain.skipped, 2);  // "a" at version 4 after 5; "before" (stored at 2) at 1
  for (const char* id : {"a", "b", "cust", "large", "text", "before", "during"}) {
    SCOPED_TRACE(id);
    absl::StatusOr<SessionContext> want = store_->Get({"plain", id});
    absl::StatusOr<SessionContext> got = store_->Get({"bulk", id});
    ASSERT_OK(want);
    ASSERT_OK(got);
    EXPECT_EQ(*got, *want);
  }
  EXPECT_EQ(store_->Get({"bulk", "a"})->version, 5);
  EXPECT_EQ(store_->Get({"bulk", "during"})->version, 4);
  EXPECT_EQ(store_->Get({"bulk", "text"})->context,
            Json::parse(R"({"as":"text","n":[1,2.5]})"));
  absl::StatusOr<CustomerSessionPage> customers =
      store_->ListCustomerSessions({"bulk", "c1"}, "", 10);
  ASSERT_OK(customers);
  ASSERT_EQ(customers->sessions.size(), 1u);
  EXPECT_EQ(customers->sessions[0].session_id, "cust");
  // Each session's events, in order: what the plain tenant's Import calls wrote.
  auto events_of = [&](const std::string& tenant) {
    std::map<std::string, std::vector<std::pair<EventType, int64_t>>> out;
    absl::StatusOr<EventPage> page = store_->ReadEvents({"0", kMaxEventPage, tenant});
    EXPECT_OK(page);
    if (page.ok()) {
      for (const SessionEvent& e : page->events)
        out[e.key.session_id].push_back({e.type, e.version});
    }
    return out;
  };
  const auto bulk_events = events_of("bulk");
  EXPECT_EQ(bulk_events, events_of("plain"));
  EXPECT_EQ(bulk_events.at("a").size(), 2u);  // created at 3, changed to 5
  // The expiry index holds the imported sessions as Import's would: once they are
  // due, a purge takes the anonymous ones of both tenants, the customer's stays.
  clock_.Advance(absl::Hours(2));
  absl::StatusOr<int64_t> purged = store_->PurgeExpired();
  ASSERT_OK(purged);
  EXPECT_EQ(*purged, 12);  // a, b, large, text, before, during of each tenant
  for (const char* tenant : {"plain", "bulk"}) {
    EXPECT_STATUS(store_->Get({tenant, "a"}), kNotFound);
    EXPECT_OK(store_->Get({tenant, "cust"}));
  }
}

TEST_P(StoreConformance, BulkImportRefusesABadBatchAndLeavesItWithTheCaller) {
  std::unique_ptr<BulkImport> import = store_->BeginImport(ImportOptions{});
  std::vector<ImportRecord> bad = {{{"acme", "dup"}, Record("dup", 1)},
                                   {{"acme", "dup"}, Record("dup", 2)}};
  EXPECT_STATUS(import->Add(bad), kInvalidArgument);
  EXPECT_EQ(bad.size(), 2u);
  std::vector<ImportRecord> good = {{{"acme", "fine"}, Record("fine", 1)}};
  ASSERT_OK(import->Add(good));
  absl::StatusOr<ImportResult> r = import->Finish();
  ASSERT_OK(r);
  EXPECT_STATUS(store_->Get({"acme", "dup"}), kNotFound);
  EXPECT_EQ(store_->Get({"acme", "fine"})->version, 1);
}

TEST_P(StoreConformance, ImportRefusesAKeyTwiceAndWritesNothing) {
  SessionContext a = Record("dup", 1);
  SessionContext b = Record("dup", 2);
  EXPECT_STATUS(store_->Import({{{"acme", "dup"}, a}, {{"acme", "dup"}, b}}), kInvalidArgument);
  EXPECT_STATUS(store_->Get({"acme", "dup"}), kNotFound);
  EXPECT_OK(store_->Import({}));
}

TEST_P(StoreConformance, ConcurrentAttributeAddsLoseNothing) {
  constexpr int kThreads = 8;
  constexpr int per_thread = 2000;
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "hot"}));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        if (!service_->SetAttribute({"acme", "hot"}, absl::StrCat("t", t, "-", i), i).ok()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  absl::StatusOr<SessionContext> got = store_->Get({"acme", "hot"});
  ASSERT_OK(got);
  EXPECT_EQ(got->version, 1 + kThreads * per_thread);
  EXPECT_EQ(got->context.size(), static_cast<size_t>(kThreads * per_thread));
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < per_thread; i += 97) {
      EXPECT_EQ(got->context.value(absl::StrCat("t", t, "-", i), -1), i);
    }
  }
}

TEST_P(StoreConformance, ConcurrentReadPatchRetryIncrementsEndOnExactTotal) {
  constexpr int kThreads = 8;
  constexpr int per_thread = 250;
  ASSERT_OK(service_->Create(
      "acme", SessionContext{.session_id = "counter", .context = Json{{"n", 0}}}));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) {
        if (!testing::IncrementCounter(*service_, {"acme", "counter"}).ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  absl::StatusOr<SessionContext> got = store_->Get({"acme", "counter"});
  ASSERT_OK(got);
  EXPECT_EQ(got->context["n"], kThreads * per_thread);
  EXPECT_EQ(got->version, 1 + kThreads * per_thread);
}

// Under contention every refused PATCH or compare-and-set is a version conflict that
// names a newer version than the one sent: a client can retry from it (the HTTP 409
// says "the current version is N"). A write racing another inside the database must
// not answer with the version it was based on.
TEST_P(StoreConformance, EveryConcurrentConflictNamesANewerVersion) {
  constexpr int kThreads = 6;
  constexpr int per_thread = 150;
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "hot", .context = Json{{"n", 0}}}));
  std::vector<std::thread> threads;
  std::atomic<int> landed{0}, stale{0}, other{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        absl::StatusOr<SessionContext> s = service_->Get({"acme", "hot"});
        if (!s.ok()) {
          ++other;
          continue;
        }
        absl::Status st;
        if (t % 2 == 0) {
          st = service_->Patch({"acme", "hot"}, Json{{"currency", i % 2 ? "CHF" : "EUR"},
                                                     {"metadata", {{"version", s->version}}}})
                   .status();
        } else {
          SessionContext next = *s;
          next.currency = i % 2 ? "CHF" : "EUR";
          next.version = s->version + 1;
          st = store_->CompareAndSet({"acme", "hot"}, s->version, next);
        }
        if (st.ok()) {
          ++landed;
        } else if (std::optional<int64_t> current = CurrentVersionOf(st);
                   absl::IsAborted(st) && current && *current > s->version) {
          continue;
        } else if (absl::IsAborted(st)) {
          ++stale;
        } else {
          ++other;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(stale.load(), 0);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(store_->Get({"acme", "hot"})->version, 1 + landed.load());
}

// Readers of a large session (a context past every backend's inline limit) while
// writers change it: every read is a whole, valid session at some version, versions
// never go back, and the last read sees every write.
TEST_P(StoreConformance, ReadsOfALargeSessionWhileItChangesAreWhole) {
  Json context = Json::object();
  for (int i = 0; i < 80; ++i) context[absl::StrCat("a", i)] = std::string(250, 'x');
  ASSERT_OK(service_->Create("acme", SessionContext{.session_id = "big", .context = context}));
  constexpr int kWrites = 60;
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kWrites; ++i) {
        if (!service_->SetAttribute({"acme", "big"}, absl::StrCat("w", w, "-", i), i).ok()) ++bad;
      }
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&] {
      int64_t last = 0;
      for (int i = 0; i < kWrites; ++i) {
        absl::StatusOr<std::shared_ptr<const SessionText>> t = service_->GetText({"acme", "big"});
        if (!t.ok()) {
          ++bad;
          continue;
        }
        absl::StatusOr<SessionContext> whole = (*t)->Record();
        if (!whole.ok() || whole->version < last || whole->version != (*t)->version() ||
            whole->context.size() != 80 + static_cast<size_t>(whole->version - 1)) {
          ++bad;
        }
        last = (*t)->version();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  absl::StatusOr<SessionContext> got = store_->Get({"acme", "big"});
  ASSERT_OK(got);
  EXPECT_EQ(got->version, 1 + 2 * kWrites);
  EXPECT_EQ(got->context.size(), 80u + 2 * kWrites);
}

TEST_P(StoreConformance, UpdateRacingDeleteNeverResurrects) {
  for (int round = 0; round < 50; ++round) {
    const std::string id = absl::StrCat("r", round);
    ASSERT_OK(service_->Create("acme", SessionContext{.session_id = id}));
    std::thread writer([&] {
      for (int i = 0; i < 20; ++i) (void)service_->SetAttribute({"acme", id}, "a", i);
    });
    std::thread deleter([&] { (void)service_->Delete({"acme", id}); });
    writer.join();
    deleter.join();
    SCOPED_TRACE(id);
    EXPECT_STATUS(store_->Get({"acme", id}), kNotFound);
  }
}

// TryGetText answers exactly as GetText, or says it would block and nothing else:
// memory always answers; rocksdb answers a session in its memtable (just written);
// postgres, a network round trip, never answers without one.
// AsyncGet: GetTextAsync's answer (waited for), or nullopt when the backend has no
// asynchronous path (the callback then stays the caller's).
std::optional<absl::StatusOr<std::shared_ptr<const SessionText>>> AsyncGet(
    SessionStore& store, const SessionKey& key) {
  auto answer = std::make_shared<
      std::promise<absl::StatusOr<std::shared_ptr<const SessionText>>>>();
  std::future<absl::StatusOr<std::shared_ptr<const SessionText>>> answered =
      answer->get_future();
  SessionStore::TextCallback done =
      [answer](absl::StatusOr<std::shared_ptr<const SessionText>> r) {
        answer->set_value(std::move(r));
      };
  if (!store.GetTextAsync(key, done)) {
    EXPECT_TRUE(static_cast<bool>(done))
        << "a read not started leaves the callback alone";
    return std::nullopt;
  }
  if (answered.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    return absl::DeadlineExceededError("no answer within 10 s");
  }
  return answered.get();
}

TEST_P(StoreConformance, GetTextAsyncAnswersAsGetTextOrIsNotOffered) {
  ASSERT_OK(store_->Create({"acme", "a"}, Record("a")));
  auto found = AsyncGet(*store_, {"acme", "a"});
  if (!found) return;  // no asynchronous path: servers use TryGetText and GetText
  ASSERT_OK(*found);
  EXPECT_EQ((**found)->json(), (*store_->GetText({"acme", "a"}))->json());
  EXPECT_EQ((**found)->version(), 1);
  EXPECT_TRUE(absl::IsNotFound(AsyncGet(*store_, {"acme", "missing"})->status()));
  EXPECT_TRUE(absl::IsNotFound(AsyncGet(*store_, {"other", "a"})->status()));
  clock_.Advance(absl::Hours(2));  // expired by the store's clock, before any eviction
  EXPECT_TRUE(absl::IsNotFound(AsyncGet(*store_, {"acme", "a"})->status()));
}

// Reads started from many threads are each answered once, with the right session; a
// store that closes answers every read it started before it is gone.
TEST_P(StoreConformance, GetTextAsyncAnswersEveryReadOnceEvenWhenTheStoreCloses) {
  for (int i = 0; i < 8; ++i) {
    const std::string id = absl::StrCat("s", i);
    ASSERT_OK(store_->Create({"acme", id}, Record(id)));
  }
  if (!AsyncGet(*store_, {"acme", "s0"})) return;  // no asynchronous path
  constexpr int kThreads = 4, kReads = 500;
  std::atomic<int> answered{0}, right{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kReads; ++i) {
        const std::string id = absl::StrCat("s", (t + i) % 8);
        SessionStore::TextCallback done =
            [&, id](absl::StatusOr<std::shared_ptr<const SessionText>> r) {
              right += r.ok() &&
                       (*r)->json().find("\"" + id + "\"") != absl::string_view::npos;
              ++answered;
            };
        EXPECT_TRUE(store_->GetTextAsync({"acme", id}, done));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  service_.reset();
  store_.reset();  // waits for the reads it started
  EXPECT_EQ(answered.load(), kThreads * kReads);
  EXPECT_EQ(right.load(), kThreads * kReads);
}

TEST_P(StoreConformance, TryGetTextAnswersAsGetTextOrWouldBlock) {
  ASSERT_OK(store_->Create({"acme", "s1"}, Record("s1")));
  const std::string backend = GetParam();
  const bool answers = backend == "memory" || backend == "rocksdb";
  absl::StatusOr<std::shared_ptr<const SessionText>> tried = store_->TryGetText({"acme", "s1"});
  if (IsWouldBlock(tried.status())) {
    EXPECT_FALSE(answers) << backend << " should answer a session it just wrote";
  } else {
    ASSERT_OK(tried);
    absl::StatusOr<std::shared_ptr<const SessionText>> got = store_->GetText({"acme", "s1"});
    ASSERT_OK(got);
    EXPECT_EQ((*tried)->json(), (*got)->json());
  }
  absl::StatusOr<std::shared_ptr<const SessionText>> missing = store_->TryGetText({"acme", "nope"});
  EXPECT_TRUE(IsWouldBlock(missing.status()) || absl::IsNotFound(missing.status()))
      << missing.status();
  clock_.Advance(absl::Hours(2));  // expired: missing, as for GetText
  absl::StatusOr<std::shared_ptr<const SessionText>> expired = store_->TryGetText({"acme", "s1"});
  EXPECT_TRUE(IsWouldBlock(expired.status()) || absl::IsNotFound(expired.status()))
      << expired.status();
  if (answers) EXPECT_STATUS(expired, kNotFound);
}

// The factory's table: schemes in any case, an unknown one refused naming it, and
// one canonical backend name per backend (what metrics and logs say).
TEST(StoreFactory, SchemesPickTheirBackendWhateverTheCase) {
  EXPECT_OK(OpenSessionStore("MEMORY:", StoreOptions{}));
  absl::StatusOr<std::unique_ptr<SessionStore>> unknown = OpenSessionStore("mongodb://x", StoreOptions{});
  EXPECT_STATUS(unknown, kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("mongodb"), std::string::npos);
  EXPECT_STATUS(OpenSessionStore("no-scheme", StoreOptions{}), kInvalidArgument);
  EXPECT_EQ(StoreBackendName("memory:"), "memory");
  EXPECT_EQ(StoreBackendName("RocksDB:/tmp/x"), "rocksdb");
  EXPECT_EQ(StoreBackendName("postgresql://u@h/db"), "postgres");
  EXPECT_EQ(StoreBackendName("Postgres://u@h/db"), "postgres");
  EXPECT_EQ(StoreBackendName("redis://h:6379/0"), "redis");
  EXPECT_EQ(StoreBackendName("redis+cluster://h:7000,h:7001"), "redis-cluster");
  EXPECT_EQ(StoreBackendName("mongodb://x"), "");
  EXPECT_EQ(StoreBackendName("nothing"), "");
}

// What a log line may show of a store URI: never a password.
TEST(StoreFactory, RedactedUriHidesPasswordsOnly) {
  EXPECT_EQ(RedactedStoreUri("redis://app:s3cret@cache:6379/0"), "redis://app:***@cache:6379/0");
  EXPECT_EQ(RedactedStoreUri("redis://:s3cret@[::1]:6379"), "redis://:***@[::1]:6379");
  EXPECT_EQ(RedactedStoreUri("redis+cluster://:pw@h:7000,h:7001?pool_size=2"),
            "redis+cluster://:***@h:7000,h:7001?pool_size=2");
  EXPECT_EQ(RedactedStoreUri("postgresql://u@h/db?sslmode=require&password=pw&x=1"),
            "postgresql://u@h/db?sslmode=require&password=***&x=1");
  EXPECT_EQ(RedactedStoreUri("postgresql:///db?host=/run/pg&password=pw"),
            "postgresql:///db?host=/run/pg&password=***");
  EXPECT_EQ(RedactedStoreUri("redis://cache:6379"), "redis://cache:6379");
  EXPECT_EQ(RedactedStoreUri("rocksdb:./data/sessions?sync=true"), "rocksdb:./data/sessions?sync=true");
  EXPECT_EQ(RedactedStoreUri("memory:"), "memory:");
}

// A password from a file goes where each store reads it, encoded.
TEST(StoreFactory, UriWithPasswordPutsItWhereTheStoreReadsIt) {
  EXPECT_EQ(*StoreUriWithPassword("redis://cache:6379/0", "p@ss:w/rd"),
            "redis://:p%40ss%3Aw%2Frd@cache:6379/0");
  EXPECT_EQ(*StoreUriWithPassword("redis://app@cache:6379", "pw"), "redis://app:pw@cache:6379");
  EXPECT_EQ(*StoreUriWithPassword("redis://app:old@cache", "new"), "redis://app:new@cache");
  EXPECT_EQ(*StoreUriWithPassword("redis+cluster://h:7000,h:7001?pool_size=2", "pw"),
            "redis+cluster://:pw@h:7000,h:7001?pool_size=2");
  EXPECT_EQ(*StoreUriWithPassword("postgresql://app@db/sessions", "a b&c"),
            "postgresql://app@db/sessions?password=a%20b%26c");
  EXPECT_EQ(*StoreUriWithPassword("postgresql://app@db/sessions?sslmode=require", "pw"),
            "postgresql://app@db/sessions?sslmode=require&password=pw");
  EXPECT_STATUS(StoreUriWithPassword("rocksdb:/data", "pw"), kInvalidArgument);
  EXPECT_STATUS(StoreUriWithPassword("memory:", "pw"), kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance,
                         ::testing::ValuesIn(testing::ConformanceBackends()),
                         testing::BackendName);

}  // namespace
}  // namespace sessionctx
