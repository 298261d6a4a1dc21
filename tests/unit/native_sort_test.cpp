// NativeSorter must give the block a writer gives for the same rows written in key order (ties in
// their first order), for keys of every kind ClickHouse compares (numbers signed and unsigned,
// floats, NULLs, LowCardinality, String, FixedString) with every other column type carried along;
// say when a block is in order already; and refuse, never misread, what it cannot sort.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/native_block.hpp"
#include "core/native_sort.hpp"
#include "fixtures/native_rows.hpp"

namespace sluice {
namespace {

using pipeline::jobs::MappingSpec;
using Outcome = NativeSorter::Outcome;

// The values every_type_row gives its key columns, as the store compares them.
std::string lc_of(int i) { return i % 5 != 0 ? fmt::format("host-{}", i * 31 % 17) : ""; }
std::optional<std::uint32_t> nu_of(int i) { return i % 3 != 2 ? std::optional<std::uint32_t>(i) : std::nullopt; }
std::optional<std::int64_t> ndt_of(int i) {
  return i % 2 ? std::optional<std::int64_t>(1704164645123456 + i) : std::nullopt;
}
// NULL after every value, as ClickHouse orders a sorting key.
template <typename T>
std::tuple<bool, T> nulls_last(const std::optional<T>& v) { return {!v.has_value(), v.value_or(T{})}; }

std::vector<int> shuffled(int n, unsigned seed) {
  std::vector<int> rows(static_cast<std::size_t>(n));
  std::iota(rows.begin(), rows.end(), 0);
  std::mt19937 rng(seed);
  std::shuffle(rows.begin(), rows.end(), rng);
  return rows;
}

struct Case {
  std::vector<std::string> key;
  std::function<bool(int, int)> less;  // rows a, b by number
  bool modern_only = false;            // DateTime64 is DateTime (whole seconds) for ClickHouse 18.16
};

// The first row where two blocks differ, or nothing: a whole block printed tells nobody anything.
std::string first_difference(std::string_view actual, std::string_view expected) {
  const auto a = testing::native_rows(actual), e = testing::native_rows(expected);
  if (a.size() != e.size()) return fmt::format("{} rows instead of {}", a.size(), e.size());
  for (std::size_t row = 0; row < a.size(); ++row) {
    if (a[row] != e[row]) return fmt::format("row {}: ({}) instead of ({})", row, fmt::join(a[row], " "), fmt::join(e[row], " "));
  }
  return "";
}

std::vector<Case> cases() {
  return {
      {{"lc", "dt64"}, [](int a, int b) { return std::tuple(lc_of(a), a) < std::tuple(lc_of(b), b); }, true},
      {{"i64"}, [](int a, int b) { return -a * 77 < -b * 77; }},
      {{"f64", "u16"},
       [](int a, int b) {
         return std::tuple(std::stod(fmt::format("{}.5", -a)), a * 13 % 65536) <
                std::tuple(std::stod(fmt::format("{}.5", -b)), b * 13 % 65536);
       }},
      {{"nu", "b"},
       [](int a, int b) { return std::tuple(nulls_last(nu_of(a)), a % 3 != 0) < std::tuple(nulls_last(nu_of(b)), b % 3 != 0); }},
      {{"ndt"}, [](int a, int b) { return nulls_last(ndt_of(a)) < nulls_last(ndt_of(b)); }, true},
      {{"s", "fs"},
       [](int a, int b) {
         const auto fs = [](int i) { return i % 2 ? std::string("ab\0", 3) : std::string("xyz"); };
         return std::tuple(fmt::format("text {}", a * 7919 % 1000), fs(a)) <
                std::tuple(fmt::format("text {}", b * 7919 % 1000), fs(b));
       }},
      {{"u8", "f32", "lc", "u64"},  // 1 + 4 + 1 + 8 bytes of key
       [](int a, int b) {
         return std::tuple(a % 256, a, lc_of(a), a) < std::tuple(b % 256, b, lc_of(b), b);
       }},
  };
}

TEST(NativeSort, RowsComeOutInKeyOrderWithEveryColumnCarried) {
  for (const auto dialect : {ClickHouseDialect::modern, ClickHouseDialect::legacy}) {
    MappingSpec spec = testing::every_type_mapping();
    if (dialect == ClickHouseDialect::legacy) std::erase_if(spec.columns, [](const auto& c) { return c.name == "m"; });
    const auto input = shuffled(700, 11);
    const std::string block = testing::every_type_block(spec, dialect, input);
    NativeSorter sorter;  // one sorter for every case: its memory is reused
    for (const auto& c : cases()) {
      if (c.modern_only && dialect != ClickHouseDialect::modern) continue;
      const std::string name = fmt::format("{}", fmt::join(c.key, ","));
      auto expected = input;
      std::stable_sort(expected.begin(), expected.end(), c.less);
      ASSERT_NE(expected, input) << name;
      std::string sorted = "left over";
      ASSERT_EQ(sorter.sort(block, c.key, sorted), Outcome::sorted) << name;
      EXPECT_EQ(first_difference(sorted, testing::every_type_block(spec, dialect, expected)), "") << name;
      EXPECT_EQ(sorted.size(), block.size()) << name;
      std::string again = "untouched";
      EXPECT_EQ(sorter.sort(sorted, c.key, again), Outcome::already_sorted) << name;
      EXPECT_EQ(again, "untouched");
    }
  }
}

// Several bodies (each of one or more blocks), sorted as one: the rows of their merge, in key order,
// with LowCardinality dictionaries united (with array or map columns, merged first).
TEST(NativeSort, SeveralBodiesSortAsTheirMergedBlock) {
  MappingSpec flat = testing::every_type_mapping();
  std::erase_if(flat.columns, [](const auto& c) { return c.type.starts_with("Array") || c.type.starts_with("Map"); });
  const auto input = shuffled(700, 13);
  const std::vector<std::size_t> cuts = {0, 1, 90, 91, 400, 650, 700};
  std::vector<std::string> bodies;
  for (std::size_t k = 0; k + 1 < cuts.size(); ++k) {
    const std::span<const int> part(input.data() + cuts[k], cuts[k + 1] - cuts[k]);
    bodies.push_back(testing::every_type_block(flat, ClickHouseDialect::modern, part));
  }
  bodies[2] += bodies[3];  // a body of two blocks
  bodies.erase(bodies.begin() + 3);
  const std::vector<std::string_view> views(bodies.begin(), bodies.end());
  NativeSorter sorter;
  for (const auto& c : cases()) {
    const std::string name = fmt::format("{}", fmt::join(c.key, ","));
    auto expected = input;
    std::stable_sort(expected.begin(), expected.end(), c.less);
    std::string sorted;
    ASSERT_EQ(sorter.sort(views, c.key, sorted), Outcome::sorted) << name;
    EXPECT_EQ(first_difference(sorted, testing::every_type_block(flat, ClickHouseDialect::modern, expected)), "") << name;
    // Cut again, in order: the bodies one after another are sorted already.
    const std::string first = testing::every_type_block(flat, ClickHouseDialect::modern, std::span(expected).first(300));
    const std::string rest = testing::every_type_block(flat, ClickHouseDialect::modern, std::span(expected).subspan(300));
    const std::vector<std::string_view> in_order = {first, rest};
    EXPECT_EQ(sorter.sort(in_order, c.key, sorted), Outcome::already_sorted) << name;
  }
  const MappingSpec every = testing::every_type_mapping();
  const std::string a = testing::every_type_block(every, ClickHouseDialect::modern, std::span(input).first(100));
  const std::string b = testing::every_type_block(every, ClickHouseDialect::modern, std::span(input).subspan(100));
  const std::vector<std::string_view> with_arrays = {a, b};
  std::string out;
  const std::vector<std::string> key = {"lc", "u8"};
  // Arrays and maps: merged first, then sorted as one block.
  auto expected = input;
  std::stable_sort(expected.begin(), expected.end(),
                   [](int x, int y) { return std::tuple(lc_of(x), x % 256) < std::tuple(lc_of(y), y % 256); });
  ASSERT_EQ(sorter.sort(with_arrays, key, out), Outcome::sorted);
  EXPECT_EQ(first_difference(out, testing::every_type_block(every, ClickHouseDialect::modern, expected)), "");
  const std::string first = testing::every_type_block(every, ClickHouseDialect::modern, std::span(expected).first(100));
  const std::string rest = testing::every_type_block(every, ClickHouseDialect::modern, std::span(expected).subspan(100));
  const std::vector<std::string_view> arrays_in_order = {first, rest};
  ASSERT_EQ(sorter.sort(arrays_in_order, key, out), Outcome::sorted);  // the merge, which is in order
  EXPECT_EQ(first_difference(out, testing::every_type_block(every, ClickHouseDialect::modern, expected)), "");
  const std::vector<std::string_view> different = {a, bodies[0]};
  EXPECT_EQ(sorter.sort(different, key, out), Outcome::unsupported);  // other columns
}

// Floats as the store orders them: -inf first, NaN after +inf whatever its sign bit.
TEST(NativeSort, FloatsOrderAsTheStoreOrdersThem) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> values = {std::copysign(nan, -1.0), 1.0, -inf, -2.5, 0.0, inf, nan, -0.0, 1e-300, -1e300};
  std::string block;
  put_varint(block, 2);
  put_varint(block, values.size());
  put_native_column_header(block, "f", "Float64");
  for (const double v : values) put_native_fixed(block, v);
  put_native_column_header(block, "n", "UInt8");
  for (std::size_t i = 0; i < values.size(); ++i) put_native_fixed(block, static_cast<std::uint8_t>(i));
  NativeSorter sorter;
  std::string sorted;
  const std::vector<std::string> key = {"f"};
  ASSERT_EQ(sorter.sort(block, key, sorted), Outcome::sorted);
  const auto rows = testing::native_rows(sorted);
  std::vector<int> order;
  for (const auto& r : rows) order.push_back(std::stoi(r[1], nullptr, 16));
  // -inf, -1e300, -2.5, -0.0 then 0.0 (equal to the store: either order is sorted), 1e-300, 1, inf,
  // then the two NaNs in their first order.
  EXPECT_EQ(order, (std::vector<int>{2, 9, 3, 7, 4, 8, 1, 5, 0, 6}));
}

TEST(NativeSort, DictionariesOfMoreThan256KeysRankWider) {
  std::string block;
  LowCardinalityKeys keys;
  std::vector<std::uint32_t> numbers;
  for (int i = 999; i >= 0; --i) numbers.push_back(keys.index_of(fmt::format("k{:04}", i * 7 % 1000)));
  put_varint(block, 1);
  put_varint(block, numbers.size());
  put_native_column_header(block, "lc", "LowCardinality(String)");
  keys.append_column(block, numbers);
  NativeSorter sorter;
  std::string sorted;
  const std::vector<std::string> key = {"lc"};
  ASSERT_EQ(sorter.sort(block, key, sorted), Outcome::sorted);
  const auto rows = testing::native_rows(sorted);
  ASSERT_EQ(rows.size(), 1000u);
  for (std::size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i][0], fmt::format("k{:04}", i));
}

