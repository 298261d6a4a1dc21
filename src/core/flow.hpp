// FlowRecord: one decoded flow, filled by a decoder and enrichment, then appended to a FlowBatch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/envelope.hpp"

namespace sluice {

enum class Boundary : std::int8_t { undefined = 0, external = 1, internal = 2 };
enum class FlowDirection : std::int8_t { undefined = 0, ingress = 1, egress = 2 };

// Plain values only: decoders reuse one record per worker, so filling it never allocates.
// Strings are views into storage owned by enrichment caches that outlive the batch append.
struct FlowRecord {
  std::uint32_t time_received = 0;  // unix seconds
  std::uint32_t time_flow_start = 0;
  std::uint32_t time_flow_end = 0;
  std::uint64_t sampling_rate = 0;
  Ip6 exporter_address{};
  std::string_view exporter_name, exporter_group, exporter_role, exporter_site, exporter_region,
      exporter_tenant;

  Ip6 src_addr{}, dst_addr{}, next_hop{};
  std::uint8_t src_net_mask = 0, dst_net_mask = 0;
  std::uint32_t src_as = 0, dst_as = 0;
  std::string_view src_net_name, src_net_role, src_net_site, src_net_region, src_net_tenant;
  std::string_view dst_net_name, dst_net_role, dst_net_site, dst_net_region, dst_net_tenant;
  char src_country[2] = {0, 0}, dst_country[2] = {0, 0};

  std::uint32_t in_if = 0, out_if = 0;
  std::string_view in_if_name, in_if_description, in_if_connectivity, in_if_provider;
  std::string_view out_if_name, out_if_description, out_if_connectivity, out_if_provider;
  std::uint32_t in_if_speed = 0, out_if_speed = 0;
  Boundary in_if_boundary = Boundary::undefined, out_if_boundary = Boundary::undefined;

  std::uint32_t etype = 0;  // 0x0800 IPv4, 0x86dd IPv6
  std::uint32_t proto = 0;
  std::uint16_t src_port = 0, dst_port = 0;
  std::uint64_t bytes = 0, packets = 0;
  std::uint32_t forwarding_status = 0;
  FlowDirection flow_direction = FlowDirection::undefined;

  // BGP data (sFlow extended gateway, IPFIX bgp* elements). Fixed capacity: no allocation per flow;
  // longer paths keep their first entries and count the truncation in *_truncated.
  static constexpr std::size_t kMaxAsPath = 16;
  static constexpr std::size_t kMaxCommunities = 16;
  std::uint32_t dst_as_path[kMaxAsPath] = {};
  std::uint8_t dst_as_path_len = 0;
  std::uint32_t dst_communities[kMaxCommunities] = {};
  std::uint8_t dst_communities_len = 0;

  // Optional columns (written only when enabled in the schema).
  std::uint8_t tcp_flags = 0, ip_tos = 0, ip_ttl = 0;
  std::uint16_t src_vlan = 0, dst_vlan = 0;
  std::uint64_t src_mac = 0, dst_mac = 0;  // 48-bit MAC in the low bits
  std::uint8_t icmp_type = 0, icmp_code = 0;
  std::uint32_t ipv6_flow_label = 0;
  static constexpr std::size_t kMaxMplsLabels = 8;
  std::uint32_t mpls_labels[kMaxMplsLabels] = {};  // 20-bit label values, outermost first
  std::uint8_t mpls_labels_len = 0;
  Ip6 src_addr_nat{}, dst_addr_nat{};
  std::uint16_t src_port_nat = 0, dst_port_nat = 0;

  void reset() { *this = FlowRecord{}; }
};

}  // namespace sluice
