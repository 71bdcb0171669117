// The `rocksdb:` backend: embedded and durable.
//
//   rocksdb:PATH[?sync=true&cache_mb=N&inline_context_bytes=N]
//
// sync=false (default): every acknowledged write is in RocksDB's write-ahead log in the
// OS before the call returns, so a crash of the process (kill -9) loses nothing; a
// power loss may lose the last writes. sync=true fsyncs the log per write: not even
// a power loss loses an acknowledged write. cache_mb sizes the block cache (default 32).
// inline_context_bytes (default 4096): a context up to this size, as JSON text, is kept
// in the session's one record (a read is one point lookup); a larger one is kept as a
// key per attribute (writing one attribute never rewrites the others). Existing
// sessions keep their layout until their next write.
//
// One process at a time: a second process opening the same PATH fails at once with
// FailedPrecondition (RocksDB's LOCK file), it does not wait.
//
// Example:
//   absl::StatusOr<std::unique_ptr<SessionStore>> store =
//       OpenRocksDbStore("rocksdb:/var/lib/sessionctx?cache_mb=256", StoreOptions{});
#ifndef SESSIONCTX_ROCKSDB_STORE_H_
#define SESSIONCTX_ROCKSDB_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "sessionctx/options.h"
#include "sessionctx/session_store.h"

namespace sessionctx {

// OpenRocksDbStore opens (creating if missing) the store named by `uri`.
absl::StatusOr<std::unique_ptr<SessionStore>> OpenRocksDbStore(const std::string& uri,
                                                               const StoreOptions& options);

}  // namespace sessionctx

#endif  // SESSIONCTX_ROCKSDB_STORE_H_
