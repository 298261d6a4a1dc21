#include "decoders/flow_fields.hpp"

#include <cstring>
#include <optional>

#include "core/bytes.hpp"
#include "decoders/template_cache.hpp"

namespace sluice {

bool FlowTemplate::finalize() {
  min_record_length = 0;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const auto& f = fields[i];
    // v9 has no variable-length encoding; a 65535 there is a plain (impossible) length. Options scope
    // fields of v9 are tagged and never variable either.
    min_record_length += f.length == kVariableLength && f.enterprise != kV9ScopeEnterprise ? 1 : f.length;
  }
  return min_record_length > 0 && fields.size() <= kMaxTemplateFields && scope_count <= fields.size();
}

namespace {

// Per-record values that are combined once every field has been read.
struct RecordState {
  std::uint64_t start_ms = 0, end_ms = 0;  // absolute
  bool has_start_abs = false, has_end_abs = false;
  std::uint32_t start_uptime = 0, end_uptime = 0;
  bool has_start_uptime = false, has_end_uptime = false;
  std::uint64_t start_delta_us = 0, end_delta_us = 0;
  bool has_start_delta = false, has_end_delta = false;
  std::uint64_t init_time_ms = 0;
  std::uint64_t rate = 0;
  std::uint64_t packet_interval = 0, packet_space = 0, sampling_size = 0, sampling_population = 0;
  std::optional<std::uint64_t> sampler;
  std::uint64_t post_bytes = 0, total_bytes = 0, post_packets = 0, total_packets = 0;
  std::uint64_t post_src_mac = 0, post_dst_mac = 0;
  std::uint16_t dot1q_vlan = 0, post_dot1q_vlan = 0;
  Ip6 bgp_next_hop{};
  bool has_bgp_next_hop = false;
  bool v4 = false, v6 = false;

