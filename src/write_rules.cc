#include "sessionctx/write_rules.h"

#include "absl/strings/str_cat.h"
#include "sessionctx/base_fields.h"
#include "src/json_text.h"

namespace sessionctx {
namespace {


// ReadNullableString: absent -> leave `present` false; null -> present, nullopt;
// string -> validated value; anything else -> InvalidArgument.
absl::StatusOr<std::optional<std::string>> ReadNullableString(const Json& value,
                                                              const BaseField& f) {
  if (value.is_null()) return std::optional<std::string>();
  if (!value.is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(f.name, " must be a string or null"));
  }
  std::string s = value.get<std::string>();
  if (absl::Status st = f.validate(s); !st.ok()) return st;
  return std::optional<std::string>(std::move(s));
}

absl::Status RequireObject(const Json& body) {
  if (!body.is_object()) return absl::InvalidArgumentError("request body must be a JSON object");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::optional<int64_t>> ReadVersion(const Json& body) {
  if (!body.is_object()) return absl::InvalidArgumentError("request body must be a JSON object");
  auto meta = body.find("metadata");
  if (meta == body.end() || meta->is_null()) return std::optional<int64_t>();
  if (!meta->is_object()) return absl::InvalidArgumentError("metadata must be an object");
  auto v = meta->find("version");
  if (v == meta->end() || v->is_null()) return std::optional<int64_t>();
  if (v->is_number_unsigned()) {
    if (v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX) || v->get<uint64_t>() == 0) {
      return absl::InvalidArgumentError("metadata.version must be a positive integer");
    }
    return std::optional<int64_t>(v->get<int64_t>());
  }
  if (!v->is_number_integer() || v->get<int64_t>() < 1) {
    return absl::InvalidArgumentError("metadata.version must be a positive integer");
  }
  return std::optional<int64_t>(v->get<int64_t>());
}

absl::StatusOr<int64_t> ExpectedVersion(std::optional<int64_t> body_version,
                                        std::optional<int64_t> if_match) {
  if (!body_version && !if_match) {
    return absl::InvalidArgumentError(
        "metadata.version is required: send the version you read (or an If-Match header)");
  }
  if (body_version && if_match && *body_version != *if_match) {
    return absl::AbortedError(absl::StrCat("metadata.version ", *body_version,
                                           " and If-Match ", *if_match, " disagree"));
  }
  return body_version ? *body_version : *if_match;
}

void MergePatch(Json& target, const Json& patch) {
  if (!patch.is_object()) {
    target = patch;
    return;
  }
  if (!target.is_object()) target = Json::object();
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it->is_null()) {
      target.erase(it.key());
    } else {
      MergePatch(target[it.key()], *it);
    }
  }
}

namespace {

// PatchBaseFields applies the body's patchable base fields to `next` and checks the
// body's `context` (an object or null); the context itself is left to the caller.
absl::Status PatchBaseFields(SessionContext& next, const Json& body) {
  if (absl::Status st = RequireObject(body); !st.ok()) return st;
  for (const BaseField& f : kBaseFields) {
    if (!f.patchable) continue;
    auto it = body.find(f.name);
    if (it == body.end()) continue;
    absl::StatusOr<std::optional<std::string>> v = ReadNullableString(*it, f);
    if (!v.ok()) return v.status();
    next.*f.member = std::move(*v);
  }
  if (auto ctx = body.find("context"); ctx != body.end() && !ctx->is_null() && !ctx->is_object()) {
    return absl::InvalidArgumentError("context must be an object or null");
  }
  return absl::OkStatus();
}

// PatchContextOf: the body's `context` (checked by PatchBaseFields) applied to `context`.
void PatchContextOf(Json& context, const Json& body) {
  if (auto ctx = body.find("context"); ctx != body.end()) {
    if (ctx->is_null()) {
      context = Json::object();
    } else {
      MergePatch(context, *ctx);
    }
  }
}

}  // namespace

absl::StatusOr<SessionContext> ApplyPatch(const SessionContext& current, const Json& body) {
  SessionContext next = current;
  if (absl::Status st = PatchBaseFields(next, body); !st.ok()) return st;
  PatchContextOf(next.context, body);
  return next;
}

namespace backend {

absl::StatusOr<SessionContext> PatchFields(const SessionContext& fields, const PatchWrite& write) {
  if (absl::Status st = CheckWrite(fields.customer_id, fields.version, write.guard,
                                   write.expected_version);
      !st.ok()) {
    return st;
  }
  SessionContext next = fields;  // callers pass an empty context: nothing large to copy
  next.context = Json::object();
  if (absl::Status st = PatchBaseFields(next, write.body); !st.ok()) return st;
  StampUpdate(next, WriteTime{write.now, write.anonymous_ttl});
  return next;
}

void PatchContext(Json& context, const Json& body) { PatchContextOf(context, body); }

std::optional<std::string> PatchedContext(absl::string_view context_json, const Json& body) {
  auto ctx = body.find("context");
  if (ctx == body.end()) return std::nullopt;
  if (ctx->is_null()) return std::string("{}");
  return MergePatchText(context_json, *ctx);
}

std::string MergePatchText(absl::string_view object_json, const Json& patch) {
  std::string text(object_json);
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string quoted = QuotedJsonString(it.key());
    if (it->is_null()) {
      text = internal::RemoveMember(text, quoted);
    } else if (it->is_object()) {
      Json merged;
      if (std::optional<MemberSpan> m = FindMember(text, quoted)) {
        merged = Json::parse(absl::string_view(text).substr(m->value_begin, m->end - m->value_begin),
                             nullptr, /*allow_exceptions=*/false);
        if (merged.is_discarded()) merged = Json();
      }
      MergePatch(merged, *it);
      text = internal::SetMember(text, quoted, JsonText(merged));
    } else {
      text = internal::SetMember(text, quoted, JsonText(*it));
    }
  }
  return text;
}

}  // namespace backend

