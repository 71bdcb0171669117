#include "sessionctx/http_routes.h"

#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace sessionctx {
namespace {

using Segments = absl::InlinedVector<absl::string_view, 8>;

Segments Split(absl::string_view path) {
  Segments segs;
  if (path.empty() || path[0] != '/') return segs;
  for (absl::string_view s : absl::StrSplit(path.substr(1), '/')) segs.push_back(s);
  return segs;
}

// The templates split once into their segments.
const std::vector<Segments>& TemplateSegments() {
  static const std::vector<Segments>* const templates = [] {
    auto* t = new std::vector<Segments>();
    for (const RouteSpec& spec : kRoutes) t->push_back(Split(spec.path));
    return t;
  }();
  return *templates;
}

bool IsPlaceholder(absl::string_view s) { return s.size() > 2 && s.front() == '{'; }

// Find: the index in kRoutes whose template `segs` fits, or -1.
int Find(const Segments& segs) {
  const std::vector<Segments>& templates = TemplateSegments();
  for (size_t r = 0; r < templates.size(); ++r) {
    const Segments& t = templates[r];
    if (t.size() != segs.size()) continue;
    bool fits = true;
    for (size_t i = 0; i < t.size() && fits; ++i) {
      fits = IsPlaceholder(t[i]) ? !segs[i].empty() : segs[i] == t[i];
    }
    if (fits) return static_cast<int>(r);
  }
  return -1;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// PercentDecode decodes one path segment ('+' stays '+': it is a query convention),
// or with `plus_is_space` a query value.
std::optional<std::string> PercentDecode(absl::string_view in,
                                         bool plus_is_space = false) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += plus_is_space && in[i] == '+' ? ' ' : in[i];
      continue;
    }
    if (i + 2 >= in.size()) return std::nullopt;
    const int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

}  // namespace

namespace {

// Matched: the match of route `r` over `segs` (decoded), its `{…}` values copied.
RouteMatch Matched(int r, const Segments& segs) {
  RouteMatch m;
  m.spec = &kRoutes[r];
  const Segments& t = TemplateSegments()[r];
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == "{tenant}") m.tenant = std::string(segs[i]);
    if (t[i] == "{sessionId}") m.session_id = std::string(segs[i]);
    if (t[i] == "{attributeName}") m.attribute = std::string(segs[i]);
    if (t[i] == "{customerId}") m.customer_id = std::string(segs[i]);
  }
  return m;
}

}  // namespace

absl::StatusOr<std::optional<RouteMatch>> MatchRoute(absl::string_view path) {
  if (path.find('%') == absl::string_view::npos) {  // nothing to decode: no copies
    const Segments segs = Split(path);
    const int r = Find(segs);
    if (r < 0) return std::optional<RouteMatch>();
    return std::optional<RouteMatch>(Matched(r, segs));
  }
  // Segments are decoded before they are compared: an escaped letter is the letter.
  std::vector<std::string> decoded;
  for (absl::string_view raw : Split(path)) {
    std::optional<std::string> seg = PercentDecode(raw);
    if (!seg) return absl::InvalidArgumentError("path holds a malformed percent-escape");
    decoded.push_back(*std::move(seg));
  }
  const Segments segs(decoded.begin(), decoded.end());
  const int r = Find(segs);
  if (r < 0) return std::optional<RouteMatch>();
  return std::optional<RouteMatch>(Matched(r, segs));
}

absl::StatusOr<std::optional<std::string>> QueryValue(absl::string_view query,
                                                      absl::string_view name) {
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (kv.first != name) continue;
    std::optional<std::string> value = PercentDecode(kv.second, /*plus_is_space=*/true);
    if (!value) {
      return absl::InvalidArgumentError(
          absl::StrCat("query parameter ", name, " holds a malformed percent-escape"));
    }
    return value;
  }
  return std::optional<std::string>();
}

const RouteSpec* RouteOf(absl::string_view path) {
  if (path.find('%') == absl::string_view::npos) {
    const int r = Find(Split(path));
    return r < 0 ? nullptr : &kRoutes[r];
  }
  absl::StatusOr<std::optional<RouteMatch>> m = MatchRoute(path);
  if (m.ok()) return *m ? (*m)->spec : nullptr;
  const int r = Find(Split(path));  // a bad escape: the route its raw segments fit
  return r < 0 ? nullptr : &kRoutes[r];
}

const char* RouteLabel(absl::string_view path) {
  if (path == "-") return "-";
  const RouteSpec* spec = RouteOf(path);
  return spec == nullptr ? "unmatched" : spec->path;
}

bool Allows(const RouteSpec& spec, absl::string_view method) {
  if (spec.head && method == "HEAD") return true;
  for (absl::string_view m : absl::StrSplit(spec.allow, ", ")) {
    if (m == method) return true;
  }
  return false;
}

HttpResponse MethodNotAllowed(const RouteSpec& spec, absl::string_view method) {
  HttpResponse res = ErrorResponse(
      405,
      absl::StrCat("method ", method, " is not allowed here; allowed: ", spec.allow));
  res.headers.emplace_back("Allow", spec.allow);
  return res;
}

}  // namespace sessionctx
