// Fuzzes the JSON flattener of the log rules: any input either fails with a reason and no fields, or
// gives fields within the limit whose typed values (numbers, booleans, JSON) are valid JSON again.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "transforms/rules/parsers.hpp"

using namespace sluice::transforms;
using namespace sluice::transforms::rules;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static JsonFlattener json;
  static simdjson::dom::parser check;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ParseLimits limits;
  limits.max_fields = 64;
  limits.flatten_depth = size % 2 ? 3 : kMaxJsonDepth;
  LogEvent event;
  std::string error;
  const Failure f = json.parse(text, size % 3 ? "" : "p.", limits, event, error);
  if (f != Failure::none && error.rfind("json: ", 0) != 0) __builtin_trap();
  if (f != Failure::none && f != Failure::too_many_fields && event.field_count() != 0) __builtin_trap();
  if (event.field_count() > limits.max_fields) __builtin_trap();
  for (std::size_t i = 0; i < event.field_count(); ++i) {
    const LogField& field = event.field(i);
    if (field.type == FieldType::string || field.type == FieldType::null) continue;
    const simdjson::padded_string copy(field.value);
    simdjson::dom::element e;
    if (check.parse(copy).get(e) != simdjson::SUCCESS) __builtin_trap();
  }
  return 0;
}
