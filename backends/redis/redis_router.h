// Where each of the redis backends' commands goes: for redis:// the one server; for
// redis+cluster:// the master serving the slot of the command's key, found in a slot
// map learnt from the cluster and kept current by its redirects (MOVED, ASK) and by
// re-reading it when a node fails.
#ifndef SESSIONCTX_BACKENDS_REDIS_REDIS_ROUTER_H_
#define SESSIONCTX_BACKENDS_REDIS_REDIS_ROUTER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backends/redis/redis_client.h"
#include "sessionctx/session_store.h"

namespace sessionctx::redis {

inline constexpr int kSlots = 16384;

// KeySlot: the cluster slot of `key`: CRC16 (XMODEM) of its hash tag (the part
// between the first '{' and the next '}', when not empty; else the whole key), modulo
// 16384 — what CLUSTER KEYSLOT answers.
int KeySlot(absl::string_view key);

// A cluster's sessions are spread over kBuckets buckets, each with a hash tag of its
// own, so that a bucket's sessions, its event stream and its expiry index share one
// slot (redis_scripts.h): a session's key there is "<prefix>{<tag>}<tenant>/<id>".
// The tags' slots are spread evenly over the 16,384, so that masters serving equal
// slot ranges serve equal shares of the buckets. A standalone server is one bucket
// with the key "<prefix>{<tenant>/<id>}".
inline constexpr int kBuckets = 128;

// BucketOf: the bucket of the session named "<tenant>/<id>" (CRC16 of the name,
// modulo kBuckets).
int BucketOf(absl::string_view name);
// BucketTag: the hash tag of `bucket`: the first text of 1 to 4 characters of
// [0-9a-z] (shortest first, then in order) whose slot is
// bucket * 128 + 64, the middle of its share of the slots.
const std::string& BucketTag(int bucket);
// SessionKeyName: the key of session `id` of `tenant` under `prefix`, on a cluster
// (`bucketed`) or a standalone server.
std::string SessionKeyName(absl::string_view prefix, bool bucketed,
                           absl::string_view tenant, absl::string_view id);

// SlotRange: slots first..last served by the master at host:port.
struct SlotRange {
  int first = 0;
  int last = 0;
  std::string host;
  int port = 0;
};

// ParseClusterShards / ParseClusterSlots: the masters' slot ranges from the answer to
// CLUSTER SHARDS (Redis 7) or to CLUSTER SLOTS (older servers).
absl::StatusOr<std::vector<SlotRange>> ParseClusterShards(const redisReply* r);
absl::StatusOr<std::vector<SlotRange>> ParseClusterSlots(const redisReply* r);

class Router {
 public:
  // A standalone server (options.cluster false) is one node serving every slot.
  explicit Router(RedisOptions options);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Discover: a cluster's slot map, from the first seed node that answers.
  absl::Status Discover();
  const RedisOptions& options() const { return options_; }

  struct Batch {
    std::vector<Reply> replies;   // one per command, in order
    std::vector<Reply> trailers;  // the trailer's reply on each node that was sent one
  };
  // Exec sends commands[i] to the node serving keys[i]: the commands of one node in one
  // pipeline (followed by `trailer`, when given), all nodes at once. A command a node
  // redirects (MOVED, ASK) or refuses for now (TRYAGAIN, CLUSTERDOWN, a node that
  // cannot be reached) is sent again, a few times at most, after a short back-off and
  // a new look at the slot map; then Unavailable. A connection that fails after a
  // command was sent leaves its fate unknown: only `idempotent` commands are sent
  // again, the rest answer Unavailable. A standalone server's failures answer
  // Unavailable at once (there is no other node to wait for).
  absl::StatusOr<Batch> Exec(const std::vector<absl::string_view>& keys,
                             const std::vector<Command*>& commands,
                             Command* trailer = nullptr, bool idempotent = false);
  // Call: one idempotent command (a read) on `key`'s node.
  absl::StatusOr<Reply> Call(absl::string_view key, Command& command);

  // Masters: the pool of every master serving slots (the server, when standalone).
  std::vector<Pool*> Masters();
  // Ready: OK when every slot has a master and every master answers PING.
  absl::Status Ready();
  // Stats: every node's pool gauges (labelled with the node, for a cluster), the
  // redirects each node answered, the map refreshes and the slots each master serves.
  std::vector<StoreStat> Stats();

 private:
  struct Node {
    std::string name;  // host:port
    std::unique_ptr<Pool> pool;
    std::atomic<uint64_t> redirects{0};
  };
  Node* NodeAt(const std::string& host, int port);
  Node* Owner(absl::string_view key) const;
  std::vector<Node*> MasterNodes() const;
  // Refresh reads the slot map again, unless a refresh began after `since`.
  void Refresh(absl::Time since);
  absl::Status ReadMap(Node* from);

  const RedisOptions options_;
  std::mutex nodes_mu_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;  // guarded by nodes_mu_; kept
  Node* single_ = nullptr;                              // the standalone server
  std::unique_ptr<std::array<std::atomic<Node*>, kSlots>> owners_;  // cluster only
  std::mutex refresh_mu_;
  absl::Time refreshed_at_ = absl::InfinitePast();  // guarded by refresh_mu_
  std::atomic<uint64_t> refreshes_{0};
};

}  // namespace sessionctx::redis

#endif  // SESSIONCTX_BACKENDS_REDIS_REDIS_ROUTER_H_
