// All of libpqxx lives in this file. Written against the subset of libpqxx 6.4 that
// 7.x keeps: connection, prepare, nontransaction/work, exec_prepared, commit.
#include "sessionctx/postgres_store.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <utility>
#include <pqxx/pqxx>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "sessionctx/base_fields.h"
#include "sessionctx/write_rules.h"
#include "src/json_text.h"

namespace sessionctx {
namespace {

constexpr char kDefaultSchema[] = "sessionctx";

struct PgOptions {
  std::string libpq_uri;
  std::string schema = kDefaultSchema;
  int pool_size = 8;
  int statement_timeout_ms = 5000;
  int acquire_timeout_ms = 5000;
};

absl::StatusOr<PgOptions> ParseUri(const std::string& uri) {
  PgOptions out;
  const size_t q = uri.find('?');
  std::vector<std::string> passed;
  bool has_connect_timeout = false;
  if (q != std::string::npos) {
    for (absl::string_view pair : absl::StrSplit(uri.substr(q + 1), '&', absl::SkipEmpty())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
      int* number = nullptr;
      if (kv.first == "pool_size") number = &out.pool_size;
      if (kv.first == "statement_timeout_ms") number = &out.statement_timeout_ms;
      if (kv.first == "acquire_timeout_ms") number = &out.acquire_timeout_ms;
      if (number != nullptr) {
        if (!absl::SimpleAtoi(kv.second, number) || *number < 1) {
          return absl::InvalidArgumentError(
              absl::StrCat("postgresql: ", kv.first, " must be a positive integer"));
        }
      } else if (kv.first == "schema") {
        out.schema = kv.second;
      } else {
        has_connect_timeout |= kv.first == "connect_timeout";
        passed.emplace_back(pair);
      }
    }
  }
  if (!has_connect_timeout) passed.push_back("connect_timeout=3");
  out.libpq_uri = absl::StrCat(uri.substr(0, q), "?", absl::StrJoin(passed, "&"));
  if (out.schema.empty() || out.schema.size() > 48 ||
      !(absl::ascii_islower(out.schema[0]) || out.schema[0] == '_')) {
    return absl::InvalidArgumentError("postgresql: schema must match [a-z_][a-z0-9_]*");
  }
  for (char c : out.schema) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '_') {
      return absl::InvalidArgumentError("postgresql: schema must match [a-z_][a-z0-9_]*");
    }
  }
  return out;
}

// Translate turns libpqxx's exceptions into the library's codes. Messages keep no
// connection strings (libpq never puts passwords in them).
absl::Status Translate(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) {
    return absl::UnavailableError(absl::StrCat("postgresql unreachable: ", e.what()));
  }
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    return absl::UnavailableError(absl::StrCat("postgresql: outcome unknown: ", e.what()));
  }
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const std::string& state = sql->sqlstate();
    if (state == "57014") return absl::DeadlineExceededError("postgresql: statement timeout");
    if (state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0 || state == "53300") {
      return absl::UnavailableError(absl::StrCat("postgresql unavailable: ", e.what()));
    }
    return absl::InternalError(absl::StrCat("postgresql error ", state, ": ", e.what()));
  }
  return absl::InternalError(absl::StrCat("postgresql: ", e.what()));
}

// --- schema ---------------------------------------------------------------------

// Migrations, in order; migration N brings the schema from version N-1 to N.
//
// Custom attributes are rows of their own (jsonb values) rather than one jsonb column:
// adding one is then an insert, not a rewrite of the whole context (measured in
// docs/backends.md). `bytes` tracks each attribute's share of the record's JSON size.
std::vector<std::string> Migrations(const std::string& s) {
  return {
      // 1: the tables.
      absl::StrCat("CREATE TABLE ", s, ".sessions (",
                   "tenant text NOT NULL, session_id text NOT NULL, customer_id text, ",
                   "site_code text, currency text, cart_id text, target_location text, ",
                   "language text, version bigint NOT NULL, created_at timestamptz NOT NULL, ",
                   "modified_at timestamptz NOT NULL, expires_at timestamptz, ",
                   "record_bytes bigint NOT NULL, PRIMARY KEY (tenant, session_id)); ",
                   "CREATE TABLE ", s, ".attributes (",
                   "tenant text NOT NULL, session_id text NOT NULL, name text NOT NULL, ",
                   "value jsonb NOT NULL, bytes bigint NOT NULL, ",
                   "PRIMARY KEY (tenant, session_id, name), ",
                   "FOREIGN KEY (tenant, session_id) REFERENCES ", s,
                   ".sessions ON DELETE CASCADE)"),
      // 2: purge reads only anonymous sessions, by expiry.
      absl::StrCat("CREATE INDEX sessions_expiry ON ", s,
                   ".sessions (expires_at) WHERE expires_at IS NOT NULL"),
      // 3: RFC 7386 JSON Merge Patch in the database, so PATCH is one statement.
      absl::StrCat(
          "CREATE FUNCTION ", s, ".merge_patch(target jsonb, patch jsonb) RETURNS jsonb ",
          "LANGUAGE plpgsql IMMUTABLE AS $f$ DECLARE result jsonb; k text; v jsonb; BEGIN ",
          "IF patch IS NULL OR jsonb_typeof(patch) <> 'object' THEN RETURN patch; END IF; ",
          "IF target IS NULL OR jsonb_typeof(target) <> 'object' THEN result := '{}'::jsonb; ",
          "ELSE result := target; END IF; ",
          "FOR k, v IN SELECT * FROM jsonb_each(patch) LOOP ",
          "IF jsonb_typeof(v) = 'null' THEN result := result - k; ",
          "ELSE result := jsonb_set(result, ARRAY[k], ", s, ".merge_patch(result -> k, v)); ",
          "END IF; END LOOP; RETURN result; END $f$"),
  };
}

