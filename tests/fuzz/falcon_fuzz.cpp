// Fuzzes Open-Falcon input: /api/push bodies and line-socket lines.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "decoders/falcon.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  sluice::falcon::ParseCounts counts;
  std::string error;
  sluice::falcon::parse_json_values(text, 1'700'000'000, [](const sluice::falcon::MetricValue& v) {
    if (v.tag_count > sluice::falcon::MetricValue::kMaxTags || v.step <= 0) __builtin_trap();
  }, counts, &error);
  if (counts.valid + counts.invalid_total() != counts.total) __builtin_trap();
  sluice::falcon::MetricValue v;
  sluice::falcon::Invalid why{};
  sluice::falcon::parse_line(text, 1'700'000'000, v, why);
  return 0;
}
