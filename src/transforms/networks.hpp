// NetworkTable: CIDR prefixes from configuration mapped to network attributes, longest prefix wins.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/envelope.hpp"

namespace sluice::transforms {

struct NetworkAttributes {
  std::string name, role, site, region, tenant;
  bool operator==(const NetworkAttributes&) const = default;
};

// A prefix over the IPv6 space; IPv4 prefixes are stored IPv4-mapped (192.0.2.0/24 → ::ffff:192.0.2.0/120).
struct Prefix {
  Ip6 address{};
  std::uint8_t length = 0;  // 0..128
  bool contains(const Ip6& a) const;
};

// "192.0.2.0/24", "2001:db8::/32" or a bare address (a host prefix). On failure returns nullopt and
// says why in `error` (host bits set, bad length, not an address).
std::optional<Prefix> parse_prefix(std::string_view text, std::string* error);

// Immutable once built, so any number of threads may look up concurrently. The prefixes are flattened
// into sorted, non-overlapping address ranges, each pointing at the attributes of its most specific
// prefix: a lookup is one binary search and never allocates.
class NetworkTable {
 public:
  struct Entry {
    Prefix prefix;
    NetworkAttributes attributes;
  };

  NetworkTable() = default;
  // A more specific prefix inherits every attribute it leaves empty from the enclosing prefix, so that
  // a /24 may only name itself and keep the site and region of its /16. Duplicate prefixes throw
  // std::invalid_argument.
  explicit NetworkTable(std::vector<Entry> entries);

  // The attributes of the longest prefix containing `a`, or nullptr.
  const NetworkAttributes* lookup(const Ip6& a) const;
  bool empty() const { return attributes_.empty(); }
  std::size_t ranges() const { return starts_.size(); }

 private:
  struct Key {
    std::uint64_t hi = 0, lo = 0;
    auto operator<=>(const Key&) const = default;
  };
  static Key key_of(const Ip6& a);

  std::vector<NetworkAttributes> attributes_;  // one per prefix, inherited fields merged in
  std::vector<Key> starts_;                     // range starts, ascending; starts_[0] is ::
  std::vector<std::int32_t> owner_;             // per range: index into attributes_, or -1
};

}  // namespace sluice::transforms
