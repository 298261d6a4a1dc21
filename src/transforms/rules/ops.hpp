// Internals of RuleSet: field references, conditions, and the operations a rule performs.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/metrics.hpp"
#include "transforms/rules/parsers.hpp"
#include "transforms/rules/rules.hpp"
#include "transforms/rules/timestamp.hpp"

namespace sluice::transforms::rules::detail {

// A field by name, or one of the event's own attributes, spelled with a leading dot (.message).
struct FieldRef {
  enum class Kind { field, message, source, path, host, route };
  Kind kind = Kind::field;
  std::string name;

  static FieldRef parse(const std::string& text);
  bool is_message() const { return kind == Kind::message; }
  // False when the field is absent (attributes are always present).
  bool get(const LogEvent& e, std::string_view& out) const;
  // Sets the attribute, or the field with `type`.
  void set(LogEvent& e, std::string_view value, FieldType type = FieldType::string) const;
  std::string display() const;
};

struct Condition {
  enum class Kind { all, any, negate, equals, not_equals, matches, exists, gt, gte, lt, lte };
  Kind kind = Kind::all;
  FieldRef field;
  std::string text;
  double number = 0;
  bool flag = true;  // exists: true / false
  std::shared_ptr<const Regex> regex;
  std::vector<Condition> children;

  bool eval(const LogEvent& e, MatchState& m) const;
};

// Counts and records a rule's failures: the reason goes into the error field, the raw line stays.
struct FailureSink {
  std::string rule;
  std::string error_field = "error";
  std::array<Counter*, kFailureKinds> counters{};
  // When this rule last logged a failure (steady clock, ms): one message per interval, not per line.
  std::unique_ptr<std::atomic<std::int64_t>> last_logged =
      std::make_unique<std::atomic<std::int64_t>>(std::numeric_limits<std::int64_t>::min() / 2);

  void report(Failure f, std::string_view reason, LogEvent& e) const;
};

class Op {
 public:
  virtual ~Op() = default;
  virtual Outcome run(LogEvent& e, RuleSet::Scratch& s) const = 0;
};

struct Rule {
  std::string name;
  std::vector<std::string> sources;  // globs on LogEvent::source; empty: any
  std::vector<std::string> paths;    // globs on LogEvent::path; empty: any
  std::optional<Condition> condition;
  std::unique_ptr<Op> op;
  Counter* dropped = nullptr;

  bool selects(const LogEvent& e, MatchState& m) const;
};

// The operations, built by the config reader (rules_config.cpp).
enum class ParseFormat { json, logfmt, regex };

struct ParseOp final : Op {
  ParseFormat format = ParseFormat::json;
  FieldRef from;
  std::string prefix;
  ParseLimits limits;
  std::shared_ptr<const Regex> regex;
  std::vector<std::pair<std::string, std::uint32_t>> fields;  // regex: full field name, group
  FailureSink failures;
  Outcome run(LogEvent& e, RuleSet::Scratch& s) const override;
};

struct RenameOp final : Op {
  std::vector<std::pair<std::string, std::string>> names;  // from → to
  Outcome run(LogEvent& e, RuleSet::Scratch& s) const override;
};

struct RemoveOp final : Op {
  std::vector<std::string> names;  // exact names or globs
  Outcome run(LogEvent& e, RuleSet::Scratch& s) const override;
};

struct AddOp final : Op {
  std::vector<std::pair<FieldRef, std::string>> values;
  bool overwrite = true;
  Outcome run(LogEvent& e, RuleSet::Scratch& s) const override;
};

struct TemplateOp final : Op {
  struct Part {
    bool literal = true;
    std::string text;
    FieldRef field;
  };
  std::vector<std::pair<FieldRef, std::vector<Part>>> targets;
  Outcome run(LogEvent& e, RuleSet::Scratch& s) const override;
};

struct MessageOp final : Op {
  FieldRef from;
  bool remove = true;
  Outcome run(LogEvent& e, RuleSet::Scratch& s) const override;
};

struct TimestampOp final : Op {
  FieldRef from;
  TimestampFormat format;
  bool remove = false;
  FailureSink failures;
  explicit TimestampOp(TimestampFormat f) : format(std::move(f)) {}
  Outcome run(LogEvent& e, RuleSet::Scratch& s) const override;
};

struct ConvertOp final : Op {
  enum class Type { integer, floating, boolean, string };
  std::vector<std::pair<std::string, Type>> fields;
  FailureSink failures;
  Outcome run(LogEvent& e, RuleSet::Scratch& s) const override;
};

struct DropOp final : Op {
  bool drop = true;
  Outcome run(LogEvent&, RuleSet::Scratch&) const override { return drop ? Outcome::drop : Outcome::keep; }
};

struct RouteOp final : Op {
  std::string route;
  Counter* routed = nullptr;
  Outcome run(LogEvent& e, RuleSet::Scratch& s) const override;
};

struct GroupOp final : Op {
  std::vector<std::unique_ptr<Rule>> rules;
  Outcome run(LogEvent& e, RuleSet::Scratch& s) const override;
};

// Runs `rules` in order; stops at the first that drops the event.
Outcome run_rules(const std::vector<std::unique_ptr<Rule>>& rules, LogEvent& e, RuleSet::Scratch& s);

}  // namespace sluice::transforms::rules::detail
