// Table-driven tests of the rule parsers (JSON, logfmt, regex) and timestamp formats, with exact fields.
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "transforms/rules/parsers.hpp"
#include "transforms/rules/timestamp.hpp"

namespace sluice::transforms::rules {
namespace {

using Fields = std::vector<std::tuple<std::string, std::string, FieldType>>;
constexpr auto S = FieldType::string;
constexpr auto N = FieldType::number;
constexpr auto B = FieldType::boolean;
constexpr auto J = FieldType::json;
constexpr auto Z = FieldType::null;

Fields fields_of(const LogEvent& e) {
  Fields out;
  for (std::size_t i = 0; i < e.field_count(); ++i) out.emplace_back(e.field(i).name, e.field(i).value, e.field(i).type);
  return out;
}

struct ParseCase {
  const char* name;
  std::string input;
  std::string prefix;
  Fields expected;
};

TEST(RulesJson, FlattensAndTypesEveryValue) {
  const std::vector<ParseCase> cases = {
      {"scalars",
       R"({"a":"x","n":42,"f":1.5,"b":true,"z":null,"neg":-7,"big":18446744073709551615,"e":1e3})",
       "",
       {{"a", "x", S}, {"n", "42", N}, {"f", "1.5", N}, {"b", "true", B}, {"z", "", Z}, {"neg", "-7", N},
        {"big", "18446744073709551615", N}, {"e", "1000", N}}},
      {"nested objects become dotted names; arrays stay JSON",
       R"({"o":{"p":{"q":"deep"},"r":false},"arr":[1,"two",{"k":null}],"empty":{}})",
       "",
       {{"o.p.q", "deep", S}, {"o.r", "false", B}, {"arr", R"([1,"two",{"k":null}])", J}, {"empty", "{}", J}}},
      {"prefix", R"({"status":200,"req":{"path":"/x"}})", "http.", {{"http.status", "200", N}, {"http.req.path", "/x", S}}},
      {"escapes are decoded",
       "{\"s\":\"line\\nnext \\u00e9 \\\"q\\\" \\\\\",\"t\":\"\\t\"}",
       "",
       {{"s", "line\nnext \xc3\xa9 \"q\" \\", S}, {"t", "\t", S}}},
      {"strings inside arrays are escaped again", R"({"a":["x\"y","\n"]})", "", {{"a", R"(["x\"y","\n"])", J}}},
      {"a repeated key keeps the last value", R"({"a":1,"a":"two"})", "", {{"a", "two", S}}},
      {"whitespace around", " \t{ \"a\" : 1 }\n", "", {{"a", "1", N}}},
  };
  JsonFlattener json;
  for (const auto& c : cases) {
    LogEvent e;
    std::string error;
    EXPECT_EQ(json.parse(c.input, c.prefix, ParseLimits{}, e, error), Failure::none) << c.name << ": " << error;
    EXPECT_EQ(fields_of(e), c.expected) << c.name;
  }
}

TEST(RulesJson, FlattenDepthKeepsDeeperObjectsWhole) {
  JsonFlattener json;
  LogEvent e;
  std::string error;
  ParseLimits limits;
  limits.flatten_depth = 1;
  ASSERT_EQ(json.parse(R"({"o":{"p":{"q":1}},"s":"x"})", "", limits, e, error), Failure::none);
  EXPECT_EQ(fields_of(e), (Fields{{"o", R"({"p":{"q":1}})", J}, {"s", "x", S}}));
}

struct FailCase {
  const char* name;
  std::string input;
  Failure failure;
  std::string error;  // exact, or a prefix when it ends with '*'
};

void expect_error(const std::string& got, const std::string& expected, const char* name) {
  if (!expected.empty() && expected.back() == '*') {
    EXPECT_EQ(got.substr(0, expected.size() - 1), expected.substr(0, expected.size() - 1)) << name << ": " << got;
  } else {
    EXPECT_EQ(got, expected) << name;
  }
}

