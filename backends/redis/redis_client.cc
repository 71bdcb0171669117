#include "backends/redis/redis_client.h"

#include <sys/time.h>

#include <chrono>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "sessionctx/backend_support.h"

namespace sessionctx::redis {
namespace {

absl::Status BadUri(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "redis: ", what,
      "; expected redis://[[user]:password@]host[:port][/db][?pool_size=&timeout_ms=&prefix=&"
      "durability=] or redis+cluster://[[user]:password@]host:port[,host:port…][?…]"));
}

// PercentDecoded: a URI part with its %XX escapes decoded (a password may hold '@').
absl::StatusOr<std::string> PercentDecoded(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    int byte = 0;
    if (i + 2 >= s.size() || !absl::SimpleHexAtoi(s.substr(i + 1, 2), &byte))
      return BadUri("a bad % escape");
    out.push_back(static_cast<char>(byte));
    i += 2;
  }
  return out;
}

// ParseUserInfo: "user:password", ":password" (no user name: the default user) or
// "user" alone, as node-redis, redis-py and Lettuce read them. A name alone names a
// user without a password, which Redis cannot log in with: refused, since older
// sessionctx read it as a password.
absl::Status ParseUserInfo(absl::string_view userinfo, RedisOptions& out) {
  const size_t colon = userinfo.find(':');
  if (colon == absl::string_view::npos) {
    return BadUri(
        "redis://NAME@host names a user without a password; for a password alone write "
        "redis://:PASSWORD@host, for an ACL user redis://USER:PASSWORD@host");
  }
  absl::StatusOr<std::string> user = PercentDecoded(userinfo.substr(0, colon));
  if (!user.ok()) return user.status();
  absl::StatusOr<std::string> password = PercentDecoded(userinfo.substr(colon + 1));
  if (!password.ok()) return password.status();
  out.user = *std::move(user);
  out.password = *std::move(password);
  return absl::OkStatus();
}

// ParseNode: "host", "host:port", "[v6]" or "[v6]:port" (port 6379 when absent).
absl::StatusOr<std::pair<std::string, int>> ParseNode(absl::string_view node) {
  std::pair<std::string, int> seed{"", 6379};
  std::optional<absl::string_view> port;  // the text after the host's ':'
  if (absl::ConsumePrefix(&node, "[")) {
    const size_t close = node.find(']');
    if (close == absl::string_view::npos) return BadUri("an IPv6 address without its ']'");
    seed.first = std::string(node.substr(0, close));
    node.remove_prefix(close + 1);
    if (!node.empty() && !absl::ConsumePrefix(&node, ":")) {
      return BadUri("']' must be followed by :PORT");
    }
    if (!node.empty()) port = node;
  } else {
    const size_t colon = node.rfind(':');
    seed.first = std::string(node.substr(0, colon));
    if (colon != absl::string_view::npos) {
      if (seed.first.find(':') != std::string::npos) {
        return BadUri("an IPv6 address must be in brackets, e.g. [::1]:6379");
      }
      port = node.substr(colon + 1);
    }
  }
  if (seed.first.empty()) return BadUri("no host");
  if (port && (!absl::SimpleAtoi(*port, &seed.second) || seed.second < 1 || seed.second > 65535)) {
    return BadUri("the port must be a number from 1 to 65535");
  }
  return seed;
}

absl::Status ParseHostPart(absl::string_view authority, RedisOptions& out) {
  if (const size_t at = authority.rfind('@'); at != absl::string_view::npos) {
    if (absl::Status st = ParseUserInfo(authority.substr(0, at), out); !st.ok()) return st;
    authority = authority.substr(at + 1);
  }
  for (absl::string_view node : absl::StrSplit(authority, ',')) {
    if (!out.cluster && node.size() != authority.size()) {
      return BadUri("a list of nodes is for redis+cluster://");
    }
    absl::StatusOr<std::pair<std::string, int>> seed = ParseNode(node);
    if (!seed.ok()) return seed.status();
    out.seeds.push_back(*std::move(seed));
  }
  out.host = out.seeds.front().first;
  out.port = out.seeds.front().second;
  return absl::OkStatus();
}

