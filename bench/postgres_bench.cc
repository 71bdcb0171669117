// postgresql:// backend against bare prepared statements through libpqxx on the same
// server, in the same run. Needs SESSIONCTX_TEST_PG_URI (scripts/with-postgres.sh).
//
//   BM_Bare_Select   one prepared SELECT of a row as wide as a session
//   BM_Bare_Update   one prepared conditional UPDATE (version check) of that row
//   BM_Store_Get     SessionService::Get
//   BM_Store_Patch   SessionService::Patch with the current version
//   BM_Store_AttributeAdd
#include <cstdlib>
#include <pqxx/pqxx>

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

std::string BaseUri() {
  const char* uri = std::getenv("SESSIONCTX_TEST_PG_URI");
  return uri ? uri : "";
}

struct Fixture {
  std::unique_ptr<SessionStore> store;
  std::unique_ptr<SessionService> service;
  std::unique_ptr<pqxx::connection> bare;
  std::vector<int64_t> versions = std::vector<int64_t>(kSessions, 1);
  std::vector<int64_t> bare_versions = std::vector<int64_t>(kSessions, 1);

  Fixture() {
    const std::string base = BaseUri();
    store = *OpenSessionStore(base + (base.find('?') == std::string::npos ? "?" : "&") +
                                  "schema=bench_store&pool_size=2",
                              StoreOptions{});
    ServiceOptions options;
    options.anonymous_ttl = absl::Hours(24);
    service = std::make_unique<SessionService>(store.get(), options);
    for (int i = 0; i < kSessions; ++i) {
      (void)service->Delete({"acme", Id(i)});
      (void)service->Create("acme", TypicalSession(Id(i)));
    }
    bare = std::make_unique<pqxx::connection>(base);
    pqxx::work w(*bare);
    w.exec("DROP TABLE IF EXISTS bench_bare");
    w.exec("CREATE TABLE bench_bare (tenant text, session_id text, customer_id text, "
           "site_code text, currency text, cart_id text, target_location text, language text, "
           "context jsonb, version bigint, created_at timestamptz, modified_at timestamptz, "
           "expires_at timestamptz, PRIMARY KEY (tenant, session_id))");
    const std::string context = TypicalSession("x").context.dump();
    for (int i = 0; i < kSessions; ++i) {
      w.exec_params("INSERT INTO bench_bare VALUES ('acme', $1, NULL, 'main', 'EUR', 'cart-1', "
                    "'DE', 'de-CH', $2::jsonb, 1, now(), now(), now() + interval '1 day')",
                    Id(i), context);
    }
    w.commit();
    bare->prepare("select", "SELECT customer_id, site_code, currency, cart_id, target_location, "
                            "language, context::text, version, created_at, modified_at, "
                            "expires_at FROM bench_bare WHERE tenant = $1 AND session_id = $2 "
                            "AND expires_at > now()");
    bare->prepare("update", "UPDATE bench_bare SET currency = $3, version = version + 1, "
                            "modified_at = now() WHERE tenant = $1 AND session_id = $2 AND "
                            "version = $4 RETURNING version");
  }
};

Fixture* F() {
  static Fixture* f = BaseUri().empty() ? nullptr : new Fixture();
  return f;
}

void BM_Bare_Select(benchmark::State& state) {
  Fixture* f = F();
  if (f == nullptr) return state.SkipWithError("SESSIONCTX_TEST_PG_URI is not set");
  int i = 0;
  for (auto _ : state) {
    pqxx::nontransaction tx(*f->bare);
    pqxx::result r = tx.exec_prepared("select", "acme", Id(i++ % kSessions));
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_Bare_Select);

void BM_Store_Get(benchmark::State& state) {
  Fixture* f = F();
  if (f == nullptr) return state.SkipWithError("SESSIONCTX_TEST_PG_URI is not set");
  int i = 0;
  for (auto _ : state) {
    absl::StatusOr<SessionContext> s = f->service->Get({"acme", Id(i++ % kSessions)});
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_Store_Get);

void BM_Bare_Update(benchmark::State& state) {
  Fixture* f = F();
  if (f == nullptr) return state.SkipWithError("SESSIONCTX_TEST_PG_URI is not set");
  std::vector<int64_t>& versions = f->bare_versions;
  int i = 0;
  for (auto _ : state) {
    const int n = i++ % kSessions;
    pqxx::nontransaction tx(*f->bare);
    pqxx::result r =
        tx.exec_prepared("update", "acme", Id(n), n % 2 ? "CHF" : "EUR", versions[n]);
    if (r.empty()) return state.SkipWithError("bare update matched no row");
    versions[n] = r[0][0].as<int64_t>();
  }
}
BENCHMARK(BM_Bare_Update);

void BM_Store_Patch(benchmark::State& state) {
  Fixture* f = F();
  if (f == nullptr) return state.SkipWithError("SESSIONCTX_TEST_PG_URI is not set");
  for (int n = 0; n < kSessions; ++n) f->versions[n] = f->service->Get({"acme", Id(n)})->version;
  int i = 0;
  for (auto _ : state) {
    const int n = i++ % kSessions;
    absl::StatusOr<int64_t> r = f->service->Patch(
        {"acme", Id(n)},
        Json{{"currency", n % 2 ? "CHF" : "EUR"}, {"metadata", {{"version", f->versions[n]}}}});
    if (!r.ok()) return state.SkipWithError("patch failed");
    f->versions[n] = *r;
  }
}
BENCHMARK(BM_Store_Patch);

void BM_Store_AttributeAdd(benchmark::State& state) {
  Fixture* f = F();
  if (f == nullptr) return state.SkipWithError("SESSIONCTX_TEST_PG_URI is not set");
  int i = 0;
  for (auto _ : state) {
    absl::StatusOr<int64_t> v = f->service->SetAttribute({"acme", Id(i % kSessions)}, "lastSeen", i);
    ++i;
    if (!v.ok()) return state.SkipWithError("attribute add failed");
  }
}
BENCHMARK(BM_Store_AttributeAdd);

}  // namespace
}  // namespace sessionctx::bench

BENCHMARK_MAIN();