TEST(RulesJson, FailuresSayWhyAndWriteNothing) {
  std::string deep(40, '[');
  deep += std::string(40, ']');
  const std::vector<FailCase> cases = {
      {"truncated", R"({"a":)", Failure::json_syntax, "json: *"},
      {"not json", "GET / HTTP/1.1", Failure::json_syntax, "json: *"},
      {"empty", "", Failure::json_syntax, "json: empty input"},
      {"array at the top", "[1,2]", Failure::json_not_object, "json: expected an object, got an array"},
      {"string at the top", R"("x")", Failure::json_not_object, "json: expected an object, got a string"},
      {"invalid UTF-8", "{\"a\":\"ok\xff\"}", Failure::invalid_utf8, "json: invalid UTF-8 at byte 8"},
      {"deep nesting", "{\"a\":" + deep + "}", Failure::json_depth, "json: nested deeper than 32 levels"},
      {"trailing garbage", R"({"a":1} x)", Failure::json_syntax, "json: *"},
  };
  JsonFlattener json;
  for (const auto& c : cases) {
    LogEvent e;
    std::string error;
    EXPECT_EQ(json.parse(c.input, "", ParseLimits{}, e, error), c.failure) << c.name << ": " << error;
    expect_error(error, c.error, c.name);
    EXPECT_EQ(e.field_count(), 0u) << c.name;
  }
}

TEST(RulesJson, FieldLimitKeepsTheFirstFieldsAndSaysSo) {
  std::string text = "{";
  for (int i = 0; i < 600; ++i) text += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  text += "}";
  JsonFlattener json;
  LogEvent e;
  std::string error;
  EXPECT_EQ(json.parse(text, "", ParseLimits{}, e, error), Failure::too_many_fields);
  EXPECT_EQ(error, "json: more than 512 fields, kept the first 512");
  ASSERT_EQ(e.field_count(), 512u);
  EXPECT_EQ(e.field(511).name, "k511");
  EXPECT_EQ(e.field(511).value, "511");
}

TEST(RulesLogfmt, ParsesPairs) {
  const std::vector<ParseCase> cases = {
      {"typical", R"(level=info msg="hello world" took=12ms ok)", "",
       {{"level", "info", S}, {"msg", "hello world", S}, {"took", "12ms", S}, {"ok", "true", B}}},
      {"escapes", R"(m="a \"b\" c\\d\n\te" u="\x")", "", {{"m", "a \"b\" c\\d\n\te", S}, {"u", "\\x", S}}},
      {"empty and '=' in values", "a= b=x=y  c=\"\"", "", {{"a", "", S}, {"b", "x=y", S}, {"c", "", S}}},
      {"prefix and tabs", "\tk=v\tq=1 ", "lf.", {{"lf.k", "v", S}, {"lf.q", "1", S}}},
      {"invalid UTF-8 kept as bytes", "k=\xff\xfe", "", {{"k", "\xff\xfe", S}}},
      {"empty line", "", "", {}},
  };
  LogfmtParser parser;
  for (const auto& c : cases) {
    LogEvent e;
    std::string error;
    EXPECT_EQ(parser.parse(c.input, c.prefix, ParseLimits{}, e, error), Failure::none) << c.name << ": " << error;
    EXPECT_EQ(fields_of(e), c.expected) << c.name;
  }
}

TEST(RulesLogfmt, FailuresSayWhereAndWriteNothing) {
  const std::vector<FailCase> cases = {
      {"unterminated", R"(a=1 msg="unterminated)", Failure::logfmt_syntax, "logfmt: unterminated quoted value at byte 8"},
      {"missing key", "a=1 =x", Failure::logfmt_syntax, "logfmt: expected a key at byte 4, got '='"},
      {"quote in key", R"(a"b=1)", Failure::logfmt_syntax, "logfmt: unexpected '\"' in key at byte 1"},
      {"text after quote", R"(a="x"b)", Failure::logfmt_syntax, "logfmt: expected a blank after the quoted value at byte 5"},
      {"quote in bare value", R"(a=b"c")", Failure::logfmt_syntax, "logfmt: unexpected '\"' in a bare value at byte 3"},
  };
  LogfmtParser parser;
  for (const auto& c : cases) {
    LogEvent e;
    std::string error;
    EXPECT_EQ(parser.parse(c.input, "", ParseLimits{}, e, error), c.failure) << c.name;
    expect_error(error, c.error, c.name);
    EXPECT_EQ(e.field_count(), 0u) << c.name;
  }
}

