#include "src/json_text.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "sessionctx/session_context.h"

namespace sessionctx::backend {

// SkipString: `i` at an opening quote; returns the index past the closing one.
size_t SkipString(absl::string_view t, size_t i) {
  for (size_t j = i + 1; j < t.size(); ++j) {
    if (t[j] == '\\') {
      ++j;
    } else if (t[j] == '"') {
      return j + 1;
    }
  }
  return t.size();
}

// SkipValue: `i` at a value's first byte; returns the index past its last.
size_t SkipValue(absl::string_view t, size_t i) {
  if (i >= t.size()) return t.size();
  if (t[i] == '"') return SkipString(t, i);
  if (t[i] == '{' || t[i] == '[') {
    int depth = 0;
    for (size_t j = i; j < t.size(); ++j) {
      switch (t[j]) {
        case '"':
          j = SkipString(t, j) - 1;
          break;
        case '{':
        case '[':
          ++depth;
          break;
        case '}':
        case ']':
          if (--depth == 0) return j + 1;
          break;
        default:
          break;
      }
    }
    return t.size();
  }
  size_t j = i;
  while (j < t.size() && t[j] != ',' && t[j] != '}' && t[j] != ']') ++j;
  return j;
}

namespace {

bool IsWhitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// HexUnit: the code unit of the "\\uXXXX" escape at `j`, if there is one.
std::optional<uint32_t> HexUnit(absl::string_view t, size_t j) {
  if (j + 6 > t.size() || t[j] != '\\' || t[j + 1] != 'u') return std::nullopt;
  uint32_t unit = 0;
  for (size_t k = j + 2; k < j + 6; ++k) {
    const char c = t[k];
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    unit = unit * 16 + static_cast<uint32_t>(IsDigit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return unit;
}

// ScanEscape: `j` at a backslash inside a string; the index past the escape, or npos.
// \uXXXX may name a UTF-16 surrogate only as a high-low pair.
size_t ScanEscape(absl::string_view t, size_t j) {
  if (j + 1 >= t.size()) return absl::string_view::npos;
  const char e = t[j + 1];
  if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
      e == 't') {
    return j + 2;
  }
  if (e != 'u') return absl::string_view::npos;
  const std::optional<uint32_t> unit = HexUnit(t, j);
  if (!unit || (*unit >= 0xDC00 && *unit <= 0xDFFF)) return absl::string_view::npos;
  if (*unit < 0xD800 || *unit > 0xDBFF) return j + 6;
  const std::optional<uint32_t> low = HexUnit(t, j + 6);
  if (!low || *low < 0xDC00 || *low > 0xDFFF) return absl::string_view::npos;
  return j + 12;
}

// ScanUtf8: `j` at a byte >= 0x80; the index past its UTF-8 sequence, or npos for a
// bad lead or continuation byte, an overlong form, a surrogate or a code point past
// U+10FFFF.
size_t ScanUtf8(absl::string_view t, size_t j) {
  const auto c = static_cast<unsigned char>(t[j]);
  size_t n = 0;
  uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 1, cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 2, cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 3, cp = c & 0x07;
  } else {
    return absl::string_view::npos;
  }
  if (j + n >= t.size()) return absl::string_view::npos;
  for (size_t k = 1; k <= n; ++k) {
    const auto cc = static_cast<unsigned char>(t[j + k]);
    if ((cc & 0xC0) != 0x80) return absl::string_view::npos;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return absl::string_view::npos;
  }
  return j + n + 1;
}

// ScanString: `i` at the opening quote; the index past the closing one, or npos.
size_t ScanString(absl::string_view t, size_t i) {
  for (size_t j = i + 1; j < t.size();) {
    const auto c = static_cast<unsigned char>(t[j]);
    if (c == '"') return j + 1;
    if (c < 0x20) return absl::string_view::npos;
    j = c == '\\' ? ScanEscape(t, j) : c < 0x80 ? j + 1 : ScanUtf8(t, j);
    if (j == absl::string_view::npos) return j;
  }
  return absl::string_view::npos;
}

// ScanNumber: `i` at a number's first byte; the index past it, or npos.
size_t ScanNumber(absl::string_view t, size_t i) {
  size_t j = i;
  if (j < t.size() && t[j] == '-') ++j;
  if (j >= t.size()) return absl::string_view::npos;
  if (t[j] == '0') {
    ++j;
  } else if (IsDigit(t[j])) {
    while (j < t.size() && IsDigit(t[j])) ++j;
  } else {
    return absl::string_view::npos;
  }
  if (j < t.size() && t[j] == '.') {
    ++j;
    if (j >= t.size() || !IsDigit(t[j])) return absl::string_view::npos;
    while (j < t.size() && IsDigit(t[j])) ++j;
  }
  if (j < t.size() && (t[j] == 'e' || t[j] == 'E')) {
    ++j;
    if (j < t.size() && (t[j] == '+' || t[j] == '-')) ++j;
    if (j >= t.size() || !IsDigit(t[j])) return absl::string_view::npos;
    while (j < t.size() && IsDigit(t[j])) ++j;
  }
  // Beyond a double (a JSON reader would refuse it, as the write path does).
  if (j - i > 15 || t.substr(i, j - i).find_first_of("eE") != absl::string_view::npos) {
    const std::string number(t.substr(i, j - i));
    if (std::isinf(std::strtod(number.c_str(), nullptr))) return absl::string_view::npos;
  }
  return j;
}

// CanonicalEscapes: whether every escape in the string `s` (quotes included) is the
// one the library writes for its character: \" \\ \b \f \n \r \t, and \u00xx (lower
// case) for the other control characters but NUL, which no store accepts.
bool CanonicalEscapes(absl::string_view s) {
  for (size_t k = s.find('\\'); k != absl::string_view::npos; k = s.find('\\', k)) {
    const char e = s[k + 1];
    if (e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
        e == 't') {
      k += 2;
      continue;
    }
    if (e != 'u' || s.substr(k + 2, 2) != "00" || (s[k + 4] != '0' && s[k + 4] != '1'))
      return false;
    const char d = s[k + 5];
    const bool hex = IsDigit(d) || (d >= 'a' && d <= 'f');
    if (!hex || s.substr(k + 4, 2) == "00" ||
        (s[k + 4] == '0' && (d == '8' || d == '9' || d == 'a' || d == 'c' || d == 'd'))) {
      return false;
    }
    k += 6;
  }
  return true;
}

// CanonicalNumber: whether the number text `n` (valid JSON) is the library's own
// rendering of the value it denotes: an integer of at most 18 digits, not "-0", or a
// decimal that renders back to the same text.
bool CanonicalNumber(absl::string_view n) {
  if (n.find_first_of(".eE") == absl::string_view::npos) {
    return n != "-0" && n.size() - (n[0] == '-' ? 1 : 0) <= 18;
  }
  const std::string text(n);
  const double value = std::strtod(text.c_str(), nullptr);
  return std::isfinite(value) && Json(value).dump() == text;
}

// StrictJson checks one JSON text in a single pass: `open_` holds the containers
// open at the read position, innermost last ('{' or '['). In canonical mode it also
// demands the library's own compact rendering (IsCanonicalJson); `keys_` then holds,
// per open object, its last key.
class StrictJson {
 public:
  StrictJson(absl::string_view t, int max_depth, bool canonical = false)
      : t_(t), max_depth_(max_depth), canonical_(canonical) {}

