#include "sessionctx/session_context.h"

#include <cstdio>
#include <random>

#include "absl/strings/str_cat.h"
#include "sessionctx/base_fields.h"

namespace sessionctx {
namespace {

bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return IsUpper(c) || IsLower(c); }

absl::Status Invalid(absl::string_view field, absl::string_view expected) {
  return absl::InvalidArgumentError(absl::StrCat(field, " ", expected));
}

// Reads an optional string member: absent stays nullopt; anything but a string fails.
absl::Status ReadOptionalString(const Json& json, const char* name,
                                absl::Status (*validate)(absl::string_view),
                                std::optional<std::string>& out) {
  auto it = json.find(name);
  if (it == json.end()) return absl::OkStatus();
  if (!it->is_string()) return Invalid(name, "must be a string");
  const std::string& value = it->get_ref<const std::string&>();
  if (validate != nullptr) {
    if (absl::Status s = validate(value); !s.ok()) return s;
  }
  out = value;
  return absl::OkStatus();
}

}  // namespace

Json ToJson(const SessionContext& s) {
  Json j = Json::object();
  j["sessionId"] = s.session_id;
  for (const BaseField& f : kBaseFields) {
    if (s.*f.member) j[f.name] = *(s.*f.member);
  }
  j["context"] = s.context.is_object() ? s.context : Json::object();
  j["metadata"] = {{"version", s.version},
                   {"createdAt", FormatTimestamp(s.created_at)},
                   {"modifiedAt", FormatTimestamp(s.modified_at)}};
  return j;
}

absl::StatusOr<SessionContext> SessionContextFromJson(const Json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("session must be a JSON object");
  SessionContext s;
  auto id = j.find("sessionId");
  if (id == j.end() || !id->is_string()) return Invalid("sessionId", "must be a string");
  s.session_id = id->get<std::string>();
  if (absl::Status st = ValidateSessionId(s.session_id); !st.ok()) return st;
  for (const BaseField& f : kBaseFields) {
    if (absl::Status st = ReadOptionalString(j, f.name, f.validate, s.*f.member); !st.ok()) {
      return st;
    }
  }
  auto ctx = j.find("context");
  if (ctx != j.end()) {
    if (!ctx->is_object()) return Invalid("context", "must be an object");
    s.context = *ctx;
  }
  auto meta = j.find("metadata");
  if (meta == j.end() || !meta->is_object()) return Invalid("metadata", "must be an object");
  auto version = meta->find("version");
  if (version == meta->end() || !version->is_number_integer() || version->get<int64_t>() < 1) {
    return Invalid("metadata.version", "must be a positive integer");
  }
  s.version = version->get<int64_t>();
  for (auto [name, out] : {std::pair{"createdAt", &s.created_at},
                           std::pair{"modifiedAt", &s.modified_at}}) {
    auto t = meta->find(name);
    if (t == meta->end() || !t->is_string()) {
      return Invalid(absl::StrCat("metadata.", name), "must be a timestamp string");
    }
    absl::StatusOr<absl::Time> parsed = ParseTimestamp(t->get<std::string>());
    if (!parsed.ok()) return Invalid(absl::StrCat("metadata.", name), "must be ISO 8601 UTC");
    *out = *parsed;
  }
  return s;
}

std::string FormatTimestamp(absl::Time t) {
  // Truncate to whole milliseconds so that a round trip through text is exact.
  t = absl::FromUnixMillis(absl::ToUnixMillis(t));
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

namespace {

// ParseOwnTimestamp reads exactly what FormatTimestamp writes, "YYYY-MM-DDTHH:MM:SS.mmmZ",
// without a time zone lookup; nullopt for anything else (then the general parser runs).
std::optional<absl::Time> ParseOwnTimestamp(absl::string_view t) {
  if (t.size() != 24 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' ||
      t[16] != ':' || t[19] != '.' || t[23] != 'Z') {
    return std::nullopt;
  }
  auto num = [&](int at, int digits, int64_t& out) {
    out = 0;
    for (int i = at; i < at + digits; ++i) {
      if (!IsDigit(t[i])) return false;
      out = out * 10 + (t[i] - '0');
    }
    return true;
  };
  int64_t y, mo, d, h, mi, s, ms;
  if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) ||
      !num(17, 2, s) || !num(20, 3, ms)) {
    return std::nullopt;
  }
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
      h > 23 || mi > 59 || s > 59) {
    return std::nullopt;  // the general parser decides (leap seconds, errors)
  }
  // Days from civil (proleptic Gregorian), the inverse of FormatTimestamp's.
  const int64_t yy = y - (mo <= 2);
  const int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
  const int64_t yoe = yy - era * 400;
  const int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const int64_t days = era * 146'097 + doe - 719'468;
  return absl::FromUnixMillis(((days * 24 + h) * 60 + mi) * 60'000 + s * 1000 + ms);
}

}  // namespace

