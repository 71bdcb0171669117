// The redis:// backend's record codec (redis_record.h).
#include "backends/redis/redis_record.h"

#include <cstdio>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sessionctx/backend_support.h"
#include "sessionctx/base_fields.h"

namespace sessionctx::redis {
namespace {

// The fixed parts of a record's text: {"sessionId":  ,"context":
// ,"metadata":{"version":  ,"createdAt":"<24>  ","modifiedAt":"<24>  "}}
constexpr size_t kFixedTextBytes = 13 + 11 + 23 + 14 + 24 + 16 + 24 + 3;

// TextBytes: the size of a record's text from its parts' sizes.
size_t TextBytes(size_t quoted_session_id, size_t base_fields, size_t context,
                 int64_t version) {
  return kFixedTextBytes + quoted_session_id + base_fields + context +
         backend::Digits(version);
}

// BaseMemberBytes: what base field `name` with quoted value `value` adds: ,"name":value
size_t BaseMemberBytes(absl::string_view name, size_t quoted_value) {
  return name.size() + 2 + quoted_value + 2;
}

}  // namespace

void LogDataLoss(const SessionKey& key, const absl::Status& st) {
  std::fprintf(stderr, "sessionctx redis: session %s/%s does not decode: %s\n",
               key.tenant.c_str(), key.session_id.c_str(),
               std::string(st.message()).c_str());
}

std::string Ms(absl::Time t) { return absl::StrCat(absl::ToUnixMillis(t)); }

StoredRecord StoredOf(const SessionKey& key, const SessionContext& r, absl::Time now) {
  StoredRecord out;
  Command& c = out.fields;
  c.Add("v").Own(absl::StrCat(r.version));
  c.Add("ct").Own(Ms(r.created_at)).Add("mt").Own(Ms(r.modified_at));
  if (r.expires_at != absl::InfiniteFuture()) {
    c.Add("x").Own(Ms(r.expires_at));
    out.ttl = absl::StrCat(absl::ToInt64Milliseconds(r.expires_at - now));
  }
  size_t base = 0;
  for (const BaseField& f : kBaseFields) {
    if (const std::optional<std::string>& v = r.*f.member) {
      std::string quoted = backend::QuotedJsonString(*v);
      base += BaseMemberBytes(f.name, quoted.size());
      c.Add(f.name).Own(std::move(quoted));
    }
  }
  size_t context = 1, count = 0;
  if (r.context.is_object()) {
    for (auto it = r.context.begin(); it != r.context.end(); ++it) {
      std::string quoted = backend::QuotedJsonString(it.key());
      std::string value = backend::JsonText(*it);
      context += backend::MemberBytes(quoted.size(), value.size());
      c.Own(std::move(quoted)).Own(std::move(value));
      ++count;
    }
  }
  if (count == 0) context = 2;
  const size_t bytes = TextBytes(backend::QuotedJsonString(key.session_id).size(), base,
                                 context, r.version);
  c.Add("n").Own(absl::StrCat(bytes)).Add("k").Own(absl::StrCat(count));
  return out;
}

namespace {

// Hash: a read's HGETALL reply, taken apart.
struct Hash {
  int64_t version = 0, created = 0, modified = 0, bytes = 0;
  std::optional<int64_t> expires;
  absl::string_view base[kBaseFieldCount];
  std::vector<std::pair<absl::string_view, absl::string_view>> attributes;
};

absl::Status ReadHash(const redisReply* r, Hash& h) {
  bool has_version = false, has_created = false, has_modified = false, has_bytes = false;
  h.attributes.reserve(r->elements / 2);
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    const absl::string_view field = Str(r->element[i]), value = Str(r->element[i + 1]);
    if (!field.empty() && field[0] == '"') {
      h.attributes.emplace_back(field, value);
      continue;
    }
    bool ok = true;
    if (field == "v") {
      ok = has_version = absl::SimpleAtoi(value, &h.version);
    } else if (field == "ct") {
      ok = has_created = absl::SimpleAtoi(value, &h.created);
    } else if (field == "mt") {
      ok = has_modified = absl::SimpleAtoi(value, &h.modified);
    } else if (field == "n") {
      ok = has_bytes = absl::SimpleAtoi(value, &h.bytes);
    } else if (field == "x") {
      int64_t x = 0;
      ok = absl::SimpleAtoi(value, &x);
      h.expires = x;
    } else {
      for (int f = 0; f < kBaseFieldCount; ++f) {
        if (field == kBaseFields[f].name) h.base[f] = value;
      }
    }
    if (!ok)
      return absl::DataLossError(
          absl::StrCat("stored field ", field, " is not a number"));
  }
  if (!has_version || !has_created || !has_modified || !has_bytes) {
    return absl::DataLossError("stored session lacks its metadata");
  }
  return absl::OkStatus();
}

// TextOf: the record's text from its hash; DataLoss when the parts do not add up to
// the size the writes kept (the hash was changed behind the store's back).
absl::StatusOr<std::shared_ptr<const SessionText>> TextOf(const SessionKey& key,
                                                          const Hash& h) {
  std::string json;
  json.reserve(static_cast<size_t>(h.bytes));
  json += "{\"sessionId\":";
  backend::AppendJsonString(json, key.session_id);
  for (int f = 0; f < kBaseFieldCount; ++f) {
    if (h.base[f].empty()) continue;
    absl::StrAppend(&json, ",\"", kBaseFields[f].name, "\":", h.base[f]);
  }
  json += ",\"context\":{";
  const size_t context_begin = json.size() - 1;
  for (const auto& [name, value] : h.attributes)
    absl::StrAppend(&json, name, ":", value, ",");
  if (h.attributes.empty()) {
    json += '}';
  } else {
    json.back() = '}';
  }
  const size_t context_end = json.size();
  absl::StrAppend(&json, ",\"metadata\":{\"version\":", h.version, ",\"createdAt\":\"",
                  FormatTimestamp(absl::FromUnixMillis(h.created)),
                  "\",\"modifiedAt\":\"",
                  FormatTimestamp(absl::FromUnixMillis(h.modified)), "\"}}");
  if (json.size() != static_cast<size_t>(h.bytes)) {
    return absl::DataLossError(absl::StrCat("stored session's parts make ", json.size(),
                                            " bytes, its size says ", h.bytes));
  }
  std::optional<std::string> customer;
  if (!h.base[0].empty()) {
    Json id = Json::parse(h.base[0], nullptr, /*allow_exceptions=*/false);
    if (!id.is_string()) return absl::DataLossError("stored customerId is not a string");
    customer = id.get<std::string>();
  }
  std::shared_ptr<const SessionText> text = backend::TextLayout::FromStored(
      std::move(json), context_begin, context_end, h.version, std::move(customer),
      absl::FromUnixMillis(h.created), absl::FromUnixMillis(h.modified),
      h.expires ? absl::FromUnixMillis(*h.expires) : absl::InfiniteFuture());
  if (text == nullptr)
    return absl::DataLossError("stored session does not frame a record");
  return text;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const SessionText>> DecodeHash(const SessionKey& key,
                                                              const redisReply* r,
                                                              absl::Time now) {
  Hash h;
  absl::Status st = ReadHash(r, h);
  if (st.ok() && h.expires && absl::FromUnixMillis(*h.expires) <= now) {
    return backend::SessionNotFoundError(key);
  }
  absl::StatusOr<std::shared_ptr<const SessionText>> text =
      st.ok() ? TextOf(key, h) : absl::StatusOr<std::shared_ptr<const SessionText>>(st);
  if (!text.ok()) LogDataLoss(key, text.status());
  return text;
}

}  // namespace sessionctx::redis
