#include "sessionctx/session_events.h"

#include <cstring>

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

EventRing::EventRing(EventOptions retention) : retention_(retention) {}

void EventRing::Append(const SessionKey& key, EventType type, int64_t version,
                       absl::Time time) {
  std::lock_guard lock(mu_);
  entries_.push_back({key, type, version, time});
  const size_t max = static_cast<size_t>(RetentionCount(retention_, 100'000));
  while (entries_.size() > max) {
    entries_.pop_front();
    ++first_;
  }
}

void EventRing::Trim(absl::Time now) {
  std::lock_guard lock(mu_);
  while (!entries_.empty() && entries_.front().time < now - retention_.max_age) {
    entries_.pop_front();
    ++first_;
  }
}

absl::StatusOr<EventPage> EventRing::Read(const EventQuery& query) const {
  if (absl::Status st = CheckEventQuery(query); !st.ok()) return st;
  EventPage page;
  std::lock_guard lock(mu_);
  const uint64_t last = first_ + entries_.size() - 1;  // first_ - 1 when empty
  if (query.after.empty()) {
    page.next = absl::StrCat(last);
    return page;
  }
  absl::StatusOr<uint64_t> after = ParseEventPosition(query.after);
  if (!after.ok()) return after.status();
  if (*after + 1 < first_ || *after > last) {
    return EventsGoneError(query.after, entries_.empty() ? "" : absl::StrCat(first_));
  }
  // Passing over other tenants' events costs at most this many per page.
  size_t budget = static_cast<size_t>(query.limit) * 16;
  uint64_t position = *after;
  for (size_t i = *after + 1 - first_;
       i < entries_.size() && page.events.size() < static_cast<size_t>(query.limit) &&
       budget > 0;
       ++i, --budget) {
    const Entry& e = entries_[i];
    position = first_ + i;
    if (query.tenant && e.key.tenant != *query.tenant) continue;
    page.events.push_back({absl::StrCat(position), e.key, e.type, e.version, e.time});
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
