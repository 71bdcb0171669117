#include "sessionctx/metrics_store.h"

#include <chrono>

namespace sessionctx {
namespace {

constexpr const char* kOperationNames[] = {"get",
                                           "create",
                                           "compare_and_set",
                                           "delete",
                                           "purge_expired",
                                           "for_each",
                                           "update_attribute",
                                           "patch",
                                           "list_customer_sessions",
                                           "end_customer_sessions",
                                           "read_events"};
static_assert(sizeof(kOperationNames) / sizeof(kOperationNames[0]) ==
                  MetricsStore::kOperationCount,
              "one name per operation");
constexpr const char* kOutcomeNames[] = {"ok", "not_found", "conflict", "unavailable", "other"};

const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

}  // namespace

MetricsStore::Outcome MetricsStore::OutcomeOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kOk;
    case absl::StatusCode::kNotFound:
      return kNotFound;
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kAlreadyExists:
      return kConflict;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kUnavailable;
    default:
      return kOther;
  }
}

MetricsStore::MetricsStore(SessionStore* target, std::string backend,
                           prometheus::Registry& registry)
    : SessionStoreWrapper(target), backend_(std::move(backend)), registry_(registry) {
  auto& counts = prometheus::BuildCounter()
                     .Name("sessionctx_store_operations_total")
                     .Help("Store calls by operation and outcome")
                     .Register(registry_);
  auto& durations = prometheus::BuildHistogram()
                        .Name("sessionctx_store_operation_duration_seconds")
                        .Help("Time a store call took, by operation")
                        .Register(registry_);
  const prometheus::Histogram::BucketBoundaries buckets = {
      0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
      0.01,    0.025,   0.05,   0.1,     0.25,   0.5,   1,     2.5,   5};
  for (int op = 0; op < kOperationCount; ++op) {
    for (int outcome = 0; outcome < kOutcomeCount; ++outcome) {
      counts_[op][outcome] = &counts.Add({{"backend", backend_},
                                          {"operation", kOperationNames[op]},
                                          {"outcome", kOutcomeNames[outcome]}});
    }
    durations_[op] =
        &durations.Add({{"backend", backend_}, {"operation", kOperationNames[op]}}, buckets);
  }
}

template <typename Call>
auto MetricsStore::Timed(Operation op, Call&& call) -> decltype(call()) {
  const auto start = std::chrono::steady_clock::now();
  auto result = call();
  Record(op, start, StatusOf(result));
  return result;
}

void MetricsStore::Record(Operation op, std::chrono::steady_clock::time_point start,
                          const absl::Status& status) {
  durations_[op]->Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  counts_[op][OutcomeOf(status)]->Increment();
}

absl::StatusOr<std::shared_ptr<const SessionText>> MetricsStore::TryGetText(const SessionKey& key) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::shared_ptr<const SessionText>> result = SessionStoreWrapper::TryGetText(key);
  if (!IsWouldBlock(result.status())) Record(kGet, start, result.status());
  return result;
}

bool MetricsStore::GetTextAsync(const SessionKey& key, TextCallback& done) {
  const auto start = std::chrono::steady_clock::now();
  auto inner = std::make_shared<TextCallback>(std::move(done));
  TextCallback counted =
      [this, start, inner](absl::StatusOr<std::shared_ptr<const SessionText>> result) {
        Record(kGet, start, result.status());
        (*inner)(std::move(result));
      };
  if (SessionStoreWrapper::GetTextAsync(key, counted)) return true;
  done = std::move(*inner);  // not started: the caller keeps its callback
  return false;
}

absl::StatusOr<SessionContext> MetricsStore::Get(const SessionKey& key) {
  return Timed(kGet, [&] { return SessionStoreWrapper::Get(key); });
}
absl::StatusOr<std::shared_ptr<const SessionText>> MetricsStore::GetText(const SessionKey& key) {
  return Timed(kGet, [&] { return SessionStoreWrapper::GetText(key); });  // a read: "get"
}
absl::Status MetricsStore::Create(const SessionKey& key, const SessionContext& record) {
  return Timed(kCreate, [&] { return SessionStoreWrapper::Create(key, record); });
}
absl::Status MetricsStore::CompareAndSet(const SessionKey& key, int64_t expected_version,
                                         const SessionContext& record) {
  return Timed(kCompareAndSet,
               [&] { return SessionStoreWrapper::CompareAndSet(key, expected_version, record); });
}
absl::Status MetricsStore::Delete(const SessionKey& key, std::optional<int64_t> expected_version) {
  return Timed(kDelete, [&] { return SessionStoreWrapper::Delete(key, expected_version); });
}
absl::StatusOr<int64_t> MetricsStore::PurgeExpired() {
  return Timed(kPurgeExpired, [&] { return SessionStoreWrapper::PurgeExpired(); });
}
absl::Status MetricsStore::ForEach(
    const std::function<bool(const SessionKey&, const SessionContext&)>& visit) {
  return Timed(kForEach, [&] { return SessionStoreWrapper::ForEach(visit); });
}
absl::StatusOr<AttributeResult> MetricsStore::UpdateAttribute(const SessionKey& key,
                                                              const AttributeWrite& write) {
  return Timed(kUpdateAttribute, [&] { return SessionStoreWrapper::UpdateAttribute(key, write); });
}
absl::StatusOr<int64_t> MetricsStore::Patch(const SessionKey& key, const PatchWrite& write) {
  return Timed(kPatch, [&] { return SessionStoreWrapper::Patch(key, write); });
}

void MetricsStore::RefreshStats() {
  const std::vector<StoreStat> stats = Stats();
  std::lock_guard<std::mutex> lock(stats_mu_);
  for (const StoreStat& stat : stats) {
    prometheus::Gauge*& gauge = stats_[{stat.name, stat.labels}];
    if (gauge == nullptr) {
      prometheus::Family<prometheus::Gauge>*& family = stat_families_[stat.name];
      if (family == nullptr) {
        family =
            &prometheus::BuildGauge().Name(stat.name).Help(stat.help).Register(registry_);
      }
      std::map<std::string, std::string> labels(stat.labels.begin(), stat.labels.end());
      labels["backend"] = backend_;
      gauge = &family->Add(labels);
    }
    gauge->Set(stat.value);
  }
}

absl::StatusOr<CustomerSessionPage> MetricsStore::ListCustomerSessions(
    const CustomerKey& customer, const std::string& cursor, int limit) {
  return Timed(kListCustomerSessions, [&] {
    return SessionStoreWrapper::ListCustomerSessions(customer, cursor, limit);
  });
}

absl::StatusOr<int64_t> MetricsStore::EndCustomerSessions(
    const CustomerKey& customer, const std::optional<std::string>& keep) {
  return Timed(kEndCustomerSessions,
               [&] { return SessionStoreWrapper::EndCustomerSessions(customer, keep); });
}

absl::StatusOr<EventPage> MetricsStore::ReadEvents(const EventQuery& query) {
  return Timed(kReadEvents, [&] { return SessionStoreWrapper::ReadEvents(query); });
}

}  // namespace sessionctx
