// A store-only program: the library without HTTP. It keeps sessions in memory and in
// RocksDB, applies the write rules through SessionService, and shows a version
// conflict. It links sessionctx::memory and sessionctx::rocksdb only: no OpenSSL, no
// HTTP library, no PostgreSQL.
//
//   store_only /tmp/sessions-db
#include <cstdio>
#include <memory>
#include <string>

#include "sessionctx/memory_store.h"
#include "sessionctx/rocksdb_store.h"
#include "sessionctx/session_service.h"
#include "sessionctx/version.h"

namespace {

// [embed:store-only-exercise]
// Exercise runs one shopper's session through `store`; returns 0 on success.
int Exercise(const char* name, sessionctx::SessionStore* store) {
  sessionctx::SessionService service(store, sessionctx::ServiceOptions{});
  absl::StatusOr<sessionctx::SessionContext> created = service.Create("acme", {});
  if (!created.ok()) {
    std::fprintf(stderr, "%s: create: %s\n", name, created.status().ToString().c_str());
    return 1;
  }
  const sessionctx::SessionKey key{"acme", created->session_id};  // version 1

  absl::StatusOr<int64_t> v = service.SetAttribute(key, "giftWrap", true);  // version 2
  if (!v.ok()) return 1;
  v = service.Patch(key, {{"currency", "CHF"}, {"metadata", {{"version", *v}}}});  // 3
  if (!v.ok()) return 1;

  // A writer that read version 2 is refused: nothing is lost to it.
  absl::StatusOr<int64_t> stale = service.Patch(key, {{"currency", "USD"}, {"metadata", {{"version", 2}}}});
  const bool conflict = absl::IsAborted(stale.status()) &&
                        sessionctx::CurrentVersionOf(stale.status()) == 3;

  // The record as stored JSON text (what a server sends), then as a value.
  absl::StatusOr<std::shared_ptr<const sessionctx::SessionText>> text = service.GetText(key);
  if (!text.ok()) return 1;
  std::printf("%s: %.*s\n", name, static_cast<int>((*text)->json().size()), (*text)->json().data());
  absl::StatusOr<sessionctx::SessionContext> read = service.Get(key);
  if (!read.ok()) return 1;
  const bool ok = conflict && read->version == 3 && read->currency == "CHF" &&
                  read->context["giftWrap"] == true && (*text)->version() == 3 &&
                  (*text)->Context()["giftWrap"] == true;
  if (!ok) std::fprintf(stderr, "%s: unexpected result\n", name);
  return ok ? 0 : 1;
}
// [end:store-only-exercise]

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: store_only ROCKSDB_PATH\n");
    return 2;
  }
  std::printf("sessionctx %s\n", sessionctx::kVersion);

  // [embed:store-only-open]
  std::unique_ptr<sessionctx::SessionStore> memory =
      sessionctx::NewMemoryStore(sessionctx::StoreOptions{});
  absl::StatusOr<std::unique_ptr<sessionctx::SessionStore>> rocksdb =
      sessionctx::OpenRocksDbStore(std::string("rocksdb:") + argv[1], sessionctx::StoreOptions{});
  if (!rocksdb.ok()) {
    std::fprintf(stderr, "rocksdb: %s\n", rocksdb.status().ToString().c_str());
    return 1;
  }
  return Exercise("memory", memory.get()) | Exercise("rocksdb", rocksdb->get());
  // [end:store-only-open]
}
