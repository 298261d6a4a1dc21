// Open-Falcon metric values: parsing and validation of /api/push bodies, Transfer.Update params and
// "update ..." lines, exactly as Open-Falcon's transfer accepts them.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::falcon {

enum class CounterType : std::uint8_t { gauge, counter, derive };
const char* to_string(CounterType t);

// Why a value was refused; each is a label of sluice_falcon_invalid_total.
enum class Invalid : std::uint8_t {
  nil_entry,        // null in the array
  not_an_object,    // anything else that is not an object
  hostname_metric,  // metric "kernel.hostname" (agents send it; transfer drops it)
  empty_metric,
  empty_endpoint,
  bad_counter_type,
  empty_value,
  bad_step,         // step <= 0 or not an integer
  too_long,         // len(metric) + len(tags) > 510
  bad_value,        // not parseable as a float
  count_,
};
const char* to_string(Invalid reason);

struct Tag {
  std::string_view key, value;
};

// One valid value. Views point into the request body, which outlives the callback.
struct MetricValue {
  std::string_view endpoint, metric, tags_text;
  static constexpr std::size_t kMaxTags = 32;
  std::array<Tag, kMaxTags> tags{};  // sorted by key
  std::uint8_t tag_count = 0;
  double value = 0;
  std::int64_t timestamp = 0;
  std::int32_t step = 0;
  CounterType counter_type = CounterType::gauge;
};

struct ParseCounts {
  std::uint64_t total = 0;
  std::uint64_t valid = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(Invalid::count_)> invalid{};
  std::uint64_t invalid_total() const;
};

using MetricCallback = std::function<void(const MetricValue&)>;

// Parses a JSON array of metric values (the /api/push body, or Transfer.Update's first param).
// `now` replaces timestamps <= 0 or > 2 * now. Individual bad values are counted, not fatal. A body
// that is not one well-formed JSON array is refused whole, as Open-Falcon does: false (with `error`),
// nothing delivered, nothing counted. Views in the values are valid during the callback.
bool parse_json_values(std::string_view json, std::int64_t now, const MetricCallback& on_value, ParseCounts& counts,
                       std::string* error);

// Validates and completes one value given as strings (the line protocol and tests use this).
// `value_is_number` says whether the JSON value was a number (otherwise it was a string).
bool validate(std::string_view endpoint, std::string_view metric, std::string_view value_text, std::string_view tags,
              std::string_view counter_type, std::int64_t step, std::int64_t timestamp, std::int64_t now,
              MetricValue& out, Invalid& why);

// The line socket: "update <endpoint> <metric> <timestamp> <value> [<counterType>] [<step>]"; step
// may also be "heartbeat:min:max:step". Returns what the line is.
enum class LineKind { value, quit, invalid, unknown_command };
LineKind parse_line(std::string_view line, std::int64_t now, MetricValue& out, Invalid& why);

// "k1=v1,k2=v2" → tags sorted by key; spaces around keys and values trimmed. Returns false if there
// are more than MetricValue::kMaxTags.
bool parse_tags(std::string_view text, MetricValue& out);

}  // namespace sluice::falcon
