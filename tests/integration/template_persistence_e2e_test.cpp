// End to end through the real binary: NetFlow v9 templates survive an outlet restart (data directory)
// and reach a new outlet through Kafka (compacted topic), so data without its template decodes at
// once; sFlow counter samples are counted in /metrics and VXLAN decoding follows outlet.flows.sflow.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "decoders/template_cache.hpp"
#include "fixtures/mock_kafka.hpp"
#include "fixtures/process.hpp"
#include "fixtures/sluice_instance.hpp"
#include "unit/flow_packet_builder.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

std::string config_text(const char* name) { return read_file(std::string(SLUICE_SOURCE_DIR) + "/config/" + name); }

void send_udp(int port, const std::vector<std::uint8_t>& bytes) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
            static_cast<ssize_t>(bytes.size()));
  close(fd);
}

// v9 flow i: 10.0.x.y → 10.1.0.1, TCP i+1000 → 443, 1000 + i bytes, 1 + i % 5 packets.
std::uint64_t bytes_of(std::uint32_t i) { return 1000 + i; }
std::uint64_t packets_of(std::uint32_t i) { return 1 + i % 5; }

// A v9 datagram from source id 7: when `with_templates`, template 256 and an options template whose
// data sets a sampling interval of 64 come first; then flows [first, first + n) with template 256.
std::vector<std::uint8_t> v9_datagram(bool with_templates, std::uint32_t first, std::uint32_t n) {
  const auto now = static_cast<std::uint32_t>(std::time(nullptr));
  PacketBuilder p;
  p.v9_header(3'600'000, now, 7);
  if (with_templates) {
    p.begin_set(0).v9_template(256, {{8, 4}, {12, 4}, {1, 4}, {2, 4}, {7, 2}, {11, 2}, {4, 1}}).end_set();
    p.begin_set(1).u16(257).u16(4).u16(4).u16(1).u16(4).u16(34).u16(4).end_set();
    p.begin_set(257).u32(0).u32(64).end_set();
  }
  p.begin_set(256);
  for (std::uint32_t i = first; i < first + n; ++i) {
    p.u32(0x0a000000 + i).u32(0x0a010001).u32(bytes_of(i)).u32(packets_of(i)).u16(1000 + i).u16(443).u8(6);
  }
  p.end_set();
  return p.bytes();
}

// "count  distinct sources  bytes  packets  min rate  max rate" for flows [first, first + n).
std::string expected(std::uint32_t first, std::uint32_t n) {
  std::uint64_t bytes = 0, packets = 0;
  for (std::uint32_t i = first; i < first + n; ++i) bytes += bytes_of(i), packets += packets_of(i);
  return std::to_string(n) + "\t" + std::to_string(n) + "\t" + std::to_string(bytes) + "\t" + std::to_string(packets) +
         "\t64\t64\n";
}

const char* kTotals = "SELECT count(), uniqExact(SrcAddr), sum(Bytes), sum(Packets), min(SamplingRate), "
                      "max(SamplingRate) FROM sluice.flows";

TEST(TemplatePersistenceE2E, RestartedRunDecodesDataWithoutItsTemplateAtOnce) {
  TempDir dir("sluice-e2e-templates");
  const int port = free_udp_port();
  const std::map<std::string, std::string> env{{"SLUICE_DATA_DIR", dir / "data"},
                                               {"SLUICE_NETFLOW_LISTEN", "127.0.0.1:" + std::to_string(port)},
                                               {"SLUICE_SFLOW_LISTEN", "127.0.0.1:" + std::to_string(free_udp_port())}};
  {
    SluiceInstance first("run", config_text("quickstart.yaml"), dir, env, "first");
    first.start();
    send_udp(port, v9_datagram(true, 0, 10));
    ASSERT_TRUE(eventually([&] { return first.query_u64("SELECT count() FROM sluice.flows") >= 10; }, 60s))
        << first.log();
    EXPECT_EQ(first.query(kTotals), expected(0, 10));
    EXPECT_EQ(first.stop(), 0) << first.log();
  }
  // Saved in the data directory at the latest on stop.
  ASSERT_TRUE(std::filesystem::exists(dir / "data/flows/" + TemplateCache::kFileName));

  SluiceInstance second("run", config_text("quickstart.yaml"), dir, env, "second");
  second.start();
  // Data only: the exporter has not resent its templates since the restart.
  send_udp(port, v9_datagram(false, 10, 10));
  send_udp(port, v9_datagram(false, 20, 10));
  ASSERT_TRUE(eventually([&] { return second.query_u64("SELECT count() FROM sluice.flows") >= 30; }, 60s))
      << second.log();
  EXPECT_EQ(second.query(kTotals), expected(0, 30));
  EXPECT_EQ(second.metric("sluice_flow_template_pending_sets_total"), 0.0) << "nothing waited for a template";
  EXPECT_EQ(second.metric("sluice_decode_errors_total"), 0.0);
  EXPECT_EQ(second.metric("sluice_flows_decoded_total"), 20.0);
  EXPECT_EQ(second.metric("sluice_flow_template_save_errors_total"), 0.0);
  EXPECT_EQ(second.stop(), 0) << second.log();
}

