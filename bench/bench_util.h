// Shared set-up for the benchmarks: a temp folder and a typical session record.
#ifndef SESSIONCTX_BENCH_BENCH_UTIL_H_
#define SESSIONCTX_BENCH_BENCH_UTIL_H_

#include <array>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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

// VariedSession: session number `n` of a seeded population of shoppers, so that no two
// sessions are alike and compression and caches meet what real ones would. The same
// (seed, n) always gives the same session. The distribution (docs/benchmarks.md, "The
// data"):
//   - sessionId: a UUID v4 drawn from the generator;
//   - siteCode, currency, targetLocation, language: one of 8 storefronts (weighted:
//     the first two take half); cartId on 60 %;
//   - customerId on 30 % (one of n/3 customers, so some have several sessions);
//   - context: 2 to 12 members (uniform), each a distinct name from 24, each name with
//     its own type: strings (campaigns, search terms, ids), integers, decimals,
//     booleans, arrays of 1 to 8 SKUs, objects (delivery window, address, A/B test);
//   - JSON size about 250 to 1,100 bytes, median about 560 (make_export prints it).
inline SessionContext VariedSession(uint64_t n, uint64_t seed = 1) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL ^ (n + 1) * 0xBF58476D1CE4E5B9ULL);
  auto pick = [&rng](uint64_t count) { return static_cast<size_t>(rng() % count); };
  auto hex = [&rng](int digits) {
    std::string out;
    for (int i = 0; i < digits; ++i) out += "0123456789abcdef"[rng() % 16];
    return out;
  };
  SessionContext s;
  s.session_id = absl::StrCat(hex(8), "-", hex(4), "-4", hex(3), "-",
                              std::string(1, "89ab"[rng() % 4]), hex(3), "-", hex(12));
  struct Shop {
    std::string_view site, currency, country, language;
  };
  static constexpr std::array<Shop, 8> kShops = {{{"main", "EUR", "DE", "de-DE"},
                                                  {"main", "CHF", "CH", "de-CH"},
                                                  {"uk", "GBP", "GB", "en-GB"},
                                                  {"us", "USD", "US", "en"},
                                                  {"fr", "EUR", "FR", "fr-FR"},
                                                  {"nordic", "SEK", "SE", "sv"},
                                                  {"outlet", "EUR", "AT", "de-AT"},
                                                  {"b2b", "PLN", "PL", "pl"}}};
  const size_t r = pick(16);
  const Shop& shop = kShops[r < 8 ? r % 2 : r - 8];
  s.site_code = std::string(shop.site);
  s.currency = std::string(shop.currency);
  s.target_location = std::string(shop.country);
  s.language = std::string(shop.language);
  if (pick(10) < 6) s.cart_id = absl::StrCat("cart-", hex(12));
  if (pick(10) < 3) s.customer_id = absl::StrCat("customer-", rng() % (n / 3 + 1));
  static constexpr std::array<std::string_view, 24> kNames = {
      "campaign",      "storeId",      "giftWrap",     "deliveryWindow", "recentlyViewed",
      "utmSource",     "abTest",       "loyaltyTier",  "lastSearch",     "wishlistCount",
      "paymentMethod", "shippingAddr", "couponCode",   "basketValue",    "newsletter",
      "referrer",      "deviceType",   "compareList",  "pageViews",      "consent",
      "promoBanner",   "priceList",    "lastCategory", "returningVisit"};
  static constexpr std::array<std::string_view, 12> kWords = {
      "winter",  "sale",  "shoes", "jacket",  "running", "kids",
      "outdoor", "denim", "gift",  "premium", "eco",     "summer"};
  auto words = [&](int count) {
    std::string out(kWords[pick(kWords.size())]);
    for (int i = 1; i < count; ++i) (out += '-') += kWords[pick(kWords.size())];
    return out;
  };
  auto skus = [&](int count) {
    Json a = Json::array();
    for (int i = 0; i < count; ++i)
      a.push_back(absl::StrCat("sku-", 100000 + rng() % 900000));
    return a;
  };
  std::array<size_t, kNames.size()> order;
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const size_t members = 2 + pick(11);
  for (size_t i = 0; i < members; ++i) {
    std::swap(order[i], order[i + pick(order.size() - i)]);
    const std::string name(kNames[order[i]]);
    Json value;
    switch (order[i] % 8) {
      case 0:
        value = words(1 + static_cast<int>(pick(4)));
        break;
      case 1:
        value = static_cast<int64_t>(rng() % 100000);
        break;
      case 2:
        value = pick(2) == 0;
        break;
      case 3:
        value = Json{{"from", absl::StrFormat("%02d:00", 8 + pick(10))},
                     {"to", absl::StrFormat("%02d:00", 12 + pick(10))},
                     {"express", pick(4) == 0}};
        break;
      case 4:
        value = skus(1 + static_cast<int>(pick(8)));
        break;
      case 5:
        value = static_cast<double>(rng() % 100000) / 100.0;
        break;
      case 6:
        value = Json{{"street", absl::StrCat(words(1), "strasse ", 1 + pick(200))},
                     {"zip", absl::StrFormat("%05d", rng() % 100000)},
                     {"city", words(1)},
                     {"country", std::string(shop.country)}};
        break;
      default:
        value = absl::StrCat(words(2), "-", hex(6));
        break;
    }
    s.context[name] = std::move(value);
  }
  return s;
}

}  // namespace sessionctx::bench

#endif  // SESSIONCTX_BENCH_BENCH_UTIL_H_
