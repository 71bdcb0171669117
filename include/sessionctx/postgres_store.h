// The `postgresql://` backend: many stateless app instances sharing one database.
//
//   postgresql://user:pass@host:5432/db?pool_size=8&connect_timeout=3
//       &statement_timeout_ms=5000&acquire_timeout_ms=5000&schema=sessionctx
//   postgresql:///db?host=/run/postgresql          (Unix socket)
//
// Everything but pool_size, statement_timeout_ms, acquire_timeout_ms and schema goes to
// libpq as given. The schema (default "sessionctx") is created and migrated on open
// under an advisory lock, so instances starting together do not race. Every operation
// is one prepared statement, one round trip; compare-and-set and attribute writes are
// single conditional statements, atomic in the database.
//
// When the server is unreachable, calls fail with Unavailable within connect_timeout
// (default 3 s); broken connections are replaced on the next call, so the store
// recovers by itself when the server is back.
//
// Example:
//   absl::StatusOr<std::unique_ptr<SessionStore>> store =
//       OpenPostgresStore("postgresql://app@db/sessions?pool_size=16", StoreOptions{});
#ifndef SESSIONCTX_POSTGRES_STORE_H_
#define SESSIONCTX_POSTGRES_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "sessionctx/options.h"
#include "sessionctx/session_store.h"

namespace sessionctx {

// The schema version this build creates and understands.
inline constexpr int kPostgresSchemaVersion = 6;

absl::StatusOr<std::unique_ptr<SessionStore>> OpenPostgresStore(const std::string& uri,
                                                                const StoreOptions& options);

// MigratePostgresSchema brings the schema named by `uri` to `version` (1 ..
// kPostgresSchemaVersion) without opening a store. For migration tests and tools.
absl::Status MigratePostgresSchema(const std::string& uri, int version);

}  // namespace sessionctx

#endif  // SESSIONCTX_POSTGRES_STORE_H_