// The shipped outlet.yaml with embedded chDB (each outlet its own, in its data directory).
std::string chdb_outlet_yaml() {
  auto y = config_text("outlet.yaml");
  const auto from = y.find("  clickhouse:");
  const auto to = y.find("  sink:");
  y.replace(from, to - from, "  chdb:\n    path: ${SLUICE_DATA_DIR}/chdb\n");
  return y;
}

TEST(TemplatePersistenceE2E, NewOutletLearnsTemplatesFromKafkaAndDecodesAtOnce) {
  TempDir dir("sluice-e2e-templates-kafka");
  MockKafka kafka(3, {{"sluice-flows", 8}, {"sluice-flow-templates", 1}, {"sluice-metrics", 8}});
  const int port = free_udp_port();
  const auto env = [&](const std::string& data) {
    return std::map<std::string, std::string>{{"SLUICE_KAFKA_BROKERS", kafka.bootstrap()},
                                              {"SLUICE_DATA_DIR", dir / data},
                                              {"SLUICE_NETFLOW_LISTEN", "127.0.0.1:" + std::to_string(port)},
                                              {"SLUICE_SFLOW_LISTEN", "127.0.0.1:" + std::to_string(free_udp_port())}};
  };
  SluiceInstance inlet("inlet", config_text("inlet.yaml"), dir, env("inlet"), "inlet");
  inlet.start();
  {
    SluiceInstance a("outlet", chdb_outlet_yaml(), dir, env("a"), "outlet-a");
    a.start();
    send_udp(port, v9_datagram(true, 0, 10));
    ASSERT_TRUE(eventually([&] { return a.query_u64("SELECT count() FROM sluice.flows") >= 10; }, 90s)) << a.log();
    EXPECT_EQ(a.query(kTotals), expected(0, 10));
    // Template 256, options template 257, the domain's and the exporter's sampling rate.
    EXPECT_TRUE(eventually([&] { return a.metric("sluice_flow_template_topic_published_total") == 4.0; }, 30s))
        << a.log();
    EXPECT_EQ(a.stop(), 0) << a.log();
  }
  // B has a fresh data directory: all it knows comes from the topic.
  SluiceInstance b("outlet", chdb_outlet_yaml(), dir, env("b"), "outlet-b");
  b.start();
  EXPECT_EQ(b.metric("sluice_flow_templates"), 2.0) << "read from the topic before consuming flows";
  send_udp(port, v9_datagram(false, 10, 10));
  send_udp(port, v9_datagram(false, 20, 5));
  ASSERT_TRUE(eventually([&] { return b.query_u64("SELECT count() FROM sluice.flows") >= 15; }, 90s)) << b.log();
  EXPECT_EQ(b.query(kTotals), expected(10, 15));
  EXPECT_EQ(b.metric("sluice_flow_template_pending_sets_total"), 0.0) << "nothing waited for a template";
  EXPECT_EQ(b.metric("sluice_decode_errors_total"), 0.0);
  EXPECT_EQ(b.metric("sluice_flow_template_topic_malformed_total"), 0.0);
  EXPECT_EQ(b.metric("sluice_flow_template_topic_published_total"), 0.0) << "B learned nothing new";
  EXPECT_EQ(b.stop(), 0) << b.log();
  EXPECT_EQ(inlet.stop(), 0);
}

