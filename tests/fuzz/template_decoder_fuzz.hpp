// Shared body of the NetFlow v9 and IPFIX fuzz targets: arbitrary bytes as one export, decoded twice
// through one template cache, so data sets also meet templates learned from the same input (and held
// data gets released).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/metrics.hpp"
#include "decoders/flow_decoder.hpp"
#include "decoders/template_cache.hpp"

namespace sluice::fuzz {

class Discard : public FlowOutput {
 public:
  void emit(FlowRecord& record) override {
    sink_ ^= record.bytes ^ record.packets ^ record.time_flow_start ^ record.sampling_rate ^ record.src_addr[15];
  }
  std::uint64_t sink_ = 0;
};

template <typename Decode>
int decode_twice(const std::uint8_t* data, std::size_t size, std::uint8_t version, Decode decode) {
  std::vector<std::uint8_t> bytes(data, data + size);
  if (bytes.size() >= 2) {  // the dispatcher already covers other versions
    bytes[0] = 0;
    bytes[1] = version;
  }
  Envelope env;
  env.received_ns = 1'700'000'000'000'000'000ULL;
  env.source_address = ip6_from_v4(0xc0000201);
  env.payload = std::as_bytes(std::span(bytes));
  MetricsRegistry metrics;
  TemplateCacheLimits limits;
  limits.max_templates = 16;  // small, so eviction runs too
  limits.pending_sets_per_exporter = 4;
  TemplateCache cache(metrics, limits);
  FlowRecord scratch;
  Discard out;
  for (int pass = 0; pass < 2; ++pass) {
    const auto status = decode(env, cache, scratch, out);
    if (to_string(status)[0] == '\0') __builtin_trap();
    env.received_ns += 1'000'000'000ULL;
  }
  if (cache.template_count() > limits.max_templates) __builtin_trap();
  return 0;
}

}  // namespace sluice::fuzz
