// FlowTail: JSON lines with Akvorado column names, exporter filter, limits, drops for slow readers.
#include "admin/flow_tail.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <vector>

#include "core/envelope.hpp"
#include "core/metrics.hpp"

namespace sluice::admin {
namespace {

using namespace std::chrono_literals;

Ip6 v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return ip6_from_v4((std::uint32_t{a} << 24) | (std::uint32_t{b} << 16) | (std::uint32_t{c} << 8) | d);
}

FlowRecord numbered_flow(const Ip6& exporter, std::uint16_t n) {
  FlowRecord f;
  f.exporter_address = exporter;
  f.time_received = 1700000000 + n;
  f.src_port = n;
  f.bytes = 1000ULL * n;
  f.packets = n;
  return f;
}

TEST(FlowTail, ActiveOnlyWhileSomeoneListens) {
  MetricsRegistry metrics;
  FlowTail tail(metrics);
  EXPECT_FALSE(tail.active());
  {
    auto sub = tail.subscribe(5);
    EXPECT_TRUE(tail.active());
    auto moved = std::move(sub);
    EXPECT_TRUE(tail.active());
  }
  EXPECT_FALSE(tail.active());
  // Publishing with nobody listening queues nothing and counts nothing.
  tail.publish(numbered_flow(v4(192, 0, 2, 1), 1));
  EXPECT_EQ(metrics.counter_total("flow_tail_queued_total"), 0u);
}

TEST(FlowTail, FormatsEveryColumnWithAkvoradoNames) {
  MetricsRegistry metrics;
  FlowTail tail(metrics);
  auto sub = tail.subscribe(1);

  Ip6 dst6{};
  dst6[0] = 0x20;
  dst6[1] = 0x01;
  dst6[2] = 0x0d;
  dst6[3] = 0xb8;
  dst6[15] = 0x01;
  FlowRecord f;
  f.time_received = 1700000123;
  f.time_flow_start = 1700000100;
  f.time_flow_end = 1700000120;
  f.sampling_rate = 1024;
  f.exporter_address = v4(192, 0, 2, 1);
  f.exporter_name = "edge\"1\n";
  f.src_addr = v4(10, 0, 0, 1);
  f.dst_addr = dst6;
  f.next_hop = v4(10, 0, 0, 254);
  f.src_net_mask = 24;
  f.dst_net_mask = 48;
  f.src_as = 64500;
  f.dst_as = 4200000000;
  f.src_country[0] = 'F';
  f.src_country[1] = 'R';
  f.in_if = 10;
  f.out_if = 20;
  f.in_if_name = "xe-0/0/0";
  f.out_if_name = "xe-0/0/1";
  f.in_if_speed = 10000;
  f.in_if_boundary = Boundary::external;
  f.etype = 0x86dd;
  f.proto = 6;
  f.src_port = 443;
  f.dst_port = 51234;
  f.bytes = 1500000;
  f.packets = 1000;
  f.flow_direction = FlowDirection::ingress;
  f.tcp_flags = 0x12;
  f.ip_tos = 0xb8;
  f.src_mac = 0x0011223344ffULL;
  tail.publish(f);

  auto line = sub.next(1s);
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ(line->find('\n'), std::string::npos);  // the newline in the name is escaped
  const auto j = nlohmann::json::parse(*line);
  EXPECT_EQ(j["TimeReceived"], 1700000123);
  EXPECT_EQ(j["TimeFlowStart"], 1700000100);
  EXPECT_EQ(j["TimeFlowEnd"], 1700000120);
  EXPECT_EQ(j["SamplingRate"], 1024);
  EXPECT_EQ(j["ExporterAddress"], "192.0.2.1");
  EXPECT_EQ(j["ExporterName"], "edge\"1\n");
  EXPECT_EQ(j["SrcAddr"], "10.0.0.1");
  EXPECT_EQ(j["DstAddr"], "2001:db8::1");
  EXPECT_EQ(j["NextHop"], "10.0.0.254");
  EXPECT_EQ(j["SrcNetMask"], 24);
  EXPECT_EQ(j["DstNetMask"], 48);
  EXPECT_EQ(j["SrcAS"], 64500);
  EXPECT_EQ(j["DstAS"], 4200000000u);
  EXPECT_EQ(j["SrcCountry"], "FR");
  EXPECT_EQ(j["DstCountry"], "");
  EXPECT_EQ(j["InIf"], 10);
  EXPECT_EQ(j["OutIf"], 20);
  EXPECT_EQ(j["InIfName"], "xe-0/0/0");
  EXPECT_EQ(j["OutIfName"], "xe-0/0/1");
  EXPECT_EQ(j["InIfSpeed"], 10000);
  EXPECT_EQ(j["InIfBoundary"], "external");
  EXPECT_EQ(j["OutIfBoundary"], "undefined");
  EXPECT_EQ(j["EType"], 0x86dd);
  EXPECT_EQ(j["Proto"], 6);
  EXPECT_EQ(j["SrcPort"], 443);
  EXPECT_EQ(j["DstPort"], 51234);
  EXPECT_EQ(j["Bytes"], 1500000);
  EXPECT_EQ(j["Packets"], 1000);
  EXPECT_EQ(j["FlowDirection"], "ingress");
  EXPECT_EQ(j["TCPFlags"], 0x12);
  EXPECT_EQ(j["IPTos"], 0xb8);
  EXPECT_EQ(j["SrcMAC"], "00:11:22:33:44:ff");
  EXPECT_EQ(j["ICMPv4Type"], 0);
  EXPECT_EQ(j["ExporterGroup"], "");
}

TEST(FlowTail, ExporterFilterKeepsOnlyThatExporter) {
  MetricsRegistry metrics;
  FlowTail tail(metrics);
  const Ip6 a = v4(192, 0, 2, 1), b = v4(192, 0, 2, 2);
  auto only_a = tail.subscribe(3, a);
  auto all = tail.subscribe(100);
  for (std::uint16_t n = 1; n <= 6; ++n) tail.publish(numbered_flow(n % 2 ? a : b, n));

  std::vector<int> ports_a, ports_all;
  while (auto line = only_a.next(0ms)) {
    const auto j = nlohmann::json::parse(*line);
    EXPECT_EQ(j["ExporterAddress"], "192.0.2.1");
    ports_a.push_back(j["SrcPort"].get<int>());
  }
  while (auto line = all.next(0ms)) ports_all.push_back(nlohmann::json::parse(*line)["SrcPort"].get<int>());
  EXPECT_EQ(ports_a, (std::vector<int>{1, 3, 5}));
  EXPECT_EQ(ports_all, (std::vector<int>{1, 2, 3, 4, 5, 6}));
}

TEST(FlowTail, ReachingTheLimitRetiresTheSubscription) {
  MetricsRegistry metrics;
  FlowTail tail(metrics);
  auto sub = tail.subscribe(3);
  for (std::uint16_t n = 1; n <= 5; ++n) tail.publish(numbered_flow(v4(192, 0, 2, 1), n));
  // Three accepted: nothing more is formatted for it, so the hot path goes quiet again.
  EXPECT_FALSE(tail.active());
  EXPECT_EQ(metrics.counter_total("flow_tail_queued_total"), 3u);
  EXPECT_FALSE(sub.finished());
  for (int n = 1; n <= 3; ++n) {
    auto line = sub.next(1s);
    ASSERT_TRUE(line.has_value());
    EXPECT_EQ(nlohmann::json::parse(*line)["SrcPort"], n);
  }
  EXPECT_TRUE(sub.finished());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(sub.next(5s).has_value());  // finished: returns at once rather than waiting
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_EQ(sub.delivered(), 3u);
}

TEST(FlowTail, SlowReaderDropsAreCountedAndPublishNeverBlocks) {
  MetricsRegistry metrics;
  FlowTail tail(metrics);
  auto sub = tail.subscribe(1000, std::nullopt, 4);
  // Publish from another thread so that a blocking publish would fail the test instead of hanging it.
  auto done = std::async(std::launch::async, [&] {
    for (std::uint16_t n = 0; n < 100; ++n) tail.publish(numbered_flow(v4(192, 0, 2, 1), n));
  });
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(sub.dropped(), 96u);
  EXPECT_EQ(metrics.counter_total("flow_tail_dropped_total"), 96u);
  EXPECT_EQ(metrics.counter_total("flow_tail_queued_total"), 4u);
  for (int n = 0; n < 4; ++n) {
    auto line = sub.next(1s);
    ASSERT_TRUE(line.has_value());
    EXPECT_EQ(nlohmann::json::parse(*line)["SrcPort"], n);  // the oldest are kept, later ones dropped
  }
  EXPECT_FALSE(sub.next(0ms).has_value());
  // Room again: the next flow is queued.
  tail.publish(numbered_flow(v4(192, 0, 2, 1), 500));
  auto line = sub.next(1s);
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ(nlohmann::json::parse(*line)["SrcPort"], 500);
  EXPECT_EQ(sub.dropped(), 96u);
}

TEST(FlowTail, CloseWakesABlockedReader) {
  MetricsRegistry metrics;
  FlowTail tail(metrics);
  auto sub = tail.subscribe(10);
  auto reader = std::async(std::launch::async, [&] { return sub.next(30s); });
  ASSERT_TRUE(tail.active());
  sub.close();
  ASSERT_EQ(reader.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(reader.get().has_value());
  EXPECT_TRUE(sub.finished());
  EXPECT_FALSE(tail.active());
}

TEST(FlowTail, ConcurrentPublishersLoseNothingButCountedDrops) {
  MetricsRegistry metrics;
  FlowTail tail(metrics);
  constexpr int kThreads = 4, kPerThread = 2000;
  auto sub = tail.subscribe(kThreads * kPerThread, std::nullopt, 256);
  std::set<std::uint64_t> seen;
  std::atomic<bool> publishing{true};
  std::thread reader([&] {
    while (true) {
      // Read the flag first: once publishers are done, an empty queue means everything was read.
      const bool still_publishing = publishing.load();
      auto line = sub.next(20ms);
      if (line) {
        const auto j = nlohmann::json::parse(*line);
        EXPECT_TRUE(seen.insert(j["Bytes"].get<std::uint64_t>()).second) << "duplicate " << *line;
      } else if (!still_publishing) {
        break;
      }
    }
  });
  std::vector<std::thread> publishers;
  for (int t = 0; t < kThreads; ++t) {
    publishers.emplace_back([&, t] {
      for (int n = 0; n < kPerThread; ++n) {
        FlowRecord f = numbered_flow(v4(192, 0, 2, 1), static_cast<std::uint16_t>(n));
        f.bytes = static_cast<std::uint64_t>(t) * kPerThread + n;  // unique id across threads
        tail.publish(f);
      }
    });
  }
  for (auto& p : publishers) p.join();
  publishing = false;
  reader.join();
  EXPECT_EQ(seen.size() + sub.dropped(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(sub.delivered(), seen.size());
}

}  // namespace
}  // namespace sluice::admin
