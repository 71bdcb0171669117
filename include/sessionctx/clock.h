// Clock: where the library reads the current time.
//
// Expiry, timestamps and token checks all read time through a Clock so that tests
// can move time forward without sleeping.
//
// Example:
//   sessionctx::ManualClock clock(absl::FromUnixMillis(1'700'000'000'000));
//   options.clock = &clock;
//   clock.Advance(absl::Hours(2));   // every anonymous session is now expired
#ifndef SESSIONCTX_CLOCK_H_
#define SESSIONCTX_CLOCK_H_

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"

namespace sessionctx {

// Clock is the source of "now". Implementations must be thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;

  // Real returns the process-wide wall clock. Never null, never deleted.
  static const Clock* Real();
};

// ManualClock stands still until told to move. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(absl::Time start) : now_ms_(absl::ToUnixMillis(start)) {}
  absl::Time Now() const override { return absl::FromUnixMillis(now_ms_.load()); }
  void Advance(absl::Duration d) { now_ms_ += absl::ToInt64Milliseconds(d); }
  void Set(absl::Time t) { now_ms_ = absl::ToUnixMillis(t); }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace sessionctx

#endif  // SESSIONCTX_CLOCK_H_
