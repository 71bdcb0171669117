// What the postgresql:// backend promises beyond the conformance suite: many app
// instances on one database, surviving a server restart, schema migrations.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <map>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "sessionctx/backend_support.h"
#include "sessionctx/postgres_store.h"
#include "sessionctx/store_factory.h"
#include "gtest/gtest.h"
#include "sessionctx/http_status.h"
#include "sessionctx/session_service.h"
#include "tests/small_filesystem.h"
#include "tests/store_fixture.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

using testing::FreshSchemaName;
using testing::StoreFactory;
using testing::WithQuery;

class PostgresTest : public ::testing::Test {
 protected:
  PostgresTest() : factory_("postgres") {}
  void SetUp() override { SESSIONCTX_REQUIRE_BACKEND(factory_); }

  StoreFactory factory_;
};

TEST_F(PostgresTest, TwoInstancesOnOneDatabaseLoseNoUpdate) {
  const std::string uri = factory_.Uri();
  auto a = OpenSessionStore(uri, StoreOptions{});
  auto b = OpenSessionStore(uri, StoreOptions{});
  ASSERT_OK(a);
  ASSERT_OK(b);
  SessionService sa(a->get(), ServiceOptions{});
  SessionService sb(b->get(), ServiceOptions{});
  ASSERT_OK(sa.Create("acme", SessionContext{.session_id = "shared", .context = Json{{"n", 0}}}));
  constexpr int kPerThread = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    SessionService& service = t % 2 ? sb : sa;
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // An attribute add and a read-patch-retry increment, alternating instances.
        if (!service.SetAttribute({"acme", "shared"}, absl::StrCat("t", t, "-", i), i).ok()) {
          ++failures;
        }
        if (!testing::IncrementCounter(service, {"acme", "shared"}).ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  absl::StatusOr<SessionContext> s = sb.Get({"acme", "shared"});
  ASSERT_OK(s);
  EXPECT_EQ(s->context["n"], 4 * kPerThread);
  EXPECT_EQ(s->context.size(), static_cast<size_t>(1 + 4 * kPerThread));
  EXPECT_EQ(s->version, 1 + 2 * 4 * kPerThread);
}

// Runs one SQL query through psql and returns its single value.
std::string Psql(const std::string& sql) {
  const std::string cmd =
      absl::StrCat("psql -qtA -v ON_ERROR_STOP=1 '", testing::PostgresTestUri(), "' -c \"", sql, "\"");
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[256];
  while (p != nullptr && fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  if (p != nullptr) pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string SchemaOf(const std::string& uri) { return uri.substr(uri.find("schema=") + 7); }

TEST_F(PostgresTest, MigrationUpgradesAnOlderSchema) {
  const std::string uri = factory_.Uri();
  const std::string schema = SchemaOf(uri);
  ASSERT_OK(MigratePostgresSchema(uri, 1));
  EXPECT_EQ(Psql("SELECT version FROM " + schema + ".schema_version"), "1");
  EXPECT_EQ(Psql("SELECT count(*) FROM pg_indexes WHERE schemaname = '" + schema +
                 "' AND indexname = 'sessions_expiry'"),
            "0");
  // Version 1 works for reads and writes of the current code once upgraded on open.
  auto store = OpenSessionStore(uri, StoreOptions{});
  ASSERT_OK(store);
  SessionService service(store->get(), ServiceOptions{});
  EXPECT_EQ(Psql("SELECT version FROM " + schema + ".schema_version"),
            std::to_string(kPostgresSchemaVersion));
  EXPECT_EQ(Psql("SELECT count(*) FROM pg_indexes WHERE schemaname = '" + schema +
                 "' AND indexname = 'sessions_expiry'"),
            "1");
  ASSERT_OK(service.Create("acme", SessionContext{.session_id = "m1"}));
  EXPECT_OK(service.Get({"acme", "m1"}));
  // Opening again is a no-op at the current version.
  EXPECT_OK(OpenSessionStore(uri, StoreOptions{}));
}

// An import writes the sizes a create of the same record would (the record's and
// each attribute's share, which the size limit of later writes is checked against).
// Migration 5 indexes the sessions of a schema written before it, by customer.
TEST_F(PostgresTest, MigrationFiveIndexesTheCustomersOfAnOlderSchema) {
  const std::string uri = factory_.Uri();
  const std::string schema = SchemaOf(uri);
  ASSERT_OK(MigratePostgresSchema(uri, 4));
  Psql("INSERT INTO " + schema + ".sessions (tenant, session_id, customer_id, version, " +
       "created_at, modified_at, record_bytes) VALUES ('acme', 'old', 'c1', 3, now(), "
       "now(), 100)");
  EXPECT_EQ(Psql("SELECT count(*) FROM pg_indexes WHERE schemaname = '" + schema +
                 "' AND indexname = 'sessions_customer'"),
            "0");
  auto store = OpenSessionStore(uri, StoreOptions{});
  ASSERT_OK(store);
  EXPECT_EQ(Psql("SELECT count(*) FROM pg_indexes WHERE schemaname = '" + schema +
                 "' AND indexname = 'sessions_customer'"),
            "1");
  absl::StatusOr<CustomerSessionPage> page =
      (*store)->ListCustomerSessions({"acme", "c1"}, "", 10);
  ASSERT_OK(page);
  ASSERT_EQ(page->sessions.size(), 1u);
  EXPECT_EQ(page->sessions[0].session_id, "old");
  EXPECT_EQ(page->sessions[0].version, 3);
  // The listing and the logout read the index, not the table.
  const std::string plan =
      Psql("SET enable_seqscan = off; EXPLAIN SELECT session_id FROM " + schema +
           ".sessions WHERE tenant = 'acme' AND customer_id = 'c1'");
  EXPECT_NE(plan.find("sessions_customer"), std::string::npos) << plan;
  EXPECT_EQ(*(*store)->EndCustomerSessions({"acme", "c1"}, std::nullopt), 1);
}

TEST_F(PostgresTest, ImportKeepsTheSizesACreateWrites) {
  const std::string uri = factory_.Uri();
  const std::string schema = SchemaOf(uri);
  auto store = OpenSessionStore(uri, StoreOptions{});
  ASSERT_OK(store);
  auto record = [](const std::string& id) {
    SessionContext s;
    s.session_id = id;
    s.currency = "EUR";
    s.customer_id = "c-\"7\"";
    s.context = Json{{"plain", 1}, {"quote\"d \u00e9", {{"x", "a\nb"}}}, {"list", {1, 2.5, "\u0001"}}};
    s.version = 3;
    s.created_at = s.modified_at = absl::FromUnixMillis(1890000000123);
    s.expires_at = absl::FromUnixMillis(1890003600123);
    return s;
  };
  ASSERT_OK((*store)->Create({"acme", "made"}, record("made")));
  ASSERT_OK((*store)->Import({ImportRecord{{"acme", "came"}, record("came")}}));
  for (const std::string& query :
       {"SELECT record_bytes FROM " + schema + ".sessions WHERE session_id = '%s'",
        "SELECT string_agg(name || '=' || bytes, ',' ORDER BY name) FROM " + schema +
            ".attributes WHERE session_id = '%s'"}) {
    const std::string made = Psql(absl::StrReplaceAll(query, {{"%s", "made"}}));
    EXPECT_FALSE(made.empty()) << query;
    EXPECT_EQ(Psql(absl::StrReplaceAll(query, {{"%s", "came"}})), made) << query;
  }
  absl::StatusOr<SessionContext> came = (*store)->Get({"acme", "came"});
  ASSERT_OK(came);
  EXPECT_EQ(came->context, record("came").context);
  EXPECT_EQ(came->customer_id, "c-\"7\"");
}

// The database server's disk fills (a tablespace on a small filesystem): writes are
// refused as backend::StorageFullError (HTTP 507) and change nothing, reads are served, the
// pool's connections stay usable, and writes succeed again once there is space; a
// fresh store (a restarted app) finds every acknowledged write.
TEST_F(PostgresTest, DiskFullRefusesWritesAndTheyResumeWhenSpaceReturns) {
  testing::SmallFilesystem fs(/*mib=*/8, /*ballast_mib=*/3);
  SESSIONCTX_REQUIRE_SMALL_FILESYSTEM(fs);
  const std::string location = fs.path() + "/ts";
  ASSERT_EQ(std::system(absl::StrCat("mkdir -p ", location, " && chown postgres ", location,
                                     " 2>/dev/null || true").c_str()),
            0);
  const std::string tablespace = absl::StrCat("small_", FreshSchemaName());
  Psql(absl::StrCat("CREATE TABLESPACE ", tablespace, " LOCATION '", location, "'"));
  // The store's tables go into the tablespace (libpq's options parameter).
  const std::string uri = WithQuery(factory_.Uri(), "options=-c%20default_tablespace%3D" + tablespace);
  {
    auto store = OpenSessionStore(uri, StoreOptions{});
    ASSERT_OK(store);
    SessionService service(store->get(), ServiceOptions{});
    constexpr int kSessions = 8;
    for (int i = 0; i < kSessions; ++i) {
      ASSERT_OK(service.Create("acme", SessionContext{.session_id = absl::StrCat("d", i)}));
    }
    std::mutex mu;
    std::vector<std::pair<int, std::string>> acked;
    std::atomic<int> full{0}, unexpected{0}, failed_reads{0};
    std::string first_unexpected;
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(t + 1);
        for (int i = 0; i < 20000 && full < 40; ++i) {
          std::string value;  // 4 KB that do not compress
          for (int k = 0; k < 4096; ++k) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            value.push_back(static_cast<char>('a' + x % 26));
          }
          const int session = (t * 3 + i) % kSessions;
          const std::string key = absl::StrCat("w", t, "-", i);
          absl::StatusOr<int64_t> r = service.SetAttribute({"acme", absl::StrCat("d", session)}, key, value);
          if (r.ok()) {
            std::lock_guard lock(mu);
            acked.emplace_back(session, key);
          } else if (IsStorageFull(r.status()) && HttpStatusFor(r.status()) == 507) {
            ++full;
          } else if (unexpected++ == 0) {
            std::lock_guard lock(mu);
            first_unexpected = r.status().ToString();
          }
          if (!service.Get({"acme", absl::StrCat("d", session)}).ok()) ++failed_reads;
        }
      });
    }
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(unexpected.load(), 0) << first_unexpected;
    EXPECT_EQ(failed_reads.load(), 0);
    ASSERT_GE(full.load(), 40) << "the tablespace never filled";
    ASSERT_FALSE(acked.empty());
    fs.FreeBallast();
    absl::StatusOr<int64_t> after = service.SetAttribute({"acme", "d0"}, "after", true);
    EXPECT_OK(after);
    std::printf("postgresql disk full: %zu writes acknowledged, %d refused as storage full\n",
                acked.size(), full.load());
    // A fresh store, as after an app restart: every acknowledged write is there.
    auto fresh = OpenSessionStore(uri, StoreOptions{});
    ASSERT_OK(fresh);
    size_t lost = 0;
    for (int i = 0; i < kSessions; ++i) {
      absl::StatusOr<SessionContext> s = (*fresh)->Get({"acme", absl::StrCat("d", i)});
      ASSERT_OK(s);
      for (const auto& [session, key] : acked) {
        if (session == i && !s->context.contains(key)) ++lost;
      }
    }
    EXPECT_EQ(lost, 0u);
  }
  Psql(absl::StrCat("SET client_min_messages TO warning; DROP SCHEMA ", SchemaOf(factory_.Uri()), " CASCADE"));
  Psql(absl::StrCat("DROP TABLESPACE ", tablespace));
}

