#include "apps/server_metrics.h"

#include <atomic>
#include <sstream>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_split.h"
#include "prometheus/text_serializer.h"
#include "sessionctx/http_routes.h"

namespace sessionctx::apps {
namespace {

constexpr const char* kMethods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};

int MethodIndex(absl::string_view method) {
  for (int i = 0; i < static_cast<int>(std::size(kMethods)); ++i) {
    if (method == kMethods[i]) return i;
  }
  return static_cast<int>(std::size(kMethods));  // "other"
}

const char* MethodLabel(int index) {
  return index < static_cast<int>(std::size(kMethods)) ? kMethods[index] : "other";
}

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
      5,      10};
  return buckets;
}

}  // namespace

namespace {

// NextInstance: a number no other ServerMetrics of this process has had.
uint64_t NextInstance() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

ServerMetrics::ServerMetrics(prometheus::Registry& registry, std::function<void()> before_scrape)
    : registry_(registry),
      before_scrape_(std::move(before_scrape)),
      requests_(prometheus::BuildCounter()
                    .Name("sessionctx_http_requests_total")
                    .Help("Answered HTTP requests by route template, method and status")
                    .Register(registry)),
      durations_(prometheus::BuildHistogram()
                     .Name("sessionctx_http_request_duration_seconds")
                     .Help("Time from a request's first byte to its answer written, by route")
                     .Register(registry)),
      open_connections_(prometheus::BuildGauge()
                            .Name("sessionctx_http_open_connections")
                            .Help("Open client connections")
                            .Register(registry)
                            .Add({})),
      refused_(prometheus::BuildCounter()
                   .Name("sessionctx_http_refused_total")
                   .Help("Requests refused or cut off by a server limit, by limit")
                   .Register(registry)),
      handed_off_(prometheus::BuildCounter()
                      .Name("sessionctx_http_handed_off_total")
                      .Help("Requests handed to the handler threads (they may wait on the "
                            "store); the rest were answered on the I/O threads")
                      .Register(registry)
                      .Add({})),
      purge_runs_(prometheus::BuildCounter()
                      .Name("sessionctx_purge_runs_total")
                      .Help("Runs of the periodic purge of expired sessions, by outcome")
                      .Register(registry)),
      purge_ok_(purge_runs_.Add({{"outcome", "ok"}})),
      purge_failed_(purge_runs_.Add({{"outcome", "failed"}})),
      purged_(prometheus::BuildCounter()
                  .Name("sessionctx_sessions_purged_total")
                  .Help("Expired sessions removed by the periodic purge")
                  .Register(registry)
                  .Add({})),
      instance_(NextInstance()) {
  for (const RefusalSpec& r : kRefusals) {
    refused_.Add({{"limit", r.name}});  // every limit shows, at 0 until hit
  }
}

void ServerMetrics::OnConnectionOpened() { open_connections_.Increment(); }
void ServerMetrics::OnConnectionClosed() { open_connections_.Decrement(); }
void ServerMetrics::OnHandedOff() { handed_off_.Increment(); }
void ServerMetrics::OnRefused(Refusal why) { refused_.Add({{"limit", RefusalName(why)}}).Increment(); }

void ServerMetrics::OnRequest(absl::string_view method, absl::string_view path, int status,
                              double seconds) {
  const char* route = RouteLabel(path);
  const int method_index = MethodIndex(method);
  const uint64_t key = (reinterpret_cast<uintptr_t>(route) << 16) ^
                       (static_cast<uint64_t>(method_index) << 10) ^ static_cast<uint64_t>(status);
  // Each I/O thread remembers what it resolved: no shared lock per request.
  thread_local absl::flat_hash_map<std::pair<uint64_t, uint64_t>,
                                   std::pair<prometheus::Counter*, prometheus::Histogram*>>
      resolved;
  auto& [counter, histogram] = resolved[{instance_, key}];
  if (counter == nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    prometheus::Counter*& c = request_counters_[key];
    if (c == nullptr) {
      c = &requests_.Add({{"route", route},
                          {"method", MethodLabel(method_index)},
                          {"status", std::to_string(status)}});
    }
    counter = c;
    prometheus::Histogram*& h = route_histograms_[route];
    if (h == nullptr) h = &durations_.Add({{"route", route}}, LatencyBuckets());
    histogram = h;
  }
  counter->Increment();
  histogram->Observe(seconds);
}

void ServerMetrics::OnPurge(bool ok, int64_t purged) {
  (ok ? purge_ok_ : purge_failed_).Increment();
  if (ok) purged_.Increment(static_cast<double>(purged));
}

std::string ServerMetrics::Scrape() {
  if (before_scrape_) before_scrape_();
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_.Collect());
  return out.str();
}

}  // namespace sessionctx::apps
