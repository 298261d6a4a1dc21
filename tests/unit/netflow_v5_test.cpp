#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <vector>

#include "core/bytes.hpp"
#include "core/metrics.hpp"
#include "decoders/netflow.hpp"
#include "decoders/netflow_v5.hpp"

namespace sluice {
namespace {

struct V5Header {
  std::uint16_t version = 5;
  std::uint16_t count = 0;  // 0: the number of records given
  std::uint32_t sys_uptime = 0;
  std::uint32_t unix_secs = 0;
  std::uint32_t unix_nsecs = 0;
  std::uint32_t sequence = 0;
  std::uint8_t engine_type = 0, engine_id = 0;
  std::uint16_t sampling = 0;
};

struct V5Record {
  std::uint32_t src = 0, dst = 0, nexthop = 0;
  std::uint16_t input = 0, output = 0;
  std::uint32_t packets = 0, octets = 0, first = 0, last = 0;
  std::uint16_t src_port = 0, dst_port = 0;
  std::uint8_t tcp_flags = 0, proto = 0, tos = 0;
  std::uint16_t src_as = 0, dst_as = 0;
  std::uint8_t src_mask = 0, dst_mask = 0;
};

std::vector<std::uint8_t> build(const V5Header& h, const std::vector<V5Record>& records) {
  std::vector<std::uint8_t> b(kNetflowV5HeaderSize + records.size() * kNetflowV5RecordSize, 0);
  std::uint8_t* p = b.data();
  store_be16(p, h.version);
  store_be16(p + 2, h.count ? h.count : static_cast<std::uint16_t>(records.size()));
  store_be32(p + 4, h.sys_uptime);
  store_be32(p + 8, h.unix_secs);
  store_be32(p + 12, h.unix_nsecs);
  store_be32(p + 16, h.sequence);
  p[20] = h.engine_type;
  p[21] = h.engine_id;
  store_be16(p + 22, h.sampling);
  for (std::size_t i = 0; i < records.size(); ++i) {
    const V5Record& r = records[i];
    std::uint8_t* q = p + kNetflowV5HeaderSize + i * kNetflowV5RecordSize;
    store_be32(q, r.src);
    store_be32(q + 4, r.dst);
    store_be32(q + 8, r.nexthop);
    store_be16(q + 12, r.input);
    store_be16(q + 14, r.output);
    store_be32(q + 16, r.packets);
    store_be32(q + 20, r.octets);
    store_be32(q + 24, r.first);
    store_be32(q + 28, r.last);
    store_be16(q + 32, r.src_port);
    store_be16(q + 34, r.dst_port);
    q[36] = 0xee;  // pad1: must be ignored
    q[37] = r.tcp_flags;
    q[38] = r.proto;
    q[39] = r.tos;
    store_be16(q + 40, r.src_as);
    store_be16(q + 42, r.dst_as);
    q[44] = r.src_mask;
    q[45] = r.dst_mask;
    q[46] = 0xee;  // pad2
    q[47] = 0xee;
  }
  return b;
}

class Collect : public FlowOutput {
 public:
  void emit(FlowRecord& record) override { flows.push_back(record); }
  std::vector<FlowRecord> flows;
};

constexpr std::uint64_t kReceivedNs = 1'700'000'005'900'000'000ULL;

Envelope envelope_of(const std::vector<std::uint8_t>& bytes) {
  Envelope env;
  env.received_ns = kReceivedNs;
  env.kind = SourceKind::netflow;
  env.source_address = *ip6_parse("192.0.2.9");
  env.source_port = 9995;
  env.payload = std::as_bytes(std::span(bytes));
  return env;
}

DecodeStatus decode(const std::vector<std::uint8_t>& bytes, Collect& out) {
  MetricsRegistry metrics;
  TemplateCache cache(metrics);
  FlowRecord scratch;
  return decode_netflow(envelope_of(bytes), cache, scratch, out);
}

TEST(NetflowV5, DecodesEveryFieldOfThreeRecords) {
  V5Header h;
  h.sys_uptime = 3'600'000;  // one hour after boot
  h.unix_secs = 1'700'000'000;
  h.unix_nsecs = 500'000'000;
  h.sequence = 77;
  h.sampling = 0x4000 | 100;  // mode 1, 1 in 100
  V5Record a{.src = 0x0a000001, .dst = 0xc0a80102, .nexthop = 0x0a0000fe, .input = 0x1234, .output = 0xfedc,
             .packets = 0x01020304, .octets = 0xfffffff0, .first = 3'590'000, .last = 3'599'700,
             .src_port = 443, .dst_port = 51515, .tcp_flags = 0x1b, .proto = 6, .tos = 0xb8,
             .src_as = 64512, .dst_as = 65535, .src_mask = 24, .dst_mask = 32};
  V5Record b{.src = 0xc6336401, .dst = 0x08080808, .nexthop = 0, .input = 1, .output = 2, .packets = 1,
             .octets = 76, .first = 3'600'000, .last = 3'600'000, .src_port = 5353, .dst_port = 53,
             .tcp_flags = 0, .proto = 17, .tos = 0, .src_as = 0, .dst_as = 15169, .src_mask = 16, .dst_mask = 0};
  V5Record c{.src = 0xac100005, .dst = 0xac100006, .nexthop = 0xac1000fe, .input = 7, .output = 8, .packets = 3,
             .octets = 252, .first = 0, .last = 1'234, .src_port = 0, .dst_port = 0x0800, .tcp_flags = 0,
             .proto = 1, .tos = 0x10, .src_as = 1, .dst_as = 2, .src_mask = 12, .dst_mask = 12};
  Collect out;
  ASSERT_EQ(decode(build(h, {a, b, c}), out), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 3u);

  const FlowRecord& f = out.flows[0];
  EXPECT_EQ(f.time_received, 1'700'000'005u);
  // Export time 1700000000.500; First was 10 s and Last 0.3 s before the export.
  EXPECT_EQ(f.time_flow_start, 1'699'999'990u);
  EXPECT_EQ(f.time_flow_end, 1'700'000'000u);
  EXPECT_EQ(f.sampling_rate, 100u);
  EXPECT_EQ(ip6_to_string(f.exporter_address), "192.0.2.9");
  EXPECT_EQ(ip6_to_string(f.src_addr), "10.0.0.1");
  EXPECT_TRUE(ip6_is_v4_mapped(f.src_addr));
  EXPECT_EQ(ip6_to_string(f.dst_addr), "192.168.1.2");
  EXPECT_EQ(ip6_to_string(f.next_hop), "10.0.0.254");
  EXPECT_EQ(f.in_if, 0x1234u);
  EXPECT_EQ(f.out_if, 0xfedcu);
  EXPECT_EQ(f.packets, 0x01020304u);
  EXPECT_EQ(f.bytes, 0xfffffff0u);  // raw, not multiplied by the sampling rate
  EXPECT_EQ(f.src_port, 443);
  EXPECT_EQ(f.dst_port, 51515);
  EXPECT_EQ(f.tcp_flags, 0x1b);
  EXPECT_EQ(f.proto, 6u);
  EXPECT_EQ(f.ip_tos, 0xb8);
  EXPECT_EQ(f.src_as, 64512u);
  EXPECT_EQ(f.dst_as, 65535u);
  EXPECT_EQ(f.src_net_mask, 24);
  EXPECT_EQ(f.dst_net_mask, 32);
  EXPECT_EQ(f.etype, 0x0800u);

  const FlowRecord& g = out.flows[1];
  EXPECT_EQ(g.time_flow_start, 1'700'000'000u);  // switched at the export instant
  EXPECT_EQ(g.time_flow_end, 1'700'000'000u);
  EXPECT_EQ(ip6_to_string(g.src_addr), "198.51.100.1");
  EXPECT_EQ(ip6_to_string(g.dst_addr), "8.8.8.8");
  EXPECT_EQ(ip6_to_string(g.next_hop), "0.0.0.0");
  EXPECT_EQ(g.in_if, 1u);
  EXPECT_EQ(g.out_if, 2u);
  EXPECT_EQ(g.packets, 1u);
  EXPECT_EQ(g.bytes, 76u);
  EXPECT_EQ(g.src_port, 5353);
  EXPECT_EQ(g.dst_port, 53);
  EXPECT_EQ(g.proto, 17u);
  EXPECT_EQ(g.src_as, 0u);
  EXPECT_EQ(g.dst_as, 15169u);
  EXPECT_EQ(g.src_net_mask, 16);
  EXPECT_EQ(g.dst_net_mask, 0);
  EXPECT_EQ(g.sampling_rate, 100u);

  const FlowRecord& k = out.flows[2];
  // First = 0 ms: at boot, one hour before 1700000000.500.
  EXPECT_EQ(k.time_flow_start, 1'699'996'400u);
  EXPECT_EQ(k.time_flow_end, 1'699'996'401u);  // boot + 1.234 s = ...401.734
  EXPECT_EQ(k.proto, 1u);
  EXPECT_EQ(k.dst_port, 0x0800);  // ICMP type/code as softflowd exports them
  EXPECT_EQ(k.ip_tos, 0x10);
  EXPECT_EQ(k.src_as, 1u);
  EXPECT_EQ(k.dst_as, 2u);
  EXPECT_EQ(ip6_to_string(k.next_hop), "172.16.0.254");
}

TEST(NetflowV5, TimestampsSurviveSysUptimeWrap) {
  V5Header h;
  h.sys_uptime = 1'000;  // the 32-bit millisecond counter wrapped one second ago
  h.unix_secs = 1'700'000'000;
  h.unix_nsecs = 0;
  V5Record r{.src = 1, .dst = 2, .packets = 1, .octets = 40,
             .first = 0xffffffffu - 8'999,  // 10 s before the export, before the wrap
             .last = 500};                   // 0.5 s before the export, after the wrap
  V5Record future{.src = 1, .dst = 2, .packets = 1, .octets = 40, .first = 1'000, .last = 3'000};
  Collect out;
  ASSERT_EQ(decode(build(h, {r, future}), out), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 2u);
  EXPECT_EQ(out.flows[0].time_flow_start, 1'699'999'990u);
  EXPECT_EQ(out.flows[0].time_flow_end, 1'699'999'999u);
  // Last 2 s after sysUptime (exporter clock skew) lands 2 s after the export, not 49 days before.
  EXPECT_EQ(out.flows[1].time_flow_start, 1'700'000'000u);
  EXPECT_EQ(out.flows[1].time_flow_end, 1'700'000'002u);
}

TEST(NetflowV5, SamplingIntervalIgnoresModeBitsAndZeroMeansUnsampled) {
  V5Record r{.src = 1, .dst = 2, .packets = 5, .octets = 500};
  struct Case {
    std::uint16_t field;
    std::uint64_t rate;
  };
  for (const Case& c : {Case{0x0000, 1}, Case{0x4000, 1}, Case{0x8000 | 1000, 1000}, Case{0xc000 | 0x3fff, 16383},
                        Case{0x3fff, 16383}, Case{0x0001, 1}, Case{0x4000 | 512, 512}}) {
    V5Header h;
    h.sampling = c.field;
    Collect out;
    ASSERT_EQ(decode(build(h, {r}), out), DecodeStatus::ok);
    ASSERT_EQ(out.flows.size(), 1u);
    EXPECT_EQ(out.flows[0].sampling_rate, c.rate) << "sampling field 0x" << std::hex << c.field;
    EXPECT_EQ(out.flows[0].packets, 5u);
    EXPECT_EQ(out.flows[0].bytes, 500u);
  }
}

TEST(NetflowV5, ThirtyRecordsIsTheMaximum) {
  std::vector<V5Record> records(30);
  for (std::size_t i = 0; i < records.size(); ++i) records[i].octets = static_cast<std::uint32_t>(i + 1);
  Collect out;
  ASSERT_EQ(decode(build({}, records), out), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 30u);
  EXPECT_EQ(out.flows[29].bytes, 30u);
}

TEST(NetflowV5, ExtraTrailingBytesAreIgnored) {
  auto bytes = build({}, {V5Record{.octets = 9}});
  bytes.resize(bytes.size() + 7, 0xaa);
  Collect out;
  ASSERT_EQ(decode(bytes, out), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 1u);
  EXPECT_EQ(out.flows[0].bytes, 9u);
}

TEST(NetflowV5, RejectsTruncatedDatagrams) {
  const auto full = build({}, {V5Record{}, V5Record{}});
  for (std::size_t len : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{23}, std::size_t{24},
                          std::size_t{24 + 48}, full.size() - 1}) {
    std::vector<std::uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    Collect out;
    EXPECT_EQ(decode(cut, out), DecodeStatus::truncated) << "length " << len;
    EXPECT_TRUE(out.flows.empty()) << "length " << len;
  }
}

TEST(NetflowV5, RejectsACountThatLiesAboutTheRecords) {
  V5Header h;
  h.count = 5;  // only two records follow
  Collect out;
  EXPECT_EQ(decode(build(h, {V5Record{}, V5Record{}}), out), DecodeStatus::truncated);
  EXPECT_TRUE(out.flows.empty());
}

TEST(NetflowV5, RejectsCountZeroAndAboveThirty) {
  {
    auto bytes = build({}, {V5Record{}});
    store_be16(bytes.data() + 2, 0);
    Collect out;
    EXPECT_EQ(decode(bytes, out), DecodeStatus::bad_count);
    EXPECT_TRUE(out.flows.empty());
  }
  {
    V5Header h;
    h.count = 31;
    Collect out;
    EXPECT_EQ(decode(build(h, std::vector<V5Record>(31)), out), DecodeStatus::bad_count);
    EXPECT_TRUE(out.flows.empty());
  }
}

TEST(NetflowV5, DispatchRejectsUnknownVersionsAndRoutesV9AndIpfix) {
  for (std::uint16_t version : {0, 1, 4, 6, 7, 8, 11, 0xffff}) {
    V5Header h;
    h.version = version;
    Collect out;
    EXPECT_EQ(decode(build(h, {V5Record{}}), out), DecodeStatus::bad_version) << "version " << version;
    EXPECT_TRUE(out.flows.empty());
  }
  for (std::uint16_t version : {9, 10}) {
    V5Header h;
    h.version = version;
    Collect out;
    // 9 and 10 go to their own decoders, which find no valid v9/IPFIX structure in a v5 datagram.
    const auto status = decode(build(h, {V5Record{}}), out);
    EXPECT_NE(status, DecodeStatus::ok) << "version " << version;
    EXPECT_NE(status, DecodeStatus::unsupported_version) << "version " << version;
    EXPECT_TRUE(out.flows.empty());
  }
  // Calling the v5 decoder directly with another version is refused too.
  V5Header h;
  h.version = 9;
  Collect out;
  FlowRecord scratch;
  const auto bytes = build(h, {V5Record{}});
  EXPECT_EQ(decode_netflow_v5(envelope_of(bytes), scratch, out), DecodeStatus::bad_version);
}

TEST(NetflowV5, StatusLabelsAreShort) {
  EXPECT_STREQ(to_string(DecodeStatus::ok), "ok");
  EXPECT_STREQ(to_string(DecodeStatus::truncated), "truncated");
  EXPECT_STREQ(to_string(DecodeStatus::bad_version), "bad_version");
  EXPECT_STREQ(to_string(DecodeStatus::unsupported_version), "unsupported_version");
  EXPECT_STREQ(to_string(DecodeStatus::bad_count), "bad_count");
}

TEST(NetflowV5, ScratchIsResetBetweenRecords) {
  Collect out;
  FlowRecord scratch;
  scratch.src_vlan = 42;  // left over from enrichment of an earlier flow
  scratch.exporter_name = "stale";
  const auto bytes = build({}, {V5Record{.octets = 1}});
  MetricsRegistry metrics;
  TemplateCache cache(metrics);
  ASSERT_EQ(decode_netflow(envelope_of(bytes), cache, scratch, out), DecodeStatus::ok);
  ASSERT_EQ(out.flows.size(), 1u);
  EXPECT_EQ(out.flows[0].src_vlan, 0);
  EXPECT_TRUE(out.flows[0].exporter_name.empty());
}

}  // namespace
}  // namespace sluice