  bool Check() {
    if (!Value()) return false;
    while (true) {
      SkipWhitespace();
      if (open_.empty()) return i_ == t_.size();
      if (!AfterMember()) return false;
    }
  }

 private:
  void SkipWhitespace() {
    if (canonical_) return;  // none allowed: the next token check fails on it
    while (i_ < t_.size() && IsWhitespace(t_[i_])) ++i_;
  }

  // Canonical checks of a string just scanned ([begin, i_)), a key when `key`: keys
  // hold no escape and rise strictly within their object (byte order, as the
  // library's objects keep them).
  bool CanonicalString(size_t begin, bool key) {
    const absl::string_view s = t_.substr(begin, i_ - begin);
    if (!key) return CanonicalEscapes(s);
    if (s.find('\\') != absl::string_view::npos) return false;
    std::optional<absl::string_view>& last = keys_.back();
    if (last && !(*last < s)) return false;
    last = s;
    return true;
  }

  void Open(char c) {
    open_.push_back(c);
    if (canonical_ && c == '{') keys_.emplace_back();
  }
  void Close() {
    if (canonical_ && open_.back() == '{') keys_.pop_back();
    open_.pop_back();
  }
  bool At(char c) const { return i_ < t_.size() && t_[i_] == c; }
  char Closing() const { return open_.back() == '{' ? '}' : ']'; }

  // Key: a member's key and its colon (whitespace first allowed).
  bool Key() {
    SkipWhitespace();
    if (!At('"')) return false;
    const size_t begin = i_;
    i_ = ScanString(t_, i_);
    if (i_ == absl::string_view::npos) return false;
    if (canonical_ && !CanonicalString(begin, /*key=*/true)) return false;
    SkipWhitespace();
    if (!At(':')) return false;
    ++i_;
    return true;
  }

