// Prefix and PrefixTable: address prefixes (IPv4 as IPv4-mapped IPv6) and a longest-prefix-match table
// small enough to scan, used to pick static entries and SNMP credentials per exporter.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/envelope.hpp"

namespace sluice::transforms::metadata {

struct Prefix {
  Ip6 address{};          // host bits cleared
  std::uint8_t length = 0;  // 0..128, IPv4 prefixes counted from the start of the mapped address (96 + n)

  bool contains(const Ip6& a) const {
    const unsigned full = length / 8;
    if (std::memcmp(address.data(), a.data(), full) != 0) return false;
    const unsigned rest = length % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xFF00 >> rest);
    return (address[full] & mask) == (a[full] & mask);
  }
  friend bool operator==(const Prefix&, const Prefix&) = default;
};

// "192.0.2.0/24", "2001:db8::/32", or a bare address (a host prefix). Host bits set under the mask are
// refused, since "192.0.2.1/24" is more often a typo than an intent.
inline std::optional<Prefix> parse_prefix(std::string_view text) {
  const auto slash = text.find('/');
  const auto addr_text = text.substr(0, slash);
  auto addr = ip6_parse(addr_text);
  if (!addr) return std::nullopt;
  const bool v4 = addr_text.find(':') == std::string_view::npos;
  unsigned length = v4 ? 32 : 128;
  if (slash != std::string_view::npos) {
    const auto len_text = text.substr(slash + 1);
    if (len_text.empty() || len_text.size() > 3) return std::nullopt;
    unsigned n = 0;
    for (char c : len_text) {
      if (c < '0' || c > '9') return std::nullopt;
      n = n * 10 + static_cast<unsigned>(c - '0');
    }
    if (n > length) return std::nullopt;
    length = n;
  }
  Prefix p;
  p.address = *addr;
  p.length = static_cast<std::uint8_t>(v4 ? length + 96 : length);
  Prefix masked{};
  masked.length = p.length;
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned bits = p.length > i * 8 ? std::min(8u, p.length - i * 8) : 0u;
    const auto mask = static_cast<std::uint8_t>(bits == 0 ? 0 : 0xFF00 >> bits);
    masked.address[i] = static_cast<std::uint8_t>(p.address[i] & mask);
  }
  if (masked.address != p.address) return std::nullopt;
  return p;
}

inline std::string prefix_to_string(const Prefix& p) {
  if (ip6_is_v4_mapped(p.address) && p.length >= 96) {
    return ip6_to_string(p.address) + "/" + std::to_string(p.length - 96);
  }
  return ip6_to_string(p.address) + "/" + std::to_string(p.length);
}

// Longest prefix wins; among equal prefixes, the first added. Lookups are linear, which is fine for the
// handful of entries operators write, and they happen once per exporter, not per flow.
template <typename T>
class PrefixTable {
 public:
  void add(const Prefix& p, T value) {
    entries_.emplace_back(p, std::move(value));
    std::stable_sort(entries_.begin(), entries_.end(),
                     [](const auto& a, const auto& b) { return a.first.length > b.first.length; });
  }
  const T* find(const Ip6& a) const {
    for (const auto& [p, v] : entries_) {
      if (p.contains(a)) return &v;
    }
    return nullptr;
  }
  bool empty() const { return entries_.empty(); }
  std::size_t size() const { return entries_.size(); }
  const std::vector<std::pair<Prefix, T>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<Prefix, T>> entries_;
};

struct Ip6Hash {
  std::size_t operator()(const Ip6& a) const {
    std::uint64_t hi = 0, lo = 0;
    std::memcpy(&hi, a.data(), 8);
    std::memcpy(&lo, a.data() + 8, 8);
    const std::uint64_t h = (hi * 0x9e3779b97f4a7c15ULL) ^ (lo * 0xc2b2ae3d27d4eb4fULL);
    return static_cast<std::size_t>(h ^ (h >> 29));
  }
};

}  // namespace sluice::transforms::metadata
