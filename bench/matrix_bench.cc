// matrix_bench: the storage-choice matrix behind docs/benchmarks.md (bench/compare
// runs it). Every operation a session store does, on each backend, beside the bare
// engine underneath doing the same work on the same bytes, in the same run:
//
//   store/<backend>/<size>/<op>   through SessionService over the backend's store
//   bare/<backend>/<size>/<op>    the engine alone: a locked hash map (memory),
//                                 RocksDB Get/Put, one prepared SQL statement
//                                 (postgres), GET/SET/DEL, a minimal compare-and-set
//                                 script and HSET (redis, see BareRedis); for
//                                 redis_cluster the baseline is store/redis (the
//                                 same store on one standalone Redis)
//   scale/<backend>/<n>/<op>      get and patch with n sessions stored (loaded through
//                                 BeginImport), the bytes each takes (RAM, as the
//                                 process's heap or Redis's used_memory, or disk), a
//                                 purge with 1 % of them expired, and on rocksdb cold
//                                 gets (get_cold: reopened, files out of the page cache)
//
// Sizes: "typical" (varied sessions, bench_util.h's VariedSession, about 530 bytes on
// average) and "large" (the same with 64 more attributes, about 16 KiB). Operations:
// get_hit, get_miss, create, patch (with the version the caller holds), patch_contended
// (every thread on one session: read the version, write, retry on a conflict; counter
// `conflicts` per write), attribute_add, delete. Every case runs for --benchmark_min_time
// (a create or a delete counts only its own call: the record or the session it needs is
// made untimed, manual time), at each of --threads (the report uses 1 and 2: no more
// threads than cores); counters p50_us and p99_us are the latency percentiles over all
// the run's operations, every thread's together.
//
//   matrix_bench --backends=memory,rocksdb,postgres,redis,redis_cluster --postgres=URI
//                --redis=HOST:PORT --redis_cluster=HOST:PORT,… [--sessions=N]
//                [--threads=1,2] [--rocksdb_sync=true] [--scale=10000,1000000]
//                [--scale_postgres=10000,200000] [--scale_redis_cluster=10000,1000000]
//                [--scale_rocksdb=10000,1000000,10000000]
//                [google benchmark flags…]
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <random>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "backends/rocksdb/rocksdb_options.h"
#include "bench/bench_util.h"
#include "benchmark/benchmark.h"
#include "rocksdb/db.h"
#include "sessionctx/session_service.h"
#include "sessionctx/session_store.h"
#include "sessionctx/session_text.h"
#include "sessionctx/store_factory.h"

#ifdef SESSIONCTX_BENCH_WITH_REDIS
#include <hiredis.h>
#endif

namespace sessionctx::bench {
namespace {

struct Flags {
  std::vector<std::string> backends = {"memory", "rocksdb"};
  std::string postgres;  // base URI
  std::string redis;     // host:port
  std::string redis_cluster;  // host:port,host:port… (seeds of a Redis Cluster)
  int sessions = 10000;
  std::vector<int> threads = {1, 2};
  bool rocksdb_sync = false;  // rocksdb: every write fsyncs its log (store and bare)
  std::vector<int> scale;
  std::vector<int> scale_postgres;
  std::vector<int> scale_rocksdb;  // empty: --scale's
  std::vector<int> scale_redis_cluster = {10000, 1000000};
};
Flags flags;

// ---------------------------------------------------------------------------------
// Sessions

// Sessions differ (bench_util.h's VariedSession): session `id` is variant
// VariantOf(id) of kVariety, anonymous (a customer's sessions are measured in "scale"),
// so that compression and caches meet what real shoppers' sessions would give.
constexpr uint64_t kVariety = 1024;
uint64_t VariantOf(const std::string& id) {
  return absl::Hash<std::string>{}(id) % kVariety;
}

SessionContext TypicalSession(uint64_t variant, const std::string& id) {
  SessionContext s = VariedSession(variant);
  s.session_id = id;
  s.customer_id.reset();
  return s;
}

// A large session: a varied one with a context of 64 more attributes, about 16 KiB.
SessionContext LargeSession(uint64_t variant, const std::string& id) {
  SessionContext s = TypicalSession(variant, id);
  for (int i = 0; i < 64; ++i) {
    s.context[absl::StrCat("attr-", i)] =
        Json{{"sku", absl::StrCat("sku-", 100000 + i)}, {"qty", i % 5 + 1},
             {"note", std::string(215, static_cast<char>('a' + i % 26))}};
  }
  return s;
}

SessionContext MakeSession(bool large, const std::string& id, uint64_t variant) {
  return large ? LargeSession(variant, id) : TypicalSession(variant, id);
}
SessionContext MakeSession(bool large, const std::string& id) {
  return MakeSession(large, id, VariantOf(id));
}

// The record as a store would hold it: version 1, times set, expiring in a day
// (`expired`: a minute ago).
SessionContext Stamped(bool large, const std::string& id, bool expired = false,
                       std::optional<uint64_t> variant = std::nullopt) {
  SessionContext s = MakeSession(large, id, variant.value_or(VariantOf(id)));
  const absl::Time now = absl::Now();
  s.version = 1;
  s.created_at = s.modified_at = now - (expired ? absl::Hours(25) : absl::ZeroDuration());
  s.expires_at = expired ? now - absl::Minutes(1) : now + absl::Hours(24);
  return s;
}

std::string Id(int i) { return absl::StrCat("session-", i); }

// BareValue: the bytes a bare engine stores for session `id`: the rendered record of
// the same variant the store holds for it (its sessionId aside), made once.
struct ValuePool {
  std::vector<std::string> texts;  // by variant
  double mean_bytes = 0;
};
const ValuePool& Values(bool large) {
  static const ValuePool* pools = [] {
    auto* p = new ValuePool[2];  // never freed
    for (int l = 0; l < 2; ++l) {
      double total = 0;
      for (uint64_t n = 0; n < kVariety; ++n) {
        p[l].texts.push_back(
            ToJson(Stamped(l == 1, absl::StrCat("variant-", n), false, n)).dump());
        total += static_cast<double>(p[l].texts.back().size());
      }
      p[l].mean_bytes = total / kVariety;
    }
    return p;
  }();
  return pools[large ? 1 : 0];
}
const std::string& BareValue(bool large, const std::string& id) {
  return Values(large).texts[VariantOf(id)];
}

// ---------------------------------------------------------------------------------
// Latency of single operations

class Latencies {
 public:
  Latencies() { ns_.reserve(1 << 16); }
  template <typename F>
  auto Time(F&& f) {
    const auto start = std::chrono::steady_clock::now();
    auto result = f();
    ns_.push_back(static_cast<uint32_t>(std::min<int64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
            .count(),
        UINT32_MAX)));
    return result;
  }
  // Report sets p50/p99 over every operation of the run, all threads' together: each
  // thread adds its latencies to the run's pool (`run`: the case and its thread
  // count), and the last one to arrive reports for all (a plain counter is summed
  // over threads, so only it sets one).
  void Report(benchmark::State& state, const std::string& run) {
    std::vector<uint32_t> all;
    {
      Pool& pool = PoolOf(run);
      std::lock_guard lock(pool.mu);
      pool.ns.insert(pool.ns.end(), ns_.begin(), ns_.end());
      if (++pool.arrived < state.threads()) return;
      all.swap(pool.ns);
      pool.arrived = 0;
    }
    if (all.empty()) return;
    std::sort(all.begin(), all.end());
    auto at = [&](double q) {
      return all[std::min(all.size() - 1, static_cast<size_t>(q * all.size()))] / 1000.0;
    };
    state.counters["p50_us"] = benchmark::Counter(at(0.50));
    state.counters["p99_us"] = benchmark::Counter(at(0.99));
  }

