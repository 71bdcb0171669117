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

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sessionctx/session_events.h"

namespace sessionctx::backend {

// EventRing: the feed of a store that lives in memory: a ring of `max_count` slots
// allocated at construction (about 100 bytes each). Positions are 1, 2, 3, … in the
// order of Append. Thread-safe without a global lock: a writer takes its position
// with one atomic add and fills its slot under the slot's own lock, while it still
// holds the lock of the session it wrote (so one session's events are in the order
// of its writes); readers read up to the highest position below which every slot is
// filled, so they never pass one that is still being written.
class EventRing {
 public:
  explicit EventRing(EventOptions retention);

  // Append adds one event (its position is assigned here); the event `max_count`
  // positions older is overwritten.
  void Append(const SessionKey& key, EventType type, int64_t version, absl::Time time);

  // Read: ReadEvents over the ring.
  absl::StatusOr<EventPage> Read(const EventQuery& query) const;

  // Trim drops the events older than the age limit at `now`.
  void Trim(absl::Time now);

 private:
  struct Slot {
    mutable std::atomic<bool> busy{false};  // a spin lock: held for a few copies
    std::atomic<uint64_t> position{0};      // the event it holds; 0: none yet
    SessionKey key;                         // the fields: guarded by busy
    EventType type = EventType::kChanged;
    int64_t version = 0;
    absl::Time time;
  };
  // The slot of `position`, locked while `fn(slot)` runs.
  template <typename Fn>
  auto WithSlot(uint64_t position, Fn&& fn) const;
  // Published: move `published_` past every filled slot that follows it.
  void Publish();

  const EventOptions retention_;
  const uint64_t capacity_;
  const std::unique_ptr<Slot[]> slots_;
  std::atomic<uint64_t> next_{1};       // the next position to hand out
  std::atomic<uint64_t> published_{0};  // every position up to it is filled
  std::atomic<uint64_t> trimmed_{0};    // every position up to it is gone by age
  std::mutex trim_mu_;                  // one Trim at a time
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
  // ReserveRange: `n` (> 0) consecutive positions, the first returned; one Done(first)
  // ends them all.
  uint64_t ReserveRange(uint64_t n);
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
