// sessionctl: development tokens and store-level commands on any store URI.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "apps/flags.h"
#include "sessionctx/backend_support.h"
#include "sessionctx/base_fields.h"
#include "sessionctx/jwt.h"
#include "sessionctx/session_service.h"
#include "sessionctx/session_store.h"
#include "sessionctx/store_factory.h"
#include "sessionctx/write_rules.h"

namespace sessionctx::apps {
namespace {

constexpr char kUsage[] = R"(usage: sessionctl COMMAND [flags]

  token          mint a development JWT
                   --secret-file FILE (HS256)  or  --private-key-file PEM --alg RS256|ES256
                   --tenant T [--session ID] [--customer ID] [--scope "a b"] [--ttl SECONDS=3600]
                   [--kid KEY-ID]  (the header's kid, for a server on --jwks-file)
  (store URI, tenant and session may also be given as words, in that order:
   sessionctl get rocksdb:./data/sessions acme s1)

  get            --store URI --tenant T --session ID          print the record
  put            --store URI --tenant T --session ID [--json BODY | < BODY]
                   replace (or create) the record with a PUT body, overriding the version
  delete         --store URI --tenant T --session ID
  purge-expired  --store URI                                  remove expired sessions
  sessions       --store URI --tenant T --customer ID         a customer's live sessions,
                   one JSON line each (id, version, times)
  logout         --store URI --tenant T --customer ID [--except SESSION]
                   end the customer's sessions (all, or all but SESSION); prints how many
  export         --store URI [--out FILE]                     JSON Lines, one session a line
  import         --store URI [--in FILE] [--overwrite]        JSON Lines as written by export;
                   a session stored at a newer version is skipped (and counted) unless
                   --overwrite
  events         --store URI [--tenant T] [--after POS|now] [--follow]
                   the event feed, one JSON line per event, after POS (default 0: from
                   the first event kept; now: from the newest); --follow waits for more
                   until stopped (SIGINT/SIGTERM)

  Flags common to store commands: --anonymous-ttl SECONDS (default 3600).
)";

int Fail(const std::string& message) {
  std::fprintf(stderr, "sessionctl: %s\n", message.c_str());
  return 2;
}

int FailStatus(const absl::Status& st) { return Fail(std::string(st.message())); }

std::optional<std::string> Require(const Flags& flags, const std::string& name, std::string& err) {
  std::optional<std::string> v = flags.Get(name);
  if (!v && err.empty()) err = "--" + name + " is required";
  return v;
}

int Token(const Flags& flags) {
  std::string err;
  std::optional<std::string> tenant = Require(flags, "tenant", err);
  const std::optional<std::string> secret_file = flags.Get("secret-file");
  const std::optional<std::string> key_file = flags.Get("private-key-file");
  const std::string kid = flags.Get("kid", "");
  const std::string alg_name = flags.Get("alg", key_file ? "RS256" : "HS256");
  int64_t ttl = 3600;
  if (std::optional<std::string> v = flags.Get("ttl"); v && !absl::SimpleAtoi(*v, &ttl)) {
    err = "--ttl must be an integer number of seconds";
  }
  Json claims = {{"tenant", tenant.value_or("")}};
  if (auto s = flags.Get("session")) claims["sessionId"] = *s;
  if (auto c = flags.Get("customer")) claims["customerId"] = *c;
  if (auto s = flags.Get("scope")) claims["scope"] = *s;
  if (auto u = flags.Unknown(); u && err.empty()) err = "unknown flag --" + *u;
  if (!err.empty()) return Fail(err);
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  claims["iat"] = now;
  claims["exp"] = now + ttl;
  JwtAlgorithm alg;
  if (alg_name == "HS256") {
    alg = JwtAlgorithm::kHS256;
  } else if (alg_name == "RS256") {
    alg = JwtAlgorithm::kRS256;
  } else if (alg_name == "ES256") {
    alg = JwtAlgorithm::kES256;
  } else {
    return Fail("--alg must be HS256, RS256 or ES256");
  }
  std::optional<std::string> key;
  if (alg == JwtAlgorithm::kHS256) {
    if (!secret_file) return Fail("--secret-file is required for HS256");
    key = ReadFile(*secret_file);
    if (!key) return Fail("cannot read " + *secret_file);
    key = StripTrailingNewline(*key);
  } else {
    if (!key_file) return Fail("--private-key-file is required for " + alg_name);
    key = ReadFile(*key_file);
    if (!key) return Fail("cannot read " + *key_file);
  }
  absl::StatusOr<std::string> token = SignJwt(claims, alg, *key, kid);
  if (!token.ok()) return FailStatus(token.status());
  std::printf("%s\n", token->c_str());
  return 0;
}

// Export line: {"tenant": …, "expiresAt": … (anonymous only), "session": {…}}.
Json ExportLine(const SessionKey& key, const SessionContext& s) {
  Json line = {{"tenant", key.tenant}, {"session", ToJson(s)}};
  if (s.expires_at != absl::InfiniteFuture()) line["expiresAt"] = FormatTimestamp(s.expires_at);
  return line;
}

// ParseImportLineDom reads one export line into the record to put in place, through
// a DOM of the whole line.
absl::StatusOr<ImportRecord> ParseImportLineDom(const std::string& text) {
  Json line = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!line.is_object()) return absl::InvalidArgumentError("not a JSON object");
  auto tenant = line.find("tenant");
  if (tenant == line.end() || !tenant->is_string()) {
    return absl::InvalidArgumentError("tenant is missing");
  }
  if (absl::Status st = ValidateTenant(tenant->get<std::string>()); !st.ok()) return st;
  auto session = line.find("session");
  if (session == line.end()) return absl::InvalidArgumentError("session is missing");
  absl::StatusOr<SessionContext> record = SessionContextFromJson(*session);
  if (!record.ok()) return record.status();
  if (record->customer_id) {
    record->expires_at = absl::InfiniteFuture();
  } else if (auto exp = line.find("expiresAt"); exp != line.end() && exp->is_string()) {
    absl::StatusOr<absl::Time> t = ParseTimestamp(exp->get<std::string>());
    if (!t.ok()) return absl::InvalidArgumentError("expiresAt is not a timestamp");
    record->expires_at = *t;
  } else {
    return absl::InvalidArgumentError("expiresAt is required for an anonymous session");
  }
  SessionKey key{tenant->get<std::string>(), record->session_id};
  return ImportRecord{std::move(key), *std::move(record)};
}

// ParseCanonicalLine reads an export line written as export writes it (canonical JSON)
// without a DOM: one pass over the line's members and one over the session's, each
// field checked by SessionContextFromJson's own validators, the context kept as its
// text (ImportRecord::context_json). nullopt for any other line, a string with an
// escape, or a member missing or refused: the DOM then reads it and names the problem.
std::optional<ImportRecord> ParseCanonicalLine(const std::string& text) {
  constexpr int kMaxDepth = 64;
  static const auto* const kQuotedFields = [] {  // each base field's member key, quoted
    auto* fields = new std::vector<std::pair<std::string, const BaseField*>>;
    for (const BaseField& f : kBaseFields)
      fields->push_back({absl::StrCat("\"", f.name, "\""), &f});
    return fields;
  }();
  if (text.empty() || text[0] != '{' || !backend::IsCanonicalJson(text, kMaxDepth)) {
    return std::nullopt;
  }
  // A plain string member: its value without quotes; false if not a string or escaped.
  auto plain = [](absl::string_view v, std::string& out) {
    if (v.size() < 2 || v.front() != '"' || v.find('\\') != absl::string_view::npos)
      return false;
    out = std::string(v.substr(1, v.size() - 2));
    return true;
  };
  absl::string_view tenant_v, expires_v, session_v;
  backend::ForEachMember(text, [&](absl::string_view key, absl::string_view value) {
    if (key == "\"tenant\"") tenant_v = value;
    if (key == "\"expiresAt\"") expires_v = value;
    if (key == "\"session\"") session_v = value;
  });
  ImportRecord r;
  if (!plain(tenant_v, r.key.tenant) || !ValidateTenant(r.key.tenant).ok())
    return std::nullopt;
  if (session_v.empty() || session_v.front() != '{') return std::nullopt;
  SessionContext& s = r.record;
  bool ok = true;
  absl::string_view id_v, context_v, metadata_v;
  backend::ForEachMember(session_v, [&](absl::string_view key, absl::string_view value) {
    if (key == "\"sessionId\"") id_v = value;
    if (key == "\"context\"") context_v = value;
    if (key == "\"metadata\"") metadata_v = value;
    for (const auto& [quoted, f] : *kQuotedFields) {
      if (key != quoted) continue;
      std::string field;
      ok = ok && plain(value, field) &&
           (f->validate == nullptr || f->validate(field).ok());
      s.*f->member = std::move(field);
    }
  });
  if (!ok || !plain(id_v, s.session_id) || !ValidateSessionId(s.session_id).ok())
    return std::nullopt;
  if (!context_v.empty()) {
    if (context_v.front() != '{') return std::nullopt;
    r.context_json = std::string(context_v);
  }
  if (metadata_v.empty() || metadata_v.front() != '{') return std::nullopt;
  absl::string_view version_v, created_v, modified_v;
  backend::ForEachMember(metadata_v, [&](absl::string_view key, absl::string_view value) {
    if (key == "\"version\"") version_v = value;
    if (key == "\"createdAt\"") created_v = value;
    if (key == "\"modifiedAt\"") modified_v = value;
  });
  // A canonical integer has no '.' or exponent and at most 18 digits.
  if (version_v.find_first_of(".eE") != absl::string_view::npos ||
      !absl::SimpleAtoi(version_v, &s.version) || s.version < 1) {
    return std::nullopt;
  }
  std::string created, modified;
  if (!plain(created_v, created) || !plain(modified_v, modified)) return std::nullopt;
  absl::StatusOr<absl::Time> created_at = ParseTimestamp(created);
  absl::StatusOr<absl::Time> modified_at = ParseTimestamp(modified);
  if (!created_at.ok() || !modified_at.ok()) return std::nullopt;
  s.created_at = *created_at;
  s.modified_at = *modified_at;
  if (s.customer_id) {
    s.expires_at = absl::InfiniteFuture();
  } else {
    std::string expires;
    if (!plain(expires_v, expires)) return std::nullopt;
    absl::StatusOr<absl::Time> t = ParseTimestamp(expires);
    if (!t.ok()) return std::nullopt;
    s.expires_at = *t;
  }
  r.key.session_id = s.session_id;
  return r;
}

// ParseImportLine reads one export line into the record to put in place: without a
// DOM when the line is as export writes it, else through one.
absl::StatusOr<ImportRecord> ParseImportLine(const std::string& text) {
  if (std::optional<ImportRecord> r = ParseCanonicalLine(text)) return *std::move(r);
  return ParseImportLineDom(text);
}

// Importer hands parsed lines to the store's bulk import in batches (rocksdb: held
// and put in place as table files at the end; postgresql: one SQL statement each),
// keeps per-line error reports, and shows progress on a terminal. A batch is handed
// over on a second thread while the next one is parsed; batches land in order.
class Importer {
 public:
  static constexpr size_t kBatch = 2000;
  // Batches handed over at once (a connection each on postgresql:): the database
  // works on one while the next is sent. Batches in flight never share a session.
  static constexpr size_t kWriters = 2;

