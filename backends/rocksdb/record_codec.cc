#include "backends/rocksdb/record_codec.h"

#include "absl/strings/str_cat.h"
#include "sessionctx/base_fields.h"
#include "sessionctx/backend_support.h"

namespace sessionctx::rocksdb_internal {
namespace {

constexpr int64_t kNever = INT64_MAX;

int64_t ToMs(absl::Time t) { return t == absl::InfiniteFuture() ? kNever : absl::ToUnixMillis(t); }
absl::Time FromMs(int64_t ms) { return ms == kNever ? absl::InfiniteFuture() : absl::FromUnixMillis(ms); }

// DepthLimit: a SAX handler that only counts nesting and stops the parse past a
// limit. nlohmann's MessagePack reader recurses once per level, so bytes nested
// deeper than the stack (a damaged value) must be refused before a DOM is built.
// Found by fuzz/record_codec_fuzz.cc (fuzz/regressions/record_codec/deep-nesting).
struct DepthLimit : nlohmann::json_sax<Json> {
  static constexpr int kMaxDepth = 128;  // written values nest 64 deep at most
  int depth = 0;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return ++depth <= kMaxDepth; }
  bool key(string_t&) override { return true; }
  bool end_object() override { --depth; return true; }
  bool start_array(std::size_t) override { return ++depth <= kMaxDepth; }
  bool end_array() override { --depth; return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }
};

// CheckText: whether `text` is exactly one JSON value nested no deeper than
// DepthLimit allows (one pass, no DOM).
bool CheckText(absl::string_view text) { return backend::IsJsonValue(text, DepthLimit::kMaxDepth); }

absl::StatusOr<Json> Unpack(const std::string& bytes) {
  if (!bytes.empty() && bytes[0] == kFormatValueTextV3) {
    const absl::string_view text = absl::string_view(bytes).substr(1);
    if (!CheckText(text)) return absl::DataLossError("stored value is not valid JSON or nests too deep");
    Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return absl::DataLossError("stored value is not valid JSON");
    return j;
  }
  if (bytes.empty() || bytes[0] != kFormatMsgpackV1) {
    return absl::DataLossError("stored value has an unknown format byte");
  }
  DepthLimit limit;
  if (!Json::sax_parse(bytes.begin() + 1, bytes.end(), &limit, nlohmann::json::input_format_t::msgpack,
                       /*strict=*/true)) {
    return absl::DataLossError("stored value is not valid MessagePack or nests too deep");
  }
  Json j = Json::from_msgpack(bytes.begin() + 1, bytes.end(), /*strict=*/true,
                              /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::DataLossError("stored value is not valid MessagePack");
  // MessagePack strings are bytes; a value is only good if it is valid JSON text too
  // (what it is written back as). Found by fuzz/record_codec_fuzz.cc.
  try {
    (void)j.dump();
  } catch (const Json::exception&) {
    return absl::DataLossError("stored value holds a string that is not UTF-8");
  }
  return j;
}

}  // namespace

std::string SessionPrefix(const SessionKey& key) { return absl::StrCat(key.tenant, "/", key.session_id); }

std::string BaseKey(const SessionKey& key) {
  std::string k = SessionPrefix(key);
  k += kBaseMarker;
  return k;
}

std::string AttributePrefix(const SessionKey& key) {
  std::string k = SessionPrefix(key);
  k += kAttributeMarker;
  return k;
}

std::string AttributeKey(const SessionKey& key, const std::string& name) {
  return AttributePrefix(key) + name;
}

std::string ExpiryKey(absl::Time expires_at, const SessionKey& key) {
  const uint64_t ms = static_cast<uint64_t>(ToMs(expires_at));
  std::string k(8, '\0');
  for (int i = 0; i < 8; ++i) k[i] = static_cast<char>((ms >> (56 - 8 * i)) & 0xff);
  return k + SessionPrefix(key);
}

std::optional<ParsedKey> ParseRecordKey(const std::string& raw) {
  const size_t slash = raw.find('/');
  if (slash == std::string::npos) return std::nullopt;
  const size_t marker = raw.find_first_of(std::string("\x00\x01", 2), slash + 1);
  if (marker == std::string::npos) return std::nullopt;
  ParsedKey p;
  p.key.tenant = raw.substr(0, slash);
  p.key.session_id = raw.substr(slash + 1, marker - slash - 1);
  p.is_base = raw[marker] == kBaseMarker;
  if (p.is_base && marker + 1 != raw.size()) return std::nullopt;
  if (!p.is_base) p.attribute = raw.substr(marker + 1);
  return p;
}

std::string CustomerPrefix(const std::string& tenant, const std::string& customer_id) {
  std::string k = absl::StrCat(tenant, "/", customer_id);
  k.push_back('\0');
  return k;
}

std::string CustomerIndexKey(const SessionKey& key, const std::string& customer_id) {
  return CustomerPrefix(key.tenant, customer_id) + key.session_id;
}

std::optional<ParsedExpiry> ParseExpiryKey(const std::string& raw) {
  if (raw.size() < 10) return std::nullopt;
  uint64_t ms = 0;
  for (int i = 0; i < 8; ++i) ms = (ms << 8) | static_cast<uint8_t>(raw[i]);
  const std::string rest = raw.substr(8);
  const size_t slash = rest.find('/');
  if (slash == std::string::npos) return std::nullopt;
  return ParsedExpiry{static_cast<int64_t>(ms), {rest.substr(0, slash), rest.substr(slash + 1)}};
}

// The base record has a fixed shape, so it gets a compact hand-written encoding
// (format 0x02): varint numbers, a presence mask, length-prefixed strings. Decoding it
// through a JSON DOM cost about half of a Get (callgrind, docs/backends.md).
namespace {

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>(v | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

bool GetVarint(absl::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift <= 63 && !in.empty(); shift += 7) {
    const uint8_t byte = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// ZigZag keeps small negative times (and kNever) compact and exact.
uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

}  // namespace

std::string EncodeBase(const Base& base) {
  const SessionContext& s = base.fields;
  std::string out;
  out.reserve(64 + s.session_id.size());
  out += kFormatBaseV2;
  uint8_t mask = 0;
  for (int i = 0; i < kBaseFieldCount; ++i) {
    mask |= (s.*kBaseFields[i].member).has_value() ? (1u << i) : 0;
  }
  out += static_cast<char>(mask);
  PutVarint(out, ZigZag(s.version));
  PutVarint(out, ZigZag(ToMs(s.created_at)));
  PutVarint(out, ZigZag(ToMs(s.modified_at)));
  PutVarint(out, ZigZag(ToMs(s.expires_at)));
  PutVarint(out, ZigZag(base.json_bytes));
  PutVarint(out, s.session_id.size());
  out += s.session_id;
  for (const BaseField& f : kBaseFields) {
    const std::optional<std::string>& value = s.*f.member;
    if (!value) continue;
    PutVarint(out, value->size());
    out += *value;
  }
  return out;
}

absl::StatusOr<Base> DecodeBase(const std::string& bytes) {
  const absl::Status bad = absl::DataLossError("stored record does not decode");
  absl::string_view in(bytes);
  if (in.size() < 2 || in[0] != kFormatBaseV2) {
    return absl::DataLossError("stored record has an unknown format byte");
  }
  const uint8_t mask = static_cast<uint8_t>(in[1]);
  in.remove_prefix(2);
  Base base;
  SessionContext& s = base.fields;
  uint64_t n[5];
  for (uint64_t& v : n) {
    if (!GetVarint(in, v)) return bad;
  }
  s.version = UnZigZag(n[0]);
  s.created_at = FromMs(UnZigZag(n[1]));
  s.modified_at = FromMs(UnZigZag(n[2]));
  s.expires_at = FromMs(UnZigZag(n[3]));
  base.json_bytes = UnZigZag(n[4]);
  auto read_string = [&](std::string& out) {
    uint64_t len = 0;
    if (!GetVarint(in, len) || len > in.size()) return false;
    out.assign(in.data(), len);
    in.remove_prefix(len);
    return true;
  };
  if (!read_string(s.session_id)) return bad;
  for (int i = 0; i < kBaseFieldCount; ++i) {
    if ((mask & (1u << i)) == 0) continue;
    std::string v;
    if (!read_string(v)) return bad;
    s.*kBaseFields[i].member = std::move(v);
  }
  if (!in.empty() || mask >= (1u << 6)) return bad;
  return base;
}

namespace {

constexpr size_t kTrailerBytes = 4 + 4 + 8 + 8 + 8 + 8 + 4 + 4 + 1;
constexpr uint32_t kNoCustomer = UINT32_MAX;

void PutFixed(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
uint64_t GetFixed(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

bool IsTextRecord(absl::string_view bytes) { return !bytes.empty() && bytes[0] == '{'; }

std::string EncodeText(const SessionText& t) {
  const absl::string_view json = t.json();
  const std::optional<std::string>& customer = t.customer_id();
  std::string out;
  out.reserve(json.size() + (customer ? customer->size() : 0) + kTrailerBytes);
  out.append(json.data(), json.size());
  if (customer) out += *customer;
  PutFixed(out, backend::TextLayout::ContextBegin(t), 4);
  PutFixed(out, backend::TextLayout::ContextEnd(t), 4);
  PutFixed(out, static_cast<uint64_t>(t.version()), 8);
  PutFixed(out, static_cast<uint64_t>(ToMs(t.created_at())), 8);
  PutFixed(out, static_cast<uint64_t>(ToMs(t.modified_at())), 8);
  PutFixed(out, static_cast<uint64_t>(ToMs(t.expires_at())), 8);
  PutFixed(out, customer ? customer->size() : kNoCustomer, 4);
  PutFixed(out, json.size(), 4);
  out += kFormatTextV4;
  return out;
}

absl::StatusOr<std::shared_ptr<const SessionText>> DecodeText(std::string bytes) {
  const absl::Status bad = absl::DataLossError("stored session text does not decode");
  if (bytes.size() < kTrailerBytes + 2 || bytes.back() != kFormatTextV4) return bad;
  const char* trailer = bytes.data() + bytes.size() - kTrailerBytes;
  const uint64_t context_begin = GetFixed(trailer, 4);
  const uint64_t context_end = GetFixed(trailer + 4, 4);
  const int64_t version = static_cast<int64_t>(GetFixed(trailer + 8, 8));
  const int64_t created = static_cast<int64_t>(GetFixed(trailer + 16, 8));
  const int64_t modified = static_cast<int64_t>(GetFixed(trailer + 24, 8));
  const int64_t expires = static_cast<int64_t>(GetFixed(trailer + 32, 8));
  const uint64_t customer_size = GetFixed(trailer + 40, 4);
  const uint64_t json_size = GetFixed(trailer + 44, 4);
  const uint64_t customer_bytes = customer_size == kNoCustomer ? 0 : customer_size;
  if (json_size + customer_bytes + kTrailerBytes != bytes.size()) return bad;
  std::optional<std::string> customer;
  if (customer_size != kNoCustomer) customer = bytes.substr(json_size, customer_size);
  bytes.resize(json_size);
  std::shared_ptr<const SessionText> text = backend::TextLayout::FromStored(
      std::move(bytes), context_begin, context_end, version, std::move(customer),
      FromMs(created), FromMs(modified), FromMs(expires));
  if (text == nullptr) return bad;
  return text;
}

std::string EncodeValue(const Json& value) {
  std::string out(1, kFormatValueTextV3);
  backend::AppendJson(out, value);
  return out;
}

absl::StatusOr<Json> DecodeValue(const std::string& bytes) { return Unpack(bytes); }

absl::StatusOr<std::string> ValueText(const rocksdb::Slice& bytes) {
  if (!bytes.empty() && bytes[0] == kFormatValueTextV3) {
    const absl::string_view text(bytes.data() + 1, bytes.size() - 1);
    if (!CheckText(text)) return absl::DataLossError("stored value is not valid JSON or nests too deep");
    return std::string(text);
  }
  absl::StatusOr<Json> value = Unpack(bytes.ToString());
  if (!value.ok()) return value.status();
  return value->dump();
}

}  // namespace sessionctx::rocksdb_internal
