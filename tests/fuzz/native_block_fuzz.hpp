// The rows of a Native body's first block, from its header, for the fuzz targets' checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::fuzz {

inline std::uint64_t rows_of_first_block(std::string_view body) {
  std::uint64_t values[2] = {0, 0};  // the block header: varint columns, varint rows
  std::size_t at = 0;
  for (auto& v : values) {
    for (int shift = 0; at < body.size() && shift < 64; shift += 7) {
      const auto b = static_cast<std::uint8_t>(body[at++]);
      v |= std::uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) break;
    }
  }
  return values[1];
}

}  // namespace sluice::fuzz