  Importer(SessionStore& store, int64_t total_bytes, ImportOptions options)
      : bulk_(store.BeginImport(options)),
        total_bytes_(total_bytes),
        tty_(isatty(STDERR_FILENO)),
        start_(absl::Now()),
        last_report_(start_) {}

  ~Importer() { WaitWrites(0); }

  // Add takes one input line; lines are parsed a chunk at a time, on two threads.
  void Add(int64_t line_no, std::string text) {
    read_bytes_ += static_cast<int64_t>(text.size()) + 1;
    if (text.find_first_not_of(" \t\r") == std::string::npos) return;
    raw_.push_back(std::move(text));
    raw_lines_.push_back(line_no);
    if (raw_.size() >= kBatch) ParseChunk();
  }

  // ParseChunk parses the buffered lines (the second half on a helper thread), then
  // queues the records in input order.
  void ParseChunk() {
    std::vector<absl::StatusOr<ImportRecord>> parsed(raw_.size(), absl::UnknownError(""));
    const size_t half = raw_.size() / 2;
    auto parse = [&](size_t from, size_t to) {
      for (size_t i = from; i < to; ++i) parsed[i] = ParseImportLine(raw_[i]);
    };
    std::future<void> helper = std::async(std::launch::async, parse, half, raw_.size());
    parse(0, half);
    helper.wait();
    for (size_t i = 0; i < parsed.size(); ++i) Queue(raw_lines_[i], std::move(parsed[i]));
    raw_.clear();
    raw_lines_.clear();
  }