absl::Status Migrate(pqxx::connection& conn, const std::string& schema, int target) {
  const std::string s = conn.quote_name(schema);
  pqxx::work txn(conn);
  txn.exec("SELECT pg_advisory_xact_lock(hashtext('sessionctx-migrate'))");
  txn.exec("CREATE SCHEMA IF NOT EXISTS " + s);
  txn.exec("CREATE TABLE IF NOT EXISTS " + s + ".schema_version (version int NOT NULL)");
  pqxx::result r = txn.exec("SELECT version FROM " + s + ".schema_version");
  int current = 0;
  if (r.empty()) {
    txn.exec("INSERT INTO " + s + ".schema_version VALUES (0)");
  } else {
    current = r[0][0].as<int>();
  }
  if (current > kPostgresSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "postgresql: schema ", schema, " is at version ", current,
        ", newer than this build understands (", kPostgresSchemaVersion,
        "); upgrade sessionctx"));
  }
  const std::vector<std::string> migrations = Migrations(s);
  for (int v = current + 1; v <= target; ++v) txn.exec(migrations[v - 1]);
  if (target > current) {
    txn.exec("UPDATE " + s + ".schema_version SET version = " + std::to_string(target));
  }
  txn.commit();
  return absl::OkStatus();
}

// --- statements -------------------------------------------------------------------

// Columns read back for a record, times as milliseconds since the epoch, the
// attributes folded into one JSON object.
std::string Columns(const std::string& schema) {
  return absl::StrCat(
      "s.customer_id, s.site_code, s.currency, s.cart_id, s.target_location, s.language, ",
      "COALESCE((SELECT jsonb_object_agg(a.name, a.value) FROM ", schema, ".attributes a ",
      "WHERE a.tenant = s.tenant AND a.session_id = s.session_id), '{}'::jsonb)::text, ",
      "s.version, round(extract(epoch from s.created_at) * 1000)::bigint, ",
      "round(extract(epoch from s.modified_at) * 1000)::bigint, ",
      "round(extract(epoch from s.expires_at) * 1000)::bigint");
}

std::string Ts(int n) { return absl::StrCat("to_timestamp($", n, "::bigint / 1000.0)"); }

