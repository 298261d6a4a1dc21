// libFuzzer target: arbitrary bytes as a NetFlow/IPFIX datagram through the version dispatcher.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/metrics.hpp"
#include "decoders/netflow.hpp"

namespace {

// Touches what it is given so the sanitizers see every field the decoder wrote.
class Discard : public sluice::FlowOutput {
 public:
  void emit(sluice::FlowRecord& record) override { sink_ ^= record.bytes ^ record.packets ^ record.time_flow_start; }
  std::uint64_t sink_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  sluice::Envelope env;
  env.received_ns = 1'700'000'000'000'000'000ULL;
  env.kind = sluice::SourceKind::netflow;
  env.source_address = sluice::ip6_from_v4(0xc0000201);
  env.source_port = 2055;
  env.payload = std::as_bytes(std::span(data, size));
  sluice::FlowRecord scratch;
  Discard out;
  sluice::MetricsRegistry metrics;
  sluice::TemplateCache cache(metrics);
  const auto status = sluice::decode_netflow(env, cache, scratch, out);
  // Every outcome must have a label for the rejection metric.
  if (sluice::to_string(status)[0] == '\0') __builtin_trap();
  return 0;
}