  void Queue(int64_t line_no, absl::StatusOr<ImportRecord> record) {
    if (!record.ok()) return Fail(line_no, record.status());
    // A session again (in this batch or one in flight): the earlier line must land
    // first, so its batch is handed over, and every batch in flight waited for,
    // before the later one is sent.
    std::string key = absl::StrCat(record->key.tenant, "/", record->key.session_id);
    const bool flying =
        std::any_of(flying_keys_.begin(), flying_keys_.end(),
                    [&key](const auto& keys) { return keys.contains(key); });
    if (keys_.contains(key) || flying) {
      Flush();
      WaitWrites(0);
    }
    keys_.insert(std::move(key));
    batch_.push_back(*std::move(record));
    lines_.push_back(line_no);
    if (batch_.size() >= kBatch) Flush();
  }

  // Flush hands the batch to a writer (once fewer than kWriters are busy).
  void Flush() {
    WaitWrites(kWriters - 1);
    if (!batch_.empty()) {
      writing_.push_back(
          std::async(std::launch::async,
                     [this, batch = std::move(batch_),
                      lines = std::move(lines_)]() mutable { Write(batch, lines); }));
      flying_keys_.push_back(std::move(keys_));
      batch_.clear();
      lines_.clear();
      keys_.clear();
    }
    Progress();
  }

