// Fuzzes the Jaeger protobuf Span decoder and the spans-table encoding of what it emits (both dialects): no
// crash, every emitted span has non-zero ids and stays within the limits, and the counts add up.
#include "decoders/spans/jaeger.hpp"
#include "span_decoder_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return sluice::fuzz::fuzz_span_decoder<sluice::spans::JaegerProtoDecoder>(data, size);
}