std::vector<std::pair<std::string, std::string>> Statements(const std::string& schema) {
  const std::string t = schema + ".sessions";
  const std::string a = schema + ".attributes";
  const std::string key = "tenant = $1 AND session_id = $2";
  const std::string live = "(expires_at IS NULL OR expires_at > " + Ts(3) + ")";
  // Whole-record writes: $1 tenant, $2 id, $3 now, $4..$9 base fields, $10 context
  // (json), $11 version, $12 created, $13 modified, $14 expiry (NULL = never),
  // $15 expected version (cas), $16 record bytes, $17 {name: bytes} (json).
  const std::string set_all =
      "customer_id = $4, site_code = $5, currency = $6, cart_id = $7, target_location = $8, "
      "language = $9, version = $11, created_at = " + Ts(12) + ", modified_at = " + Ts(13) +
      ", expires_at = CASE WHEN $14::bigint IS NULL THEN NULL ELSE " + Ts(14) +
      " END, record_bytes = $16";
  // Replace the attributes with $10's, touching only rows that change; runs only once
  // `gate` (the CTE that wrote the session row, holding its lock) returned a row.
  auto replace_attributes = [&](const std::string& gate) {
    return absl::StrCat(
        "del AS (DELETE FROM ", a, " WHERE ", key, " AND EXISTS (SELECT 1 FROM ", gate,
        ") AND NOT ($10::jsonb ? name)), ",
        "ins AS (INSERT INTO ", a, " SELECT $1, $2, e.key, e.value, ($17::jsonb ->> e.key)::bigint ",
        "FROM jsonb_each($10::jsonb) e WHERE EXISTS (SELECT 1 FROM ", gate, ") ",
        "ON CONFLICT (tenant, session_id, name) DO UPDATE SET value = EXCLUDED.value, ",
        "bytes = EXCLUDED.bytes WHERE ", a, ".value IS DISTINCT FROM EXCLUDED.value) ");
  };
  const std::string stamp =
      "version = version + 1, modified_at = " + Ts(3) +
      ", expires_at = CASE WHEN customer_id IS NULL THEN to_timestamp(($3::bigint + $4::bigint)"
      " / 1000.0) ELSE NULL END";
  // The customer guard of the shopper's own writes: $g true means "only a session
  // that is anonymous or belongs to customer $g+1" (NULL: anonymous only). In an
  // UPDATE's WHERE it is re-checked on the row's newest version once the row is
  // locked, so a login committed meanwhile makes the write refuse.
  auto guard = [](int g) {
    return absl::StrCat("($", g, "::boolean IS NOT TRUE OR customer_id IS NULL OR ",
                        "customer_id IS NOT DISTINCT FROM $", g + 1, "::text)");
  };
  // PATCH of the base fields: $6 is {field: value|null} with only the fields named.
  const std::string patch_base_fields =
      "site_code = CASE WHEN $6::jsonb ? 'siteCode' THEN $6::jsonb ->> 'siteCode' ELSE "
      "site_code END, currency = CASE WHEN $6::jsonb ? 'currency' THEN $6::jsonb ->> "
      "'currency' ELSE currency END, target_location = CASE WHEN $6::jsonb ? "
      "'targetLocation' THEN $6::jsonb ->> 'targetLocation' ELSE target_location END, "
      "language = CASE WHEN $6::jsonb ? 'language' THEN $6::jsonb ->> 'language' ELSE "
      "language END, ";
  return {
      {"get", absl::StrCat("SELECT ", Columns(schema), " FROM ", t, " s WHERE s.tenant = $1 ",
                           "AND s.session_id = $2 AND (s.expires_at IS NULL OR s.expires_at > ",
                           Ts(3), ")")},
      // Inserts, or takes over an expired record; false means a live one exists.
      {"create",
       absl::StrCat("WITH up AS (INSERT INTO ", t, " VALUES ($1, $2, $4, $5, $6, $7, $8, $9, $11, ",
                    Ts(12), ", ", Ts(13), ", CASE WHEN $14::bigint IS NULL THEN NULL ELSE ",
                    Ts(14), " END, $16) ON CONFLICT (tenant, session_id) DO UPDATE SET ", set_all,
                    " WHERE ", t, ".expires_at IS NOT NULL AND ", t, ".expires_at <= ", Ts(3),
                    " RETURNING 1), ", replace_attributes("up"),
                    "SELECT EXISTS (SELECT 1 FROM up), $15::bigint IS NULL")},
      // One statement tells success, conflict (current version) and absence apart.
      {"cas", absl::StrCat("WITH cur AS (SELECT version FROM ", t, " WHERE ", key, " AND ", live,
                           "), upd AS (UPDATE ", t, " SET ", set_all, " WHERE ", key,
                           " AND version = $15 AND ", live, " RETURNING 1), ",
                           replace_attributes("upd"),
                           "SELECT (SELECT version FROM cur), EXISTS (SELECT 1 FROM upd)")},
      {"delete", absl::StrCat("DELETE FROM ", t, " WHERE ", key, " RETURNING ", live)},
      {"version", absl::StrCat("SELECT version FROM ", t, " WHERE ", key, " AND ", live)},
      {"purge", absl::StrCat("DELETE FROM ", t, " WHERE expires_at IS NOT NULL AND ",
                             "expires_at <= to_timestamp($1::bigint / 1000.0)")},
      // Import: $1 is a JSON array of whole records (ImportJson); each replaces what is
      // stored under its key. One statement: one round trip, all or nothing.
      {"import",
       absl::StrCat(
           "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(tenant text, ",
           "session_id text, customer_id text, site_code text, currency text, cart_id text, ",
           "target_location text, language text, version bigint, created bigint, modified ",
           "bigint, expires bigint, record_bytes bigint, context jsonb, bytes jsonb)), ",
           "up AS (INSERT INTO ", t, " SELECT tenant, session_id, customer_id, site_code, ",
           "currency, cart_id, target_location, language, version, to_timestamp(created / ",
           "1000.0), to_timestamp(modified / 1000.0), CASE WHEN expires IS NULL THEN NULL ELSE ",
           "to_timestamp(expires / 1000.0) END, record_bytes FROM r ON CONFLICT (tenant, ",
           "session_id) DO UPDATE SET customer_id = EXCLUDED.customer_id, site_code = ",
           "EXCLUDED.site_code, currency = EXCLUDED.currency, cart_id = EXCLUDED.cart_id, ",
           "target_location = EXCLUDED.target_location, language = EXCLUDED.language, ",
           "version = EXCLUDED.version, created_at = EXCLUDED.created_at, modified_at = ",
           "EXCLUDED.modified_at, expires_at = EXCLUDED.expires_at, record_bytes = ",
           "EXCLUDED.record_bytes RETURNING 1), ",
           "del AS (DELETE FROM ", a, " x USING r WHERE x.tenant = r.tenant AND x.session_id = ",
           "r.session_id AND NOT (r.context ? x.name)) ",
           "INSERT INTO ", a, " SELECT r.tenant, r.session_id, e.key, e.value, (r.bytes ->> ",
           "e.key)::bigint FROM r, jsonb_each(r.context) e ON CONFLICT (tenant, session_id, ",
           "name) DO UPDATE SET value = EXCLUDED.value, bytes = EXCLUDED.bytes")},
      {"scan", absl::StrCat("SELECT s.tenant, s.session_id, ", Columns(schema), " FROM ", t,
                            " s WHERE (s.tenant, s.session_id) > ($1, $2) AND (s.expires_at IS ",
                            "NULL OR s.expires_at > to_timestamp($3::bigint / 1000.0)) ",
                            "ORDER BY s.tenant, s.session_id LIMIT 500")},
      // $4 ttl (ms), $5 name, $6 value (json), $7 byte limit, $8 the attribute's bytes,
      // $9/$10 the guard.
      {"set_attribute",
       absl::StrCat("WITH cur AS (SELECT 1 FROM ", t, " WHERE ", key, " AND ", live, "), ",
                    "old AS (SELECT bytes FROM ", a, " WHERE ", key, " AND name = $5), ",
                    "upd AS (UPDATE ", t, " SET ", stamp, ", record_bytes = record_bytes - ",
                    "COALESCE((SELECT bytes FROM old), 0) + $8::bigint WHERE ", key, " AND ", live,
                    " AND ", guard(9),
                    " AND record_bytes - COALESCE((SELECT bytes FROM old), 0) + $8::bigint <= ",
                    "$7::bigint RETURNING version), ",
                    "ins AS (INSERT INTO ", a, " SELECT $1, $2, $5, $6::jsonb, $8::bigint ",
                    "WHERE EXISTS (SELECT 1 FROM upd) ON CONFLICT (tenant, session_id, name) ",
                    "DO UPDATE SET value = EXCLUDED.value, bytes = EXCLUDED.bytes) ",
                    "SELECT EXISTS (SELECT 1 FROM cur), (SELECT version FROM upd)")},
      // The session row is locked first, as by every other write (no deadlock); then
      // of two racing deletes only one finds the attribute, so only one bumps.
      {"delete_attribute",
       absl::StrCat("WITH cur AS (SELECT version, customer_id FROM ", t, " WHERE ", key, " AND ",
                    live, " FOR UPDATE), ",
                    "del AS (DELETE FROM ", a, " WHERE ", key, " AND name = $5 AND EXISTS ",
                    "(SELECT 1 FROM cur WHERE ", guard(6), ") RETURNING bytes), ",
                    "upd AS (UPDATE ", t, " SET ", stamp, ", record_bytes = record_bytes - ",
                    "(SELECT bytes FROM del) WHERE ", key, " AND ", live,
                    " AND EXISTS (SELECT 1 FROM del) RETURNING version) ",
                    "SELECT (SELECT version FROM cur), (SELECT version FROM upd), ",
                    "(SELECT ", guard(6), " FROM cur)")},
      // PATCH of base fields only (no "context" member): no attribute rows to touch.
      {"patch_base",
       absl::StrCat(
           "WITH cur AS (SELECT version FROM ", t, " WHERE ", key, " AND ", live, "), ",
           "upd AS (UPDATE ", t, " SET ", patch_base_fields, stamp, " WHERE ", key,
           " AND version = $5 AND ", live, " AND ", guard(7), " RETURNING version) ",
           "SELECT (SELECT version FROM cur), (SELECT version FROM upd), false")},
      // PATCH in one statement. $5 expected version, $6 base changes {field: value|null}
      // (only the fields the body names), $7 context merge patch (object), $8 whether
      // the context is emptied first ("context": null), $9 byte limit, $10/$11 the
      // guard. Attribute
      // writes run only once the session row is updated (and locked), and a stale
      // version updates nothing, so the snapshot they read is the current one.
      {"patch",
       absl::StrCat(
           "WITH cur AS (SELECT version FROM ", t, " WHERE ", key, " AND ", live, "), ",
           "touched AS (SELECT coalesce(sum(bytes), 0) AS b FROM ", a, " WHERE ", key,
           " AND ($8::boolean OR $7::jsonb ? name)), ",
           "merged AS (SELECT p.key AS name, ", schema, ".merge_patch(CASE WHEN $8::boolean THEN ",
           "NULL ELSE o.value END, p.value) AS value FROM jsonb_each($7::jsonb) p LEFT JOIN ", a,
           " o ON o.tenant = $1 AND o.session_id = $2 AND o.name = p.key ",
           "WHERE jsonb_typeof(p.value) <> 'null'), ",
           "sized AS (SELECT name, value, octet_length(name) + octet_length(value::text) + 4 ",
           "AS bytes FROM merged), ",
           "upd AS (UPDATE ", t, " SET ", patch_base_fields, stamp, ", record_bytes = record_bytes - (SELECT b FROM touched) + ",
           "(SELECT coalesce(sum(bytes), 0) FROM sized) WHERE ", key, " AND version = $5 AND ", live,
           " AND ", guard(10), " AND record_bytes - (SELECT b FROM touched) + (SELECT coalesce(sum(bytes), 0) FROM sized)",
           " <= $9::bigint RETURNING version), ",
           "del AS (DELETE FROM ", a, " WHERE ", key, " AND EXISTS (SELECT 1 FROM upd) AND ",
           "($8::boolean OR jsonb_typeof($7::jsonb -> name) = 'null')), ",
           "ins AS (INSERT INTO ", a, " SELECT $1, $2, name, value, bytes FROM sized ",
           "WHERE EXISTS (SELECT 1 FROM upd) ON CONFLICT (tenant, session_id, name) DO UPDATE ",
           "SET value = EXCLUDED.value, bytes = EXCLUDED.bytes) ",
           "SELECT (SELECT version FROM cur), (SELECT version FROM upd), ",
           "(SELECT record_bytes - (SELECT b FROM touched) + (SELECT coalesce(sum(bytes), 0) ",
           "FROM sized) > $9::bigint FROM ", t, " WHERE ", key, ")")},
  };
}