  // Value: a scalar, or the opening of a container (with its first key, or closed
  // at once when empty).
  bool Value() {
    SkipWhitespace();
    if (i_ >= t_.size()) return false;
    const char c = t_[i_];
    if (c == '{' || c == '[') {
      if (static_cast<int>(open_.size()) >= max_depth_) return false;
      Open(c);
      ++i_;
      SkipWhitespace();
      if (At(Closing())) {
        Close();
        ++i_;
        return true;
      }
      return c == '[' ? Value() : Key() && Value();
    }
    const size_t begin = i_;
    if (c == '"') {
      i_ = ScanString(t_, i_);
      if (canonical_ && i_ != absl::string_view::npos && !CanonicalString(begin, false)) {
        return false;
      }
    } else if (c == '-' || IsDigit(c)) {
      i_ = ScanNumber(t_, i_);
      if (canonical_ && i_ != absl::string_view::npos &&
          !CanonicalNumber(t_.substr(begin, i_ - begin))) {
        return false;
      }
    } else if (t_.substr(i_, 4) == "true" || t_.substr(i_, 4) == "null") {
      i_ += 4;
    } else if (t_.substr(i_, 5) == "false") {
      i_ += 5;
    } else {
      return false;
    }
    return i_ != absl::string_view::npos;
  }

  // AfterMember: after a value inside a container, its closing bracket, or a comma
  // and the next member.
  bool AfterMember() {
    if (At(Closing())) {
      Close();
      ++i_;
      return true;
    }
    if (!At(',')) return false;
    ++i_;
    return open_.back() == '{' ? Key() && Value() : Value();
  }

  absl::string_view t_;
  const int max_depth_;
  const bool canonical_;
  size_t i_ = 0;
  std::string open_;
  std::vector<std::optional<absl::string_view>> keys_;
};

}  // namespace

bool IsJsonValue(absl::string_view t, int max_depth) { return StrictJson(t, max_depth).Check(); }

bool IsCanonicalJson(absl::string_view t, int max_depth) {
  return StrictJson(t, max_depth, /*canonical=*/true).Check();
}

namespace {

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighBits = 0x8080808080808080ULL;

uint64_t LoadWord(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

// Whether any byte of `w` is a control byte (< 0x20), '"' or '\\': the bytes a JSON
// string escapes (exact for the word as a whole; bytes >= 0x80 never count).
bool NeedsEscape(uint64_t w) {
  const uint64_t ascii = ~w & kHighBits;  // the high bit of each byte below 0x80
  const uint64_t control = (w - kOnes * 0x20) & ascii;
  const uint64_t quote = w ^ (kOnes * '"');
  const uint64_t backslash = w ^ (kOnes * '\\');
  return (control | ((quote - kOnes) & ~quote & kHighBits) |
          ((backslash - kOnes) & ~backslash & kHighBits)) != 0;
}

}  // namespace

void AppendJsonString(std::string& out, absl::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t run = 0;  // start of the current run of bytes that need no escape
  size_t i = 0;
  while (i < s.size()) {
    // Eight bytes at a time while none needs an escape (nearly always).
    if (i + 8 <= s.size() && !NeedsEscape(LoadWord(s.data() + i))) {
      i += 8;
      continue;
    }
    const size_t stop = std::min(s.size(), i + 8);
    for (; i < stop; ++i) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out.append(s.data() + run, i - run);
      run = i + 1;
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

std::string QuotedJsonString(absl::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

namespace {

bool HasHighByte(absl::string_view s) {
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    if ((LoadWord(s.data() + i) & kHighBits) != 0) return true;
  }
  for (; i < s.size(); ++i) {
    if (static_cast<unsigned char>(s[i]) >= 0x80) return true;
  }
  return false;
}

// A string as dump() writes it: invalid UTF-8 goes to dump() itself, which throws.
void AppendDumpedString(std::string& out, const std::string& s) {
  if (HasHighByte(s) && !IsValidUtf8(s)) {
    out += Json(s).dump();
    return;
  }
  AppendJsonString(out, s);
}

}  // namespace

void AppendJson(std::string& out, const Json& v) {
  switch (v.type()) {
    case Json::value_t::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [key, member] : v.get_ref<const Json::object_t&>()) {
        if (!first) out.push_back(',');
        first = false;
        AppendDumpedString(out, key);
        out.push_back(':');
        AppendJson(out, member);
      }
      out.push_back('}');
      return;
    }
    case Json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const Json& element : v.get_ref<const Json::array_t&>()) {
        if (!first) out.push_back(',');
        first = false;
        AppendJson(out, element);
      }
      out.push_back(']');
      return;
    }
    case Json::value_t::string:
      AppendDumpedString(out, v.get_ref<const std::string&>());
      return;
    case Json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return;
    case Json::value_t::null:
      out += "null";
      return;
    case Json::value_t::number_integer:
      absl::StrAppend(&out, v.get<int64_t>());
      return;
    case Json::value_t::number_unsigned:
      absl::StrAppend(&out, v.get<uint64_t>());
      return;
    default:  // a float (its shortest round-trip form), or a type no session holds
      out += v.dump();
      return;
  }
}

