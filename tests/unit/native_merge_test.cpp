// merge_native_blocks must give the very bytes one writer gives for all the rows at once: blocks of a
// job's writer, split anywhere, merged back, for every type a mapping can write (Nullable, arrays,
// maps, LowCardinality dictionaries that differ block to block), in both dialects. Anything it cannot
// merge is refused, never misread.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "core/native_block.hpp"
#include "core/native_merge.hpp"
#include "pipeline/jobs/column_mapping.hpp"

namespace sluice {
namespace {

using pipeline::jobs::ColumnSpec;
using pipeline::jobs::compile_mapping;
using pipeline::jobs::MappingSpec;
using transforms::FieldType;
using transforms::LogEvent;

MappingSpec every_type() {
  MappingSpec spec;
  spec.table.push_back('t');
  const std::vector<std::pair<const char*, const char*>> columns = {
      {"s", "String"},           {"lc", "LowCardinality(String)"}, {"fs", "FixedString(3)"},
      {"u8", "UInt8"},           {"u16", "UInt16"},                {"u32", "UInt32"},
      {"u64", "UInt64"},         {"i64", "Int64"},                 {"f32", "Float32"},
      {"f64", "Float64"},        {"b", "Bool"},                    {"d", "Date"},
      {"dt", "DateTime('UTC')"}, {"dt64", "DateTime64(3)"},        {"uuid", "UUID"},
      {"ip4", "IPv4"},           {"ip6", "IPv6"},                  {"as", "Array(String)"},
      {"ai", "Array(Int64)"},    {"af", "Array(Float64)"},         {"m", "Map(String, String)"},
      {"ns", "Nullable(String)"}, {"nu", "Nullable(UInt32)"},      {"ndt", "Nullable(DateTime64(6))"}};
  for (const auto& [name, type] : columns) spec.columns.push_back(ColumnSpec{name, type, "", std::nullopt, false});
  return spec;
}

// Row i of a varied set: values present or missing (Nullable nulls, defaults), dictionaries that grow.
LogEvent row(int i) {
  LogEvent e;
  const auto text = [&](const char* name, std::string v, FieldType type = FieldType::string) { e.set(name, v, type); };
  text("s", fmt::format("text {}", i * 7919 % 1000));
  if (i % 5 != 0) text("lc", fmt::format("host-{}", i * 31 % 17));  // missing: the empty key
  text("fs", i % 2 ? "ab" : "xyz");
  text("u8", std::to_string(i % 256), FieldType::number);
  text("u16", std::to_string(i * 13 % 65536), FieldType::number);
  text("u32", std::to_string(i * 100003), FieldType::number);
  text("u64", std::to_string(i * 1000000007ull), FieldType::number);
  text("i64", std::to_string(-i * 77), FieldType::number);
  text("f32", fmt::format("{}.25", i), FieldType::number);
  text("f64", fmt::format("{}.5", -i), FieldType::number);
  text("b", i % 3 ? "true" : "false", FieldType::boolean);
  text("d", "2024-01-02");
  text("dt", std::to_string(1704164645 + i), FieldType::number);
  text("dt64", std::to_string(1704164645123 + i), FieldType::number);
  text("uuid", fmt::format("123e4567-e89b-12d3-a456-4266141740{:02}", i % 100));
  text("ip4", fmt::format("10.0.{}.{}", i % 256, i * 7 % 256));
  text("ip6", fmt::format("2001:db8::{:x}", i));
  if (i % 4) text("as", fmt::format("[\"a{}\",\"b\"]", i), FieldType::json);
  text("ai", i % 3 ? fmt::format("[{},{},{}]", i, -i, i * 2) : "[]", FieldType::json);
  if (i % 2) text("af", fmt::format("[{}.5]", i), FieldType::json);
  if (i % 3) text("m", fmt::format("{{\"k{}\":\"v\",\"z\":\"{}\"}}", i % 4, i), FieldType::json);
  if (i % 4 != 1) text("ns", fmt::format("n{}", i));
  if (i % 3 != 2) text("nu", std::to_string(i), FieldType::number);
  if (i % 2) text("ndt", std::to_string(1704164645123456 + i), FieldType::number);
  return e;
}

std::string block_of(const MappingSpec& spec, ClickHouseDialect dialect, int from, int to) {
  auto writer = compile_mapping(spec, dialect)->make_writer();
  for (int i = from; i < to; ++i) {
    if (auto rejected = writer->append(row(i), {})) ADD_FAILURE() << "row " << i << ": " << rejected->reason;
  }
  return writer->take().body;
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
  const auto block = [&](int from, int to) {
    auto writer = compile_mapping(spec, ClickHouseDialect::modern)->make_writer();
    for (int i = from; i < to; ++i) {
      LogEvent e;
      e.set("lc", fmt::format("k{}", i), FieldType::string);
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
