// RuleSet operations, conditions, selection and metrics, driven through the YAML schema of docs/rules.md.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/metrics.hpp"
#include "transforms/rules/rules.hpp"

namespace sluice::transforms::rules {
namespace {

using Fields = std::vector<std::tuple<std::string, std::string, FieldType>>;
constexpr auto S = FieldType::string;
constexpr auto N = FieldType::number;
constexpr auto B = FieldType::boolean;

Fields fields_of(const LogEvent& e) {
  Fields out;
  for (std::size_t i = 0; i < e.field_count(); ++i) out.emplace_back(e.field(i).name, e.field(i).value, e.field(i).type);
  return out;
}

RuleSet load(const std::string& yaml, MetricsRegistry& metrics) {
  auto root = config::ConfigReader::root(YAML::Load(yaml));
  auto set = RuleSet::read(root, metrics);
  root.finish();
  root.check();
  return set;
}

LogEvent event(const std::string& message, const std::string& source = "logs", const std::string& path = "/var/log/app.log") {
  LogEvent e;
  e.host = "web-1";
  e.path = path;
  e.source = source;
  e.message = message;
  e.timestamp_ms = 1795262400000;
  return e;
}

struct OpCase {
  const char* name;
  std::string rules;  // YAML list under `rules:`
  std::string message;
  Fields expected;
  std::string expected_message;
};

TEST(RulesOps, EachOperationGivesExactFields) {
  ::setenv("SLUICE_RULES_TEST_TEAM", "payments", 1);
  const std::vector<OpCase> cases = {
      {"rename, in order, replacing a field of the new name",
       R"(
- parse: {format: logfmt}
- rename: {lvl: level, level: severity, missing: x})",
       "lvl=warn level=old", {{"severity", "warn", S}}, "lvl=warn level=old"},
      {"remove by name and by glob",
       R"(
- parse: {format: logfmt}
- remove: [a, "tmp.*"])",
       "a=1 tmp.x=2 tmp.y=3 keep=4 tmpz=5", {{"keep", "4", S}, {"tmpz", "5", S}}, ""},
      {"add constants, with environment substitution",
       R"(
- add: {env: prod, team: "${SLUICE_RULES_TEST_TEAM}"})",
       "x", {{"env", "prod", S}, {"team", "payments", S}}, "x"},
      {"add without overwrite keeps what is there",
       R"(
- parse: {format: logfmt}
- add: {fields: {env: prod, zone: a}, overwrite: false})",
       "env=dev", {{"env", "dev", S}, {"zone", "a", S}}, ""},
      {"template from fields and attributes; a missing field is empty",
       R"(
- parse: {format: logfmt}
- template: {key: "{{service}}/{{level}}", where: "{{ .host }}:{{.path}}", gap: "[{{nope}}]"})",
       "service=api level=error",
       {{"service", "api", S}, {"level", "error", S}, {"key", "api/error", S}, {"where", "web-1:/var/log/app.log", S},
        {"gap", "[]", S}},
       ""},
      {"template into the message",
       R"(
- parse: {format: logfmt}
- template: {.message: "{{level}}: {{msg}}"})",
       "level=info msg=hi", {{"level", "info", S}, {"msg", "hi", S}}, "info: hi"},
      {"message from a field removes it by default",
       R"(
- parse: {format: json}
- message: {from: msg})",
       R"({"msg":"started","pid":7})", {{"pid", "7", N}}, "started"},
      {"message from a field, kept",
       R"(
- parse: {format: json}
- message: {from: msg, remove: false})",
       R"({"msg":"started"})", {{"msg", "started", S}}, "started"},
      {"convert types for typed sinks",
       R"(
- parse: {format: logfmt}
- convert: {status: integer, took: float, ok: boolean, yes: boolean, n: string})",
       "status=200 took=1.25e-3 ok=true yes=1 n=5",
       {{"status", "200", N}, {"took", "1.25e-3", N}, {"ok", "true", B}, {"yes", "true", B}, {"n", "5", S}}, ""},
      {"parse a field into a prefix",
       R"(
- parse: {format: json}
- parse: {format: logfmt, from: inner, into: "in."})",
       R"({"inner":"a=1 b=\"x y\""})", {{"inner", "a=1 b=\"x y\"", S}, {"in.a", "1", S}, {"in.b", "x y", S}}, ""},
      {"steps run in order under one selector",
       R"(
- when: {source: "logs"}
  steps:
    - parse: {format: logfmt}
    - rename: {a: b}
    - add: {c: "3"})",
       "a=1", {{"b", "1", S}, {"c", "3", S}}, ""},
  };
  for (const auto& c : cases) {
    MetricsRegistry metrics;
    const auto set = load("rules:" + c.rules, metrics);
    auto scratch = set.make_scratch();
    auto e = event(c.message);
    EXPECT_EQ(set.apply(e, *scratch), Outcome::keep) << c.name;
    EXPECT_EQ(fields_of(e), c.expected) << c.name;
    EXPECT_EQ(e.message, c.expected_message.empty() ? c.message : c.expected_message) << c.name;
  }
}

