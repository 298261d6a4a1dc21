#include "decoders/netflow_v5.hpp"

#include "core/bytes.hpp"

namespace sluice {
namespace {

// Absolute unix seconds of a record's First/Last switched (sysUptime milliseconds), relative to the
// header's export time. The difference is taken modulo 2^32 and read as signed, so a sysUptime that
// wrapped (every ~49.7 days) between First and the export still gives a flow a little in the past,
// while a First slightly after sysUptime (exporters with sloppy clocks) gives one a little in the future
// instead of one 49 days ago.
std::uint32_t switched_to_unix(std::int64_t export_ms, std::uint32_t sys_uptime, std::uint32_t switched) {
  const auto age_ms = static_cast<std::int32_t>(sys_uptime - switched);
  const std::int64_t at_ms = export_ms - age_ms;
  if (at_ms <= 0) return 0;
  return static_cast<std::uint32_t>(at_ms / 1000);
}

}  // namespace

DecodeStatus decode_netflow_v5(const Envelope& env, FlowRecord& scratch, FlowOutput& out) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(env.payload.data());
  const std::size_t size = env.payload.size();
  if (size < kNetflowV5HeaderSize) return DecodeStatus::truncated;
  if (load_be16(p) != 5) return DecodeStatus::bad_version;
  const std::uint16_t count = load_be16(p + 2);
  if (count == 0 || count > kNetflowV5MaxCount) return DecodeStatus::bad_count;
  if (size < kNetflowV5HeaderSize + std::size_t{count} * kNetflowV5RecordSize) return DecodeStatus::truncated;

  const std::uint32_t sys_uptime = load_be32(p + 4);
  const std::uint32_t unix_secs = load_be32(p + 8);
  const std::uint32_t unix_nsecs = load_be32(p + 12);
  const std::uint16_t sampling = load_be16(p + 22);
  // Low 14 bits: the interval (1 in N); top 2 bits: the mode. 0 means the exporter does not sample.
  const std::uint16_t interval = sampling & 0x3fff;
  const std::uint64_t sampling_rate = interval == 0 ? 1 : interval;
  const std::int64_t export_ms = std::int64_t{unix_secs} * 1000 + unix_nsecs / 1'000'000;
  const auto time_received = static_cast<std::uint32_t>(env.received_ns / 1'000'000'000ULL);

  for (std::uint16_t i = 0; i < count; ++i) {
    const std::uint8_t* r = p + kNetflowV5HeaderSize + std::size_t{i} * kNetflowV5RecordSize;
    scratch.reset();
    scratch.time_received = time_received;
    scratch.sampling_rate = sampling_rate;
    scratch.exporter_address = env.source_address;
    scratch.src_addr = ip6_from_v4(load_be32(r + 0));
    scratch.dst_addr = ip6_from_v4(load_be32(r + 4));
    scratch.next_hop = ip6_from_v4(load_be32(r + 8));
    scratch.in_if = load_be16(r + 12);
    scratch.out_if = load_be16(r + 14);
    scratch.packets = load_be32(r + 16);
    scratch.bytes = load_be32(r + 20);
    scratch.time_flow_start = switched_to_unix(export_ms, sys_uptime, load_be32(r + 24));
    scratch.time_flow_end = switched_to_unix(export_ms, sys_uptime, load_be32(r + 28));
    scratch.src_port = load_be16(r + 32);
    scratch.dst_port = load_be16(r + 34);
    // r[36] is pad1.
    scratch.tcp_flags = r[37];
    scratch.proto = r[38];
    scratch.ip_tos = r[39];
    scratch.src_as = load_be16(r + 40);
    scratch.dst_as = load_be16(r + 42);
    scratch.src_net_mask = r[44];
    scratch.dst_net_mask = r[45];
    // r[46..47] is pad2.
    scratch.etype = 0x0800;  // v5 carries IPv4 only
    out.emit(scratch);
  }
  return DecodeStatus::ok;
}

}  // namespace sluice