constexpr const char* kCombined =
    R"re(^(?<client>\S+) \S+ (?<user>\S+) \[(?<time>[^\]]+)\] "(?<method>[A-Z]+) (?<path>[^ "]+) (?<protocol>[^"]+)" (?<status>\d{3}) (?<bytes>\d+|-) "(?<referrer>[^"]*)" "(?<agent>[^"]*)"(?: (?<extra>.*))?$)re";

std::vector<std::pair<std::string, std::uint32_t>> fields_for(const Regex& re, const std::string& prefix) {
  std::vector<std::pair<std::string, std::uint32_t>> out;
  for (const auto& [name, group] : re.names()) out.emplace_back(prefix + name, group);
  return out;
}

TEST(RulesRegex, NamedGroupsBecomeFields) {
  std::string error;
  auto re = Regex::compile(kCombined, &error);
  ASSERT_TRUE(re) << error;
  EXPECT_EQ(re->names().size(), 11u);
  MatchState state(re->capture_count());
  LogEvent e;
  const std::string line =
      R"x(203.0.113.9 - alice [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)")x";
  ASSERT_EQ(regex_parse(*re, fields_for(*re, ""), line, ParseLimits{}, e, state, error), Failure::none) << error;
  // Groups come in the order of the name table (alphabetical); `extra` did not take part.
  EXPECT_EQ(fields_of(e), (Fields{{"agent", "Mozilla/4.08 [en] (Win98; I ;Nav)", S},
                                  {"bytes", "2326", S},
                                  {"client", "203.0.113.9", S},
                                  {"method", "GET", S},
                                  {"path", "/apache_pb.gif", S},
                                  {"protocol", "HTTP/1.0", S},
                                  {"referrer", "http://www.example.com/start.html", S},
                                  {"status", "200", S},
                                  {"time", "10/Oct/2000:13:55:36 -0700", S},
                                  {"user", "alice", S}}));
}

TEST(RulesRegex, ReplacesExistingFieldsAndUsesThePrefix) {
  std::string error;
  auto re = Regex::compile(R"((?<level>\w+): (?<msg>.*))", &error);
  ASSERT_TRUE(re);
  MatchState state(re->capture_count());
  LogEvent e;
  e.set("x.level", "old");
  ASSERT_EQ(regex_parse(*re, fields_for(*re, "x."), "warn: disk \xff full", ParseLimits{}, e, state, error),
            Failure::none);
  EXPECT_EQ(fields_of(e), (Fields{{"x.level", "warn", S}, {"x.msg", "disk \xff full", S}}));
}

TEST(RulesRegex, NoMatchAndBacktrackingLimit) {
  std::string error;
  auto re = Regex::compile(R"(^(?<a>(a|aa)+)$)", &error);
  ASSERT_TRUE(re);
  MatchState state(re->capture_count());
  LogEvent e;
  EXPECT_EQ(regex_parse(*re, fields_for(*re, ""), "xyz", ParseLimits{}, e, state, error), Failure::regex_no_match);
  EXPECT_EQ(error, "regex: no match");
  EXPECT_EQ(regex_parse(*re, fields_for(*re, ""), std::string(40, 'a') + "!", ParseLimits{}, e, state, error),
            Failure::regex_limit);
  EXPECT_EQ(error, "regex: match limit exceeded");
  EXPECT_EQ(e.field_count(), 0u);
}

TEST(RulesRegex, CompileErrorsSayWhere) {
  std::string error;
  EXPECT_FALSE(Regex::compile("(?<a>x", &error));
  EXPECT_EQ(error, "invalid regular expression at offset 6: missing closing parenthesis");
}

struct TimeCase {
  const char* format;
  std::string text;
  std::int64_t expected_ms;
};

