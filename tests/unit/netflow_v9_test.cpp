// NetFlow v9 decoder: hand-built datagrams per RFC 3954, decoded field by field.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/metrics.hpp"
#include "decoders/netflow.hpp"
#include "decoders/netflow_v9.hpp"
#include "flow_packet_builder.hpp"

namespace sluice {
namespace {

using testing::CollectFlows;
using testing::envelope_of;
using testing::PacketBuilder;

constexpr std::uint32_t kUptime = 3'600'000;  // one hour after boot
constexpr std::uint32_t kSecs = 1'700'000'000;

// softflowd's IPv4 layout plus the optional columns a router adds.
const std::vector<std::pair<std::uint16_t, std::uint16_t>> kV4Fields = {
    {8, 4}, {12, 4}, {7, 2}, {11, 2}, {4, 1}, {5, 1}, {6, 1}, {1, 4}, {2, 4}, {10, 2}, {14, 2}, {9, 1}, {13, 1},
    {15, 4}, {16, 2}, {17, 4}, {22, 4}, {21, 4}, {58, 2}, {59, 2}, {56, 6}, {80, 6}, {61, 1}, {89, 1}, {34, 4}};

void v4_record(PacketBuilder& p, std::uint32_t n) {
  p.ip("10.1.2." + std::to_string(n)).ip("203.0.113.7").u16(40000 + n).u16(443).u8(6).u8(0x28).u8(0x1b);
  p.u32(1500 * n).u32(n).u16(3).u16(7).u8(24).u8(16).ip("10.0.0.254").u16(64500).u32(4200000000);
  p.u32(kUptime - 10'000).u32(kUptime - 2'000).u16(100).u16(200).u48(0x0a0b0c0d0e0f).u48(0x112233445566);
  p.u8(1).u8(0x40).u32(n == 2 ? 0 : 100);
}

struct Fixture : ::testing::Test {
  MetricsRegistry metrics;
  TemplateCache cache{metrics};
  FlowRecord scratch;
  CollectFlows out;

