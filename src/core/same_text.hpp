// same_text: equality of two short strings (field names, dictionary keys) without a call to memcmp.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace sluice {

// Names and keys on hot paths are mostly under 16 bytes, where a library memcmp costs more in its call
// than in its comparing: two overlapping loads from each end cover every length up to twice their
// width, and never read outside either string.
inline bool same_text(std::string_view a, std::string_view b) {
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  const char* p = a.data();
  const char* q = b.data();
  const auto load = [](const char* s, auto width) {
    decltype(width) v;
    std::memcpy(&v, s, sizeof v);
    return v;
  };
  if (n >= 8) {
    if (n > 16) return std::memcmp(p, q, n) == 0;
    return load(p, std::uint64_t{}) == load(q, std::uint64_t{}) &&
           load(p + n - 8, std::uint64_t{}) == load(q + n - 8, std::uint64_t{});
  }
  if (n >= 4) {
    return load(p, std::uint32_t{}) == load(q, std::uint32_t{}) &&
           load(p + n - 4, std::uint32_t{}) == load(q + n - 4, std::uint32_t{});
  }
  if (n >= 2) return load(p, std::uint16_t{}) == load(q, std::uint16_t{}) && p[n - 1] == q[n - 1];
  return n == 0 || p[0] == q[0];
}

}  // namespace sluice