TEST(RulesOps, TimestampSetsEventTimeOrRecordsTheFailure) {
  MetricsRegistry metrics;
  const auto set = load(R"(
rules:
  - parse: {format: json}
  - name: time
    timestamp: {field: ts, format: rfc3339, remove: true}
)", metrics);
  auto scratch = set.make_scratch();
  auto ok = event(R"({"ts":"2024-03-01T12:34:56.789+02:00","a":1})");
  set.apply(ok, *scratch);
  EXPECT_EQ(ok.timestamp_ms, 1709289296789);
  EXPECT_EQ(fields_of(ok), (Fields{{"a", "1", N}}));

  auto bad = event(R"({"ts":"yesterday"})");
  set.apply(bad, *scratch);
  EXPECT_EQ(bad.timestamp_ms, 1795262400000);  // unchanged: the time it was read
  EXPECT_EQ(fields_of(bad), (Fields{{"ts", "yesterday", S}, {"error", "timestamp: cannot read 'yesterday' as rfc3339", S}}));

  auto missing = event(R"({"a":1})");
  set.apply(missing, *scratch);
  EXPECT_EQ(missing.find("error")->value, "timestamp: field 'ts' not found");
  EXPECT_EQ(metrics.counter_value("rules_parse_failures_total", {{"rule", "time"}, {"reason", "timestamp"}}), 1u);
  EXPECT_EQ(metrics.counter_value("rules_parse_failures_total", {{"rule", "time"}, {"reason", "missing_field"}}), 1u);
}

TEST(RulesOps, ParseFailureKeepsTheRawLineWithAnErrorField) {
  MetricsRegistry metrics;
  const auto set = load(R"(
rules:
  - name: app-json
    parse: {format: json, error_field: parse_error}
  - name: app-regex
    parse: {format: regex, pattern: '^(?<level>[A-Z]+) '}
  - name: app-logfmt
    parse: {format: logfmt, from: nope}
)", metrics);
  auto scratch = set.make_scratch();
  auto e = event("not json at all");
  EXPECT_EQ(set.apply(e, *scratch), Outcome::keep);
  EXPECT_EQ(e.message, "not json at all");
  ASSERT_EQ(e.field_count(), 2u);
  EXPECT_EQ(e.field(0).name, "parse_error");
  EXPECT_EQ(e.field(0).value.substr(0, 6), "json: ");
  EXPECT_EQ(fields_of(e)[1], std::make_tuple(std::string("error"), std::string("regex: no match; logfmt: field 'nope' not found"), S));
  EXPECT_EQ(metrics.counter_value("rules_parse_failures_total", {{"rule", "app-json"}, {"reason", "json_syntax"}}), 1u);
  EXPECT_EQ(metrics.counter_value("rules_parse_failures_total", {{"rule", "app-regex"}, {"reason", "regex_no_match"}}), 1u);
  EXPECT_EQ(metrics.counter_value("rules_parse_failures_total", {{"rule", "app-logfmt"}, {"reason", "missing_field"}}), 1u);
  EXPECT_EQ(metrics.counter_total("rules_parse_failures_total"), 3u);
}

struct CondCase {
  const char* condition;  // YAML flow mapping
  bool expected;
};

