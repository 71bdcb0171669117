// HttpStatusFor: the HTTP status that stands for a library status, for programs that
// use SessionService directly and answer over HTTP themselves (no HTTP code here).
//
// Example:
//   absl::StatusOr<int64_t> v = service.Patch(key, body);
//   if (!v.ok()) reply(HttpStatusFor(v.status()), v.status().message());
#ifndef SESSIONCTX_HTTP_STATUS_H_
#define SESSIONCTX_HTTP_STATUS_H_

#include "absl/status/status.h"

namespace sessionctx {

// HttpStatusFor maps a library status to its HTTP status: InvalidArgument 400,
// Unauthenticated 401, PermissionDenied 403, NotFound 404, Aborted / AlreadyExists /
// FailedPrecondition 409, ResourceExhausted 413, a StorageFullError (session_store.h)
// 507, other Unavailable / DeadlineExceeded 503, anything else 500 (OK is 200).
int HttpStatusFor(const absl::Status& status);

}  // namespace sessionctx

#endif  // SESSIONCTX_HTTP_STATUS_H_
