// FlowBatch must produce exactly the Native bytes of a plain, value-by-value encoder: the fast
// append path (columns grouped by kind, raw-pointer writes) is checked against one written here.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/flow_batch.hpp"

namespace sluice {
namespace {

using Bytes = std::string;

void varint(Bytes& out, std::uint64_t v) {
  do {
    std::uint8_t b = v & 0x7f;
    v >>= 7;
    if (v) b |= 0x80;
    out.push_back(static_cast<char>(b));
  } while (v);
}
template <typename T>
Bytes le(T v) {
  Bytes b(sizeof v, '\0');
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}
Bytes str(std::string_view s) {
  Bytes b;
  varint(b, s.size());
  b += s;
  return b;
}
Bytes raw(const void* p, std::size_t n) { return Bytes(static_cast<const char*>(p), n); }

// A column as the reference encoder sees it: a scalar value per row, or array elements per row.
struct RefColumn {
  std::function<Bytes(const FlowRecord&)> scalar;
  std::function<std::vector<std::uint32_t>(const FlowRecord&)> elements;
};
RefColumn S(std::function<Bytes(const FlowRecord&)> f) { return {std::move(f), {}}; }
RefColumn A(std::function<std::vector<std::uint32_t>(const FlowRecord&)> f) { return {{}, std::move(f)}; }

const std::map<std::string, RefColumn>& reference_columns() {
  using R = const FlowRecord&;
  static const std::map<std::string, RefColumn> m = {
      {"TimeReceived", S([](R r) { return le<std::uint32_t>(r.time_received); })},
      {"TimeFlowStart", S([](R r) { return le<std::uint32_t>(r.time_flow_start); })},
      {"TimeFlowEnd", S([](R r) { return le<std::uint32_t>(r.time_flow_end); })},
      {"SamplingRate", S([](R r) { return le<std::uint64_t>(r.sampling_rate); })},
      {"ExporterAddress", S([](R r) { return raw(r.exporter_address.data(), 16); })},
      {"ExporterName", S([](R r) { return str(r.exporter_name); })},
      {"ExporterGroup", S([](R r) { return str(r.exporter_group); })},
      {"ExporterRole", S([](R r) { return str(r.exporter_role); })},
      {"ExporterSite", S([](R r) { return str(r.exporter_site); })},
      {"ExporterRegion", S([](R r) { return str(r.exporter_region); })},
      {"ExporterTenant", S([](R r) { return str(r.exporter_tenant); })},
      {"SrcAddr", S([](R r) { return raw(r.src_addr.data(), 16); })},
      {"DstAddr", S([](R r) { return raw(r.dst_addr.data(), 16); })},
      {"SrcNetMask", S([](R r) { return le<std::uint8_t>(r.src_net_mask); })},
      {"DstNetMask", S([](R r) { return le<std::uint8_t>(r.dst_net_mask); })},
      {"SrcAS", S([](R r) { return le<std::uint32_t>(r.src_as); })},
      {"DstAS", S([](R r) { return le<std::uint32_t>(r.dst_as); })},
      {"SrcNetName", S([](R r) { return str(r.src_net_name); })},
      {"DstNetName", S([](R r) { return str(r.dst_net_name); })},
      {"SrcNetRole", S([](R r) { return str(r.src_net_role); })},
      {"DstNetRole", S([](R r) { return str(r.dst_net_role); })},
      {"SrcNetSite", S([](R r) { return str(r.src_net_site); })},
      {"DstNetSite", S([](R r) { return str(r.dst_net_site); })},
      {"SrcNetRegion", S([](R r) { return str(r.src_net_region); })},
      {"DstNetRegion", S([](R r) { return str(r.dst_net_region); })},
      {"SrcNetTenant", S([](R r) { return str(r.src_net_tenant); })},
      {"DstNetTenant", S([](R r) { return str(r.dst_net_tenant); })},
      {"SrcCountry", S([](R r) { return raw(r.src_country, 2); })},
      {"DstCountry", S([](R r) { return raw(r.dst_country, 2); })},
      {"DstASPath", A([](R r) { return std::vector<std::uint32_t>(r.dst_as_path, r.dst_as_path + r.dst_as_path_len); })},
      {"DstCommunities",
       A([](R r) { return std::vector<std::uint32_t>(r.dst_communities, r.dst_communities + r.dst_communities_len); })},
      {"DstLargeCommunities", A([](R) { return std::vector<std::uint32_t>{}; })},
      {"InIf", S([](R r) { return le<std::uint32_t>(r.in_if); })},
      {"OutIf", S([](R r) { return le<std::uint32_t>(r.out_if); })},
      {"InIfName", S([](R r) { return str(r.in_if_name); })},
      {"OutIfName", S([](R r) { return str(r.out_if_name); })},
      {"InIfDescription", S([](R r) { return str(r.in_if_description); })},
      {"OutIfDescription", S([](R r) { return str(r.out_if_description); })},
      {"InIfSpeed", S([](R r) { return le<std::uint32_t>(r.in_if_speed); })},
      {"OutIfSpeed", S([](R r) { return le<std::uint32_t>(r.out_if_speed); })},
      {"InIfConnectivity", S([](R r) { return str(r.in_if_connectivity); })},
      {"OutIfConnectivity", S([](R r) { return str(r.out_if_connectivity); })},
      {"InIfProvider", S([](R r) { return str(r.in_if_provider); })},
      {"OutIfProvider", S([](R r) { return str(r.out_if_provider); })},
      {"InIfBoundary", S([](R r) { return le<std::int8_t>(static_cast<std::int8_t>(r.in_if_boundary)); })},
      {"OutIfBoundary", S([](R r) { return le<std::int8_t>(static_cast<std::int8_t>(r.out_if_boundary)); })},
      {"EType", S([](R r) { return le<std::uint32_t>(r.etype); })},
      {"Proto", S([](R r) { return le<std::uint32_t>(r.proto); })},
      {"SrcPort", S([](R r) { return le<std::uint16_t>(r.src_port); })},
      {"DstPort", S([](R r) { return le<std::uint16_t>(r.dst_port); })},
      {"Bytes", S([](R r) { return le<std::uint64_t>(r.bytes); })},
      {"Packets", S([](R r) { return le<std::uint64_t>(r.packets); })},
      {"ForwardingStatus", S([](R r) { return le<std::uint32_t>(r.forwarding_status); })},
      {"FlowDirection", S([](R r) { return le<std::int8_t>(static_cast<std::int8_t>(r.flow_direction)); })},
      {"NextHop", S([](R r) { return raw(r.next_hop.data(), 16); })},
      {"TCPFlags", S([](R r) { return le<std::uint8_t>(r.tcp_flags); })},
      {"IPTos", S([](R r) { return le<std::uint8_t>(r.ip_tos); })},
      {"IPTTL", S([](R r) { return le<std::uint8_t>(r.ip_ttl); })},
      {"SrcVlan", S([](R r) { return le<std::uint16_t>(r.src_vlan); })},
      {"DstVlan", S([](R r) { return le<std::uint16_t>(r.dst_vlan); })},
      {"SrcMAC", S([](R r) { return le<std::uint64_t>(r.src_mac); })},
      {"DstMAC", S([](R r) { return le<std::uint64_t>(r.dst_mac); })},
      {"ICMPType", S([](R r) { return le<std::uint8_t>(r.icmp_type); })},
      {"ICMPCode", S([](R r) { return le<std::uint8_t>(r.icmp_code); })},
      {"IPv6FlowLabel", S([](R r) { return le<std::uint32_t>(r.ipv6_flow_label); })},
      {"MPLSLabels", A([](R r) { return std::vector<std::uint32_t>(r.mpls_labels, r.mpls_labels + r.mpls_labels_len); })},
      {"SrcAddrNAT", S([](R r) { return raw(r.src_addr_nat.data(), 16); })},
      {"DstAddrNAT", S([](R r) { return raw(r.dst_addr_nat.data(), 16); })},
      {"SrcPortNAT", S([](R r) { return le<std::uint16_t>(r.src_port_nat); })},
      {"DstPortNAT", S([](R r) { return le<std::uint16_t>(r.dst_port_nat); })},
  };
  return m;
}

// The block as ClickHouse's Native format defines it, column after column, value after value.
// `data_bytes` gets the size of the values alone (what FlowBatch::bytes() reports).
Bytes reference_native(const FlowSchema& schema, const std::vector<FlowRecord>& rows, std::size_t& data_bytes) {
  Bytes out;
  varint(out, schema.columns.size());
  varint(out, rows.size());
  data_bytes = 0;
  for (const auto* c : schema.columns) {
    const auto it = reference_columns().find(c->name);
    if (it == reference_columns().end()) {
      ADD_FAILURE() << "the reference encoder does not know column " << c->name;
      return {};
    }
    out += str(c->name);
    out += str(schema.wire_type(*c));
    Bytes values;
    if (it->second.scalar) {
      for (const auto& r : rows) values += it->second.scalar(r);
    } else {
      std::uint64_t total = 0;
      for (const auto& r : rows) {
        const auto elements = it->second.elements(r);
        total += elements.size();
        out += le<std::uint64_t>(total);
        data_bytes += 8;
        for (auto e : elements) values += le<std::uint32_t>(e);
      }
    }
    data_bytes += values.size();
    out += values;
  }
  return out;
}

// Records with every field set to varied values: empty, short and long strings (one-, two- and
// three-byte length varints), arrays from empty to full, all enum values.
class RecordMaker {
 public:
  FlowRecord next() {
    FlowRecord r;
    r.time_received = u32();
    r.time_flow_start = u32();
    r.time_flow_end = u32();
    r.sampling_rate = u64();
    ip(r.exporter_address);
    for (auto* s : {&r.exporter_name, &r.exporter_group, &r.exporter_role, &r.exporter_site, &r.exporter_region,
                    &r.exporter_tenant, &r.src_net_name, &r.src_net_role, &r.src_net_site, &r.src_net_region,
                    &r.src_net_tenant, &r.dst_net_name, &r.dst_net_role, &r.dst_net_site, &r.dst_net_region,
                    &r.dst_net_tenant, &r.in_if_name, &r.in_if_description, &r.in_if_connectivity,
                    &r.in_if_provider, &r.out_if_name, &r.out_if_description, &r.out_if_connectivity,
                    &r.out_if_provider}) {
      *s = string();
    }
    ip(r.src_addr), ip(r.dst_addr), ip(r.next_hop), ip(r.src_addr_nat), ip(r.dst_addr_nat);
    r.src_net_mask = u8(), r.dst_net_mask = u8();
    r.src_as = u32(), r.dst_as = u32();
    r.src_country[0] = static_cast<char>('A' + rng_() % 26), r.src_country[1] = static_cast<char>(u8());
    r.dst_country[0] = static_cast<char>(u8()), r.dst_country[1] = static_cast<char>('A' + rng_() % 26);
    r.in_if = u32(), r.out_if = u32(), r.in_if_speed = u32(), r.out_if_speed = u32();
    r.in_if_boundary = static_cast<Boundary>(rng_() % 3);
    r.out_if_boundary = static_cast<Boundary>(rng_() % 3);
    r.etype = rng_() % 2 ? 0x0800 : 0x86dd;
    r.proto = u8();
    r.src_port = u16(), r.dst_port = u16();
    r.bytes = u64(), r.packets = u64() >> 20;
    r.forwarding_status = u32();
    r.flow_direction = static_cast<FlowDirection>(rng_() % 3);
    r.dst_as_path_len = static_cast<std::uint8_t>(rng_() % (FlowRecord::kMaxAsPath + 1));
    for (std::size_t i = 0; i < r.dst_as_path_len; ++i) r.dst_as_path[i] = u32();
    r.dst_communities_len = static_cast<std::uint8_t>(rng_() % (FlowRecord::kMaxCommunities + 1));
    for (std::size_t i = 0; i < r.dst_communities_len; ++i) r.dst_communities[i] = u32();
    r.mpls_labels_len = static_cast<std::uint8_t>(rng_() % (FlowRecord::kMaxMplsLabels + 1));
    for (std::size_t i = 0; i < r.mpls_labels_len; ++i) r.mpls_labels[i] = u32() & 0xfffff;
    r.tcp_flags = u8(), r.ip_tos = u8(), r.ip_ttl = u8();
    r.src_vlan = u16(), r.dst_vlan = u16();
    r.src_mac = u64() >> 16, r.dst_mac = u64() >> 16;
    r.icmp_type = u8(), r.icmp_code = u8();
    r.ipv6_flow_label = u32() & 0xfffff;
    r.src_port_nat = u16(), r.dst_port_nat = u16();
    return r;
  }

