// Envelope: what the inlet wraps around every received payload before it goes on the bus.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace sluice {

enum class SourceKind : std::uint8_t {
  netflow = 1,  // NetFlow v5/v9 and IPFIX datagrams
  sflow = 2,    // sFlow v5 datagrams
  falcon = 3,   // Open-Falcon metric values
  graphite = 4, // Graphite plaintext lines
  log = 5,      // log lines
  span = 6,     // trace spans
};

const char* to_string(SourceKind kind);

// An IPv6 address in network order; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d).
using Ip6 = std::array<std::uint8_t, 16>;

Ip6 ip6_from_v4(std::uint32_t v4_host_order);
bool ip6_is_v4_mapped(const Ip6& a);
std::string ip6_to_string(const Ip6& a);  // dotted quad for mapped IPv4, RFC 5952 otherwise
std::optional<Ip6> ip6_parse(std::string_view text);

struct Envelope {
  std::uint64_t received_ns = 0;  // unix time of reception, nanoseconds
  SourceKind kind = SourceKind::netflow;
  Ip6 source_address{};
  std::uint16_t source_port = 0;
  std::span<const std::byte> payload;  // a view: the envelope never owns its payload
};

// Wire format v1 (docs/envelope.md), all integers big-endian:
//   0  u8  version (1)        1  u8  kind            2  u16 source port
//   4  u64 received_ns       12  16 bytes source address
//  28  payload (to the end of the message)
inline constexpr std::size_t kEnvelopeHeaderSize = 28;
inline constexpr std::uint8_t kEnvelopeVersion = 1;

// Writes the header into `out` (exactly kEnvelopeHeaderSize bytes); the caller appends the payload.
void encode_envelope_header(const Envelope& e, std::span<std::byte, kEnvelopeHeaderSize> out);
// Appends header and payload to `out`.
void encode_envelope(const Envelope& e, std::vector<std::byte>& out);

enum class EnvelopeError { none, truncated, bad_version, bad_kind };
const char* to_string(EnvelopeError e);

// Decodes a message from the bus; the payload is a view into `bytes`.
EnvelopeError decode_envelope(std::span<const std::byte> bytes, Envelope& out);

}  // namespace sluice
