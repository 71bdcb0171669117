#include "backends/rocksdb/record_codec.h"

#include "absl/strings/str_cat.h"

namespace sessionctx::rocksdb_internal {
namespace {

constexpr int64_t kNever = INT64_MAX;

int64_t ToMs(absl::Time t) { return t == absl::InfiniteFuture() ? kNever : absl::ToUnixMillis(t); }
absl::Time FromMs(int64_t ms) { return ms == kNever ? absl::InfiniteFuture() : absl::FromUnixMillis(ms); }

std::string WithFormatByte(const std::vector<uint8_t>& packed) {
  std::string out;
  out.reserve(packed.size() + 1);
  out += kFormatMsgpackV1;
  out.append(reinterpret_cast<const char*>(packed.data()), packed.size());
  return out;
}

absl::StatusOr<Json> Unpack(const std::string& bytes) {
  if (bytes.empty() || bytes[0] != kFormatMsgpackV1) {
    return absl::DataLossError("stored value has an unknown format byte");
  }
  Json j = Json::from_msgpack(bytes.begin() + 1, bytes.end(), /*strict=*/true,
                              /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::DataLossError("stored value is not valid MessagePack");
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

std::optional<ParsedExpiry> ParseExpiryKey(const std::string& raw) {
  if (raw.size() < 10) return std::nullopt;
  uint64_t ms = 0;
  for (int i = 0; i < 8; ++i) ms = (ms << 8) | static_cast<uint8_t>(raw[i]);
  const std::string rest = raw.substr(8);
  const size_t slash = rest.find('/');
  if (slash == std::string::npos) return std::nullopt;
  return ParsedExpiry{static_cast<int64_t>(ms), {rest.substr(0, slash), rest.substr(slash + 1)}};
}

std::string EncodeBase(const Base& base) {
  const SessionContext& s = base.fields;
  Json j = {{"i", s.session_id},
            {"v", s.version},
            {"ca", ToMs(s.created_at)},
            {"ma", ToMs(s.modified_at)},
            {"e", ToMs(s.expires_at)},
            {"b", base.json_bytes}};
  if (s.customer_id) j["c"] = *s.customer_id;
  if (s.site_code) j["s"] = *s.site_code;
  if (s.currency) j["u"] = *s.currency;
  if (s.cart_id) j["k"] = *s.cart_id;
  if (s.target_location) j["t"] = *s.target_location;
  if (s.language) j["l"] = *s.language;
  return WithFormatByte(Json::to_msgpack(j));
}

absl::StatusOr<Base> DecodeBase(const std::string& bytes) {
  absl::StatusOr<Json> j = Unpack(bytes);
  if (!j.ok()) return j.status();
  if (!j->is_object()) return absl::DataLossError("stored record is not an object");
  try {
    Base base;
    SessionContext& s = base.fields;
    s.session_id = j->at("i").get<std::string>();
    s.version = j->at("v").get<int64_t>();
    s.created_at = FromMs(j->at("ca").get<int64_t>());
    s.modified_at = FromMs(j->at("ma").get<int64_t>());
    s.expires_at = FromMs(j->at("e").get<int64_t>());
    base.json_bytes = j->at("b").get<int64_t>();
    const std::pair<const char*, std::optional<std::string>*> optional_fields[] = {
        {"c", &s.customer_id}, {"s", &s.site_code}, {"u", &s.currency},
        {"k", &s.cart_id},     {"t", &s.target_location}, {"l", &s.language}};
    for (const auto& [name, out] : optional_fields) {
      if (auto it = j->find(name); it != j->end()) *out = it->get<std::string>();
    }
    return base;
  } catch (const Json::exception& e) {
    return absl::DataLossError(absl::StrCat("stored record is incomplete: ", e.what()));
  }
}

std::string EncodeValue(const Json& value) { return WithFormatByte(Json::to_msgpack(value)); }

absl::StatusOr<Json> DecodeValue(const std::string& bytes) { return Unpack(bytes); }

}  // namespace sessionctx::rocksdb_internal
