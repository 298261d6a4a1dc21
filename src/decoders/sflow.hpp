// sFlow v5 decoder: flow and expanded flow samples (raw packet headers, sampled IPv4/IPv6, extended
// switch/router/gateway records) into FlowRecords; counter samples are counted and skipped.
#pragma once

#include <cstdint>

#include "core/envelope.hpp"
#include "core/flow.hpp"
#include "decoders/flow_decoder.hpp"

namespace sluice {

struct SflowOptions {
  // Decode the Ethernet frame inside VXLAN (UDP to vxlan_port) so the flow describes the tenant's
  // packet rather than the tunnel. Off by default: without it the flow is the outer UDP packet.
  bool decode_vxlan = false;
  std::uint16_t vxlan_port = 4789;
};

// What a datagram held besides the emitted flows, for the caller's counters.
struct SflowCounts {
  std::uint32_t flow_samples = 0;     // flow and expanded flow samples (one flow each)
  std::uint32_t counter_samples = 0;  // counter and expanded counter samples, skipped
  std::uint32_t skipped_samples = 0;  // other formats or enterprises, skipped by their length
  std::uint32_t skipped_records = 0;  // flow records of formats not decoded, skipped by their length
};

// Decodes one sFlow v5 datagram (the envelope payload): one FlowRecord per flow sample, written into
// `scratch` (reset first) and emitted. The whole datagram's structure (every sample and record length,
// every known record's inner lengths) is checked before the first emit, so a rejected datagram emits
// nothing. Per flow: bytes = the raw header's frame length (else the sampled IPv4/IPv6 length, else the
// Ethernet frame record's length), packets = 1, sampling_rate from the sample, time_received and the
// flow times from the envelope. exporter_address is the datagram's agent address, as Akvorado does:
// it names the switch even when a relay or NAT sits between it and the collector; an agent address of
// 0.0.0.0 or :: (misconfigured agents) falls back to the envelope's source. Never allocates.
DecodeStatus decode_sflow(const Envelope& env, FlowRecord& scratch, FlowOutput& out, const SflowOptions& options,
                          SflowCounts* counts = nullptr);
// The same with default options (no VXLAN decoding).
DecodeStatus decode_sflow(const Envelope& env, FlowRecord& scratch, FlowOutput& out);

}  // namespace sluice
