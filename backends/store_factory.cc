// OpenSessionStore: the URI scheme picks the backend through one explicit, immutable
// table (no static self-registration, which static linking can silently drop).
#include <algorithm>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "sessionctx/memory_store.h"
#include "sessionctx/session_store.h"
#include "sessionctx/store_factory.h"
#ifdef SESSIONCTX_HAVE_ROCKSDB
#include "sessionctx/rocksdb_store.h"
#endif
#ifdef SESSIONCTX_HAVE_POSTGRES
#include "sessionctx/postgres_store.h"
#endif
#ifdef SESSIONCTX_HAVE_REDIS
#include "sessionctx/redis_store.h"
#endif

namespace sessionctx {
namespace {

using Opener = absl::StatusOr<std::unique_ptr<SessionStore>> (*)(const std::string& uri,
                                                                 const StoreOptions& options);

absl::StatusOr<std::unique_ptr<SessionStore>> OpenMemory(const std::string& uri,
                                                         const StoreOptions& options) {
  const std::string rest = uri.substr(uri.find(':'));  // the scheme's case is free
  if (rest != ":" && rest != "://") {
    return absl::InvalidArgumentError("the memory store takes no path: use \"memory:\"");
  }
  return NewMemoryStore(options);
}

absl::StatusOr<std::unique_ptr<SessionStore>> OpenRocksDb(const std::string& uri,
                                                          const StoreOptions& options) {
#ifdef SESSIONCTX_HAVE_ROCKSDB
  return OpenRocksDbStore(uri, options);
#else
  return absl::UnimplementedError("this build has no rocksdb: backend");
#endif
}

absl::StatusOr<std::unique_ptr<SessionStore>> OpenPostgres(const std::string& uri,
                                                           const StoreOptions& options) {
#ifdef SESSIONCTX_HAVE_POSTGRES
  return OpenPostgresStore(uri, options);
#else
  return absl::UnimplementedError("this build has no postgresql:// backend");
#endif
}

absl::StatusOr<std::unique_ptr<SessionStore>> OpenRedis(const std::string& uri,
                                                        const StoreOptions& options) {
#ifdef SESSIONCTX_HAVE_REDIS
  return OpenRedisStore(uri, options);
#else
  return absl::UnimplementedError("this build has no redis:// backend");
#endif
}

// Scheme: a URI scheme (lower case), the backend's canonical name (metrics, logs),
// and how to open it.
struct Scheme {
  const char* name;
  const char* backend;
  Opener open;
};

constexpr Scheme kSchemes[] = {
    {"memory", "memory", OpenMemory},
    {"rocksdb", "rocksdb", OpenRocksDb},
    {"postgresql", "postgres", OpenPostgres},
    {"postgres", "postgres", OpenPostgres},
    {"redis", "redis", OpenRedis},
    {"redis+cluster", "redis-cluster", OpenRedis},
};

const Scheme* SchemeOf(const std::string& uri) {
  const size_t colon = uri.find(':');
  if (colon == std::string::npos || colon == 0) return nullptr;
  const std::string scheme = absl::AsciiStrToLower(uri.substr(0, colon));
  for (const Scheme& s : kSchemes) {
    if (scheme == s.name) return &s;
  }
  return nullptr;
}

}  // namespace

std::string StoreBackendName(const std::string& uri) {
  const Scheme* s = SchemeOf(uri);
  return s == nullptr ? std::string() : s->backend;
}

std::string RedactedStoreUri(const std::string& uri) {
  std::string out = uri;
  const size_t authority = out.find("://");
  if (authority != std::string::npos) {
    const size_t start = authority + 3;
    const size_t end = std::min(out.find_first_of("/?#", start), out.size());
    const size_t at = out.rfind('@', end - 1);
    const size_t colon = at != std::string::npos && at >= start ? out.find(':', start)
                                                                : std::string::npos;
    if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
  }
  for (size_t q = out.find_first_of("?&"); q != std::string::npos;
       q = out.find_first_of("&", q + 1)) {
    if (out.compare(q + 1, 9, "password=") != 0) continue;
    const size_t value = q + 10;
    out.replace(value, std::min(out.find('&', value), out.size()) - value, "***");
  }
  return out;
}

namespace {

// PercentEncoded: every byte but the unreserved ones (RFC 3986) as %XX.
std::string PercentEncoded(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[static_cast<unsigned char>(c) >> 4];
      out += kHex[static_cast<unsigned char>(c) & 0xf];
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> StoreUriWithPassword(const std::string& uri,
                                                 const std::string& password) {
  const std::string backend = StoreBackendName(uri);
  const std::string encoded = PercentEncoded(password);
  if (backend == "postgres") {
    const size_t fragment = std::min(uri.find('#'), uri.size());
    const std::string head = uri.substr(0, fragment);
    return absl::StrCat(head, head.find('?') == std::string::npos ? "?" : "&",
                        "password=", encoded, uri.substr(fragment));
  }
  if (backend != "redis" && backend != "redis-cluster") {
    return absl::InvalidArgumentError(
        backend.empty() ? "a password is for a store URI such as redis://… or postgresql://…"
                        : absl::StrCat("the ", backend, " store takes no password"));
  }
  const size_t start = uri.find("://") + 3;
  const size_t end = std::min(uri.find_first_of("/?#", start), uri.size());
  const size_t at = uri.rfind('@', end);
  std::string user;
  size_t host = start;
  if (at != std::string::npos && at >= start) {
    const std::string userinfo = uri.substr(start, at - start);
    user = userinfo.substr(0, userinfo.find(':'));
    host = at + 1;
  }
  return absl::StrCat(uri.substr(0, start), user, ":", encoded, "@", uri.substr(host));
}

absl::StatusOr<std::unique_ptr<SessionStore>> OpenSessionStore(const std::string& uri,
                                                               const StoreOptions& options) {
  const size_t colon = uri.find(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("store URI \"", uri,
                     "\" has no scheme; use memory:, rocksdb:PATH, postgresql://…, "
                     "redis://… or redis+cluster://…"));
  }
  if (const Scheme* s = SchemeOf(uri)) return s->open(uri, options);
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown store scheme \"", absl::AsciiStrToLower(uri.substr(0, colon)),
      "\"; use memory:, rocksdb:PATH, postgresql://…, redis://… or redis+cluster://…"));
}

}  // namespace sessionctx
