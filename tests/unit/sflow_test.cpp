// sFlow v5 decoder: hand-built datagrams per the sFlow v5 specification, with exact expected fields.
#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "core/bytes.hpp"
#include "core/flow_batch.hpp"
#include "core/metrics.hpp"
#include "decoders/sflow.hpp"
#include "pipeline/flow_batch_builder.hpp"

namespace sluice {
namespace {

using Bytes = std::vector<std::uint8_t>;

// XDR writer: big-endian words, opaque data padded to 4 bytes.
struct Xdr {
  Bytes b;
  Xdr& u32(std::uint32_t v) {
    b.resize(b.size() + 4);
    store_be32(b.data() + b.size() - 4, v);
    return *this;
  }
  Xdr& raw(const Bytes& v) {
    b.insert(b.end(), v.begin(), v.end());
    return *this;
  }
  Xdr& opaque(const Bytes& v) {
    raw(v);
    b.resize((b.size() + 3) & ~std::size_t{3}, 0);
    return *this;
  }
};

Bytes be16(std::uint16_t v) { return {static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)}; }
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Packet pieces.
Bytes eth(std::uint16_t type, std::initializer_list<std::pair<std::uint16_t, std::uint16_t>> tags = {}) {
  Bytes b = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
  for (const auto& [tpid, vlan] : tags) b = cat({b, be16(tpid), be16(vlan)});
  return cat({b, be16(type)});
}
Bytes ipv4(std::uint8_t proto, std::uint32_t src, std::uint32_t dst, std::uint8_t tos, std::uint8_t ttl,
           std::uint16_t frag = 0) {
  Bytes b(20, 0);
  b[0] = 0x45;
  b[1] = tos;
  store_be16(b.data() + 2, 1500);
  store_be16(b.data() + 6, frag);
  b[8] = ttl;
  b[9] = proto;
  store_be32(b.data() + 12, src);
  store_be32(b.data() + 16, dst);
  return b;
}
Bytes ipv6(std::uint8_t next, std::uint8_t tc, std::uint32_t flow_label, std::uint8_t hlim, std::uint8_t src_last,
           std::uint8_t dst_last) {
  Bytes b(40, 0);
  store_be32(b.data(), (6u << 28) | (std::uint32_t{tc} << 20) | flow_label);
  store_be16(b.data() + 4, 100);
  b[6] = next;
  b[7] = hlim;
  b[8] = 0x20, b[9] = 0x01, b[10] = 0x0d, b[11] = 0xb8, b[23] = src_last;
  b[24] = 0x20, b[25] = 0x01, b[26] = 0x0d, b[27] = 0xb8, b[39] = dst_last;
  return b;
}
Bytes tcp(std::uint16_t sport, std::uint16_t dport, std::uint8_t flags) {
  Bytes b(20, 0);
  store_be16(b.data(), sport);
  store_be16(b.data() + 2, dport);
  b[12] = 0x50;
  b[13] = flags;
  return b;
}
Bytes udp(std::uint16_t sport, std::uint16_t dport) {
  Bytes b(8, 0);
  store_be16(b.data(), sport);
  store_be16(b.data() + 2, dport);
  return b;
}
Bytes icmp(std::uint8_t type, std::uint8_t code) { return {type, code, 0, 0, 0, 0, 0, 0}; }
Bytes mpls(std::uint32_t label, bool bottom) {
  Bytes b(4);
  store_be32(b.data(), (label << 12) | (bottom ? 0x100u : 0u) | 64);
  return b;
}

// Records and samples.
Bytes record(std::uint32_t format, const Bytes& body) { return Xdr{}.u32(format).u32(static_cast<std::uint32_t>(body.size())).raw(body).b; }
Bytes raw_header(const Bytes& packet, std::uint32_t frame_length, std::uint32_t protocol = 1) {
  return record(1, Xdr{}.u32(protocol).u32(frame_length).u32(4).u32(static_cast<std::uint32_t>(packet.size())).opaque(packet).b);
}
Bytes flow_sample(std::uint32_t rate, std::uint32_t input, std::uint32_t output, std::initializer_list<Bytes> records) {
  Xdr x;
  x.u32(77).u32(3).u32(rate).u32(rate * 10).u32(0).u32(input).u32(output).u32(static_cast<std::uint32_t>(records.size()));
  for (const auto& r : records) x.raw(r);
  return record(1, x.b);
}
Bytes expanded_flow_sample(std::uint32_t rate, std::uint32_t in_format, std::uint32_t in_value, std::uint32_t out_format,
                           std::uint32_t out_value, std::initializer_list<Bytes> records) {
  Xdr x;
  x.u32(78).u32(0).u32(3).u32(rate).u32(rate * 10).u32(0).u32(in_format).u32(in_value).u32(out_format).u32(out_value);
  x.u32(static_cast<std::uint32_t>(records.size()));
  for (const auto& r : records) x.raw(r);
  return record(3, x.b);
}
Bytes datagram(std::initializer_list<Bytes> samples, std::uint32_t agent = 0xc0000201) {
  Xdr x;
  x.u32(5).u32(1).u32(agent).u32(0).u32(1234).u32(86'400'000).u32(static_cast<std::uint32_t>(samples.size()));
  for (const auto& s : samples) x.raw(s);
  return x.b;
}

class Collect : public FlowOutput {
 public:
  void emit(FlowRecord& record) override { flows.push_back(record); }
  std::vector<FlowRecord> flows;
};

constexpr std::uint64_t kReceivedNs = 1'700'000'005'900'000'000ULL;

DecodeStatus decode(const Bytes& bytes, Collect& out, const SflowOptions& options = {}, SflowCounts* counts = nullptr) {
  Envelope env;
  env.received_ns = kReceivedNs;
  env.kind = SourceKind::sflow;
  env.source_address = ip6_from_v4(0x7f000001);
  env.source_port = 6343;
  env.payload = std::as_bytes(std::span(bytes));
  FlowRecord scratch;
  scratch.src_as = 999;  // leftovers from a previous flow must not leak
  return decode_sflow(env, scratch, out, options, counts);
}

Ip6 v6(std::uint8_t last) {
  Ip6 a{};
  a[0] = 0x20, a[1] = 0x01, a[2] = 0x0d, a[3] = 0xb8, a[15] = last;
  return a;
}

Bytes addr(const Ip6& a) { return Bytes(a.begin(), a.end()); }

TEST(Sflow, FlowSampleWithEthernetIpv4TcpHeader) {
  const Bytes pkt = cat({eth(0x0800), ipv4(6, 0x0a000001, 0xc6336402, 0x28, 63), tcp(40000, 443, 0x12)});
  Collect out;
  SflowCounts counts;
  ASSERT_EQ(decode(datagram({flow_sample(1000, 3, 7, {raw_header(pkt, 1518)})}), out, {}, &counts), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 1u);
  const FlowRecord& f = out.flows[0];
  EXPECT_EQ(ip6_to_string(f.exporter_address), "192.0.2.1");  // the agent address, not the envelope's source
  EXPECT_EQ(f.time_received, 1'700'000'005u);
  EXPECT_EQ(f.time_flow_start, 1'700'000'005u);
  EXPECT_EQ(f.time_flow_end, 1'700'000'005u);
  EXPECT_EQ(f.sampling_rate, 1000u);
  EXPECT_EQ(f.in_if, 3u);
  EXPECT_EQ(f.out_if, 7u);
  EXPECT_EQ(f.bytes, 1518u);
  EXPECT_EQ(f.packets, 1u);
  EXPECT_EQ(f.etype, 0x0800u);
  EXPECT_EQ(ip6_to_string(f.src_addr), "10.0.0.1");
  EXPECT_EQ(ip6_to_string(f.dst_addr), "198.51.100.2");
  EXPECT_EQ(f.proto, 6u);
  EXPECT_EQ(f.src_port, 40000);
  EXPECT_EQ(f.dst_port, 443);
  EXPECT_EQ(f.tcp_flags, 0x12);
  EXPECT_EQ(f.ip_tos, 0x28);
  EXPECT_EQ(f.ip_ttl, 63);
  EXPECT_EQ(f.dst_mac, 0x020000000002u);
  EXPECT_EQ(f.src_mac, 0x020000000001u);
  EXPECT_EQ(f.src_vlan, 0);
  EXPECT_EQ(f.src_as, 0u);
  EXPECT_EQ(f.mpls_labels_len, 0);
  EXPECT_EQ(counts.flow_samples, 1u);
  EXPECT_EQ(counts.counter_samples, 0u);
}

TEST(Sflow, Ipv6UdpBehindVlanTag) {
  const Bytes pkt = cat({eth(0x86dd, {{0x8100, 0x2000 | 100}}), ipv6(17, 0xb8, 0x12345, 57, 1, 2), udp(5353, 53)});
  Collect out;
  ASSERT_EQ(decode(datagram({flow_sample(512, 1, 2, {raw_header(pkt, 200)})}), out), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 1u);
  const FlowRecord& f = out.flows[0];
  EXPECT_EQ(f.src_vlan, 100);  // priority bits are not part of the VLAN id
  EXPECT_EQ(f.etype, 0x86ddu);
  EXPECT_EQ(f.src_addr, v6(1));
  EXPECT_EQ(f.dst_addr, v6(2));
  EXPECT_EQ(f.ip_tos, 0xb8);
  EXPECT_EQ(f.ipv6_flow_label, 0x12345u);
  EXPECT_EQ(f.ip_ttl, 57);
  EXPECT_EQ(f.proto, 17u);
  EXPECT_EQ(f.src_port, 5353);
  EXPECT_EQ(f.dst_port, 53);
  EXPECT_EQ(f.bytes, 200u);
  EXPECT_EQ(f.sampling_rate, 512u);
}

TEST(Sflow, Ipv6ExtensionHeadersAreSkippedToTheTransport) {
  Bytes hop = {6, 0, 0, 0, 0, 0, 0, 0};  // hop-by-hop, 8 bytes, next = TCP
  const Bytes pkt = cat({eth(0x86dd), ipv6(0, 0, 0, 64, 1, 2), hop, tcp(1000, 22, 0x02)});
  Collect out;
  ASSERT_EQ(decode(datagram({flow_sample(1, 1, 2, {raw_header(pkt, 90)})}), out), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 1u);
  EXPECT_EQ(out.flows[0].proto, 6u);
  EXPECT_EQ(out.flows[0].dst_port, 22);
  EXPECT_EQ(out.flows[0].tcp_flags, 0x02);
}

TEST(Sflow, QinQKeepsTheOuterVlanAndIcmpTypeCode) {
  const Bytes pkt = cat({eth(0x0800, {{0x88a8, 200}, {0x8100, 30}}), ipv4(1, 0x0a000001, 0x0a000002, 0, 9), icmp(3, 3)});
  Collect out;
  ASSERT_EQ(decode(datagram({flow_sample(10, 1, 2, {raw_header(pkt, 102)})}), out), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 1u);
  const FlowRecord& f = out.flows[0];
  EXPECT_EQ(f.src_vlan, 200);
  EXPECT_EQ(f.proto, 1u);
  EXPECT_EQ(f.icmp_type, 3);
  EXPECT_EQ(f.icmp_code, 3);
  EXPECT_EQ(f.src_port, 0);
  EXPECT_EQ(f.dst_port, 0);
  EXPECT_EQ(ip6_to_string(f.dst_addr), "10.0.0.2");
}

TEST(Sflow, MplsLabelStackThenIpv4) {
  const Bytes pkt = cat({eth(0x8847), mpls(16000, false), mpls(24001, false), mpls(3, true),
                         ipv4(17, 0x0a000001, 0x0a000002, 0x10, 5), udp(1000, 2000)});
  Collect out;
  ASSERT_EQ(decode(datagram({flow_sample(10, 1, 2, {raw_header(pkt, 300)})}), out), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 1u);
  const FlowRecord& f = out.flows[0];
  ASSERT_EQ(f.mpls_labels_len, 3);
  EXPECT_EQ(f.mpls_labels[0], 16000u);
  EXPECT_EQ(f.mpls_labels[1], 24001u);
  EXPECT_EQ(f.mpls_labels[2], 3u);
  EXPECT_EQ(f.etype, 0x0800u);
  EXPECT_EQ(f.proto, 17u);
  EXPECT_EQ(f.src_port, 1000);
  EXPECT_EQ(f.dst_port, 2000);
  EXPECT_EQ(f.ip_tos, 0x10);
}

TEST(Sflow, HeaderProtocolsIpv4AndIpv6WithoutEthernet) {
  const Bytes v4pkt = cat({ipv4(6, 0x01020304, 0x05060708, 0, 64), tcp(1, 2, 0x10)});
  const Bytes v6pkt = cat({ipv6(58, 0, 7, 255, 3, 4), icmp(128, 0)});
  Collect out;
  ASSERT_EQ(decode(datagram({flow_sample(1, 1, 2, {raw_header(v4pkt, 1000, 11)}), flow_sample(1, 1, 2, {raw_header(v6pkt, 1001, 12)})}),
                   out),
            DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 2u);
  EXPECT_EQ(ip6_to_string(out.flows[0].src_addr), "1.2.3.4");
  EXPECT_EQ(out.flows[0].src_port, 1);
  EXPECT_EQ(out.flows[0].tcp_flags, 0x10);
  EXPECT_EQ(out.flows[0].src_mac, 0u);
  EXPECT_EQ(out.flows[1].src_addr, v6(3));
  EXPECT_EQ(out.flows[1].proto, 58u);
  EXPECT_EQ(out.flows[1].icmp_type, 128);
  EXPECT_EQ(out.flows[1].ipv6_flow_label, 7u);
  EXPECT_EQ(out.flows[1].bytes, 1001u);
}

TEST(Sflow, LaterFragmentsAndCutHeadersKeepWhatIsThere) {
  const Bytes frag = cat({eth(0x0800), ipv4(6, 0x0a000001, 0x0a000002, 0, 64, 185), tcp(1, 2, 0x10)});
  Bytes cut = cat({eth(0x0800), ipv4(6, 0x0a000001, 0x0a000002, 0, 64), tcp(1, 2, 0x10)});
  cut.resize(14 + 20 + 3);  // the port pair is cut in half
  Collect out;
  ASSERT_EQ(decode(datagram({flow_sample(1, 1, 2, {raw_header(frag, 1500)}), flow_sample(1, 1, 2, {raw_header(cut, 1500)})}), out),
            DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 2u);
  for (const FlowRecord& f : out.flows) {
    EXPECT_EQ(ip6_to_string(f.dst_addr), "10.0.0.2");
    EXPECT_EQ(f.proto, 6u);
    EXPECT_EQ(f.src_port, 0);
    EXPECT_EQ(f.dst_port, 0);
  }
}

TEST(Sflow, VxlanInnerFrameOnlyWhenEnabled) {
  const Bytes vxlan_hdr = {0x08, 0, 0, 0, 0, 0x12, 0x34, 0};
  Bytes inner = cat({eth(0x0800), ipv4(6, 0xac100001, 0xac100002, 0x48, 60), tcp(33000, 8080, 0x18)});
  inner[5] = 0x22;  // inner destination MAC differs from the outer one
  const Bytes pkt = cat({eth(0x0800, {{0x8100, 42}}), ipv4(17, 0x0a000001, 0x0a000002, 0, 64), udp(51000, 4789), vxlan_hdr, inner});
  const Bytes d = datagram({flow_sample(100, 1, 2, {raw_header(pkt, 1400)})});

  Collect plain;
  ASSERT_EQ(decode(d, plain), DecodeStatus::ok);
  ASSERT_EQ(plain.flows.size(), 1u);
  EXPECT_EQ(ip6_to_string(plain.flows[0].src_addr), "10.0.0.1");
  EXPECT_EQ(plain.flows[0].proto, 17u);
  EXPECT_EQ(plain.flows[0].dst_port, 4789);

  Collect decap;
  SflowOptions options;
  options.decode_vxlan = true;
  ASSERT_EQ(decode(d, decap, options), DecodeStatus::ok);
  ASSERT_EQ(decap.flows.size(), 1u);
  const FlowRecord& f = decap.flows[0];
  EXPECT_EQ(ip6_to_string(f.src_addr), "172.16.0.1");
  EXPECT_EQ(ip6_to_string(f.dst_addr), "172.16.0.2");
  EXPECT_EQ(f.proto, 6u);
  EXPECT_EQ(f.src_port, 33000);
  EXPECT_EQ(f.dst_port, 8080);
  EXPECT_EQ(f.tcp_flags, 0x18);
  EXPECT_EQ(f.ip_tos, 0x48);
  EXPECT_EQ(f.ip_ttl, 60);
  EXPECT_EQ(f.dst_mac, 0x020000000022u);
  EXPECT_EQ(f.src_vlan, 42);  // the outer tag: the inner frame has none
  EXPECT_EQ(f.bytes, 1400u);
}

TEST(Sflow, ExpandedSampleWithSwitchRouterAndGatewayRecords) {
  const Bytes pkt = cat({eth(0x0800, {{0x8100, 5}}), ipv4(6, 0x0a000001, 0x0a000002, 0, 64), tcp(1, 2, 0)});
  const Bytes sw = record(1001, Xdr{}.u32(10).u32(0).u32(20).u32(0).b);
  Xdr router;
  router.u32(2).raw(addr(v6(9))).u32(24).u32(48);
  Xdr gw;
  gw.u32(1).u32(0xc0000209).u32(64496).u32(64497).u32(64498);
  gw.u32(2).u32(2).u32(2).u32(64510).u32(64511).u32(1).u32(2).u32(64512).u32(64513);  // SEQUENCE then SET
  gw.u32(2).u32(0xfbf00001).u32(0xfbf00002).u32(100);
  Collect out;
  ASSERT_EQ(decode(datagram({expanded_flow_sample(2048, 0, 1'234'567'890, 0, 0x7fffffff,
                                                  {record(1003, gw.b), raw_header(pkt, 64), sw, record(1002, router.b)})}),
                   out),
            DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 1u);
  const FlowRecord& f = out.flows[0];
  EXPECT_EQ(f.sampling_rate, 2048u);
  EXPECT_EQ(f.in_if, 1'234'567'890u);  // expanded samples carry full 32-bit interface values
  EXPECT_EQ(f.out_if, 0x7fffffffu);
  EXPECT_EQ(f.src_vlan, 10);  // the switch's VLANs beat the tag in the header
  EXPECT_EQ(f.dst_vlan, 20);
  EXPECT_EQ(f.next_hop, v6(9));  // the router's next hop beats the gateway's BGP next hop
  EXPECT_EQ(f.src_net_mask, 24);
  EXPECT_EQ(f.dst_net_mask, 48);
  EXPECT_EQ(f.src_as, 64497u);
  EXPECT_EQ(f.dst_as, 64513u);
  ASSERT_EQ(f.dst_as_path_len, 4);
  EXPECT_EQ(f.dst_as_path[0], 64510u);
  EXPECT_EQ(f.dst_as_path[1], 64511u);
  EXPECT_EQ(f.dst_as_path[2], 64512u);
  EXPECT_EQ(f.dst_as_path[3], 64513u);
  ASSERT_EQ(f.dst_communities_len, 2);
  EXPECT_EQ(f.dst_communities[0], 0xfbf00001u);
  EXPECT_EQ(f.dst_communities[1], 0xfbf00002u);
  EXPECT_EQ(f.bytes, 64u);
}

TEST(Sflow, GatewayAloneGivesNextHopAndEmptyPathMeansTheRoutersAs) {
  Xdr gw;
  gw.u32(1).u32(0xc0000209).u32(64496).u32(64497).u32(0).u32(0).u32(0).u32(0);
  Xdr many;  // 20 ASes and 20 communities: the first 16 of each are kept
  many.u32(1).u32(0xc0000209).u32(64496).u32(1).u32(2).u32(1).u32(2).u32(20);
  for (std::uint32_t i = 0; i < 20; ++i) many.u32(100 + i);
  many.u32(20);
  for (std::uint32_t i = 0; i < 20; ++i) many.u32(200 + i);
  many.u32(0);
  Collect out;
  ASSERT_EQ(decode(datagram({flow_sample(1, 1, 2, {record(1003, gw.b)}), flow_sample(1, 1, 2, {record(1003, many.b)})}), out),
            DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 2u);
  EXPECT_EQ(ip6_to_string(out.flows[0].next_hop), "192.0.2.9");
  EXPECT_EQ(out.flows[0].dst_as, 64496u);
  EXPECT_EQ(out.flows[0].dst_as_path_len, 0);
  EXPECT_EQ(out.flows[1].dst_as, 119u);  // the origin, even past the kept part of the path
  ASSERT_EQ(out.flows[1].dst_as_path_len, 16);
  EXPECT_EQ(out.flows[1].dst_as_path[15], 115u);
  ASSERT_EQ(out.flows[1].dst_communities_len, 16);
  EXPECT_EQ(out.flows[1].dst_communities[15], 215u);
}

TEST(Sflow, SampledIpv4AndIpv6RecordsWithoutHeader) {
  const Bytes s4 = record(3, Xdr{}.u32(576).u32(17).u32(0x0a000001).u32(0x0a000002).u32(123).u32(124).u32(0).u32(0x20).b);
  Xdr s6x;
  s6x.u32(1280).u32(6).raw(addr(v6(1))).raw(addr(v6(2)));
  s6x.u32(443).u32(50000).u32(0x11).u32(0x0c);
  const Bytes eframe = record(2, Xdr{}.u32(1300).raw({2, 0, 0, 0, 0, 0xaa, 0, 0}).raw({2, 0, 0, 0, 0, 0xbb, 0, 0}).u32(0x86dd).b);
  Collect out;
  ASSERT_EQ(decode(datagram({flow_sample(8, 1, 2, {s4}), flow_sample(8, 1, 2, {eframe, record(4, s6x.b)})}), out), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 2u);
  EXPECT_EQ(out.flows[0].bytes, 576u);
  EXPECT_EQ(out.flows[0].etype, 0x0800u);
  EXPECT_EQ(ip6_to_string(out.flows[0].src_addr), "10.0.0.1");
  EXPECT_EQ(out.flows[0].proto, 17u);
  EXPECT_EQ(out.flows[0].src_port, 123);
  EXPECT_EQ(out.flows[0].dst_port, 124);
  EXPECT_EQ(out.flows[0].ip_tos, 0x20);
  EXPECT_EQ(out.flows[1].bytes, 1280u);  // the IP length beats the Ethernet frame record's
  EXPECT_EQ(out.flows[1].etype, 0x86ddu);
  EXPECT_EQ(out.flows[1].dst_addr, v6(2));
  EXPECT_EQ(out.flows[1].src_port, 443);
  EXPECT_EQ(out.flows[1].tcp_flags, 0x11);
  EXPECT_EQ(out.flows[1].ip_tos, 0x0c);
  EXPECT_EQ(out.flows[1].src_mac, 0x0200000000aau);
  EXPECT_EQ(out.flows[1].dst_mac, 0x0200000000bbu);
}

TEST(Sflow, CompactInterfaceFormatBits) {
  Collect out;
  ASSERT_EQ(decode(datagram({flow_sample(1, 0x3fffffff, 0x40000005, {}), flow_sample(1, 9, 0x80000003, {}),
                             flow_sample(1, 0x3ffffffe, 0x3fffffff, {})}),
                   out),
            DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 3u);
  EXPECT_EQ(out.flows[0].in_if, 0u);  // unknown
  EXPECT_EQ(out.flows[0].out_if, 0u);
  EXPECT_EQ(out.flows[0].forwarding_status, 128u);  // format 1: discarded
  EXPECT_EQ(out.flows[1].in_if, 9u);
  EXPECT_EQ(out.flows[1].out_if, 0u);  // format 2: several interfaces
  EXPECT_EQ(out.flows[1].forwarding_status, 0u);
  EXPECT_EQ(out.flows[2].in_if, 0x3ffffffeu);
  EXPECT_EQ(out.flows[2].out_if, 0u);
  EXPECT_EQ(out.flows[2].bytes, 0u);
  EXPECT_EQ(out.flows[2].packets, 1u);
}

TEST(Sflow, CounterAndUnknownSamplesAndRecordsAreCountedAndSkipped) {
  const Bytes counters = record(2, Xdr{}.u32(1).u32(3).u32(1).u32(1).u32(4).u32(7).u32(8).b);
  const Bytes expanded_counters = record(4, Xdr{}.u32(1).u32(0).u32(3).u32(0).b);
  const Bytes vendor_sample = record((9 << 12) | 1, Xdr{}.u32(1).u32(2).b);
  const Bytes vendor_record = record((4300 << 12) | 1, Xdr{}.u32(0xffffffff).b);
  const Bytes url_record = record(1005, Xdr{}.u32(1).u32(0).u32(0).b);
  const Bytes pkt = cat({eth(0x0800), ipv4(17, 0x0a000001, 0x0a000002, 0, 64), udp(1, 2)});
  Collect out;
  SflowCounts counts;
  ASSERT_EQ(decode(datagram({counters, flow_sample(4, 1, 2, {vendor_record, url_record, raw_header(pkt, 60)}), expanded_counters,
                             vendor_sample}),
                   out, {}, &counts),
            DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 1u);
  EXPECT_EQ(out.flows[0].dst_port, 2);
  EXPECT_EQ(counts.flow_samples, 1u);
  EXPECT_EQ(counts.counter_samples, 2u);
  EXPECT_EQ(counts.skipped_samples, 1u);
  EXPECT_EQ(counts.skipped_records, 2u);
}

TEST(Sflow, AgentAddressIpv6AndUnsetAgentFallsBackToTheSource) {
  Xdr x;
  x.u32(5).u32(2).raw(addr(v6(7))).u32(0).u32(1).u32(2).u32(1).raw(flow_sample(1, 1, 2, {}));
  Collect out;
  ASSERT_EQ(decode(x.b, out), DecodeStatus::ok);
  ASSERT_EQ(decode(datagram({flow_sample(1, 1, 2, {})}, 0), out), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 2u);
  EXPECT_EQ(out.flows[0].exporter_address, v6(7));
  EXPECT_EQ(ip6_to_string(out.flows[1].exporter_address), "127.0.0.1");
}

// --- Rejections: each has its label, and a rejected datagram emits nothing. ---

Bytes valid_datagram() {
  const Bytes pkt = cat({eth(0x0800), ipv4(6, 0x0a000001, 0x0a000002, 0, 64), tcp(1, 2, 0)});
  Xdr gw;
  gw.u32(1).u32(1).u32(1).u32(2).u32(3).u32(1).u32(2).u32(1).u32(4).u32(1).u32(6).u32(0);
  return datagram({flow_sample(1, 1, 2, {raw_header(pkt, 64), record(1003, gw.b)}),
                   expanded_flow_sample(1, 0, 1, 0, 2, {record(1002, Xdr{}.u32(1).u32(1).u32(8).u32(8).b)})});
}

TEST(Sflow, EveryTruncationIsRejectedWithoutEmitting) {
  const Bytes whole = valid_datagram();
  for (std::size_t len = 0; len < whole.size(); ++len) {
    const Bytes cut(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(len));
    Collect out;
    const DecodeStatus s = decode(cut, out);
    EXPECT_TRUE(s == DecodeStatus::truncated || s == DecodeStatus::bad_length) << "length " << len << ": " << to_string(s);
    EXPECT_TRUE(out.flows.empty()) << "length " << len;
  }
  Collect out;
  EXPECT_EQ(decode(Bytes(whole.begin(), whole.begin() + 20), out), DecodeStatus::truncated);
}

TEST(Sflow, LyingLengthsAreBadLength) {
  const Bytes whole = valid_datagram();
  constexpr std::size_t kFirstSample = 28;
  {  // sample length past the datagram
    Bytes b = whole;
    store_be32(b.data() + kFirstSample + 4, static_cast<std::uint32_t>(b.size()));
    Collect out;
    EXPECT_EQ(decode(b, out), DecodeStatus::bad_length);
    EXPECT_TRUE(out.flows.empty());
  }
  {  // sample length too short for a flow sample's fixed words
    Bytes b = datagram({record(1, Xdr{}.u32(1).u32(2).u32(3).b)});
    Collect out;
    EXPECT_EQ(decode(b, out), DecodeStatus::bad_length);
  }
  {  // record length past its sample
    Bytes b = whole;
    store_be32(b.data() + kFirstSample + 8 + 32 + 4, 4000);
    Collect out;
    EXPECT_EQ(decode(b, out), DecodeStatus::bad_length);
    EXPECT_TRUE(out.flows.empty());
  }
  {  // raw header length past its record
    Bytes b = whole;
    store_be32(b.data() + kFirstSample + 8 + 32 + 8 + 12, 200);
    Collect out;
    EXPECT_EQ(decode(b, out), DecodeStatus::bad_length);
  }
  {  // an AS path segment claiming more ASes than its record holds
    Xdr gw;
    gw.u32(1).u32(1).u32(1).u32(2).u32(3).u32(1).u32(2).u32(0x40000000).u32(4);
    Collect out;
    EXPECT_EQ(decode(datagram({flow_sample(1, 1, 2, {record(1003, gw.b)})}), out), DecodeStatus::bad_length);
  }
  {  // a sampled IPv4 record too short for its fields
    Collect out;
    EXPECT_EQ(decode(datagram({flow_sample(1, 1, 2, {record(3, Xdr{}.u32(1).u32(2).b)})}), out), DecodeStatus::bad_length);
  }
  {  // more records than the sample holds
    Bytes b = datagram({flow_sample(1, 1, 2, {})});
    store_be32(b.data() + kFirstSample + 8 + 28, 1);
    Collect out;
    EXPECT_EQ(decode(b, out), DecodeStatus::truncated);
  }
  {  // more samples than the datagram holds
    Bytes b = whole;
    store_be32(b.data() + 24, 3);
    Collect out;
    EXPECT_EQ(decode(b, out), DecodeStatus::truncated);
    EXPECT_TRUE(out.flows.empty());
  }
}

TEST(Sflow, BadVersionAndAddressTypes) {
  for (std::uint32_t version : {0u, 2u, 4u, 6u, 0x05000000u}) {
    Bytes b = valid_datagram();
    store_be32(b.data(), version);
    Collect out;
    EXPECT_EQ(decode(b, out), DecodeStatus::bad_version) << version;
  }
  for (std::uint32_t type : {0u, 3u, 0xffffffffu}) {
    Bytes b = valid_datagram();
    store_be32(b.data() + 4, type);
    Collect out;
    EXPECT_EQ(decode(b, out), DecodeStatus::bad_address_type) << type;
    EXPECT_TRUE(out.flows.empty());
  }
  Collect out;
  EXPECT_EQ(decode(datagram({flow_sample(1, 1, 2, {record(1002, Xdr{}.u32(7).u32(1).u32(8).u32(8).b)})}), out),
            DecodeStatus::bad_address_type);
  EXPECT_STREQ(to_string(DecodeStatus::bad_address_type), "bad_address_type");
}

// The outlet's path: sFlow envelopes reach decode_sflow through FlowBatchBuilder, rejections are
// counted under kind "sflow" with their reason.
TEST(Sflow, FlowBatchBuilderDecodesSflowEnvelopesAndCountsRejections) {
  MetricsRegistry metrics;
  const FlowSchema schema = FlowSchema::make(ClickHouseDialect::modern, {});
  pipeline::FlowDecoding decoding(metrics, schema, 0, nullptr);
  pipeline::FlowBatchBuilder builder(decoding);
  auto add = [&](const Bytes& payload) {
    Envelope env;
    env.received_ns = kReceivedNs;
    env.kind = SourceKind::sflow;
    env.source_address = ip6_from_v4(0x7f000001);
    env.payload = std::as_bytes(std::span(payload));
    std::vector<std::byte> value;
    encode_envelope(env, value);
    bus::Message m;
    m.value = value;
    builder.add(m);
  };
  const Bytes pkt = cat({eth(0x0800), ipv4(6, 0x0a000001, 0x0a000002, 0, 64), tcp(1, 2, 0)});
  add(datagram({flow_sample(100, 1, 2, {raw_header(pkt, 64)}), flow_sample(100, 1, 2, {raw_header(pkt, 64)})}));
  Bytes lying = datagram({flow_sample(100, 1, 2, {raw_header(pkt, 64)})});
  store_be32(lying.data() + 32, 9999);
  add(lying);
  EXPECT_EQ(builder.rows(), 2u);
  EXPECT_EQ(metrics.counter_total("flows_decoded_total"), 2u);
  EXPECT_EQ(metrics.counter_total("flow_packets_decoded_total"), 1u);
  EXPECT_EQ(metrics.counter_value("decode_errors_total", {{"kind", "sflow"}, {"reason", "bad_length"}}), 1u);
}

}  // namespace
}  // namespace sluice