// --- the pool -------------------------------------------------------------------------

class Pool {
 public:
  Pool(PgOptions options) : options_(std::move(options)) {}

  // Lease hands out one connection; a connection that failed is dropped on return.
  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<pqxx::connection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), conn_(std::move(other.conn_)),
          broken_(other.broken_) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_ != nullptr) pool_->Return(std::move(conn_), broken_);
    }
    pqxx::connection& operator*() { return *conn_; }
    void MarkBroken() { broken_ = true; }

   private:
    Pool* pool_;
    std::unique_ptr<pqxx::connection> conn_;
    bool broken_ = false;
  };

  absl::StatusOr<Lease> Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    const auto start = std::chrono::steady_clock::now();
    const bool got = cv_.wait_for(lock, std::chrono::milliseconds(options_.acquire_timeout_ms),
                                  [&] { return !idle_.empty() || open_ < options_.pool_size; });
    wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!got) {
      ++acquire_timeouts_;
      return absl::UnavailableError("postgresql: no free connection in the pool");
    }
    if (!idle_.empty()) {
      std::unique_ptr<pqxx::connection> conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    ++open_;
    lock.unlock();
    absl::StatusOr<std::unique_ptr<pqxx::connection>> conn = Connect();
    if (!conn.ok()) {
      lock.lock();
      --open_;
      cv_.notify_one();
      return conn.status();
    }
    return Lease(this, *std::move(conn));
  }

  absl::StatusOr<std::unique_ptr<pqxx::connection>> Connect() {
    try {
      auto conn = std::make_unique<pqxx::connection>(options_.libpq_uri);
      pqxx::nontransaction setup(*conn);
      setup.exec(absl::StrCat("SET statement_timeout = ", options_.statement_timeout_ms));
      setup.commit();
      const std::string schema = conn->quote_name(options_.schema);
      for (const auto& [name, sql] : Statements(schema)) conn->prepare(name, sql);
      return conn;
    } catch (const std::exception& e) {
      absl::Status st = Translate(e);
      return absl::UnavailableError(absl::StrCat("postgresql unreachable: ", st.message()));
    }
  }

  const PgOptions& options() const { return options_; }

  std::vector<StoreStat> Stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return {
        {"sessionctx_postgres_pool_size", "Connections the pool may open (pool_size)",
         static_cast<double>(options_.pool_size)},
        {"sessionctx_postgres_pool_open", "Connections open", static_cast<double>(open_)},
        {"sessionctx_postgres_pool_in_use", "Connections leased to a running call",
         static_cast<double>(open_ - static_cast<int>(idle_.size()))},
        {"sessionctx_postgres_pool_wait_seconds_total",
         "Time calls spent waiting for a connection", wait_seconds_},
        {"sessionctx_postgres_pool_acquire_timeouts_total",
         "Calls that found no free connection in time", static_cast<double>(acquire_timeouts_)},
    };
  }

 private:
  void Return(std::unique_ptr<pqxx::connection> conn, bool broken) {
    std::lock_guard<std::mutex> lock(mu_);
    if (broken || !conn || !conn->is_open()) {
      --open_;
    } else {
      idle_.push_back(std::move(conn));
    }
    cv_.notify_one();
  }

  const PgOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;  // guarded by mu_
  int open_ = 0;                                          // guarded by mu_
  double wait_seconds_ = 0;                               // guarded by mu_
  uint64_t acquire_timeouts_ = 0;                         // guarded by mu_
};