// sFlow v5 from agent 192.0.2.50: a counter sample, an expanded counter sample, and a flow sample whose
// raw header is TCP 10.9.0.1:1234 → 10.9.0.2:80 inside VXLAN (UDP to `vxlan_port`) between 192.0.2.100
// and 192.0.2.200.
std::vector<std::uint8_t> sflow_datagram(std::uint16_t vxlan_port) {
  PacketBuilder frame;
  const auto ethernet = [&] { frame.u48(0x020000000002).u48(0x020000000001).u16(0x0800); };
  const auto ipv4 = [&](std::uint8_t proto, std::uint32_t src, std::uint32_t dst, std::uint16_t length) {
    frame.u8(0x45).u8(0).u16(length).u16(1).u16(0).u8(64).u8(proto).u16(0).u32(src).u32(dst);
  };
  ethernet();
  ipv4(17, 0xc0000264, 0xc00002c8, 20 + 8 + 8 + 14 + 20 + 20);
  frame.u16(50000).u16(vxlan_port).u16(8 + 8 + 14 + 20 + 20).u16(0);
  frame.u8(0x08).u24(0).u24(4242).u8(0);  // VXLAN, VNI 4242
  ethernet();
  ipv4(6, 0x0a090001, 0x0a090002, 40);
  frame.u16(1234).u16(80).u32(1).u32(0).u8(0x50).u8(0x02).u16(65535).u32(0);
  const auto header = frame.bytes();

  PacketBuilder p;
  p.u32(5).u32(1).u32(0xc0000232).u32(0).u32(1).u32(86'400'000).u32(3);
  // Counter sample (format 2): one generic interface counters record (format 1, 88 bytes).
  p.u32(2).u32(12 + 8 + 88).u32(1).u32(3).u32(1).u32(1).u32(88).zeros(88);
  // Expanded counter sample (format 4): the same record.
  p.u32(4).u32(16 + 8 + 88).u32(2).u32(0).u32(3).u32(1).u32(1).u32(88).zeros(88);
  // Flow sample (format 1) with a raw packet header record (format 1).
  const auto padded = (header.size() + 3) / 4 * 4;
  const auto record_length = 16 + padded;
  p.u32(1).u32(32 + 8 + record_length).u32(9).u32(3).u32(100).u32(1000).u32(0).u32(1).u32(2).u32(1);
  p.u32(1).u32(record_length).u32(1).u32(1500).u32(4).u32(header.size());
  for (auto b : header) p.u8(b);
  p.zeros(padded - header.size());
  return p.bytes();
}

TEST(TemplatePersistenceE2E, SflowCounterSamplesAreCountedAndVxlanFollowsTheConfig) {
  TempDir dir("sluice-e2e-sflow-counters");
  const int sflow_port = free_udp_port();
  auto yaml = config_text("quickstart.yaml");
  const auto at = yaml.find("  flows:\n");
  ASSERT_NE(at, std::string::npos);
  yaml.insert(at + 9, "    sflow:\n      decode_vxlan: true\n      vxlan_port: 8472\n");
  SluiceInstance sluice("run", yaml, dir,
                        {{"SLUICE_DATA_DIR", dir / "data"},
                         {"SLUICE_NETFLOW_LISTEN", "127.0.0.1:" + std::to_string(free_udp_port())},
                         {"SLUICE_SFLOW_LISTEN", "127.0.0.1:" + std::to_string(sflow_port)}});
  sluice.start();
  send_udp(sflow_port, sflow_datagram(8472));  // decoded inside the tunnel
  send_udp(sflow_port, sflow_datagram(4789));  // not the configured port: the tunnel itself is the flow
  ASSERT_TRUE(eventually([&] { return sluice.query_u64("SELECT count() FROM sluice.flows") >= 2; }, 60s)) << sluice.log();
  const auto metrics = sluice.metrics_text();
  EXPECT_NE(metrics.find("sluice_sflow_samples_total{type=\"counter\"} 4"), std::string::npos) << metrics;
  EXPECT_EQ(sluice.metric("sluice_sflow_samples_total", "type=\"counter\""), 4.0);
  EXPECT_EQ(sluice.metric("sluice_sflow_samples_total", "type=\"flow\""), 2.0);
  EXPECT_EQ(sluice.metric("sluice_sflow_samples_total", "type=\"skipped\""), 0.0);
  EXPECT_EQ(sluice.metric("sluice_decode_errors_total"), 0.0);
  EXPECT_EQ(sluice.query("SELECT SrcAddr, DstAddr, Proto, SrcPort, DstPort, SamplingRate FROM sluice.flows ORDER BY DstPort"),
            "::ffff:10.9.0.1\t::ffff:10.9.0.2\t6\t1234\t80\t100\n"
            "::ffff:192.0.2.100\t::ffff:192.0.2.200\t17\t50000\t4789\t100\n");
  EXPECT_EQ(sluice.stop(), 0) << sluice.log();
}

}  // namespace
}  // namespace sluice::testing