std::string JsonText(const Json& value) {
  std::string out;
  AppendJson(out, value);
  return out;
}

std::optional<MemberSpan> FindMember(absl::string_view t, absl::string_view quoted_key) {
  size_t i = 1;  // past '{'
  while (i < t.size() && t[i] == '"') {
    const size_t key_end = SkipString(t, i);
    const size_t value_begin = key_end + 1;  // past ':'
    const size_t value_end = SkipValue(t, value_begin);
    if (t.substr(i, key_end - i) == quoted_key) return MemberSpan{i, value_end, value_begin};
    i = value_end;
    if (i < t.size() && t[i] == ',') ++i;
  }
  return std::nullopt;
}

}  // namespace sessionctx::backend

namespace sessionctx::internal {

void AppendTimestamp(std::string& out, absl::Time t) {
  const int64_t ms = absl::ToUnixMillis(t);
  int64_t days = ms / 86'400'000;
  int64_t in_day = ms % 86'400'000;
  if (in_day < 0) {
    in_day += 86'400'000;
    --days;
  }
  // Civil date from days since 1970-01-01 (proleptic Gregorian).
  const int64_t z = days + 719'468;
  const int64_t era = (z >= 0 ? z : z - 146'096) / 146'097;
  const int64_t doe = z - era * 146'097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36'524 - doe / 146'096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2);
  if (year < 0 || year > 9999) {
    out += FormatTimestamp(t);
    return;
  }
  // "YYYY-MM-DDTHH:MM:SS.mmmZ", written digit by digit (snprintf cost a fifth of a read).
  char buf[24];
  auto put = [&buf](int at, int64_t value, int digits) {
    for (int i = digits - 1; i >= 0; --i) {
      buf[at + i] = static_cast<char>('0' + value % 10);
      value /= 10;
    }
  };
  put(0, year, 4);
  buf[4] = '-';
  put(5, month, 2);
  buf[7] = '-';
  put(8, day, 2);
  buf[10] = 'T';
  put(11, in_day / 3'600'000, 2);
  buf[13] = ':';
  put(14, in_day / 60'000 % 60, 2);
  buf[16] = ':';
  put(17, in_day / 1000 % 60, 2);
  buf[19] = '.';
  put(20, in_day % 1000, 3);
  buf[23] = 'Z';
  out.append(buf, sizeof(buf));
}

std::string SetMember(absl::string_view t, absl::string_view quoted_key,
                      absl::string_view value_json) {
  std::string out;
  if (std::optional<backend::MemberSpan> m = backend::FindMember(t, quoted_key)) {
    out.reserve(t.size() - (m->end - m->value_begin) + value_json.size());
    out.append(t.data(), m->value_begin);
    out.append(value_json.data(), value_json.size());
    out.append(t.data() + m->end, t.size() - m->end);
    return out;
  }
  out.reserve(t.size() + quoted_key.size() + value_json.size() + 2);
  out.append(t.data(), t.size() - 1);  // without the closing '}'
  if (t.size() > 2) out.push_back(',');
  out.append(quoted_key.data(), quoted_key.size());
  out.push_back(':');
  out.append(value_json.data(), value_json.size());
  out.push_back('}');
  return out;
}

std::string RemoveMember(absl::string_view t, absl::string_view quoted_key) {
  std::optional<backend::MemberSpan> m = backend::FindMember(t, quoted_key);
  if (!m) return std::string(t);
  size_t begin = m->begin, end = m->end;
  if (end < t.size() && t[end] == ',') {
    ++end;
  } else if (begin > 1 && t[begin - 1] == ',') {
    --begin;
  }
  std::string out(t.substr(0, begin));
  out.append(t.data() + end, t.size() - end);
  return out;
}

}  // namespace sessionctx::internal
