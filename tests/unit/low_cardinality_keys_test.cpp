// LowCardinalityKeys must lay a LowCardinality(String) column out byte for byte as ClickHouse does in
// Native: the expected bytes are those of ClickHouse 26.5 (chDB) for
// `SELECT toLowCardinality(['x','yy','x',''][number + 1]) AS h FROM numbers(4) FORMAT Native`.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/native_block.hpp"

namespace sluice {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

std::string column(LowCardinalityKeys& keys, const std::vector<std::string>& values) {
  std::vector<std::uint32_t> rows;
  for (const auto& v : values) rows.push_back(keys.index_of(v));
  std::string out;
  keys.append_column(out, rows);
  return out;
}

TEST(LowCardinalityKeys, LaysTheColumnOutAsClickHouseDoes) {
  LowCardinalityKeys keys;
  const std::string expected = bytes({
      0x01, 0, 0, 0, 0, 0, 0, 0,     // keys serialization version 1
      0x00, 0x06, 0, 0, 0, 0, 0, 0,  // UInt8 numbers, additional keys, dictionary update
      0x03, 0, 0, 0, 0, 0, 0, 0,     // three keys: "", "x", "yy"
      0x00, 0x01, 'x', 0x02, 'y', 'y',
      0x04, 0, 0, 0, 0, 0, 0, 0,  // four rows
      0x01, 0x02, 0x01, 0x00});
  EXPECT_EQ(column(keys, {"x", "yy", "x", ""}), expected);
  EXPECT_EQ(keys.size(), 3u);
}

TEST(LowCardinalityKeys, NumbersWidenWithTheDictionaryAndStartAfresh) {
  LowCardinalityKeys keys;
  std::vector<std::string> values;
  for (int i = 0; i < 255; ++i) values.push_back(fmt::format("v{}", i));
  const std::string narrow = column(keys, values);  // 256 keys with the empty one: UInt8 still
  EXPECT_EQ(narrow[9], 0x06);
  EXPECT_EQ(narrow[8], 0x00);
  EXPECT_EQ(static_cast<unsigned char>(narrow.back()), 255);
  values.push_back("one more");  // 257 keys: UInt16 numbers
  keys.clear();
  const std::string wide = column(keys, values);
  EXPECT_EQ(wide[8], 0x01);
  EXPECT_EQ(wide.substr(wide.size() - 2), bytes({0x00, 0x01}));  // key 256, little-endian
  keys.clear();
  for (int i = 0; i < 70000; ++i) keys.index_of(fmt::format("k{}", i));
  std::string out;
  const std::vector<std::uint32_t> rows{69999, 70000};
  keys.append_column(out, rows);
  EXPECT_EQ(out[8], 0x02);  // UInt32 numbers past 65536 keys
  EXPECT_EQ(out.substr(out.size() - 8), bytes({0x6f, 0x11, 0x01, 0x00, 0x70, 0x11, 0x01, 0x00}));
  keys.clear();
  EXPECT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys.bytes(), 0u);
}

TEST(LowCardinalityKeys, NoRowsNoData) {
  LowCardinalityKeys keys;
  keys.index_of("x");
  std::string out;
  keys.append_column(out, {});
  EXPECT_TRUE(out.empty());  // Native reads no column data for a block without rows
}

}  // namespace
}  // namespace sluice