  // Finish writes what is left and prints the summary line; returns the exit code.
  int Finish() {
    ParseChunk();
    Flush();
    WaitWrites(0);
    if (absl::StatusOr<ImportResult> r = bulk_->Finish(); r.ok()) {
      imported_ += r->written;
      skipped_ += r->skipped;
    } else {
      ++failed_;
      std::fprintf(stderr, "%simport failed: %s\n", tty_ ? "\r\033[K" : "",
                   std::string(r.status().message()).c_str());
    }
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start_);
    std::fprintf(stderr,
                 "%simported %lld sessions, %lld skipped (stored at a newer version), %lld lines "
                 "failed, in %.1f s (%.0f sessions/s)\n",
                 tty_ ? "\r\033[K" : "", static_cast<long long>(imported_.load()),
                 static_cast<long long>(skipped_.load()), static_cast<long long>(failed_.load()), seconds,
                 seconds > 0 ? static_cast<double>(imported_.load()) / seconds : 0.0);
    return failed_.load() == 0 ? 0 : 1;
  }

 private:
  // WaitWrites waits until at most `most` batches are being written, oldest first.
  void WaitWrites(size_t most) {
    while (writing_.size() > most) {
      writing_.front().wait();
      writing_.pop_front();
      flying_keys_.pop_front();
    }
  }