  std::uint64_t sampling() const {
    if (rate) return rate;
    if (packet_interval) return (packet_interval + packet_space) / packet_interval;  // space 0: every packet
    if (sampling_size && sampling_population) return sampling_population / sampling_size;
    return 0;
  }
};

Ip6 ip6_from_bytes(const std::uint8_t* p) {
  Ip6 a;
  std::memcpy(a.data(), p, 16);
  return a;
}

// NTP timestamp (seconds since 1900, 32-bit fraction) → unix milliseconds.
std::uint64_t ntp_to_unix_ms(std::uint64_t ntp) {
  constexpr std::uint64_t kNtpToUnix = 2'208'988'800ULL;
  const std::uint64_t secs = ntp >> 32;
  if (secs < kNtpToUnix) return 0;
  return (secs - kNtpToUnix) * 1000 + (((ntp & 0xffffffffULL) * 1000) >> 32);
}

// Applies one IANA element. Values of unexpected size are ignored rather than misread; the caller
// advances by the field's length either way, so the record stays aligned.
void apply_field(std::uint16_t id, const std::uint8_t* v, std::size_t len, FlowRecord& r, RecordState& s) {
  const bool num = len >= 1 && len <= 8;
  const std::uint64_t n = num ? load_be_n(v, len) : 0;
  switch (id) {
    case 1: if (num) r.bytes = n; break;
    case 2: if (num) r.packets = n; break;
    case 23: if (num) s.post_bytes = n; break;
    case 24: if (num) s.post_packets = n; break;
    case 85: if (num) s.total_bytes = n; break;
    case 86: if (num) s.total_packets = n; break;
    case 4: if (num) r.proto = static_cast<std::uint32_t>(n); break;
    case 5: if (num) r.ip_tos = static_cast<std::uint8_t>(n); break;
    case 6: if (num) r.tcp_flags = static_cast<std::uint8_t>(n); break;  // IPFIX has 16 bits; the low 8 are the flags
    case 7: if (num) r.src_port = static_cast<std::uint16_t>(n); break;
    case 11: if (num) r.dst_port = static_cast<std::uint16_t>(n); break;
    case 8: if (len == 4) { r.src_addr = ip6_from_v4(load_be32(v)); s.v4 = true; } break;
    case 12: if (len == 4) { r.dst_addr = ip6_from_v4(load_be32(v)); s.v4 = true; } break;
    case 27: if (len == 16) { r.src_addr = ip6_from_bytes(v); s.v6 = true; } break;
    case 28: if (len == 16) { r.dst_addr = ip6_from_bytes(v); s.v6 = true; } break;
    case 9: case 29: if (num) r.src_net_mask = static_cast<std::uint8_t>(n); break;
    case 13: case 30: if (num) r.dst_net_mask = static_cast<std::uint8_t>(n); break;
    case 10: if (num) r.in_if = static_cast<std::uint32_t>(n); break;
    case 14: if (num) r.out_if = static_cast<std::uint32_t>(n); break;
    case 15: if (len == 4) r.next_hop = ip6_from_v4(load_be32(v)); break;
    case 62: if (len == 16) r.next_hop = ip6_from_bytes(v); break;
    case 18: if (len == 4) { s.bgp_next_hop = ip6_from_v4(load_be32(v)); s.has_bgp_next_hop = true; } break;
    case 63: if (len == 16) { s.bgp_next_hop = ip6_from_bytes(v); s.has_bgp_next_hop = true; } break;
    case 16: if (num) r.src_as = static_cast<std::uint32_t>(n); break;
    case 17: if (num) r.dst_as = static_cast<std::uint32_t>(n); break;
    case 21: if (num) { s.end_uptime = static_cast<std::uint32_t>(n); s.has_end_uptime = true; } break;
    case 22: if (num) { s.start_uptime = static_cast<std::uint32_t>(n); s.has_start_uptime = true; } break;
    case 150: if (num) { s.start_ms = n * 1000; s.has_start_abs = true; } break;
    case 151: if (num) { s.end_ms = n * 1000; s.has_end_abs = true; } break;
    case 152: if (num) { s.start_ms = n; s.has_start_abs = true; } break;
    case 153: if (num) { s.end_ms = n; s.has_end_abs = true; } break;
    case 154: case 156: if (len == 8) { s.start_ms = ntp_to_unix_ms(n); s.has_start_abs = true; } break;
    case 155: case 157: if (len == 8) { s.end_ms = ntp_to_unix_ms(n); s.has_end_abs = true; } break;
    case 158: if (num) { s.start_delta_us = n; s.has_start_delta = true; } break;
    case 159: if (num) { s.end_delta_us = n; s.has_end_delta = true; } break;
    case 160: if (num) s.init_time_ms = n; break;
    case 31: if (num) r.ipv6_flow_label = static_cast<std::uint32_t>(n & 0xfffff); break;
    case 32: case 139: if (len == 2) { r.icmp_type = v[0]; r.icmp_code = v[1]; } break;
    case 176: case 178: if (num) r.icmp_type = static_cast<std::uint8_t>(n); break;
    case 177: case 179: if (num) r.icmp_code = static_cast<std::uint8_t>(n); break;
    case 34: case 50: if (num) s.rate = n; break;
    case 305: if (num) s.packet_interval = n; break;
    case 306: if (num) s.packet_space = n; break;
    case 309: if (num) s.sampling_size = n; break;
    case 310: if (num) s.sampling_population = n; break;
    case 48: case 302: if (num) s.sampler = n; break;
    case 56: if (len == 6) r.src_mac = load_be_n(v, 6); break;
    case 80: if (len == 6) r.dst_mac = load_be_n(v, 6); break;
    case 81: if (len == 6) s.post_src_mac = load_be_n(v, 6); break;
    case 57: if (len == 6) s.post_dst_mac = load_be_n(v, 6); break;
    case 58: if (num) r.src_vlan = static_cast<std::uint16_t>(n & 0xfff); break;
    case 59: if (num) r.dst_vlan = static_cast<std::uint16_t>(n & 0xfff); break;
    case 243: if (num) s.dot1q_vlan = static_cast<std::uint16_t>(n & 0xfff); break;
    case 254: if (num) s.post_dot1q_vlan = static_cast<std::uint16_t>(n & 0xfff); break;
    case 60:
      if (num && n == 4) s.v4 = true;
      else if (num && n == 6) s.v6 = true;
      break;
    case 256: if (num) r.etype = static_cast<std::uint32_t>(n); break;
    case 61: if (num) r.flow_direction = n == 0 ? FlowDirection::ingress : n == 1 ? FlowDirection::egress : FlowDirection::undefined; break;
    case 89: if (num) r.forwarding_status = static_cast<std::uint32_t>(n); break;
    case 192: if (num) r.ip_ttl = static_cast<std::uint8_t>(n); break;
    case 70: case 71: case 72: case 73: case 74: case 75: case 76: case 77: case 78: case 79:
      // 20-bit label, 3 bits of traffic class, bottom-of-stack bit.
      if (len == 3 && r.mpls_labels_len < FlowRecord::kMaxMplsLabels) {
        r.mpls_labels[r.mpls_labels_len++] = static_cast<std::uint32_t>(load_be_n(v, 3) >> 4);
      }
      break;
    case 225: if (len == 4) r.src_addr_nat = ip6_from_v4(load_be32(v)); break;
    case 226: if (len == 4) r.dst_addr_nat = ip6_from_v4(load_be32(v)); break;
    case 281: if (len == 16) r.src_addr_nat = ip6_from_bytes(v); break;
    case 282: if (len == 16) r.dst_addr_nat = ip6_from_bytes(v); break;
    case 227: if (num) r.src_port_nat = static_cast<std::uint16_t>(n); break;
    case 228: if (num) r.dst_port_nat = static_cast<std::uint16_t>(n); break;
    default: break;
  }
}

// Absolute unix milliseconds of an uptime-relative time, like v5: the difference is taken modulo
// 2^32 and read as signed, so a wrapped sysUptime still gives a flow a little in the past.
std::int64_t uptime_to_ms(const ExportContext& ctx, std::uint64_t init_ms, std::uint32_t at) {
  if (ctx.version == 9) {
    const auto age_ms = static_cast<std::int32_t>(ctx.sys_uptime_ms - at);
    return std::int64_t{ctx.export_secs} * 1000 - age_ms;
  }
  return init_ms ? static_cast<std::int64_t>(init_ms + at) : std::int64_t{ctx.export_secs} * 1000;
}

std::uint32_t ms_to_secs(std::int64_t ms) { return ms <= 0 ? 0 : static_cast<std::uint32_t>(ms / 1000); }

// Combines what the fields left in `s`: fallbacks for absent counters, MACs, VLANs, next hop and
// ethertype, and the flow times in unix seconds.
void finish(const ExportContext& ctx, TemplateCache& cache, FlowRecord& r, RecordState& s) {
  if (!r.bytes) r.bytes = s.total_bytes ? s.total_bytes : s.post_bytes;
  if (!r.packets) r.packets = s.total_packets ? s.total_packets : s.post_packets;
  if (!r.src_mac) r.src_mac = s.post_src_mac;
  if (!r.dst_mac) r.dst_mac = s.post_dst_mac;
  if (!r.src_vlan) r.src_vlan = s.dot1q_vlan;
  if (!r.dst_vlan) r.dst_vlan = s.post_dot1q_vlan;
  if (s.has_bgp_next_hop && r.next_hop == Ip6{}) r.next_hop = s.bgp_next_hop;
  if (!r.etype) r.etype = s.v6 ? 0x86dd : s.v4 ? 0x0800 : 0;

  const std::int64_t export_ms = std::int64_t{ctx.export_secs} * 1000;
  std::uint64_t init_ms = s.init_time_ms;
  if (!init_ms && ctx.version == 10 && (s.has_start_uptime || s.has_end_uptime)) {
    init_ms = cache.init_time_ms(ctx.exporter, ctx.version, ctx.domain);
  }
  auto when = [&](bool abs, std::uint64_t abs_ms, bool up, std::uint32_t uptime, bool delta, std::uint64_t delta_us) {
    if (abs) return ms_to_secs(static_cast<std::int64_t>(abs_ms));
    if (up) return ms_to_secs(uptime_to_ms(ctx, init_ms, uptime));
    if (delta) return ms_to_secs(export_ms - static_cast<std::int64_t>(delta_us / 1000));
    return ctx.export_secs;
  };
  r.time_flow_start = when(s.has_start_abs, s.start_ms, s.has_start_uptime, s.start_uptime, s.has_start_delta, s.start_delta_us);
  r.time_flow_end = when(s.has_end_abs, s.end_ms, s.has_end_uptime, s.end_uptime, s.has_end_delta, s.end_delta_us);
}

}  // namespace