const char* CStr(const std::optional<std::string>& v) { return v ? v->c_str() : nullptr; }

int64_t Ms(absl::Time t) { return absl::ToUnixMillis(t); }

absl::StatusOr<SessionContext> RecordFrom(const pqxx::row& row, int first,
                                          const std::string& session_id) {
  SessionContext s;
  s.session_id = session_id;
  // The columns follow kBaseFields' order.
  for (int i = 0; i < kBaseFieldCount; ++i) {
    if (!row[first + i].is_null()) s.*kBaseFields[i].member = row[first + i].as<std::string>();
  }
  s.context = Json::parse(row[first + 6].c_str(), nullptr, /*allow_exceptions=*/false);
  if (!s.context.is_object()) return absl::DataLossError("stored context is not an object");
  s.version = row[first + 7].as<int64_t>();
  s.created_at = absl::FromUnixMillis(row[first + 8].as<int64_t>());
  s.modified_at = absl::FromUnixMillis(row[first + 9].as<int64_t>());
  s.expires_at = row[first + 10].is_null() ? absl::InfiniteFuture()
                                           : absl::FromUnixMillis(row[first + 10].as<int64_t>());
  return s;
}


class PostgresStore final : public SessionStore {
 public:
  PostgresStore(PgOptions options, const Clock* clock) : pool_(std::move(options)), clock_(clock) {}

