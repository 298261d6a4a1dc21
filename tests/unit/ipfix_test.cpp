// IPFIX decoder: hand-built messages per RFC 7011, decoded field by field.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/metrics.hpp"
#include "decoders/ipfix.hpp"
#include "decoders/netflow.hpp"
#include "flow_packet_builder.hpp"

namespace sluice {
namespace {

using testing::CollectFlows;
using testing::envelope_of;
using testing::PacketBuilder;

constexpr std::uint32_t kSecs = 1'700'000'000;
constexpr std::uint64_t kNtpOffset = 2'208'988'800ULL;

struct IpfixFixture : ::testing::Test {
  MetricsRegistry metrics;
  TemplateCache cache{metrics};
  FlowRecord scratch;
  CollectFlows out;

  DecodeStatus decode(std::vector<std::uint8_t>& bytes, const std::string& exporter = "2001:db8::9") {
    return decode_netflow(envelope_of(bytes, exporter), cache, scratch, out);
  }
};

using Ipfix = IpfixFixture;

TEST_F(Ipfix, EveryTimestampVariantAndAddressFamily) {
  PacketBuilder p;
  p.ipfix_header(kSecs, 42);
  p.begin_set(2);
  // 256: IPv4 with absolute milliseconds; 257: IPv6 with absolute seconds; 258: microseconds (NTP);
  // 259: deltas from the export time; 260: sysUpTime with systemInitTimeMilliseconds in the record.
  p.u16(256).u16(9).u16(8).u16(4).u16(12).u16(4).u16(7).u16(2).u16(11).u16(2).u16(4).u16(1).u16(1).u16(8)
      .u16(2).u16(8).u16(152).u16(8).u16(153).u16(8);
  p.u16(257).u16(6).u16(27).u16(16).u16(28).u16(16).u16(150).u16(4).u16(151).u16(4).u16(85).u16(8).u16(86).u16(8);
  p.u16(258).u16(2).u16(154).u16(8).u16(155).u16(8);
  p.u16(259).u16(2).u16(158).u16(4).u16(159).u16(4);
  p.u16(260).u16(3).u16(160).u16(8).u16(22).u16(4).u16(21).u16(4);
  p.end_set();
  p.begin_set(256).ip("192.0.2.1").ip("198.51.100.2").u16(5353).u16(53).u8(17).u64(1234).u64(5)
      .u64(std::uint64_t{kSecs - 30} * 1000 + 999).u64(std::uint64_t{kSecs - 1} * 1000).end_set();
  p.begin_set(257).ip("2001:db8::1").ip("2001:db8::2").u32(kSecs - 60).u32(kSecs - 50).u64(4321).u64(7).end_set();
  p.begin_set(258).u64(((kSecs - 20 + kNtpOffset) << 32) | 0x80000000u).u64((kSecs - 10 + kNtpOffset) << 32).end_set();
  p.begin_set(259).u32(7'500'000).u32(2'000'000).end_set();
  p.begin_set(260).u64(std::uint64_t{kSecs - 3600} * 1000).u32(3'000'000).u32(3'590'000).end_set();
  p.finish_ipfix();
  ASSERT_EQ(decode(p.bytes()), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 5u);
  const FlowRecord& a = out.flows[0];
  EXPECT_EQ(ip6_to_string(a.src_addr), "192.0.2.1");
  EXPECT_EQ(ip6_to_string(a.dst_addr), "198.51.100.2");
  EXPECT_EQ(a.src_port, 5353);
  EXPECT_EQ(a.dst_port, 53);
  EXPECT_EQ(a.proto, 17u);
  EXPECT_EQ(a.bytes, 1234u);
  EXPECT_EQ(a.packets, 5u);
  EXPECT_EQ(a.time_flow_start, kSecs - 30);
  EXPECT_EQ(a.time_flow_end, kSecs - 1);
  EXPECT_EQ(a.etype, 0x0800u);
  EXPECT_EQ(ip6_to_string(a.exporter_address), "2001:db8::9");
  const FlowRecord& b = out.flows[1];
  EXPECT_EQ(ip6_to_string(b.src_addr), "2001:db8::1");
  EXPECT_EQ(b.bytes, 4321u);  // total counters stand in for delta ones
  EXPECT_EQ(b.packets, 7u);
  EXPECT_EQ(b.time_flow_start, kSecs - 60);
  EXPECT_EQ(b.time_flow_end, kSecs - 50);
  EXPECT_EQ(b.etype, 0x86ddu);
  EXPECT_EQ(out.flows[2].time_flow_start, kSecs - 20);
  EXPECT_EQ(out.flows[2].time_flow_end, kSecs - 10);
  EXPECT_EQ(out.flows[3].time_flow_start, kSecs - 8);  // 7.5 s before the export
  EXPECT_EQ(out.flows[3].time_flow_end, kSecs - 2);
  EXPECT_EQ(out.flows[4].time_flow_start, kSecs - 600);
  EXPECT_EQ(out.flows[4].time_flow_end, kSecs - 10);
}

TEST_F(Ipfix, VariableLengthAndEnterpriseFieldsNeverMisalign) {
  PacketBuilder p;
  p.ipfix_header(kSecs, 1);
  // bytes, a variable-length IANA string (interfaceName 82), an enterprise field of 4 bytes that
  // reuses IANA number 1, a variable-length enterprise field, packets.
  p.begin_set(2).u16(300).u16(5).u16(1).u16(4).u16(82).u16(0xffff).u16(0x8001).u16(4).u32(9).u16(0x8000 | 2).u16(0xffff)
      .u32(2636).u16(2).u16(4).end_set();
  p.begin_set(300);
  p.u32(111).u8(4).raw("eth0").u32(0xffffffff).u8(0).u32(1);      // 1-byte lengths, one empty
  p.u32(222).u8(255).u16(300).zeros(300).u32(0xeeeeeeee).u8(255).u16(2).raw("ab").u32(2);  // 3-byte lengths
  p.zeros(3);  // padding shorter than a record
  p.end_set();
  p.finish_ipfix();
  ASSERT_EQ(decode(p.bytes()), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 2u);
  EXPECT_EQ(out.flows[0].bytes, 111u);
  EXPECT_EQ(out.flows[0].packets, 1u);
  EXPECT_EQ(out.flows[1].bytes, 222u);
  EXPECT_EQ(out.flows[1].packets, 2u);
}

TEST_F(Ipfix, VariableLengthRunningPastTheSetIsBadLength) {
  PacketBuilder p;
  p.ipfix_header(kSecs, 1);
  p.begin_set(2).u16(300).u16(2).u16(1).u16(4).u16(82).u16(0xffff).end_set();
  p.begin_set(300).u32(1).u8(2).raw("ok").u32(2).u8(255).u16(40).raw("short").end_set();
  p.finish_ipfix();
  EXPECT_EQ(decode(p.bytes()), DecodeStatus::bad_length);
  ASSERT_EQ(out.flows.size(), 1u);  // the record before the lie
  EXPECT_EQ(out.flows[0].bytes, 1u);
}

TEST_F(Ipfix, WithdrawalsRemoveTemplatesAndLaterDataWaits) {
  PacketBuilder t;
  t.ipfix_header(kSecs, 1).begin_set(2).u16(256).u16(1).u16(1).u16(4).u16(257).u16(1).u16(2).u16(4).end_set();
  t.begin_set(3).u16(258).u16(2).u16(1).u16(302).u16(4).u16(305).u16(4).end_set().finish_ipfix();
  ASSERT_EQ(decode(t.bytes()), DecodeStatus::ok);
  EXPECT_EQ(cache.template_count(), 3u);

  PacketBuilder w;  // withdraw 256 only
  w.ipfix_header(kSecs, 1).begin_set(2).u16(256).u16(0).end_set().finish_ipfix();
  ASSERT_EQ(decode(w.bytes()), DecodeStatus::ok);
  EXPECT_EQ(cache.template_count(), 2u);
  PacketBuilder d;
  d.ipfix_header(kSecs, 1).begin_set(256).u32(5).end_set().begin_set(257).u32(6).end_set().finish_ipfix();
  ASSERT_EQ(decode(d.bytes()), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 1u);
  EXPECT_EQ(out.flows[0].packets, 6u);
  EXPECT_EQ(cache.pending_sets(), 1u);

  PacketBuilder all;  // withdraw every (non-options) template of the domain: id 2, count 0
  all.ipfix_header(kSecs, 1).begin_set(2).u16(2).u16(0).end_set().finish_ipfix();
  ASSERT_EQ(decode(all.bytes()), DecodeStatus::ok);
  EXPECT_EQ(cache.template_count(), 1u);  // the options template stays
  PacketBuilder all_opts;
  all_opts.ipfix_header(kSecs, 1).begin_set(3).u16(3).u16(0).end_set().finish_ipfix();
  ASSERT_EQ(decode(all_opts.bytes()), DecodeStatus::ok);
  EXPECT_EQ(cache.template_count(), 0u);
  EXPECT_EQ(metrics.counter_total("flow_templates_withdrawn_total"), 3u);

  // The template comes back: the held set of 256 is decoded.
  PacketBuilder again;
  again.ipfix_header(kSecs, 1).begin_set(2).u16(256).u16(1).u16(1).u16(4).end_set().finish_ipfix();
  ASSERT_EQ(decode(again.bytes()), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 2u);
  EXPECT_EQ(out.flows[1].bytes, 5u);
}

TEST_F(Ipfix, SelectorOptionsGiveRatesAndDomainsStayApart) {
  PacketBuilder p;
  p.ipfix_header(kSecs, 7);
  // Options template: scope selectorId (302); samplingPacketInterval (305), samplingPacketSpace (306).
  p.begin_set(3).u16(400).u16(3).u16(1).u16(302).u16(8).u16(305).u16(4).u16(306).u16(4).zeros(2).end_set();
  // Options template: scope observationDomainId (149); samplingSize (309), samplingPopulation (310).
  p.begin_set(3).u16(401).u16(3).u16(1).u16(149).u16(4).u16(309).u16(4).u16(310).u16(4).end_set();
  p.begin_set(400).u64(1).u32(1).u32(99).u64(2).u32(2).u32(2).end_set();
  p.begin_set(401).u32(7).u32(1).u32(512).end_set();
  p.begin_set(2).u16(256).u16(3).u16(1).u16(4).u16(302).u16(8).u16(34).u16(4).end_set();
  p.begin_set(256).u32(1).u64(1).u32(0).u32(2).u64(2).u32(0).u32(3).u64(9).u32(0).u32(4).u64(1).u32(10).end_set();
  p.finish_ipfix();
  ASSERT_EQ(decode(p.bytes()), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 4u);
  EXPECT_EQ(out.flows[0].sampling_rate, 100u);  // (1 + 99) / 1
  EXPECT_EQ(out.flows[1].sampling_rate, 2u);    // (2 + 2) / 2
  EXPECT_EQ(out.flows[2].sampling_rate, 512u);  // unknown selector: the domain's 512/1
  EXPECT_EQ(out.flows[3].sampling_rate, 10u);   // the record's own samplingInterval wins

  // Domain 8 of the same exporter has no template 256; domain 7's data decodes again.
  PacketBuilder other;
  other.ipfix_header(kSecs, 8).begin_set(256).u32(1).u64(1).u32(0).end_set().finish_ipfix();
  ASSERT_EQ(decode(other.bytes()), DecodeStatus::ok);
  EXPECT_EQ(out.flows.size(), 4u);
  EXPECT_EQ(cache.pending_sets(), 1u);
}

TEST_F(Ipfix, SystemInitTimeFromOptionsPlacesSysUpTimes) {
  PacketBuilder p;
  p.ipfix_header(kSecs, 1);
  p.begin_set(3).u16(500).u16(2).u16(1).u16(149).u16(4).u16(160).u16(8).end_set();
  p.begin_set(500).u32(1).u64(std::uint64_t{kSecs - 100} * 1000).end_set();
  p.begin_set(2).u16(256).u16(2).u16(22).u16(4).u16(21).u16(4).end_set();
  p.begin_set(256).u32(10'000).u32(90'500).end_set();
  p.finish_ipfix();
  ASSERT_EQ(decode(p.bytes()), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 1u);
  EXPECT_EQ(out.flows[0].time_flow_start, kSecs - 90);
  EXPECT_EQ(out.flows[0].time_flow_end, kSecs - 10);
}

TEST_F(Ipfix, MessageAndSetLengthsAreChecked) {
  auto base = [] {
    PacketBuilder p;
    p.ipfix_header(kSecs, 1).begin_set(2).u16(256).u16(1).u16(1).u16(4).end_set();
    p.begin_set(256).u32(9).end_set();
    return p;
  };
  {
    auto p = base();
    p.finish_ipfix();
    p.bytes().pop_back();  // message length says one byte more than arrived
    EXPECT_EQ(decode(p.bytes()), DecodeStatus::truncated);
  }
  {
    auto p = base();
    p.finish_ipfix();
    p.zeros(5);  // bytes after the message are not part of it
    EXPECT_EQ(decode(p.bytes()), DecodeStatus::ok);
    EXPECT_EQ(out.flows.size(), 1u);
  }
  {
    auto p = base();
    p.finish_ipfix();
    store_be16(p.bytes().data() + 2, 8);  // message length below the header
    EXPECT_EQ(decode(p.bytes()), DecodeStatus::bad_length);
  }
  {
    auto p = base();
    p.finish_ipfix();
    store_be16(p.bytes().data() + 18, 200);  // template set length past the message
    EXPECT_EQ(decode(p.bytes()), DecodeStatus::bad_length);
  }
  {
    auto p = base();
    p.u8(0).finish_ipfix();  // a stray byte after the last set: sets must fill the message
    EXPECT_EQ(decode(p.bytes()), DecodeStatus::bad_length);
    EXPECT_EQ(out.flows.size(), 2u);  // sets go in order: the data set before the stray byte was emitted
  }
  {
    PacketBuilder p;  // enterprise bit without room for the enterprise number
    p.ipfix_header(kSecs, 1).begin_set(2).u16(256).u16(1).u16(0x8001).u16(4).end_set().finish_ipfix();
    EXPECT_EQ(decode(p.bytes()), DecodeStatus::bad_length);
  }
  {
    PacketBuilder p;  // options template with no scope field
    p.ipfix_header(kSecs, 1).begin_set(3).u16(256).u16(1).u16(0).u16(34).u16(4).end_set().finish_ipfix();
    EXPECT_EQ(decode(p.bytes()), DecodeStatus::bad_template);
  }
  {
    PacketBuilder p;
    p.ipfix_header(kSecs, 1);
    p.bytes().resize(15);
    EXPECT_EQ(decode(p.bytes()), DecodeStatus::truncated);
  }
  EXPECT_EQ(out.flows.size(), 2u);
}

}  // namespace
}  // namespace sluice
