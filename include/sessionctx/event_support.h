// The backend author's API for the event feed (session_events.h): the pieces a
// SessionStore implementation uses to append events in the same atomic step as its
// writes and to serve ReadEvents alike on every backend.
//
// - EventRing: a feed held in memory (memory:), appended under the writer's own lock.
// - EventSequencer: positions for a backend that writes an event into the same batch
//   as the session (rocksdb:), with the watermark that keeps readers from passing a
//   position whose batch has not committed yet.
// - EncodeEvent / DecodeEvent: an event's compact stored form (no position: that is
//   the key it is stored under).
//
// Example (an event in the same batch as a write; see rocksdb_store.cc):
//   uint64_t position = sequencer_.Reserve();
//   batch.Put(events_, backend::EventKey(position),
//             backend::EncodeEvent({.key = key, .type = EventType::kChanged, ...}));
//   absl::Status st = Write(batch);
//   sequencer_.Done(position);
#ifndef SESSIONCTX_EVENT_SUPPORT_H_
#define SESSIONCTX_EVENT_SUPPORT_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sessionctx/session_events.h"

namespace sessionctx::backend {

// EventRing: the feed of a store that lives in memory. Positions are 1, 2, 3, … in
// the order of Append. Thread-safe; a writer appends while it still holds the lock
// of the session it wrote, so that one session's events are in the order of its
// writes.
class EventRing {
 public:
  explicit EventRing(EventOptions retention);

  // Append adds one event (its position is assigned here) and drops the oldest past
  // the count limit.
  void Append(const SessionKey& key, EventType type, int64_t version, absl::Time time);

  // Read: ReadEvents over the ring.
  absl::StatusOr<EventPage> Read(const EventQuery& query) const;

  // Trim drops the events older than the age limit at `now`.
  void Trim(absl::Time now);

 private:
  struct Entry {
    SessionKey key;
    EventType type;
    int64_t version;
    absl::Time time;
  };
  const EventOptions retention_;
  mutable std::mutex mu_;
  std::deque<Entry> entries_;  // guarded by mu_
  uint64_t first_ = 1;         // position of entries_.front(); guarded by mu_
};

// EventSequencer hands out increasing positions to writers that commit out of order
// (each in its own batch), and knows the highest position up to which every batch
// has finished (committed or failed): readers read up to it and no further, so a
// reader never passes a position whose event may still appear. Thread-safe.
class EventSequencer {
 public:
  // Start after `last`, the highest position already stored.
  explicit EventSequencer(uint64_t last) : next_(last + 1), readable_(last) {}

  // Reserve: the next position, owned by the caller until Done.
  uint64_t Reserve();
  // Done: the batch holding `position` committed or failed (a failed one leaves a
  // gap, which readers pass over).
  void Done(uint64_t position);
  // Readable: the highest position below which no batch is still in flight.
  uint64_t Readable() const;

 private:
  mutable std::mutex mu_;
  uint64_t next_;              // guarded by mu_
  uint64_t readable_;          // guarded by mu_
  std::set<uint64_t> flying_;  // guarded by mu_
};

// EventKey: a numeric position as 8 big-endian bytes (keys sort as positions do).
std::string EventKey(uint64_t position);
// EventKeyPosition: the position of an EventKey; nullopt for another key.
std::optional<uint64_t> EventKeyPosition(absl::string_view key);

// EncodeEvent: an event's stored form, without its position.
std::string EncodeEvent(const SessionEvent& event);
// DecodeEvent: the event stored as `bytes` at `position`; DataLoss when malformed.
absl::StatusOr<SessionEvent> DecodeEvent(absl::string_view bytes, uint64_t position);

// RetentionCount: `retention`'s count limit, or `fallback` when it names none.
inline int64_t RetentionCount(const EventOptions& retention, int64_t fallback) {
  return retention.max_count > 0 ? retention.max_count : fallback;
}

}  // namespace sessionctx::backend

#endif  // SESSIONCTX_EVENT_SUPPORT_H_