TEST(RulesConditions, EveryTestAndCombination) {
  // The event: level=error status=503 took=0.25 user=bob, message "m", source "logs.app".
  const std::vector<CondCase> cases = {
      {"{field: level, equals: error}", true},
      {"{field: level, equals: warn}", false},
      {"{field: nope, equals: ''}", false},
      {"{field: level, not_equals: warn}", true},
      {"{field: nope, not_equals: warn}", true},
      {"{field: user, matches: '^b.b$'}", true},
      {"{field: user, matches: '^alice'}", false},
      {"{field: .source, matches: '\\.app$'}", true},
      {"{field: user, exists: true}", true},
      {"{field: nope, exists: true}", false},
      {"{field: nope, exists: false}", true},
      {"{field: status, gte: 500}", true},
      {"{field: status, gt: 503}", false},
      {"{field: status, lt: 503.5}", true},
      {"{field: took, lte: 0.25}", true},
      {"{field: level, gt: 1}", false},
      {"{field: .message, equals: m}", true},
      {"{all: [{field: level, equals: error}, {field: status, gte: 500}]}", true},
      {"{all: [{field: level, equals: error}, {field: status, lt: 500}]}", false},
      {"{any: [{field: level, equals: info}, {field: user, equals: bob}]}", true},
      {"{any: [{field: level, equals: info}, {field: user, equals: eve}]}", false},
      {"{not: {field: level, equals: error}}", false},
      {"{all: [{any: [{field: a, exists: true}, {field: took, gt: 0}]}, {not: {field: user, equals: eve}}]}", true},
  };
  for (const auto& c : cases) {
    MetricsRegistry metrics;
    const auto set = load(std::string("rules:\n  - parse: {format: logfmt}\n  - if: ") + c.condition +
                              "\n    add: {hit: 'yes'}\n", metrics);
    auto scratch = set.make_scratch();
    auto e = event("level=error status=503 took=0.25 user=bob", "logs.app");
    e.message = "level=error status=503 took=0.25 user=bob";
    set.apply(e, *scratch);
    // Conditions on .message see the raw line; give one case a fixed message instead.
    if (std::string(c.condition).find(".message") != std::string::npos) {
      auto m = event("m", "logs.app");
      m.set("level", "error");
      set.apply(m, *scratch);
      EXPECT_EQ(m.find("hit") != nullptr, c.expected) << c.condition;
      continue;
    }
    EXPECT_EQ(e.find("hit") != nullptr, c.expected) << c.condition;
  }
}

TEST(RulesSelection, SourceAndPathGlobsPickTheRules) {
  MetricsRegistry metrics;
  const auto set = load(R"(
rules:
  - when: {source: "nginx-*"}
    add: {kind: nginx}
  - when: {source: ["app-a", "app-b"], path: "/var/log/*/err*.log"}
    add: {kind: app-errors}
  - when: {path: "*.json"}
    add: {json: "true"}
  - add: {seen: "1"}
)", metrics);
  auto scratch = set.make_scratch();
  const std::vector<std::tuple<std::string, std::string, Fields>> cases = {
      {"nginx-edge", "/x.log", {{"kind", "nginx", S}, {"seen", "1", S}}},
      {"nginx", "/x.log", {{"seen", "1", S}}},
      {"app-b", "/var/log/app/error.log", {{"kind", "app-errors", S}, {"seen", "1", S}}},
      {"app-b", "/var/log/app/access.log", {{"seen", "1", S}}},
      {"app-c", "/var/log/app/error.log", {{"seen", "1", S}}},
      {"other", "/data/x.json", {{"json", "true", S}, {"seen", "1", S}}},
  };
  for (const auto& [source, path, expected] : cases) {
    auto e = event("m", source, path);
    set.apply(e, *scratch);
    EXPECT_EQ(fields_of(e), expected) << source << " " << path;
  }
  EXPECT_TRUE(glob_match("a*b?c", "aXXbYc"));
  EXPECT_FALSE(glob_match("a*b?c", "aXXbc"));
  EXPECT_TRUE(glob_match("**", ""));
}

TEST(RulesActions, DropAndRouteByConditionAreCounted) {
  MetricsRegistry metrics;
  const auto set = load(R"(
rules:
  - parse: {format: logfmt}
  - name: no-debug
    if: {field: level, equals: debug}
    drop: true
  - name: errors
    if: {any: [{field: level, equals: error}, {field: status, gte: 500}]}
    route: alerts
  - add: {after: "yes"}
)", metrics);
  auto scratch = set.make_scratch();
  auto debug = event("level=debug");
  EXPECT_EQ(set.apply(debug, *scratch), Outcome::drop);
  auto error = event("level=error");
  EXPECT_EQ(set.apply(error, *scratch), Outcome::keep);
  EXPECT_EQ(error.route, "alerts");
  EXPECT_EQ(error.find("after")->value, "yes");  // routing does not stop the rules
  auto fine = event("level=info status=200");
  EXPECT_EQ(set.apply(fine, *scratch), Outcome::keep);
  EXPECT_EQ(fine.route, "");
  auto s5 = event("level=info status=502");
  set.apply(s5, *scratch);
  EXPECT_EQ(s5.route, "alerts");
  EXPECT_EQ(metrics.counter_value("rules_dropped_total", {{"rule", "no-debug"}}), 1u);
  EXPECT_EQ(metrics.counter_value("rules_routed_total", {{"rule", "errors"}, {"route", "alerts"}}), 2u);
}

