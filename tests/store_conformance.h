// The fixture of the conformance suites: a fresh store of one backend (the test's
// parameter) and a SessionService over it, on a manual clock. Every suite built on it
// runs against every backend in ConformanceBackends().
#ifndef SESSIONCTX_TESTS_STORE_CONFORMANCE_H_
#define SESSIONCTX_TESTS_STORE_CONFORMANCE_H_

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sessionctx/backend_support.h"
#include "sessionctx/session_service.h"
#include "sessionctx/write_rules.h"
#include "tests/store_fixture.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace testing {

// ConformanceBackends: every compiled-in backend, and RocksDB once more with every
// context spilled into a key per attribute.
inline std::vector<std::string> ConformanceBackends() {
  std::vector<std::string> backends = CompiledBackends();
#ifdef SESSIONCTX_HAVE_ROCKSDB
  backends.push_back("rocksdb_spilled");
#endif
  return backends;
}

inline std::string BackendName(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

}  // namespace testing

const absl::Time kStart = absl::FromUnixMillis(1'770'000'000'000);

class StoreConformance : public ::testing::TestWithParam<std::string> {
 protected:
  StoreConformance() : factory_(GetParam()), clock_(kStart) {}

  void SetUp() override {
    SESSIONCTX_REQUIRE_BACKEND(factory_);
    OpenStore();
  }

  // OpenStore opens the backend's store (again: the same data, but for memory, which
  // starts empty) with `events`, and a service over it.
  void OpenStore(EventOptions events = {}) {
    service_.reset();
    store_.reset();
    absl::StatusOr<std::unique_ptr<SessionStore>> store = factory_.Open(&clock_, events);
    ASSERT_OK(store);
    store_ = *std::move(store);
    ServiceOptions options;
    options.clock = &clock_;
    options.anonymous_ttl = absl::Hours(1);
    service_ = std::make_unique<SessionService>(store_.get(), options);
  }

  // A stamped record as the service would write it.
  SessionContext Record(const std::string& id, int64_t version = 1) {
    SessionContext s;
    s.session_id = id;
    s.currency = "EUR";
    s.context = Json{{"k", "v"}};
    backend::StampCreate(s, backend::WriteTime{clock_.Now(), absl::Hours(1)});
    s.version = version;
    return s;
  }

  testing::StoreFactory factory_;
  ManualClock clock_;
  std::unique_ptr<SessionStore> store_;
  std::unique_ptr<SessionService> service_;
};

}  // namespace sessionctx

#endif  // SESSIONCTX_TESTS_STORE_CONFORMANCE_H_
