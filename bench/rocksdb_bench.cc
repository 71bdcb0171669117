// rocksdb: backend against bare RocksDB on the same machine, in the same run.
//
//   BM_Bare_*    RocksDB alone: Get / Put of as many bytes as the stored session
//   BM_Store_*   the same operation through SessionService over rocksdb:
//   BM_Cas_*     the compare-and-set candidates on bare RocksDB: striped in-process
//                lock + Get + Put (what the backend uses), OptimisticTransactionDB,
//                TransactionDB
#include <memory>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "benchmark/benchmark.h"
#include "rocksdb/db.h"
#include "rocksdb/utilities/optimistic_transaction_db.h"
#include "rocksdb/utilities/transaction_db.h"
#include "sessionctx/session_service.h"
#include "sessionctx/session_store.h"
#include "sessionctx/session_text.h"
#include "sessionctx/store_factory.h"

namespace sessionctx::bench {
namespace {

constexpr int kSessions = 1000;

std::string Id(int i) { return absl::StrCat("session-", i); }

// One rocksdb: store and one bare RocksDB, filled alike, shared by the cases.
struct Fixture {
  TempDir dir;
  std::unique_ptr<SessionStore> store;
  std::unique_ptr<SessionService> service;
  std::unique_ptr<rocksdb::DB> bare;
  std::string value;  // as many bytes as one stored session

