// Driving the test Redis Clusters that scripts/with-redis-cluster.sh started, through
// its control script (SESSIONCTX_TEST_REDIS_CLUSTER_CTL): their ports, redis-cli on a
// node, the master that has a replica, and session ids whose slot a given master
// serves.
#ifndef SESSIONCTX_TESTS_REDIS_CLUSTER_CTL_H_
#define SESSIONCTX_TESTS_REDIS_CLUSTER_CTL_H_

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "backends/redis/redis_client.h"
#include "backends/redis/redis_router.h"
#include "tests/test_util.h"

namespace sessionctx::testing {

inline std::string ClusterCtl() {
  const char* ctl = std::getenv("SESSIONCTX_TEST_REDIS_CLUSTER_CTL");
  return ctl ? ctl : "";
}

// NodeCli: redis-cli ARGS on the node at `port`.
inline std::string NodeCli(int port, const std::string& args) {
  return Shell(absl::StrCat(ClusterCtl(), " cli ", port, " ", args));
}

// ClusterPorts: the node ports of "main" or "spare".
inline std::vector<int> ClusterPorts(const std::string& cluster) {
  std::vector<int> out;
  for (absl::string_view p :
       absl::StrSplit(Shell(absl::StrCat(ClusterCtl(), " ports ", cluster)), ' ',
                      absl::SkipEmpty())) {
    int port = 0;
    if (absl::SimpleAtoi(p, &port)) out.push_back(port);
  }
  return out;
}

// WaitClusterOk: whether every running node of the cluster says cluster_state:ok
// (within 30 s).
inline bool WaitClusterOk(const std::string& cluster) {
  return std::system(
             absl::StrCat(ClusterCtl(), " wait ", cluster, " >/dev/null").c_str()) == 0;
}

// ReplicatedMaster: the spare cluster's master that has a replica, and the replica
// ({0, 0} when none).
inline std::pair<int, int> ReplicatedMaster() {
  for (const int port : ClusterPorts("spare")) {
    const std::string info = NodeCli(port, "info replication");
    if (info.find("role:slave") == std::string::npos) continue;
    for (absl::string_view line : absl::StrSplit(info, '\n')) {
      int master = 0;
      if (absl::ConsumePrefix(&line, "master_port:") &&
          absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &master)) {
        return {master, port};
      }
    }
  }
  return {0, 0};
}

// WaitReplicaLinked: whether the replica at `port` has its master's data and follows
// it (master_link_status:up, within 30 s).
inline bool WaitReplicaLinked(int port) {
  for (int i = 0; i < 300; ++i) {
    if (NodeCli(port, "info replication").find("master_link_status:up") !=
        std::string::npos)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// SlotRangesOf: the slot ranges the master at `port` serves, as it sees them.
inline std::vector<redis::SlotRange> SlotRangesOf(int port) {
  redis::RedisOptions options;
  options.host = "127.0.0.1";
  options.port = port;
  absl::StatusOr<std::unique_ptr<redis::Connection>> conn =
      redis::Connection::Open(options);
  if (!conn.ok()) return {};
  redis::Command c;
  c.Add("CLUSTER").Add("SHARDS");
  absl::StatusOr<redis::Reply> r = (*conn)->Call(c);
  if (!r.ok()) return {};
  absl::StatusOr<std::vector<redis::SlotRange>> ranges =
      redis::ParseClusterShards(r->get());
  std::vector<redis::SlotRange> out;
  if (ranges.ok()) {
    for (const redis::SlotRange& range : *ranges) {
      if (range.port == port) out.push_back(range);
    }
  }
  return out;
}

// SessionPortOf: the port of the master of the main cluster serving `key`'s slot.
inline int SessionPortOf(const std::string& key) {
  const int slot = redis::KeySlot(key);
  for (const int port : ClusterPorts("main")) {
    for (const redis::SlotRange& r : SlotRangesOf(port)) {
      if (slot >= r.first && slot <= r.last) return port;
    }
  }
  return 0;
}

// SessionIdsOn: `n` ids "<stem><i>" of tenant acme whose keys under `prefix` fall in
// a slot the master at `port` serves (any slot when `port` is 0).
inline std::vector<std::string> SessionIdsOn(int port, const std::string& prefix, int n,
                                             const std::string& stem = "s") {
  const std::vector<redis::SlotRange> ranges =
      port == 0 ? std::vector<redis::SlotRange>{} : SlotRangesOf(port);
  std::vector<std::string> ids;
  for (int i = 0; static_cast<int>(ids.size()) < n && i < 10000000; ++i) {
    const std::string id = absl::StrCat(stem, i);
    const int slot =
        redis::KeySlot(redis::SessionKeyName(prefix, /*bucketed=*/true, "acme", id));
    bool mine = port == 0;
    for (const redis::SlotRange& r : ranges) mine |= slot >= r.first && slot <= r.last;
    if (mine) ids.push_back(id);
  }
  return ids;
}

}  // namespace sessionctx::testing

#endif  // SESSIONCTX_TESTS_REDIS_CLUSTER_CTL_H_
