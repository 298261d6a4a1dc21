// RuleSet config errors (every one reported, with its key path) and hostile lines through whole rule sets.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/metrics.hpp"
#include "transforms/rules/rules.hpp"

namespace sluice::transforms::rules {
namespace {

// Reads `rules_yaml` at outlet.logs.rules, as the outlet does; returns the errors reported.
std::vector<std::string> errors_of(const std::string& rules_yaml) {
  MetricsRegistry metrics;
  auto root = config::ConfigReader::root(YAML::Load("outlet:\n  logs:\n    rules:\n" + rules_yaml));
  auto outlet = root.child("outlet");
  auto logs = outlet.child("logs");
  RuleSet::read(logs, metrics);
  logs.finish();
  try {
    root.check();
  } catch (const config::ConfigError& e) {
    return e.errors();
  }
  return {};
}

TEST(RulesConfig, ReportsEveryProblemWithItsKeyPath) {
  const auto errors = errors_of(R"(
      - parse: {format: json}
      - parse: {format: regex, pattern: '(?<a>x'}
      - parse: {format: regex, pattern: '(\d+)'}
      - parse: {format: xml}
      - parse: {format: json, pattern: 'x', flatten_depth: 99}
      - rename: {a: b}
        add: {c: d}
      - {}
      - timestamp: {field: t, format: '%Y-%Q'}
      - if: {field: status, gte: lots}
        drop: true
      - if: {field: a, equals: b, matches: c}
        drop: true
      - if: {all: [{field: a, matches: '[z'}]}
        route: x
      - convert: {a: decimal}
      - template: {x: "{{a}"}
      - when: {}
        add: {a: b}
      - parse: {format: logfmt, colour: red}
      - steps: []
      - route: ""
)");
  const std::vector<std::string> expected = {
      "outlet.logs.rules[1].parse.pattern: invalid regular expression at offset 6: missing closing parenthesis",
      "outlet.logs.rules[2].parse.pattern: has no named groups; name what it captures: (?<field>...)",
      "outlet.logs.rules[3].parse.format: expected one of json, logfmt, regex, got 'xml'",
      "outlet.logs.rules[4].parse.flatten_depth: expected an integer between 1 and 32, got 99",
      "outlet.logs.rules[4].parse.pattern: only format: regex takes a pattern",
      "outlet.logs.rules[5].add: a rule has one operation; found rename and add (write one rule each, or group them "
      "under steps:)",
      "outlet.logs.rules[6].parse: a rule needs one operation: parse, rename, remove, add, template, message, "
      "timestamp, convert, drop, route, steps",
      "outlet.logs.rules[7].timestamp.format: unknown directive '%Q' in timestamp format '%Y-%Q' (known: %Y %y %m %d "
      "%e %H %I %p %M %S %f %z %Z %b %B %a %s %T %F %%)",
      "outlet.logs.rules[8].if.gte: expected a number, got 'lots'",
      "outlet.logs.rules[9].if.matches: a condition has one test; found equals and matches (combine tests with all: "
      "or any:)",
      "outlet.logs.rules[10].if.all[0].matches: invalid regular expression at offset 2: missing terminating ] for "
      "character class",
      "outlet.logs.rules[11].convert.a: expected integer, float, boolean or string, got 'decimal'",
      "outlet.logs.rules[12].template.x: unterminated '{{' at offset 0 in '{{a}'",
      "outlet.logs.rules[13].when.source: a selector needs source or path globs",
      "outlet.logs.rules[14].parse.colour: unknown key (known keys here: error_field, format, from, into, max_bytes, "
      "max_fields)",
      "outlet.logs.rules[15].steps: expected a non-empty list of rules",
      "outlet.logs.rules[16].route: expected a route name",
  };
  EXPECT_EQ(errors, expected);
}

TEST(RulesConfig, AValidSetHasNoErrors) {
  EXPECT_EQ(errors_of(R"(
      - name: all-of-it
        when: {source: "a*", path: ["/x/*"]}
        if: {not: {field: level, exists: false}}
        steps:
          - parse: {format: json, into: "j.", flatten_depth: 4, max_fields: 100, max_bytes: 64KiB, error_field: err}
          - parse: {format: logfmt, from: j.inner}
          - parse: {format: regex, from: .message, pattern: '(?<w>\w+)'}
          - rename: {a: b}
          - remove: ["x.*"]
          - add: {fields: {k: v}, overwrite: false}
          - template: {.route: "{{w}}"}
          - message: {from: w, remove: false}
          - timestamp: {field: t, format: syslog, remove: true}
          - convert: {n: integer}
          - drop: false
)"),
            std::vector<std::string>{});
}

TEST(RulesHostile, HugeBinaryDeepAndInvalidLinesNeverCrash) {
  MetricsRegistry metrics;
  auto root = config::ConfigReader::root(YAML::Load(R"re(
rules:
  - name: j
    parse: {format: json, into: "j."}
  - name: l
    parse: {format: logfmt, into: "l."}
  - name: r
    parse: {format: regex, pattern: '^(?<a>[^ ]*) (?<b>.*)$', into: "r."}
  - name: t
    timestamp: {field: j.ts}
  - name: c
    convert: {r.a: integer}
)re"));
  const auto set = RuleSet::read(root, metrics);
  root.check();
  auto scratch = set.make_scratch();

  std::string binary;
  for (int i = 0; i < 4096; ++i) binary += static_cast<char>(i * 37 % 256);
  std::string deep_json = std::string(100'000, '[') + std::string(100'000, ']');
  std::string deep_object;
  for (int i = 0; i < 10'000; ++i) deep_object += "{\"a\":";
  deep_object += '1';
  deep_object.append(10'000, '}');
  std::string huge_json = "{\"big\":\"";
  huge_json.append(2 << 20, 'x');
  huge_json += "\"}";
  std::string many_pairs;
  for (int i = 0; i < 2000; ++i) {
    many_pairs += 'k';
    many_pairs += std::to_string(i);
    many_pairs += "=v ";
  }
  const std::vector<std::string> lines = {binary, deep_json, deep_object, huge_json, many_pairs,
                                          std::string(3 << 20, ' '), "\xff\xfe\xfd key=\"\xc3\x28\"", std::string(1, '\0')};
  for (const auto& line : lines) {
    LogEvent e;
    e.message = line;
    EXPECT_EQ(set.apply(e, *scratch), Outcome::keep);
    EXPECT_EQ(e.message, line);  // the raw line is kept byte for byte
    EXPECT_LE(e.field_count(), 512u + 1u);
  }
  // Deep JSON is rejected with its reason; huge input is not parsed at all.
  LogEvent deep;
  deep.message = deep_object;
  set.apply(deep, *scratch);
  EXPECT_EQ(deep.find("error")->value.substr(0, 35), "json: nested deeper than 32 levels;");
  LogEvent huge;
  huge.message = huge_json;
  set.apply(huge, *scratch);
  EXPECT_EQ(huge.find("error")->value.rfind("json: input of 2097162 bytes is longer than the limit of 1048576; ", 0), 0u);
  LogEvent pairs;
  pairs.message = many_pairs;
  set.apply(pairs, *scratch);
  EXPECT_LE(pairs.field_count(), 513u);
  EXPECT_NE(pairs.find("error")->value.find("logfmt: more than 512 fields, kept the first 512"), std::string::npos);
  EXPECT_GE(metrics.counter_value("rules_parse_failures_total", {{"rule", "j"}, {"reason", "json_depth"}}), 2u);
  EXPECT_GE(metrics.counter_value("rules_parse_failures_total", {{"rule", "j"}, {"reason", "too_long"}}), 2u);
}

}  // namespace
}  // namespace sluice::transforms::rules