  // Nanoseconds of the last operation timed.
  uint32_t last() const { return ns_.empty() ? 0 : ns_.back(); }

 private:
  struct Pool {
    std::mutex mu;
    std::vector<uint32_t> ns;
    int arrived = 0;
  };
  static Pool& PoolOf(const std::string& run) {
    static std::mutex mu;
    static auto* pools =
        new std::map<std::string, std::unique_ptr<Pool>>();  // never freed
    std::lock_guard lock(mu);
    std::unique_ptr<Pool>& p = (*pools)[run];
    if (p == nullptr) p = std::make_unique<Pool>();
    return *p;
  }

  std::vector<uint32_t> ns_;
};

// ---------------------------------------------------------------------------------
// Targets: one backend (or its bare engine), one session size

// Worker: one thread's handle on a target (its own connection where there is one).
// Every call is one operation; a failure is returned, not hidden.
class Worker {
 public:
  virtual ~Worker() = default;
  virtual absl::Status Get(const std::string& id) = 0;  // NotFound for a miss
  // PrepareCreate builds what a later Create(id) writes (untimed: the caller's
  // record); Creates then write the prepared records in order.
  virtual void PrepareCreate(const std::string&) {}
  virtual absl::Status Create(const std::string& id) = 0;
  // Patch with the version the caller holds (`*version`, updated); `reread`: read the
  // current version first (what a client does under contention). Adds the conflicts
  // met to `*conflicts`, retrying until the write lands.
  virtual absl::Status Patch(const std::string& id, int64_t* version, bool reread, int64_t* conflicts) = 0;
  virtual absl::Status AttributeAdd(const std::string& id, int n, int64_t* version) = 0;
  virtual absl::Status Delete(const std::string& id) = 0;
};

class Target {
 public:
  virtual ~Target() = default;
  virtual std::unique_ptr<Worker> NewWorker() = 0;
  // Load makes `ids` exist as fresh sessions (version 1); `expired[i]`: already
  // expired.
  virtual void Load(const std::vector<std::string>& ids, const std::vector<bool>& expired) = 0;
  // Purge removes what expired; returns how many (or -1 where the engine has none).
  virtual int64_t Purge() { return -1; }
  // Bytes stored per session, as the backend counts them (0: not measured).
  virtual double BytesPerSession(int64_t) { return 0; }

  bool large = false;  // which sessions (BareValue: the bytes bare targets store)
};

// --- sessionctx stores ---

class StoreWorker : public Worker {
 public:
  StoreWorker(SessionService* service, bool large) : service_(service), large_(large) {}
  absl::Status Get(const std::string& id) override {
    absl::StatusOr<std::shared_ptr<const SessionText>> s = service_->GetText({"acme", id});
    if (!s.ok()) return s.status();
    benchmark::DoNotOptimize((*s)->json().data());
    return absl::OkStatus();
  }
  void PrepareCreate(const std::string& id) override { prepared_.push_back(MakeSession(large_, id)); }
  absl::Status Create(const std::string&) override {
    if (next_ >= prepared_.size()) return absl::InternalError("no record prepared");
    return service_->Create("acme", std::move(prepared_[next_++])).status();
  }
  absl::Status Patch(const std::string& id, int64_t* version, bool reread, int64_t* conflicts) override {
    for (int flip = 0;; ++flip) {
      if (reread || *version < 0) {  // < 0: a conflict that named no version
        absl::StatusOr<std::shared_ptr<const SessionText>> s = service_->GetText({"acme", id});
        if (!s.ok()) return s.status();
        *version = (*s)->version();
      }
      absl::StatusOr<int64_t> r = service_->Patch(
          {"acme", id}, Json{{"currency", (*version + flip) % 2 ? "CHF" : "EUR"}, {"metadata", {{"version", *version}}}});
      if (r.ok()) {
        *version = *r;
        return absl::OkStatus();
      }
      if (!absl::IsAborted(r.status())) return r.status();
      ++*conflicts;
      *version = CurrentVersionOf(r.status()).value_or(-1);  // -1: read it again
    }
  }
  absl::Status AttributeAdd(const std::string& id, int n, int64_t* version) override {
    absl::StatusOr<int64_t> r = service_->SetAttribute(
        {"acme", id}, absl::StrCat("pick-", n % 8), Json{{"sku", absl::StrCat("sku-", n)}, {"qty", n % 3 + 1}});
    if (!r.ok()) return r.status();
    *version = *r;
    return absl::OkStatus();
  }
  absl::Status Delete(const std::string& id) override { return service_->Delete({"acme", id}); }

