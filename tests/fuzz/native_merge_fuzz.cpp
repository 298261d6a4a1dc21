// libFuzzer target: merge_native_blocks on arbitrary bytes. The input is cut into one to four bodies
// (the first byte says where); the merge must either refuse or give a block that merges again into
// itself (a merged block is one well-formed block) with the rows of all the inputs.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/native_merge.hpp"
#include "native_block_fuzz.hpp"

namespace {

[[noreturn]] void fail() { __builtin_trap(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::size_t parts = 1 + data[0] % 4;
  std::vector<std::string_view> bodies;
  const std::size_t step = input.size() / parts;
  for (std::size_t k = 0; k < parts; ++k) {
    const std::size_t from = k * step;
    bodies.push_back(input.substr(from, k + 1 == parts ? std::string_view::npos : step));
  }
  std::string merged;
  if (!sluice::merge_native_blocks(bodies, merged)) return 0;
  // One block now: merging it alone gives it back, byte for byte.
  std::string again;
  const std::vector<std::string_view> one{merged};
  if (!sluice::merge_native_blocks(one, again) || again != merged) fail();
  if (sluice::fuzz::rows_of_first_block(merged) == 0) fail();
  return 0;
}
