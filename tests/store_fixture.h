// Opens a fresh store of each compiled-in backend for one test: memory:, rocksdb: in
// a temp folder, postgresql:// in a schema of its own on the server the test script
// started (SESSIONCTX_TEST_PG_URI), redis:// under a key prefix of its own on the
// Redis the test script started (SESSIONCTX_TEST_REDIS_URI), redis+cluster:// under
// a key prefix of its own on its three-master cluster
// (SESSIONCTX_TEST_REDIS_CLUSTER_URI).
#ifndef SESSIONCTX_TESTS_STORE_FIXTURE_H_
#define SESSIONCTX_TESTS_STORE_FIXTURE_H_

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "sessionctx/session_service.h"
#include "sessionctx/session_store.h"
#include "sessionctx/store_factory.h"
#include "tests/test_util.h"

namespace sessionctx::testing {

inline std::vector<std::string> CompiledBackends() {
  std::vector<std::string> names = {"memory"};
#ifdef SESSIONCTX_HAVE_ROCKSDB
  names.push_back("rocksdb");
#endif
#ifdef SESSIONCTX_HAVE_POSTGRES
  names.push_back("postgres");
#endif
#ifdef SESSIONCTX_HAVE_REDIS
  names.push_back("redis");
  names.push_back("redis_cluster");
#endif
  return names;
}

// A unique PostgreSQL schema name, so tests never see each other's rows.
inline std::string FreshSchemaName() {
  std::random_device rd;
  return "t" + std::to_string(rd()) + std::to_string(rd());
}

inline std::string WithQuery(const std::string& uri, const std::string& param) {
  return uri + (uri.find('?') == std::string::npos ? "?" : "&") + param;
}

// StoreFactory keeps what a backend needs alive (the temp folder) for the test.
class StoreFactory {
 public:
  explicit StoreFactory(std::string backend) : backend_(std::move(backend)) {}

  // Uri returns a URI for a new, empty store of the backend; the same URI each call
  // (so a test can reopen). Empty when the backend cannot run here (see Problem()).
  std::string Uri() {
    if (!uri_.empty()) return uri_;
    if (backend_ == "memory") {
      uri_ = "memory:";
    } else if (backend_ == "rocksdb") {
      dir_ = std::make_unique<TempDir>();
      uri_ = "rocksdb:" + (dir_->path() / "db").string();
    } else if (backend_ == "rocksdb_spilled") {
      // Every context spilled into a key per attribute, however small: the layout
      // of large sessions, put through every test.
      dir_ = std::make_unique<TempDir>();
      uri_ = "rocksdb:" + (dir_->path() / "db").string() + "?inline_context_bytes=0";
    } else if (backend_ == "postgres") {
      const std::string base = PostgresTestUri();
      if (base.empty()) return "";
      uri_ = WithQuery(base, "schema=" + FreshSchemaName());
    } else if (backend_ == "redis" || backend_ == "redis_cluster") {
      const std::string base =
          backend_ == "redis" ? RedisTestUri() : RedisClusterTestUri();
      if (base.empty()) return "";
      uri_ = WithQuery(base, "prefix=" + FreshSchemaName() + ":");
    }
    return uri_;
  }

  std::string Problem() const {
    if (backend_ == "redis") {
      return "SESSIONCTX_TEST_REDIS_URI is not set: start a server with "
             "scripts/with-redis.sh";
    }
    if (backend_ == "redis_cluster") {
      return "SESSIONCTX_TEST_REDIS_CLUSTER_URI is not set: start a cluster with "
             "scripts/with-redis-cluster.sh";
    }
    return "SESSIONCTX_TEST_PG_URI is not set: start a server with scripts/with-postgres.sh";
  }

  absl::StatusOr<std::unique_ptr<SessionStore>> Open(const Clock* clock,
                                                     EventOptions events = {}) {
    StoreOptions options;
    options.clock = clock;
    options.events = events;
    return OpenSessionStore(Uri(), options);
  }

 private:
  std::string backend_;
  std::string uri_;
  std::unique_ptr<TempDir> dir_;
};

// IncrementCounter adds one to context.n the way a client must: read, PATCH with the
// version read, and on a conflict read again. Returns the first other error.
inline absl::Status IncrementCounter(SessionService& service, const SessionKey& key) {
  while (true) {
    absl::StatusOr<SessionContext> s = service.Get(key);
    if (!s.ok()) return s.status();
    absl::StatusOr<int64_t> r = service.Patch(
        key, Json{{"context", {{"n", s->context["n"].get<int>() + 1}}},
                  {"metadata", {{"version", s->version}}}});
    if (!absl::IsAborted(r.status())) return r.status();
  }
}

// Fails in CI (CI=true), skips elsewhere, when the backend's server is missing.
#define SESSIONCTX_REQUIRE_BACKEND(factory)                                        \
  do {                                                                             \
    if ((factory).Uri().empty()) {                                                 \
      if (::sessionctx::testing::InCi()) {                                         \
        FAIL() << (factory).Problem();                                             \
      } else {                                                                     \
        GTEST_SKIP() << (factory).Problem();                                       \
      }                                                                            \
    }                                                                              \
  } while (0)

}  // namespace sessionctx::testing

#endif  // SESSIONCTX_TESTS_STORE_FIXTURE_H_
