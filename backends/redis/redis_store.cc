// The redis:// backend: one hash per session (redis_scripts.h has the layout), every
// write one Lua script run atomically by the server, every read one HGETALL.
#include "sessionctx/redis_store.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "backends/redis/redis_client.h"
#include "backends/redis/redis_record.h"
#include "backends/redis/redis_router.h"
#include "backends/redis/redis_scripts.h"
#include "sessionctx/backend_support.h"
#include "sessionctx/base_fields.h"
#include "sessionctx/event_support.h"
#include "sessionctx/write_rules.h"

namespace sessionctx {
namespace {

using redis::Command;
using redis::Ms;
using redis::Reply;
using redis::Script;
using redis::StoredOf;
using redis::StoredRecord;
using redis::Str;

// Guard: the scripts' form of a customer guard ('' none, '-' anonymous only,
// '=' and the quoted customer id).
std::string Guard(const std::optional<CustomerGuard>& guard) {
  if (!guard) return "";
  if (!guard->customer_id) return "-";
  return "=" + backend::QuotedJsonString(*guard->customer_id);
}

std::string Expected(std::optional<int64_t> version) {
  return version ? absl::StrCat(*version) : std::string();
}

// ScriptReply: a script's {code, value}, and for the writes that may change a
// session's customer, the customerId the key held before (quoted; empty: none).
struct ScriptReply {
  int code = 0;
  int64_t value = 0;
  std::string was;
};

// Unquoted: a customerId as the hash keeps it (a quoted JSON string), read back.
std::optional<std::string> Unquoted(const std::string& quoted) {
  if (quoted.empty()) return std::nullopt;
  Json parsed = Json::parse(quoted, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_string()) return std::nullopt;
  return parsed.get<std::string>();
}

class RedisStore final : public SessionStore {
 public:
  RedisStore(redis::RedisOptions options, const StoreOptions& store_options)
      : router_(std::move(options)),
        clock_(store_options.clock),
        events_(store_options.events),
        feed_(events_.enabled),
        bucketed_(router_.options().cluster),
        buckets_(bucketed_ ? redis::kBuckets : 1) {
    const std::string& prefix = router_.options().prefix;
    for (int b = 0; b < buckets_; ++b) {
      if (!bucketed_) {
        events_keys_.push_back(prefix + "events");
        expiry_keys_.push_back(prefix + "expiry");
        break;
      }
      const std::string& tag = redis::BucketTag(b);
      events_keys_.push_back(absl::StrCat(prefix, "events:{", tag, "}"));
      expiry_keys_.push_back(absl::StrCat(prefix, "expiry:{", tag, "}"));
      bucket_of_tag_[tag] = b;
    }
    redis::ScriptSettings settings;
    settings.events = feed_;
    settings.keep = Kept();
    settings.grace_ms = absl::ToInt64Milliseconds(kExpiryGrace);
    settings.prefix = prefix;
    settings.bucketed = bucketed_;
    for (int i = 0; i < redis::kScriptCount; ++i) {
      sources_[i] = redis::ScriptSource(static_cast<Script>(i), settings);
    }
  }

  // Connect checks the servers answer (a cluster: learns its slot map) and loads the
  // scripts on every master (EVALSHA from then on; a node that joins later, or lost
  // them, gets them by EVAL).
  absl::Status Connect() {
    if (absl::Status st = router_.Discover(); !st.ok()) return st;
    if (absl::Status st = CheckLayout(); absl::IsUnavailable(st)) {
      // A master failing over: the store opens as it did before the check (a cluster
      // of the older layout is then found at the next open).
      std::fprintf(stderr,
                   "sessionctx redis: the cluster's key layout could not be checked "
                   "now (%s)\n",
                   std::string(st.message()).c_str());
    } else if (!st.ok()) {
      return st;
    }
    std::vector<Command> loads(redis::kScriptCount);
    std::vector<Command*> commands;
    for (int i = 0; i < redis::kScriptCount; ++i) {
      loads[i].Add("SCRIPT").Add("LOAD").Add(sources_[i]);
      commands.push_back(&loads[i]);
    }
    // A cluster's master that cannot be reached now (failing over) gets the scripts
    // later, by EVAL; the store opens when one master has loaded them.
    bool warned = false, loaded = false;
    absl::Status unreachable =
        absl::UnavailableError("redis: no master to load scripts on");
    for (redis::Pool* pool : router_.Masters()) {
      absl::StatusOr<redis::Pool::Lease> lease = pool->Acquire();
      absl::StatusOr<std::vector<Reply>> replies =
          lease.ok() ? (*lease)->Pipeline(commands)
                     : absl::StatusOr<std::vector<Reply>>(lease.status());
      if (!replies.ok()) {
        unreachable = replies.status();
        continue;
      }
      for (int i = 0; i < redis::kScriptCount; ++i) {
        const redisReply* r = (*replies)[i].get();
        if (r->type == REDIS_REPLY_ERROR) return redis::ReplyError(Str(r));
        if (r->type != REDIS_REPLY_STRING)
          return absl::InternalError("redis: SCRIPT LOAD answered no sha");
        shas_[i] = std::string(Str(r));
      }
      if (!warned) warned = WarnOfEviction(**lease);
      loaded = true;
    }
    return loaded ? absl::OkStatus() : unreachable;
  }

