// HttpRequest / HttpResponse helpers and the JSON error response of http_handler.h.
#include "absl/strings/match.h"
#include "sessionctx/http_handler.h"

namespace sessionctx {

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
