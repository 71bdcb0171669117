// Shared set-up for the benchmarks: a temp folder and a typical session record.
#ifndef SESSIONCTX_BENCH_BENCH_UTIL_H_
#define SESSIONCTX_BENCH_BENCH_UTIL_H_

#include <filesystem>
#include <random>
#include <string>

#include "sessionctx/session_context.h"

namespace sessionctx::bench {

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("sessionctx-bench-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string Sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// A storefront session as a shop would keep it: base fields and a handful of
// attributes (about 400 bytes of JSON).
inline SessionContext TypicalSession(const std::string& id) {
  SessionContext s;
  s.session_id = id;
  s.site_code = "main";
  s.currency = "EUR";
  s.cart_id = "cart-7f3c2a1e-9b4d";
  s.target_location = "DE";
  s.language = "de-CH";
  s.context = Json{{"giftWrap", true},
                   {"deliveryWindow", {{"from", "09:00"}, {"to", "12:00"}}},
                   {"campaign", "winter-sale-2026"},
                   {"recentlyViewed", {"sku-1", "sku-2", "sku-3", "sku-4"}},
                   {"storeId", 1042}};
  return s;
}

}  // namespace sessionctx::bench

#endif  // SESSIONCTX_BENCH_BENCH_UTIL_H_
