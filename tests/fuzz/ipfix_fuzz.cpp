// libFuzzer target: arbitrary bytes as an IPFIX message (see template_decoder_fuzz.hpp).
#include "decoders/ipfix.hpp"
#include "template_decoder_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return sluice::fuzz::decode_twice(data, size, 10, [](auto&... args) { return sluice::decode_ipfix(args...); });
}