 private:
  SessionService* service_;
  bool large_;
  std::vector<SessionContext> prepared_;  // what Creates write, in order
  size_t next_ = 0;
};

class StoreTarget : public Target {
 public:
  StoreTarget(std::unique_ptr<SessionStore> store, std::string disk_path = "")
      : store_(std::move(store)), disk_path_(std::move(disk_path)) {
    ServiceOptions options;
    options.anonymous_ttl = absl::Hours(24);
    service_ = std::make_unique<SessionService>(store_.get(), options);
  }
  std::unique_ptr<Worker> NewWorker() override { return std::make_unique<StoreWorker>(service_.get(), large); }
  void Load(const std::vector<std::string>& ids, const std::vector<bool>& expired) override {
    for (size_t from = 0; from < ids.size(); from += 2000) {
      std::vector<ImportRecord> batch;
      for (size_t i = from; i < std::min(ids.size(), from + 2000); ++i) {
        batch.push_back(ImportRecord{{"acme", ids[i]}, Stamped(large, ids[i], !expired.empty() && expired[i])});
      }
      absl::Status s = store_->Import(batch).status();
      if (!s.ok()) {
        std::cerr << "load failed: " << s << "\n";
        std::exit(1);
      }
    }
  }
  // BulkLoad loads as `sessionctl import` does (SessionStore::BeginImport: table files
  // on rocksdb, which the matrix's Load, like its bare engine, does not use).
  void BulkLoad(const std::vector<std::string>& ids, const std::vector<bool>& expired) {
    std::unique_ptr<BulkImport> bulk = store_->BeginImport(ImportOptions{});
    for (size_t from = 0; from < ids.size(); from += 2000) {
      std::vector<ImportRecord> batch;
      for (size_t i = from; i < std::min(ids.size(), from + 2000); ++i) {
        batch.push_back(ImportRecord{
            {"acme", ids[i]}, Stamped(large, ids[i], !expired.empty() && expired[i])});
      }
      if (absl::Status s = bulk->Add(batch).status(); !s.ok()) {
        std::cerr << "load failed: " << s << "\n";
        std::exit(1);
      }
    }
    if (absl::Status s = bulk->Finish().status(); !s.ok()) {
      std::cerr << "load failed: " << s << "\n";
      std::exit(1);
    }
  }
  // Reopen closes the store and opens `uri` in its place. `drop_page_cache`: first asks
  // the kernel to drop the store's files from its page cache (posix_fadvise), so that
  // the next reads come from the disk: a cold start, without root.
  void Reopen(const std::string& uri, bool drop_page_cache) {
    ServiceOptions options = service_->options();
    service_.reset();
    store_.reset();
    if (drop_page_cache && !disk_path_.empty()) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(disk_path_)) {
        if (!e.is_regular_file()) continue;
        const int fd = ::open(e.path().c_str(), O_RDONLY);
        if (fd < 0) continue;
        (void)::fdatasync(fd);
        (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
      }
    }
    absl::StatusOr<std::unique_ptr<SessionStore>> store =
        OpenSessionStore(uri, StoreOptions{});
    if (!store.ok()) {
      std::cerr << store.status() << "\n";
      std::exit(1);
    }
    store_ = *std::move(store);
    service_ = std::make_unique<SessionService>(store_.get(), options);
  }
  int64_t Purge() override { return store_->PurgeExpired().value_or(-1); }
  double BytesPerSession(int64_t n) override {
    if (disk_path_.empty()) return 0;
    uintmax_t bytes = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(disk_path_)) {
      if (e.is_regular_file()) bytes += e.file_size();
    }
    return static_cast<double>(bytes) / static_cast<double>(n);
  }
  SessionStore* store() { return store_.get(); }

 private:
  std::unique_ptr<SessionStore> store_;
  std::unique_ptr<SessionService> service_;
  std::string disk_path_;
};

// --- memory: a hash map under a reader/writer lock per shard, holding the bytes ---
// As the store does: 32 shards, each value an immutable shared text that a get hands
// out by pointer; a write puts a new one in place.

class BareMap : public Target {
 public:
  using Text = std::shared_ptr<const std::string>;
  struct Shard {
    std::shared_mutex mu;
    absl::flat_hash_map<std::string, Text> map;
  };
  class W : public Worker {
   public:
    explicit W(BareMap* m) : m_(m) {}
    absl::Status Get(const std::string& id) override {
      Shard& s = m_->For(id);
      Text text;
      {
        std::shared_lock lock(s.mu);
        auto it = s.map.find(id);
        if (it == s.map.end()) return absl::NotFoundError(id);
        text = it->second;
      }
      benchmark::DoNotOptimize(text->data());
      return absl::OkStatus();
    }
    absl::Status Create(const std::string& id) override {
      Text text = std::make_shared<const std::string>(BareValue(m_->large, id));
      Shard& s = m_->For(id);
      std::unique_lock lock(s.mu);
      s.map.emplace(id, std::move(text));
      return absl::OkStatus();
    }
    // Read the text, make the changed one, put it in place: a copy, as the store's
    // patch makes a new text.
    absl::Status Patch(const std::string& id, int64_t*, bool, int64_t*) override {
      Shard& s = m_->For(id);
      Text text;
      {
        std::shared_lock lock(s.mu);
        auto it = s.map.find(id);
        if (it == s.map.end()) return absl::NotFoundError(id);
        text = it->second;
      }
      std::string copy = *text;
      copy[0] = '{';
      Text next = std::make_shared<const std::string>(std::move(copy));
      std::unique_lock lock(s.mu);
      s.map[id] = std::move(next);
      return absl::OkStatus();
    }
    absl::Status AttributeAdd(const std::string& id, int, int64_t*) override {
      Text text = std::make_shared<const std::string>(BareValue(m_->large, id));
      Shard& s = m_->For(id);
      std::unique_lock lock(s.mu);
      s.map[id] = std::move(text);
      return absl::OkStatus();
    }
    absl::Status Delete(const std::string& id) override {
      Shard& s = m_->For(id);
      std::unique_lock lock(s.mu);
      return s.map.erase(id) ? absl::OkStatus() : absl::NotFoundError(id);
    }

   private:
    BareMap* m_;
  };
  BareMap() : shards_(32) {}
  Shard& For(const std::string& id) { return shards_[absl::Hash<std::string>{}(id) % shards_.size()]; }
  std::unique_ptr<Worker> NewWorker() override { return std::make_unique<W>(this); }
  void Load(const std::vector<std::string>& ids, const std::vector<bool>&) override {
    for (const std::string& id : ids) {
      Shard& s = For(id);
      std::unique_lock lock(s.mu);
      s.map[id] = std::make_shared<const std::string>(BareValue(large, id));
    }
  }

 private:
  std::vector<Shard> shards_;
};

// --- rocksdb: Get / Put / Delete of the same bytes ---

