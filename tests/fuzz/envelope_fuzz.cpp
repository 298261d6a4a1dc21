// Fuzzes what an outlet reads from Kafka before any decoder runs: envelopes and commit metadata.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/envelope.hpp"
#include "pipeline/consumer_job.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  sluice::Envelope env;
  const auto bytes = std::span(reinterpret_cast<const std::byte*>(data), size);
  if (sluice::decode_envelope(bytes, env) == sluice::EnvelopeError::none) {
    // The payload view must stay inside the input.
    if (env.payload.data() < bytes.data() || env.payload.data() + env.payload.size() > bytes.data() + bytes.size()) {
      __builtin_trap();
    }
  }
  const auto ranges = sluice::pipeline::decode_pending_ranges(std::string_view(reinterpret_cast<const char*>(data), size));
  for (const auto& r : ranges) {
    if (r.first > r.last) __builtin_trap();
  }
  return 0;
}
