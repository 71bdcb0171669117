// Small tools on JSON text the library wrote itself (compact, valid): escaping a
// string, fast timestamps, finding and replacing one member of an object without
// parsing the rest, and one attribute written into a session's text (what the
// memory: and rocksdb: stores do on an attribute write). Internal to the library.
#ifndef SESSIONCTX_SRC_JSON_TEXT_H_
#define SESSIONCTX_SRC_JSON_TEXT_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sessionctx/session_store.h"
#include "sessionctx/session_text.h"

namespace sessionctx::internal {

// AppendJsonString appends `s` as a quoted JSON string ('"', '\' and control bytes
// escaped; other bytes, UTF-8 included, as they are).
void AppendJsonString(std::string& out, absl::string_view s);

// QuotedJsonString: `s` as a quoted JSON string, the form member keys are compared in.
std::string QuotedJsonString(absl::string_view s);

// AppendTimestamp appends `t` as FormatTimestamp does ("2026-02-04T17:06:50.134Z"),
// without a time zone lookup.
void AppendTimestamp(std::string& out, absl::Time t);

// MemberSpan: where one member of an object sits in its text.
struct MemberSpan {
  size_t begin = 0;        // the key's opening quote
  size_t end = 0;          // just past the value
  size_t value_begin = 0;  // the value's first byte
};

// FindMember looks for the member whose key, as a quoted JSON string, is
// `quoted_key` (AppendJsonString's form) in `object`, a compact JSON object text.
std::optional<MemberSpan> FindMember(absl::string_view object, absl::string_view quoted_key);

// ForEachMember calls `visit(quoted_key, value_json)` for each member of `object`.
template <typename Visit>
void ForEachMember(absl::string_view object, Visit&& visit);

// SetMember returns `object` with member `quoted_key` set to `value_json` (replaced
// in place, or appended last); RemoveMember without it (unchanged when absent).
std::string SetMember(absl::string_view object, absl::string_view quoted_key,
                      absl::string_view value_json);
std::string RemoveMember(absl::string_view object, absl::string_view quoted_key);

// IsJsonValue: whether `text` is exactly one JSON value (RFC 8259, strict: no
// comments, no trailing commas, strings in valid UTF-8 without raw control bytes;
// whitespace around it allowed) nested at most `max_depth` deep. One pass, no DOM:
// for checking stored text before it is copied into an answer.
bool IsJsonValue(absl::string_view text, int max_depth);

// SkipString / SkipValue: the index just past the string (at `i`, a quote) or value
// starting at `i`.
size_t SkipString(absl::string_view text, size_t i);
size_t SkipValue(absl::string_view text, size_t i);

template <typename Visit>
void ForEachMember(absl::string_view t, Visit&& visit) {
  size_t i = 1;  // past '{'
  while (i < t.size() && t[i] == '"') {
    const size_t key_end = SkipString(t, i);
    const size_t value_end = SkipValue(t, key_end + 1);
    visit(t.substr(i, key_end - i), t.substr(key_end + 1, value_end - key_end - 1));
    i = value_end;
    if (i < t.size() && t[i] == ',') ++i;
  }
}

// --- one attribute written into a session's text (memory: and rocksdb: share it) --

// TextStamp: a session's metadata after a write, as StampUpdate sets it.
struct TextStamp {
  int64_t version = 0;
  absl::Time modified_at;
  absl::Time expires_at;
};
TextStamp NextStamp(const SessionText& text, absl::Time now, absl::Duration anonymous_ttl);

// Digits: how many decimal digits `version` (positive) has in a record's text.
size_t Digits(int64_t version);

// StampedBytes: the size of `text` once stamped with `version` (its context as it
// is): the version's digits may change the size, the times' never do.
inline size_t StampedBytes(const SessionText& text, int64_t version) {
  return text.json().size() - Digits(text.version()) + Digits(version);
}

// CheckAttributeWrite: whether `write` may change a session of `customer_id` at
// `version`: GuardRefusedError if its guard refuses the session, a version conflict
// if it expects another version. Called inside the store's atomic step.
absl::Status CheckAttributeWrite(const std::optional<std::string>& customer_id, int64_t version,
                                 const AttributeWrite& write);

// PatchedFields: the fields of a session stored as `text` after the PATCH `write`,
// stamped (version, times, expiry), with an empty context (the caller merges the
// context's text). PermissionDenied if the guard refuses the session, a version
// conflict on another version, InvalidArgument for a bad body.
absl::StatusOr<SessionContext> PatchedFields(const SessionText& text, const PatchWrite& write);

// EditContext: `text`'s context with the attribute of `write` set (or removed), one
// member replaced in the text. nullopt when nothing changes (removing an absent
// attribute); ResourceExhausted when the record would pass write.max_record_bytes.
absl::StatusOr<std::optional<std::string>> EditContext(const SessionText& text,
                                                       const AttributeWrite& write);

}  // namespace sessionctx::internal

#endif  // SESSIONCTX_SRC_JSON_TEXT_H_
