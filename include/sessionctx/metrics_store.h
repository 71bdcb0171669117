// MetricsStore: a SessionStore decorator that counts and times every store call in a
// Prometheus registry (prometheus-cpp), and exports the backend's own gauges
// (SessionStore::Stats) at scrape time. Target sessionctx::metrics.
//
// Metrics, each with the label backend="memory|rocksdb|postgres":
//   sessionctx_store_operations_total{operation, outcome}   counter
//   sessionctx_store_operation_duration_seconds{operation}  histogram
//   plus every StoreStat of the backend, as a gauge under its own name.
// operation: get, create, compare_and_set, delete, purge_expired, for_each,
// update_attribute, patch. outcome: ok, not_found, conflict (a stale version, or a
// create on an existing session), unavailable, other.
//
// Example:
//   prometheus::Registry registry;
//   MetricsStore store(raw_store.get(), "rocksdb", registry);
//   SessionService service(&store, ServiceOptions{});
//   ...
//   store.RefreshStats();  // then serialize registry.Collect()
#ifndef SESSIONCTX_METRICS_STORE_H_
#define SESSIONCTX_METRICS_STORE_H_

#include <array>
#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "sessionctx/session_store.h"

namespace sessionctx {

class MetricsStore : public SessionStoreWrapper {
 public:
  // REQUIRES: `target` and `registry` outlive the decorator. `backend` labels every
  // metric (the URI scheme is a good value).
  MetricsStore(SessionStore* target, std::string backend, prometheus::Registry& registry);

  absl::StatusOr<SessionContext> Get(const SessionKey& key) override;
  absl::StatusOr<std::shared_ptr<const SessionText>> GetText(const SessionKey& key) override;
  // Counted as a "get" when it answers; a would-block is not counted (the GetText
  // that follows is).
  absl::StatusOr<std::shared_ptr<const SessionText>> TryGetText(const SessionKey& key) override;
  // Counted as a "get" when its answer arrives.
  bool GetTextAsync(const SessionKey& key, TextCallback& done) override;
  absl::Status Create(const SessionKey& key, const SessionContext& record) override;
  absl::Status CompareAndSet(const SessionKey& key, int64_t expected_version,
                             const SessionContext& record) override;
  using SessionStoreWrapper::Delete;
  absl::Status Delete(const SessionKey& key, std::optional<int64_t> expected_version) override;
  absl::StatusOr<int64_t> PurgeExpired() override;
  absl::Status ForEach(
      const std::function<bool(const SessionKey&, const SessionContext&)>& visit) override;
  absl::StatusOr<AttributeResult> UpdateAttribute(const SessionKey& key,
                                                  const AttributeWrite& write) override;
  absl::StatusOr<int64_t> Patch(const SessionKey& key, const PatchWrite& write) override;
  absl::StatusOr<CustomerSessionPage> ListCustomerSessions(const CustomerKey& customer,
                                                           const std::string& cursor,
                                                           int limit) override;
  absl::StatusOr<int64_t> EndCustomerSessions(
      const CustomerKey& customer, const std::optional<std::string>& keep) override;
  absl::StatusOr<EventPage> ReadEvents(const EventQuery& query) override;

  // RefreshStats copies the backend's Stats() into gauges; call it before a scrape.
  // Thread-safe.
  void RefreshStats();

  enum Operation {
    kGet,
    kCreate,
    kCompareAndSet,
    kDelete,
    kPurgeExpired,
    kForEach,
    kUpdateAttribute,
    kPatch,
    kListCustomerSessions,
    kEndCustomerSessions,
    kReadEvents,
    kOperationCount
  };
  enum Outcome { kOk, kNotFound, kConflict, kUnavailable, kOther, kOutcomeCount };

  // OutcomeOf: the outcome label of a status.
  static Outcome OutcomeOf(const absl::Status& status);

 private:
  // Timed runs `call`, then counts its outcome and observes its duration.
  template <typename Call>
  auto Timed(Operation op, Call&& call) -> decltype(call());
  // Record counts one call of `op` that began at `start` and ended with `status`.
  void Record(Operation op, std::chrono::steady_clock::time_point start, const absl::Status& status);

  const std::string backend_;
  prometheus::Registry& registry_;
  std::array<std::array<prometheus::Counter*, kOutcomeCount>, kOperationCount> counts_;
  std::array<prometheus::Histogram*, kOperationCount> durations_;
  std::mutex stats_mu_;
  // By name, and by name and labels; guarded by stats_mu_.
  std::map<std::string, prometheus::Family<prometheus::Gauge>*> stat_families_;
  std::map<std::pair<std::string, StoreStat::Labels>, prometheus::Gauge*> stats_;
};

}  // namespace sessionctx

#endif  // SESSIONCTX_METRICS_STORE_H_