absl::Status ParseOption(absl::string_view name, absl::string_view value,
                         RedisOptions& out) {
  if (name == "pool_size" || name == "timeout_ms") {
    int* number = name == "pool_size" ? &out.pool_size : &out.timeout_ms;
    if (!absl::SimpleAtoi(value, number) || *number < 1) {
      return BadUri(absl::StrCat(name, " must be a positive integer"));
    }
  } else if (name == "prefix") {
    if (value.find_first_of("{}") != absl::string_view::npos) {
      return BadUri("prefix must not hold { or } (they mark a key's hash tag)");
    }
    out.prefix = std::string(value);
  } else if (name == "durability") {
    absl::string_view n = value;
    if (value != "server" &&
        (!absl::ConsumePrefix(&n, "replicas:") ||
         !absl::SimpleAtoi(n, &out.wait_replicas) || out.wait_replicas < 1)) {
      return BadUri("durability must be server or replicas:N (N >= 1)");
    }
  } else {
    return BadUri(absl::StrCat("unknown option ", name));
  }
  return absl::OkStatus();
}

struct timeval Timeval(int ms) {
  struct timeval tv;
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

absl::Status SocketError(redisContext* c) {
  if (c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    return absl::UnavailableError("redis: no answer in time (timeout_ms)");
  }
  return absl::UnavailableError(absl::StrCat("redis unreachable: ", c->errstr));
}

}  // namespace

