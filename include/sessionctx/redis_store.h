// The `redis://` backend: sessions in Redis, for teams that run Redis already and for
// many stateless app instances sharing one store.
//
//   redis://[[user]:password@]host[:port][/db][?pool_size=16&timeout_ms=2000
//       &prefix=sessionctx:&durability=server|replicas:N]
//
// Each session is one hash under "<prefix>{<tenant>/<sessionId>}" (the braces are its
// hash tag: all of a session lives in one slot). Every write is one Lua script that
// checks existence, the customer guard and the version, applies the change and the
// size limit, bumps the version and sets the expiry, atomically on the server, in one
// round trip; a read is one HGETALL. An attribute write touches that attribute alone.
// Anonymous sessions carry Redis's own expiry (moved by every write); a read also
// checks the stored expiry by the store's clock, so an expired session is missing
// even before Redis evicts it. Customer sessions never expire. With the event feed
// (StoreOptions::events, on by default) every write script also appends
// its event to a Stream and keeps anonymous sessions in an expiry index, and
// PurgeExpired sweeps the sessions due, each with its `expired` event
// (docs/events.md).
//
// timeout_ms bounds the connect, every call and the wait for a pooled connection:
// when Redis is unreachable calls fail with Unavailable, never hang, and broken
// connections are replaced on the next call. What an acknowledged write survives
// depends on the server's persistence (docs/backends.md); durability=replicas:N adds a
// WAIT for N replicas after each write (in the same round trip, waiting at most half
// of timeout_ms) and fails the write (Unavailable) when fewer confirmed it in time. Out
// of memory (maxmemory) or failing persistence refuse writes with StorageFullError (HTTP
// 507) while reads are served.
//
// A Redis Cluster, past one machine:
//
//   redis+cluster://[[user]:password@]host:port[,host:port…][?pool_size=16&timeout_ms=2000
//       &prefix=sessionctx:&durability=server|replicas:N]
//
// The nodes named are seeds: the slot map is read from the first that answers, and
// the rest of the cluster is found there. Each command goes to the master serving its
// session's slot (one pool of pool_size connections per master); a slot that moved
// (MOVED, ASK) or a node that failed sends the command again, a few times at most,
// after a short back-off and a new look at the slot map, then fails with Unavailable
// (HTTP 503) until the cluster serves the slot again. A cluster's sessions are keyed
// by bucket, "<prefix>{<tag>}<tenant>/<sessionId>" (128 buckets, each with its event
// stream and expiry index in its slot): every command touches one slot, and the same
// scripts run unchanged. A cluster holding sessions of the older per-session layout
// is refused at open (FailedPrecondition; docs/backends.md). ForEach (export) walks
// every master. Stats() has each node's gauges, labelled with the node.
//
// Example:
//   absl::StatusOr<std::unique_ptr<SessionStore>> store =
//       OpenRedisStore("redis://127.0.0.1:6379/0?pool_size=16", StoreOptions{});
#ifndef SESSIONCTX_REDIS_STORE_H_
#define SESSIONCTX_REDIS_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "sessionctx/options.h"
#include "sessionctx/session_store.h"

namespace sessionctx {

// OpenRedisStore connects (a cluster: reads its slot map), loads the scripts and
// returns the store; it takes redis:// and redis+cluster:// URIs. InvalidArgument for a
// bad URI, Unavailable when Redis cannot be reached.
absl::StatusOr<std::unique_ptr<SessionStore>> OpenRedisStore(const std::string& uri,
                                                             const StoreOptions& options);

}  // namespace sessionctx

#endif  // SESSIONCTX_REDIS_STORE_H_