  void Write(std::vector<ImportRecord>& batch, const std::vector<int64_t>& lines) {
    const int64_t size = static_cast<int64_t>(batch.size());
    if (absl::StatusOr<ImportResult> r = bulk_->Add(batch); r.ok()) {
      imported_ += r->written;
      skipped_ += r->skipped;
      handed_ += size;
      return;
    }
    for (size_t i = 0; i < batch.size(); ++i) {  // tell which lines: each on its own
      std::vector<ImportRecord> one = {std::move(batch[i])};
      absl::StatusOr<ImportResult> r = bulk_->Add(one);
      if (r.ok()) {
        ++handed_;
        imported_ += r->written;
        skipped_ += r->skipped;
      } else {
        Fail(lines[i], r.status());
      }
    }
  }

  void Fail(int64_t line_no, const absl::Status& st) {
    ++failed_;
    std::fprintf(stderr, "%sline %lld: %s\n", tty_ ? "\r\033[K" : "",
                 static_cast<long long>(line_no), std::string(st.message()).c_str());
  }

  // Progress: count, rate and (reading a file) the share done and the time left.
  void Progress() {
    if (!tty_) return;
    const absl::Time now = absl::Now();
    if (now - last_report_ < absl::Milliseconds(500)) return;
    last_report_ = now;
    const double seconds = absl::ToDoubleSeconds(now - start_);
    const int64_t imported = handed_.load();
    const double rate = seconds > 0 ? static_cast<double>(imported) / seconds : 0;
    std::string eta;
    if (total_bytes_ > 0 && read_bytes_ > 0) {
      const double done = std::min(1.0, static_cast<double>(read_bytes_) / total_bytes_);
      const double left = done > 0 ? seconds * (1 - done) / done : 0;
      eta = absl::StrFormat(", %.0f%%, about %.0f s left", done * 100, left);
    }
    std::fprintf(stderr, "\r\033[Kread %lld (%.0f/s), failed %lld%s",
                 static_cast<long long>(imported), rate,
                 static_cast<long long>(failed_.load()), eta.c_str());
  }

  const std::unique_ptr<BulkImport> bulk_;
  const int64_t total_bytes_;  // 0 when unknown (standard input)
  const bool tty_;
  const absl::Time start_;
  absl::Time last_report_;
  std::vector<std::string> raw_;  // lines read, not parsed yet
  std::vector<int64_t> raw_lines_;
  std::vector<ImportRecord> batch_;
  std::vector<int64_t> lines_;
  absl::flat_hash_set<std::string> keys_;
  std::deque<std::future<void>> writing_;  // the batches being handed over, oldest first
  std::deque<absl::flat_hash_set<std::string>> flying_keys_;  // their sessions
  std::atomic<int64_t> imported_{0}, skipped_{0}, failed_{0};
  std::atomic<int64_t> handed_{0};  // records the bulk import took
  int64_t read_bytes_ = 0;
};

// StoreArgs: what the store commands read from the command line.
struct StoreArgs {
  std::string uri;
  int64_t ttl = 3600;
  std::optional<std::string> tenant, session, json, out_file, in_file, customer, except;
  bool overwrite = false;
  std::string after = "0";  // events
  bool follow = false;      // events
};