  // WarnOfEviction: a line on stderr when Redis may evict keys to make room
  // (maxmemory-policy other than noeviction): evicted sessions would be lost without
  // an error. Says nothing when CONFIG is not allowed (a managed Redis).
  // True when it warned.
  static bool WarnOfEviction(redis::Connection& conn) {
    Command c;
    c.Add("CONFIG").Add("GET").Add("maxmemory-policy");
    absl::StatusOr<Reply> r = conn.Call(c);
    if (!r.ok() || (*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != 2) return false;
    const absl::string_view policy = Str((*r)->element[1]);
    if (policy == "noeviction") return false;
    std::fprintf(
        stderr,
        "sessionctx redis: maxmemory-policy is %.*s: Redis may evict sessions when "
        "full; set it to noeviction, so that a full Redis refuses writes (507)\n",
        static_cast<int>(policy.size()), policy.data());
    return true;
  }

  absl::StatusOr<SessionContext> Get(const SessionKey& key) override {
    absl::StatusOr<std::shared_ptr<const SessionText>> text = GetText(key);
    if (!text.ok()) return text.status();
    return (*text)->Record();
  }

  absl::StatusOr<std::shared_ptr<const SessionText>> GetText(
      const SessionKey& key) override {
    const std::string k = Key(key);
    Command c;
    c.Add("HGETALL").Add(k);
    absl::StatusOr<Reply> r = router_.Call(k, c);
    if (!r.ok()) return r.status();
    return TextFrom(key, r->get());
  }

  // The asynchronous reads go to a thread of their own (ReadLoop), started on the
  // first one, which sends all that are waiting in one pipeline on its connection.
  bool GetTextAsync(const SessionKey& key, TextCallback& done) override {
    std::call_once(reader_started_,
                   [this] { reader_ = std::thread([this] { ReadLoop(); }); });
    std::lock_guard<std::mutex> lock(read_mu_);
    reads_.push_back(PendingRead{key, std::move(done)});
    if (reader_waiting_) read_cv_.notify_one();
    return true;
  }

  ~RedisStore() override {
    {
      std::lock_guard<std::mutex> lock(read_mu_);
      stopping_ = true;
      read_cv_.notify_one();
    }
    if (reader_.joinable()) reader_.join();
  }

  absl::Status Create(const SessionKey& key, const SessionContext& record) override {
    const absl::Time now = clock_->Now();
    StoredRecord stored = StoredOf(key, record, now);
    const std::string at = Ms(now);
    Command c;
    c.Add(at).Add(stored.ttl);
    if (absl::Status st = IndexBefore(key, record); !st.ok()) return st;
    absl::StatusOr<ScriptReply> r = Run(redis::kCreate, Key(key), c, &stored.fields);
    if (!r.ok()) return r.status();
    if (r->code == redis::kExists) return backend::SessionExistsError(key);
    if (r->code == redis::kOk) IndexAfter(key, r->was, record);
    return Expect(*r, key);
  }

  absl::Status CompareAndSet(const SessionKey& key, int64_t expected_version,
                             const SessionContext& record) override {
    const absl::Time now = clock_->Now();
    StoredRecord stored = StoredOf(key, record, now);
    const std::string at = Ms(now), expected = absl::StrCat(expected_version);
    Command c;
    c.Add(at).Add(expected).Add(stored.ttl);
    if (absl::Status st = IndexBefore(key, record); !st.ok()) return st;
    absl::StatusOr<ScriptReply> r = Run(redis::kReplace, Key(key), c, &stored.fields);
    if (!r.ok()) return r.status();
    if (r->code == redis::kOk) IndexAfter(key, r->was, record);
    return Expect(*r, key, expected_version);
  }

  using SessionStore::Delete;
  absl::Status Delete(const SessionKey& key,
                      std::optional<int64_t> expected_version) override {
    const std::string at = Ms(clock_->Now()), expected = Expected(expected_version);
    Command c;
    c.Add(at).Add(expected);
    absl::StatusOr<ScriptReply> r = Run(redis::kDelete, Key(key), c);
    if (!r.ok()) return r.status();
    if (r->code == redis::kOk) IndexAfter(key, r->was, SessionContext{});
    return Expect(*r, key, expected_version.value_or(0));
  }

  // Without a feed, Redis deletes expired sessions itself (each anonymous session
  // carries its own expiry): nothing is left to scan. With one, the sweep script
  // expires what is due, with its events, and trims the feed.
  // CheckLayout: a cluster's keys are of this release's layout (redis_router.h): the
  // marker key "<prefix>layout" says so, or (none yet) no master holds a session of
  // the layout before buckets, and the marker is set. A cluster store of that older
  // layout is refused (FailedPrecondition), never shown empty; Unavailable when a
  // master cannot be asked now.
  absl::Status CheckLayout();
  // ScanSessionKeys: SCAN on every master for the keys of sessions ("<prefix>{*"),
  // `count` a page; `page` gets each page's names (an array reply), false stops.
  absl::Status ScanSessionKeys(int count,
                               const std::function<bool(const redisReply* names)>& page);
  absl::StatusOr<int64_t> PurgeExpired() override;
  absl::StatusOr<EventPage> ReadEvents(const EventQuery& query) override;
  absl::StatusOr<std::vector<uint64_t>> ParsePosition(const std::string& position) const;
  std::string FormatPosition(const std::vector<uint64_t>& at) const;

  absl::Status ForEach(const std::function<bool(const SessionKey&,
                                                const SessionContext&)>& visit) override;

  absl::StatusOr<AttributeResult> UpdateAttribute(const SessionKey& key,
                                                  const AttributeWrite& write) override {
    const std::string at = Ms(write.now), ttl = TtlOf(write.anonymous_ttl),
                      max = absl::StrCat(write.max_record_bytes),
                      guard = Guard(write.guard),
                      expected = Expected(write.expected_version),
                      field = backend::QuotedJsonString(write.name);
    std::string value;
    Command c;
    c.Add(at).Add(ttl).Add(max).Add(guard).Add(expected).Add(field);
    if (write.value) {
      value = write.value->dump();
      c.Add(value);
    }
    absl::StatusOr<ScriptReply> r = Run(redis::kAttribute, Key(key), c);
    if (!r.ok()) return r.status();
    if (r->code == redis::kUnchanged) return AttributeResult{r->value, false};
    if (absl::Status st =
            Expect(*r, key, write.expected_version.value_or(0), write.max_record_bytes);
        !st.ok()) {
      return st;
    }
    return AttributeResult{r->value, true};
  }

  absl::StatusOr<int64_t> Patch(const SessionKey& key, const PatchWrite& write) override;
  // MergeStored: for a PATCH the script answered kMerge, the stored values of the
  // members in `merges` read and merged with their patches, and the script's
  // arguments `c` changed to set them (`merged` keeps the texts).
  absl::Status MergeStored(const std::string& key, Command& c,
                           const std::vector<std::pair<int, const Json*>>& merges,
                           std::deque<std::string>& merged);

  absl::StatusOr<ImportResult> Import(const std::vector<ImportRecord>& records,
                                      const ImportOptions& options) override;

  absl::StatusOr<CustomerSessionPage> ListCustomerSessions(const CustomerKey& customer,
                                                           const std::string& cursor,
                                                           int limit) override;
  absl::StatusOr<int64_t> EndCustomerSessions(
      const CustomerKey& customer, const std::optional<std::string>& keep) override;

  absl::Status Ready() override { return router_.Ready(); }

  std::vector<StoreStat> Stats() override { return router_.Stats(); }

 private:
  absl::StatusOr<std::vector<std::string>> IndexMembers(const std::string& index);
  // IndexKey: a customer's index (redis_scripts.h).
  std::string IndexKey(const std::string& tenant, const std::string& customer) const {
    return absl::StrCat(router_.options().prefix, "customer:{", tenant, "/", customer,
                        "}");
  }
  // IndexCommand: `c` (empty) made the kIndex script's EVALSHA adding `key` to
  // `customer`'s index. (Filled in place: a Command's views point into itself.)
  void IndexCommand(Command& c, const SessionKey& key, const std::string& customer,
                    absl::Time expires_at) const {
    c.Add("EVALSHA")
        .Add(shas_[redis::kIndex])
        .Add("1")
        .Own(IndexKey(key.tenant, customer));
    c.Own(Ms(clock_->Now()))
        .Own(expires_at == absl::InfiniteFuture() ? std::string("inf") : Ms(expires_at))
        .Add(key.session_id);
  }
  // IndexBefore: a session about to be written with a customer is added to that
  // customer's index first, so that the index never lacks it.
  absl::Status IndexBefore(const SessionKey& key, const SessionContext& record) {
    if (!record.customer_id) return absl::OkStatus();
    std::vector<Command> add(1);
    IndexCommand(add[0], key, *record.customer_id, record.expires_at);
    return RunAll(redis::kIndex, add).status();
  }
  // IndexAfter: once a write landed on a session that held customer `was` (quoted)
  // and now holds `record`'s: added again where the customer changed (a reader may
  // have pruned the first entry while the session was not yet the customer's), and
  // taken out of the old customer's index. Best effort: an entry left behind is
  // pruned by the next reader of that index.
  void IndexAfter(const SessionKey& key, const std::string& was,
                  const SessionContext& record) {
    const std::optional<std::string> before = Unquoted(was);
    if (before == record.customer_id) return;
    if (record.customer_id) (void)IndexBefore(key, record);
    if (before) {
      const std::string index = IndexKey(key.tenant, *before);
      Command zrem;
      zrem.Add("ZREM").Add(index).Add(key.session_id);
      (void)router_.Call(index, zrem);
    }
  }

  // Eval: `c` (empty) begins the EVALSHA of `script` on `key`, a session's key or a
  // bucket's stream (with its bucket's feed keys, when the store keeps a feed).
  void Eval(Command& c, Script script, std::string key) const {
    const int bucket = BucketOfKey(key);
    c.Add("EVALSHA").Add(shas_[script]).Add(feed_ ? "3" : "1").Own(std::move(key));
    if (feed_) c.Add(events_keys_[bucket]).Add(expiry_keys_[bucket]);
  }
  // BucketOfKey: the bucket of a key of the layout (its hash tag's, on a cluster).
  int BucketOfKey(absl::string_view key) const {
    if (!bucketed_) return 0;
    const size_t open = key.find('{', router_.options().prefix.size());
    const size_t close = key.find('}', open);
    if (open == key.npos || close == key.npos) return 0;
    const auto it =
        bucket_of_tag_.find(std::string(key.substr(open + 1, close - open - 1)));
    return it == bucket_of_tag_.end() ? 0 : it->second;
  }
  // Kept: the events each bucket's stream keeps (the count, shared by the buckets).
  int64_t Kept() const {
    const int64_t count = backend::RetentionCount(events_, kDefaultKept);
    return (count + buckets_ - 1) / buckets_;
  }

  // KeyOfName: the session a key names (the key without its prefix), or nullopt
  // when it is not a session's key of this store's layout.
  std::optional<SessionKey> KeyOfName(absl::string_view name) const {
    if (name.size() < 3 || name.front() != '{') return std::nullopt;
    if (bucketed_) {
      const size_t close = name.find('}');
      if (close == name.npos || close + 1 == name.size()) return std::nullopt;
      name.remove_prefix(close + 1);
    } else {
      if (name.back() != '}') return std::nullopt;
      name = name.substr(1, name.size() - 2);
    }
    const size_t slash = name.find('/');
    if (slash == name.npos) return std::nullopt;
    return SessionKey{std::string(name.substr(0, slash)),
                      std::string(name.substr(slash + 1))};
  }

  std::string Key(const SessionKey& key) const {
    return redis::SessionKeyName(router_.options().prefix, bucketed_, key.tenant,
                                 key.session_id);
  }
  static std::string TtlOf(absl::Duration ttl) {
    return absl::StrCat(absl::ToInt64Milliseconds(ttl));
  }

  // TextFrom: a read's answer from its HGETALL reply.
  absl::StatusOr<std::shared_ptr<const SessionText>> TextFrom(const SessionKey& key,
                                                              const redisReply* r) const {
    if (r->type == REDIS_REPLY_ERROR) return redis::ReplyError(Str(r));
    if (r->type != REDIS_REPLY_ARRAY)
      return absl::InternalError("redis: HGETALL answered no array");
    if (r->elements == 0) return backend::SessionNotFoundError(key);
    return Decode(key, r);
  }

  void ReadLoop();

  absl::StatusOr<std::shared_ptr<const SessionText>> Decode(const SessionKey& key,
                                                            const redisReply* r) const {
    return redis::DecodeHash(key, r, clock_->Now());
  }

  // Run: `script` on `key` with `args` (and then `more`), as EVALSHA, again as EVAL
  // when the server has lost the script (a restart, SCRIPT FLUSH); followed in the
  // same round trip by WAIT when the URI asks for replicas.
  absl::StatusOr<ScriptReply> Run(Script script, const std::string& key, Command& args,
                                  Command* more = nullptr);
  // RunAll: whole EVALSHA commands of `script`, pipelined in one round trip (then
  // WAIT, when asked for); every reply a ScriptReply.
  absl::StatusOr<std::vector<ScriptReply>> RunAll(Script script,
                                                  std::vector<Command>& evals);

  // Expect: OK for kOk, the error each other code stands for.
  static absl::Status Expect(const ScriptReply& r, const SessionKey& key,
                             int64_t expected = 0, size_t max_bytes = 0) {
    switch (r.code) {
      case redis::kOk:
        return absl::OkStatus();
      case redis::kNotFound:
        return backend::SessionNotFoundError(key);
      case redis::kExists:
        return backend::SessionExistsError(key);
      case redis::kConflict:
        return backend::VersionConflictError(expected, r.value);
      case redis::kGuard:
        return backend::GuardRefusedError();
      case redis::kTooLarge:
        return backend::RecordTooLarge(static_cast<size_t>(r.value), max_bytes);
      default:
        return absl::InternalError(
            absl::StrCat("redis: a script answered code ", r.code));
    }
  }

  // The feed's default count kept, and how long after a session's expiry Redis
  // drops it itself when the sweep has not (redis_scripts.h).
  static constexpr int64_t kDefaultKept = 1'000'000;
  static constexpr absl::Duration kExpiryGrace = absl::Hours(1);

  redis::Router router_;
  const Clock* clock_;
  const EventOptions events_;
  const bool feed_;      // this store appends events (StoreOptions::events)
  const bool bucketed_;  // a cluster: kBuckets buckets (redis_router.h), else one
  const int buckets_;
  std::vector<std::string> events_keys_, expiry_keys_;  // by bucket
  std::map<std::string, int> bucket_of_tag_;
  std::string sources_[redis::kScriptCount];
  std::string shas_[redis::kScriptCount];

  struct PendingRead {
    SessionKey key;
    TextCallback done;
  };
  std::once_flag reader_started_;
  std::thread reader_;
  std::mutex read_mu_;
  std::condition_variable read_cv_;
  std::vector<PendingRead> reads_;  // guarded by read_mu_
  bool reader_waiting_ = false;     // guarded by read_mu_
  bool stopping_ = false;           // guarded by read_mu_
};

void RedisStore::ReadLoop() {
  std::vector<PendingRead> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(read_mu_);
      reader_waiting_ = true;
      read_cv_.wait(lock, [&] { return stopping_ || !reads_.empty(); });
      reader_waiting_ = false;
      if (reads_.empty()) return;  // stopping, and every read answered
      batch.swap(reads_);
    }
    std::vector<std::string> names;
    std::vector<absl::string_view> keys;
    std::vector<Command> gets(batch.size());
    std::vector<Command*> commands;
    names.reserve(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      names.push_back(Key(batch[i].key));
      keys.push_back(names.back());
      gets[i].Add("HGETALL").Add(names.back());
      commands.push_back(&gets[i]);
    }
    absl::StatusOr<redis::Router::Batch> got =
        router_.Exec(keys, commands, nullptr, /*idempotent=*/true);
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i].done(
          got.ok() ? TextFrom(batch[i].key, got->replies[i].get())
                   : absl::StatusOr<std::shared_ptr<const SessionText>>(got.status()));
    }
    batch.clear();
  }
}

