// Open-Falcon values are accepted and refused exactly as specs/open-falcon-transfer.md says.
#include <gtest/gtest.h>

#include <vector>

#include "decoders/falcon.hpp"

namespace sluice::falcon {
namespace {

constexpr std::int64_t kNow = 1'700'000'000;

struct Parsed {
  std::string endpoint, metric;
  std::vector<std::pair<std::string, std::string>> tags;
  double value;
  std::int64_t timestamp;
  std::int32_t step;
  CounterType type;
};

ParseCounts parse(const std::string& body, std::vector<Parsed>& out) {
  ParseCounts counts;
  std::string error;
  EXPECT_TRUE(parse_json_values(body, kNow, [&](const MetricValue& v) {
    Parsed p{std::string(v.endpoint), std::string(v.metric), {}, v.value, v.timestamp, v.step, v.counter_type};
    for (std::size_t i = 0; i < v.tag_count; ++i) p.tags.emplace_back(v.tags[i].key, v.tags[i].value);
    out.push_back(std::move(p));
  }, counts, &error)) << error;
  return counts;
}

TEST(FalconValues, ValidValuesAreDecodedCompletely) {
  std::vector<Parsed> got;
  const auto counts = parse(R"([
    {"endpoint":"host1","metric":"cpu.idle","value":12.5,"step":60,"counterType":"GAUGE","tags":"b=2, a = 1","timestamp":1699999990},
    {"endpoint":"host2","metric":"net.if.in.bytes","value":"1e3","step":30,"counterType":"COUNTER","tags":"","timestamp":0},
    {"endpoint":"host3","metric":"disk.io","value":7,"step":10,"counterType":"DERIVE","timestamp":5000000000}
  ])", got);
  EXPECT_EQ(counts.total, 3u);
  EXPECT_EQ(counts.valid, 3u);
  EXPECT_EQ(counts.invalid_total(), 0u);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].endpoint, "host1");
  EXPECT_EQ(got[0].metric, "cpu.idle");
  EXPECT_DOUBLE_EQ(got[0].value, 12.5);
  EXPECT_EQ(got[0].timestamp, 1699999990);
  EXPECT_EQ(got[0].step, 60);
  EXPECT_EQ(got[0].type, CounterType::gauge);
  EXPECT_EQ(got[0].tags, (std::vector<std::pair<std::string, std::string>>{{"a", "1"}, {"b", "2"}}));
  EXPECT_DOUBLE_EQ(got[1].value, 1000.0);                 // a numeric string
  EXPECT_EQ(got[1].timestamp, kNow);                      // <= 0 → now
  EXPECT_EQ(got[1].type, CounterType::counter);
  EXPECT_EQ(got[2].timestamp, kNow);                      // > 2 × now → now
  EXPECT_EQ(got[2].type, CounterType::derive);
}

TEST(FalconValues, EveryInvalidCaseIsCountedByReason) {
  const std::string long_metric(505, 'm');
  std::vector<Parsed> got;
  const auto counts = parse(R"([
    null,
    42,
    {"endpoint":"h","metric":"kernel.hostname","value":1,"step":60,"counterType":"GAUGE"},
    {"endpoint":"h","metric":"","value":1,"step":60,"counterType":"GAUGE"},
    {"endpoint":"","metric":"m","value":1,"step":60,"counterType":"GAUGE"},
    {"metric":"m","value":1,"step":60,"counterType":"GAUGE"},
    {"endpoint":"h","metric":"m","value":1,"step":60,"counterType":"gauge"},
    {"endpoint":"h","metric":"m","value":1,"step":60},
    {"endpoint":"h","metric":"m","value":"","step":60,"counterType":"GAUGE"},
    {"endpoint":"h","metric":"m","step":60,"counterType":"GAUGE"},
    {"endpoint":"h","metric":"m","value":1,"step":0,"counterType":"GAUGE"},
    {"endpoint":"h","metric":"m","value":1,"step":-5,"counterType":"GAUGE"},
    {"endpoint":"h","metric":"m","value":1,"counterType":"GAUGE"},
    {"endpoint":"h","metric":")" + long_metric + R"(","value":1,"step":60,"counterType":"GAUGE","tags":"abcdef"},
    {"endpoint":"h","metric":"m","value":"twelve","step":60,"counterType":"GAUGE"},
    {"endpoint":"h","metric":"m","value":true,"step":60,"counterType":"GAUGE"},
    {"endpoint":"h","metric":"ok","value":"3","step":60,"counterType":"GAUGE"}
  ])", got);
  EXPECT_EQ(counts.total, 17u);
  EXPECT_EQ(counts.valid, 1u);
  auto n = [&](Invalid r) { return counts.invalid[static_cast<std::size_t>(r)]; };
  EXPECT_EQ(n(Invalid::nil_entry), 1u);
  EXPECT_EQ(n(Invalid::not_an_object), 1u);
  EXPECT_EQ(n(Invalid::hostname_metric), 1u);
  EXPECT_EQ(n(Invalid::empty_metric), 1u);
  EXPECT_EQ(n(Invalid::empty_endpoint), 2u);
  EXPECT_EQ(n(Invalid::bad_counter_type), 2u);
  EXPECT_EQ(n(Invalid::empty_value), 2u);
  EXPECT_EQ(n(Invalid::bad_step), 3u);
  EXPECT_EQ(n(Invalid::too_long), 1u);
  EXPECT_EQ(n(Invalid::bad_value), 2u);
  EXPECT_EQ(counts.invalid_total(), 16u);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].metric, "ok");
}

