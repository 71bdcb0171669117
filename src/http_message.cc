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

namespace sessionctx {
namespace {

// LowerHex: `text` is lower-case hex digits only; `nonzero`: and not all zeros.
bool LowerHex(absl::string_view text, bool nonzero) {
  bool any = false;
  for (const char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    any = any || c != '0';
  }
  return !nonzero || any;
}

}  // namespace

// version "-" trace-id "-" parent-id "-" flags (W3C Trace Context, level 1): 2, 32, 16
// and 2 hex digits; a later version may append "-…" after the flags.
std::string TraceId(absl::string_view tp) {
  if (tp.size() < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return "";
  const absl::string_view version = tp.substr(0, 2);
  if (!LowerHex(version, false) || version == "ff") return "";
  if (tp.size() > 55 && (version == "00" || tp[55] != '-')) return "";
  if (!LowerHex(tp.substr(3, 32), true) || !LowerHex(tp.substr(36, 16), true) ||
      !LowerHex(tp.substr(53, 2), false)) {
    return "";
  }
  return std::string(tp.substr(3, 32));
}

}  // namespace sessionctx
