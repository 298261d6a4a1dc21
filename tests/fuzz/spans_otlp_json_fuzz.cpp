// Fuzzes the OTLP JSON ExportTraceServiceRequest decoder and the spans-table encoding of what it emits (both dialects): no
// crash, every emitted span has non-zero ids and stays within the limits, and the counts add up.
#include "decoders/spans/otlp_json.hpp"
#include "span_decoder_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return sluice::fuzz::fuzz_span_decoder<sluice::spans::OtlpJsonDecoder>(data, size);
}
