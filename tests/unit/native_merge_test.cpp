// merge_native_blocks must give the very bytes one writer gives for all the rows at once: blocks of a
// job's writer, split anywhere, merged back, for every type a mapping can write (Nullable, arrays,
// maps, LowCardinality dictionaries that differ block to block), in both dialects. Anything it cannot
// merge is refused, never misread.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/native_block.hpp"
#include "core/native_merge.hpp"
#include "fixtures/native_rows.hpp"
#include "pipeline/jobs/column_mapping.hpp"

namespace sluice {
namespace {

using pipeline::jobs::ColumnSpec;
using pipeline::jobs::compile_mapping;
using pipeline::jobs::MappingSpec;
using transforms::FieldType;
using transforms::LogEvent;

MappingSpec every_type() { return testing::every_type_mapping(); }

std::string block_of(const MappingSpec& spec, ClickHouseDialect dialect, int from, int to) {
  std::vector<int> rows(static_cast<std::size_t>(to - from));
  std::iota(rows.begin(), rows.end(), from);
  return testing::every_type_block(spec, dialect, rows);
}

TEST(NativeMerge, BlocksMergedAreTheBlockOfAllTheirRows) {
  const auto spec = every_type();
  for (const auto dialect : {ClickHouseDialect::modern, ClickHouseDialect::legacy}) {
    MappingSpec s = spec;
    if (dialect == ClickHouseDialect::legacy) std::erase_if(s.columns, [](const auto& c) { return c.name == "m"; });
    const std::string whole = block_of(s, dialect, 0, 300);
    const std::vector<std::vector<int>> splits = {{0, 300}, {0, 1, 300}, {0, 10, 11, 150, 299, 300},
                                                 {0, 100, 200, 300}};
    for (const auto& cut : splits) {
      std::vector<std::string> bodies;
      for (std::size_t k = 0; k + 1 < cut.size(); ++k) bodies.push_back(block_of(s, dialect, cut[k], cut[k + 1]));
      const std::vector<std::string_view> views(bodies.begin(), bodies.end());
      std::string merged = "left over";
      ASSERT_TRUE(merge_native_blocks(views, merged)) << "split into " << bodies.size();
      EXPECT_EQ(merged, whole) << "split into " << bodies.size();
      // Several blocks in one body (a body already coalesced) merge the same way.
      std::string joined;
      for (const auto& b : bodies) joined += b;
      const std::vector<std::string_view> one{joined};
      ASSERT_TRUE(merge_native_blocks(one, merged));
      EXPECT_EQ(merged, whole);
    }
  }
}

TEST(NativeMerge, DictionariesWidenPast256Keys) {
  MappingSpec spec;
  spec.table.push_back('t');
  spec.columns.push_back(ColumnSpec{"lc", "LowCardinality(String)", "", std::nullopt, false});
  const auto block = [&](int from, int to) -> std::string {
    auto writer = compile_mapping(spec, ClickHouseDialect::modern)->make_writer();
    for (int i = from; i < to; ++i) {
      LogEvent e;
      e.set(spec.columns.front().name, fmt::format("k{}", i), FieldType::string);  // (a literal name: GCC 12 -Wrestrict)
      EXPECT_FALSE(writer->append(e, {}));
    }
    return writer->take().body;
  };
  const std::string a = block(0, 200), b = block(150, 400), whole_keys = block(0, 400);
  const std::vector<std::string_view> views{a, b};
  std::string merged;
  ASSERT_TRUE(merge_native_blocks(views, merged));
  // Keys k0..k399 once each (with ""), so numbers are UInt16; rows k150..k199 appear twice.
  EXPECT_NE(merged.find(std::string("\x01\x06\0\0\0\0\0\0", 8)), std::string::npos);
  EXPECT_EQ(merged.size(), whole_keys.size() + 50 * 2);  // 50 more rows, two bytes a number
}

TEST(NativeMerge, RefusesWhatItCannotMerge) {
  const auto spec = every_type();
  const std::string a = block_of(spec, ClickHouseDialect::modern, 0, 20);
  const std::string b = block_of(spec, ClickHouseDialect::modern, 20, 40);
  std::string out;
  MappingSpec other = spec;
  other.columns.pop_back();
  const std::string c = block_of(other, ClickHouseDialect::modern, 0, 20);
  const std::vector<std::string_view> different{a, c};
  EXPECT_FALSE(merge_native_blocks(different, out));  // other columns
  const std::string legacy_block = block_of(spec, ClickHouseDialect::legacy, 0, 5);
  const std::vector<std::string_view> legacy{a, legacy_block};
  EXPECT_FALSE(merge_native_blocks(legacy, out));  // other types
  for (std::size_t cut = 1; cut < b.size(); cut += 37) {  // (an empty body is no block: nothing to add)
    const std::vector<std::string_view> truncated{a, std::string_view(b).substr(0, cut)};
    EXPECT_FALSE(merge_native_blocks(truncated, out)) << "cut at " << cut;
  }
  std::string unknown;  // a type this does not know
  put_varint(unknown, 1);
  put_varint(unknown, 1);
  put_native_column_header(unknown, "t", "Tuple(UInt8)");
  unknown.push_back('\x01');
  const std::vector<std::string_view> tuple{unknown, unknown};
  EXPECT_FALSE(merge_native_blocks(tuple, out));
  std::string empty;  // a block without rows: Native carries no data for it
  put_varint(empty, 1);
  put_varint(empty, 0);
  put_native_column_header(empty, "s", "String");
  const std::vector<std::string_view> no_rows{empty};
  EXPECT_FALSE(merge_native_blocks(no_rows, out));
  EXPECT_FALSE(merge_native_blocks({}, out));
}

TEST(NativeMerge, HostileBytesAreRefusedNotMisread) {
  const auto spec = every_type();
  const std::string a = block_of(spec, ClickHouseDialect::modern, 0, 30);
  std::mt19937 rng(7);
  int refused = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string b = a;
    for (int k = 0; k < 1 + round % 4; ++k) b[rng() % b.size()] = static_cast<char>(rng());
    const std::vector<std::string_view> views{a, b};
    std::string out;
    if (!merge_native_blocks(views, out)) ++refused;
  }
  EXPECT_GT(refused, 0);  // and no read out of bounds (ASan) nor a hang
}

}  // namespace
}  // namespace sluice
