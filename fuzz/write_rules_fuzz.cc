// Request bodies through the write rules: the JSON body parser, PATCH and PUT onto a
// stored record, the attribute body. A record the rules accept must be one the store
// can hold: its wire form reads back strictly (SessionContextFromJson) as the same
// record, and its context stays an object; merging a patch into the context's text
// gives what merging it into the DOM gives.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "sessionctx/backend_support.h"
#include "sessionctx/write_rules.h"

namespace {

using namespace sessionctx;

void CheckStorable(const SessionContext& record, const SessionContext& before) {
  if (!record.context.is_object()) std::abort();
  if (record.session_id != before.session_id || record.version != before.version ||
      record.created_at != before.created_at) {
    std::abort();  // the rules never touch identity or metadata
  }
  absl::StatusOr<SessionContext> back = SessionContextFromJson(ToJson(record));
  if (!back.ok()) std::abort();
  back->expires_at = record.expires_at;
  if (!(*back == record)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<Json> body =
      ParseJsonBody(absl::string_view(reinterpret_cast<const char*>(data), size), 32);
  if (!body.ok()) return 0;
  SessionContext current{.session_id = "s1", .currency = "EUR", .language = "de-CH"};
  current.context = {{"cart", {{"items", 2}, {"gift", true}}}, {"n", 1}};
  current.version = 3;
  current.created_at = absl::FromUnixMillis(1'700'000'000'000);
  current.modified_at = current.created_at;
  (void)ReadVersion(*body);
  if (absl::StatusOr<SessionContext> patched = ApplyPatch(current, *body); patched.ok()) {
    CheckStorable(*patched, current);
  }
  if (absl::StatusOr<SessionContext> put = ApplyPut(current, *body); put.ok()) {
    CheckStorable(*put, current);
  }
  // The text merge (what stores use on their stored text) agrees with the DOM merge.
  if (auto c = body->find("context"); c != body->end() && c->is_object()) {
    Json expected = current.context;
    MergePatch(expected, *c);
    const Json got = Json::parse(backend::MergePatchText(current.context.dump(), *c), nullptr,
                                 /*allow_exceptions=*/false);
    if (got != expected) std::abort();
  }
  if (absl::StatusOr<AttributeRequest> attr = ParseAttributeRequest(*body); attr.ok()) {
    SessionContext with = current;
    SetAttribute(with, attr->key, attr->value);
    CheckStorable(with, current);
    if (!RemoveAttribute(with, attr->key)) std::abort();
  }
  return 0;
}
