// Hand-built NetFlow v9 / IPFIX datagrams for unit tests (RFC 3954 / RFC 7011 layouts).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "core/envelope.hpp"
#include "core/flow.hpp"
#include "decoders/flow_decoder.hpp"

namespace sluice::testing {

class PacketBuilder {
 public:
  PacketBuilder& u8(std::uint64_t v) {
    b_.push_back(static_cast<std::uint8_t>(v));
    return *this;
  }
  PacketBuilder& u16(std::uint64_t v) {
    for (int s = 8; s >= 0; s -= 8) u8(v >> s);
    return *this;
  }
  PacketBuilder& u24(std::uint64_t v) {
    for (int s = 16; s >= 0; s -= 8) u8(v >> s);
    return *this;
  }
  PacketBuilder& u32(std::uint64_t v) {
    for (int s = 24; s >= 0; s -= 8) u8(v >> s);
    return *this;
  }
  PacketBuilder& u48(std::uint64_t v) {
    for (int s = 40; s >= 0; s -= 8) u8(v >> s);
    return *this;
  }
  PacketBuilder& u64(std::uint64_t v) {
    for (int s = 56; s >= 0; s -= 8) u8(v >> s);
    return *this;
  }
  PacketBuilder& ip(const std::string& text) {
    const Ip6 a = *ip6_parse(text);
    if (ip6_is_v4_mapped(a)) b_.insert(b_.end(), a.begin() + 12, a.end());
    else b_.insert(b_.end(), a.begin(), a.end());
    return *this;
  }
  PacketBuilder& raw(const std::string& s) {
    b_.insert(b_.end(), s.begin(), s.end());
    return *this;
  }
  PacketBuilder& zeros(std::size_t n) {
    b_.insert(b_.end(), n, 0);
    return *this;
  }

  // NetFlow v9 header; the count is informational only.
  PacketBuilder& v9_header(std::uint32_t uptime_ms, std::uint32_t unix_secs, std::uint32_t source_id,
                           std::uint16_t count = 1, std::uint32_t sequence = 1) {
    return u16(9).u16(count).u32(uptime_ms).u32(unix_secs).u32(sequence).u32(source_id);
  }
  // IPFIX header; finish_ipfix() fills in the message length.
  PacketBuilder& ipfix_header(std::uint32_t export_secs, std::uint32_t domain, std::uint32_t sequence = 1) {
    return u16(10).u16(0).u32(export_secs).u32(sequence).u32(domain);
  }
  PacketBuilder& finish_ipfix() {
    store_be16(b_.data() + 2, static_cast<std::uint16_t>(b_.size()));
    return *this;
  }

  // A set / flowset: begin writes the id and a placeholder length, end fills the length in.
  PacketBuilder& begin_set(std::uint16_t id) {
    set_start_ = b_.size();
    return u16(id).u16(0);
  }
  PacketBuilder& end_set() {
    store_be16(b_.data() + set_start_ + 2, static_cast<std::uint16_t>(b_.size() - set_start_));
    return *this;
  }

  // A v9 template record: (id, length) pairs.
  PacketBuilder& v9_template(std::uint16_t id, const std::vector<std::pair<std::uint16_t, std::uint16_t>>& fields) {
    u16(id).u16(fields.size());
    for (auto [type, len] : fields) u16(type).u16(len);
    return *this;
  }

  std::vector<std::uint8_t>& bytes() { return b_; }
  std::size_t size() const { return b_.size(); }

 private:
  std::vector<std::uint8_t> b_;
  std::size_t set_start_ = 0;
};

inline Envelope envelope_of(const std::vector<std::uint8_t>& bytes, const std::string& exporter = "192.0.2.9",
                            std::uint64_t received_ns = 1'700'000'100'000'000'000ULL) {
  Envelope env;
  env.received_ns = received_ns;
  env.kind = SourceKind::netflow;
  env.source_address = *ip6_parse(exporter);
  env.source_port = 2055;
  env.payload = std::as_bytes(std::span(bytes));
  return env;
}

class CollectFlows : public FlowOutput {
 public:
  void emit(FlowRecord& record) override { flows.push_back(record); }
  std::vector<FlowRecord> flows;
};

}  // namespace sluice::testing