TEST(NativeSort, RefusesWhatItCannotSort) {
  const MappingSpec spec = testing::every_type_mapping();
  const auto input = shuffled(50, 3);
  const std::string block = testing::every_type_block(spec, ClickHouseDialect::modern, input);
  NativeSorter sorter;
  std::string out;
  const auto sort_by = [&](std::string_view body, std::vector<std::string> key) { return sorter.sort(body, key, out); };
  EXPECT_EQ(sort_by(block, {"uuid"}), Outcome::unsupported);         // compared as two numbers: not reproduced
  EXPECT_EQ(sort_by(block, {"ip6"}), Outcome::unsupported);
  EXPECT_EQ(sort_by(block, {"as"}), Outcome::unsupported);           // arrays are no key here
  EXPECT_EQ(sort_by(block, {"lc", "missing"}), Outcome::unsupported);
  EXPECT_EQ(sort_by(block, {}), Outcome::unsupported);
  EXPECT_EQ(sort_by(block + block.substr(0, block.size() / 2), {"u8"}), Outcome::unsupported);  // a cut second block
  for (std::size_t cut = 0; cut < block.size(); cut += 41) {
    EXPECT_EQ(sort_by(std::string_view(block).substr(0, cut), {"u8"}), Outcome::unsupported) << "cut at " << cut;
  }
  const std::vector<int> one_row = {4};
  EXPECT_EQ(sort_by(testing::every_type_block(spec, ClickHouseDialect::modern, one_row), {"u8"}),
            Outcome::already_sorted);
}

TEST(NativeSort, HostileBytesAreRefusedNotMisread) {
  const MappingSpec spec = testing::every_type_mapping();
  const std::string block = testing::every_type_block(spec, ClickHouseDialect::modern, shuffled(60, 5));
  std::mt19937 rng(9);
  NativeSorter sorter;
  const std::vector<std::string> key = {"lc", "i64"};
  int refused = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string b = block;
    for (int k = 0; k < 1 + round % 4; ++k) b[rng() % b.size()] = static_cast<char>(rng());
    std::string out;
    if (sorter.sort(b, key, out) == Outcome::unsupported) ++refused;
  }
  EXPECT_GT(refused, 0);  // and no read out of bounds (ASan) nor a hang
}

}  // namespace
}  // namespace sluice
