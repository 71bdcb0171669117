// IpNetwork: an IPv4 or IPv6 address range in CIDR form, for `--metrics-allow`.
//
// Example:
//   absl::StatusOr<IpNetwork> pods = ParseIpNetwork("10.0.0.0/8");
//   pods->Contains("10.1.2.3");  // true
//   pods->Contains("::ffff:10.1.2.3");  // true: an IPv4 client on an IPv6 socket
#ifndef SESSIONCTX_APPS_IP_NETWORK_H_
#define SESSIONCTX_APPS_IP_NETWORK_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sessionctx::apps {

struct IpNetwork {
  std::array<uint8_t, 16> bytes{};  // the address; IPv4 in the first 4
  int prefix = 0;                   // leading bits that must match
  bool v4 = true;

  // Contains: `address` (text, IPv4, IPv6 or IPv4-mapped IPv6) lies in the range.
  // False for text that is no address.
  bool Contains(absl::string_view address) const;
};

// ParseIpNetwork reads "ADDRESS/BITS" or a bare address (a network of one). The
// address's bits past the prefix must be zero ("10.0.0.1/8" is refused: say
// "10.0.0.0/8"), so a typo cannot widen a range unnoticed.
absl::StatusOr<IpNetwork> ParseIpNetwork(absl::string_view text);

// ParseIpNetworks reads a comma-separated list of them.
absl::StatusOr<std::vector<IpNetwork>> ParseIpNetworks(absl::string_view text);

}  // namespace sessionctx::apps

#endif  // SESSIONCTX_APPS_IP_NETWORK_H_
