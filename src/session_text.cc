#include "sessionctx/session_text.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "sessionctx/base_fields.h"
#include "sessionctx/backend_support.h"
#include "src/json_text.h"

namespace sessionctx {

std::shared_ptr<const SessionText> SessionText::FromRecord(const SessionContext& record) {
  const std::string context =
      record.context.is_object() ? backend::JsonText(record.context) : std::string("{}");
  return backend::TextLayout::FromParts(record, context);
}

std::shared_ptr<const SessionText> backend::TextLayout::FromParts(const SessionContext& fields,
                                                          absl::string_view context_json) {
  std::shared_ptr<SessionText> t = std::make_shared<SessionText>(SessionText::Key());
  std::string& out = t->json_;
  // The exact size when no string needs an escape: one allocation, no slack.
  size_t size = 16 + fields.session_id.size() + 13 + context_json.size() + 84 + 20;
  for (const BaseField& f : kBaseFields) {
    if (const std::optional<std::string>& v = fields.*f.member) size += 6 + std::strlen(f.name) + v->size();
  }
  out.reserve(size);
  out += "{\"sessionId\":";
  backend::AppendJsonString(out, fields.session_id);
  for (const BaseField& f : kBaseFields) {
    if (const std::optional<std::string>& v = fields.*f.member) {
      absl::StrAppend(&out, ",\"", f.name, "\":");
      backend::AppendJsonString(out, *v);
    }
  }
  out += ",\"context\":";
  t->context_begin_ = static_cast<uint32_t>(out.size());
  out.append(context_json.data(), context_json.size());
  t->context_end_ = static_cast<uint32_t>(out.size());
  absl::StrAppend(&out, ",\"metadata\":{\"version\":", fields.version, ",\"createdAt\":\"");
  internal::AppendTimestamp(out, fields.created_at);
  out += "\",\"modifiedAt\":\"";
  internal::AppendTimestamp(out, fields.modified_at);
  out += "\"}}";
  if (out.capacity() > out.size() + 32) out.shrink_to_fit();  // held for the record's life
  t->version_ = fields.version;
  t->customer_id_ = fields.customer_id;
  t->created_at_ = fields.created_at;
  t->modified_at_ = fields.modified_at;
  t->expires_at_ = fields.expires_at;
  return t;
}

std::shared_ptr<const SessionText> backend::TextLayout::WithContext(
    const SessionText& base, absl::string_view context_json, const Stamp& stamp) {
  const int64_t version = stamp.version;
  const absl::Time modified_at = stamp.modified_at, expires_at = stamp.expires_at;
  std::shared_ptr<SessionText> t = std::make_shared<SessionText>(SessionText::Key());
  std::string& out = t->json_;
  out.reserve(base.context_begin_ + context_json.size() + 84 + 20);
  out.append(base.json_.data(), base.context_begin_);
  t->context_begin_ = base.context_begin_;
  out.append(context_json.data(), context_json.size());
  t->context_end_ = static_cast<uint32_t>(out.size());
  absl::StrAppend(&out, ",\"metadata\":{\"version\":", version, ",\"createdAt\":\"");
  internal::AppendTimestamp(out, base.created_at_);
  out += "\",\"modifiedAt\":\"";
  internal::AppendTimestamp(out, modified_at);
  out += "\"}}";
  if (out.capacity() > out.size() + 32) out.shrink_to_fit();
  t->version_ = version;
  t->customer_id_ = base.customer_id_;
  t->created_at_ = base.created_at_;
  t->modified_at_ = modified_at;
  t->expires_at_ = expires_at;
  return t;
}

std::shared_ptr<const SessionText> backend::TextLayout::FromStored(
    std::string json, size_t context_begin, size_t context_end, int64_t version,
    std::optional<std::string> customer_id, absl::Time created_at, absl::Time modified_at,
    absl::Time expires_at) {
  constexpr absl::string_view kContextKey = ",\"context\":";
  if (context_begin < kContextKey.size() || context_begin >= context_end ||
      context_end > json.size() || json.size() > UINT32_MAX || json.front() != '{' ||
      json.back() != '}' || json[context_begin] != '{' || json[context_end - 1] != '}' ||
      absl::string_view(json).substr(context_begin - kContextKey.size(), kContextKey.size()) !=
          kContextKey) {
    return nullptr;
  }
  std::shared_ptr<SessionText> t = std::make_shared<SessionText>(SessionText::Key());
  t->json_ = std::move(json);
  t->context_begin_ = static_cast<uint32_t>(context_begin);
  t->context_end_ = static_cast<uint32_t>(context_end);
  t->version_ = version;
  t->customer_id_ = std::move(customer_id);
  t->created_at_ = created_at;
  t->modified_at_ = modified_at;
  t->expires_at_ = expires_at;
  return t;
}

// FieldsFrom: a record's fields read from (part of) its parsed text, with the
// metadata kept beside the text; the context is left empty.
SessionContext SessionText::FieldsFrom(const Json& j) const {
  SessionContext s;
  if (auto id = j.find("sessionId"); id != j.end() && id->is_string()) {
    s.session_id = id->get<std::string>();
  }
  for (const BaseField& f : kBaseFields) {
    auto it = j.find(f.name);
    if (it != j.end() && it->is_string()) s.*f.member = it->get<std::string>();
  }
  s.version = version_;
  s.created_at = created_at_;
  s.modified_at = modified_at_;
  s.expires_at = expires_at_;
  return s;
}

absl::StatusOr<SessionContext> SessionText::Fields() const {
  constexpr size_t kContextKey = sizeof(",\"context\":") - 1;
  std::string head = json_.substr(0, context_begin_ - kContextKey);
  head.push_back('}');
  Json j = Json::parse(head, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::DataLossError("stored session text does not parse");
  return FieldsFrom(j);
}

Json SessionText::Context() const {
  Json context = Json::parse(context_json(), nullptr, /*allow_exceptions=*/false);
  return context.is_object() ? context : Json::object();
}

absl::StatusOr<SessionContext> SessionText::Record() const {
  Json j = Json::parse(json_, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::DataLossError("stored session text does not parse");
  SessionContext s = FieldsFrom(j);
  if (auto c = j.find("context"); c != j.end() && c->is_object()) s.context = std::move(*c);
  return s;
}

}  // namespace sessionctx
