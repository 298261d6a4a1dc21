#include "decoders/sflow.hpp"

#include <cstddef>
#include <cstring>

#include "core/bytes.hpp"

namespace sluice {
namespace {

using u8 = std::uint8_t;

// Sample and record formats (enterprise 0), sFlow v5 specification.
constexpr std::uint32_t kFlowSample = 1;
constexpr std::uint32_t kCounterSample = 2;
constexpr std::uint32_t kExpandedFlowSample = 3;
constexpr std::uint32_t kExpandedCounterSample = 4;
constexpr std::uint32_t kRawHeader = 1;
constexpr std::uint32_t kEthernetFrame = 2;
constexpr std::uint32_t kSampledIpv4 = 3;
constexpr std::uint32_t kSampledIpv6 = 4;
constexpr std::uint32_t kExtendedSwitch = 1001;
constexpr std::uint32_t kExtendedRouter = 1002;
constexpr std::uint32_t kExtendedGateway = 1003;

constexpr std::size_t kFlowSampleFixed = 32;          // 8 words before the records
constexpr std::size_t kExpandedFlowSampleFixed = 44;  // 11 words before the records

// Raw header protocols.
constexpr std::uint32_t kHeaderEthernet = 1;
constexpr std::uint32_t kHeaderIpv4 = 11;
constexpr std::uint32_t kHeaderIpv6 = 12;
constexpr std::uint32_t kHeaderMpls = 13;

constexpr std::uint32_t kUnknownInterface = 0x3fffffff;
// IPFIX forwardingStatus "dropped, unknown reason": what an sFlow output of format 1 (discarded) means.
constexpr std::uint32_t kForwardingDropped = 128;

// Bytes an sFlow address takes (type word included), or 0 for a type the specification does not define.
std::size_t address_size(std::uint32_t type) {
  switch (type) {
    case 0: return 4;  // UNKNOWN: the type word alone
    case 1: return 8;
    case 2: return 20;
    default: return 0;
  }
}

// Reads an address checked by validation; type 0 leaves `out` untouched.
void read_address(const u8* p, Ip6& out) {
  const std::uint32_t type = load_be32(p);
  if (type == 1) out = ip6_from_v4(load_be32(p + 4));
  else if (type == 2) std::memcpy(out.data(), p + 4, 16);
}

std::uint64_t load_be48(const u8* p) { return (std::uint64_t{load_be16(p)} << 32) | load_be32(p + 2); }

// --- Structure checks: everything the decode pass relies on, so it never reads out of bounds. ---

DecodeStatus check_gateway(const u8* p, std::size_t n) {
  if (n < 4) return DecodeStatus::bad_length;
  const std::size_t addr = address_size(load_be32(p));
  if (addr == 0) return DecodeStatus::bad_address_type;
  std::size_t off = addr + 12;  // as, src_as, src_peer_as
  if (n < off + 4) return DecodeStatus::bad_length;
  const std::uint32_t segments = load_be32(p + off);
  off += 4;
  for (std::uint32_t i = 0; i < segments; ++i) {
    if (n - off < 8) return DecodeStatus::bad_length;
    const std::uint32_t count = load_be32(p + off + 4);
    off += 8;
    if (count > (n - off) / 4) return DecodeStatus::bad_length;
    off += std::size_t{count} * 4;
  }
  if (n - off < 4) return DecodeStatus::bad_length;
  const std::uint32_t communities = load_be32(p + off);
  off += 4;
  if (communities > (n - off) / 4) return DecodeStatus::bad_length;
  off += std::size_t{communities} * 4;
  if (n - off < 4) return DecodeStatus::bad_length;  // localpref
  return DecodeStatus::ok;
}

DecodeStatus check_record(std::uint32_t format, const u8* p, std::size_t n) {
  switch (format) {
    case kRawHeader:
      if (n < 16) return DecodeStatus::bad_length;
      if (load_be32(p + 12) > n - 16) return DecodeStatus::bad_length;
      return DecodeStatus::ok;
    case kEthernetFrame: return n < 24 ? DecodeStatus::bad_length : DecodeStatus::ok;
    case kSampledIpv4: return n < 32 ? DecodeStatus::bad_length : DecodeStatus::ok;
    case kSampledIpv6: return n < 56 ? DecodeStatus::bad_length : DecodeStatus::ok;
    case kExtendedSwitch: return n < 16 ? DecodeStatus::bad_length : DecodeStatus::ok;
    case kExtendedRouter: {
      if (n < 4) return DecodeStatus::bad_length;
      const std::size_t addr = address_size(load_be32(p));
      if (addr == 0) return DecodeStatus::bad_address_type;
      return n < addr + 8 ? DecodeStatus::bad_length : DecodeStatus::ok;
    }
    case kExtendedGateway: return check_gateway(p, n);
    default: return DecodeStatus::ok;  // skipped by its length
  }
}

// Walks the records of a flow sample: each header must fit, each length must fit what is left.
DecodeStatus check_records(const u8* p, std::size_t n, std::uint32_t count) {
  std::size_t off = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    if (n - off < 8) return DecodeStatus::truncated;
    const std::uint32_t format = load_be32(p + off);
    const std::uint32_t length = load_be32(p + off + 4);
    off += 8;
    if (length > n - off) return DecodeStatus::bad_length;
    if (format >> 12 == 0) {
      if (auto s = check_record(format, p + off, length); s != DecodeStatus::ok) return s;
    }
    off += length;
  }
  return DecodeStatus::ok;
}

DecodeStatus check_samples(const u8* p, std::size_t n, std::uint32_t count) {
  std::size_t off = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    if (n - off < 8) return DecodeStatus::truncated;
    const std::uint32_t format = load_be32(p + off);
    const std::uint32_t length = load_be32(p + off + 4);
    off += 8;
    if (length > n - off) return DecodeStatus::bad_length;
    const u8* s = p + off;
    if (format == kFlowSample || format == kExpandedFlowSample) {
      const std::size_t fixed = format == kFlowSample ? kFlowSampleFixed : kExpandedFlowSampleFixed;
      if (length < fixed) return DecodeStatus::bad_length;
      if (auto st = check_records(s + fixed, length - fixed, load_be32(s + fixed - 4)); st != DecodeStatus::ok) {
        return st;
      }
    }
    off += length;
  }
  return DecodeStatus::ok;
}

