// A store decorator at work: MetricsStore (sessionctx::metrics, prometheus-cpp) counts
// and times every call of the store it wraps. The program writes a session, reads one
// that does not exist and one stale write, then prints the counters in Prometheus'
// text format, as a /metrics endpoint would serve them, and checks three of them.
//
//   metrics_store
#include "sessionctx/metrics_store.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <cstdio>
#include <string>

#include "sessionctx/memory_store.h"
#include "sessionctx/session_service.h"

int main() {
  std::unique_ptr<sessionctx::SessionStore> store =
      sessionctx::NewMemoryStore(sessionctx::StoreOptions{});
  // [embed:metrics-store]
  prometheus::Registry registry;
  sessionctx::MetricsStore metered(store.get(), "memory", registry);
  sessionctx::SessionService service(&metered, sessionctx::ServiceOptions{});
  // at scrape time: metered.RefreshStats(), then serialize registry.Collect()
  // [end:metrics-store]

  absl::StatusOr<sessionctx::SessionContext> created = service.Create("acme", {});
  if (!created.ok()) {
    std::fprintf(stderr, "create: %s\n", created.status().ToString().c_str());
    return 1;
  }
  const sessionctx::SessionKey key{"acme", created->session_id};
  absl::StatusOr<int64_t> v = service.SetAttribute(key, "giftWrap", true);  // version 2
  absl::StatusOr<sessionctx::SessionContext> missing =
      service.Get({"acme", "no-such-session"});
  absl::StatusOr<int64_t> stale =
      service.Patch(key, {{"currency", "USD"}, {"metadata", {{"version", 1}}}});
  if (!v.ok() || !absl::IsNotFound(missing.status()) ||
      !absl::IsAborted(stale.status())) {
    std::fprintf(stderr, "unexpected store answers\n");
    return 1;
  }

  metered.RefreshStats();
  const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  std::fwrite(text.data(), 1, text.size(), stdout);
  int failed = 0;
  for (
      const char* line :
      {R"(sessionctx_store_operations_total{backend="memory",operation="create",outcome="ok"} 1)",
       R"(sessionctx_store_operations_total{backend="memory",operation="get",outcome="not_found"} 1)",
       R"(sessionctx_store_operations_total{backend="memory",operation="patch",outcome="conflict"} 1)"}) {
    if (text.find(line) == std::string::npos) {
      std::fprintf(stderr, "missing: %s\n", line);
      ++failed;
    }
  }
  return failed == 0 ? 0 : 1;
}
