#include "sessionctx/session_events.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sessionctx/event_support.h"

namespace sessionctx {
namespace {

constexpr const char* kTypeNames[] = {"created", "changed", "deleted", "expired",
                                      "ended"};

}  // namespace

const char* EventTypeName(EventType type) { return kTypeNames[static_cast<int>(type)]; }

std::optional<EventType> ParseEventType(absl::string_view name) {
  for (int i = 0; i < 5; ++i) {
    if (name == kTypeNames[i]) return static_cast<EventType>(i);
  }
  return std::nullopt;
}

Json ToJson(const SessionEvent& e) {
  return Json{{"position", e.position},        {"tenant", e.key.tenant},
              {"sessionId", e.key.session_id}, {"type", EventTypeName(e.type)},
              {"version", e.version},          {"time", FormatTimestamp(e.time)}};
}

absl::Status EventsGoneError(absl::string_view after, absl::string_view oldest) {
  absl::Status st = absl::OutOfRangeError(absl::StrCat(
      "events after position ", after, " are no longer kept",
      oldest.empty() ? std::string(" (the feed holds none)")
                     : absl::StrCat(" (the oldest kept is ", oldest, ")"),
      ": read the sessions again, then follow the feed from its newest position"));
  st.SetPayload(kEventsGonePayload, absl::Cord(after));
  return st;
}

bool IsEventsGone(const absl::Status& status) {
  return absl::IsOutOfRange(status) && status.GetPayload(kEventsGonePayload).has_value();
}

absl::Status EventsOffError() {
  return absl::UnimplementedError(
      "this store's event feed is turned off (EventOptions::enabled, or the server's "
      "--events=off)");
}

absl::StatusOr<uint64_t> ParseEventPosition(absl::string_view position) {
  uint64_t out = 0;
  if (position.empty() || position.size() > 20 ||
      position.find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(position, &out)) {
    return absl::InvalidArgumentError(
        absl::StrCat("event position must be a number such as 0 or 42, got \"",
                     position.substr(0, 64), "\""));
  }
  return out;
}

absl::Status CheckEventQuery(const EventQuery& query) {
  if (query.limit < 1 || query.limit > kMaxEventPage) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit must be from 1 to ", kMaxEventPage, ", got ", query.limit));
  }
  if (query.tenant && query.tenant->empty()) {
    return absl::InvalidArgumentError("tenant must not be empty");
  }
  return absl::OkStatus();
}