absl::StatusOr<ScriptReply> ScriptReplyOf(const redisReply* r) {
  if (r->type == REDIS_REPLY_ERROR) return redis::ReplyError(Str(r));
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->elements > 3 ||
      r->element[0]->type != REDIS_REPLY_INTEGER ||
      r->element[1]->type != REDIS_REPLY_INTEGER) {
    return absl::InternalError("redis: a script answered an unexpected reply");
  }
  if (r->elements == 3 && r->element[2]->type != REDIS_REPLY_STRING) {
    return absl::InternalError("redis: a script answered an unexpected reply");
  }
  return ScriptReply{static_cast<int>(r->element[0]->integer), r->element[1]->integer,
                     r->elements == 3 ? std::string(Str(r->element[2])) : std::string()};
}

absl::StatusOr<ScriptReply> RedisStore::Run(Script script, const std::string& key,
                                            Command& args, Command* more) {
  std::vector<Command> evals(1);
  Command& c = evals[0];
  Eval(c, script, key);
  for (Command* part : {&args, more}) {
    if (part == nullptr) continue;
    for (int i = 0; i < part->argc(); ++i)
      c.Add(absl::string_view(part->argv()[i], part->lens()[i]));
  }
  absl::StatusOr<std::vector<ScriptReply>> replies = RunAll(script, evals);
  if (!replies.ok()) return replies.status();
  return replies->front();
}