  std::vector<StoreStat> Stats() override { return pool_.Stats(); }

  absl::StatusOr<SessionContext> Get(const SessionKey& key) override {
    return Run<SessionContext>([&](pqxx::nontransaction& tx) -> absl::StatusOr<SessionContext> {
      pqxx::result r = tx.exec_prepared("get", key.tenant, key.session_id, Now());
      if (r.empty()) return SessionNotFoundError(key);
      return RecordFrom(r[0], 0, key.session_id);
    });
  }

  absl::Status Create(const SessionKey& key, const SessionContext& record) override {
    return Run<bool>([&](pqxx::nontransaction& tx) -> absl::StatusOr<bool> {
             pqxx::row r = WriteWhole(tx, "create", key, record, std::nullopt);
             if (!r[0].as<bool>()) {
               return SessionExistsError(key);
             }
             return true;
           })
        .status();
  }

  absl::Status CompareAndSet(const SessionKey& key, int64_t expected_version,
                             const SessionContext& record) override {
    return Run<bool>([&](pqxx::nontransaction& tx) -> absl::StatusOr<bool> {
             pqxx::row r = WriteWhole(tx, "cas", key, record, expected_version);
             if (r[1].as<bool>()) return true;
             if (r[0].is_null()) return SessionNotFoundError(key);
             if (r[0].as<int64_t>() == expected_version) return RacedConflict(tx, key, expected_version);
             return VersionConflictError(expected_version, r[0].as<int64_t>());
           })
        .status();
  }

  absl::Status Delete(const SessionKey& key) override {
    return Run<bool>([&](pqxx::nontransaction& tx) -> absl::StatusOr<bool> {
             pqxx::result r = tx.exec_prepared("delete", key.tenant, key.session_id, Now());
             if (r.empty() || !r[0][0].as<bool>()) return SessionNotFoundError(key);
             return true;
           })
        .status();
  }

  // The whole batch in one prepared statement (one round trip, one transaction).
  absl::Status Import(const std::vector<ImportRecord>& records) override {
    if (absl::Status st = CheckImportKeys(records); !st.ok()) return st;
    if (records.empty()) return absl::OkStatus();
    // The rows as JSON text, written directly: each record is rendered once (its size
    // is the text's), and its context and attribute sizes are read off that text.
    std::string rows = "[";
    for (const ImportRecord& r : records) {
      const SessionContext& s = r.record;
      const std::string wire = ToJson(s).dump();
      absl::string_view context = "{}";
      if (std::optional<internal::MemberSpan> c = internal::FindMember(wire, "\"context\"")) {
        context = absl::string_view(wire).substr(c->value_begin, c->end - c->value_begin);
      }
      if (rows.size() > 1) rows.push_back(',');
      auto field = [&rows](absl::string_view name, const std::optional<std::string>& v) {
        absl::StrAppend(&rows, ",\"", name, "\":");
        if (v) {
          internal::AppendJsonString(rows, *v);
        } else {
          rows += "null";
        }
      };
      rows += "{\"tenant\":";
      internal::AppendJsonString(rows, r.key.tenant);
      field("session_id", r.key.session_id);
      field("customer_id", s.customer_id);
      field("site_code", s.site_code);
      field("currency", s.currency);
      field("cart_id", s.cart_id);
      field("target_location", s.target_location);
      field("language", s.language);
      absl::StrAppend(&rows, ",\"version\":", s.version, ",\"created\":", Ms(s.created_at),
                      ",\"modified\":", Ms(s.modified_at), ",\"expires\":",
                      s.expires_at == absl::InfiniteFuture() ? std::string("null")
                                                             : std::to_string(Ms(s.expires_at)),
                      ",\"record_bytes\":", wire.size(), ",\"context\":", context, ",\"bytes\":{");
      bool first = true;
      internal::ForEachMember(context, [&](absl::string_view key, absl::string_view value) {
        absl::StrAppend(&rows, first ? "" : ",", key, ":", key.size() + value.size() + 2);  // AttributeBytes
        first = false;
      });
      rows += "}}";
    }
    rows += "]";
    return Run<bool>([&](pqxx::nontransaction& tx) -> absl::StatusOr<bool> {
             tx.exec_prepared("import", rows);
             return true;
           })
        .status();
  }

