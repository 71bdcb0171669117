// OpenSessionStore: a store chosen at run time by its URI's scheme, over the backends
// this build compiled in (target sessionctx::stores). A program that knows its backend
// links only that one (sessionctx::memory, ::rocksdb, ::postgres) and calls its Open
// function instead.
//
// Example:
//   absl::StatusOr<std::unique_ptr<SessionStore>> store =
//       OpenSessionStore(flags.store_uri, StoreOptions{});
//   if (!store.ok()) return Fail(store.status());
#ifndef SESSIONCTX_STORE_FACTORY_H_
#define SESSIONCTX_STORE_FACTORY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "sessionctx/options.h"
#include "sessionctx/session_store.h"

namespace sessionctx {

// OpenSessionStore opens the backend named by the URI's scheme:
//   "memory:"                    in-process, sharded
//   "rocksdb:PATH[?sync=true&cache_mb=N]"   embedded, durable
//   "postgresql://…" / "postgres://…"       a libpq connection URI
// InvalidArgument for an unknown scheme or a malformed URI; Unimplemented for a
// backend compiled out; the backend's own errors otherwise.
absl::StatusOr<std::unique_ptr<SessionStore>> OpenSessionStore(const std::string& uri,
                                                               const StoreOptions& options);

// StoreBackendName: the canonical name of the backend a URI names, whatever the
// scheme's spelling or case ("memory", "rocksdb", "postgres" for postgresql:// and
// postgres://), as metrics and logs label it; "" for an unknown scheme.
std::string StoreBackendName(const std::string& uri);

// RedactedStoreUri: `uri` fit for a log line: the password of its user information
// (`redis://:PASSWORD@…`, `postgresql://user:PASSWORD@…`) and the value of any
// `password` query parameter replaced by `***`, e.g.
// "redis://app:***@cache:6379/0" for "redis://app:s3cret@cache:6379/0".
std::string RedactedStoreUri(const std::string& uri);

// StoreUriWithPassword: `uri` with `password` as the store's password, so that the
// password can come from a file rather than a command line: `redis://` and
// `redis+cluster://` take it as the user information's password (`redis://:PW@…`,
// `redis://user:PW@…`, replacing one the URI holds), `postgresql://` as its `password`
// parameter. Percent-encoded as URIs need. InvalidArgument for a store that takes no
// password (`memory:`, `rocksdb:`) and for an unknown scheme.
absl::StatusOr<std::string> StoreUriWithPassword(const std::string& uri,
                                                 const std::string& password);

}  // namespace sessionctx

#endif  // SESSIONCTX_STORE_FACTORY_H_
