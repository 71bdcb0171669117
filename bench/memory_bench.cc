// memory: backend against a bare hash map of the same records behind one mutex.
#include <mutex>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "benchmark/benchmark.h"
#include "sessionctx/session_service.h"
#include "sessionctx/session_store.h"
#include "sessionctx/store_factory.h"

namespace sessionctx::bench {
namespace {

constexpr int kSessions = 1000;
std::string Id(int i) { return absl::StrCat("session-", i); }

void BM_BareMap_Get(benchmark::State& state) {
  static std::mutex mu;
  static std::unordered_map<std::string, SessionContext>* map = [] {
    auto* m = new std::unordered_map<std::string, SessionContext>();
    for (int i = 0; i < kSessions; ++i) (*m)["acme/" + Id(i)] = TypicalSession(Id(i));
    return m;
  }();
  int i = 0;
  for (auto _ : state) {
    std::lock_guard<std::mutex> lock(mu);
    SessionContext copy = map->at("acme/" + Id(i++ % kSessions));
    benchmark::DoNotOptimize(copy);
  }
}
BENCHMARK(BM_BareMap_Get);

void BM_Memory_Get(benchmark::State& state) {
  static std::unique_ptr<SessionStore> store = [] {
    auto s = *OpenSessionStore("memory:", StoreOptions{});
    SessionService service(s.get(), ServiceOptions{});
    for (int i = 0; i < kSessions; ++i) (void)service.Create("acme", TypicalSession(Id(i)));
    return s;
  }();
  int i = 0;
  for (auto _ : state) {
    absl::StatusOr<SessionContext> s = store->Get({"acme", Id(i++ % kSessions)});
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_Memory_Get);

}  // namespace
}  // namespace sessionctx::bench

BENCHMARK_MAIN();