TEST(FalconValues, ExactlyFiveHundredTenCharactersIsStillValid) {
  std::vector<Parsed> got;
  const std::string metric(505, 'm');  // + "a=1,b" (5) = 510
  const auto counts = parse(R"([{"endpoint":"h","metric":")" + metric + R"(","value":1,"step":60,"counterType":"GAUGE","tags":"a=1,b"}])", got);
  EXPECT_EQ(counts.valid, 1u);
}

TEST(FalconValues, ABodyThatIsNotAnArrayIsRefusedWhole) {
  ParseCounts counts;
  std::string error;
  EXPECT_FALSE(parse_json_values(R"({"endpoint":"h"})", kNow, [](const MetricValue&) {}, counts, &error));
  EXPECT_FALSE(parse_json_values("not json", kNow, [](const MetricValue&) {}, counts, &error));
  EXPECT_NE(error.find("JSON array"), std::string::npos);
}

TEST(FalconValues, MalformedJsonMidArrayRefusesTheWholeBodyLikeOpenFalcon) {
  ParseCounts counts;
  std::string error;
  int delivered = 0;
  EXPECT_FALSE(parse_json_values(R"([{"endpoint":"h","metric":"ok","value":1,"step":60,"counterType":"GAUGE"}, {"endpoint": ])",
                                 kNow, [&](const MetricValue&) { ++delivered; }, counts, &error));
  EXPECT_EQ(delivered, 0);
  EXPECT_EQ(counts.total, 0u);
  EXPECT_FALSE(error.empty());
}

TEST(FalconLines, UpdateLinesWithDefaultsAndHeartbeatSteps) {
  MetricValue v;
  Invalid why{};
  ASSERT_EQ(parse_line("update host1 cpu.idle 1699999000 42.5", kNow, v, why), LineKind::value);
  EXPECT_EQ(v.endpoint, "host1");
  EXPECT_EQ(v.metric, "cpu.idle");
  EXPECT_EQ(v.timestamp, 1699999000);
  EXPECT_DOUBLE_EQ(v.value, 42.5);
  EXPECT_EQ(v.counter_type, CounterType::counter);  // default COUNTER
  EXPECT_EQ(v.step, 60);                            // default 60
  ASSERT_EQ(parse_line("update host1 load 0 1 GAUGE 30\r", kNow, v, why), LineKind::value);
  EXPECT_EQ(v.counter_type, CounterType::gauge);
  EXPECT_EQ(v.step, 30);
  EXPECT_EQ(v.timestamp, kNow);
  ASSERT_EQ(parse_line("update host1 load 1699999000 1 DERIVE 120:0:U:20", kNow, v, why), LineKind::value);
  EXPECT_EQ(v.step, 20);
  EXPECT_EQ(parse_line("quit", kNow, v, why), LineKind::quit);
  EXPECT_EQ(parse_line("get host1 load", kNow, v, why), LineKind::unknown_command);
  EXPECT_EQ(parse_line("update host1 load 1699999000", kNow, v, why), LineKind::invalid);
  EXPECT_EQ(parse_line("update host1 load 1699999000 x", kNow, v, why), LineKind::invalid);
  EXPECT_EQ(why, Invalid::bad_value);
  EXPECT_EQ(parse_line("update host1 load 1699999000 1 BOGUS", kNow, v, why), LineKind::invalid);
  EXPECT_EQ(why, Invalid::bad_counter_type);
}

}  // namespace
}  // namespace sluice::falcon