TEST_F(PostgresTest, NewerSchemaIsRefusedClearly) {
  const std::string uri = factory_.Uri();
  ASSERT_OK(OpenSessionStore(uri, StoreOptions{}));
  // Pretend a newer build migrated this schema.
  Psql(absl::StrCat("UPDATE ", SchemaOf(uri), ".schema_version SET version = ",
                    kPostgresSchemaVersion + 1));
  auto store = OpenSessionStore(uri, StoreOptions{});
  EXPECT_STATUS(store, kFailedPrecondition);
  EXPECT_NE(store.status().message().find("newer"), std::string::npos);
}

TEST_F(PostgresTest, ManyInstancesStartingTogetherMigrateOnce) {
  const std::string uri = factory_.Uri();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] { ok += OpenSessionStore(uri, StoreOptions{}).ok(); });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 6);
}

TEST_F(PostgresTest, UnreachableServerIsUnavailableQuickly) {
  // A loopback port nothing listens on.
  const auto start = std::chrono::steady_clock::now();
  auto store = OpenSessionStore("postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2",
                                StoreOptions{});
  EXPECT_STATUS(store, kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

// The test server also speaks TLS (scripts/with-postgres.sh made its certificate): the
// store opened with `sslmode=verify-full` and the server's CA talks TLS; an unknown CA
// and a host name the certificate does not name are refused at open, saying which.
std::string TestCa(const char* variable) {
  const char* ca = std::getenv(variable);
  return ca == nullptr ? "" : ca;
}

TEST_F(PostgresTest, VerifyFullWithTheServersCaConnectsOverTls) {
  const std::string ca = TestCa("SESSIONCTX_TEST_PG_CA");
  if (ca.empty()) {
    if (testing::InCi()) FAIL() << "SESSIONCTX_TEST_PG_CA is not set";
    GTEST_SKIP() << "SESSIONCTX_TEST_PG_CA is not set";
  }
  const std::string plain = testing::PostgresTestUri() + "?sslmode=disable";
  auto tls_connections = [&] {
    return testing::Shell("psql '" + plain +
                          "' -Atc 'select count(*) from pg_stat_ssl where ssl'");
  };
  ASSERT_EQ(tls_connections(), "0");
  auto store = OpenSessionStore(
      WithQuery(factory_.Uri(), "sslmode=verify-full&sslrootcert=" + ca), StoreOptions{});
  ASSERT_OK(store);
  SessionService service(store->get(), ServiceOptions{});
  ASSERT_OK(service.Create("acme", SessionContext{.session_id = "over-tls"}));
  absl::StatusOr<SessionContext> read = service.Get({"acme", "over-tls"});
  ASSERT_OK(read);
  EXPECT_EQ(read->session_id, "over-tls");
  EXPECT_NE(tls_connections(), "0") << "the store's connections are not TLS";
}

TEST_F(PostgresTest, AnUnknownCaOrAWrongHostNameIsRefusedAtOpen) {
  const std::string other = TestCa("SESSIONCTX_TEST_PG_OTHER_CA");
  if (other.empty()) {
    if (testing::InCi()) FAIL() << "SESSIONCTX_TEST_PG_OTHER_CA is not set";
    GTEST_SKIP() << "SESSIONCTX_TEST_PG_OTHER_CA is not set";
  }
  auto unknown_ca = OpenSessionStore(
      WithQuery(testing::PostgresTestUri(), "sslmode=verify-full&sslrootcert=" + other),
      StoreOptions{});
  EXPECT_STATUS(unknown_ca, kUnavailable);
  EXPECT_NE(unknown_ca.status().message().find("certificate verify failed"), std::string::npos)
      << unknown_ca.status();
  // Connected to 127.0.0.1, but verifying the name wrong.example.
  std::string wrong_host = testing::PostgresTestUri();
  wrong_host.replace(wrong_host.find("127.0.0.1"), 9, "wrong.example");
  auto mismatch = OpenSessionStore(
      WithQuery(wrong_host, "hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert=" +
                                TestCa("SESSIONCTX_TEST_PG_CA")),
      StoreOptions{});
  EXPECT_STATUS(mismatch, kUnavailable);
  EXPECT_NE(mismatch.status().message().find("does not match host name \"wrong.example\""),
            std::string::npos)
      << mismatch.status();
}

TEST_F(PostgresTest, UriOptionsAreChecked) {
  EXPECT_STATUS(OpenSessionStore(WithQuery(testing::PostgresTestUri(), "pool_size=0"),
                                 StoreOptions{}),
                kInvalidArgument);
  EXPECT_STATUS(OpenSessionStore(WithQuery(testing::PostgresTestUri(), "schema=Bad-Name"),
                                 StoreOptions{}),
                kInvalidArgument);
}

TEST_F(PostgresTest, ServerRestartLosesNoAcknowledgedWriteAndRecovers) {
  const char* pg_ctl = std::getenv("SESSIONCTX_TEST_PG_CTL");
  if (pg_ctl == nullptr) {
    if (testing::InCi()) FAIL() << "SESSIONCTX_TEST_PG_CTL is not set";
    GTEST_SKIP() << "SESSIONCTX_TEST_PG_CTL is not set";
  }
  const std::string uri = WithQuery(factory_.Uri(), "connect_timeout=2&acquire_timeout_ms=2000");
  auto store = OpenSessionStore(uri, StoreOptions{});
  ASSERT_OK(store);
  SessionService service(store->get(), ServiceOptions{});
  ASSERT_OK(service.Create("acme", SessionContext{.session_id = "r"}));

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, int64_t> acked;  // attribute -> version acknowledged
  std::atomic<int> unavailable{0};
  std::atomic<int64_t> slowest_failure_ms{0};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      const auto start = std::chrono::steady_clock::now();
      absl::StatusOr<int64_t> v = service.SetAttribute({"acme", "r"}, absl::StrCat("a", i), i);
      const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - start)
                             .count();
      if (v.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        acked[absl::StrCat("a", i)] = *v;
      } else {
        EXPECT_TRUE(absl::IsUnavailable(v.status()) || absl::IsDeadlineExceeded(v.status()))
            << v.status();
        ++unavailable;
        slowest_failure_ms = std::max<int64_t>(slowest_failure_ms, ms);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_EQ(std::system(absl::StrCat(pg_ctl, " -m fast -w stop >/dev/null").c_str()), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_EQ(std::system(absl::StrCat(pg_ctl, " -w start >/dev/null").c_str()), 0);
  const auto back = std::chrono::steady_clock::now();
  // The store serves again by itself within seconds.
  size_t before = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    before = acked.size();
  }
  bool recovered = false;
  while (std::chrono::steady_clock::now() - back < std::chrono::seconds(15)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::lock_guard<std::mutex> lock(mu);
    if (acked.size() > before + 5) {
      recovered = true;
      break;
    }
  }
  stop = true;
  writer.join();
  EXPECT_TRUE(recovered) << "no write succeeded after the server came back";
  EXPECT_GT(unavailable.load(), 0) << "the outage was not observed";
  EXPECT_LT(slowest_failure_ms.load(), 6000);

  absl::StatusOr<SessionContext> s = service.Get({"acme", "r"});
  ASSERT_OK(s);
  int64_t max_version = 0;
  for (const auto& [name, version] : acked) {
    EXPECT_TRUE(s->context.contains(name)) << name << " was acknowledged and is gone";
    max_version = std::max(max_version, version);
  }
  EXPECT_GE(s->version, max_version);
}

}  // namespace
}  // namespace sessionctx