absl::StatusOr<std::vector<ScriptReply>> RedisStore::RunAll(Script script,
                                                            std::vector<Command>& evals) {
  const redis::RedisOptions& options = router_.options();
  // Half the call's time-out, so that WAIT's own answer comes back before it.
  const int wait_ms = std::max(1, options.timeout_ms / 2);
  std::vector<absl::string_view> keys;
  std::vector<Command*> commands;
  for (Command& c : evals) {
    keys.emplace_back(c.argv()[3], c.lens()[3]);  // EVALSHA sha 1 KEY
    commands.push_back(&c);
  }
  Command wait;  // only with durability=replicas:N
  if (options.wait_replicas > 0) {
    wait.Add("WAIT").Own(absl::StrCat(options.wait_replicas)).Own(absl::StrCat(wait_ms));
  }
  Command* trailer = options.wait_replicas > 0 ? &wait : nullptr;

  absl::StatusOr<redis::Router::Batch> batch = router_.Exec(keys, commands, trailer);
  if (!batch.ok()) return batch.status();
  // A node that no longer has the script (a restart, SCRIPT FLUSH, a replica promoted
  // since): those commands again, with the script's source.
  std::vector<size_t> lost;
  for (size_t i = 0; i < evals.size(); ++i) {
    const redisReply* r = batch->replies[i].get();
    if (r->type == REDIS_REPLY_ERROR && absl::StartsWith(Str(r), "NOSCRIPT"))
      lost.push_back(i);
  }
  if (!lost.empty()) {
    std::vector<absl::string_view> lost_keys;
    std::vector<Command*> lost_commands;
    for (size_t i : lost) {
      evals[i].Set(0, "EVAL");
      evals[i].Set(1, sources_[script]);
      lost_keys.push_back(keys[i]);
      lost_commands.push_back(&evals[i]);
    }
    absl::StatusOr<redis::Router::Batch> again =
        router_.Exec(lost_keys, lost_commands, trailer);
    if (!again.ok()) return again.status();
    for (size_t k = 0; k < lost.size(); ++k) {
      batch->replies[lost[k]] = std::move(again->replies[k]);
    }
    for (Reply& w : again->trailers) batch->trailers.push_back(std::move(w));
  }
  std::vector<ScriptReply> out;
  bool wrote = false;
  for (size_t i = 0; i < evals.size(); ++i) {
    absl::StatusOr<ScriptReply> r = ScriptReplyOf(batch->replies[i].get());
    if (!r.ok()) return r.status();
    wrote |= r->code == redis::kOk;
    out.push_back(*r);
  }
  if (wrote && options.wait_replicas > 0) {
    // Every node written to answered WAIT; the fewest replicas confirming counts.
    int64_t confirmed = options.wait_replicas;
    for (const Reply& w : batch->trailers) {
      confirmed =
          std::min<int64_t>(confirmed, w->type == REDIS_REPLY_INTEGER ? w->integer : 0);
    }
    if (confirmed < options.wait_replicas) {
      return absl::UnavailableError(
          absl::StrCat("redis: the write reached the primary, but ", confirmed,
                       " of the ", options.wait_replicas,
                       " replicas asked for (durability=replicas:N) confirmed it within ",
                       wait_ms, " ms"));
    }
  }
  return out;
}

// Merges: the members of a PATCH's context that merge an object into the stored
// value, by their kind's index in the script's arguments, with their patch.
using Merges = std::vector<std::pair<int, const Json*>>;

// PatchArguments: the patch script's arguments after the stamp's and the guard's:
// '1' to empty the context, the base fields (`next` holds their values), the context
// members; `merges` gets the members that merge objects.
void PatchArguments(const PatchWrite& write, const SessionContext& next, Command& c,
                    Merges& merges) {
  const auto context = write.body.find("context");
  const bool has_context = context != write.body.end();
  c.Add(has_context && context->is_null() ? "1" : "0");
  std::vector<const BaseField*> base;
  for (const BaseField& f : kBaseFields) {
    if (f.patchable && write.body.contains(f.name)) base.push_back(&f);
  }
  c.Own(absl::StrCat(base.size()));
  for (const BaseField* f : base) {
    const std::optional<std::string>& v = next.*(f->member);
    c.Add(f->name).Own(v ? backend::QuotedJsonString(*v) : std::string());
  }
  if (!has_context || !context->is_object()) return;
  for (auto it = context->begin(); it != context->end(); ++it) {
    std::string quoted = backend::QuotedJsonString(it.key());
    if (it->is_null()) {
      c.Add("d").Own(std::move(quoted)).Add("");
    } else if (it->is_object()) {
      Json fresh;  // what the member becomes where no object is stored
      MergePatch(fresh, *it);
      merges.emplace_back(c.argc(), &*it);
      c.Add("m").Own(std::move(quoted)).Own(fresh.dump());
    } else {
      c.Add("s").Own(std::move(quoted)).Own(it->dump());
    }
  }
}