// --- Packet header decoding. Sampled headers are cut short at any point: decode what is there. ---

class HeaderDecoder {
 public:
  HeaderDecoder(FlowRecord& r, const SflowOptions& o) : r_(r), options_(o) {}

  void ethernet(const u8* p, std::size_t n, bool allow_vxlan) {
    if (n < 14) return;
    r_.dst_mac = load_be48(p);
    r_.src_mac = load_be48(p + 6);
    std::uint16_t type = load_be16(p + 12);
    std::size_t off = 14;
    bool outer_tag = true;
    // 802.1Q, 802.1ad (QinQ) and the pre-standard 0x9100 S-tag. The outermost tag is the VLAN the
    // frame was sampled on; FlowRecord has no column for the inner (customer) tag of a QinQ frame.
    while ((type == 0x8100 || type == 0x88a8 || type == 0x9100) && n - off >= 4) {
      if (outer_tag) r_.src_vlan = load_be16(p + off) & 0x0fff;
      outer_tag = false;
      type = load_be16(p + off + 2);
      off += 4;
    }
    if (type == 0x8100 || type == 0x88a8 || type == 0x9100) return;  // cut inside the tags
    ethertype(type, p + off, n - off, allow_vxlan);
  }

  void ethertype(std::uint16_t type, const u8* p, std::size_t n, bool allow_vxlan) {
    switch (type) {
      case 0x0800: ipv4(p, n, allow_vxlan); break;
      case 0x86dd: ipv6(p, n, allow_vxlan); break;
      case 0x8847:
      case 0x8848: mpls(p, n, allow_vxlan); break;
      default:
        if (type >= 0x0600) r_.etype = type;  // below: an 802.3 length, not a protocol
        break;
    }
  }

  void mpls(const u8* p, std::size_t n, bool allow_vxlan) {
    std::size_t off = 0;
    bool bottom = false;
    while (!bottom && n - off >= 4) {
      const std::uint32_t entry = load_be32(p + off);
      if (r_.mpls_labels_len < FlowRecord::kMaxMplsLabels) r_.mpls_labels[r_.mpls_labels_len++] = entry >> 12;
      bottom = (entry & 0x100) != 0;
      off += 4;
    }
    if (!bottom || off >= n) return;
    // MPLS does not say what it carries; the IP version nibble does (what every collector does).
    switch (p[off] >> 4) {
      case 4: ipv4(p + off, n - off, allow_vxlan); break;
      case 6: ipv6(p + off, n - off, allow_vxlan); break;
      default: break;
    }
  }

