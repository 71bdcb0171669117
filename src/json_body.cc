// Parsing of request bodies (ParseJsonBody, RejectNul and JsonDepthExceeds, declared
// in sessionctx/write_rules.h with the other rules a request passes): size-independent
// limits are checked before nlohmann's parser builds anything, so a hostile body costs
// one linear scan.
#include "absl/strings/str_cat.h"
#include "sessionctx/write_rules.h"

namespace sessionctx {
namespace {

// MaxNesting scans JSON text for the deepest bracket nesting, ignoring brackets inside
// strings. It stops as soon as `limit` is passed.
int MaxNesting(absl::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '{':
      case '[':
        if (++depth > deepest) deepest = depth;
        if (deepest > limit) return deepest;
        break;
      case '}':
      case ']':
        --depth;
        break;
      default:
        break;
    }
  }
  return deepest;
}

}  // namespace

absl::StatusOr<Json> ParseJsonBody(absl::string_view body, int max_depth) {
  if (body.find_first_not_of(" \t\r\n") == absl::string_view::npos) {
    return absl::InvalidArgumentError("request body is empty; a JSON object is required");
  }
  if (MaxNesting(body, max_depth) > max_depth) {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON nesting is deeper than the limit of ", max_depth));
  }
  try {
    Json parsed = Json::parse(body.begin(), body.end());
    // A NUL can only arrive escaped (a raw one is malformed JSON): look closer only then.
    if (body.find("u0000") != absl::string_view::npos) {
      if (absl::Status st = RejectNul(parsed, "request body"); !st.ok()) return st;
    }
    return parsed;
  } catch (const Json::exception& e) {
    // nlohmann's message names the byte and the reason: syntax, ill-formed UTF-8
    // (parse_error), or a number too large for a double, e.g. 1e999 (out_of_range).
    std::string what = e.what();
    auto pos = what.find("] ");
    return absl::InvalidArgumentError(absl::StrCat(
        "malformed JSON: ", pos == std::string::npos ? what : what.substr(pos + 2)));
  }
}

namespace {

// HasNul: whether a string or member name in `value` holds U+0000 (no allocation).
bool HasNul(const Json& value) {
  if (value.is_string()) return value.get_ref<const std::string&>().find('\0') != std::string::npos;
  if (value.is_array()) {
    for (const Json& item : value) {
      if (HasNul(item)) return true;
    }
  } else if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (it.key().find('\0') != std::string::npos || HasNul(*it)) return true;
    }
  }
  return false;
}

}  // namespace

absl::Status RejectNul(const Json& value, absl::string_view where) {
  if (!HasNul(value)) return absl::OkStatus();  // the path is built only for an answer
  auto refused = [](absl::string_view at) {
    return absl::InvalidArgumentError(
        absl::StrCat(at, " holds the NUL character (U+0000), which is not allowed"));
  };
  if (value.is_string()) {
    if (value.get_ref<const std::string&>().find('\0') != std::string::npos) return refused(where);
    return absl::OkStatus();
  }
  if (value.is_array()) {
    size_t i = 0;
    for (const Json& item : value) {
      if (absl::Status st = RejectNul(item, absl::StrCat(where, "[", i++, "]")); !st.ok()) return st;
    }
  } else if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      // The name as JSON text, so that the message itself holds no NUL.
      const std::string name = Json(it.key()).dump(-1, ' ', false, Json::error_handler_t::replace);
      if (it.key().find('\0') != std::string::npos) return refused(absl::StrCat("member name ", name, " in ", where));
      if (absl::Status st = RejectNul(*it, absl::StrCat(where, ".", it.key().empty() ? name : it.key()));
          !st.ok()) {
        return st;
      }
    }
  }
  return absl::OkStatus();
}

bool JsonDepthExceeds(const Json& value, int max_depth) {
  if (!value.is_structured()) return false;
  if (max_depth <= 0) return true;
  for (const Json& child : value) {
    if (JsonDepthExceeds(child, max_depth - 1)) return true;
  }
  return false;
}

}  // namespace sessionctx
