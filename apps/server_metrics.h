// ServerMetrics: the server's own Prometheus metrics (requests by route template and
// status, latency per route, open connections, refusals by limit, purges) and the
// scrape of everything in its registry, store metrics included.
//
// Metrics:
//   sessionctx_http_requests_total{route, method, status}    counter
//   sessionctx_http_request_duration_seconds{route}          histogram (first byte to
//                                                            answer ready)
//   sessionctx_http_open_connections                         gauge
//   sessionctx_http_refused_total{limit}                     counter
//   sessionctx_purge_runs_total{outcome}                     counter
//   sessionctx_sessions_purged_total                         counter
// `route` is a template such as "/session-context/{tenant}/me/context" (never a raw
// path: session ids and tenants never become label values), "unmatched" for any
// other path, "-" when the request line was never read. `method` is one of the HTTP
// methods or "other".
#ifndef SESSIONCTX_APPS_SERVER_METRICS_H_
#define SESSIONCTX_APPS_SERVER_METRICS_H_

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "apps/http_server.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace sessionctx::apps {

class ServerMetrics : public HttpObserver {
 public:
  // `before_scrape` runs first in every Scrape (e.g. MetricsStore::RefreshStats).
  // REQUIRES: `registry` outlives this.
  ServerMetrics(prometheus::Registry& registry, std::function<void()> before_scrape);

  void OnConnectionOpened() override;
  void OnConnectionClosed() override;
  void OnRefused(Refusal why) override;
  void OnHandedOff() override;
  void OnRequest(absl::string_view method, absl::string_view path, int status,
                 double seconds) override;

  // OnPurge: one purge run; `purged` sessions removed, or the run failed.
  void OnPurge(bool ok, int64_t purged);

  // Scrape returns the whole registry in the Prometheus text format.
  std::string Scrape();

 private:
  prometheus::Registry& registry_;
  const std::function<void()> before_scrape_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
  prometheus::Gauge& open_connections_;
  prometheus::Family<prometheus::Counter>& refused_;
  prometheus::Counter& handed_off_;
  prometheus::Family<prometheus::Counter>& purge_runs_;
  prometheus::Counter& purge_ok_;
  prometheus::Counter& purge_failed_;
  prometheus::Counter& purged_;
  // Tells this instance's entries apart in the I/O threads' own caches.
  const uint64_t instance_;
  std::mutex mu_;
  // (route, method, status) → counter, and route → histogram: resolved once each,
  // then cached per thread (OnRequest takes no lock once a thread has seen a key).
  std::unordered_map<uint64_t, prometheus::Counter*> request_counters_;  // guarded by mu_
  std::unordered_map<const char*, prometheus::Histogram*> route_histograms_;  // guarded by mu_
};

}  // namespace sessionctx::apps

#endif  // SESSIONCTX_APPS_SERVER_METRICS_H_
