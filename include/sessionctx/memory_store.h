// The `memory:` backend: records in process memory, sharded by key hash, each shard
// behind its own mutex. For tests and single-process caches; nothing survives the
// process.
//
// Example:
//   std::unique_ptr<SessionStore> store = NewMemoryStore(StoreOptions{});
//   SessionService service(store.get(), ServiceOptions{});
#ifndef SESSIONCTX_MEMORY_STORE_H_
#define SESSIONCTX_MEMORY_STORE_H_

#include <memory>

#include "sessionctx/options.h"
#include "sessionctx/session_store.h"

namespace sessionctx {

// NewMemoryStore returns an empty store. `shards` (default 32) bounds lock contention.
std::unique_ptr<SessionStore> NewMemoryStore(const StoreOptions& options, int shards = 32);

}  // namespace sessionctx

#endif  // SESSIONCTX_MEMORY_STORE_H_
