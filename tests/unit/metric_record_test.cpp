// Metric records round-trip exactly, refuse hostile bytes, and carry the spec's series key.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/metric_record.hpp"
#include "decoders/falcon.hpp"
#include "sources/metric_producer.hpp"

namespace sluice {
namespace {

MetricView falcon_view() {
  MetricView m;
  m.origin = MetricOrigin::falcon;
  m.counter_type = MetricCounterType::derive;
  m.step = 60;
  m.timestamp = 1'700'000'000;
  m.value = -12.25;
  m.endpoint = "host1";
  m.metric = "net.if.in.bytes";
  m.tags = "iface=eth0,proto=tcp";
  return m;
}

TEST(MetricRecord, RoundTripKeepsEveryField) {
  const MetricView in = falcon_view();
  std::vector<std::byte> wire;
  ASSERT_TRUE(encode_metric(in, wire));
  ASSERT_EQ(wire.size(), kMetricRecordHeaderSize + 5 + 15 + 20);
  ASSERT_EQ(wire.size(), encoded_metric_size(in));
  const auto out = decode_metric(wire);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->origin, MetricOrigin::falcon);
  EXPECT_EQ(out->counter_type, MetricCounterType::derive);
  EXPECT_EQ(out->step, 60);
  EXPECT_EQ(out->timestamp, 1'700'000'000);
  EXPECT_EQ(out->value, -12.25);
  EXPECT_EQ(out->endpoint, "host1");
  EXPECT_EQ(out->metric, "net.if.in.bytes");
  EXPECT_EQ(out->tags, "iface=eth0,proto=tcp");
}

TEST(MetricRecord, ExactBytesOfVersionOne) {
  MetricView m;
  m.origin = MetricOrigin::graphite;
  m.timestamp = 0x0102030405060708;
  m.value = 1.0;  // 0x3ff0000000000000
  m.step = -2;
  m.metric = "a.b";
  std::vector<std::byte> wire;
  ASSERT_TRUE(encode_metric(m, wire));
  const std::vector<std::uint8_t> expected = {1, 2, 0, 0, 0xff, 0xff, 0xff, 0xfe, 1, 2, 3, 4, 5, 6, 7, 8,
                                              0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 'a', '.', 'b'};
  ASSERT_EQ(wire.size(), expected.size());
  EXPECT_EQ(std::memcmp(wire.data(), expected.data(), expected.size()), 0);
}

TEST(MetricRecord, SpecialDoublesSurviveBitForBit) {
  for (double v : {0.0, -0.0, std::numeric_limits<double>::infinity(), std::numeric_limits<double>::denorm_min(),
                   std::numeric_limits<double>::max(), 1e-300}) {
    MetricView m = falcon_view();
    m.value = v;
    std::vector<std::byte> wire;
    ASSERT_TRUE(encode_metric(m, wire));
    const auto out = decode_metric(wire);
    ASSERT_TRUE(out);
    EXPECT_EQ(std::signbit(out->value), std::signbit(v));
    EXPECT_EQ(out->value, v);
  }
}

TEST(MetricRecord, HostileBytesAreRefused) {
  std::vector<std::byte> good;
  ASSERT_TRUE(encode_metric(falcon_view(), good));
  // Every truncation and every extension is refused.
  for (std::size_t n = 0; n < good.size(); ++n) EXPECT_FALSE(decode_metric(std::span(good).first(n))) << n;
  auto longer = good;
  longer.push_back(std::byte{0});
  EXPECT_FALSE(decode_metric(longer));
  auto with = [&](std::size_t at, std::uint8_t v) {
    auto b = good;
    b[at] = std::byte{v};
    return decode_metric(b).has_value();
  };
  EXPECT_FALSE(with(0, 2));     // version
  EXPECT_FALSE(with(0, 0));
  EXPECT_FALSE(with(1, 0));     // origin
  EXPECT_FALSE(with(1, 3));
  EXPECT_FALSE(with(2, 3));     // counter type
  EXPECT_FALSE(with(3, 1));     // reserved
  EXPECT_FALSE(with(24, 0xff)); // endpoint length past the end
  EXPECT_FALSE(with(29, 0));    // tags length short of the end
  // Random bytes never crash and, when accepted, stay inside the buffer.
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::byte> b(rng() % 64);
    for (auto& x : b) x = std::byte(static_cast<std::uint8_t>(rng()));
    if (rng() % 2 && b.size() >= 4) {
      b[0] = std::byte{1};
      b[1] = std::byte{1};
      b[2] = std::byte{0};
      b[3] = std::byte{0};
    }
    if (const auto m = decode_metric(b)) {
      EXPECT_EQ(kMetricRecordHeaderSize + m->endpoint.size() + m->metric.size() + m->tags.size(), b.size());
    }
  }
}

TEST(MetricRecord, OversizedStringsAreNotEncoded) {
  const std::string huge(kMetricFieldMax + 1, 'x');
  MetricView m = falcon_view();
  m.endpoint = huge;
  std::vector<std::byte> wire(3);
  EXPECT_FALSE(encode_metric(m, wire));
  EXPECT_EQ(wire.size(), 3u);
  m.endpoint = std::string_view(huge).substr(1);
  EXPECT_TRUE(encode_metric(m, wire));
}

TEST(MetricRecord, SeriesKeyIsOpenFalconsPrimaryKey) {
  MetricView m = falcon_view();
  EXPECT_EQ(m.series_key(), "host1/net.if.in.bytes/iface=eth0,proto=tcp");
  m.tags = {};
  EXPECT_EQ(m.series_key(), "host1/net.if.in.bytes");
  MetricView g;
  g.origin = MetricOrigin::graphite;
  g.metric = "servers.web01.cpu.load";
  EXPECT_EQ(g.series_key(), "servers.web01.cpu.load");
}

// The spec: tags "k1=v1,k2=v2" are parsed into a map and written sorted by key, "k=v" joined by ",".
TEST(MetricRecord, SortedTagsFromFalconValuesFollowTheSpec) {
  auto tags_of = [](std::string_view text) {
    falcon::MetricValue v;
    EXPECT_TRUE(falcon::parse_tags(text, v));
    std::string out;
    sorted_tags(v, out);
    return out;
  };
  EXPECT_EQ(tags_of("b=2, a = 1"), "a=1,b=2");
  EXPECT_EQ(tags_of(""), "");
  EXPECT_EQ(tags_of("novalue"), "");  // no '=': no tag, so the key has no trailing '/'
  EXPECT_EQ(tags_of("z=1,y=2,x=3,module=nginx"), "module=nginx,x=3,y=2,z=1");
  EXPECT_EQ(tags_of("a=1,b=2,a=3"), "a=3,b=2");  // a repeated key keeps its last value, as Go's map does
  EXPECT_EQ(tags_of("k=a=b"), "k=a=b");          // split on the first '='

  falcon::MetricValue v;
  falcon::Invalid why{};
  ASSERT_TRUE(falcon::validate("host1", "cpu.idle", "1", "b=2,a=1", "GAUGE", 60, 5, 1'700'000'000, v, why));
  std::string tags;
  sorted_tags(v, tags);
  MetricView m;
  m.endpoint = v.endpoint;
  m.metric = v.metric;
  m.tags = tags;
  EXPECT_EQ(m.series_key(), "host1/cpu.idle/a=1,b=2");
}

}  // namespace
}  // namespace sluice
