// Fuzzes the logfmt parser of the log rules: a malformed line writes no field and says where it broke.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "transforms/rules/parsers.hpp"

using namespace sluice::transforms;
using namespace sluice::transforms::rules;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static LogfmtParser parser;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ParseLimits limits;
  limits.max_fields = 32;
  LogEvent event;
  event.set("pre", "x");
  std::string error;
  const Failure f = parser.parse(text, "", limits, event, error);
  if (f == Failure::logfmt_syntax && (event.field_count() != 1 || error.find(" at byte ") == std::string::npos)) {
    __builtin_trap();
  }
  if (f != Failure::none && error.rfind("logfmt: ", 0) != 0) __builtin_trap();
  if (event.field_count() > limits.max_fields) __builtin_trap();
  for (std::size_t i = 0; i < event.field_count(); ++i) {
    if (event.field(i).name.empty()) __builtin_trap();
  }
  return 0;
}
