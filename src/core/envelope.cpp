#include "core/envelope.hpp"

#include <arpa/inet.h>

#include <cstring>

#include "core/bytes.hpp"

namespace sluice {

const char* to_string(SourceKind kind) {
  switch (kind) {
    case SourceKind::netflow: return "netflow";
    case SourceKind::sflow: return "sflow";
    case SourceKind::falcon: return "falcon";
    case SourceKind::graphite: return "graphite";
    case SourceKind::log: return "log";
    case SourceKind::span: return "span";
  }
  return "unknown";
}

const char* to_string(EnvelopeError e) {
  switch (e) {
    case EnvelopeError::none: return "none";
    case EnvelopeError::truncated: return "truncated envelope";
    case EnvelopeError::bad_version: return "unsupported envelope version";
    case EnvelopeError::bad_kind: return "unknown envelope kind";
  }
  return "unknown";
}

Ip6 ip6_from_v4(std::uint32_t v4) {
  Ip6 a{};
  a[10] = 0xff;
  a[11] = 0xff;
  a[12] = static_cast<std::uint8_t>(v4 >> 24);
  a[13] = static_cast<std::uint8_t>(v4 >> 16);
  a[14] = static_cast<std::uint8_t>(v4 >> 8);
  a[15] = static_cast<std::uint8_t>(v4);
  return a;
}

bool ip6_is_v4_mapped(const Ip6& a) {
  static constexpr std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a.data(), prefix, 12) == 0;
}

std::string ip6_to_string(const Ip6& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ip6_is_v4_mapped(a)) {
    inet_ntop(AF_INET, a.data() + 12, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, a.data(), buf, sizeof buf);
  }
  return buf;
}

std::optional<Ip6> ip6_parse(std::string_view text) {
  std::string s(text);
  Ip6 a{};
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) return ip6_from_v4(ntohl(v4.s_addr));
  if (inet_pton(AF_INET6, s.c_str(), a.data()) == 1) return a;
  return std::nullopt;
}

void encode_envelope_header(const Envelope& e, std::span<std::byte, kEnvelopeHeaderSize> out) {
  auto* p = reinterpret_cast<std::uint8_t*>(out.data());
  p[0] = kEnvelopeVersion;
  p[1] = static_cast<std::uint8_t>(e.kind);
  store_be16(p + 2, e.source_port);
  store_be64(p + 4, e.received_ns);
  std::memcpy(p + 12, e.source_address.data(), 16);
}

void encode_envelope(const Envelope& e, std::vector<std::byte>& out) {
  const auto start = out.size();
  out.resize(start + kEnvelopeHeaderSize + e.payload.size());
  encode_envelope_header(e, std::span<std::byte, kEnvelopeHeaderSize>(out.data() + start, kEnvelopeHeaderSize));
  if (!e.payload.empty()) {
    std::memcpy(out.data() + start + kEnvelopeHeaderSize, e.payload.data(), e.payload.size());
  }
}

EnvelopeError decode_envelope(std::span<const std::byte> bytes, Envelope& out) {
  if (bytes.size() < kEnvelopeHeaderSize) return EnvelopeError::truncated;
  const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
  if (p[0] != kEnvelopeVersion) return EnvelopeError::bad_version;
  if (p[1] < 1 || p[1] > 6) return EnvelopeError::bad_kind;
  out.kind = static_cast<SourceKind>(p[1]);
  out.source_port = load_be16(p + 2);
  out.received_ns = load_be64(p + 4);
  std::memcpy(out.source_address.data(), p + 12, 16);
  out.payload = bytes.subspan(kEnvelopeHeaderSize);
  return EnvelopeError::none;
}

}  // namespace sluice