// ReadStoreArgs: positional words stand in for the flags, in order: URI [TENANT
// SESSION]. An error message, or "" on success.
std::string ReadStoreArgs(const std::string& command, Flags& flags, StoreArgs& args) {
  const char* order[] = {"store", "tenant", "session"};
  for (size_t i = 0; i < flags.positional().size() && i < 3; ++i) {
    if (!flags.Has(order[i])) flags.Set(order[i], flags.positional()[i]);
  }
  std::string err;
  args.uri = Require(flags, "store", err).value_or("");
  if (auto v = flags.Get("anonymous-ttl"); v && !absl::SimpleAtoi(*v, &args.ttl)) {
    err = "--anonymous-ttl must be an integer";
  }
  if (command == "get" || command == "put" || command == "delete") {
    args.tenant = Require(flags, "tenant", err);
    args.session = Require(flags, "session", err);
    args.json = flags.Get("json");
  }
  if (command == "sessions" || command == "logout") {
    args.tenant = Require(flags, "tenant", err);
    args.customer = Require(flags, "customer", err);
    if (command == "logout") args.except = flags.Get("except");
  }
  if (command == "events") {
    args.tenant = flags.Get("tenant");
    args.after = flags.Get("after", "0");
    args.follow = flags.Get("follow") == "true";
  }
  args.out_file = flags.Get("out");
  args.in_file = flags.Get("in");
  args.overwrite = command == "import" && flags.Get("overwrite") == "true";
  if (auto u = flags.Unknown(); u && err.empty()) err = "unknown flag --" + *u;
  return err;
}

// Put: an operator's put, upserting over whatever version is stored.
int Put(SessionService& service, const SessionKey& key, const std::optional<std::string>& json) {
  std::string text = json ? *json : std::string(std::istreambuf_iterator<char>(std::cin), {});
  absl::StatusOr<Json> body = ParseJsonBody(text, service.options().limits.max_json_depth);
  if (!body.ok()) return FailStatus(body.status());
  if (!body->is_object()) return Fail("the body must be a JSON object");
  body->erase("metadata");  // an operator's put overrides the version check
  for (int attempt = 0; attempt < 16; ++attempt) {
    PutOptions put;
    put.upsert = true;
    absl::StatusOr<SessionContext> current = service.Get(key);
    if (current.ok()) put.if_match = current->version;
    absl::StatusOr<PutResult> r = service.Put(key, *body, put);
    if (absl::IsAborted(r.status())) continue;
    if (!r.ok()) return FailStatus(r.status());
    std::printf("%s\n", ToJson(r->record).dump(2).c_str());
    return 0;
  }
  return Fail("the session kept changing; try again");
}

// ListSessions: every page of a customer's live sessions, one JSON line each.
int ListSessions(const SessionService& service, const CustomerKey& customer) {
  std::string cursor;
  int64_t count = 0;
  do {
    absl::StatusOr<CustomerSessionPage> page =
        service.ListCustomerSessions(customer, cursor, kMaxCustomerPage);
    if (!page.ok()) return FailStatus(page.status());
    for (const CustomerSession& s : page->sessions) {
      const Json line = ToJson(s);
      std::printf("%s\n",
                  line.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
      ++count;
    }
    cursor = page->next_cursor;
  } while (!cursor.empty());
  std::fprintf(stderr, "%lld sessions\n", static_cast<long long>(count));
  return 0;
}

// Export: every live session, one JSON line each, to `out_file` or standard output.
int Export(SessionStore& store, const std::optional<std::string>& out_file) {
  std::ofstream file;
  if (out_file) {
    file.open(*out_file);
    if (!file) return Fail("cannot write " + *out_file);
  }
  std::ostream& out = out_file ? file : std::cout;
  int64_t count = 0;
  absl::Status st = store.ForEach([&](const SessionKey& key, const SessionContext& s) {
    out << ExportLine(key, s).dump() << '\n';
    ++count;
    return true;
  });
  out.flush();
  if (!st.ok()) return FailStatus(st);
  std::fprintf(stderr, "exported %lld sessions\n", static_cast<long long>(count));
  return 0;
}

// Import: the lines of an export, from `in_file` or standard input.
int Import(SessionStore& store, const std::optional<std::string>& in_file, bool overwrite) {
  std::ifstream file;
  int64_t total_bytes = 0;
  if (in_file) {
    file.open(*in_file);
    if (!file) return Fail("cannot read " + *in_file);
    std::error_code ec;
    total_bytes = static_cast<int64_t>(std::filesystem::file_size(*in_file, ec));
    if (ec) total_bytes = 0;
  }
  std::istream& in = in_file ? file : std::cin;
  ImportOptions import_options;
  import_options.overwrite_newer = overwrite;
  Importer importer(store, total_bytes, import_options);
  int64_t line_no = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    importer.Add(line_no, std::move(line));
    line.clear();
  }
  return importer.Finish();
}