class BareRocks : public Target {
 public:
  class W : public Worker {
   public:
    W(rocksdb::DB* db, bool large) : db_(db), large_(large) {}
    absl::Status Get(const std::string& id) override {
      std::string out;
      rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), "acme/" + id, &out);
      if (s.IsNotFound()) return absl::NotFoundError(id);
      return s.ok() ? absl::OkStatus() : absl::InternalError(s.ToString());
    }
    absl::Status Create(const std::string& id) override { return Put(id); }
    absl::Status Patch(const std::string& id, int64_t*, bool, int64_t*) override {
      std::string out;
      rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), "acme/" + id, &out);
      if (!s.ok()) return absl::InternalError(s.ToString());
      s = db_->Put(Sync(), "acme/" + id, out);
      return s.ok() ? absl::OkStatus() : absl::InternalError(s.ToString());
    }
    absl::Status AttributeAdd(const std::string& id, int, int64_t*) override { return Put(id); }
    absl::Status Delete(const std::string& id) override {
      rocksdb::Status s = db_->Delete(Sync(), "acme/" + id);
      return s.ok() ? absl::OkStatus() : absl::InternalError(s.ToString());
    }

   private:
    // The store's sync setting (--rocksdb_sync): each write fsyncs the log, or not.
    static rocksdb::WriteOptions Sync() {
      rocksdb::WriteOptions o;
      o.sync = flags.rocksdb_sync;
      return o;
    }
    absl::Status Put(const std::string& id) {
      rocksdb::Status s = db_->Put(Sync(), "acme/" + id, BareValue(large_, id));
      return s.ok() ? absl::OkStatus() : absl::InternalError(s.ToString());
    }
    rocksdb::DB* db_;
    bool large_;
  };
  // The store's own engine settings (block cache, bloom filter, threads), so that a
  // ratio compares the same engine.
  explicit BareRocks(const std::string& path) {
    const rocksdb::Options o = backend::EngineOptions(32);
    rocksdb::DB* db = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(o, path, &db);
    if (!s.ok()) {
      std::cerr << s.ToString() << "\n";
      std::exit(1);
    }
    db_.reset(db);
  }
  std::unique_ptr<Worker> NewWorker() override {
    return std::make_unique<W>(db_.get(), large);
  }
  void Load(const std::vector<std::string>& ids, const std::vector<bool>&) override {
    for (const std::string& id : ids)
      db_->Put(rocksdb::WriteOptions(), "acme/" + id, BareValue(large, id));
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
};

// --- postgres: one prepared statement per operation on a table of (id, body, version) ---

class BarePostgres : public Target {
 public:
  class W : public Worker {
   public:
    W(const std::string& uri, const std::string& table, bool large)
        : c_(uri), large_(large) {
      c_.prepare("get", "SELECT body FROM " + table + " WHERE id = $1");
      c_.prepare("version", "SELECT version FROM " + table + " WHERE id = $1");
      c_.prepare("create", "INSERT INTO " + table + " VALUES ($1, $2, 1)");
      c_.prepare("cas", "UPDATE " + table + " SET body = $2, version = version + 1 WHERE id = $1 AND version = $3");
      c_.prepare("put", "UPDATE " + table + " SET body = $2, version = version + 1 WHERE id = $1 RETURNING version");
      c_.prepare("delete", "DELETE FROM " + table + " WHERE id = $1");
    }
    absl::Status Get(const std::string& id) override {
      pqxx::nontransaction t(c_);
      pqxx::result r = t.exec_prepared("get", id);
      return r.empty() ? absl::NotFoundError(id) : absl::OkStatus();
    }
    absl::Status Create(const std::string& id) override {
      pqxx::nontransaction t(c_);
      t.exec_prepared("create", id, BareValue(large_, id));
      return absl::OkStatus();
    }
    absl::Status Patch(const std::string& id, int64_t* version, bool reread, int64_t* conflicts) override {
      pqxx::nontransaction t(c_);
      for (;;) {
        if (reread) *version = t.exec_prepared1("version", id)[0].as<int64_t>();
        if (t.exec_prepared("cas", id, BareValue(large_, id), *version).affected_rows() ==
            1) {
          ++*version;
          return absl::OkStatus();
        }
        ++*conflicts;
        *version = t.exec_prepared1("version", id)[0].as<int64_t>();
      }
    }
    absl::Status AttributeAdd(const std::string& id, int, int64_t* version) override {
      pqxx::nontransaction t(c_);
      *version = t.exec_prepared1("put", id, BareValue(large_, id))[0].as<int64_t>();
      return absl::OkStatus();
    }
    absl::Status Delete(const std::string& id) override {
      pqxx::nontransaction t(c_);
      return t.exec_prepared("delete", id).affected_rows() == 1 ? absl::OkStatus() : absl::NotFoundError(id);
    }

   private:
    pqxx::connection c_;
    bool large_;
  };
  BarePostgres(std::string uri, std::string table) : uri_(std::move(uri)), table_(std::move(table)) {
    pqxx::connection c(uri_);
    pqxx::work w(c);
    w.exec("DROP TABLE IF EXISTS " + table_);
    w.exec("CREATE TABLE " + table_ + " (id text PRIMARY KEY, body text NOT NULL, version bigint NOT NULL)");
    w.commit();
  }
  std::unique_ptr<Worker> NewWorker() override {
    return std::make_unique<W>(uri_, table_, large);
  }
  void Load(const std::vector<std::string>& ids, const std::vector<bool>&) override {
    pqxx::connection c(uri_);
    pqxx::work w(c);
    pqxx::stream_to copy(w, table_, std::vector<std::string>{"id", "body", "version"});
    for (const std::string& id : ids)
      copy << std::make_tuple(id, BareValue(large, id), 1);
    copy.complete();
    w.commit();
  }

 private:
  std::string uri_, table_;
};

#ifdef SESSIONCTX_BENCH_WITH_REDIS
// --- redis ---

struct RedisReply {
  redisReply* r = nullptr;
  ~RedisReply() {
    if (r) freeReplyObject(r);
  }
};