namespace backend {

EventRing::EventRing(EventOptions retention)
    : retention_(retention),
      capacity_(static_cast<uint64_t>(RetentionCount(retention, 100'000))),
      slots_(std::make_unique<Slot[]>(capacity_)) {}

template <typename Fn>
auto EventRing::WithSlot(uint64_t position, Fn&& fn) const {
  Slot& slot = slots_[position % capacity_];
  while (slot.busy.exchange(true, std::memory_order_acquire)) {
  }
  auto result = fn(slot);
  slot.busy.store(false, std::memory_order_release);
  return result;
}

void EventRing::Append(const SessionKey& key, EventType type, int64_t version,
                       absl::Time time) {
  const uint64_t position = next_.fetch_add(1);
  // The slot's previous event (one ring older) must be published before it is
  // overwritten, or the watermark could never pass it. Only a ring far smaller than
  // the writers in flight ever waits here.
  while (position > capacity_ && published_.load() < position - capacity_) {
    std::this_thread::yield();
  }
  WithSlot(position, [&](Slot& slot) {
    slot.key = key;
    slot.type = type;
    slot.version = version;
    slot.time = time;
    slot.position.store(position, std::memory_order_release);
    return 0;
  });
  Publish();
}

void EventRing::Publish() {
  uint64_t published = published_.load();
  while (slots_[(published + 1) % capacity_].position.load(std::memory_order_acquire) ==
         published + 1) {
    if (published_.compare_exchange_weak(published, published + 1)) ++published;
  }
}

void EventRing::Trim(absl::Time now) {
  std::lock_guard lock(trim_mu_);
  const uint64_t published = published_.load();
  uint64_t trimmed =
      std::max(trimmed_.load(), published > capacity_ ? published - capacity_ : 0);
  while (trimmed < published && WithSlot(trimmed + 1, [&](const Slot& slot) {
           return slot.position.load() == trimmed + 1 &&
                  slot.time < now - retention_.max_age;
         })) {
    ++trimmed;
  }
  trimmed_.store(trimmed);
}

absl::StatusOr<EventPage> EventRing::Read(const EventQuery& query) const {
  if (absl::Status st = CheckEventQuery(query); !st.ok()) return st;
  EventPage page;
  const uint64_t last = published_.load();
  if (query.after.empty()) {
    page.next = absl::StrCat(last);
    return page;
  }
  absl::StatusOr<uint64_t> after = ParseEventPosition(query.after);
  if (!after.ok()) return after.status();
  // The oldest kept: past what the age trimmed and what the ring overwrote.
  const uint64_t gone =
      std::max(trimmed_.load(), last > capacity_ ? last - capacity_ : 0);
  auto refused = [&] {
    return EventsGoneError(query.after, gone < last ? absl::StrCat(gone + 1) : "");
  };
  if (*after < gone || *after > last) return refused();
  // Passing over other tenants' events costs at most this many per page.
  size_t budget = static_cast<size_t>(query.limit) * 16;
  uint64_t position = *after;
  for (uint64_t at = *after + 1;
       at <= last && page.events.size() < static_cast<size_t>(query.limit) && budget > 0;
       ++at, --budget) {
    std::optional<SessionEvent> e =
        WithSlot(at, [&](const Slot& slot) -> std::optional<SessionEvent> {
          if (slot.position.load() != at) return std::nullopt;  // overwritten meanwhile
          return SessionEvent{absl::StrCat(at), slot.key, slot.type, slot.version,
                              slot.time};
        });
    if (!e) return refused();
    position = at;
    if (query.tenant && e->key.tenant != *query.tenant) continue;
    page.events.push_back(*std::move(e));
  }
  page.next = absl::StrCat(position);
  return page;
}

uint64_t EventSequencer::Reserve() {
  std::lock_guard lock(mu_);
  const uint64_t position = next_++;
  flying_.insert(position);
  return position;
}

uint64_t EventSequencer::ReserveRange(uint64_t n) {
  std::lock_guard lock(mu_);
  const uint64_t first = next_;
  next_ += n;
  flying_.insert(first);
  return first;
}

void EventSequencer::Done(uint64_t position) {
  std::lock_guard lock(mu_);
  flying_.erase(position);
  readable_ = flying_.empty() ? next_ - 1 : *flying_.begin() - 1;
}

uint64_t EventSequencer::Readable() const {
  std::lock_guard lock(mu_);
  return readable_;
}

std::string EventKey(uint64_t position) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<size_t>(i)] = static_cast<char>(position & 0xff);
    position >>= 8;
  }
  return out;
}

std::optional<uint64_t> EventKeyPosition(absl::string_view key) {
  if (key.size() != 8) return std::nullopt;
  uint64_t out = 0;
  for (char c : key) out = (out << 8) | static_cast<unsigned char>(c);
  return out;
}

namespace {

void PutFixed64(std::string& out, uint64_t v) {
  char buf[8];
  std::memcpy(buf, &v, 8);  // little-endian on every platform RocksDB runs here
  out.append(buf, 8);
}

uint64_t GetFixed64(absl::string_view in) {
  uint64_t v = 0;
  std::memcpy(&v, in.data(), 8);
  return v;
}

}  // namespace

// Layout: type (1 byte), version (8), time in microseconds since the epoch (8),
// tenant's length (4), tenant, session id.
std::string EncodeEvent(const SessionEvent& e) {
  std::string out;
  out.reserve(21 + e.key.tenant.size() + e.key.session_id.size());
  out.push_back(static_cast<char>(e.type));
  PutFixed64(out, static_cast<uint64_t>(e.version));
  PutFixed64(out, static_cast<uint64_t>(absl::ToUnixMicros(e.time)));
  const uint32_t tenant_size = static_cast<uint32_t>(e.key.tenant.size());
  char buf[4];
  std::memcpy(buf, &tenant_size, 4);
  out.append(buf, 4);
  absl::StrAppend(&out, e.key.tenant, e.key.session_id);
  return out;
}

absl::StatusOr<SessionEvent> DecodeEvent(absl::string_view bytes, uint64_t position) {
  uint32_t tenant_size = 0;
  if (bytes.size() >= 21) std::memcpy(&tenant_size, bytes.data() + 17, 4);
  if (bytes.size() < 21 || static_cast<unsigned char>(bytes[0]) > 4 ||
      tenant_size > bytes.size() - 21) {
    return absl::DataLossError(absl::StrCat("event ", position, " does not decode"));
  }
  SessionEvent e;
  e.position = absl::StrCat(position);
  e.type = static_cast<EventType>(bytes[0]);
  e.version = static_cast<int64_t>(GetFixed64(bytes.substr(1)));
  e.time = absl::FromUnixMicros(static_cast<int64_t>(GetFixed64(bytes.substr(9))));
  e.key.tenant = std::string(bytes.substr(21, tenant_size));
  e.key.session_id = std::string(bytes.substr(21 + tenant_size));
  return e;
}

}  // namespace backend
}  // namespace sessionctx
