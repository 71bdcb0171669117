#include "apps/ip_network.h"

#include <arpa/inet.h>

#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace sessionctx::apps {
namespace {

struct Address {
  std::array<uint8_t, 16> bytes{};
  bool v4 = true;
};

// ParseAddress: IPv4 or IPv6 text; an IPv4-mapped IPv6 address counts as IPv4.
std::optional<Address> ParseAddress(absl::string_view text) {
  const std::string s(text);
  Address a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) return a;
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(kMapped, kMapped + 12, a.bytes.begin())) {
    std::copy(a.bytes.begin() + 12, a.bytes.end(), a.bytes.begin());
    std::fill(a.bytes.begin() + 4, a.bytes.end(), 0);
    return a;
  }
  a.v4 = false;
  return a;
}

// Masked: `bytes` with every bit past the first `bits` cleared.
std::array<uint8_t, 16> Masked(std::array<uint8_t, 16> bytes, int bits) {
  for (int i = 0; i < 16; ++i) {
    const int left = bits - 8 * i;
    bytes[i] &= left >= 8 ? 0xff : left <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - left));
  }
  return bytes;
}

}  // namespace

bool IpNetwork::Contains(absl::string_view address) const {
  std::optional<Address> a = ParseAddress(address);
  return a && a->v4 == v4 && Masked(a->bytes, prefix) == bytes;
}

absl::StatusOr<IpNetwork> ParseIpNetwork(absl::string_view text) {
  const std::string shown(text);
  std::vector<absl::string_view> parts = absl::StrSplit(text, absl::MaxSplits('/', 1));
  std::optional<Address> a = ParseAddress(parts[0]);
  if (!a) {
    return absl::InvalidArgumentError(
        absl::StrCat(shown, " is not an address range such as 10.0.0.0/8 or fd00::/8"));
  }
  const int max_bits = a->v4 ? 32 : 128;
  int bits = max_bits;
  if (parts.size() == 2 && (!absl::SimpleAtoi(parts[1], &bits) || bits < 0 || bits > max_bits)) {
    return absl::InvalidArgumentError(
        absl::StrCat(shown, ": the prefix length must be 0 to ", max_bits));
  }
  if (Masked(a->bytes, bits) != a->bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(shown, " has bits set past its prefix length; name the network's first "
                            "address"));
  }
  return IpNetwork{a->bytes, bits, a->v4};
}

absl::StatusOr<std::vector<IpNetwork>> ParseIpNetworks(absl::string_view text) {
  std::vector<IpNetwork> out;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    absl::StatusOr<IpNetwork> n = ParseIpNetwork(absl::StripAsciiWhitespace(part));
    if (!n.ok()) return n.status();
    out.push_back(*n);
  }
  return out;
}

}  // namespace sessionctx::apps