  Fixture() {
    store = *OpenSessionStore("rocksdb:" + dir.Sub("store"), StoreOptions{});
    ServiceOptions options;
    options.anonymous_ttl = absl::Hours(24);
    service = std::make_unique<SessionService>(store.get(), options);
    for (int i = 0; i < kSessions; ++i) (void)service->Create("acme", TypicalSession(Id(i)));
    value = ToJson(TypicalSession(Id(0))).dump();
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    rocksdb::DB::Open(o, dir.Sub("bare"), &db);
    bare.reset(db);
    for (int i = 0; i < kSessions; ++i) bare->Put(rocksdb::WriteOptions(), "acme/" + Id(i), value);
  }
};

Fixture& F() {
  static Fixture* f = new Fixture();
  return *f;
}

void BM_Bare_Get(benchmark::State& state) {
  Fixture& f = F();
  std::string out;
  int i = 0;
  for (auto _ : state) {
    f.bare->Get(rocksdb::ReadOptions(), "acme/" + Id(i++ % kSessions), &out);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_Bare_Get);

// What a GET does: the record's text, its bytes copied out (as into a response).
void BM_Store_Get(benchmark::State& state) {
  Fixture& f = F();
  int i = 0;
  for (auto _ : state) {
    absl::StatusOr<std::shared_ptr<const SessionText>> s = f.service->GetText({"acme", Id(i++ % kSessions)});
    std::string copy((*s)->json());
    benchmark::DoNotOptimize(copy);
  }
}
BENCHMARK(BM_Store_Get);

// The record as a value (a DOM of its context), for embedders that want one.
void BM_Store_GetRecord(benchmark::State& state) {
  Fixture& f = F();
  int i = 0;
  for (auto _ : state) {
    absl::StatusOr<SessionContext> s = f.service->Get({"acme", Id(i++ % kSessions)});
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_Store_GetRecord);

void BM_Bare_GetPut(benchmark::State& state) {
  Fixture& f = F();
  std::string out;
  int i = 0;
  for (auto _ : state) {
    const std::string key = "acme/" + Id(i++ % kSessions);
    f.bare->Get(rocksdb::ReadOptions(), key, &out);
    f.bare->Put(rocksdb::WriteOptions(), key, out);
  }
}
BENCHMARK(BM_Bare_GetPut);

void BM_Store_Patch(benchmark::State& state) {
  Fixture& f = F();
  std::vector<int64_t> versions(kSessions);
  for (int i = 0; i < kSessions; ++i) versions[i] = f.service->Get({"acme", Id(i)})->version;
  int i = 0;
  for (auto _ : state) {
    const int n = i++ % kSessions;
    absl::StatusOr<int64_t> r = f.service->Patch(
        {"acme", Id(n)},
        Json{{"currency", n % 2 ? "CHF" : "EUR"}, {"metadata", {{"version", versions[n]}}}});
    if (!r.ok()) state.SkipWithError("patch failed");
    versions[n] = *r;
  }
}
BENCHMARK(BM_Store_Patch);

void BM_Bare_Put(benchmark::State& state) {
  Fixture& f = F();
  int i = 0;
  for (auto _ : state) f.bare->Put(rocksdb::WriteOptions(), "acme/" + Id(i++ % kSessions), f.value);
}
BENCHMARK(BM_Bare_Put);

void BM_Store_AttributeAdd(benchmark::State& state) {
  Fixture& f = F();
  int i = 0;
  for (auto _ : state) {
    absl::StatusOr<int64_t> v = f.service->SetAttribute({"acme", Id(i % kSessions)}, "lastSeen", i);
    ++i;
    if (!v.ok()) state.SkipWithError("attribute add failed");
  }
}
BENCHMARK(BM_Store_AttributeAdd);

// Where contexts should stop being inline: one attribute replaced in a session whose
// context holds range(0) bytes of JSON, kept inline (range(1) = 1) or spilled into a
// key per attribute (0). Inline rewrites the whole record; spilled writes two keys.
void BM_Store_AttributeAddAtSize(benchmark::State& state) {
  const int64_t size = state.range(0);
  const bool inline_context = state.range(1) == 1;
  TempDir dir;
  auto store = *OpenSessionStore(absl::StrCat("rocksdb:", dir.Sub("db"), "?inline_context_bytes=",
                                              inline_context ? 1 << 20 : 0),
                                 StoreOptions{});
  SessionService service(store.get(), ServiceOptions{});
  SessionContext s = TypicalSession("sized");
  s.context = Json::object();
  for (int i = 0; static_cast<int64_t>(s.context.dump().size()) < size; ++i) {
    s.context[absl::StrCat("attribute-", i)] = "value-of-twenty-bytes";
  }
  (void)service.Create("acme", s);
  int i = 0;
  for (auto _ : state) {
    absl::StatusOr<int64_t> v = service.SetAttribute({"acme", "sized"}, "lastSeen", i++);
    if (!v.ok()) state.SkipWithError("attribute add failed");
  }
  state.SetLabel(inline_context ? "inline" : "spilled");
}
BENCHMARK(BM_Store_AttributeAddAtSize)
    ->ArgsProduct({{512, 2048, 4096, 8192, 16384}, {1, 0}});

// --- compare-and-set candidates on bare RocksDB --------------------------------------

struct CasFixture {
  TempDir dir;
  std::unique_ptr<rocksdb::DB> plain;
  std::unique_ptr<rocksdb::OptimisticTransactionDB> optimistic;
  std::unique_ptr<rocksdb::TransactionDB> pessimistic;
  std::vector<std::mutex> stripes{1024};
  std::string value = std::string(400, 'v');

  CasFixture() {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    rocksdb::DB::Open(o, dir.Sub("plain"), &db);
    plain.reset(db);
    rocksdb::OptimisticTransactionDB* odb = nullptr;
    rocksdb::OptimisticTransactionDB::Open(o, dir.Sub("optimistic"), &odb);
    optimistic.reset(odb);
    rocksdb::TransactionDB* tdb = nullptr;
    rocksdb::TransactionDB::Open(o, rocksdb::TransactionDBOptions(), dir.Sub("pessimistic"), &tdb);
    pessimistic.reset(tdb);
    for (int i = 0; i < kSessions; ++i) {
      plain->Put(rocksdb::WriteOptions(), Id(i), value);
      optimistic->Put(rocksdb::WriteOptions(), Id(i), value);
      pessimistic->Put(rocksdb::WriteOptions(), Id(i), value);
    }
  }
};

CasFixture& C() {
  static CasFixture* c = new CasFixture();
  return *c;
}

void BM_Cas_StripedLock(benchmark::State& state) {
  CasFixture& c = C();
  std::string out;
  int i = state.thread_index() * 7919;
  for (auto _ : state) {
    const std::string key = Id(i++ % kSessions);
    std::lock_guard<std::mutex> lock(c.stripes[std::hash<std::string>{}(key) % c.stripes.size()]);
    c.plain->Get(rocksdb::ReadOptions(), key, &out);
    c.plain->Put(rocksdb::WriteOptions(), key, out);
  }
}
BENCHMARK(BM_Cas_StripedLock)->Threads(1)->Threads(2)->UseRealTime();

void BM_Cas_OptimisticTransactionDB(benchmark::State& state) {
  CasFixture& c = C();
  std::string out;
  int i = state.thread_index() * 7919;
  for (auto _ : state) {
    const std::string key = Id(i++ % kSessions);
    while (true) {
      std::unique_ptr<rocksdb::Transaction> txn(
          c.optimistic->BeginTransaction(rocksdb::WriteOptions()));
      txn->GetForUpdate(rocksdb::ReadOptions(), key, &out);
      txn->Put(key, out);
      if (txn->Commit().ok()) break;
    }
  }
}
BENCHMARK(BM_Cas_OptimisticTransactionDB)->Threads(1)->Threads(2)->UseRealTime();

void BM_Cas_TransactionDB(benchmark::State& state) {
  CasFixture& c = C();
  std::string out;
  int i = state.thread_index() * 7919;
  for (auto _ : state) {
    const std::string key = Id(i++ % kSessions);
    std::unique_ptr<rocksdb::Transaction> txn(
        c.pessimistic->BeginTransaction(rocksdb::WriteOptions()));
    txn->GetForUpdate(rocksdb::ReadOptions(), key, &out);
    txn->Put(key, out);
    txn->Commit();
  }
}
BENCHMARK(BM_Cas_TransactionDB)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace sessionctx::bench

BENCHMARK_MAIN();
