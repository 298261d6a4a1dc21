#include "core/flow_batch.hpp"

#include <algorithm>
#include <stdexcept>

namespace sluice {
namespace {

using W = void (*)(NativeColumn&, const FlowRecord&);

#define SLUICE_U(field, T) +[](NativeColumn& c, const FlowRecord& r) { c.put<T>(static_cast<T>(r.field)); }
#define SLUICE_IP(field) +[](NativeColumn& c, const FlowRecord& r) { c.put_bytes(r.field.data(), 16); }
#define SLUICE_STR(field) +[](NativeColumn& c, const FlowRecord& r) { c.put_string(r.field); }
#define SLUICE_FIX2(field) +[](NativeColumn& c, const FlowRecord& r) { c.put_bytes(r.field, 2); }
#define SLUICE_EMPTY_ARRAY +[](NativeColumn& c, const FlowRecord&) { c.close_array_row(0); }
#define SLUICE_U32_ARRAY(field, len)                                     \
  +[](NativeColumn& c, const FlowRecord& r) {                            \
    c.put_bytes(r.field, sizeof(std::uint32_t) * r.len);                 \
    c.close_array_row(r.len);                                            \
  }

constexpr const char* kLcString = "LowCardinality(String)";
constexpr const char* kBoundary = "Enum8('undefined' = 0, 'external' = 1, 'internal' = 2)";
constexpr const char* kDirection = "Enum8('undefined' = 0, 'ingress' = 1, 'egress' = 2)";

std::vector<FlowColumnSpec> build_columns() {
  return {
      {"TimeReceived", "DateTime", "DateTime", "DateTime", false, SLUICE_U(time_received, std::uint32_t)},
      {"TimeFlowStart", "DateTime", "DateTime", "DateTime", false, SLUICE_U(time_flow_start, std::uint32_t)},
      {"TimeFlowEnd", "DateTime", "DateTime", "DateTime", false, SLUICE_U(time_flow_end, std::uint32_t)},
      {"SamplingRate", "UInt64", "UInt64", "UInt64", false, SLUICE_U(sampling_rate, std::uint64_t)},
      {"ExporterAddress", "IPv6", "LowCardinality(IPv6)", "FixedString(16)", false, SLUICE_IP(exporter_address)},
      {"ExporterName", "String", kLcString, "String", false, SLUICE_STR(exporter_name)},
      {"ExporterGroup", "String", kLcString, "String", false, SLUICE_STR(exporter_group)},
      {"ExporterRole", "String", kLcString, "String", false, SLUICE_STR(exporter_role)},
      {"ExporterSite", "String", kLcString, "String", false, SLUICE_STR(exporter_site)},
      {"ExporterRegion", "String", kLcString, "String", false, SLUICE_STR(exporter_region)},
      {"ExporterTenant", "String", kLcString, "String", false, SLUICE_STR(exporter_tenant)},
      {"SrcAddr", "IPv6", "IPv6", "FixedString(16)", false, SLUICE_IP(src_addr)},
      {"DstAddr", "IPv6", "IPv6", "FixedString(16)", false, SLUICE_IP(dst_addr)},
      {"SrcNetMask", "UInt8", "UInt8", "UInt8", false, SLUICE_U(src_net_mask, std::uint8_t)},
      {"DstNetMask", "UInt8", "UInt8", "UInt8", false, SLUICE_U(dst_net_mask, std::uint8_t)},
      {"SrcAS", "UInt32", "UInt32", "UInt32", false, SLUICE_U(src_as, std::uint32_t)},
      {"DstAS", "UInt32", "UInt32", "UInt32", false, SLUICE_U(dst_as, std::uint32_t)},
      {"SrcNetName", "String", kLcString, "String", false, SLUICE_STR(src_net_name)},
      {"DstNetName", "String", kLcString, "String", false, SLUICE_STR(dst_net_name)},
      {"SrcNetRole", "String", kLcString, "String", false, SLUICE_STR(src_net_role)},
      {"DstNetRole", "String", kLcString, "String", false, SLUICE_STR(dst_net_role)},
      {"SrcNetSite", "String", kLcString, "String", false, SLUICE_STR(src_net_site)},
      {"DstNetSite", "String", kLcString, "String", false, SLUICE_STR(dst_net_site)},
      {"SrcNetRegion", "String", kLcString, "String", false, SLUICE_STR(src_net_region)},
      {"DstNetRegion", "String", kLcString, "String", false, SLUICE_STR(dst_net_region)},
      {"SrcNetTenant", "String", kLcString, "String", false, SLUICE_STR(src_net_tenant)},
      {"DstNetTenant", "String", kLcString, "String", false, SLUICE_STR(dst_net_tenant)},
      {"SrcCountry", "FixedString(2)", "FixedString(2)", "FixedString(2)", false, SLUICE_FIX2(src_country)},
      {"DstCountry", "FixedString(2)", "FixedString(2)", "FixedString(2)", false, SLUICE_FIX2(dst_country)},
      {"DstASPath", "Array(UInt32)", "Array(UInt32)", "Array(UInt32)", false, SLUICE_U32_ARRAY(dst_as_path, dst_as_path_len)},
      {"DstCommunities", "Array(UInt32)", "Array(UInt32)", "Array(UInt32)", false,
       SLUICE_U32_ARRAY(dst_communities, dst_communities_len)},
      {"DstLargeCommunities", "Array(UInt128)", "Array(UInt128)", "Array(FixedString(16))", false,
       SLUICE_EMPTY_ARRAY},
      {"InIf", "UInt32", "UInt32", "UInt32", false, SLUICE_U(in_if, std::uint32_t)},
      {"OutIf", "UInt32", "UInt32", "UInt32", false, SLUICE_U(out_if, std::uint32_t)},
      {"InIfName", "String", kLcString, "String", false, SLUICE_STR(in_if_name)},
      {"OutIfName", "String", kLcString, "String", false, SLUICE_STR(out_if_name)},
      {"InIfDescription", "String", kLcString, "String", false, SLUICE_STR(in_if_description)},
      {"OutIfDescription", "String", kLcString, "String", false, SLUICE_STR(out_if_description)},
      {"InIfSpeed", "UInt32", "UInt32", "UInt32", false, SLUICE_U(in_if_speed, std::uint32_t)},
      {"OutIfSpeed", "UInt32", "UInt32", "UInt32", false, SLUICE_U(out_if_speed, std::uint32_t)},
      {"InIfConnectivity", "String", kLcString, "String", false, SLUICE_STR(in_if_connectivity)},
      {"OutIfConnectivity", "String", kLcString, "String", false, SLUICE_STR(out_if_connectivity)},
      {"InIfProvider", "String", kLcString, "String", false, SLUICE_STR(in_if_provider)},
      {"OutIfProvider", "String", kLcString, "String", false, SLUICE_STR(out_if_provider)},
      {"InIfBoundary", kBoundary, kBoundary, kBoundary, false, SLUICE_U(in_if_boundary, std::int8_t)},
      {"OutIfBoundary", kBoundary, kBoundary, kBoundary, false, SLUICE_U(out_if_boundary, std::int8_t)},
      {"EType", "UInt32", "UInt32", "UInt32", false, SLUICE_U(etype, std::uint32_t)},
      {"Proto", "UInt32", "UInt32", "UInt32", false, SLUICE_U(proto, std::uint32_t)},
      {"SrcPort", "UInt16", "UInt16", "UInt16", false, SLUICE_U(src_port, std::uint16_t)},
      {"DstPort", "UInt16", "UInt16", "UInt16", false, SLUICE_U(dst_port, std::uint16_t)},
      {"Bytes", "UInt64", "UInt64", "UInt64", false, SLUICE_U(bytes, std::uint64_t)},
      {"Packets", "UInt64", "UInt64", "UInt64", false, SLUICE_U(packets, std::uint64_t)},
      {"ForwardingStatus", "UInt32", "UInt32", "UInt32", false, SLUICE_U(forwarding_status, std::uint32_t)},
      {"FlowDirection", kDirection, kDirection, kDirection, false, SLUICE_U(flow_direction, std::int8_t)},
      // Optional columns.
      {"NextHop", "IPv6", "IPv6", "FixedString(16)", true, SLUICE_IP(next_hop)},
      {"TCPFlags", "UInt8", "UInt8", "UInt8", true, SLUICE_U(tcp_flags, std::uint8_t)},
      {"IPTos", "UInt8", "UInt8", "UInt8", true, SLUICE_U(ip_tos, std::uint8_t)},
      {"IPTTL", "UInt8", "UInt8", "UInt8", true, SLUICE_U(ip_ttl, std::uint8_t)},
      {"SrcVlan", "UInt16", "UInt16", "UInt16", true, SLUICE_U(src_vlan, std::uint16_t)},
      {"DstVlan", "UInt16", "UInt16", "UInt16", true, SLUICE_U(dst_vlan, std::uint16_t)},
      {"SrcMAC", "UInt64", "UInt64", "UInt64", true, SLUICE_U(src_mac, std::uint64_t)},
      {"DstMAC", "UInt64", "UInt64", "UInt64", true, SLUICE_U(dst_mac, std::uint64_t)},
      {"ICMPType", "UInt8", "UInt8", "UInt8", true, SLUICE_U(icmp_type, std::uint8_t)},
      {"ICMPCode", "UInt8", "UInt8", "UInt8", true, SLUICE_U(icmp_code, std::uint8_t)},
      {"IPv6FlowLabel", "UInt32", "UInt32", "UInt32", true, SLUICE_U(ipv6_flow_label, std::uint32_t)},
      {"MPLSLabels", "Array(UInt32)", "Array(UInt32)", "Array(UInt32)", true, SLUICE_U32_ARRAY(mpls_labels, mpls_labels_len)},
      {"SrcAddrNAT", "IPv6", "IPv6", "FixedString(16)", true, SLUICE_IP(src_addr_nat)},
      {"DstAddrNAT", "IPv6", "IPv6", "FixedString(16)", true, SLUICE_IP(dst_addr_nat)},
      {"SrcPortNAT", "UInt16", "UInt16", "UInt16", true, SLUICE_U(src_port_nat, std::uint16_t)},
      {"DstPortNAT", "UInt16", "UInt16", "UInt16", true, SLUICE_U(dst_port_nat, std::uint16_t)},
  };
}

#undef SLUICE_U
#undef SLUICE_IP
#undef SLUICE_STR
#undef SLUICE_FIX2
#undef SLUICE_EMPTY_ARRAY
#undef SLUICE_U32_ARRAY

}  // namespace

const std::vector<FlowColumnSpec>& flow_columns() {
  static const std::vector<FlowColumnSpec> columns = build_columns();
  return columns;
}

FlowSchema FlowSchema::make(ClickHouseDialect dialect, const std::vector<std::string>& enabled_optional) {
  FlowSchema s;
  s.dialect = dialect;
  for (const auto& name : enabled_optional) {
    const auto& all = flow_columns();
    auto it = std::find_if(all.begin(), all.end(), [&](const auto& c) { return name == c.name; });
    if (it == all.end() || !it->optional) {
      throw std::invalid_argument("unknown optional flow column '" + name + "'");
    }
  }
  for (const auto& c : flow_columns()) {
    if (!c.optional ||
        std::find(enabled_optional.begin(), enabled_optional.end(), c.name) != enabled_optional.end()) {
      s.columns.push_back(&c);
    }
  }
  return s;
}

FlowBatch::FlowBatch(const FlowSchema& schema) : schema_(&schema) {
  columns_.reserve(schema.columns.size());
  for (const auto* c : schema.columns) columns_.emplace_back(c->name, schema.wire_type(*c));
}

void FlowBatch::append(const FlowRecord& r) {
  const auto& specs = schema_->columns;
  for (std::size_t i = 0; i < specs.size(); ++i) specs[i]->write(columns_[i], r);
  ++rows_;
  sum_bytes_ += r.bytes;
  sum_packets_ += r.packets;
}

std::size_t FlowBatch::bytes() const {
  std::size_t n = 0;
  for (const auto& c : columns_) n += c.bytes();
  return n;
}

void FlowBatch::take_native(std::string& out) {
  encode_native_block(columns_, rows_, out);
  clear();
}

void FlowBatch::clear() {
  for (auto& c : columns_) c.clear();
  rows_ = 0;
  sum_bytes_ = sum_packets_ = 0;
}

}  // namespace sluice
