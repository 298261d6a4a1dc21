// Fuzzes a whole log RuleSet (every parser, timestamps, conditions, templates, convert, drop and route)
// and every timestamp format: no input may crash, and the raw line survives unless a rule replaces it.
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/metrics.hpp"
#include "transforms/rules/rules.hpp"
#include "transforms/rules/timestamp.hpp"

using namespace sluice::transforms;
using namespace sluice::transforms::rules;

namespace {

constexpr const char* kRules = R"re(
rules:
  - name: json
    when: {source: "j*"}
    steps:
      - parse: {format: json, max_fields: 100, flatten_depth: 4}
      - timestamp: {field: ts, format: rfc3339}
      - message: {from: msg}
  - name: logfmt
    when: {source: "l*"}
    steps:
      - parse: {format: logfmt, into: "lf.", max_fields: 100}
      - timestamp: {field: lf.time, format: unix_ms, remove: true}
      - parse: {format: json, from: lf.body, into: "b.", max_fields: 100}
  - name: regex
    when: {source: "r*"}
    steps:
      - parse: {format: regex, pattern: '^(?<client>\S+) \S+ (?<user>\S+) \[(?<time>[^\]]+)\] "(?<method>[A-Z]+) (?<path>[^ "]+)[^"]*" (?<status>\d{3}) (?<bytes>\d+|-)'}
      - timestamp: {field: time, format: common_log, remove: true}
      - convert: {status: integer, bytes: integer}
  - name: syslog
    when: {source: "s*"}
    steps:
      - parse: {format: regex, pattern: '^(?<ts>\w{3} +\d+ [\d:]+) (?<host>\S+) (?<msg>.*)$'}
      - timestamp: {field: ts, format: syslog}
  - rename: {level: severity}
  - remove: ["tmp*"]
  - template: {key: "{{severity}}/{{.source}}/{{status}}"}
  - if: {any: [{field: severity, equals: debug}, {field: .message, matches: '^\s*$'}]}
    drop: true
  - if: {all: [{field: status, gte: 500}, {not: {field: user, equals: "-"}}]}
    route: errors
)re";

const std::vector<std::string> kFormats = {"rfc3339", "unix", "unix_ms", "unix_us", "unix_ns", "common_log", "syslog",
                                           "%Y-%m-%d %H:%M:%S.%f %z", "%d/%m/%y %I:%M %p", "%a %b %e %T %Y", "%s"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static sluice::MetricsRegistry metrics;
  static const RuleSet set = [] {
    auto root = sluice::config::ConfigReader::root(YAML::Load(kRules));
    auto s = RuleSet::read(root, metrics);
    root.check();
    return s;
  }();
  static auto scratch = set.make_scratch();
  static const std::vector<TimestampFormat> formats = [] {
    std::vector<TimestampFormat> v;
    for (const auto& f : kFormats) v.push_back(*TimestampFormat::make(f, nullptr));
    return v;
  }();
  if (size == 0) return 0;
  static const char* kSources[] = {"json", "logfmt", "regex", "syslog"};
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  LogEvent event;
  event.source = kSources[data[0] % 4];
  event.path = "/var/log/x.log";
  event.message.assign(text);
  event.timestamp_ms = 1795262400000;
  const Outcome outcome = set.apply(event, *scratch);
  if (outcome == Outcome::keep && event.source[0] != 'j' && event.message != text) __builtin_trap();
  if (event.field_count() > 100 + 16) __builtin_trap();
  for (const auto& f : formats) {
    if (const auto ms = f.parse(text, event.timestamp_ms)) {
      if (*ms < TimestampFormat::kMinMs || *ms >= TimestampFormat::kMaxMs) __builtin_trap();
    }
  }
  return 0;
}