// Events: the feed from `after` ("now": the newest), a JSON line per event, flushed
// as it goes; with `follow`, waits for more (polling) until the process is stopped.
int Events(SessionStore& store, const std::optional<std::string>& tenant,
           std::string after, bool follow) {
  if (after == "now") after = "";
  for (;;) {
    absl::StatusOr<EventPage> page =
        store.ReadEvents({.after = after, .limit = 1000, .tenant = tenant});
    if (!page.ok()) return FailStatus(page.status());
    for (const SessionEvent& e : page->events)
      std::printf("%s\n", ToJson(e).dump().c_str());
    std::fflush(stdout);
    after = page->next;
    if (page->events.empty()) {
      if (!follow) return 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
}

int StoreCommand(const std::string& command, Flags& flags) {
  StoreArgs args;
  if (std::string err = ReadStoreArgs(command, flags, args); !err.empty()) return Fail(err);
  absl::StatusOr<std::unique_ptr<SessionStore>> store = OpenSessionStore(args.uri, StoreOptions{});
  if (!store.ok()) {
    return Fail(absl::StrCat("cannot open ", RedactedStoreUri(args.uri), ": ",
                             store.status().message()));
  }
  ServiceOptions options;
  options.anonymous_ttl = absl::Seconds(args.ttl);
  SessionService service(store->get(), options);
  if (command == "get") {
    absl::StatusOr<SessionContext> s = service.Get({*args.tenant, *args.session});
    if (!s.ok()) return FailStatus(s.status());
    std::printf("%s\n", ToJson(*s).dump(2).c_str());
    return 0;
  }
  if (command == "delete") {
    absl::Status st = service.Delete({*args.tenant, *args.session});
    return st.ok() ? 0 : FailStatus(st);
  }
  if (command == "put") return Put(service, {*args.tenant, *args.session}, args.json);
  if (command == "purge-expired") {
    absl::StatusOr<int64_t> n = service.PurgeExpired();
    if (!n.ok()) return FailStatus(n.status());
    std::printf("purged %lld expired sessions\n", static_cast<long long>(*n));
    return 0;
  }
  if (command == "sessions") return ListSessions(service, {*args.tenant, *args.customer});
  if (command == "logout") {
    absl::StatusOr<int64_t> n =
        service.EndCustomerSessions({*args.tenant, *args.customer}, args.except);
    if (!n.ok()) return FailStatus(n.status());
    std::printf("ended %lld sessions\n", static_cast<long long>(*n));
    return 0;
  }
  if (command == "export") return Export(**store, args.out_file);
  if (command == "import") return Import(**store, args.in_file, args.overwrite);
  if (command == "events") return Events(**store, args.tenant, args.after, args.follow);
  return Fail("unknown command " + command);
}

int Main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "help") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  Flags flags;
  if (std::string err = flags.Parse(argc, argv, 2, {"overwrite", "follow"});
      !err.empty()) {
    return Fail(err);
  }
  if (command == "token") return Token(flags);
  for (const char* c : {"get", "put", "delete", "purge-expired", "sessions", "logout",
                        "export", "import", "events"}) {
    if (command == c) return StoreCommand(command, flags);
  }
  return Fail("unknown command " + command + "\n" + kUsage);
}

}  // namespace
}  // namespace sessionctx::apps

int main(int argc, char** argv) { return sessionctx::apps::Main(argc, argv); }
