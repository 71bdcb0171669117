// The redis:// backend's record codec: a session as its hash's fields (the layout is
// in redis_scripts.h) and back, the record's text assembled from an HGETALL reply
// without a DOM.
#ifndef SESSIONCTX_BACKENDS_REDIS_REDIS_RECORD_H_
#define SESSIONCTX_BACKENDS_REDIS_REDIS_RECORD_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backends/redis/redis_client.h"
#include "sessionctx/session_context.h"
#include "sessionctx/session_text.h"

namespace sessionctx::redis {

// Str: a reply's string.
inline absl::string_view Str(const redisReply* r) {
  return absl::string_view(r->str, r->len);
}

// Ms: `t` in Unix milliseconds, as the hash keeps times.
std::string Ms(absl::Time t);

// StoredRecord: a whole record as the hash's fields and values (an HSET's arguments),
// and the expiry to give Redis in milliseconds from now ('' none).
struct StoredRecord {
  Command fields;
  std::string ttl;
};

// StoredOf: `record` of `key` as its hash, `now` being the store's time.
StoredRecord StoredOf(const SessionKey& key, const SessionContext& record,
                      absl::Time now);

// DecodeHash: the record's text from its hash (a non-empty HGETALL reply). NotFound
// when it expired by `now`; DataLoss, with a line on stderr, when the hash lacks its
// metadata or its parts do not add up to the size the writes kept (the hash was
// changed behind the store's back).
absl::StatusOr<std::shared_ptr<const SessionText>> DecodeHash(const SessionKey& key,
                                                              const redisReply* r,
                                                              absl::Time now);

// LogDataLoss: the line on stderr for a session whose stored hash does not decode.
void LogDataLoss(const SessionKey& key, const absl::Status& st);

}  // namespace sessionctx::redis

#endif  // SESSIONCTX_BACKENDS_REDIS_REDIS_RECORD_H_
