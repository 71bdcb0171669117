// The redis:// backend's client side: its URI, one connection (hiredis, blocking, with
// time-outs), a bounded pool of them, and how Redis's error replies map to statuses.
#ifndef SESSIONCTX_BACKENDS_REDIS_REDIS_CLIENT_H_
#define SESSIONCTX_BACKENDS_REDIS_REDIS_CLIENT_H_

#include <hiredis/hiredis.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sessionctx/session_store.h"

namespace sessionctx::redis {

// RedisOptions: what a redis:// URI says.
struct RedisOptions {
  std::string host;
  int port = 6379;
  std::string user;      // empty: AUTH with the password alone (or no AUTH)
  std::string password;  // empty: no AUTH
  int db = 0;
  int pool_size = 16;     // the server's default handler threads for a network store
  int timeout_ms = 2000;  // connect, every call, and the wait for a free connection
  std::string prefix = "sessionctx:";
  int wait_replicas = 0;  // durability=replicas:N: WAIT for N replicas after each write
  // redis+cluster://: the seed nodes (host, port), the first also in host and port;
  // the rest of the cluster is discovered from them.
  bool cluster = false;
  std::vector<std::pair<std::string, int>> seeds;
};

// ParseRedisUri reads redis://[[user]:password@]host[:port][/db][?pool_size=&timeout_ms=
// &prefix=&durability=] and redis+cluster://[[user]:password@]host:port[,host:port…]
// [?pool_size=&timeout_ms=&prefix=&durability=]. InvalidArgument naming the part that
// is wrong.
absl::StatusOr<RedisOptions> ParseRedisUri(const std::string& uri);

struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r != nullptr) freeReplyObject(r);
  }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// Command: one command's arguments, binary-safe. Add keeps a view (the caller keeps
// the bytes alive); Own keeps a copy.
class Command {
 public:
  Command& Add(absl::string_view arg) {
    argv_.push_back(arg.data());
    lens_.push_back(arg.size());
    return *this;
  }
  Command& Own(std::string arg) {
    owned_.push_back(std::move(arg));
    return Add(owned_.back());
  }
  // Set replaces argument `i` (a view).
  void Set(size_t i, absl::string_view arg) {
    argv_[i] = arg.data();
    lens_[i] = arg.size();
  }
  int argc() const { return static_cast<int>(argv_.size()); }
  const char** argv() { return argv_.data(); }
  const size_t* lens() const { return lens_.data(); }

 private:
  std::vector<const char*> argv_;
  std::vector<size_t> lens_;
  std::deque<std::string> owned_;
};

// ReplyError: the status of an error reply. Out of memory (OOM) and failing
// persistence (MISCONF) are StorageFullError: writes refused, reads served. A server
// loading its data, a replica, a busy script: Unavailable. Anything else: Internal.
absl::Status ReplyError(absl::string_view message);

// Connection: one blocking connection to the server, set up for the store (AUTH,
// SELECT). Once a call fails on the socket the connection is broken for good.
class Connection {
 public:
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const RedisOptions& options);
  ~Connection();

  // Pipeline sends `commands` in one write and reads one reply each, in order.
  // Unavailable when the socket fails or times out (the connection is then broken).
  absl::StatusOr<std::vector<Reply>> Pipeline(const std::vector<Command*>& commands);
  // Send writes `commands` without reading; Receive reads `count` replies. Between the
  // two a caller may send to other connections, so that several servers work at once.
  absl::Status Send(const std::vector<Command*>& commands);
  absl::StatusOr<std::vector<Reply>> Receive(size_t count);
  // Call: one command.
  absl::StatusOr<Reply> Call(Command& command);
  bool broken() const { return broken_; }

 private:
  explicit Connection(redisContext* c) : c_(c) {}
  redisContext* c_;
  bool broken_ = false;
};

// Pool: at most pool_size connections, opened when needed; a caller waits at most
// timeout_ms for one. A broken connection is dropped when returned, and the next
// caller opens a fresh one: the store reconnects by itself.
class Pool {
 public:
  explicit Pool(RedisOptions options) : options_(std::move(options)) {}
  ~Pool();

  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (conn_ != nullptr) pool_->Return(std::move(conn_));
    }
    Connection* operator->() { return conn_.get(); }
    Connection& operator*() { return *conn_; }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  absl::StatusOr<Lease> Acquire();
  const RedisOptions& options() const { return options_; }
  // Counts a round trip (for Stats).
  void CountRoundTrip() { round_trips_.fetch_add(1, std::memory_order_relaxed); }
  // Stats: the pool's gauges, each with `labels` (a cluster names the node).
  std::vector<StoreStat> Stats(const StoreStat::Labels& labels = {});

 private:
  void Return(std::unique_ptr<Connection> conn);

  const RedisOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_
  int open_ = 0;                                   // guarded by mu_
  int waiters_ = 0;                                // guarded by mu_
  uint64_t connects_ = 0;                          // guarded by mu_
  uint64_t acquire_timeouts_ = 0;                  // guarded by mu_
  std::atomic<uint64_t> round_trips_{0};
};

}  // namespace sessionctx::redis

#endif  // SESSIONCTX_BACKENDS_REDIS_REDIS_CLIENT_H_
