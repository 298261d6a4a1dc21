// libFuzzer target: arbitrary bytes as a IPFIX message, decoded twice through one template
// cache so data sets also meet templates learned from the same input (and held data gets released).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/metrics.hpp"
#include "decoders/ipfix.hpp"

namespace {

class Discard : public sluice::FlowOutput {
 public:
  void emit(sluice::FlowRecord& record) override {
    sink_ ^= record.bytes ^ record.packets ^ record.time_flow_start ^ record.sampling_rate ^ record.src_addr[15];
  }
  std::uint64_t sink_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> bytes(data, data + size);
  if (bytes.size() >= 2) {  // the dispatcher already covers other versions
    bytes[0] = 0;
    bytes[1] = 10;
  }
  sluice::Envelope env;
  env.received_ns = 1'700'000'000'000'000'000ULL;
  env.source_address = sluice::ip6_from_v4(0xc0000201);
  env.payload = std::as_bytes(std::span(bytes));
  sluice::MetricsRegistry metrics;
  sluice::TemplateCacheLimits limits;
  limits.max_templates = 16;  // small, so eviction runs too
  limits.pending_sets_per_exporter = 4;
  sluice::TemplateCache cache(metrics, limits);
  sluice::FlowRecord scratch;
  Discard out;
  for (int pass = 0; pass < 2; ++pass) {
    const auto status = sluice::decode_ipfix(env, cache, scratch, out);
    if (sluice::to_string(status)[0] == '\0') __builtin_trap();
    env.received_ns += 1'000'000'000ULL;
  }
  if (cache.template_count() > limits.max_templates) __builtin_trap();
  return 0;
}
