// Graphite plaintext lines are accepted and refused as carbon does.
#include <gtest/gtest.h>

#include <cmath>

#include "sources/graphite_receiver.hpp"

namespace sluice {
namespace {

constexpr std::int64_t kNow = 1'700'000'000;

TEST(GraphiteLine, PathValueTimestamp) {
  GraphiteLine g;
  GraphiteInvalid why{};
  ASSERT_EQ(parse_graphite_line("servers.web01.cpu.load 1.5 1699999999", kNow, g, why), GraphiteParse::value);
  EXPECT_EQ(g.path, "servers.web01.cpu.load");
  EXPECT_EQ(g.value, 1.5);
  EXPECT_EQ(g.timestamp, 1699999999);
  ASSERT_EQ(parse_graphite_line("  a.b\t-2e3   42\r", kNow, g, why), GraphiteParse::value);
  EXPECT_EQ(g.path, "a.b");
  EXPECT_EQ(g.value, -2000.0);
  EXPECT_EQ(g.timestamp, 42);
  ASSERT_EQ(parse_graphite_line("a.b +7 1699999999.75", kNow, g, why), GraphiteParse::value);
  EXPECT_EQ(g.value, 7.0);
  EXPECT_EQ(g.timestamp, 1699999999);  // carbon reads a float; the fraction is dropped
  ASSERT_EQ(parse_graphite_line("a.b inf 1", kNow, g, why), GraphiteParse::value);
  EXPECT_TRUE(std::isinf(g.value));
  ASSERT_EQ(parse_graphite_line("tagged;env=prod;dc=eu 3 1", kNow, g, why), GraphiteParse::value);
  EXPECT_EQ(g.path, "tagged;env=prod;dc=eu");
}

TEST(GraphiteLine, MinusOneOrNoTimestampMeansNow) {
  GraphiteLine g;
  GraphiteInvalid why{};
  ASSERT_EQ(parse_graphite_line("a.b 1 -1", kNow, g, why), GraphiteParse::value);
  EXPECT_EQ(g.timestamp, kNow);
  ASSERT_EQ(parse_graphite_line("a.b 1", kNow, g, why), GraphiteParse::value);
  EXPECT_EQ(g.timestamp, kNow);
}

TEST(GraphiteLine, InvalidLinesByReason) {
  GraphiteLine g;
  auto reason = [&](std::string_view line) {
    GraphiteInvalid why{};
    EXPECT_EQ(parse_graphite_line(line, kNow, g, why), GraphiteParse::invalid) << line;
    return why;
  };
  EXPECT_EQ(reason("lonely.path"), GraphiteInvalid::field_count);
  EXPECT_EQ(reason("a.b 1 2 3"), GraphiteInvalid::field_count);
  EXPECT_EQ(reason("a.b one 2"), GraphiteInvalid::bad_value);
  EXPECT_EQ(reason("a.b 1x 2"), GraphiteInvalid::bad_value);
  EXPECT_EQ(reason("a.b nan 2"), GraphiteInvalid::nan_value);
  EXPECT_EQ(reason("a.b NaN 2"), GraphiteInvalid::nan_value);
  EXPECT_EQ(reason("a.b 1 yesterday"), GraphiteInvalid::bad_timestamp);
  EXPECT_EQ(reason("a.b 1 1e400"), GraphiteInvalid::bad_timestamp);
  GraphiteInvalid why{};
  EXPECT_EQ(parse_graphite_line("", kNow, g, why), GraphiteParse::empty);
  EXPECT_EQ(parse_graphite_line(" \t\r", kNow, g, why), GraphiteParse::empty);
}

}  // namespace
}  // namespace sluice
