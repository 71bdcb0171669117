// All of libpqxx lives in this file. Written against the subset of libpqxx 6.4 that
// 7.x keeps: connection, prepare, nontransaction/work, exec_prepared, commit.
#include "sessionctx/postgres_store.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <pqxx/pqxx>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "sessionctx/backend_support.h"
#include "sessionctx/base_fields.h"
#include "sessionctx/event_support.h"
#include "sessionctx/write_rules.h"

namespace sessionctx {
namespace {

constexpr char kDefaultSchema[] = "sessionctx";

struct PgOptions {
  std::string libpq_uri;
  std::string schema = kDefaultSchema;
  int pool_size = 8;
  int statement_timeout_ms = 5000;
  int acquire_timeout_ms = 5000;
  bool events = true;  // StoreOptions::events.enabled
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
    // disk_full: the statement changed nothing; the connection is fine, and the next
    // write succeeds once the server has space again.
    if (state == "53100") {
      return backend::StorageFullError(absl::StrCat("postgresql: the server is out of disk space: ", e.what()));
    }
    if (state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0 || state == "53300") {
      return absl::UnavailableError(absl::StrCat("postgresql unavailable: ", e.what()));
    }
    return absl::InternalError(absl::StrCat("postgresql error ", state, ": ", e.what()));
  }
  return absl::InternalError(absl::StrCat("postgresql: ", e.what()));
}

// --- schema ---------------------------------------------------------------------

// ColumnOf: the column of a base field ("siteCode" -> "site_code").
std::string ColumnOf(absl::string_view field) {
  std::string column;
  for (char c : field) {
    if (absl::ascii_isupper(c)) {
      column += '_';
      column += absl::ascii_tolower(c);
    } else {
      column += c;
    }
  }
  return column;
}

std::string LockedRow(const std::string& s);
std::string StampedRow(const std::string& s, const std::string& size);
std::string PatchedFieldBytes(const std::string& s, const std::string& base, const std::string& row);
std::string PatchedFieldColumns(const std::string& base, const std::string& row);

// SizeFunctions: json_bytes(v), the size of v's compact JSON text (jsonb's own text
// is spaced); field_bytes, what a base field adds to a record (`,"name":"value"`);
// record_bytes_of, what a session row's fields and metadata take ("context":{} included).
std::string SizeFunctions(const std::string& s) {
  std::string fields;
  for (const BaseField& f : kBaseFields) {
    absl::StrAppend(&fields, " + ", s, ".field_bytes('", f.name, "', r.", ColumnOf(f.name), ")");
  }
  return absl::StrCat(
      "CREATE FUNCTION ", s, ".json_bytes(v jsonb) RETURNS bigint LANGUAGE plpgsql STABLE AS $f$ ",
      "DECLARE n bigint := 0; c bigint := 0; k text; e jsonb; BEGIN ",
      "IF jsonb_typeof(v) = 'object' THEN ",
      "FOR k, e IN SELECT * FROM jsonb_each(v) LOOP ",
      "n := n + octet_length(to_json(k)::text) + 1 + ", s, ".json_bytes(e); c := c + 1; END LOOP; ",
      "RETURN 2 + n + greatest(c - 1, 0); ",
      "ELSIF jsonb_typeof(v) = 'array' THEN ",
      "FOR e IN SELECT * FROM jsonb_array_elements(v) LOOP n := n + ", s, ".json_bytes(e); ",
      "c := c + 1; END LOOP; RETURN 2 + n + greatest(c - 1, 0); ",
      "END IF; RETURN octet_length(v::text); END $f$; ",
      // STABLE, as to_json is: so that the planner inlines it into the statements.
      "CREATE FUNCTION ", s, ".field_bytes(name text, v text) RETURNS bigint LANGUAGE sql ",
      "STABLE AS $f$ SELECT CASE WHEN v IS NULL THEN 0 ELSE octet_length(name) + 4 + ",
      "octet_length(to_json(v)::text) END $f$; ",
      // {"sessionId":…,"context":…,"metadata":{"version":N,"createdAt":"…","modifiedAt":"…"}}
      "CREATE FUNCTION ", s, ".record_bytes_of(r ", s, ".sessions) RETURNS bigint LANGUAGE sql ",
      "STABLE AS $f$ SELECT 130 + octet_length(to_json(r.session_id)::text) + ",
      "length(r.version::text)", fields, " $f$; ");
}

// SizeBackfill: the sizes of the rows written before migration 4.
std::string SizeBackfill(const std::string& s) {
  return absl::StrCat(
      "UPDATE ", s, ".attributes SET bytes = octet_length(to_json(name)::text) + 2 + ",
      s, ".json_bytes(value); ",
      "UPDATE ", s, ".sessions r SET record_bytes = ", s, ".record_bytes_of(r) + ",
      "COALESCE((SELECT sum(a.bytes) - 1 FROM ", s, ".attributes a WHERE a.tenant = r.tenant ",
      "AND a.session_id = r.session_id), 0); ");
}

// SetAttributeFunction: one attribute set, the record's size checked and stamped.
std::string SetAttributeFunction(const std::string& s) {
  return absl::StrCat(
      "CREATE FUNCTION ", s, ".set_attribute(p_tenant text, p_id text, p_now bigint, ",
      "p_ttl bigint, p_name text, p_value jsonb, p_limit bigint, p_bytes bigint, ",
      "p_guarded boolean, p_customer text, p_expected bigint, OUT outcome int, OUT version bigint) ",
      "LANGUAGE plpgsql AS $f$ DECLARE r ", s, ".sessions; old bigint; had_any boolean; ",
      "size bigint; BEGIN ", LockedRow(s),
      "SELECT a.bytes INTO old FROM ", s, ".attributes a WHERE a.tenant = p_tenant AND ",
      "a.session_id = p_id AND a.name = p_name; ",
      "had_any := old IS NOT NULL OR EXISTS (SELECT 1 FROM ", s, ".attributes a WHERE ",
      "a.tenant = p_tenant AND a.session_id = p_id); ",
      "size := r.record_bytes + length((r.version + 1)::text) - length(r.version::text) - ",
      "COALESCE(old, 0) + p_bytes - CASE WHEN had_any THEN 0 ELSE 1 END; ",
      "IF size > p_limit THEN outcome := 5; version := size; RETURN; END IF; ",
      StampedRow(s, "size"),
      "INSERT INTO ", s, ".attributes VALUES (p_tenant, p_id, p_name, p_value, p_bytes) ",
      "ON CONFLICT (tenant, session_id, name) DO UPDATE SET value = EXCLUDED.value, ",
      "bytes = EXCLUDED.bytes; outcome := 0; END $f$; ");
}

// DeleteAttributeFunction: one attribute removed (outcome 1 when absent).
std::string DeleteAttributeFunction(const std::string& s) {
  return absl::StrCat(
      "CREATE FUNCTION ", s, ".delete_attribute(p_tenant text, p_id text, p_now bigint, ",
      "p_ttl bigint, p_name text, p_guarded boolean, p_customer text, p_expected bigint, ",
      "OUT outcome int, OUT version bigint) LANGUAGE plpgsql AS $f$ DECLARE r ", s,
      ".sessions; old bigint; size bigint; BEGIN ", LockedRow(s),
      "DELETE FROM ", s, ".attributes a WHERE a.tenant = p_tenant AND a.session_id = p_id ",
      "AND a.name = p_name RETURNING a.bytes INTO old; ",
      "IF old IS NULL THEN outcome := 1; version := r.version; RETURN; END IF; ",
      "size := r.record_bytes + length((r.version + 1)::text) - length(r.version::text) - old + ",
      "CASE WHEN EXISTS (SELECT 1 FROM ", s, ".attributes a WHERE a.tenant = p_tenant AND ",
      "a.session_id = p_id) THEN 0 ELSE 1 END; ",
      StampedRow(s, "size"), "outcome := 0; END $f$; ");
}

// PatchFunction: a whole PATCH, fields and context, checked before it writes.
std::string PatchFunction(const std::string& s) {
  return absl::StrCat(
      // PATCH: p_base {field: value|null} names only the fields the body names;
      // p_context the context's merge patch (NULL: the body has no context), p_reset
      // "context": null; p_sizes the AttributeBytes of members replaced whole (a
      // non-object patch value), which the core measured. A member merged into an
      // object is measured here. Everything is checked before anything is written.
      "CREATE FUNCTION ", s, ".patch(p_tenant text, p_id text, p_now bigint, p_ttl bigint, ",
      "p_expected bigint, p_base jsonb, p_context jsonb, p_reset boolean, p_sizes jsonb, ",
      "p_limit bigint, p_guarded boolean, p_customer text, OUT outcome int, OUT version bigint) ",
      "LANGUAGE plpgsql AS $f$ DECLARE r ", s, ".sessions; had_any boolean; any_after boolean; ",
      "size bigint; k text; v jsonb; old jsonb; old_bytes bigint; merged jsonb; b bigint; ",
      "names text[] := '{}'; vals jsonb[] := '{}'; sizes bigint[] := '{}'; gone text[] := '{}'; ",
      "BEGIN ", LockedRow(s),
      "size := r.record_bytes + length((r.version + 1)::text) - length(r.version::text)", PatchedFieldBytes(s, "p_base", "r."), "; ",
      // A PATCH of base fields alone touches no attribute row: two statements in all.
      "IF p_context IS NOT NULL OR p_reset THEN ",
      "had_any := EXISTS (SELECT 1 FROM ", s, ".attributes a WHERE a.tenant = p_tenant AND a.session_id = p_id); ",
      "IF p_reset THEN size := size - COALESCE((SELECT sum(a.bytes) FROM ", s, ".attributes a ",
      "WHERE a.tenant = p_tenant AND a.session_id = p_id), 0); END IF; ",
      "IF p_context IS NOT NULL THEN FOR k, v IN SELECT * FROM jsonb_each(p_context) LOOP ",
      "old := NULL; old_bytes := NULL; ",
      "IF NOT p_reset THEN SELECT a.value, a.bytes INTO old, old_bytes FROM ", s, ".attributes a ",
      "WHERE a.tenant = p_tenant AND a.session_id = p_id AND a.name = k; END IF; ",
      "size := size - COALESCE(old_bytes, 0); ",
      "IF jsonb_typeof(v) = 'null' THEN IF old IS NOT NULL THEN gone := gone || k; END IF; ",
      "ELSE IF jsonb_typeof(v) = 'object' THEN merged := ", s, ".merge_patch(old, v); ",
      "b := octet_length(to_json(k)::text) + 2 + ", s, ".json_bytes(merged); ",
      "ELSE merged := v; b := (p_sizes ->> k)::bigint; END IF; ",
      "size := size + b; names := names || k; vals := vals || merged; sizes := sizes || b; ",
      "END IF; END LOOP; END IF; ",
      "any_after := cardinality(names) > 0 OR (NOT p_reset AND EXISTS (SELECT 1 FROM ", s,
      ".attributes a WHERE a.tenant = p_tenant AND a.session_id = p_id AND NOT (a.name = ANY (gone)))); ",
      "size := size + CASE WHEN had_any AND NOT any_after THEN 1 WHEN any_after AND NOT had_any ",
      "THEN -1 ELSE 0 END; END IF; ",
      "IF size > p_limit THEN outcome := 5; version := size; RETURN; END IF; ",
      "IF p_reset THEN DELETE FROM ", s, ".attributes a WHERE a.tenant = p_tenant AND a.session_id = p_id; ",
      "ELSIF cardinality(gone) > 0 THEN DELETE FROM ", s, ".attributes a WHERE a.tenant = p_tenant ",
      "AND a.session_id = p_id AND a.name = ANY (gone); END IF; ",
      "IF cardinality(names) > 0 THEN INSERT INTO ", s, ".attributes SELECT p_tenant, p_id, u.n, u.v, ",
      "u.b FROM unnest(names, vals, sizes) AS u(n, v, b) ON CONFLICT (tenant, session_id, name) ",
      "DO UPDATE SET value = EXCLUDED.value, bytes = EXCLUDED.bytes; END IF; ",
      "UPDATE ", s, ".sessions SET ", PatchedFieldColumns("p_base", "r."), "version = r.version + 1, ",
      "modified_at = to_timestamp(p_now / 1000.0), expires_at = CASE WHEN r.customer_id IS NULL ",
      "THEN to_timestamp((p_now + p_ttl) / 1000.0) END, record_bytes = size ",
      "WHERE tenant = p_tenant AND session_id = p_id; ",
      "outcome := 0; version := r.version + 1; END $f$; ");
}

// DeleteSessionFunction: a session deleted, at a version when p_expected is given.
std::string DeleteSessionFunction(const std::string& s) {
  return absl::StrCat(
      // DELETE of a session: p_expected as above; an expired row goes, as not found.
      "CREATE FUNCTION ", s, ".delete_session(p_tenant text, p_id text, p_now bigint, ",
      "p_expected bigint, OUT outcome int, OUT version bigint) LANGUAGE plpgsql AS $f$ ",
      "DECLARE r ", s, ".sessions; BEGIN SELECT * INTO r FROM ", s, ".sessions x WHERE ",
      "x.tenant = p_tenant AND x.session_id = p_id FOR UPDATE; ",
      "IF NOT FOUND THEN outcome := 2; RETURN; END IF; ",
      // Why the row goes and when, for the event trigger (migration 6).
      "PERFORM set_config('sessionctx.delete', 'deleted:' || p_now, true); ",
      "IF r.expires_at IS NOT NULL AND r.expires_at <= to_timestamp(p_now / 1000.0) "
      "THEN ",
      "outcome := 2; ELSIF p_expected IS NOT NULL AND r.version <> p_expected THEN ",
      "outcome := 4; version := r.version; RETURN; ELSE outcome := 0; END IF; ",
      "DELETE FROM ", s,
      ".sessions x WHERE x.tenant = p_tenant AND x.session_id = p_id; END $f$");
}

// SizeMigration: migration 4 (see Migrations): the size functions, the sizes of the
// rows already stored, and the write functions. The write functions share their first
// steps (LockedRow): the live row, locked; the guard (p_guarded: only an anonymous
// session or customer p_customer's); the version. They answer (outcome, version): 0
// written (the new version), 1 nothing to change (the current one), 2 no live
// session, 3 the guard refuses, 4 version conflict (the current one), 5 over the size
// limit (the size it would have).
std::string SizeMigration(const std::string& s) {
  return absl::StrCat(SizeFunctions(s), SizeBackfill(s), SetAttributeFunction(s),
                      DeleteAttributeFunction(s), PatchFunction(s), DeleteSessionFunction(s));
}

// LockedRow: the first steps of migration 4's functions (see there).
std::string LockedRow(const std::string& s) {
  return absl::StrCat(
      "SELECT * INTO r FROM ", s, ".sessions x WHERE x.tenant = p_tenant AND x.session_id = p_id ",
      "AND (x.expires_at IS NULL OR x.expires_at > to_timestamp(p_now / 1000.0)) FOR UPDATE; ",
      "IF NOT FOUND THEN outcome := 2; RETURN; END IF; ",
      "IF p_guarded AND r.customer_id IS NOT NULL AND r.customer_id IS DISTINCT FROM p_customer ",
      "THEN outcome := 3; version := r.version; RETURN; END IF; ",
      "IF p_expected IS NOT NULL AND r.version <> p_expected THEN outcome := 4; ",
      "version := r.version; RETURN; END IF; ");
}

// StampedRow: the session row of an attribute write stamped (version, times, expiry) with
// its new size; sets `version`.
std::string StampedRow(const std::string& s, const std::string& size) {
  return absl::StrCat(
      "UPDATE ", s, ".sessions x SET version = r.version + 1, modified_at = ",
      "to_timestamp(p_now / 1000.0), expires_at = CASE WHEN r.customer_id IS NULL THEN ",
      "to_timestamp((p_now + p_ttl) / 1000.0) END, record_bytes = ", size,
      " WHERE x.tenant = p_tenant AND x.session_id = p_id; version := r.version + 1; ");
}

// PatchedFieldBytes / PatchedFieldColumns: a PATCH's base fields (kBaseFields'
// patchable ones), as a change of the record's size and as SET clauses.
// `base` is the expression of the {field: value|null} object, `row` the prefix of
// the session row's columns ("r." in a function, "" in an UPDATE).
std::string PatchedFieldBytes(const std::string& s, const std::string& base, const std::string& row) {
  std::string out;
  for (const BaseField& f : kBaseFields) {
    if (!f.patchable) continue;
    absl::StrAppend(&out, " + CASE WHEN ", base, " ? '", f.name, "' THEN ", s, ".field_bytes('",
                    f.name, "', ", base, " ->> '", f.name, "') - ", s, ".field_bytes('", f.name,
                    "', ", row, ColumnOf(f.name), ") ELSE 0 END");
  }
  return out;
}
std::string PatchedFieldColumns(const std::string& base, const std::string& row) {
  std::string out;
  for (const BaseField& f : kBaseFields) {
    if (!f.patchable) continue;
    const std::string column = ColumnOf(f.name);
    absl::StrAppend(&out, column, " = CASE WHEN ", base, " ? '", f.name, "' THEN ", base, " ->> '",
                    f.name, "' ELSE ", row, column, " END, ");
  }
  return out;
}

// EventsMigration: migration 6, the event feed (session_events.h).
//
// A trigger on the sessions table writes each write's event into `events` in the
// write's own transaction: every statement and function that writes a session
// yields its events without a line of its own, and an aborted write yields none.
// INSERT: created; UPDATE: changed, or expired + created when the row it replaces
// had expired (a create over an expired session); DELETE: expired when the row had
// expired at the statement's time, else ended or deleted, as the statement says in
// the transaction-local setting sessionctx.delete ("deleted:<ms>", "ended:<ms>",
// "expired:<ms>"). The setting sessionctx.events = 'off' (a connection's) turns the
// trigger off.
//
// Positions: writers commit in any order, so a position handed out as they insert
// could become visible after a larger one a reader has passed. Events are therefore
// inserted without a position and sequenced by readers: sequence_events, under a
// transaction advisory lock, numbers the committed unsequenced events in insertion
// order (one session's events are inserted in the order of its writes: the row lock
// orders them) and records the last position in events_state in the same
// transaction. A reader reads up to events_state.last of its own snapshot: every
// position up to it is committed and none below it can appear later.
std::string EventsMigration(const std::string& s) {
  const std::string insert =
      absl::StrCat("INSERT INTO ", s, ".events (tenant, session_id, type, version, at) ");
  return absl::StrCat(
      // No primary key: `id` only orders the unsequenced events (their partial index),
      // `position` names the sequenced ones; one index fewer for every write.
      "CREATE TABLE ", s, ".events (id bigserial, position bigint, ",
      "tenant text NOT NULL, session_id text NOT NULL, type smallint NOT NULL, ",
      "version bigint NOT NULL, at timestamptz NOT NULL); ",
      "CREATE UNIQUE INDEX events_position ON ", s,
      ".events (position) WHERE position IS NOT NULL; ",
      "CREATE INDEX events_unsequenced ON ", s, ".events (id) WHERE position IS NULL; ",
      "CREATE TABLE ", s,
      ".events_state (last bigint NOT NULL, trimmed bigint NOT NULL); ", "INSERT INTO ",
      s, ".events_state VALUES (0, 0); ", "CREATE FUNCTION ", s,
      ".session_event() RETURNS trigger LANGUAGE plpgsql AS $f$ ",
      "DECLARE why text; at timestamptz; BEGIN ",
      "IF current_setting('sessionctx.events', true) = 'off' THEN RETURN NULL; END IF; ",
      "IF TG_OP = 'INSERT' THEN ", insert,
      "VALUES (NEW.tenant, NEW.session_id, 0, NEW.version, NEW.modified_at); ",
      "ELSIF TG_OP = 'UPDATE' THEN ",
      "IF OLD.expires_at IS NOT NULL AND OLD.expires_at <= NEW.modified_at THEN ", insert,
      "VALUES (OLD.tenant, OLD.session_id, 3, OLD.version, NEW.modified_at), ",
      "(NEW.tenant, NEW.session_id, 0, NEW.version, NEW.modified_at); ", "ELSE ", insert,
      "VALUES (NEW.tenant, NEW.session_id, 1, NEW.version, NEW.modified_at); ",
      "END IF; ELSE why := COALESCE(current_setting('sessionctx.delete', true), ''); ",
      "at := CASE WHEN why LIKE '%:%' THEN to_timestamp(split_part(why, ':', 2)::bigint "
      "/ 1000.0) ",
      "ELSE now() END; ", insert,
      "VALUES (OLD.tenant, OLD.session_id, CASE WHEN OLD.expires_at ",
      "IS NOT NULL AND OLD.expires_at <= at THEN 3 WHEN split_part(why, ':', 1) = "
      "'ended' THEN 4 ",
      "ELSE 2 END, OLD.version, at); END IF; RETURN NULL; END $f$; ",
      "CREATE TRIGGER session_events AFTER INSERT OR UPDATE OR DELETE ON ", s,
      ".sessions FOR EACH ROW EXECUTE FUNCTION ", s, ".session_event(); ",
      // Numbers what has committed unnumbered (one sequencer at a time; the others
      // go on: what they miss is numbered by the next call); answers the last position.
      "CREATE FUNCTION ", s, ".sequence_events() RETURNS bigint LANGUAGE plpgsql AS $f$ ",
      "DECLARE n bigint; BEGIN ",
      "IF pg_try_advisory_xact_lock(hashtext('sessionctx-events:' || '", s, "')) THEN ",
      "SELECT last INTO n FROM ", s, ".events_state; ",
      "WITH todo AS (SELECT id, n + row_number() OVER (ORDER BY id) AS p FROM ", s,
      ".events WHERE position IS NULL ORDER BY id LIMIT 100000), ", "done AS (UPDATE ", s,
      ".events e SET position = todo.p FROM todo WHERE e.id = todo.id ",
      "RETURNING todo.p) UPDATE ", s,
      ".events_state SET last = COALESCE((SELECT max(p) FROM done), last); ",
      "END IF; RETURN (SELECT last FROM ", s, ".events_state); END $f$; ",
      // A page: first a row (position = last, version = trimmed, type = -1), then the
      // events after p_after (of p_tenant when given) up to last, at most p_limit.
      "CREATE FUNCTION ", s, ".read_events(p_after bigint, p_limit int, p_tenant text) ",
      "RETURNS TABLE (pos bigint, tenant text, session_id text, type smallint, version "
      "bigint, ",
      "at_ms bigint) LANGUAGE plpgsql AS $f$ DECLARE l bigint; t bigint; BEGIN ",
      "PERFORM ", s, ".sequence_events(); SELECT st.last, st.trimmed INTO l, t FROM ", s,
      ".events_state st; ",
      "RETURN QUERY SELECT l, NULL::text, NULL::text, (-1)::smallint, t, 0::bigint; ",
      "IF p_after IS NULL OR p_after < t OR p_after > l THEN RETURN; END IF; ",
      "RETURN QUERY SELECT e.position, e.tenant, e.session_id, e.type, e.version, ",
      "round(extract(epoch from e.at) * 1000)::bigint FROM ", s, ".events e WHERE ",
      "e.position > p_after AND e.position <= l AND (p_tenant IS NULL OR e.tenant = "
      "p_tenant) ",
      "ORDER BY e.position LIMIT p_limit; END $f$; ",
      // Retention: what is past p_count events or older than p_before goes.
      "CREATE FUNCTION ", s,
      ".trim_events(p_count bigint, p_before bigint) RETURNS bigint ",
      "LANGUAGE plpgsql AS $f$ DECLARE l bigint; cut bigint; BEGIN ", "l := ", s,
      ".sequence_events(); cut := greatest(l - p_count, COALESCE((SELECT max(position) ",
      "FROM ", s,
      ".events WHERE position IS NOT NULL AND at < to_timestamp(p_before / 1000.0)), "
      "0)); ",
      "IF cut > (SELECT trimmed FROM ", s, ".events_state) THEN ", "DELETE FROM ", s,
      ".events WHERE position <= cut; ", "UPDATE ", s,
      ".events_state SET trimmed = cut; END IF; RETURN cut; END $f$; ",
      absl::StrReplaceAll(DeleteSessionFunction(s),
                          {{"CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"}}),
      "; ");
}

// Migrations, in order; migration N brings the schema from version N-1 to N.
//
// Custom attributes are rows of their own (jsonb values) rather than one jsonb column:
// adding one is then an insert, not a rewrite of the whole context (measured in
// docs/backends.md). `bytes` tracks each attribute's share of the record's JSON size.
std::vector<std::string> Migrations(const std::string& s) {
  return {
      // 1: the tables.
      absl::StrCat(
          "CREATE TABLE ", s, ".sessions (",
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
          "LANGUAGE plpgsql IMMUTABLE AS $f$ DECLARE result jsonb; k text; v jsonb; "
          "BEGIN ",
          "IF patch IS NULL OR jsonb_typeof(patch) <> 'object' THEN RETURN patch; END "
          "IF; ",
          "IF target IS NULL OR jsonb_typeof(target) <> 'object' THEN result := "
          "'{}'::jsonb; ",
          "ELSE result := target; END IF; ",
          "FOR k, v IN SELECT * FROM jsonb_each(patch) LOOP ",
          "IF jsonb_typeof(v) = 'null' THEN result := result - k; ",
          "ELSE result := jsonb_set(result, ARRAY[k], ", s,
          ".merge_patch(result -> k, v)); ", "END IF; END LOOP; RETURN result; END $f$"),
      // 4: exact record sizes under concurrency. Every write that changes a
      // session's attributes is a function that locks the session row first and only
      // then reads what it changes (each statement of a VOLATILE function takes a new
      // snapshot, so it sees what the writer before it committed): no size is ever
      // computed from a stale row. Sizes are the compact JSON text's, as the core
      // measures them (AttributeBytes, RecordBytes), recomputed once here.
      SizeMigration(s),
      // 5: a customer's sessions, by (tenant, customer): listing and ending them reads
      // the index, not the table. The index is on the session row's own column, so
      // every write that sets or changes customerId moves it in the same transaction.
      absl::StrCat(
          "CREATE INDEX sessions_customer ON ", s,
          ".sessions (tenant, customer_id, session_id) WHERE customer_id IS NOT NULL"),
      // 6: the event feed (see EventsMigration).
      EventsMigration(s),
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

// Columns read back for a record (RecordFrom's order): the base fields in
// kBaseFields' order, the attributes folded into one JSON object, the version, times
// as milliseconds since the epoch.
std::string Columns(const std::string& schema) {
  std::string fields;
  for (const BaseField& f : kBaseFields) absl::StrAppend(&fields, "s.", ColumnOf(f.name), ", ");
  return absl::StrCat(
      fields, "COALESCE((SELECT jsonb_object_agg(a.name, a.value) FROM ", schema, ".attributes a ",
      "WHERE a.tenant = s.tenant AND a.session_id = s.session_id), '{}'::jsonb)::text, ",
      "s.version, round(extract(epoch from s.created_at) * 1000)::bigint, ",
      "round(extract(epoch from s.modified_at) * 1000)::bigint, ",
      "round(extract(epoch from s.expires_at) * 1000)::bigint");
}

std::string Ts(int n) { return absl::StrCat("to_timestamp($", n, "::bigint / 1000.0)"); }

// ReplaceAttributes: the CTEs that replace a session's attribute rows (table `a`) with
// $5's, touching only rows that change; they run only once `gate` (the CTE that wrote
// the session row, holding its lock) returned a row.
std::string ReplaceAttributes(const std::string& a, const std::string& key, const std::string& gate) {
  return absl::StrCat(
      "del AS (DELETE FROM ", a, " WHERE ", key, " AND EXISTS (SELECT 1 FROM ", gate,
      ") AND NOT ($5::jsonb ? name)), ",
      "ins AS (INSERT INTO ", a, " SELECT $1, $2, e.key, e.value, ($12::jsonb ->> e.key)::bigint ",
      "FROM jsonb_each($5::jsonb) e WHERE EXISTS (SELECT 1 FROM ", gate, ") ",
      "ON CONFLICT (tenant, session_id, name) DO UPDATE SET value = EXCLUDED.value, ",
      "bytes = EXCLUDED.bytes WHERE ", a, ".value IS DISTINCT FROM EXCLUDED.value) ");
}

// ImportStatement: "import" (see Statements); `columns` the base fields' columns.
std::string ImportStatement(const std::string& schema, const std::string& columns) {
  const std::string t = schema + ".sessions";
  const std::string a = schema + ".attributes";
   std::string typed, excluded;
   for (const BaseField& f : kBaseFields) {
     const std::string column = ColumnOf(f.name);
     absl::StrAppend(&typed, column, " text, ");
     absl::StrAppend(&excluded, column, " = EXCLUDED.", column, ", ");
   }
   return absl::StrCat(
     "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(tenant text, ",
     "session_id text, ", typed, "version bigint, created bigint, modified ",
     "bigint, expires bigint, record_bytes bigint, context jsonb, bytes jsonb)), ",
     "up AS (INSERT INTO ", t, " (tenant, session_id, ", columns, "version, created_at, ",
     "modified_at, expires_at, record_bytes) SELECT tenant, session_id, ", columns,
     "version, to_timestamp(created / ",
     "1000.0), to_timestamp(modified / 1000.0), CASE WHEN expires IS NULL THEN NULL ELSE ",
     "to_timestamp(expires / 1000.0) END, record_bytes FROM r ON CONFLICT (tenant, ",
     "session_id) DO UPDATE SET ", excluded, "version = EXCLUDED.version, created_at = EXCLUDED.created_at, modified_at = ",
     "EXCLUDED.modified_at, expires_at = EXCLUDED.expires_at, record_bytes = ",
     "EXCLUDED.record_bytes WHERE $2::boolean OR ", t, ".version <= EXCLUDED.version OR (",
     t, ".expires_at IS NOT NULL AND ", t, ".expires_at <= ", Ts(3), ") ",
     "RETURNING tenant, session_id), ",
     "w AS (SELECT r.* FROM r JOIN up USING (tenant, session_id)), ",
     "del AS (DELETE FROM ", a, " x USING w WHERE x.tenant = w.tenant AND x.session_id = ",
     "w.session_id AND NOT (w.context ? x.name)), ",
     "ins AS (INSERT INTO ", a, " SELECT w.tenant, w.session_id, e.key, e.value, (w.bytes ->> ",
     "e.key)::bigint FROM w, jsonb_each(w.context) e ON CONFLICT (tenant, session_id, ",
     "name) DO UPDATE SET value = EXCLUDED.value, bytes = EXCLUDED.bytes) ",
     "SELECT count(*) FROM up");
}

// PatchBaseStatement: "patch_base" (see Statements).
std::string PatchBaseStatement(const std::string& schema) {
  const std::string t = schema + ".sessions";
  const std::string key = "tenant = $1 AND session_id = $2";
  const std::string live = "(expires_at IS NULL OR expires_at > " + Ts(3) + ")";
   const std::string size = absl::StrCat(
       "record_bytes + length((version + 1)::text) - length(version::text)",
       PatchedFieldBytes(schema, "$6::jsonb", ""));
   return absl::StrCat(
       "UPDATE ", t, " SET ", PatchedFieldColumns("$6::jsonb", ""),
       "version = version + 1, modified_at = ", Ts(3), ", expires_at = CASE WHEN ",
       "customer_id IS NULL THEN to_timestamp(($3::bigint + $4::bigint) / 1000.0) END, ",
       "record_bytes = ", size, " WHERE ", key, " AND ", live, " AND version = $5 AND ",
       "($7::boolean IS NOT TRUE OR customer_id IS NULL OR customer_id IS NOT DISTINCT FROM ",
       "$8::text) AND ", size, " <= $9::bigint RETURNING version");
}

// WholeRecord: the pieces of the statements that write a whole record (see
// Statements): the base fields' columns, their values from $4, the expiry from $9,
// and the SET list of every column.
struct WholeRecord {
  std::string columns, values, expiry, set_all;
};

WholeRecord WholeRecordOf() {
  WholeRecord w;
  std::string set_fields;
  for (const BaseField& f : kBaseFields) {
    const std::string column = ColumnOf(f.name);
    absl::StrAppend(&w.columns, column, ", ");
    absl::StrAppend(&w.values, "$4::jsonb ->> '", column, "', ");
    absl::StrAppend(&set_fields, column, " = $4::jsonb ->> '", column, "', ");
  }
  w.expiry = "CASE WHEN $9::bigint IS NULL THEN NULL ELSE " + Ts(9) + " END";
  w.set_all = absl::StrCat(set_fields, "version = $6, created_at = ", Ts(7), ", modified_at = ",
                           Ts(8), ", expires_at = ", w.expiry, ", record_bytes = $11");
  return w;
}

std::vector<std::pair<std::string, std::string>> Statements(const std::string& schema) {
  const std::string t = schema + ".sessions";
  const std::string a = schema + ".attributes";
  const std::string key = "tenant = $1 AND session_id = $2";
  const std::string live = "(expires_at IS NULL OR expires_at > " + Ts(3) + ")";
  // Whole-record writes: $1 tenant, $2 id, $3 now, $4 the base fields ({column:
  // value|null}, FieldsJson), $5 context (json), $6 version, $7 created, $8 modified,
  // $9 expiry (NULL = never), $10 expected version (cas), $11 record bytes, $12
  // {name: bytes} (json). The base fields' columns come from kBaseFields.
  const WholeRecord w = WholeRecordOf();
  const std::string& columns = w.columns;
  const std::string& values = w.values;
  const std::string& expiry = w.expiry;
  const std::string& set_all = w.set_all;
  return {
      {"get",
       absl::StrCat("SELECT ", Columns(schema), " FROM ", t, " s WHERE s.tenant = $1 ",
                    "AND s.session_id = $2 AND (s.expires_at IS NULL OR s.expires_at > ",
                    Ts(3), ")")},
      // Inserts, or takes over an expired record; false means a live one exists.
      {"create",
       absl::StrCat(
           "WITH up AS (INSERT INTO ", t, " (tenant, session_id, ", columns,
           "version, created_at, modified_at, expires_at, record_bytes) VALUES ($1, $2, ",
           values, "$6, ", Ts(7), ", ", Ts(8), ", ", expiry, ", $11) ",
           "ON CONFLICT (tenant, session_id) DO UPDATE SET ", set_all, " WHERE ", t,
           ".expires_at IS NOT NULL AND ", t, ".expires_at <= ", Ts(3), " RETURNING 1), ",
           ReplaceAttributes(a, key, "up"),
           "SELECT EXISTS (SELECT 1 FROM up), $10::bigint IS NULL")},
      // One statement tells success, conflict (current version) and absence apart.
      {"cas",
       absl::StrCat("WITH cur AS (SELECT version FROM ", t, " WHERE ", key, " AND ", live,
                    "), upd AS (UPDATE ", t, " SET ", set_all, " WHERE ", key,
                    " AND version = $10 AND ", live, " RETURNING 1), ",
                    ReplaceAttributes(a, key, "upd"),
                    "SELECT (SELECT version FROM cur), EXISTS (SELECT 1 FROM upd)")},
      {"version", absl::StrCat("SELECT version FROM ", t, " WHERE ", key, " AND ", live)},
      // The setting tells the event trigger why the rows go (EventsMigration).
      {"purge",
       absl::StrCat("WITH why AS (SELECT set_config('sessionctx.delete', 'expired:' || ",
                    "$1::bigint, true)) DELETE FROM ", t,
                    " WHERE expires_at IS NOT NULL AND ",
                    "expires_at <= to_timestamp($1::bigint / 1000.0) AND EXISTS (SELECT ",
                    "1 FROM why)")},
      {"read_events", absl::StrCat("SELECT * FROM ", schema, ".read_events($1, $2, $3)")},
      {"trim_events", absl::StrCat("SELECT ", schema, ".trim_events($1, $2)")},
      // Import: $1 is a JSON array of whole records (ImportJson); each replaces what is
      // stored under its key unless that is live at a newer version (and $2, overwrite,
      // is false); $3 now. Answers how many it wrote. One statement: one round trip,
      // all or nothing.
      {"import", ImportStatement(schema, columns)},
      {"scan",
       absl::StrCat("SELECT s.tenant, s.session_id, ", Columns(schema), " FROM ", t,
                    " s WHERE (s.tenant, s.session_id) > ($1, $2) AND (s.expires_at IS ",
                    "NULL OR s.expires_at > to_timestamp($3::bigint / 1000.0)) ",
                    "ORDER BY s.tenant, s.session_id LIMIT 500")},
      // The writes of migration 4's functions (outcomes there). Each is one prepared
      // statement: one round trip.
      {"set_attribute",
       absl::StrCat("SELECT * FROM ", schema, ".set_attribute($1, $2, $3, $4, $5, ",
                    "$6::jsonb, $7, $8, $9, $10, $11)")},
      {"delete_attribute",
       absl::StrCat("SELECT * FROM ", schema, ".delete_attribute($1, $2, $3, ",
                    "$4, $5, $6, $7, $8)")},
      {"patch",
       absl::StrCat("SELECT * FROM ", schema, ".patch($1, $2, $3, $4, $5, $6::jsonb, ",
                    "$7::jsonb, $8, $9::jsonb, $10, $11, $12)")},
      // A PATCH of base fields alone, the common case: one UPDATE of the session row,
      // its size computed from the row being updated (re-read once it is locked), so
      // exact. No row: the patch function above says why (a second round trip, only
      // then). $5 expected version, $6 {field: value|null}, $7/$8 the guard, $9 limit.
      {"patch_base", PatchBaseStatement(schema)},
      {"delete",
       absl::StrCat("SELECT * FROM ", schema, ".delete_session($1, $2, $3, $4)")},
      // A customer's live sessions after a session id ($3), by id, at most $5; $4 now.
      {"customer_sessions",
       absl::StrCat(
           "SELECT session_id, version, round(extract(epoch from created_at) * "
           "1000)::bigint, ",
           "round(extract(epoch from modified_at) * 1000)::bigint, ",
           "round(extract(epoch from expires_at) * 1000)::bigint FROM ", t,
           " WHERE tenant = $1 AND customer_id = $2 AND session_id > $3 AND (expires_at ",
           "IS NULL OR expires_at > ", Ts(4), ") ORDER BY session_id LIMIT $5")},
      // Ends a customer's sessions but $3 (NULL: none); counts the live ones ($4 now).
      // One statement: the rows it deletes are those of the customer when it runs, a
      // row a concurrent write changed is checked again once that write committed.
      {"end_customer", absl::StrCat("WITH why AS (SELECT set_config('sessionctx.delete', "
                                    "'ended:' || $4::bigint, true)), ",
                                    "d AS (DELETE FROM ", t,
                                    " WHERE tenant = $1 AND customer_id = $2 AND ",
                                    "session_id IS DISTINCT FROM $3 AND EXISTS (SELECT 1 "
                                    "FROM why) RETURNING expires_at) ",
                                    "SELECT count(*) FROM d ",
                                    "WHERE expires_at IS NULL OR expires_at > ", Ts(4))},
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
      if (!options_.events) setup.exec("SET sessionctx.events = 'off'");
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

// AppendImportRow appends one record of an import as the JSON object the "import"
// statement reads: each record is rendered once (its size is the text's), and its
// context and attribute sizes are read off that text.
void AppendImportRow(std::string& rows, const ImportRecord& r) {
  const SessionContext& s = r.record;
  const std::shared_ptr<const SessionText> text =
      backend::TextLayout::FromParts(s, backend::ImportContextJson(r));
  const absl::string_view wire = text->json();
  const absl::string_view context = text->context_json();
  auto field = [&rows](absl::string_view name, const std::optional<std::string>& v) {
    absl::StrAppend(&rows, ",\"", name, "\":");
    if (v) {
      backend::AppendJsonString(rows, *v);
    } else {
      rows += "null";
    }
  };
  rows += "{\"tenant\":";
  backend::AppendJsonString(rows, r.key.tenant);
  field("session_id", r.key.session_id);
  for (const BaseField& f : kBaseFields) field(ColumnOf(f.name), s.*f.member);
  absl::StrAppend(&rows, ",\"version\":", s.version, ",\"created\":", Ms(s.created_at),
                  ",\"modified\":", Ms(s.modified_at), ",\"expires\":",
                  s.expires_at == absl::InfiniteFuture() ? std::string("null")
                                                         : std::to_string(Ms(s.expires_at)),
                  ",\"record_bytes\":", wire.size(), ",\"context\":", context, ",\"bytes\":{");
  bool first = true;
  backend::ForEachMember(context, [&](absl::string_view key, absl::string_view value) {
    absl::StrAppend(&rows, first ? "" : ",", key, ":", backend::MemberBytes(key.size(), value.size()));
    first = false;
  });
  rows += "}}";
}


absl::StatusOr<SessionContext> RecordFrom(const pqxx::row& row, int first,
                                          const std::string& session_id) {
  SessionContext s;
  s.session_id = session_id;
  // Columns()'s order: the base fields, then the rest.
  for (int i = 0; i < kBaseFieldCount; ++i) {
    if (!row[first + i].is_null()) s.*kBaseFields[i].member = row[first + i].as<std::string>();
  }
  const int rest = first + kBaseFieldCount;
  s.context = Json::parse(row[rest].c_str(), nullptr, /*allow_exceptions=*/false);
  if (!s.context.is_object()) return absl::DataLossError("stored context is not an object");
  s.version = row[rest + 1].as<int64_t>();
  s.created_at = absl::FromUnixMillis(row[rest + 2].as<int64_t>());
  s.modified_at = absl::FromUnixMillis(row[rest + 3].as<int64_t>());
  s.expires_at = row[rest + 4].is_null() ? absl::InfiniteFuture()
                                         : absl::FromUnixMillis(row[rest + 4].as<int64_t>());
  return s;
}


class PostgresStore final : public SessionStore {
 public:
  PostgresStore(PgOptions options, const StoreOptions& store_options)
      : pool_(std::move(options)),
        clock_(store_options.clock),
        events_(store_options.events) {}

  std::vector<StoreStat> Stats() override { return pool_.Stats(); }

  absl::StatusOr<SessionContext> Get(const SessionKey& key) override {
    return Run<SessionContext>([&](pqxx::nontransaction& tx) -> absl::StatusOr<SessionContext> {
      pqxx::result r = tx.exec_prepared("get", key.tenant, key.session_id, Now());
      if (r.empty()) return backend::SessionNotFoundError(key);
      return RecordFrom(r[0], 0, key.session_id);
    });
  }

  absl::Status Create(const SessionKey& key, const SessionContext& record) override {
    return Run<bool>([&](pqxx::nontransaction& tx) -> absl::StatusOr<bool> {
             pqxx::row r = WriteWhole(tx, "create", key, record, std::nullopt);
             if (!r[0].as<bool>()) {
               return backend::SessionExistsError(key);
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
             if (r[0].is_null()) return backend::SessionNotFoundError(key);
             if (r[0].as<int64_t>() == expected_version) return RacedConflict(tx, key, expected_version);
             return backend::VersionConflictError(expected_version, r[0].as<int64_t>());
           })
        .status();
  }

  absl::Status Delete(const SessionKey& key, std::optional<int64_t> expected_version) override {
    return Run<bool>([&](pqxx::nontransaction& tx) -> absl::StatusOr<bool> {
             std::string buf;
             pqxx::row r = tx.exec_prepared1("delete", key.tenant, key.session_id, Now(),
                                             VersionParam(expected_version, buf));
             if (absl::Status st = OutcomeStatus(r, key, expected_version); !st.ok()) return st;
             return true;
           })
        .status();
  }

  // The whole batch in one prepared statement (one round trip, one transaction).
  absl::StatusOr<ImportResult> Import(const std::vector<ImportRecord>& records,
                                      const ImportOptions& options) override {
    if (absl::Status st = backend::CheckImportKeys(records); !st.ok()) return st;
    if (records.empty()) return ImportResult{};
    std::string rows = "[";
    for (const ImportRecord& r : records) {
      if (rows.size() > 1) rows.push_back(',');
      AppendImportRow(rows, r);
    }
    rows += "]";
    return Run<ImportResult>([&](pqxx::nontransaction& tx) -> absl::StatusOr<ImportResult> {
      const auto written = tx.exec_prepared1("import", rows, options.overwrite_newer, Now())[0].as<int64_t>();
      return ImportResult{written, static_cast<int64_t>(records.size()) - written};
    });
  }

  absl::StatusOr<int64_t> PurgeExpired() override {
    absl::StatusOr<int64_t> purged =
        Run<int64_t>([&](pqxx::nontransaction& tx) -> absl::StatusOr<int64_t> {
          pqxx::result r = tx.exec_prepared("purge", Now());
          return static_cast<int64_t>(r.affected_rows());
        });
    if (!purged.ok() || !events_.enabled) return purged;
    absl::StatusOr<int64_t> trimmed =
        Run<int64_t>([&](pqxx::nontransaction& tx) -> absl::StatusOr<int64_t> {
          return tx
              .exec_prepared1("trim_events", backend::RetentionCount(events_, 1'000'000),
                              Ms(clock_->Now() - events_.max_age))[0]
              .as<int64_t>();
        });
    if (!trimmed.ok()) return trimmed.status();
    return purged;
  }

  // One round trip: the feed sequenced, then the page read (read_events, migration 6).
  absl::StatusOr<EventPage> ReadEvents(const EventQuery& query) override {
    if (!events_.enabled) return EventsOffError();
    if (absl::Status st = CheckEventQuery(query); !st.ok()) return st;
    std::optional<int64_t> after;
    std::optional<std::string> after_text;  // as the statement's parameter (NULL: none)
    if (!query.after.empty()) {
      absl::StatusOr<uint64_t> parsed = ParseEventPosition(query.after);
      if (!parsed.ok()) return parsed.status();
      // Past any position this feed can reach: refused below as never given.
      after = static_cast<int64_t>(std::min<uint64_t>(*parsed, INT64_MAX));
      after_text = absl::StrCat(*after);
    }
    return Run<EventPage>([&](pqxx::nontransaction& tx) -> absl::StatusOr<EventPage> {
      pqxx::result r = tx.exec_prepared("read_events", CStr(after_text), query.limit,
                                        CStr(query.tenant));
      const int64_t last = r[0][0].as<int64_t>(), trimmed = r[0][4].as<int64_t>();
      EventPage page;
      if (!after) {
        page.next = absl::StrCat(last);
        return page;
      }
      if (*after < trimmed || *after > last) {
        return EventsGoneError(query.after,
                               trimmed < last ? absl::StrCat(trimmed + 1) : "");
      }
      for (size_t i = 1; i < r.size(); ++i) {
        const pqxx::row& row = r[static_cast<pqxx::result::size_type>(i)];
        const int type = row[3].as<int>();
        if (type < 0 || type > 4)
          return absl::DataLossError("postgresql: event of unknown type");
        page.events.push_back({absl::StrCat(row[0].as<int64_t>()),
                               {row[1].as<std::string>(), row[2].as<std::string>()},
                               static_cast<EventType>(type),
                               row[4].as<int64_t>(),
                               absl::FromUnixMillis(row[5].as<int64_t>())});
      }
      page.next = page.events.size() < static_cast<size_t>(query.limit)
                      ? absl::StrCat(last)
                      : page.events.back().position;
      return page;
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

  absl::StatusOr<CustomerSessionPage> ListCustomerSessions(const CustomerKey& customer,
                                                           const std::string& cursor,
                                                           int limit) override {
    if (absl::Status st = backend::CheckCustomerQuery(customer, limit); !st.ok())
      return st;
    return Run<CustomerSessionPage>(
        [&](pqxx::nontransaction& tx) -> absl::StatusOr<CustomerSessionPage> {
          pqxx::result r =
              tx.exec_prepared("customer_sessions", customer.tenant, customer.customer_id,
                               cursor, Now(), limit + 1);
          std::vector<CustomerSession> found;
          for (const pqxx::row& row : r) {
            CustomerSession s;
            s.session_id = row[0].as<std::string>();
            s.version = row[1].as<int64_t>();
            s.created_at = absl::FromUnixMillis(row[2].as<int64_t>());
            s.modified_at = absl::FromUnixMillis(row[3].as<int64_t>());
            s.expires_at = row[4].is_null() ? absl::InfiniteFuture()
                                            : absl::FromUnixMillis(row[4].as<int64_t>());
            found.push_back(std::move(s));
          }
          return backend::PageOf(std::move(found), limit, false);
        });
  }

  absl::StatusOr<int64_t> EndCustomerSessions(
      const CustomerKey& customer, const std::optional<std::string>& keep) override {
    if (absl::Status st = backend::CheckCustomerQuery(customer, std::nullopt); !st.ok())
      return st;
    return Run<int64_t>([&](pqxx::nontransaction& tx) -> absl::StatusOr<int64_t> {
      return tx
          .exec_prepared1("end_customer", customer.tenant, customer.customer_id,
                          CStr(keep), Now())[0]
          .as<int64_t>();
    });
  }

  // One statement, one round trip: the database merges, measures and checks (the
  // patch function of migration 4).
  absl::StatusOr<int64_t> Patch(const SessionKey& key, const PatchWrite& write) override {
    Json base = Json::object();
    for (const BaseField& f : kBaseFields) {
      if (!f.patchable) continue;
      if (auto it = write.body.find(f.name); it != write.body.end()) base[f.name] = *it;
    }
    const auto ctx = write.body.find("context");
    const bool reset = ctx != write.body.end() && ctx->is_null();
    std::optional<std::string> context;  // the merge patch, when there is one
    Json sizes = Json::object();          // members replaced whole, measured here
    if (ctx != write.body.end() && ctx->is_object()) {
      context = ctx->dump();
      for (auto it = ctx->begin(); it != ctx->end(); ++it) {
        if (!it->is_null() && !it->is_object()) sizes[it.key()] = backend::AttributeBytes(it.key(), *it);
      }
    }
    return Run<int64_t>([&](pqxx::nontransaction& tx) -> absl::StatusOr<int64_t> {
      const bool guarded = write.guard.has_value();
      const char* customer = guarded ? CStr(write.guard->customer_id) : nullptr;
      if (ctx == write.body.end()) {
        pqxx::result fast = tx.exec_prepared("patch_base", key.tenant, key.session_id, Ms(write.now),
                                             absl::ToInt64Milliseconds(write.anonymous_ttl),
                                             write.expected_version, base.dump(), guarded, customer,
                                             static_cast<int64_t>(write.max_record_bytes));
        if (!fast.empty()) return fast[0][0].as<int64_t>();
      }
      pqxx::row r = tx.exec_prepared1(
          "patch", key.tenant, key.session_id, Ms(write.now),
          absl::ToInt64Milliseconds(write.anonymous_ttl), write.expected_version, base.dump(),
          CStr(context), reset, sizes.dump(), static_cast<int64_t>(write.max_record_bytes),
          guarded, customer);
      if (absl::Status st = OutcomeStatus(r, key, write.expected_version, write.max_record_bytes); !st.ok()) {
        return st;
      }
      return r[1].as<int64_t>();
    });
  }

  // One statement: the database locks the session, applies the change, measures it
  // and bumps the version (migration 4's functions).
  absl::StatusOr<AttributeResult> UpdateAttribute(const SessionKey& key,
                                                  const AttributeWrite& write) override {
    const int64_t now = Ms(write.now);
    const int64_t ttl = absl::ToInt64Milliseconds(write.anonymous_ttl);
    return Run<AttributeResult>([&](pqxx::nontransaction& tx) -> absl::StatusOr<AttributeResult> {
      const bool guarded = write.guard.has_value();
      const char* customer = guarded ? CStr(write.guard->customer_id) : nullptr;
      std::string buf;
      const char* expected = VersionParam(write.expected_version, buf);
      pqxx::row r =
          write.value
              ? tx.exec_prepared1("set_attribute", key.tenant, key.session_id, now, ttl,
                                  write.name, write.value->dump(),
                                  static_cast<int64_t>(write.max_record_bytes),
                                  static_cast<int64_t>(backend::AttributeBytes(write.name, *write.value)),
                                  guarded, customer, expected)
              : tx.exec_prepared1("delete_attribute", key.tenant, key.session_id, now, ttl,
                                  write.name, guarded, customer, expected);
      if (absl::Status st = OutcomeStatus(r, key, write.expected_version, write.max_record_bytes); !st.ok()) {
        return st;
      }
      return AttributeResult{r[1].as<int64_t>(), r[0].as<int>() == 0};
    });
  }

 private:
  int64_t Now() const { return Ms(clock_->Now()); }

  // OutcomeStatus: the status of a migration-4 function's (outcome, version) row:
  // OK for 0 (written) and 1 (nothing to change).
  static absl::Status OutcomeStatus(const pqxx::row& r, const SessionKey& key,
                                    std::optional<int64_t> expected, size_t max_bytes = 0) {
    switch (r[0].as<int>()) {
      case 0:
      case 1:
        return absl::OkStatus();
      case 2:
        return backend::SessionNotFoundError(key);
      case 3:
        return backend::GuardRefusedError();
      case 4:
        return backend::VersionConflictError(expected.value_or(0), r[1].as<int64_t>());
      case 5:
        return backend::RecordTooLarge(static_cast<size_t>(r[1].as<int64_t>()), max_bytes);
      default:
        return absl::InternalError("postgresql: a write function answered an unknown outcome");
    }
  }

  // A version as a nullable parameter (NULL = none); `buf` keeps the text alive.
  static const char* VersionParam(std::optional<int64_t> v, std::string& buf) {
    if (!v) return nullptr;
    buf = std::to_string(*v);
    return buf.c_str();
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
    if (r.empty()) return backend::SessionNotFoundError(key);
    const int64_t current = r[0][0].as<int64_t>();
    if (current == expected) return absl::AbortedError("the session changed concurrently; read it again");
    return backend::VersionConflictError(expected, current);
  }

  // WriteWhole runs "create" or "cas", the statements that take a whole record.
  pqxx::row WriteWhole(pqxx::nontransaction& tx, const char* statement, const SessionKey& key,
                       const SessionContext& record, std::optional<int64_t> expected) {
    std::string expiry;
    const std::string expected_text = expected ? std::to_string(*expected) : "";
    return tx.exec_prepared1(statement, key.tenant, key.session_id, Now(),
                             FieldsJson(record), backend::JsonText(record.context),
                             record.version, Ms(record.created_at),
                             Ms(record.modified_at), Expiry(record, expiry),
                             expected ? expected_text.c_str() : nullptr,
                             backend::RecordBytes(record), ByteMap(record));
  }

  // FieldsJson: the base fields as {column: value|null}, the parameter the whole-record
  // statements read them from (their columns come from kBaseFields too).
  static std::string FieldsJson(const SessionContext& s) {
    std::string out = "{";
    for (const BaseField& f : kBaseFields) {
      if (out.size() > 1) out.push_back(',');
      backend::AppendJsonString(out, ColumnOf(f.name));
      out.push_back(':');
      if (const std::optional<std::string>& v = s.*f.member) {
        backend::AppendJsonString(out, *v);
      } else {
        out += "null";
      }
    }
    out.push_back('}');
    return out;
  }

  // ByteMap: {name: AttributeBytes} for every attribute, so the database keeps the
  // record size the core would compute.
  static Json ByteMapJson(const SessionContext& s) {
    Json map = Json::object();
    for (auto it = s.context.begin(); it != s.context.end(); ++it) {
      map[it.key()] = backend::AttributeBytes(it.key(), *it);
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
      if ((absl::IsUnavailable(st) && !IsStorageFull(st)) || !(**lease).is_open()) lease->MarkBroken();
      return st;
    }
  }

  Pool pool_;
  const Clock* const clock_;
  const EventOptions events_;
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
  parsed->events = options.events.enabled;
  return std::make_unique<PostgresStore>(*std::move(parsed), options);
}

}  // namespace sessionctx