  absl::StatusOr<int64_t> PurgeExpired() override {
    return Run<int64_t>([&](pqxx::nontransaction& tx) -> absl::StatusOr<int64_t> {
      pqxx::result r = tx.exec_prepared("purge", Now());
      return static_cast<int64_t>(r.affected_rows());
    });
  }

  absl::Status ForEach(
      const std::function<bool(const SessionKey&, const SessionContext&)>& visit) override {
    SessionKey after{"", ""};
    const int64_t now = Now();
    while (true) {
      std::vector<std::pair<SessionKey, SessionContext>> batch;
      absl::StatusOr<bool> got = Run<bool>([&](pqxx::nontransaction& tx) -> absl::StatusOr<bool> {
        pqxx::result r = tx.exec_prepared("scan", after.tenant, after.session_id, now);
        for (const pqxx::row& row : r) {
          SessionKey key{row[0].as<std::string>(), row[1].as<std::string>()};
          absl::StatusOr<SessionContext> s = RecordFrom(row, 2, key.session_id);
          if (!s.ok()) return s.status();
          batch.emplace_back(std::move(key), *std::move(s));
        }
        return true;
      });
      if (!got.ok()) return got.status();
      if (batch.empty()) return absl::OkStatus();
      for (const auto& [key, record] : batch) {
        if (!visit(key, record)) return absl::OkStatus();
      }
      after = batch.back().first;
    }
  }