class RedisConn {
 public:
  explicit RedisConn(const std::string& address) {
    const std::vector<std::string> parts = absl::StrSplit(address, ':');
    int port = 6379;
    if (parts.size() > 1) (void)absl::SimpleAtoi(parts[1], &port);
    c_ = redisConnect(parts[0].c_str(), port);
    if (c_ == nullptr || c_->err) {
      std::cerr << "redis: cannot connect to " << address << "\n";
      std::exit(1);
    }
  }
  ~RedisConn() { redisFree(c_); }
  // Command runs one command of binary-safe arguments.
  absl::StatusOr<std::unique_ptr<RedisReply>> Command(std::initializer_list<absl::string_view> args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (absl::string_view a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto reply = std::make_unique<RedisReply>();
    reply->r = static_cast<redisReply*>(redisCommandArgv(c_, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (reply->r == nullptr) return absl::UnavailableError(c_->errstr);
    if (reply->r->type == REDIS_REPLY_ERROR) return absl::InternalError(std::string(reply->r->str, reply->r->len));
    return reply;
  }

 private:
  redisContext* c_ = nullptr;
};

// Bare Redis, each operation the least Redis can do for it on the same bytes: GET
// and SET of the record (get, create), DEL (delete), one EVALSHA of a minimal
// compare-and-set script over a hash {v: version, b: the record} (patch: read the
// version, compare, write the record and version + 1; under contention the thread
// reads the version again and retries, as a client must), and one HSET of the
// attribute's bytes into a hash (attribute_add). No expiry, no guard, no size limit.
class BareRedis : public Target {
 public:
  static constexpr const char* kCas =
      "local v = redis.call('HGET', KEYS[1], 'v') if v ~= ARGV[1] then return -1 - "
      "(tonumber(v) or 0) end "
      "redis.call('HSET', KEYS[1], 'v', v + 1, 'b', ARGV[2]) return v + 1";

  class W : public Worker {
   public:
    W(const std::string& address, BareRedis* t) : c_(address), t_(t) {}
    absl::Status Get(const std::string& id) override {
      auto r = c_.Command({"GET", "bare/" + id});
      if (!r.ok()) return r.status();
      return (*r)->r->type == REDIS_REPLY_NIL ? absl::NotFoundError(id) : absl::OkStatus();
    }
    absl::Status Create(const std::string& id) override {
      return c_.Command({"SET", "bare/" + id, BareValue(t_->large, id)}).status();
    }
    absl::Status Patch(const std::string& id, int64_t* version, bool reread, int64_t* conflicts) override {
      for (;;) {
        if (reread || *version < 1) {
          auto v = c_.Command({"HGET", "cas/" + id, "v"});
          if (!v.ok()) return v.status();
          if ((*v)->r->type != REDIS_REPLY_STRING) return absl::NotFoundError(id);
          (void)absl::SimpleAtoi(absl::string_view((*v)->r->str, (*v)->r->len), version);
        }
        auto r = c_.Command({"EVALSHA", t_->cas_, "1", "cas/" + id,
                             std::to_string(*version), BareValue(t_->large, id)});
        if (!r.ok()) return r.status();
        const int64_t got = (*r)->r->integer;
        if (got > 0) {
          *version = got;
          return absl::OkStatus();
        }
        ++*conflicts;
        *version = -1 - got;
      }
    }
    absl::Status AttributeAdd(const std::string& id, int n, int64_t*) override {
      return c_
          .Command({"HSET", "attr/" + id, absl::StrCat("\"pick-", n % 8, "\""),
                    absl::StrCat("{\"qty\":", n % 3 + 1, ",\"sku\":\"sku-", n, "\"}")})
          .status();
    }
    absl::Status Delete(const std::string& id) override {
      auto r = c_.Command({"DEL", "bare/" + id});
      if (!r.ok()) return r.status();
      return (*r)->r->integer == 1 ? absl::OkStatus() : absl::NotFoundError(id);
    }

   private:
    RedisConn c_;
    BareRedis* t_;
  };

  explicit BareRedis(std::string address) : address_(std::move(address)) {
    RedisConn c(address_);
    auto r = c.Command({"SCRIPT", "LOAD", kCas});
    if (!r.ok()) {
      std::cerr << "redis: " << r.status() << "\n";
      std::exit(1);
    }
    cas_ = std::string((*r)->r->str, (*r)->r->len);
  }
  std::unique_ptr<Worker> NewWorker() override { return std::make_unique<W>(address_, this); }
  void Load(const std::vector<std::string>& ids, const std::vector<bool>&) override {
    RedisConn c(address_);
    for (const std::string& id : ids) {
      (void)c.Command({"SET", "bare/" + id, BareValue(large, id)});
      (void)c.Command({"HSET", "cas/" + id, "v", "1", "b", BareValue(large, id)});
      (void)c.Command({"HSET", "attr/" + id, "v", "1"});
    }
  }

 private:
  std::string address_;
  std::string cas_;
};
#endif

// ---------------------------------------------------------------------------------
// Opening targets

std::string PostgresUri(const std::string& schema, int pool) {
  const std::string& base = flags.postgres;
  return absl::StrCat(base, base.find('?') == std::string::npos ? "?" : "&", "schema=", schema,
                      "&pool_size=", pool);
}

void DropPostgresSchema(const std::string& schema) {
  pqxx::connection c(flags.postgres);
  pqxx::work w(c);
  w.exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
  w.commit();
}

TempDir& Dir() {
  static TempDir* dir = new TempDir();
  return *dir;
}

// OpenRedisCluster: the store on the cluster, keys under `name`: (pool as for redis).
std::unique_ptr<SessionStore> OpenRedisCluster(const std::string& name) {
  absl::StatusOr<std::unique_ptr<SessionStore>> store =
      OpenSessionStore(absl::StrCat("redis+cluster://", flags.redis_cluster,
                                    "?prefix=", name, ":&pool_size=8"),
                       StoreOptions{});
  if (!store.ok()) {
    std::cerr << store.status() << "\n";
    std::exit(1);
  }
  return *std::move(store);
}

std::unique_ptr<Target> Open(const std::string& kind, const std::string& backend, const std::string& tag) {
  const std::string name = absl::StrCat(kind, "_", backend, "_", tag);
  std::unique_ptr<Target> t;
  if (kind == "store") {
    if (backend == "memory") {
      t = std::make_unique<StoreTarget>(*OpenSessionStore("memory:", StoreOptions{}));
    } else if (backend == "rocksdb") {
      t = std::make_unique<StoreTarget>(
          *OpenSessionStore(absl::StrCat("rocksdb:", Dir().Sub(name),
                                         flags.rocksdb_sync ? "?sync=true" : ""),
                            StoreOptions{}),
          Dir().Sub(name));
    } else if (backend == "postgres") {
      DropPostgresSchema(name);
      absl::StatusOr<std::unique_ptr<SessionStore>> store = OpenSessionStore(PostgresUri(name, 4), StoreOptions{});
      if (!store.ok()) {
        std::cerr << store.status() << "\n";
        std::exit(1);
      }
      t = std::make_unique<StoreTarget>(*std::move(store));
    } else if (backend == "redis") {
      absl::StatusOr<std::unique_ptr<SessionStore>> store = OpenSessionStore(
          absl::StrCat("redis://", flags.redis, "?prefix=", name, ":&pool_size=8"),
          StoreOptions{});
      if (!store.ok()) {
        std::cerr << store.status() << "\n";
        std::exit(1);
      }
      t = std::make_unique<StoreTarget>(*std::move(store));
    } else if (backend == "redis_cluster") {
      t = std::make_unique<StoreTarget>(OpenRedisCluster(name));
    }
  } else {
    if (backend == "memory") t = std::make_unique<BareMap>();
    if (backend == "rocksdb") t = std::make_unique<BareRocks>(Dir().Sub(name));
    if (backend == "postgres") t = std::make_unique<BarePostgres>(flags.postgres, name);
#ifdef SESSIONCTX_BENCH_WITH_REDIS
    if (backend == "redis") t = std::make_unique<BareRedis>(flags.redis);
#endif
  }
  if (t == nullptr) {
    std::cerr << "unknown backend " << backend << "\n";
    std::exit(2);
  }
  return t;
}

// ---------------------------------------------------------------------------------
// The matrix

// A case's target with its sessions loaded, shared by the thread counts of a case.
struct Loaded {
  std::unique_ptr<Target> target;
  int sessions = 0;
  std::vector<int64_t> versions;  // by session index; each thread writes its own range
};

Loaded& LoadedTarget(const std::string& kind, const std::string& backend, bool large) {
  static std::mutex mu;
  // Never destroyed: the process ends with the data in place.
  static auto* loaded = new std::map<std::string, std::unique_ptr<Loaded>>();
  std::lock_guard lock(mu);
  const std::string key = absl::StrCat(kind, "/", backend, "/", large);
  std::unique_ptr<Loaded>& l = (*loaded)[key];
  if (l == nullptr) {
    l = std::make_unique<Loaded>();
    l->target = Open(kind, backend, large ? "large" : "typical");
    l->target->large = large;
    l->sessions = flags.sessions;
    std::vector<std::string> ids;
    for (int i = 0; i < l->sessions; ++i) ids.push_back(Id(i));
    ids.push_back("hot");
    l->target->Load(ids, {});
    l->versions.assign(l->sessions, 1);
  }
  return *l;
}

uint64_t Seed() {
  static std::atomic<uint64_t> n{std::random_device{}()};
  return n.fetch_add(0x9E3779B97F4A7C15ull);
}

void Run(benchmark::State& state, const std::string& kind, const std::string& backend, bool large,
         const std::string& op) {
  Loaded& l = LoadedTarget(kind, backend, large);
  std::unique_ptr<Worker> w = l.target->NewWorker();
  Latencies lat;
  std::mt19937_64 rng(Seed());
  // Each thread's own range of sessions, so that the versions it holds stay its own.
  const int per = l.sessions / state.threads();
  const int first = per * state.thread_index();
  int64_t conflicts = 0, n = 0;
  absl::Status failed;
  const std::string tag = absl::StrCat(rng());
  int64_t hot_version = 1;
  (void)w->Get(Id(first));  // untimed: opens the thread's connection where there is one
  for (auto _ : state) {
    const int i = first + static_cast<int>(rng() % per);
    absl::Status s;
    if (op == "get_hit") {
      s = lat.Time([&] { return w->Get(Id(i)); });
    } else if (op == "get_miss") {
      s = lat.Time([&] { return w->Get(absl::StrCat("absent-", i)); });
      s = s.code() == absl::StatusCode::kNotFound ? absl::OkStatus() : absl::InternalError("a miss was found");
    } else if (op == "create") {  // the record made untimed (manual time: the Create)
      const std::string id = absl::StrCat("new-", tag, "-", n);
      w->PrepareCreate(id);
      s = lat.Time([&] { return w->Create(id); });
      state.SetIterationTime(lat.last() / 1e9);
    } else if (op == "patch") {
      s = lat.Time([&] { return w->Patch(Id(i), &l.versions[i], false, &conflicts); });
    } else if (op == "patch_contended") {
      s = lat.Time([&] { return w->Patch("hot", &hot_version, true, &conflicts); });
    } else if (op == "attribute_add") {
      s = lat.Time([&] { return w->AttributeAdd(Id(i), static_cast<int>(n), &l.versions[i]); });
    } else if (op == "delete") {  // a session made untimed, then deleted (manual time)
      const std::string id = absl::StrCat("del-", tag, "-", n);
      w->PrepareCreate(id);
      s = w->Create(id);
      if (s.ok()) s = lat.Time([&] { return w->Delete(id); });
      state.SetIterationTime(lat.last() / 1e9);
    }
    ++n;
    if (!s.ok()) {
      failed = s;
      break;
    }
  }
  if (op == "create") {  // untimed: the sessions made go again, so memory stays bounded
    for (int64_t i = 0; i < n; ++i) (void)w->Delete(absl::StrCat("new-", tag, "-", i));
  }
  if (!failed.ok()) {
    state.SkipWithError(failed.ToString().c_str());
    return;
  }
  state.SetItemsProcessed(n);
  lat.Report(state,
             absl::StrCat(kind, "/", backend, "/", large, "/", op, "/", state.threads()));
  state.counters["session_bytes"] =
      benchmark::Counter(Values(large).mean_bytes, benchmark::Counter::kAvgThreads);
  if (op == "patch_contended") {
    state.counters["conflicts"] = benchmark::Counter(static_cast<double>(conflicts) / static_cast<double>(n),
                                                     benchmark::Counter::kAvgThreads);
  }
}

void RegisterMatrix() {
  const std::vector<std::string> ops = {"get_hit", "get_miss", "create", "patch", "patch_contended",
                                        "attribute_add", "delete"};
  for (const std::string& backend : flags.backends) {
    for (bool large : {false, true}) {
      for (const std::string& op : ops) {
        for (const char* kind : {"store", "bare"}) {
          // The cluster's baseline is the store on one standalone Redis (store/redis).
          if (backend == "redis_cluster" && std::string(kind) == "bare") continue;
          const std::string name = absl::StrCat(kind, "/", backend, "/", large ? "large" : "typical", "/", op);
          for (int threads : flags.threads) {
            benchmark::internal::Benchmark* b = benchmark::RegisterBenchmark(
                name.c_str(), [=](benchmark::State& st) { Run(st, kind, backend, large, op); });
            b->Threads(threads);
            // Every case runs for the same time (--benchmark_min_time). A create or a
            // delete counts only its own call (manual time): each iteration first
            // makes, untimed, the record to create or the session to delete.
            if (op == "delete" || op == "create") {
              b->UseManualTime();
            } else {
              b->UseRealTime();
            }
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------
// Scale: n sessions stored, 1 % of them expired

struct Scaled {
  std::unique_ptr<StoreTarget> target;
  std::string path;  // rocksdb: its directory
  int n = 0;
  double bytes_per_session = 0;
  std::vector<int64_t> versions;
};

size_t HeapInUse() { return mallinfo2().uordblks; }

// RedisUsedMemory: the bytes the backend's Redis servers hold (INFO memory's
// used_memory; a cluster's masters summed); 0 for other backends.
double RedisUsedMemory(const std::string& backend) {
#ifdef SESSIONCTX_BENCH_WITH_REDIS
  auto used = [](const std::string& address) -> double {
    RedisConn c(address);
    absl::StatusOr<std::unique_ptr<RedisReply>> r = c.Command({"INFO", "memory"});
    if (!r.ok() || (*r)->r->type != REDIS_REPLY_STRING) return 0;
    for (absl::string_view line :
         absl::StrSplit(absl::string_view((*r)->r->str, (*r)->r->len), "\r\n")) {
      double v = 0;
      if (absl::ConsumePrefix(&line, "used_memory:") && absl::SimpleAtod(line, &v))
        return v;
    }
    return 0;
  };
  if (backend == "redis") return used(flags.redis);
  if (backend == "redis_cluster") {
    const std::vector<std::string> seeds = absl::StrSplit(flags.redis_cluster, ',');
    RedisConn c(seeds.at(0));
    absl::StatusOr<std::unique_ptr<RedisReply>> r = c.Command({"CLUSTER", "NODES"});
    if (!r.ok() || (*r)->r->type != REDIS_REPLY_STRING) return 0;
    double total = 0;
    for (absl::string_view line :
         absl::StrSplit(absl::string_view((*r)->r->str, (*r)->r->len), '\n')) {
      const std::vector<std::string> f = absl::StrSplit(line, ' ');
      if (f.size() < 3 || f[2].find("master") == std::string::npos) continue;
      total += used(f[1].substr(0, f[1].find('@')));  // ip:port@cport
    }
    return total;
  }
#endif
  (void)backend;
  return 0;
}

// ReadFilesOnce reads every file under `dir` (into the kernel's page cache).
void ReadFilesOnce(const std::string& dir) {
  std::vector<char> buffer(1 << 20);
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream f(e.path(), std::ios::binary);
    while (f.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) ||
           f.gcount() > 0) {
    }
  }
}

// ReadBytes: what this process has read from storage so far (/proc/self/io).
double ReadBytes() {
  std::ifstream io("/proc/self/io");
  std::string key;
  double value = 0;
  while (io >> key >> value) {
    if (key == "read_bytes:") return value;
  }
  return 0;
}

Scaled& GetScaled(const std::string& backend, int n) {
  static auto* scaled = new std::map<std::string, std::unique_ptr<Scaled>>();
  const std::string key = absl::StrCat(backend, "/", n);
  std::unique_ptr<Scaled>& s = (*scaled)[key];
  if (s == nullptr) {
    for (auto& [k, other] : *scaled) other.reset();  // one scale's data at a time
    s = std::make_unique<Scaled>();
    s->n = n;
    const std::string name = absl::StrCat("scale_", backend, "_", n);
    std::string path;
    std::unique_ptr<SessionStore> store;
    if (backend == "memory") {
      store = *OpenSessionStore("memory:", StoreOptions{});
    } else if (backend == "rocksdb") {
      path = Dir().Sub(name);
      s->path = path;
      store = *OpenSessionStore("rocksdb:" + path, StoreOptions{});
    } else if (backend == "redis_cluster") {
      store = OpenRedisCluster(name);
    } else if (backend == "redis") {
      store = *OpenSessionStore(
          absl::StrCat("redis://", flags.redis, "?prefix=", name, ":&pool_size=8"),
          StoreOptions{});
    } else {
      DropPostgresSchema(name);
      store = *OpenSessionStore(PostgresUri(name, 2), StoreOptions{});
    }
    s->target = std::make_unique<StoreTarget>(std::move(store), path);
    std::vector<std::string> ids;
    std::vector<bool> expired;
    for (int i = 0; i < n; ++i) {
      ids.push_back(Id(i));
      expired.push_back(i % 100 == 99);
    }
    const size_t heap_before = HeapInUse();
    const double redis_before = RedisUsedMemory(backend);
    s->target->large = false;
    s->target->BulkLoad(ids, expired);
    if (backend == "memory") {
      s->bytes_per_session = static_cast<double>(HeapInUse() - heap_before) / n;
    } else if (backend == "rocksdb") {
      // Reopened, so that the write-ahead log is flushed into tables.
      s->target->Reopen("rocksdb:" + path, false);
      s->bytes_per_session = s->target->BytesPerSession(n);
      // Warm: every file read once, so that "get" reads from the page cache. (The
      // import's table files leave it, SstFileWriter's default: without this, the
      // first gets would be as cold as get_cold's.)
      ReadFilesOnce(path);
    } else if (backend == "redis_cluster" || backend == "redis") {
      // The servers' own count (INFO memory's used_memory, summed over the masters).
      s->bytes_per_session = (RedisUsedMemory(backend) - redis_before) / n;
    } else {
      pqxx::connection c(flags.postgres);
      pqxx::nontransaction t(c);
      t.exec("VACUUM ANALYZE " + name + ".sessions");
      t.exec("VACUUM ANALYZE " + name + ".attributes");
      pqxx::row r = t.exec1("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON "
                            "n.oid = c.relnamespace WHERE n.nspname = '" + name + "' AND c.relkind = 'r'");
      s->bytes_per_session = r[0].as<double>() / n;
    }
    s->versions.assign(n, 1);
  }
  return *s;
}

// RunCustomerSessions: one customer's 5 sessions listed (one page), or ended, among
// the stored ones; only that call is timed (manual time). Each end ends a customer of
// its own, logged in to 5 fresh sessions before the timing.
void RunCustomerSessions(benchmark::State& state, SessionStore& store, bool end) {
  constexpr int kPerCustomer = 5;
  // Customers of this run only: a Redis keeps the sessions of an earlier run.
  static const int64_t run = absl::ToUnixMicros(absl::Now());
  static int round = 0;
  auto login = [&](const std::string& customer) {
    for (int k = 0; k < kPerCustomer; ++k) {
      SessionContext c = Stamped(false, absl::StrCat(customer, "-", k));
      c.customer_id = customer;
      c.expires_at = absl::InfiniteFuture();
      if (absl::Status st = store.Create({"acme", c.session_id}, c); !st.ok()) return st;
    }
    return absl::OkStatus();
  };
  // Listed: 16 customers in turn, so that the time is not one customer's placement
  // (on a cluster, how many masters its sessions happen to be on).
  std::vector<std::string> listed;
  for (int c = 0; !end && c < 16; ++c) {
    listed.push_back(absl::StrCat("listed-", run, "-", round++));
    if (absl::Status st = login(listed.back()); !st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      return;
    }
  }
  std::string customer;
  int64_t turn = 0;
  for (auto _ : state) {
    if (!end) customer = listed[turn++ % listed.size()];
    if (end) {
      customer = absl::StrCat("ended-", run, "-", round++);
      if (absl::Status st = login(customer); !st.ok()) {
        state.SkipWithError(st.ToString().c_str());
        return;
      }
    }
    const auto start = std::chrono::steady_clock::now();
    int64_t got = 0;
    if (end) {
      absl::StatusOr<int64_t> ended =
          store.EndCustomerSessions({"acme", customer}, std::nullopt);
      got = ended.ok() ? *ended : -1;
    } else {
      absl::StatusOr<CustomerSessionPage> page =
          store.ListCustomerSessions({"acme", customer}, "", 100);
      got = page.ok() ? static_cast<int64_t>(page->sessions.size()) : -1;
    }
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (got != kPerCustomer) {
      state.SkipWithError(
          absl::StrCat(end ? "ended " : "listed ", got, ", expected ", kPerCustomer)
              .c_str());
      return;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void RunScale(benchmark::State& state, const std::string& backend, int n, const std::string& op) {
  Scaled& s = GetScaled(backend, n);
  std::unique_ptr<Worker> w = s.target->NewWorker();
  Latencies lat;
  std::mt19937_64 rng(Seed());
  if (op == "purge") {
    for (auto _ : state) {
      const auto start = std::chrono::steady_clock::now();
      const int64_t removed = s.target->Purge();
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      state.SetIterationTime(seconds);
      state.counters["expired"] = static_cast<double>(removed);
      state.counters["us_per_expired"] = removed > 0 ? seconds * 1e6 / static_cast<double>(removed) : 0;
      if (removed != n / 100) state.SkipWithError(absl::StrCat("purged ", removed, ", expected ", n / 100).c_str());
    }
    return;
  }
  if (op == "customer_list" || op == "customer_end") {
    RunCustomerSessions(state, *s.target->store(), op == "customer_end");
    return;
  }
  int64_t conflicts = 0, done = 0;
  double read_before = 0;
  if (op == "get_cold") {
    // A cold start: the store reopened (an empty block cache, its tables' index and
    // filter blocks not yet read) and its files dropped from the page cache.
    s.target->Reopen("rocksdb:" + s.path, true);
    w = s.target->NewWorker();
    read_before = ReadBytes();
  } else {
    (void)w->Get(Id(0));  // untimed: opens a connection where there is one
  }
  for (auto _ : state) {
    int i = static_cast<int>(rng() % n);
    if (i % 100 == 99) --i;  // an expired one
    absl::Status st =
        op != "patch" ? lat.Time([&] { return w->Get(Id(i)); }) : lat.Time([&] {
          return w->Patch(Id(i), &s.versions[i], false, &conflicts);
        });
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      return;
    }
    ++done;
  }
  state.SetItemsProcessed(done);
  lat.Report(state,
             absl::StrCat("scale/", backend, "/", n, "/", op, "/", state.threads()));
  state.counters["bytes_per_session"] = s.bytes_per_session;
  if (op == "get_cold" && done > 0) {
    // What each get read from the disk: shows the reads were cold.
    state.counters["disk_bytes_per_get"] =
        (ReadBytes() - read_before) / static_cast<double>(done);
  }
}

void RegisterScale() {
  for (const std::string& backend : flags.backends) {
    const std::vector<int>& sizes =
        backend == "postgres"                                  ? flags.scale_postgres
        : backend == "redis_cluster"                           ? flags.scale_redis_cluster
        : backend == "rocksdb" && !flags.scale_rocksdb.empty() ? flags.scale_rocksdb
                                                               : flags.scale;
    for (int n : sizes) {
      for (const char* op :
           {"get", "get_cold", "patch", "purge", "customer_list", "customer_end"}) {
        // Redis expires sessions itself: there is nothing to purge. Cold reads: the
        // store that reads its files (memory and Redis hold everything in RAM; a
        // PostgreSQL's cache is the server's, which this program does not restart).
        const std::string o = op;
        if ((backend == "redis_cluster" || backend == "redis") && o == "purge") continue;
        if (backend != "rocksdb" && o == "get_cold") continue;
        const std::string name = absl::StrCat("scale/", backend, "/", n, "/", op);
        benchmark::internal::Benchmark* b =
            benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { RunScale(st, backend, n, op); });
        if (std::string(op) == "purge") {
          b->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
        } else if (o.rfind("customer_", 0) == 0) {
          b->Iterations(300)->UseManualTime()->Unit(benchmark::kMicrosecond);
        } else {
          b->UseRealTime();
        }
      }
    }
  }
}

std::vector<int> Ints(absl::string_view list) {
  std::vector<int> out;
  for (absl::string_view v : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    int n = 0;
    if (!absl::SimpleAtoi(v, &n)) {
      std::cerr << "not a number: " << v << "\n";
      std::exit(2);
    }
    out.push_back(n);
  }
  return out;
}

// ParseFlags takes this program's flags out of argv, leaving Google Benchmark's.
void ParseFlags(int* argc, char** argv) {
  int kept = 1;
  for (int i = 1; i < *argc; ++i) {
    absl::string_view a = argv[i];
    auto value = [&](absl::string_view name) -> std::optional<std::string> {
      const std::string prefix = absl::StrCat("--", name, "=");
      if (a.substr(0, prefix.size()) != prefix) return std::nullopt;
      return std::string(a.substr(prefix.size()));
    };
    if (auto v = value("backends")) {
      flags.backends = absl::StrSplit(*v, ',', absl::SkipEmpty());
    } else if (auto v = value("postgres")) {
      flags.postgres = *v;
    } else if (auto v = value("redis")) {
      flags.redis = *v;
    } else if (auto v = value("redis_cluster")) {
      flags.redis_cluster = *v;
    } else if (auto v = value("scale_redis_cluster")) {
      flags.scale_redis_cluster = Ints(*v);
    } else if (auto v = value("sessions")) {
      flags.sessions = Ints(*v).at(0);
    } else if (auto v = value("threads")) {
      flags.threads = Ints(*v);
    } else if (auto v = value("rocksdb_sync")) {
      flags.rocksdb_sync = *v == "true";
    } else if (auto v = value("scale")) {
      flags.scale = Ints(*v);
    } else if (auto v = value("scale_rocksdb")) {
      flags.scale_rocksdb = Ints(*v);
    } else if (auto v = value("scale_postgres")) {
      flags.scale_postgres = Ints(*v);
    } else {
      argv[kept++] = argv[i];
    }
  }
  *argc = kept;
  for (const std::string& b : flags.backends) {
    if (b == "postgres" && flags.postgres.empty()) {
      std::cerr << "--backends=postgres needs --postgres=URI\n";
      std::exit(2);
    }
    if (b == "redis") {
#ifndef SESSIONCTX_BENCH_WITH_REDIS
      std::cerr << "built without hiredis (libhiredis-dev)\n";
      std::exit(2);
#endif
      if (flags.redis.empty()) {
        std::cerr << "--backends=redis needs --redis=HOST:PORT\n";
        std::exit(2);
      }
    }
    if (b == "redis_cluster" && flags.redis_cluster.empty()) {
      std::cerr << "--backends=redis_cluster needs --redis_cluster=HOST:PORT,…\n";
      std::exit(2);
    }
  }
}

}  // namespace
}  // namespace sessionctx::bench

int main(int argc, char** argv) {
  sessionctx::bench::ParseFlags(&argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  sessionctx::bench::RegisterMatrix();
  sessionctx::bench::RegisterScale();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
