// SessionText: one record as JSON text — what a read hands from a store to the wire.
//
// The text is the record's wire shape (docs/api.md), assembled once when the record is
// written; next to it sit the few fields a server checks before answering (version,
// customer, expiry). A GET copies the text into the response and builds no DOM. It is
// immutable and shared: the memory: store hands out its own snapshot, not a copy.
// Embedders who want the context's values parse it on demand (Context, Record).
//
// Example:
//   absl::StatusOr<std::shared_ptr<const SessionText>> s = service.GetText({"acme", "s1"});
//   response.body = std::string((*s)->json());        // the wire form, no DOM
//   Json cart = (*s)->Context().value("cart", Json()); // parsed when asked for
//   SessionContext record = (*s)->Record().value();   // the full record as a value
#ifndef SESSIONCTX_SESSION_TEXT_H_
#define SESSIONCTX_SESSION_TEXT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sessionctx/session_context.h"

namespace sessionctx {
namespace backend {
struct TextLayout;  // how stores make and take apart a SessionText (backend_support.h)
}  // namespace backend

class SessionText {
 public:
  // FromRecord renders `record` (its context serialized compactly).
  static std::shared_ptr<const SessionText> FromRecord(const SessionContext& record);

  // json: the record's wire shape, e.g. {"sessionId":"s1",…,"context":{…},"metadata":{…}}.
  absl::string_view json() const { return json_; }
  // context_json: the text of the context object, a part of json().
  absl::string_view context_json() const {
    return absl::string_view(json_).substr(context_begin_, context_end_ - context_begin_);
  }

  const std::optional<std::string>& customer_id() const { return customer_id_; }
  int64_t version() const { return version_; }
  absl::Time created_at() const { return created_at_; }
  absl::Time modified_at() const { return modified_at_; }
  absl::Time expires_at() const { return expires_at_; }
  bool IsExpiredAt(absl::Time now) const { return expires_at_ <= now; }

  // Context parses the context object (a DOM, built on each call).
  Json Context() const;

  // Fields: the record's fields with an empty context, parsing only the text before
  // the context (a small object). DataLoss if it does not parse.
  absl::StatusOr<SessionContext> Fields() const;

  // Record parses the whole record back into a value. DataLoss if the text does not
  // parse (never for text made by FromRecord/FromParts).
  absl::StatusOr<SessionContext> Record() const;

  SessionText(const SessionText&) = delete;
  SessionText& operator=(const SessionText&) = delete;

  // Made only by FromRecord and backend::TextLayout (a passkey lets them use
  // std::make_shared, one allocation for the object and its count).
  class Key {
    friend class SessionText;
    friend struct backend::TextLayout;
    Key() = default;
  };
  explicit SessionText(Key) {}

 private:
  friend struct backend::TextLayout;
  SessionContext FieldsFrom(const Json& parsed) const;

  std::string json_;
  uint32_t context_begin_ = 0;
  uint32_t context_end_ = 0;
  int64_t version_ = 0;
  std::optional<std::string> customer_id_;
  absl::Time created_at_;
  absl::Time modified_at_;
  absl::Time expires_at_;
};

}  // namespace sessionctx

#endif  // SESSIONCTX_SESSION_TEXT_H_