absl::Status RedisStore::MergeStored(const std::string& key, Command& c,
                                     const Merges& merges,
                                     std::deque<std::string>& merged) {
  Command read;
  read.Add("HMGET").Add(key);
  for (const auto& [index, patch] : merges) {
    read.Add(absl::string_view(c.argv()[index + 1], c.lens()[index + 1]));
  }
  absl::StatusOr<Reply> stored = router_.Call(key, read);
  if (!stored.ok()) return stored.status();
  if ((*stored)->type != REDIS_REPLY_ARRAY || (*stored)->elements != merges.size()) {
    return absl::InternalError("redis: HMGET answered an unexpected reply");
  }
  for (size_t i = 0; i < merges.size(); ++i) {
    const redisReply* e = (*stored)->element[i];
    Json value = e->type == REDIS_REPLY_STRING
                     ? Json::parse(Str(e), nullptr, /*allow_exceptions=*/false)
                     : Json();
    if (value.is_discarded()) value = Json();
    MergePatch(value, *merges[i].second);
    merged.push_back(value.dump());
    c.Set(merges[i].first, "s");
    c.Set(merges[i].first + 2, merged.back());
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> RedisStore::Patch(const SessionKey& key,
                                          const PatchWrite& write) {
  // The body's base fields, checked and applied to a probe (the guard and the version
  // are the script's to check, against the stored session).
  SessionContext probe;
  probe.version = write.expected_version;
  absl::StatusOr<SessionContext> next = backend::PatchFields(probe, write);
  if (!next.ok()) return next.status();
  const std::string at = Ms(write.now), ttl = TtlOf(write.anonymous_ttl),
                    max = absl::StrCat(write.max_record_bytes),
                    guard = Guard(write.guard),
                    expected = absl::StrCat(write.expected_version);
  Command c;
  c.Add(at).Add(ttl).Add(max).Add(guard).Add(expected);
  Merges merges;
  PatchArguments(write, *next, c, merges);
  const std::string k = Key(key);
  absl::StatusOr<ScriptReply> r = Run(redis::kPatch, k, c);
  std::deque<std::string> merged;  // the merged members' texts, while `c` points at them
  if (r.ok() && r->code == redis::kMerge) {
    // An object is stored under a member the body merges into: read those members,
    // merge here, and write them whole; the script's version check (the PATCH's own
    // expected version) keeps the pair atomic.
    if (absl::Status st = MergeStored(k, c, merges, merged); !st.ok()) return st;
    r = Run(redis::kPatch, k, c);
  }
  if (!r.ok()) return r.status();
  if (absl::Status st = Expect(*r, key, write.expected_version, write.max_record_bytes);
      !st.ok()) {
    return st;
  }
  return r->value;
}

absl::StatusOr<ImportResult> RedisStore::Import(const std::vector<ImportRecord>& given,
                                                const ImportOptions& options) {
  if (absl::Status st = backend::CheckImportKeys(given); !st.ok()) return st;
  std::vector<ImportRecord> parsed;
  const std::vector<ImportRecord>& records = backend::ParsedImportRecords(given, parsed);
  constexpr size_t kBatch = 64;
  ImportResult result;
  const absl::Time now = clock_->Now();
  const std::string at = Ms(now), overwrite = options.overwrite_newer ? "1" : "0";
  for (size_t from = 0; from < records.size(); from += kBatch) {
    const size_t to = std::min(records.size(), from + kBatch);
    std::vector<StoredRecord> stored;
    std::vector<Command> evals(to - from);
    stored.reserve(to - from);
    for (size_t i = from; i < to; ++i) {
      const ImportRecord& r = records[i];
      StoredRecord& s = stored.emplace_back(StoredOf(r.key, r.record, now));
      Command& c = evals[i - from];
      Eval(c, redis::kImport, Key(r.key));
      c.Add(at).Add(overwrite).Own(absl::StrCat(r.record.version)).Add(s.ttl);
      for (int a = 0; a < s.fields.argc(); ++a) {
        c.Add(absl::string_view(s.fields.argv()[a], s.fields.lens()[a]));
      }
    }
    // The customers' indexes first (IndexBefore), in one pipeline.
    std::vector<size_t> indexed;
    for (size_t i = from; i < to; ++i) {
      if (records[i].record.customer_id) indexed.push_back(i);
    }
    std::vector<Command> adds(indexed.size());
    for (size_t j = 0; j < indexed.size(); ++j) {
      const ImportRecord& r = records[indexed[j]];
      IndexCommand(adds[j], r.key, *r.record.customer_id, r.record.expires_at);
    }
    if (!adds.empty()) {
      if (absl::StatusOr<std::vector<ScriptReply>> added = RunAll(redis::kIndex, adds);
          !added.ok()) {
        return added.status();
      }
    }
    absl::StatusOr<std::vector<ScriptReply>> replies = RunAll(redis::kImport, evals);
    if (!replies.ok()) return replies.status();
    // IndexAfter for the batch: the entries again where the customer changed, in one
    // pipeline; the old customers' entries dropped (rare: an import that moves one).
    std::vector<size_t> again;
    for (size_t i = from; i < to; ++i) {
      const ScriptReply& r = (*replies)[i - from];
      if (r.code != redis::kOk) continue;
      const std::optional<std::string> before = Unquoted(r.was);
      if (before == records[i].record.customer_id) continue;
      if (records[i].record.customer_id) again.push_back(i);
      if (before) IndexAfter(records[i].key, r.was, SessionContext{});
    }
    std::vector<Command> readds(again.size());
    for (size_t j = 0; j < again.size(); ++j) {
      const ImportRecord& r = records[again[j]];
      IndexCommand(readds[j], r.key, *r.record.customer_id, r.record.expires_at);
    }
    if (!readds.empty())
      (void)RunAll(redis::kIndex, readds);  // best effort, as IndexAfter
    for (const ScriptReply& r : *replies) {
      if (r.code == redis::kSkipped) {
        ++result.skipped;
      } else if (r.code == redis::kOk) {
        ++result.written;
      } else {
        return absl::InternalError(absl::StrCat("redis: import answered code ", r.code));
      }
    }
  }
  return result;
}

// IndexMembers: every session id a customer's index names.
absl::StatusOr<std::vector<std::string>> RedisStore::IndexMembers(
    const std::string& index) {
  Command range;
  range.Add("ZRANGE").Add(index).Add("0").Add("-1");
  absl::StatusOr<Reply> members = router_.Call(index, range);
  if (!members.ok()) return members.status();
  const redisReply* m = members->get();
  if (m->type == REDIS_REPLY_ERROR) return redis::ReplyError(Str(m));
  if (m->type != REDIS_REPLY_ARRAY)
    return absl::InternalError("redis: ZRANGE answered no array");
  std::vector<std::string> ids;
  ids.reserve(m->elements);
  for (size_t i = 0; i < m->elements; ++i) ids.emplace_back(Str(m->element[i]));
  return ids;
}

// A customer's sessions: the index's members (a superset, redis_scripts.h), each
// checked against its session's hash; what no longer matches is pruned.
absl::StatusOr<CustomerSessionPage> RedisStore::ListCustomerSessions(
    const CustomerKey& customer, const std::string& cursor, int limit) {
  if (absl::Status st = backend::CheckCustomerQuery(customer, limit); !st.ok()) return st;
  const std::string index = IndexKey(customer.tenant, customer.customer_id);
  absl::StatusOr<std::vector<std::string>> members = IndexMembers(index);
  if (!members.ok()) return members.status();
  std::vector<std::string> ids;
  for (std::string& id : *members) {
    if (id > cursor) ids.push_back(std::move(id));
  }
  std::sort(ids.begin(), ids.end());
  const std::string quoted = backend::QuotedJsonString(customer.customer_id);
  const absl::Time now = clock_->Now();
  std::vector<CustomerSession> found;
  std::vector<std::string> stale;
  for (size_t from = 0;
       from < ids.size() && found.size() <= static_cast<size_t>(limit);) {
    const size_t to = std::min(ids.size(), from + static_cast<size_t>(limit) + 1);
    std::vector<std::string> names;
    std::vector<absl::string_view> keys;
    std::vector<Command> reads(to - from);
    std::vector<Command*> commands;
    names.reserve(to - from);
    for (size_t i = from; i < to; ++i) {
      names.push_back(Key({customer.tenant, ids[i]}));
      keys.push_back(names.back());
      reads[i - from]
          .Add("HMGET")
          .Add(names.back())
          .Add("v")
          .Add("ct")
          .Add("mt")
          .Add("x")
          .Add("customerId");
      commands.push_back(&reads[i - from]);
    }
    absl::StatusOr<redis::Router::Batch> got =
        router_.Exec(keys, commands, nullptr, /*idempotent=*/true);
    if (!got.ok()) return got.status();
    for (size_t i = from; i < to; ++i) {
      const redisReply* h = got->replies[i - from].get();
      if (h->type == REDIS_REPLY_ERROR) return redis::ReplyError(Str(h));
      auto field = [&](size_t f) -> std::optional<int64_t> {
        int64_t v = 0;
        if (h->type != REDIS_REPLY_ARRAY || h->elements != 5 ||
            h->element[f]->type != REDIS_REPLY_STRING ||
            !absl::SimpleAtoi(Str(h->element[f]), &v)) {
          return std::nullopt;
        }
        return v;
      };
      const std::optional<int64_t> version = field(0), created = field(1),
                                   modified = field(2), expires = field(3);
      const bool theirs = h->type == REDIS_REPLY_ARRAY && h->elements == 5 &&
                          h->element[4]->type == REDIS_REPLY_STRING &&
                          Str(h->element[4]) == quoted;
      if (!version || !created || !modified || !theirs) {
        stale.push_back(ids[i]);  // gone, or not (or no longer) the customer's
        continue;
      }
      const absl::Time expiry =
          expires ? absl::FromUnixMillis(*expires) : absl::InfiniteFuture();
      if (expiry <= now) continue;  // Redis removes it; its entry goes with the index
      found.push_back(CustomerSession{ids[i], *version, absl::FromUnixMillis(*created),
                                      absl::FromUnixMillis(*modified), expiry});
    }
    from = to;
  }
  if (!stale.empty()) {
    Command zrem;
    zrem.Add("ZREM").Add(index);
    for (const std::string& id : stale) zrem.Add(id);
    (void)router_.Call(index, zrem);  // best effort: the next reader prunes again
  }
  return backend::PageOf(std::move(found), limit, false);
}

// Every session the index names (but `keep`) goes through the end script, which
// deletes it only while it is the customer's; the index then forgets them.
absl::StatusOr<int64_t> RedisStore::EndCustomerSessions(
    const CustomerKey& customer, const std::optional<std::string>& keep) {
  if (absl::Status st = backend::CheckCustomerQuery(customer, std::nullopt); !st.ok())
    return st;
  const std::string index = IndexKey(customer.tenant, customer.customer_id);
  absl::StatusOr<std::vector<std::string>> members = IndexMembers(index);
  if (!members.ok()) return members.status();
  std::vector<std::string> ids;
  for (std::string& id : *members) {
    if (id != keep) ids.push_back(std::move(id));
  }
  const std::string at = Ms(clock_->Now());
  const std::string quoted = backend::QuotedJsonString(customer.customer_id);
  constexpr size_t kBatch = 256;
  int64_t ended = 0;
  for (size_t from = 0; from < ids.size(); from += kBatch) {
    const size_t to = std::min(ids.size(), from + kBatch);
    std::vector<Command> evals(to - from);
    for (size_t i = from; i < to; ++i) {
      Eval(evals[i - from], redis::kEnd, Key({customer.tenant, ids[i]}));
      evals[i - from].Add(at).Add(quoted);
    }
    absl::StatusOr<std::vector<ScriptReply>> replies = RunAll(redis::kEnd, evals);
    if (!replies.ok()) return replies.status();
    Command zrem;
    zrem.Add("ZREM").Add(index);
    for (size_t i = from; i < to; ++i) {
      if ((*replies)[i - from].code == redis::kOk) ++ended;
      zrem.Add(ids[i]);
    }
    (void)router_.Call(index, zrem);  // best effort: a reader prunes what is left
  }
  return ended;
}

absl::StatusOr<int64_t> RedisStore::PurgeExpired() {
  if (!feed_) return 0;
  // Sessions per script: Redis runs nothing else meanwhile.
  constexpr int64_t kBatch = 1000;
  const absl::Time now = clock_->Now();
  const std::string at = Ms(now), batch = absl::StrCat(kBatch),
                    keep = absl::StrCat(Kept()), oldest = Ms(now - events_.max_age);
  std::vector<int> pending;  // the buckets that may have more due
  for (int b = 0; b < buckets_; ++b) pending.push_back(b);
  int64_t expired = 0;
  while (!pending.empty()) {
    std::vector<Command> sweeps(pending.size());
    for (size_t i = 0; i < pending.size(); ++i) {
      Eval(sweeps[i], redis::kSweep, events_keys_[pending[i]]);
      sweeps[i].Add(at).Add(batch).Add(keep).Add(oldest);
      sweeps[i].Add(bucketed_ ? absl::string_view(redis::BucketTag(pending[i])) : "");
    }
    absl::StatusOr<std::vector<ScriptReply>> replies = RunAll(redis::kSweep, sweeps);
    if (!replies.ok()) return replies.status();
    std::vector<int> more;
    for (size_t i = 0; i < pending.size(); ++i) {
      const ScriptReply& r = (*replies)[i];
      if (r.code != redis::kOk)
        return absl::InternalError(
            absl::StrCat("redis: the sweep answered code ", r.code));
      expired += r.value;
      if (r.value >= kBatch) more.push_back(pending[i]);
    }
    pending.swap(more);
  }
  return expired;
}

namespace {

// BucketRead: what the read script answered for one bucket.
struct BucketRead {
  bool gone = false;
  std::string oldest;  // gone: the oldest position kept ('' none)
  uint64_t next = 0;
  std::vector<std::pair<uint64_t, SessionEvent>> events;  // by position in the bucket
};

absl::StatusOr<BucketRead> BucketReadOf(const redisReply* r) {
  if (r->type == REDIS_REPLY_ERROR) return redis::ReplyError(Str(r));
  const auto bad = [] {
    return absl::InternalError("redis: reading the feed answered an unexpected reply");
  };
  BucketRead out;
  out.gone = r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
             r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == 1;
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
      r->element[0]->type != REDIS_REPLY_INTEGER ||
      (!out.gone && (r->elements - 2) % 5 != 0)) {
    return bad();
  }
  for (size_t i = 1; i < r->elements; ++i) {
    if (r->element[i]->type != REDIS_REPLY_STRING) return bad();
  }
  const auto text = [&](size_t i) { return Str(r->element[i]); };
  if (out.gone) {
    out.oldest = std::string(text(2));
    return out;
  }
  if (!absl::SimpleAtoi(text(1), &out.next)) return bad();
  for (size_t i = 2; i < r->elements; i += 5) {
    const absl::string_view name = text(i + 1);
    const size_t slash = name.find('/');
    // The scripts' type letters (redis_scripts.h), in EventType's order.
    constexpr absl::string_view kTypes = "cudxe";
    const size_t kind =
        text(i + 2).size() == 1 ? kTypes.find(text(i + 2)[0]) : kTypes.npos;
    uint64_t position = 0;
    int64_t version = 0, at = 0;
    if (slash == name.npos || kind == kTypes.npos ||
        !absl::SimpleAtoi(text(i), &position) ||
        !absl::SimpleAtoi(text(i + 3), &version) || !absl::SimpleAtoi(text(i + 4), &at)) {
      return absl::DataLossError(
          absl::StrCat("redis: an event of the feed is not readable, at ", text(i)));
    }
    out.events.emplace_back(position, SessionEvent{"",
                                                   {std::string(name.substr(0, slash)),
                                                    std::string(name.substr(slash + 1))},
                                                   static_cast<EventType>(kind),
                                                   version,
                                                   absl::FromUnixMillis(at)});
  }
  return out;
}

}  // namespace

// A position: on a standalone server the event's number in the one stream; on a
// cluster the position reached in each bucket's stream, joined by '.' ("0": none yet).
absl::StatusOr<std::vector<uint64_t>> RedisStore::ParsePosition(
    const std::string& position) const {
  std::vector<uint64_t> out(buckets_, 0);
  if (!bucketed_ || position == "0") {
    absl::StatusOr<uint64_t> n = ParseEventPosition(position);
    if (!n.ok()) return n.status();
    out[0] = *n;
    return out;
  }
  const std::vector<absl::string_view> parts = absl::StrSplit(position, '.');
  bool valid = parts.size() == static_cast<size_t>(buckets_);
  for (size_t b = 0; valid && b < parts.size(); ++b) {
    absl::StatusOr<uint64_t> n = ParseEventPosition(parts[b]);
    valid = n.ok();
    if (valid) out[b] = *n;
  }
  if (!valid) {
    return absl::InvalidArgumentError(absl::StrCat(
        "an event position of redis+cluster is \"0\" or ", buckets_,
        " numbers joined by '.' (one per bucket), not \"",
        position.size() > 40 ? position.substr(0, 40) + "…" : position, "\""));
  }
  return out;
}

std::string RedisStore::FormatPosition(const std::vector<uint64_t>& at) const {
  return bucketed_ ? absl::StrJoin(at, ".") : absl::StrCat(at[0]);
}

// One script per bucket, all in one round trip per master. A cluster's page merges the
// buckets by the events' times, each bucket's events in their order.
absl::StatusOr<EventPage> RedisStore::ReadEvents(const EventQuery& query) {
  if (!feed_) return EventsOffError();
  if (absl::Status st = CheckEventQuery(query); !st.ok()) return st;
  const bool newest = query.after.empty();
  std::vector<uint64_t> after(buckets_, 0);
  if (!newest) {
    absl::StatusOr<std::vector<uint64_t>> parsed = ParsePosition(query.after);
    if (!parsed.ok()) return parsed.status();
    after = *std::move(parsed);
  }
  // Each bucket's share of the page (all of it for one bucket).
  const int count = bucketed_
                        ? std::min(query.limit, std::max(16, 2 * query.limit / buckets_))
                        : query.limit;
  std::vector<Command> reads(buckets_);
  std::vector<absl::string_view> keys;
  std::vector<Command*> commands;
  for (int b = 0; b < buckets_; ++b) {
    Eval(reads[b], redis::kReadEvents, events_keys_[b]);
    // Lua's numbers are doubles: past 2^53 is past any position, refused as never given.
    reads[b].Own(newest ? std::string()
                        : absl::StrCat(std::min<uint64_t>(after[b], uint64_t{1} << 53)));
    reads[b].Own(absl::StrCat(count));
    reads[b].Add(query.tenant ? absl::string_view(*query.tenant) : "");
    keys.push_back(events_keys_[b]);
    commands.push_back(&reads[b]);
  }
  absl::StatusOr<redis::Router::Batch> batch =
      router_.Exec(keys, commands, nullptr, /*idempotent=*/true);
  if (!batch.ok()) return batch.status();
  std::vector<size_t> lost;  // a node without the script: again with its source
  for (int b = 0; b < buckets_; ++b) {
    const redisReply* r = batch->replies[b].get();
    if (r->type == REDIS_REPLY_ERROR && absl::StartsWith(Str(r), "NOSCRIPT")) {
      reads[b].Set(0, "EVAL");
      reads[b].Set(1, sources_[redis::kReadEvents]);
      lost.push_back(b);
    }
  }
  if (!lost.empty()) {
    std::vector<absl::string_view> lost_keys;
    std::vector<Command*> lost_commands;
    for (size_t b : lost) {
      lost_keys.push_back(keys[b]);
      lost_commands.push_back(&reads[b]);
    }
    absl::StatusOr<redis::Router::Batch> again =
        router_.Exec(lost_keys, lost_commands, nullptr, /*idempotent=*/true);
    if (!again.ok()) return again.status();
    for (size_t i = 0; i < lost.size(); ++i)
      batch->replies[lost[i]] = std::move(again->replies[i]);
  }
  std::vector<BucketRead> read;
  for (int b = 0; b < buckets_; ++b) {
    absl::StatusOr<BucketRead> r = BucketReadOf(batch->replies[b].get());
    if (!r.ok()) return r.status();
    if (r->gone) return EventsGoneError(query.after, bucketed_ ? "" : r->oldest);
    read.push_back(*std::move(r));
  }
  EventPage page;
  std::vector<uint64_t> at = after;
  if (newest) {
    for (int b = 0; b < buckets_; ++b) at[b] = read[b].next;
    page.next = FormatPosition(at);
    return page;
  }
  std::vector<size_t> taken(buckets_, 0);
  while (page.events.size() < static_cast<size_t>(query.limit)) {
    int first = -1;  // the bucket whose next event is the oldest
    for (int b = 0; b < buckets_; ++b) {
      if (taken[b] == read[b].events.size()) continue;
      if (first < 0 || read[b].events[taken[b]].second.time <
                           read[first].events[taken[first]].second.time) {
        first = b;
      }
    }
    if (first < 0) break;
    auto& [position, event] = read[first].events[taken[first]++];
    at[first] = position;
    event.position = FormatPosition(at);
    page.events.push_back(std::move(event));
  }
  // A bucket read to its end moves on past other tenants' events too.
  for (int b = 0; b < buckets_; ++b) {
    if (taken[b] == read[b].events.size()) at[b] = std::max(at[b], read[b].next);
  }
  page.next = FormatPosition(at);
  return page;
}

// GlobEscaped: `s` with SCAN MATCH's special characters escaped.
std::string GlobEscaped(absl::string_view s) {
  std::string out;
  for (char ch : s) {
    if (ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\')
      out.push_back('\\');
    out.push_back(ch);
  }
  return out;
}

absl::Status RedisStore::CheckLayout() {
  if (!bucketed_) return absl::OkStatus();
  const std::string layout = absl::StrCat("buckets:", redis::kBuckets);
  const std::string& prefix = router_.options().prefix;
  const std::string marker = prefix + "layout";
  Command get;
  get.Add("GET").Add(marker);
  absl::StatusOr<Reply> got = router_.Call(marker, get);
  if (!got.ok()) return got.status();
  if ((*got)->type == REDIS_REPLY_ERROR) return redis::ReplyError(Str(got->get()));
  if ((*got)->type == REDIS_REPLY_STRING) {
    if (Str(got->get()) == layout) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(
        "redis+cluster: the keys under prefix \"", prefix, "\" are of layout \"",
        Str(got->get()), "\"; this release reads layout \"", layout, "\""));
  }
  absl::Status old = absl::OkStatus();
  absl::Status scanned = ScanSessionKeys(1000, [&](const redisReply* names) {
    for (size_t i = 0; i < names->elements; ++i) {
      absl::string_view name = Str(names->element[i]);
      name.remove_prefix(prefix.size());
      if (name.find('}') + 1 != name.size()) continue;
      old = absl::FailedPreconditionError(absl::StrCat(
          "redis+cluster: this cluster holds sessions in the key layout before buckets "
          "(\"",
          prefix, "{<tenant>/<sessionId>}\", as ", Str(names->element[i]),
          "): move them with `sessionctl export` of the release that wrote them, then "
          "`sessionctl import` of this one (docs/backends.md)"));
      return false;
    }
    return true;
  });
  if (!scanned.ok()) return scanned;
  if (!old.ok()) return old;
  Command set;
  set.Add("SET").Add(marker).Add(layout).Add("NX");
  absl::StatusOr<Reply> stored = router_.Call(marker, set);
  if (!stored.ok()) return stored.status();
  if ((*stored)->type == REDIS_REPLY_ERROR) return redis::ReplyError(Str(stored->get()));
  return absl::OkStatus();
}

absl::Status RedisStore::ScanSessionKeys(
    int count, const std::function<bool(const redisReply* names)>& page) {
  const std::string pattern = GlobEscaped(router_.options().prefix) + "{*";
  const std::string per_page = absl::StrCat(count);
  for (redis::Pool* pool : router_.Masters()) {
    std::string cursor = "0";
    do {
      Command scan;
      scan.Add("SCAN").Add(cursor).Add("MATCH").Add(pattern).Add("COUNT").Add(per_page);
      absl::StatusOr<Reply> got;
      {
        absl::StatusOr<redis::Pool::Lease> lease = pool->Acquire();
        if (!lease.ok()) return lease.status();
        pool->CountRoundTrip();
        got = (*lease)->Call(scan);
      }
      if (!got.ok()) return got.status();
      const redisReply* p = got->get();
      if (p->type == REDIS_REPLY_ERROR) return redis::ReplyError(Str(p));
      if (p->type != REDIS_REPLY_ARRAY || p->elements != 2 ||
          p->element[1]->type != REDIS_REPLY_ARRAY) {
        return absl::InternalError("redis: SCAN answered an unexpected reply");
      }
      cursor = std::string(Str(p->element[0]));
      if (p->element[1]->elements > 0 && !page(p->element[1])) return absl::OkStatus();
    } while (cursor != "0");
  }
  return absl::OkStatus();
}

absl::Status RedisStore::ForEach(
    const std::function<bool(const SessionKey&, const SessionContext&)>& visit) {
  // Every master's keys in turn (a cluster's SCAN sees one node's keys); the hashes
  // read by key, so that one moved meanwhile is read where it went.
  const std::string& prefix = router_.options().prefix;
  absl::Status failed = absl::OkStatus();
  absl::Status scanned = ScanSessionKeys(500, [&](const redisReply* names) {
    std::vector<absl::string_view> keys;
    std::vector<Command> gets(names->elements);
    std::vector<Command*> commands;
    for (size_t i = 0; i < names->elements; ++i) {
      keys.push_back(Str(names->element[i]));
      gets[i].Add("HGETALL").Add(keys.back());
      commands.push_back(&gets[i]);
    }
    absl::StatusOr<redis::Router::Batch> hashes =
        router_.Exec(keys, commands, nullptr, /*idempotent=*/true);
    if (!hashes.ok()) {
      failed = hashes.status();
      return false;
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      absl::string_view name = keys[i];
      name.remove_prefix(prefix.size());
      const std::optional<SessionKey> key = KeyOfName(name);
      if (!key) continue;
      const redisReply* h = hashes->replies[i].get();
      if (h->type != REDIS_REPLY_ARRAY || h->elements == 0)
        continue;  // deleted meanwhile
      absl::StatusOr<std::shared_ptr<const SessionText>> text = Decode(*key, h);
      if (!text.ok()) continue;  // expired; or logged as lost
      absl::StatusOr<SessionContext> record = (*text)->Record();
      if (!record.ok()) continue;
      if (!visit(*key, *record)) return false;
    }
    return true;
  });
  return scanned.ok() ? failed : scanned;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SessionStore>> OpenRedisStore(
    const std::string& uri, const StoreOptions& options) {
  absl::StatusOr<redis::RedisOptions> parsed = redis::ParseRedisUri(uri);
  if (!parsed.ok()) return parsed.status();
  auto store = std::make_unique<RedisStore>(*std::move(parsed), options);
  if (absl::Status st = store->Connect(); !st.ok()) return st;
  return store;
}

}  // namespace sessionctx
