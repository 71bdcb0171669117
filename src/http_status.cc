#include "absl/strings/match.h"
#include "sessionctx/http_handler.h"

namespace sessionctx {

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 413;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return 503;
    default:
      return 500;
  }
}

HttpResponse ErrorResponse(int status, absl::string_view message, const Json& extra) {
  HttpResponse res;
  res.status = status;
  res.headers.emplace_back("Content-Type", "application/json");
  Json body = {{"code", status}, {"message", std::string(message)}};
  if (extra.is_object()) body.update(extra);
  res.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return res;
}

namespace {

// FindHeader: the first value of header `name` (any case), or nullptr.
const std::string* FindHeader(const HttpHeaders& headers, absl::string_view name) {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return &v;
  }
  return nullptr;
}

}  // namespace

absl::string_view HttpRequest::Header(absl::string_view name) const {
  const std::string* v = FindHeader(headers, name);
  return v ? absl::string_view(*v) : absl::string_view();
}

bool HttpRequest::HasHeader(absl::string_view name) const {
  return FindHeader(headers, name) != nullptr;
}

absl::string_view HttpResponse::Header(absl::string_view name) const {
  const std::string* v = FindHeader(headers, name);
  return v ? absl::string_view(*v) : absl::string_view();
}

}  // namespace sessionctx
