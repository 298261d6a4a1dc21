// Fuzzes regex parsing of the log rules: fixed real-world patterns against any line, and (first byte
// odd) a pattern taken from the input against the rest, so compile errors and hostile patterns are hit.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "transforms/rules/parsers.hpp"

using namespace sluice::transforms;
using namespace sluice::transforms::rules;

namespace {

struct Compiled {
  std::unique_ptr<Regex> re;
  std::vector<std::pair<std::string, std::uint32_t>> fields;
};

Compiled make(const std::string& pattern) {
  Compiled c;
  std::string error;
  c.re = Regex::compile(pattern, &error);
  if (c.re) {
    for (const auto& [name, group] : c.re->names()) c.fields.emplace_back("f." + name, group);
  } else if (error.rfind("invalid regular expression at offset ", 0) != 0) {
    __builtin_trap();
  }
  return c;
}

void check(const Compiled& c, std::string_view subject, MatchState& state) {
  ParseLimits limits;
  limits.max_fields = 16;
  LogEvent event;
  std::string error;
  const Failure f = regex_parse(*c.re, c.fields, subject, limits, event, state, error);
  if (f == Failure::regex_no_match && event.field_count() != 0) __builtin_trap();
  if (f != Failure::none && error.rfind("regex: ", 0) != 0) __builtin_trap();
  for (std::size_t i = 0; i < event.field_count(); ++i) {
    const auto& v = event.field(i).value;
    if (v.size() > subject.size()) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<Compiled> fixed = [] {
    std::vector<Compiled> v;
    v.push_back(make(R"re(^(?<client>\S+) \S+ (?<user>\S+) \[(?<time>[^\]]+)\] "(?<method>[A-Z]+) (?<path>[^ "]+) (?<protocol>[^"]+)" (?<status>\d{3}) (?<bytes>\d+|-)(?: "(?<referrer>[^"]*)" "(?<agent>[^"]*)")?)re"));
    v.push_back(make(R"re(^(?<ts>\w{3} +\d+ [\d:]+) (?<host>\S+) (?<app>[^:\[]+)(?:\[(?<pid>\d+)\])?: (?<msg>.*)$)re"));
    v.push_back(make(R"re(^(?<a>(x|xx)+)$)re"));
    v.push_back(make(R"re((?<k>\w+)=(?<v>"(?:[^"\\]|\\.)*"|\S*))re"));
    return v;
  }();
  static MatchState state(64);
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    for (const auto& c : fixed) check(c, text, state);
    return 0;
  }
  const auto nl = text.find('\n');
  if (nl == std::string_view::npos || nl > 200) return 0;
  const Compiled c = make(std::string(text.substr(0, nl)));
  if (!c.re || c.re->capture_count() > 63) return 0;
  check(c, text.substr(nl + 1), state);
  return 0;
}