absl::StatusOr<absl::Time> ParseTimestamp(absl::string_view text) {
  if (std::optional<absl::Time> own = ParseOwnTimestamp(text)) return *own;
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, absl::UTCTimeZone(), &t, &err)) {
    return absl::InvalidArgumentError(absl::StrCat("bad timestamp: ", err));
  }
  return t;
}

std::string NewSessionId() {
  thread_local std::mt19937_64 rng([] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }());
  uint64_t hi = rng(), lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  char buf[37];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx",
                static_cast<unsigned>(hi >> 32), static_cast<unsigned>((hi >> 16) & 0xffff),
                static_cast<unsigned>(hi & 0xffff), static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

absl::Status ValidateTenant(absl::string_view t) {
  if (t.size() < 3 || t.size() > 16) {
    return Invalid("tenant", absl::StrCat("must be 3 to 16 characters long, got ", t.size()));
  }
  if (!IsLower(t[0])) return Invalid("tenant", "must start with a lower-case letter");
  for (char c : t) {
    if (!IsLower(c) && !IsDigit(c)) {
      return Invalid("tenant", "may hold only lower-case letters and digits");
    }
  }
  return absl::OkStatus();
}

bool IsValidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    int extra;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      const unsigned char cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += extra + 1;
  }
  return true;
}

absl::Status ValidateSessionId(absl::string_view id) {
  if (id.empty() || id.size() > 256) return Invalid("sessionId", "must be 1 to 256 characters");
  if (!IsValidUtf8(id)) return Invalid("sessionId", "must be valid UTF-8");
  for (unsigned char c : id) {
    if (c < 0x20 || c == 0x7f) return Invalid("sessionId", "must not hold control characters");
  }
  return absl::OkStatus();
}

absl::Status ValidateNoNul(absl::string_view text, absl::string_view what) {
  if (text.find('\0') != absl::string_view::npos) {
    return Invalid(what, "must not hold the NUL character (U+0000)");
  }
  return absl::OkStatus();
}

absl::Status ValidateCustomerId(absl::string_view id) {
  if (id.empty() || id.size() > 256) return Invalid("customerId", "must be 1 to 256 characters");
  return ValidateNoNul(id, "customerId");
}

absl::Status ValidateSiteCode(absl::string_view site) {
  if (site.empty() || site.size() > 256) return Invalid("siteCode", "must be 1 to 256 characters");
  return ValidateNoNul(site, "siteCode");
}

absl::Status ValidateCurrency(absl::string_view c) {
  if (c.size() != 3 || !IsUpper(c[0]) || !IsUpper(c[1]) || !IsUpper(c[2])) {
    return Invalid("currency", "must be an ISO 4217 code of 3 upper-case letters, e.g. EUR");
  }
  return absl::OkStatus();
}

absl::Status ValidateTargetLocation(absl::string_view c) {
  if (c.size() != 2 || !IsUpper(c[0]) || !IsUpper(c[1])) {
    return Invalid("targetLocation",
                   "must be an ISO 3166-1 alpha-2 code of 2 upper-case letters, e.g. DE");
  }
  return absl::OkStatus();
}

absl::Status ValidateLanguage(absl::string_view lang) {
  // BCP 47 shape: a primary subtag of 2-8 letters, then subtags of 1-8 letters or
  // digits, separated by '-'. Registry membership is not checked.
  const absl::Status bad =
      Invalid("language", "must be a BCP 47 language tag, e.g. en or de-CH");
  if (lang.empty() || lang.size() > 64) return bad;
  size_t start = 0;
  bool first = true;
  while (true) {
    size_t end = lang.find('-', start);
    absl::string_view sub =
        lang.substr(start, end == absl::string_view::npos ? absl::string_view::npos : end - start);
    if (sub.empty() || sub.size() > 8) return bad;
    if (first && sub.size() < 2) return bad;
    for (char c : sub) {
      if (first ? !IsAlpha(c) : !(IsAlpha(c) || IsDigit(c))) return bad;
    }
    first = false;
    if (end == absl::string_view::npos) break;
    start = end + 1;
  }
  return absl::OkStatus();
}

absl::Status ValidateCartId(absl::string_view cart) {
  if (cart.size() > 256) return Invalid("cartId", "must be at most 256 characters");
  return ValidateNoNul(cart, "cartId");
}

}  // namespace sessionctx