TEST(RulesActions, DropInsideStepsStopsEverything) {
  MetricsRegistry metrics;
  const auto set = load(R"(
rules:
  - steps:
      - if: {field: .message, matches: health}
        drop: true
  - add: {x: "1"}
)", metrics);
  auto scratch = set.make_scratch();
  auto e = event("GET /health");
  EXPECT_EQ(set.apply(e, *scratch), Outcome::drop);
  EXPECT_EQ(e.field_count(), 0u);
  EXPECT_EQ(metrics.counter_value("rules_dropped_total", {{"rule", "rules[0].steps[0]"}}), 1u);
  EXPECT_FALSE(set.empty());
  MetricsRegistry m2;
  EXPECT_TRUE(load("rules: []", m2).empty());
  EXPECT_TRUE(load("rules:", m2).empty() );
}

TEST(RulesEndToEnd, NginxLineBecomesTypedFields) {
  MetricsRegistry metrics;
  const auto set = load(R"re(
rules:
  - name: nginx
    when: {source: "nginx*"}
    steps:
      - parse:
          format: regex
          pattern: '^(?<client>\S+) \S+ (?<user>\S+) \[(?<time>[^\]]+)\] "(?<method>[A-Z]+) (?<path>[^ "]+) [^"]*" (?<status>\d{3}) (?<bytes>\d+)'
          into: "http."
      - timestamp: {field: http.time, format: common_log, remove: true}
      - convert: {http.status: integer, http.bytes: integer}
      - if: {field: http.status, gte: 500}
        route: errors
      - template: {summary: "{{http.method}} {{http.path}} {{http.status}}"}
)re", metrics);
  auto scratch = set.make_scratch();
  auto e = event(R"(10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /api HTTP/1.1" 502 17 "-" "curl")", "nginx-edge");
  for (int round = 0; round < 3; ++round) {  // a reused event and scratch give the same result
    auto copy = event(e.message, "nginx-edge");
    ASSERT_EQ(set.apply(copy, *scratch), Outcome::keep);
    EXPECT_EQ(copy.timestamp_ms, 971211336000);
    EXPECT_EQ(copy.route, "errors");
    EXPECT_EQ(fields_of(copy), (Fields{{"http.bytes", "17", N},
                                      {"http.client", "10.0.0.1", S},
                                      {"http.method", "GET", S},
                                      {"http.path", "/api", S},
                                      {"http.status", "502", N},
                                      {"http.user", "-", S},
                                      {"summary", "GET /api 502", S}}));
  }
}

TEST(RulesThreads, OneRuleSetServesThreadsWithAScratchEach) {
  MetricsRegistry metrics;
  const auto set = load(R"(
rules:
  - name: kv
    parse: {format: regex, pattern: '^(?<k>\w+)=(?<v>\d+)$'}
  - if: {field: v, gte: 500}
    route: big
)", metrics);
  constexpr int kThreads = 4, kLines = 20'000;
  std::vector<int> wrong(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto scratch = set.make_scratch();
      LogEvent e;
      for (int i = 0; i < kLines; ++i) {
        e.clear();
        if (i % 10) {
          e.message = 't';
          e.message += std::to_string(t);
        } else {
          e.message = "bad line";
        }
        e.message += '=';
        e.message += std::to_string(i % 1000);
        set.apply(e, *scratch);
        const bool ok = i % 10 ? e.find("v") && e.find("v")->value == std::to_string(i % 1000) &&
                                     e.route == (i % 1000 >= 500 ? "big" : "")
                               : e.find("error") && e.find("error")->value == "regex: no match";
        if (!ok) ++wrong[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong, std::vector<int>(kThreads, 0));
  EXPECT_EQ(metrics.counter_value("rules_parse_failures_total", {{"rule", "kv"}, {"reason", "regex_no_match"}}),
            static_cast<std::uint64_t>(kThreads * kLines / 10));
}

}  // namespace
}  // namespace sluice::transforms::rules