  void ipv4(const u8* p, std::size_t n, bool allow_vxlan) {
    r_.etype = 0x0800;
    if (n < 20 || p[0] >> 4 != 4) return;
    const std::size_t ihl = std::size_t{p[0] & 0x0fu} * 4;
    r_.ip_tos = p[1];
    r_.ip_ttl = p[8];
    r_.proto = p[9];
    r_.src_addr = ip6_from_v4(load_be32(p + 12));
    r_.dst_addr = ip6_from_v4(load_be32(p + 16));
    // Only the first fragment carries the transport header.
    if ((load_be16(p + 6) & 0x1fff) != 0 || ihl < 20 || ihl > n) return;
    transport(p[9], p + ihl, n - ihl, allow_vxlan);
  }

  void ipv6(const u8* p, std::size_t n, bool allow_vxlan) {
    r_.etype = 0x86dd;
    if (n < 40 || p[0] >> 4 != 6) return;
    const std::uint32_t word = load_be32(p);
    r_.ip_tos = static_cast<std::uint8_t>(word >> 20);
    r_.ipv6_flow_label = word & 0xfffff;
    r_.ip_ttl = p[7];
    std::memcpy(r_.src_addr.data(), p + 8, 16);
    std::memcpy(r_.dst_addr.data(), p + 24, 16);
    std::uint8_t next = p[6];
    std::size_t off = 40;
    // Extension headers, so proto is the transport protocol as flow exporters report it.
    for (int hops = 0; hops < 8; ++hops) {
      if (next == 0 || next == 43 || next == 60) {  // hop-by-hop, routing, destination options
        if (n - off < 2) break;
        const std::size_t len = (std::size_t{p[off + 1]} + 1) * 8;
        next = p[off];
        if (len > n - off) {
          off = n;
          break;
        }
        off += len;
      } else if (next == 44) {  // fragment: only the first carries the transport header
        if (n - off < 8) break;
        next = p[off];
        if ((load_be16(p + off + 2) >> 3) != 0) {
          r_.proto = next;
          return;
        }
        off += 8;
      } else {
        break;
      }
    }
    r_.proto = next;
    if (off <= n) transport(next, p + off, n - off, allow_vxlan);
  }

  void transport(std::uint8_t proto, const u8* p, std::size_t n, bool allow_vxlan) {
    switch (proto) {
      case 6:  // TCP
        if (n >= 4) {
          r_.src_port = load_be16(p);
          r_.dst_port = load_be16(p + 2);
        }
        if (n >= 14) r_.tcp_flags = p[13];
        break;
      case 17:  // UDP
        if (n < 4) break;
        r_.src_port = load_be16(p);
        r_.dst_port = load_be16(p + 2);
        // VXLAN: UDP header, then 8 bytes whose first has the I flag (a valid VNI), then Ethernet.
        if (allow_vxlan && options_.decode_vxlan && r_.dst_port == options_.vxlan_port && n >= 16 &&
            (p[8] & 0x08) != 0) {
          inner(p + 16, n - 16);
        }
        break;
      case 132:  // SCTP
        if (n >= 4) {
          r_.src_port = load_be16(p);
          r_.dst_port = load_be16(p + 2);
        }
        break;
      case 1:    // ICMP
      case 58:   // ICMPv6
        if (n >= 2) {
          r_.icmp_type = p[0];
          r_.icmp_code = p[1];
        }
        break;
      default: break;
    }
  }

 private:
  // The tenant's frame replaces what the tunnel said about layers 2 to 4; MPLS labels and the outer
  // VLAN (unless the inner frame is tagged) stay, as they describe where the tunnel was sampled.
  void inner(const u8* p, std::size_t n) {
    r_.src_addr = r_.dst_addr = Ip6{};
    r_.etype = r_.proto = 0;
    r_.src_port = r_.dst_port = 0;
    r_.tcp_flags = r_.ip_tos = r_.ip_ttl = 0;
    r_.icmp_type = r_.icmp_code = 0;
    r_.ipv6_flow_label = 0;
    ethernet(p, n, false);  // one level: a tunnel in the tunnel stays a UDP flow
  }

  FlowRecord& r_;
  const SflowOptions& options_;
};