  // One statement, one round trip: the database merges and checks the version.
  absl::StatusOr<int64_t> Patch(const SessionKey& key, const PatchWrite& write) override {
    Json base = Json::object();
    for (const BaseField& f : kBaseFields) {
      if (!f.patchable) continue;
      if (auto it = write.body.find(f.name); it != write.body.end()) base[f.name] = *it;
    }
    Json context = Json::object();
    bool reset = false;
    const auto ctx = write.body.find("context");
    if (ctx != write.body.end()) {
      if (ctx->is_null()) {
        reset = true;
      } else {
        context = *ctx;
      }
    }
    const int64_t now = Ms(write.now);
    const int64_t ttl = absl::ToInt64Milliseconds(write.anonymous_ttl);
    return Run<int64_t>([&](pqxx::nontransaction& tx) -> absl::StatusOr<int64_t> {
      const bool guarded = write.guard.has_value();
      const char* customer = guarded ? CStr(write.guard->customer_id) : nullptr;
      pqxx::row r =
          ctx == write.body.end()
              ? tx.exec_prepared1("patch_base", key.tenant, key.session_id, now, ttl,
                                  write.expected_version, base.dump(), guarded, customer)
              : tx.exec_prepared1("patch", key.tenant, key.session_id, now, ttl,
                                  write.expected_version, base.dump(), context.dump(), reset,
                                  static_cast<int64_t>(write.max_record_bytes), guarded,
                                  customer);
      if (!r[1].is_null()) return r[1].as<int64_t>();
      if (r[0].is_null()) return SessionNotFoundError(key);
      if (guarded && GuardRefusesNow(tx, key, write.guard)) return GuardRefusedError();
      const int64_t current = r[0].as<int64_t>();
      if (current != write.expected_version) {
        return VersionConflictError(write.expected_version, current);
      }
      if (!r[2].is_null() && r[2].as<bool>()) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "session record would exceed the limit of ", write.max_record_bytes, " bytes"));
      }
      return RacedConflict(tx, key, write.expected_version);
    });
  }

  // One statement: the database applies the change and bumps the version atomically.
  absl::StatusOr<AttributeResult> UpdateAttribute(const SessionKey& key,
                                                  const AttributeWrite& write) override {
    const int64_t now = Ms(write.now);
    const int64_t ttl = absl::ToInt64Milliseconds(write.anonymous_ttl);
    return Run<AttributeResult>([&](pqxx::nontransaction& tx) -> absl::StatusOr<AttributeResult> {
      const bool guarded = write.guard.has_value();
      const char* customer = guarded ? CStr(write.guard->customer_id) : nullptr;
      if (write.value) {
        pqxx::row r = tx.exec_prepared1(
            "set_attribute", key.tenant, key.session_id, now, ttl, write.name,
            write.value->dump(), static_cast<int64_t>(write.max_record_bytes),
            static_cast<int64_t>(AttributeBytes(write.name, *write.value)), guarded, customer);
        if (!r[0].as<bool>()) return SessionNotFoundError(key);
        if (r[1].is_null() && guarded && GuardRefusesNow(tx, key, write.guard)) {
          return GuardRefusedError();
        }
        if (r[1].is_null()) {
          return absl::ResourceExhaustedError(absl::StrCat(
              "session record would exceed the limit of ", write.max_record_bytes, " bytes"));
        }
        return AttributeResult{r[1].as<int64_t>(), true};
      }
      pqxx::row r = tx.exec_prepared1("delete_attribute", key.tenant, key.session_id, now, ttl,
                                      write.name, guarded, customer);
      if (r[0].is_null()) return SessionNotFoundError(key);
      if (!r[2].as<bool>()) return GuardRefusedError();
      if (r[1].is_null()) return AttributeResult{r[0].as<int64_t>(), false};
      return AttributeResult{r[1].as<int64_t>(), true};
    });
  }

 private:
  int64_t Now() const { return Ms(clock_->Now()); }

  // GuardRefusesNow: after a guarded write that wrote nothing, whether the session as
  // it is now (a fresh read) is one the guard refuses, e.g. after a login that
  // committed while the write waited for the row.
  bool GuardRefusesNow(pqxx::nontransaction& tx, const SessionKey& key,
                       const std::optional<CustomerGuard>& guard) const {
    pqxx::result now = tx.exec_prepared("get", key.tenant, key.session_id, Now());
    if (now.empty()) return false;
    absl::StatusOr<SessionContext> record = RecordFrom(now[0], 0, key.session_id);
    return record.ok() && !GuardAllows(guard, *record);
  }

  // Expiry as a nullable parameter (NULL = never); `buf` keeps the text alive.
  static const char* Expiry(const SessionContext& s, std::string& buf) {
    if (s.expires_at == absl::InfiniteFuture()) return nullptr;
    buf = std::to_string(Ms(s.expires_at));
    return buf.c_str();
  }
  // RacedConflict: the outcome of a conditional write that saw the expected version
  // when its statement began but not when it wrote (another write came in between):
  // a conflict naming the version now stored, read again, or NotFound if it is gone.
  absl::Status RacedConflict(pqxx::nontransaction& tx, const SessionKey& key, int64_t expected) {
    pqxx::result r = tx.exec_prepared("version", key.tenant, key.session_id, Now());
    if (r.empty()) return SessionNotFoundError(key);
    const int64_t current = r[0][0].as<int64_t>();
    if (current == expected) return absl::AbortedError("the session changed concurrently; read it again");
    return VersionConflictError(expected, current);
  }

  // WriteWhole runs "create" or "cas", the statements that take a whole record.
  pqxx::row WriteWhole(pqxx::nontransaction& tx, const char* statement, const SessionKey& key,
                       const SessionContext& record, std::optional<int64_t> expected) {
    std::string expiry;
    const std::string expected_text = expected ? std::to_string(*expected) : "";
    return tx.exec_prepared1(
        statement, key.tenant, key.session_id, Now(), CStr(record.customer_id),
        CStr(record.site_code), CStr(record.currency), CStr(record.cart_id),
        CStr(record.target_location), CStr(record.language), record.context.dump(),
        record.version, Ms(record.created_at), Ms(record.modified_at), Expiry(record, expiry),
        expected ? expected_text.c_str() : nullptr, RecordBytes(record), ByteMap(record));
  }

  // ByteMap: {name: AttributeBytes} for every attribute, so the database keeps the
  // record size the core would compute.
  static Json ByteMapJson(const SessionContext& s) {
    Json map = Json::object();
    for (auto it = s.context.begin(); it != s.context.end(); ++it) {
      map[it.key()] = AttributeBytes(it.key(), *it);
    }
    return map;
  }
  static std::string ByteMap(const SessionContext& s) { return ByteMapJson(s).dump(); }

  // Run executes `body` on a pooled connection in autocommit mode (one round trip per
  // statement) and turns exceptions into statuses. A connection that broke is dropped.
  template <typename T>
  absl::StatusOr<T> Run(const std::function<absl::StatusOr<T>(pqxx::nontransaction&)>& body) {
    absl::StatusOr<Pool::Lease> lease = pool_.Acquire();
    if (!lease.ok()) return lease.status();
    try {
      pqxx::nontransaction tx(**lease);
      absl::StatusOr<T> result = body(tx);
      tx.commit();
      return result;
    } catch (const std::exception& e) {
      absl::Status st = Translate(e);
      if (absl::IsUnavailable(st) || !(**lease).is_open()) lease->MarkBroken();
      return st;
    }
  }

  Pool pool_;
  const Clock* const clock_;
};

}  // namespace

absl::Status MigratePostgresSchema(const std::string& uri, int version) {
  absl::StatusOr<PgOptions> options = ParseUri(uri);
  if (!options.ok()) return options.status();
  if (version < 1 || version > kPostgresSchemaVersion) {
    return absl::InvalidArgumentError("no such schema version");
  }
  try {
    pqxx::connection conn(options->libpq_uri);
    return Migrate(conn, options->schema, version);
  } catch (const std::exception& e) {
    return Translate(e);
  }
}

absl::StatusOr<std::unique_ptr<SessionStore>> OpenPostgresStore(const std::string& uri,
                                                                const StoreOptions& options) {
  absl::StatusOr<PgOptions> parsed = ParseUri(uri);
  if (!parsed.ok()) return parsed.status();
  try {
    pqxx::connection conn(parsed->libpq_uri);
    if (absl::Status st = Migrate(conn, parsed->schema, kPostgresSchemaVersion); !st.ok()) {
      return st;
    }
  } catch (const std::exception& e) {
    return Translate(e);
  }
  return std::make_unique<PostgresStore>(*std::move(parsed), options.clock);
}

}  // namespace sessionctx
