// libFuzzer target: arbitrary bytes as a NetFlow v9 datagram (see template_decoder_fuzz.hpp).
#include "decoders/netflow_v9.hpp"
#include "template_decoder_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return sluice::fuzz::decode_twice(data, size, 9, [](auto&... args) { return sluice::decode_netflow_v9(args...); });
}