void decode_header_record(const u8* p, FlowRecord& r, const SflowOptions& options) {
  const std::uint32_t protocol = load_be32(p);
  const std::uint32_t length = load_be32(p + 12);
  HeaderDecoder d(r, options);
  const u8* h = p + 16;
  switch (protocol) {
    case kHeaderEthernet: d.ethernet(h, length, true); break;
    case kHeaderIpv4: d.ipv4(h, length, true); break;
    case kHeaderIpv6: d.ipv6(h, length, true); break;
    case kHeaderMpls: d.mpls(h, length, true); break;
    default: break;
  }
}

void decode_gateway(const u8* p, FlowRecord& r, bool have_router_next_hop) {
  const std::size_t addr = address_size(load_be32(p));
  if (!have_router_next_hop) read_address(p, r.next_hop);
  std::size_t off = addr;
  const std::uint32_t router_as = load_be32(p + off);
  r.src_as = load_be32(p + off + 4);
  // p + off + 8 is the source peer AS: no column for it.
  off += 12;
  const std::uint32_t segments = load_be32(p + off);
  off += 4;
  // The path is every segment in order (AS_SET members included) with the origin last; the
  // destination AS is the origin, or the router's own AS when the path is empty (a local destination).
  std::uint32_t last = router_as;
  std::uint8_t len = 0;
  for (std::uint32_t i = 0; i < segments; ++i) {
    const std::uint32_t count = load_be32(p + off + 4);
    off += 8;
    for (std::uint32_t k = 0; k < count; ++k) {
      last = load_be32(p + off + std::size_t{k} * 4);
      if (len < FlowRecord::kMaxAsPath) r.dst_as_path[len++] = last;
    }
    off += std::size_t{count} * 4;
  }
  r.dst_as_path_len = len;
  r.dst_as = last;
  const std::uint32_t communities = load_be32(p + off);
  off += 4;
  std::uint8_t clen = 0;
  for (std::uint32_t i = 0; i < communities && clen < FlowRecord::kMaxCommunities; ++i) {
    r.dst_communities[clen++] = load_be32(p + off + std::size_t{i} * 4);
  }
  r.dst_communities_len = clen;
}

// Interface word of a compact flow sample, or format and value of an expanded one.
void set_interfaces(FlowRecord& r, std::uint32_t in_format, std::uint32_t in_value, std::uint32_t out_format,
                    std::uint32_t out_value) {
  if (in_format == 0 && in_value != kUnknownInterface) r.in_if = in_value;
  if (out_format == 0 && out_value != kUnknownInterface) r.out_if = out_value;
  // Format 1: the packet was discarded (the value is the reason); format 2: sent to several
  // interfaces (the value is how many). Neither names one output interface.
  if (out_format == 1) r.forwarding_status = kForwardingDropped;
}

