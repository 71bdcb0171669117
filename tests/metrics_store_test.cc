// MetricsStore counts and times every store call by operation and outcome, and
// exports the backend's own gauges, without changing what the store answers.
#include "sessionctx/metrics_store.h"

#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "sessionctx/memory_store.h"
#include "sessionctx/session_service.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

// Value of the sample `name` whose labels include all of `labels`.
double Sample(prometheus::Registry& registry, const std::string& name,
              const std::map<std::string, std::string>& labels) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      bool match = true;
      for (const auto& [k, v] : labels) {
        bool found = false;
        for (const prometheus::ClientMetric::Label& l : metric.label) {
          found |= l.name == k && l.value == v;
        }
        match &= found;
      }
      if (!match) continue;
      if (family.type == prometheus::MetricType::Counter) return metric.counter.value;
      if (family.type == prometheus::MetricType::Gauge) return metric.gauge.value;
      if (family.type == prometheus::MetricType::Histogram) {
        return static_cast<double>(metric.histogram.sample_count);
      }
    }
  }
  return -1;
}

// A TryGetText that answers is a "get"; one that would block is not counted (the
// GetText that follows it is).
TEST(MetricsStore, TryGetTextIsCountedOnlyWhenItAnswers) {
  prometheus::Registry registry;
  auto memory = NewMemoryStore(StoreOptions{});
  MetricsStore store(memory.get(), "memory", registry);
  SessionService service(&store, ServiceOptions{});
  ASSERT_OK(service.Create("acme", SessionContext{.session_id = "m1"}));
  ASSERT_OK(store.TryGetText({"acme", "m1"}));
  EXPECT_STATUS(store.TryGetText({"acme", "nobody"}), kNotFound);
  auto count = [&](prometheus::Registry& r, const char* backend, const char* outcome) {
    return Sample(r, "sessionctx_store_operations_total",
                  {{"backend", backend}, {"operation", "get"}, {"outcome", outcome}});
  };
  EXPECT_EQ(count(registry, "memory", "ok"), 1);
  EXPECT_EQ(count(registry, "memory", "not_found"), 1);

  // SessionStoreWrapper's default target: a store that cannot tell, so would block.
  class CannotTell : public SessionStoreWrapper {
   public:
    using SessionStoreWrapper::SessionStoreWrapper;
    absl::StatusOr<std::shared_ptr<const SessionText>> TryGetText(const SessionKey& key) override {
      return SessionStore::TryGetText(key);
    }
  } cannot_tell(memory.get());
  prometheus::Registry other;
  MetricsStore metered(&cannot_tell, "remote", other);
  EXPECT_TRUE(IsWouldBlock(metered.TryGetText({"acme", "m1"}).status()));
  EXPECT_EQ(count(other, "remote", "ok"), 0);
  EXPECT_EQ(count(other, "remote", "unavailable"), 0);
  ASSERT_OK(metered.GetText({"acme", "m1"}));
  EXPECT_EQ(count(other, "remote", "ok"), 1);
}

TEST(MetricsStore, CountsEachOperationByOutcome) {
  prometheus::Registry registry;
  auto memory = NewMemoryStore(StoreOptions{});
  MetricsStore store(memory.get(), "memory", registry);
  SessionService service(&store, ServiceOptions{});
  absl::StatusOr<SessionContext> s = service.Create("acme", SessionContext{.session_id = "m1"});
  ASSERT_OK(s);
  EXPECT_STATUS(service.Create("acme", SessionContext{.session_id = "m1"}), kAlreadyExists);
  ASSERT_OK(service.Get({"acme", "m1"}));
  EXPECT_STATUS(service.Get({"acme", "nobody"}), kNotFound);
  SessionContext next = *s;
  next.version = 2;
  ASSERT_OK(store.CompareAndSet({"acme", "m1"}, 1, next));
  EXPECT_STATUS(store.CompareAndSet({"acme", "m1"}, 1, next), kAborted);

  auto count = [&](const char* op, const char* outcome) {
    return Sample(registry, "sessionctx_store_operations_total",
                  {{"backend", "memory"}, {"operation", op}, {"outcome", outcome}});
  };
  EXPECT_EQ(count("create", "ok"), 1);
  EXPECT_EQ(count("create", "conflict"), 1);
  EXPECT_EQ(count("get", "ok"), 1);
  EXPECT_EQ(count("get", "not_found"), 1);
  EXPECT_EQ(count("compare_and_set", "ok"), 1);
  EXPECT_EQ(count("compare_and_set", "conflict"), 1);
  EXPECT_EQ(count("delete", "ok"), 0);
  EXPECT_EQ(Sample(registry, "sessionctx_store_operation_duration_seconds",
                   {{"operation", "get"}}),
            2);
}

TEST(MetricsStore, ExportsTheBackendsGaugesOnRefresh) {
  prometheus::Registry registry;
  auto memory = NewMemoryStore(StoreOptions{});
  MetricsStore store(memory.get(), "memory", registry);
  SessionService service(&store, ServiceOptions{});
  ASSERT_OK(service.Create("acme", {}));
  ASSERT_OK(service.Create("acme", {}));
  store.RefreshStats();
  EXPECT_EQ(Sample(registry, "sessionctx_memory_sessions", {{"backend", "memory"}}), 2);
  ASSERT_OK(service.Create("acme", {}));
  store.RefreshStats();
  EXPECT_EQ(Sample(registry, "sessionctx_memory_sessions", {{"backend", "memory"}}), 3);
}

}  // namespace
}  // namespace sessionctx