TEST(RulesTimestamp, NamedAndCustomFormats) {
  const std::int64_t ref = 1795262400000;  // 2026-11-21T12:00:00Z
  const std::vector<TimeCase> cases = {
      {"rfc3339", "2024-03-01T12:34:56Z", 1709296496000},
      {"rfc3339", "2024-03-01T12:34:56.789+02:00", 1709289296789},
      {"rfc3339", "2024-02-29T23:59:59.123456789-05:30", 1709270999123},
      {"iso8601", "2024-03-01 12:34:56,5", 1709296496500},
      {"iso8601", "2024-03-01t12:34:56z", 1709296496000},
      {"iso8601", "2024-03-01T12:34:56+0000", 1709296496000},
      {"iso8601", "2024-03-01", 1709251200000},
      {"iso8601", " 2024-03-01T12:34:56Z ", 1709296496000},
      {"unix", "1700000000", 1700000000000},
      {"unix", "1700000000.25", 1700000000250},
      {"unix", "-1", -1000},
      {"unix_ms", "1700000000123", 1700000000123},
      {"unix_us", "1700000000123456", 1700000000123},
      {"unix_ns", "1700000000123456789", 1700000000123},
      {"common_log", "10/Oct/2000:13:55:36 -0700", 971211336000},
      {"syslog", "Oct 11 22:14:15", 1791756855000},
      {"syslog", "Oct  1 02:03:04", 1790820184000},
      {"%Y-%m-%d %H:%M:%S.%f", "2024-03-01 12:34:56.5", 1709296496500},
      {"%d/%m/%y %I:%M %p", "31/12/99 09:07 AM", 946631220000},
      {"%d/%m/%y %I:%M %p", "01/03/24 09:05 PM", 1709327100000},
      {"%a, %d %B %Y %T %Z", "Fri, 01 March 2024 12:34:56 GMT", 1709296496000},
      {"%F %T %z", "2024-03-01 12:34:56 +02:00", 1709289296000},
      {"%s", "1700000000", 1700000000000},
      {"[%Y-%m-%dT%H:%M:%S%z]", "[2024-03-01T12:34:56Z]", 1709296496000},
  };
  for (const auto& c : cases) {
    std::string error;
    auto f = TimestampFormat::make(c.format, &error);
    ASSERT_TRUE(f) << c.format << ": " << error;
    const auto ms = f->parse(c.text, ref);
    ASSERT_TRUE(ms) << c.format << " '" << c.text << "'";
    EXPECT_EQ(*ms, c.expected_ms) << c.format << " '" << c.text << "'";
  }
}

TEST(RulesTimestamp, SyslogYearRollsBackAcrossNewYear) {
  auto f = TimestampFormat::make("syslog", nullptr);
  // Read at 2027-01-01T00:00:10Z: a line of Dec 31 is from 2026.
  EXPECT_EQ(f->parse("Dec 31 23:59:59", 1798761610000), 1798761599000);
}

TEST(RulesTimestamp, RejectsWhatDoesNotFit) {
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"rfc3339", "2024-13-01T00:00:00Z"}, {"rfc3339", "2024-02-30T00:00:00Z"}, {"rfc3339", "2023-02-29"},
      {"rfc3339", "2024-03-01T25:00:00Z"}, {"rfc3339", "2024-03-01T12:34:56+2"}, {"rfc3339", "garbage"},
      {"rfc3339", ""},                     {"unix", "17e9"},                   {"unix", "12a"},
      {"unix_ms", "99999999999999999999"}, {"unix_ms", "700088888888888888"}, {"unix", "253402300800"}, {"common_log", "10/Oct/2000:13:55:36"}, {"common_log", "10/Foo/2000:13:55:36 +0000"},
      {"syslog", "Oct 11"},                {"%Y-%m-%d", "2024-03-01 extra"},   {"%I %p", "13 PM"},
  };
  for (const auto& [format, text] : cases) {
    auto f = TimestampFormat::make(format, nullptr);
    ASSERT_TRUE(f);
    EXPECT_FALSE(f->parse(text, 1795262400000)) << format << " '" << text << "'";
  }
}

TEST(RulesTimestamp, UnknownFormatsAreConfigErrors) {
  std::string error;
  EXPECT_FALSE(TimestampFormat::make("rfc9999", &error));
  EXPECT_EQ(error.substr(0, 35), "unknown timestamp format 'rfc9999' ");
  EXPECT_FALSE(TimestampFormat::make("%Y-%q", &error));
  EXPECT_EQ(error.substr(0, 53), "unknown directive '%q' in timestamp format '%Y-%q' (k");
  EXPECT_EQ(days_from_civil(1970, 1, 1), 0);
  EXPECT_EQ(days_from_civil(2000, 3, 1), 11017);
}

}  // namespace
}  // namespace sluice::transforms::rules
