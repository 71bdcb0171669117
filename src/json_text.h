// Text edits on JSON the library wrote itself (compact, valid), internal to the
// library: timestamps without a time zone lookup, one member of an object set or
// removed without parsing the rest. What backends use of JSON text is in
// sessionctx/backend_support.h.
#ifndef SESSIONCTX_SRC_JSON_TEXT_H_
#define SESSIONCTX_SRC_JSON_TEXT_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sessionctx/backend_support.h"

namespace sessionctx::internal {

// AppendTimestamp appends `t` as FormatTimestamp does ("2026-02-04T17:06:50.134Z").
void AppendTimestamp(std::string& out, absl::Time t);

// SetMember returns `object` with member `quoted_key` set to `value_json` (replaced
// in place, or appended last); RemoveMember without it (unchanged when absent).
std::string SetMember(absl::string_view object, absl::string_view quoted_key,
                      absl::string_view value_json);
std::string RemoveMember(absl::string_view object, absl::string_view quoted_key);

}  // namespace sessionctx::internal

#endif  // SESSIONCTX_SRC_JSON_TEXT_H_
