// Session events: the change feed every store keeps beside its sessions.
//
// Every committed write appends one event — created, changed, deleted, expired, or
// ended by a customer's logout — in the same atomic step as the write, so that a write
// that did not commit leaves none and a committed one always has one. An event holds
// the session's key, the version the write produced (for a deletion: the version the
// session had), and the write's time; never the session's values. Events are kept
// in a feed in position order: a reader reads a page after a position, keeps the last
// position it handled, and resumes from it after a restart, seeing every later event
// once, in order per session (at-least-once delivery, in the reader's hands: it
// resumes from the position it stored). A position older than the feed keeps (its
// retention) is refused with an error IsEventsGone recognises: the reader
// resynchronises (reads the sessions again) instead of silently missing changes.
// docs/events.md explains positions, retention and resynchronisation.
//
// Example (a reader that follows the feed):
//   std::string after = stored_position;  // "" the first time: from the newest
//   for (;;) {
//     absl::StatusOr<EventPage> page = store->ReadEvents({.after = after, .limit = 100});
//     if (IsEventsGone(page.status())) { Resynchronise(); after = ""; continue; }
//     for (const SessionEvent& e : page->events) Handle(e);
//     after = page->next;  // store it with what Handle did
//     if (page->events.empty()) Sleep();
//   }
#ifndef SESSIONCTX_SESSION_EVENTS_H_
#define SESSIONCTX_SESSION_EVENTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sessionctx/session_context.h"

namespace sessionctx {

// EventType: what a committed write did to a session.
enum class EventType {
  kCreated,  // a new session (Create, an upsert that created, an import of a new one)
  kChanged,  // any write to a live session: PATCH, PUT, attributes, login, import
  kDeleted,  // deleted by a call (DELETE)
  kExpired,  // an anonymous session's expiry passed and the store removed it
  kEnded,    // ended with its customer's other sessions (log out everywhere)
};

// EventTypeName: "created", "changed", "deleted", "expired" or "ended".
const char* EventTypeName(EventType type);
// ParseEventType: the type named by EventTypeName's text; nullopt for any other.
std::optional<EventType> ParseEventType(absl::string_view name);

// SessionEvent: one event of the feed.
struct SessionEvent {
  // Where this event is in the feed: read after it to get the events that follow.
  // Opaque text (today the decimal number of the event on memory:, rocksdb: and
  // postgresql:), compared only by the store.
  std::string position;
  SessionKey key;
  EventType type = EventType::kChanged;
  int64_t version = 0;  // after the write; deleted, expired, ended: the version it had
  absl::Time time = absl::UnixEpoch();  // when the write committed (the store's clock)

  bool operator==(const SessionEvent&) const = default;
};

// ToJson: {"position", "tenant", "sessionId", "type", "version", "time"} (time as
// RFC 3339 UTC with milliseconds), as the HTTP stream and sessionctl print an event.
Json ToJson(const SessionEvent& event);

// The most events one page holds, and the default.
inline constexpr int kMaxEventPage = 10000;
inline constexpr int kDefaultEventPage = 100;

// EventQuery: which events to read.
struct EventQuery {
  // Read the events after this position; "" reads from the newest (nothing yet:
  // the page's `next` is where a reader starting now begins), "0" from the first
  // event the store ever wrote (IsEventsGone once retention dropped it).
  std::string after;
  int limit = kDefaultEventPage;  // 1..kMaxEventPage, else InvalidArgument
  // Only this tenant's events when set; a page may then hold fewer than `limit`
  // events though more follow (the others' events were passed over).
  std::optional<std::string> tenant;
};

// EventPage: events in position order, and where to read next.
struct EventPage {
  std::vector<SessionEvent> events;
  // The position to read after next time: the last event's, or past the events of
  // other tenants that were passed over, or `after` itself when nothing followed.
  std::string next;
};

// EventOptions: whether a store keeps a feed, and how long it keeps events (its
// retention). An event goes once either limit is passed; stores trim in the
// background (with PurgeExpired).
struct EventOptions {
  // false: no feed (ReadEvents answers Unimplemented), for a deployment that
  // wants none, and to measure what the feed costs.
  bool enabled = true;
  // Events kept at most; 0: the backend's default (memory: 100,000, held in RAM;
  // the others: 1,000,000).
  int64_t max_count = 0;
  // Age after which an event goes. Default one day.
  absl::Duration max_age = absl::Hours(24);
};

// The payload URL that marks an OutOfRange status as "the position fell out of
// retention" (IsEventsGone).
inline constexpr char kEventsGonePayload[] = "sessionctx/events-gone";

// EventsGoneError: the reader's position is older than the oldest event kept; it
// must resynchronise. `oldest`: the position of the oldest event still kept, if any.
absl::Status EventsGoneError(absl::string_view after, absl::string_view oldest);
// IsEventsGone: whether `status` is EventsGoneError.
bool IsEventsGone(const absl::Status& status);

// EventsOffError: Unimplemented, ReadEvents of a store whose feed is turned off.
absl::Status EventsOffError();

// ParseEventPosition: a numeric position ("0", "42"); InvalidArgument naming the
// text otherwise. For backends whose positions are numbers.
absl::StatusOr<uint64_t> ParseEventPosition(absl::string_view position);

// CheckEventQuery: InvalidArgument naming what is wrong with `query` (its limit, or
// an empty tenant).
absl::Status CheckEventQuery(const EventQuery& query);

}  // namespace sessionctx

#endif  // SESSIONCTX_SESSION_EVENTS_H_
