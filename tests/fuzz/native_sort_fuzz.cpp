// libFuzzer target: NativeSorter on arbitrary bytes, as one body and cut into up to four. It must either
// refuse, say the rows are in order, or give one block that is then in order (sorting it again says
// so) with the rows of the input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/native_sort.hpp"
#include "native_block_fuzz.hpp"

namespace {

[[noreturn]] void fail() { __builtin_trap(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // The first byte picks the key (of the names sluice's test blocks use), the second how many bodies.
  static const std::vector<std::vector<std::string>> keys = {{"a"}, {"a", "b"}, {"s"}, {"b", "s", "a"}};
  const auto& key = keys[data[0] % keys.size()];
  const std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);
  const std::size_t parts = 1 + data[1] % 4;
  std::vector<std::string_view> bodies;
  const std::size_t step = input.size() / parts;
  for (std::size_t k = 0; k < parts; ++k) bodies.push_back(input.substr(k * step, k + 1 == parts ? std::string_view::npos : step));
  sluice::NativeSorter sorter;
  std::string sorted;
  if (sorter.sort(bodies, key, sorted) != sluice::NativeSorter::Outcome::sorted) return 0;
  std::string again;
  if (sorter.sort(sorted, key, again) != sluice::NativeSorter::Outcome::already_sorted) fail();
  std::uint64_t rows = 0;
  for (const auto body : bodies) rows += sluice::fuzz::rows_of_first_block(body);  // (the first block of each: a lower bound)
  if (sluice::fuzz::rows_of_first_block(sorted) < rows) fail();
  return 0;
}