 private:
  std::uint8_t u8() { return static_cast<std::uint8_t>(rng_()); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(rng_()); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(rng_()); }
  std::uint64_t u64() { return rng_(); }
  void ip(Ip6& a) {
    for (auto& b : a) b = u8();
  }
  std::string_view string() {
    if (rng_() % 64 == 0) return std::string_view(long_).substr(0, 16383 + rng_() % 3);  // two- and three-byte varint
    switch (rng_() % 8) {
      case 0: return {};
      case 1: return std::string_view(long_).substr(0, 1 + rng_() % 126);
      case 2: return std::string_view(long_).substr(0, 127 + rng_() % 2);  // one- and two-byte varint
      case 3: return std::string_view(long_).substr(0, 129 + rng_() % 300);
      default: return std::string_view(long_).substr(rng_() % 10, rng_() % 24);
    }
  }

  std::mt19937_64 rng_{20261121};
  std::string long_ = [] {
    std::string s(16400, '\0');
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>('a' + i % 26 + (i % 7 == 0 ? 128 : 0));
    return s;
  }();
};

std::vector<std::string> all_optional() {
  std::vector<std::string> names;
  for (const auto& c : flow_columns()) {
    if (c.optional) names.emplace_back(c.name);
  }
  return names;
}

void expect_same_native(const FlowSchema& schema, const std::vector<std::size_t>& batch_sizes) {
  FlowBatch batch(schema);
  RecordMaker maker;
  for (std::size_t n : batch_sizes) {
    std::vector<FlowRecord> records;
    std::uint64_t sum_bytes = 0, sum_packets = 0;
    for (std::size_t i = 0; i < n; ++i) {
      records.push_back(maker.next());
      sum_bytes += records.back().bytes, sum_packets += records.back().packets;
      batch.append(records.back());
    }
    std::size_t data_bytes = 0;
    const Bytes expected = reference_native(schema, records, data_bytes);
    ASSERT_EQ(batch.rows(), n);
    EXPECT_EQ(batch.bytes(), data_bytes) << n << " rows";
    EXPECT_EQ(batch.total_bytes(), sum_bytes);
    EXPECT_EQ(batch.total_packets(), sum_packets);
    std::string body = "prefix";  // take_native appends
    batch.take_native(body);
    ASSERT_EQ(body.substr(0, 6), "prefix");
    ASSERT_EQ(body.size() - 6, expected.size()) << n << " rows";
    EXPECT_TRUE(body.compare(6, std::string::npos, expected) == 0) << n << " rows: bytes differ";
    EXPECT_EQ(batch.rows(), 0u);
    EXPECT_EQ(batch.bytes(), 0u);
    EXPECT_EQ(batch.total_bytes(), 0u);
  }
}

// Sizes cross the first row capacity and several regrowths, and the batch is reused after each
// take_native, as the outlet does.
const std::vector<std::size_t> kBatchSizes = {0, 1, 7, 1023, 1024, 1025, 5000, 3, 0, 2049};

TEST(FlowBatchNative, CoreColumnsModernMatchReferenceEncoder) {
  expect_same_native(FlowSchema::make(ClickHouseDialect::modern, {}), kBatchSizes);
}

TEST(FlowBatchNative, AllOptionalColumnsModernMatchReferenceEncoder) {
  expect_same_native(FlowSchema::make(ClickHouseDialect::modern, all_optional()), kBatchSizes);
}

TEST(FlowBatchNative, AllOptionalColumnsLegacyMatchReferenceEncoder) {
  expect_same_native(FlowSchema::make(ClickHouseDialect::legacy, all_optional()), kBatchSizes);
}

TEST(FlowBatchNative, SomeOptionalColumnsMatchReferenceEncoder) {
  expect_same_native(FlowSchema::make(ClickHouseDialect::modern, {"MPLSLabels", "TCPFlags", "DstMAC"}), {1, 3000});
}

TEST(FlowBatchNative, ReserveKeepsBytesAndRowsAppendedBefore) {
  const auto schema = FlowSchema::make(ClickHouseDialect::modern, all_optional());
  FlowBatch batch(schema);
  RecordMaker maker;
  std::vector<FlowRecord> records;
  for (int i = 0; i < 10; ++i) batch.append(records.emplace_back(maker.next()));
  batch.reserve(100'000);
  for (int i = 0; i < 2000; ++i) batch.append(records.emplace_back(maker.next()));
  std::size_t data_bytes = 0;
  const Bytes expected = reference_native(schema, records, data_bytes);
  EXPECT_EQ(batch.bytes(), data_bytes);
  std::string body;
  batch.take_native(body);
  EXPECT_EQ(body.size(), expected.size());
  EXPECT_TRUE(body == expected);
}

TEST(FlowBatchNative, EveryKnownColumnHasAReferenceEncoding) {
  for (const auto& c : flow_columns()) EXPECT_TRUE(reference_columns().contains(c.name)) << c.name;
  EXPECT_EQ(reference_columns().size(), flow_columns().size());
}

TEST(NativeColumn, StringsAndFixedValuesInNativeLayout) {
  NativeColumn n("n", "UInt64"), s("s", "String");
  n.put<std::uint64_t>(0x0102030405060708ULL);
  n.put<std::uint64_t>(9);
  const std::string long_string(300, 'z');
  s.put_string("");
  s.put_string("ab");
  s.put_string(long_string);
  std::string out;
  encode_native_block({n, s}, 2, out);
  Bytes expected;
  varint(expected, 2), varint(expected, 2);
  expected += str("n") + str("UInt64") + le<std::uint64_t>(0x0102030405060708ULL) + le<std::uint64_t>(9);
  expected += str("s") + str("String") + Bytes(1, '\0') + str("ab") + str(long_string);
  EXPECT_EQ(out, expected);
  EXPECT_EQ(s.bytes(), 1u + 3u + 2u + 300u);
}

}  // namespace
}  // namespace sluice