absl::StatusOr<RedisOptions> ParseRedisUri(const std::string& uri) {
  absl::string_view rest = uri;
  const size_t colon = rest.find(':');
  RedisOptions out;
  out.cluster = rest.substr(0, colon) == "redis+cluster";
  rest.remove_prefix(colon + 1);
  if (!absl::ConsumePrefix(&rest, "//")) return BadUri("no //");
  absl::string_view query;
  if (const size_t q = rest.find('?'); q != absl::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  absl::string_view db;
  if (const size_t slash = rest.find('/'); slash != absl::string_view::npos) {
    db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (absl::Status st = ParseHostPart(rest, out); !st.ok()) return st;
  if (!db.empty() && (!absl::SimpleAtoi(db, &out.db) || out.db < 0)) {
    return BadUri("the database must be a number");
  }
  if (out.cluster && out.db != 0) return BadUri("a cluster has database 0 only");
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (absl::Status st = ParseOption(kv.first, kv.second, out); !st.ok()) return st;
  }
  return out;
}

absl::Status ReplyError(absl::string_view message) {
  const std::string text(message);
  if (absl::StartsWith(message, "OOM") || absl::StartsWith(message, "MISCONF")) {
    return backend::StorageFullError(absl::StrCat("redis refuses writes: ", text));
  }
  for (absl::string_view busy :
       {"LOADING", "READONLY", "MASTERDOWN", "BUSY", "NOREPLICAS", "CLUSTERDOWN",
        "TRYAGAIN", "NOAUTH", "WRONGPASS", "NOPERM"}) {
    if (absl::StartsWith(message, busy)) {
      return absl::UnavailableError(absl::StrCat("redis unavailable: ", text));
    }
  }
  return absl::InternalError(absl::StrCat("redis: ", text));
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(
    const RedisOptions& options) {
  redisContext* c = redisConnectWithTimeout(options.host.c_str(), options.port,
                                            Timeval(options.timeout_ms));
  if (c == nullptr)
    return absl::ResourceExhaustedError("redis: cannot allocate a connection");
  std::unique_ptr<Connection> conn(new Connection(c));
  if (c->err != 0) {
    return absl::UnavailableError(absl::StrCat("redis unreachable at ", options.host, ":",
                                               options.port, ": ", c->errstr));
  }
  if (redisSetTimeout(c, Timeval(options.timeout_ms)) != REDIS_OK) return SocketError(c);
  redisEnableKeepAlive(c);
  std::vector<Command> setup;
  if (!options.password.empty()) {
    Command& auth = setup.emplace_back();
    auth.Add("AUTH");
    if (!options.user.empty()) auth.Add(options.user);
    auth.Add(options.password);
  }
  if (options.db != 0) setup.emplace_back().Add("SELECT").Own(absl::StrCat(options.db));
  std::vector<Command*> commands;
  for (Command& command : setup) commands.push_back(&command);
  if (commands.empty()) return conn;
  absl::StatusOr<std::vector<Reply>> replies = conn->Pipeline(commands);
  if (!replies.ok()) return replies.status();
  for (const Reply& r : *replies) {
    if (r->type == REDIS_REPLY_ERROR) {
      return absl::UnavailableError(absl::StrCat(
          "redis: setting up a connection failed: ", absl::string_view(r->str, r->len)));
    }
  }
  return conn;
}

Connection::~Connection() { redisFree(c_); }

absl::StatusOr<std::vector<Reply>> Connection::Pipeline(
    const std::vector<Command*>& commands) {
  if (absl::Status st = Send(commands); !st.ok()) return st;
  return Receive(commands.size());
}

absl::Status Connection::Send(const std::vector<Command*>& commands) {
  if (broken_) return absl::UnavailableError("redis: the connection is broken");
  for (Command* command : commands) {
    if (redisAppendCommandArgv(c_, command->argc(), command->argv(), command->lens()) !=
        REDIS_OK) {
      broken_ = true;
      return SocketError(c_);
    }
  }
  int done = 0;
  while (done == 0) {
    if (redisBufferWrite(c_, &done) != REDIS_OK) {
      broken_ = true;
      return SocketError(c_);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Reply>> Connection::Receive(size_t count) {
  if (broken_) return absl::UnavailableError("redis: the connection is broken");
  std::vector<Reply> replies;
  replies.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    void* reply = nullptr;
    if (redisGetReply(c_, &reply) != REDIS_OK || reply == nullptr) {
      broken_ = true;
      return SocketError(c_);
    }
    replies.emplace_back(static_cast<redisReply*>(reply));
  }
  return replies;
}

absl::StatusOr<Reply> Connection::Call(Command& command) {
  absl::StatusOr<std::vector<Reply>> replies = Pipeline({&command});
  if (!replies.ok()) return replies.status();
  return std::move(replies->front());
}

Pool::~Pool() = default;

absl::StatusOr<Pool::Lease> Pool::Acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  auto available = [&] { return !idle_.empty() || open_ < options_.pool_size; };
  if (!available()) {
    ++waiters_;
    const bool got =
        cv_.wait_for(lock, std::chrono::milliseconds(options_.timeout_ms), available);
    --waiters_;
    if (!got) {
      ++acquire_timeouts_;
      return absl::UnavailableError(
          "redis: no free connection in the pool within timeout_ms");
    }
  }
  if (!idle_.empty()) {
    std::unique_ptr<Connection> conn = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(conn));
  }
  ++open_;
  ++connects_;
  lock.unlock();
  absl::StatusOr<std::unique_ptr<Connection>> conn = Connection::Open(options_);
  if (!conn.ok()) {
    lock.lock();
    --open_;
    if (waiters_ > 0) cv_.notify_one();
    return conn.status();
  }
  return Lease(this, *std::move(conn));
}

void Pool::Return(std::unique_ptr<Connection> conn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (conn->broken()) {
    --open_;
  } else {
    idle_.push_back(std::move(conn));
  }
  if (waiters_ > 0) cv_.notify_one();  // a signal nobody waits for costs a system call
}

std::vector<StoreStat> Pool::Stats(const StoreStat::Labels& labels) {
  std::unique_lock<std::mutex> lock(mu_);
  std::vector<StoreStat> stats = {
      {"sessionctx_redis_pool_size", "Connections the pool may open (pool_size)",
       static_cast<double>(options_.pool_size)},
      {"sessionctx_redis_pool_open", "Connections open", static_cast<double>(open_)},
      {"sessionctx_redis_pool_in_use", "Connections leased to a running call",
       static_cast<double>(open_ - static_cast<int>(idle_.size()))},
      {"sessionctx_redis_connects_total", "Connections opened (a reconnect counts one)",
       static_cast<double>(connects_)},
      {"sessionctx_redis_pool_acquire_timeouts_total",
       "Calls that found no free connection in time",
       static_cast<double>(acquire_timeouts_)},
      {"sessionctx_redis_round_trips_total",
       "Round trips to Redis (a pipeline counts one)",
       static_cast<double>(round_trips_.load(std::memory_order_relaxed))},
  };
  lock.unlock();
  for (StoreStat& s : stats) s.labels = labels;
  return stats;
}

}  // namespace sessionctx::redis