  DecodeStatus decode(const std::vector<std::uint8_t>& bytes, const std::string& exporter = "192.0.2.9",
                      std::uint64_t received_ns = 1'700'000'100'000'000'000ULL) {
    return decode_netflow(envelope_of(bytes, exporter, received_ns), cache, scratch, out);
  }
  std::uint64_t template_unknown() const {
    return metrics.counter_value("decode_errors_total", {{"kind", "netflow"}, {"reason", "template_unknown"}});
  }
};

using NetflowV9 = Fixture;

TEST_F(NetflowV9, TemplateAndDataInOneDatagramDecodeEveryField) {
  PacketBuilder p;
  p.v9_header(kUptime, kSecs, 7, 3);
  p.begin_set(0).v9_template(256, kV4Fields).end_set();
  p.begin_set(256);
  v4_record(p, 1);
  v4_record(p, 2);
  p.end_set();
  ASSERT_EQ(decode(p.bytes()), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 2u);
  const FlowRecord& f = out.flows[0];
  EXPECT_EQ(ip6_to_string(f.src_addr), "10.1.2.1");
  EXPECT_EQ(ip6_to_string(f.dst_addr), "203.0.113.7");
  EXPECT_EQ(f.src_port, 40001);
  EXPECT_EQ(f.dst_port, 443);
  EXPECT_EQ(f.proto, 6u);
  EXPECT_EQ(f.ip_tos, 0x28);
  EXPECT_EQ(f.tcp_flags, 0x1b);
  EXPECT_EQ(f.bytes, 1500u);
  EXPECT_EQ(f.packets, 1u);
  EXPECT_EQ(f.in_if, 3u);
  EXPECT_EQ(f.out_if, 7u);
  EXPECT_EQ(f.src_net_mask, 24);
  EXPECT_EQ(f.dst_net_mask, 16);
  EXPECT_EQ(ip6_to_string(f.next_hop), "10.0.0.254");
  EXPECT_EQ(f.src_as, 64500u);
  EXPECT_EQ(f.dst_as, 4200000000u);
  EXPECT_EQ(f.time_flow_start, kSecs - 10);
  EXPECT_EQ(f.time_flow_end, kSecs - 2);
  EXPECT_EQ(f.src_vlan, 100);
  EXPECT_EQ(f.dst_vlan, 200);
  EXPECT_EQ(f.src_mac, 0x0a0b0c0d0e0fULL);
  EXPECT_EQ(f.dst_mac, 0x112233445566ULL);
  EXPECT_EQ(f.flow_direction, FlowDirection::egress);
  EXPECT_EQ(f.forwarding_status, 0x40u);
  EXPECT_EQ(f.sampling_rate, 100u);
  EXPECT_EQ(f.etype, 0x0800u);
  EXPECT_EQ(f.time_received, 1'700'000'100u);
  EXPECT_EQ(ip6_to_string(f.exporter_address), "192.0.2.9");
  // The second record carries a zero sampling interval and nothing else is known: 0 (unknown).
  EXPECT_EQ(out.flows[1].sampling_rate, 0u);
  EXPECT_EQ(out.flows[1].bytes, 3000u);
  EXPECT_EQ(cache.template_count(), 1u);
}

TEST_F(NetflowV9, Ipv6MplsNatAndPostFields) {
  PacketBuilder p;
  p.v9_header(kUptime, kSecs, 1);
  p.begin_set(0)
      .v9_template(300, {{27, 16}, {28, 16}, {29, 1}, {30, 1}, {62, 16}, {31, 3}, {24, 8}, {23, 8}, {139, 2},
                         {70, 3}, {71, 3}, {72, 3}, {225, 4}, {226, 4}, {227, 2}, {228, 2}, {81, 6}, {57, 6},
                         {243, 2}, {254, 2}, {192, 1}})
      .end_set();
  p.begin_set(300);
  p.ip("2001:db8::1").ip("2001:db8:ffff::2").u8(48).u8(64).ip("fe80::1").u24(0xabcde).u64(12).u64(9000).u16(0x8000);
  p.u24((16000 << 4) | 0).u24((17000 << 4) | 2).u24((18000 << 4) | 1);
  p.ip("198.51.100.1").ip("198.51.100.2").u16(1024).u16(2048).u48(0xaabbccddeeff).u48(0x001122334455);
  p.u16(0x1064).u16(0x2065).u8(63);
  p.zeros(2);  // flowset padding to a multiple of 4
  p.end_set();
  ASSERT_EQ(decode(p.bytes()), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 1u);
  const FlowRecord& f = out.flows[0];
  EXPECT_EQ(ip6_to_string(f.src_addr), "2001:db8::1");
  EXPECT_EQ(ip6_to_string(f.dst_addr), "2001:db8:ffff::2");
  EXPECT_EQ(f.src_net_mask, 48);
  EXPECT_EQ(f.dst_net_mask, 64);
  EXPECT_EQ(ip6_to_string(f.next_hop), "fe80::1");
  EXPECT_EQ(f.ipv6_flow_label, 0xabcdeu);
  EXPECT_EQ(f.packets, 12u);  // post counters stand in when the plain ones are absent
  EXPECT_EQ(f.bytes, 9000u);
  EXPECT_EQ(f.icmp_type, 0x80);
  EXPECT_EQ(f.icmp_code, 0);
  ASSERT_EQ(f.mpls_labels_len, 3);
  EXPECT_EQ(f.mpls_labels[0], 16000u);
  EXPECT_EQ(f.mpls_labels[1], 17000u);
  EXPECT_EQ(f.mpls_labels[2], 18000u);
  EXPECT_EQ(ip6_to_string(f.src_addr_nat), "198.51.100.1");
  EXPECT_EQ(ip6_to_string(f.dst_addr_nat), "198.51.100.2");
  EXPECT_EQ(f.src_port_nat, 1024);
  EXPECT_EQ(f.dst_port_nat, 2048);
  EXPECT_EQ(f.src_mac, 0xaabbccddeeffULL);
  EXPECT_EQ(f.dst_mac, 0x001122334455ULL);
  EXPECT_EQ(f.src_vlan, 0x064);  // 802.1Q id: the low 12 bits
  EXPECT_EQ(f.dst_vlan, 0x065);
  EXPECT_EQ(f.ip_ttl, 63);
  EXPECT_EQ(f.etype, 0x86ddu);
  // No times in the record: the export time stands in.
  EXPECT_EQ(f.time_flow_start, kSecs);
  EXPECT_EQ(f.time_flow_end, kSecs);
}

TEST_F(NetflowV9, UptimeWrapGivesFlowsInThePast) {
  PacketBuilder p;
  p.v9_header(5'000, kSecs, 1);  // sysUptime wrapped 5 s ago
  p.begin_set(0).v9_template(256, {{1, 4}, {22, 4}, {21, 4}}).end_set();
  p.begin_set(256).u32(1).u32(0xffffffffu - 4'999).u32(1'000).end_set();
  ASSERT_EQ(decode(p.bytes()), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 1u);
  EXPECT_EQ(out.flows[0].time_flow_start, kSecs - 10);
  EXPECT_EQ(out.flows[0].time_flow_end, kSecs - 4);
}

TEST_F(NetflowV9, DataBeforeTemplateIsHeldThenDecoded) {
  PacketBuilder data;
  data.v9_header(kUptime, kSecs, 5);
  data.begin_set(256);
  v4_record(data, 1);
  data.end_set();
  ASSERT_EQ(decode(data.bytes(), "192.0.2.9", 1'700'000'095'000'000'000ULL), DecodeStatus::ok);
  EXPECT_TRUE(out.flows.empty());
  EXPECT_EQ(cache.pending_sets(), 1u);

  // The template from another source id does not release it; the right one does.
  PacketBuilder other;
  other.v9_header(kUptime, kSecs, 6).begin_set(0).v9_template(256, kV4Fields).end_set();
  ASSERT_EQ(decode(other.bytes()), DecodeStatus::ok);
  EXPECT_TRUE(out.flows.empty());
  PacketBuilder tpl;
  tpl.v9_header(kUptime + 1000, kSecs + 1, 5).begin_set(0).v9_template(256, kV4Fields).end_set();
  ASSERT_EQ(decode(tpl.bytes()), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 1u);
  EXPECT_EQ(cache.pending_sets(), 0u);
  const FlowRecord& f = out.flows[0];
  EXPECT_EQ(ip6_to_string(f.src_addr), "10.1.2.1");
  EXPECT_EQ(f.bytes, 1500u);
  // Times come from the datagram that carried the data, not the template's.
  EXPECT_EQ(f.time_flow_start, kSecs - 10);
  EXPECT_EQ(f.time_received, 1'700'000'095u);
  EXPECT_EQ(metrics.counter_total("flow_template_pending_decoded_total"), 1u);
  EXPECT_EQ(template_unknown(), 0u);
}

TEST_F(NetflowV9, HeldDataThatOutlivesItsWaitIsCountedAsTemplateUnknown) {
  PacketBuilder data;
  data.v9_header(kUptime, kSecs, 5).begin_set(256).u32(1).end_set();
  const std::uint64_t t0 = 1'700'000'000'000'000'000ULL;
  ASSERT_EQ(decode(data.bytes(), "192.0.2.9", t0), DecodeStatus::ok);
  EXPECT_EQ(cache.pending_sets(), 1u);
  EXPECT_EQ(cache.expire(t0 + 5'000'000'000ULL), 0u);
  EXPECT_EQ(cache.expire(t0 + 11'000'000'000ULL), 1u);
  EXPECT_EQ(cache.pending_sets(), 0u);
  EXPECT_EQ(template_unknown(), 1u);
  // The template arriving later finds nothing to decode.
  PacketBuilder tpl;
  tpl.v9_header(kUptime, kSecs, 5).begin_set(0).v9_template(256, {{1, 4}}).end_set();
  ASSERT_EQ(decode(tpl.bytes()), DecodeStatus::ok);
  EXPECT_TRUE(out.flows.empty());
}

TEST(NetflowV9Holding, DisabledHoldingReportsTemplateUnknownAtOnce) {
  MetricsRegistry metrics;
  TemplateCacheLimits limits;
  limits.pending_sets_per_exporter = 0;
  TemplateCache cache(metrics, limits);
  PacketBuilder data;
  data.v9_header(kUptime, kSecs, 5).begin_set(256).u32(1).end_set();
  FlowRecord scratch;
  CollectFlows out;
  EXPECT_EQ(decode_netflow(envelope_of(data.bytes()), cache, scratch, out), DecodeStatus::template_unknown);
  EXPECT_EQ(cache.pending_sets(), 0u);
}

TEST_F(NetflowV9, OptionsDataGivesSamplingRatesBySamplerAndForTheExporter) {
  PacketBuilder p;
  p.v9_header(kUptime, kSecs, 1);
  // Options template 257: scope System (type 1, 4 bytes); options FLOW_SAMPLER_ID (48, 1 byte),
  // FLOW_SAMPLER_MODE (49, 1), FLOW_SAMPLER_RANDOM_INTERVAL (50, 4).
  p.begin_set(1).u16(257).u16(4).u16(12).u16(1).u16(4).u16(48).u16(1).u16(49).u16(1).u16(50).u16(4).zeros(2).end_set();
  // Options template 258: scope System; SAMPLING_INTERVAL (34, 4) without a sampler: exporter-wide.
  p.begin_set(1).u16(258).u16(4).u16(4).u16(1).u16(4).u16(34).u16(4).end_set();
  p.begin_set(257).u32(0).u8(1).u8(2).u32(100).u32(0).u8(2).u8(2).u32(1000).zeros(0).end_set();
  p.begin_set(258).u32(0).u32(64).end_set();
  p.begin_set(0).v9_template(256, {{1, 4}, {48, 1}}).end_set();
  p.begin_set(256).u32(10).u8(1).u32(20).u8(2).u32(30).u8(3).end_set();
  ASSERT_EQ(decode(p.bytes()), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 3u);
  EXPECT_EQ(out.flows[0].sampling_rate, 100u);
  EXPECT_EQ(out.flows[1].sampling_rate, 1000u);
  EXPECT_EQ(out.flows[2].sampling_rate, 64u);  // unknown sampler: the exporter's rate
  EXPECT_EQ(cache.sampling_rate(*ip6_parse("192.0.2.9"), 9, 1, 2), 1000u);
  // Another source id of the same exporter falls back to the exporter-wide rate; another exporter knows nothing.
  EXPECT_EQ(cache.sampling_rate(*ip6_parse("192.0.2.9"), 9, 99, std::nullopt), 64u);
  EXPECT_EQ(cache.sampling_rate(*ip6_parse("192.0.2.10"), 9, 1, std::nullopt), 0u);
}

TEST_F(NetflowV9, TemplatesAreScopedByExporterAndSourceId) {
  PacketBuilder a;
  a.v9_header(kUptime, kSecs, 1).begin_set(0).v9_template(256, {{1, 4}}).end_set();
  PacketBuilder b;
  b.v9_header(kUptime, kSecs, 2).begin_set(0).v9_template(256, {{2, 2}, {1, 2}}).end_set();
  ASSERT_EQ(decode(a.bytes()), DecodeStatus::ok);
  ASSERT_EQ(decode(b.bytes()), DecodeStatus::ok);
  PacketBuilder d1;
  d1.v9_header(kUptime, kSecs, 1).begin_set(256).u32(0x01020304).end_set();
  PacketBuilder d2;
  d2.v9_header(kUptime, kSecs, 2).begin_set(256).u16(5).u16(6).end_set();
  ASSERT_EQ(decode(d1.bytes()), DecodeStatus::ok);
  ASSERT_EQ(decode(d2.bytes()), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 2u);
  EXPECT_EQ(out.flows[0].bytes, 0x01020304u);
  EXPECT_EQ(out.flows[1].packets, 5u);
  EXPECT_EQ(out.flows[1].bytes, 6u);
  // Another exporter address with the same source id has no template: its data waits.
  ASSERT_EQ(decode(d1.bytes(), "192.0.2.77"), DecodeStatus::ok);
  EXPECT_EQ(out.flows.size(), 2u);
  EXPECT_EQ(cache.pending_sets(), 1u);
}

TEST_F(NetflowV9, RedefinedTemplateChangesTheLayout) {
  PacketBuilder a;
  a.v9_header(kUptime, kSecs, 1).begin_set(0).v9_template(256, {{1, 4}, {2, 4}}).end_set();
  a.begin_set(256).u32(100).u32(1).end_set();
  ASSERT_EQ(decode(a.bytes()), DecodeStatus::ok);
  PacketBuilder b;
  b.v9_header(kUptime, kSecs, 1).begin_set(0).v9_template(256, {{2, 4}, {1, 8}}).end_set();
  b.begin_set(256).u32(2).u64(200).end_set();
  ASSERT_EQ(decode(b.bytes()), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 2u);
  EXPECT_EQ(out.flows[0].bytes, 100u);
  EXPECT_EQ(out.flows[1].bytes, 200u);
  EXPECT_EQ(out.flows[1].packets, 2u);
  EXPECT_EQ(metrics.counter_total("flow_templates_redefined_total"), 1u);
  EXPECT_EQ(cache.template_count(), 1u);
  // Resending the same definition is not a redefinition.
  ASSERT_EQ(decode(b.bytes()), DecodeStatus::ok);
  EXPECT_EQ(metrics.counter_total("flow_templates_redefined_total"), 1u);
}

TEST_F(NetflowV9, UnknownFieldsAreSkippedByLengthAndReservedFlowsetsIgnored) {
  PacketBuilder p;
  p.v9_header(kUptime, kSecs, 1);
  p.begin_set(7).u32(0xdeadbeef).end_set();  // reserved flowset id
  p.begin_set(0).v9_template(256, {{1, 4}, {40000, 5}, {2, 4}, {999, 1}}).end_set();
  p.begin_set(256).u32(77).raw("xxxxx").u32(3).u8(9).zeros(3).end_set();
  ASSERT_EQ(decode(p.bytes()), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 1u);
  EXPECT_EQ(out.flows[0].bytes, 77u);
  EXPECT_EQ(out.flows[0].packets, 3u);
}

TEST_F(NetflowV9, TruncatedAndLyingLengthsAreRejectedWithAReason) {
  {
    PacketBuilder p;
    p.v9_header(kUptime, kSecs, 1);
    p.bytes().resize(19);
    EXPECT_EQ(decode(p.bytes()), DecodeStatus::truncated);
  }
  {
    PacketBuilder p;  // flowset claims more than the datagram holds
    p.v9_header(kUptime, kSecs, 1).u16(0).u16(200).v9_template(256, {{1, 4}});
    EXPECT_EQ(decode(p.bytes()), DecodeStatus::bad_length);
  }
  {
    PacketBuilder p;  // flowset length below its own header
    p.v9_header(kUptime, kSecs, 1).u16(256).u16(2).u32(0);
    EXPECT_EQ(decode(p.bytes()), DecodeStatus::bad_length);
  }
  {
    PacketBuilder p;  // template field count beyond the flowset
    p.v9_header(kUptime, kSecs, 1).begin_set(0).u16(256).u16(10).u16(1).u16(4).end_set();
    EXPECT_EQ(decode(p.bytes()), DecodeStatus::bad_length);
  }
  {
    PacketBuilder p;  // template ids below 256 are reserved for flowset ids
    p.v9_header(kUptime, kSecs, 1).begin_set(0).v9_template(12, {{1, 4}}).end_set();
    EXPECT_EQ(decode(p.bytes()), DecodeStatus::bad_template);
  }
  {
    PacketBuilder p;  // a template whose records would be empty
    p.v9_header(kUptime, kSecs, 1).begin_set(0).v9_template(256, {{1, 0}, {2, 0}}).end_set();
    EXPECT_EQ(decode(p.bytes()), DecodeStatus::bad_template);
  }
  {
    PacketBuilder p;  // options scope length not a multiple of 4
    p.v9_header(kUptime, kSecs, 1).begin_set(1).u16(257).u16(3).u16(4).u16(1).u16(4).u16(34).u16(4).end_set();
    EXPECT_EQ(decode(p.bytes()), DecodeStatus::bad_template);
  }
  {
    PacketBuilder p;  // not v9 at all when called directly
    p.v9_header(kUptime, kSecs, 1);
    p.bytes()[1] = 5;
    EXPECT_EQ(decode_netflow_v9(envelope_of(p.bytes()), cache, scratch, out), DecodeStatus::bad_version);
  }
  EXPECT_TRUE(out.flows.empty());
  EXPECT_STREQ(to_string(DecodeStatus::bad_template), "bad_template");
}

}  // namespace
}  // namespace sluice