absl::StatusOr<SessionContext> ApplyPut(const SessionContext& current, const Json& body) {
  if (absl::Status st = RequireObject(body); !st.ok()) return st;
  if (auto id = body.find("sessionId"); id != body.end() && !id->is_null()) {
    if (!id->is_string()) return absl::InvalidArgumentError("sessionId must be a string");
    if (id->get_ref<const std::string&>() != current.session_id) {
      return absl::InvalidArgumentError(
          "sessionId in the body does not match the sessionId in the path");
    }
  }
  SessionContext next = current;
  for (const BaseField& f : kBaseFields) {
    if (!f.replaceable) continue;
    auto it = body.find(f.name);
    if (it == body.end()) {
      next.*f.member = std::nullopt;
      continue;
    }
    absl::StatusOr<std::optional<std::string>> v = ReadNullableString(*it, f);
    if (!v.ok()) return v.status();
    next.*f.member = std::move(*v);
  }
  if (auto cust = body.find("customerId"); cust != body.end() && !cust->is_null()) {
    if (!cust->is_string()) return absl::InvalidArgumentError("customerId must be a string");
    std::string id = cust->get<std::string>();
    if (absl::Status st = ValidateCustomerId(id); !st.ok()) return st;
    next.customer_id = std::move(id);
  }
  auto ctx = body.find("context");
  if (ctx == body.end() || ctx->is_null()) {
    next.context = Json::object();
  } else if (!ctx->is_object()) {
    return absl::InvalidArgumentError("context must be an object or null");
  } else {
    next.context = *ctx;
  }
  return next;
}

absl::Status ValidateAttributeName(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("attribute key must not be empty");
  if (name.size() > 1024) {
    return absl::InvalidArgumentError("attribute key must be at most 1024 bytes");
  }
  if (!IsValidUtf8(name)) return absl::InvalidArgumentError("attribute key must be valid UTF-8");
  return ValidateNoNul(name, "attribute key");
}

absl::StatusOr<AttributeRequest> ParseAttributeRequest(const Json& body) {
  if (absl::Status st = RequireObject(body); !st.ok()) return st;
  auto key = body.find("key");
  if (key == body.end() || key->is_null()) {
    return absl::InvalidArgumentError("attribute key is required");
  }
  if (!key->is_string()) return absl::InvalidArgumentError("attribute key must be a string");
  AttributeRequest req;
  req.key = key->get<std::string>();
  if (absl::Status st = ValidateAttributeName(req.key); !st.ok()) return st;
  auto value = body.find("value");
  if (value == body.end() || value->is_null()) {
    return absl::InvalidArgumentError("attribute value is required and must not be null");
  }
  req.value = *value;
  return req;
}

void SetAttribute(SessionContext& session, const std::string& name, const Json& value) {
  if (!session.context.is_object()) session.context = Json::object();
  session.context[name] = value;
}

bool RemoveAttribute(SessionContext& session, const std::string& name) {
  if (!session.context.is_object()) return false;
  return session.context.erase(name) > 0;
}

absl::Status AttachCustomer(SessionContext& session, const std::string& customer_id) {
  if (absl::Status st = ValidateCustomerId(customer_id); !st.ok()) return st;
  if (session.customer_id && *session.customer_id != customer_id) {
    return absl::FailedPreconditionError("session already belongs to another customer");
  }
  session.customer_id = customer_id;
  return absl::OkStatus();
}

absl::StatusOr<SessionContext> NewSession(SessionContext given, const TenantDefaults& d) {
  if (given.session_id.empty()) given.session_id = NewSessionId();
  if (absl::Status st = ValidateSessionId(given.session_id); !st.ok()) return st;
  for (const BaseField& f : kBaseFields) {
    if (f.tenant_default != nullptr && !(given.*f.member)) given.*f.member = d.*f.tenant_default;
  }
  if (!given.context.is_object()) {
    if (!given.context.is_null()) return absl::InvalidArgumentError("context must be an object");
    given.context = Json::object();
  }
  for (const BaseField& f : kBaseFields) {
    if (const std::optional<std::string>& value = given.*f.member) {
      if (absl::Status st = f.validate(*value); !st.ok()) return st;
    }
  }
  return given;
}

}  // namespace sessionctx