// Decodes one validated flow sample into `r`.
void decode_flow_sample(std::uint32_t format, const u8* s, FlowRecord& r,
                        const SflowOptions& options, SflowCounts& counts) {
  std::size_t fixed;
  if (format == kFlowSample) {
    r.sampling_rate = load_be32(s + 8);
    const std::uint32_t in = load_be32(s + 20), out = load_be32(s + 24);
    set_interfaces(r, in >> 30, in & 0x3fffffff, out >> 30, out & 0x3fffffff);
    fixed = kFlowSampleFixed;
  } else {
    r.sampling_rate = load_be32(s + 12);
    set_interfaces(r, load_be32(s + 24), load_be32(s + 28), load_be32(s + 32), load_be32(s + 36));
    fixed = kExpandedFlowSampleFixed;
  }
  const std::uint32_t count = load_be32(s + fixed - 4);
  const u8* p = s + fixed;
  // Which record set bytes: the raw header's frame length beats the sampled IP length, which beats
  // the Ethernet frame record's. Extended switch VLANs beat tags read from the header.
  int bytes_rank = 0;
  bool have_header = false, have_switch = false, have_router_next_hop = false;
  std::uint16_t switch_src_vlan = 0, switch_dst_vlan = 0;
  std::size_t off = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint32_t rformat = load_be32(p + off);
    const std::uint32_t rlength = load_be32(p + off + 4);
    const u8* d = p + off + 8;
    off += 8 + std::size_t{rlength};
    switch (rformat) {
      case kRawHeader:
        r.bytes = load_be32(d + 4);
        bytes_rank = 3;
        have_header = true;
        decode_header_record(d, r, options);
        break;
      case kSampledIpv4:
      case kSampledIpv6: {
        const bool v4 = rformat == kSampledIpv4;
        if (bytes_rank < 2) {
          r.bytes = load_be32(d);
          bytes_rank = 2;
        }
        if (have_header) break;  // the header said it all, and more exactly
        r.proto = load_be32(d + 4);
        const u8* q = d + 8;
        if (v4) {
          r.etype = 0x0800;
          r.src_addr = ip6_from_v4(load_be32(q));
          r.dst_addr = ip6_from_v4(load_be32(q + 4));
          q += 8;
        } else {
          r.etype = 0x86dd;
          std::memcpy(r.src_addr.data(), q, 16);
          std::memcpy(r.dst_addr.data(), q + 16, 16);
          q += 32;
        }
        r.src_port = static_cast<std::uint16_t>(load_be32(q));
        r.dst_port = static_cast<std::uint16_t>(load_be32(q + 4));
        r.tcp_flags = static_cast<std::uint8_t>(load_be32(q + 8));
        r.ip_tos = static_cast<std::uint8_t>(load_be32(q + 12));
        break;
      }
      case kEthernetFrame:
        if (bytes_rank < 1) {
          r.bytes = load_be32(d);
          bytes_rank = 1;
        }
        if (!have_header) {
          r.src_mac = load_be48(d + 4);
          r.dst_mac = load_be48(d + 12);
        }
        break;
      case kExtendedSwitch:
        have_switch = true;
        switch_src_vlan = static_cast<std::uint16_t>(load_be32(d));
        switch_dst_vlan = static_cast<std::uint16_t>(load_be32(d + 8));
        break;
      case kExtendedRouter: {
        read_address(d, r.next_hop);
        have_router_next_hop = true;
        const std::size_t a = address_size(load_be32(d));
        r.src_net_mask = static_cast<std::uint8_t>(load_be32(d + a));
        r.dst_net_mask = static_cast<std::uint8_t>(load_be32(d + a + 4));
        break;
      }
      case kExtendedGateway: decode_gateway(d, r, have_router_next_hop); break;
      default: ++counts.skipped_records; break;
    }
  }
  if (have_switch) {
    r.src_vlan = switch_src_vlan;
    r.dst_vlan = switch_dst_vlan;
  }
}

}  // namespace

DecodeStatus decode_sflow(const Envelope& env, FlowRecord& scratch, FlowOutput& out, const SflowOptions& options,
                          SflowCounts* counts_out) {
  const auto* p = reinterpret_cast<const u8*>(env.payload.data());
  const std::size_t size = env.payload.size();
  if (size < 8) return DecodeStatus::truncated;
  if (load_be32(p) != 5) return DecodeStatus::bad_version;
  const std::uint32_t agent_type = load_be32(p + 4);
  if (agent_type != 1 && agent_type != 2) return DecodeStatus::bad_address_type;
  const std::size_t header = 4 + address_size(agent_type) + 16;  // sub agent, sequence, uptime, samples
  if (size < header) return DecodeStatus::truncated;
  Ip6 exporter = env.source_address;
  read_address(p + 4, exporter);
  if (exporter == Ip6{} || exporter == ip6_from_v4(0)) exporter = env.source_address;
  const std::uint32_t samples = load_be32(p + header - 4);
  if (auto s = check_samples(p + header, size - header, samples); s != DecodeStatus::ok) return s;

  SflowCounts counts;
  const auto time_received = static_cast<std::uint32_t>(env.received_ns / 1'000'000'000ULL);
  std::size_t off = header;
  for (std::uint32_t i = 0; i < samples; ++i) {
    const std::uint32_t format = load_be32(p + off);
    const std::uint32_t length = load_be32(p + off + 4);
    const u8* s = p + off + 8;
    off += 8 + std::size_t{length};
    if (format == kCounterSample || format == kExpandedCounterSample) {
      ++counts.counter_samples;
      continue;
    }
    if (format != kFlowSample && format != kExpandedFlowSample) {
      ++counts.skipped_samples;
      continue;
    }
    ++counts.flow_samples;
    scratch.reset();
    scratch.time_received = time_received;
    scratch.time_flow_start = time_received;
    scratch.time_flow_end = time_received;
    scratch.exporter_address = exporter;
    scratch.packets = 1;
    decode_flow_sample(format, s, scratch, options, counts);
    out.emit(scratch);
  }
  if (counts_out) *counts_out = counts;
  return DecodeStatus::ok;
}

DecodeStatus decode_sflow(const Envelope& env, FlowRecord& scratch, FlowOutput& out) {
  return decode_sflow(env, scratch, out, SflowOptions{}, nullptr);
}

}  // namespace sluice