DecodeStatus decode_data_set(const ExportContext& ctx, const FlowTemplate& tpl, std::span<const std::uint8_t> body,
                             TemplateCache& cache, FlowRecord& scratch, FlowOutput& out) {
  const std::uint8_t* p = body.data();
  const std::size_t size = body.size();
  const bool ipfix = ctx.version == 10;
  const auto time_received = static_cast<std::uint32_t>(ctx.received_ns / 1'000'000'000ULL);
  // Learned rates are looked up once per set, and again only when the sampler id changes.
  bool have_default = false;
  std::uint64_t default_rate = 0;
  std::optional<std::uint64_t> last_sampler;
  std::uint64_t last_sampler_rate = 0;

  std::size_t off = 0;
  while (size - off >= tpl.min_record_length) {
    scratch.reset();
    RecordState s;
    for (std::size_t i = 0; i < tpl.fields.size(); ++i) {
      const TemplateField& f = tpl.fields[i];
      std::size_t len = f.length;
      if (ipfix && len == kVariableLength) {
        if (off >= size) return DecodeStatus::bad_length;
        len = p[off++];
        if (len == 255) {
          if (size - off < 2) return DecodeStatus::bad_length;
          len = load_be16(p + off);
          off += 2;
        }
      }
      if (size - off < len) return DecodeStatus::bad_length;
      // v9 options scope fields use their own numbering; enterprise elements are not ours to read.
      // IPFIX scope fields are ordinary elements (e.g. selectorId) and are read.
      if (f.enterprise == 0) apply_field(f.id, p + off, len, scratch, s);
      off += len;
    }
    if (tpl.options) {
      const std::uint64_t rate = s.sampling();
      if (rate) cache.learn_sampling(ctx.exporter, ctx.version, ctx.domain, s.sampler, rate);
      if (s.init_time_ms) cache.learn_init_time(ctx.exporter, ctx.version, ctx.domain, s.init_time_ms);
      continue;
    }
    finish(ctx, cache, scratch, s);
    scratch.time_received = time_received;
    scratch.exporter_address = ctx.exporter;
    std::uint64_t rate = s.sampling();
    if (!rate && s.sampler) {
      if (last_sampler != s.sampler) {
        last_sampler = s.sampler;
        last_sampler_rate = cache.sampling_rate(ctx.exporter, ctx.version, ctx.domain, s.sampler);
      }
      rate = last_sampler_rate;
    } else if (!rate) {
      if (!have_default) {
        default_rate = cache.sampling_rate(ctx.exporter, ctx.version, ctx.domain, std::nullopt);
        have_default = true;
      }
      rate = default_rate;
    }
    scratch.sampling_rate = rate;
    out.emit(scratch);
  }
  return DecodeStatus::ok;
}

void learn_template(const ExportContext& ctx, std::uint16_t id, FlowTemplate tpl, TemplateCache& cache,
                    FlowRecord& scratch, FlowOutput& out) {
  const auto ready = cache.add_template(ctx.exporter, ctx.version, ctx.domain, id, std::move(tpl), ctx.received_ns);
  if (ready.empty()) return;
  const auto stored = cache.find(ctx.exporter, ctx.version, ctx.domain, id);
  if (!stored) return;
  for (const auto& pending : ready) decode_data_set(pending.ctx, *stored, pending.body, cache, scratch, out);
}

}  // namespace sluice
