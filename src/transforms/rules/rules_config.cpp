// Reading the rules from YAML into compiled operations (schema: docs/rules.md).
#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "core/metrics.hpp"
#include "transforms/rules/ops.hpp"
#include "transforms/rules/rules.hpp"

namespace sluice::transforms::rules {
namespace {

using config::ConfigReader;
using namespace detail;

constexpr const char* kOperations[] = {"parse",   "rename",    "remove",  "add",  "template", "message",
                                       "timestamp", "convert", "drop", "route", "steps"};

struct Context {
  MetricsRegistry& metrics;
  std::uint32_t max_captures = 0;
};

std::shared_ptr<const Regex> compile(ConfigReader& r, const std::string& key, const std::string& pattern,
                                     Context& ctx) {
  std::string error;
  std::shared_ptr<const Regex> re = Regex::compile(pattern, &error);
  if (!re) {
    r.error(key, error);
    return nullptr;
  }
  ctx.max_captures = std::max(ctx.max_captures, re->capture_count());
  return re;
}

void register_failures(FailureSink& sink, const std::string& rule, std::initializer_list<Failure> kinds,
                       Context& ctx) {
  for (const Failure f : kinds) {
    sink.counters[static_cast<std::size_t>(f)] = &ctx.metrics.counter(
        "rules_parse_failures_total", "Log lines a rule could not parse or convert; the raw line is kept",
        {{"rule", rule}, {"reason", std::string(failure_label(f))}});
  }
}

std::optional<double> number_of(const std::string& text) {
  double v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

Condition read_condition(ConfigReader& c, Context& ctx) {
  Condition out;
  static const char* kLeaf[] = {"equals", "not_equals", "matches", "exists", "gt", "gte", "lt", "lte"};
  std::vector<std::string> kinds;
  for (const char* k : {"all", "any", "not"}) {
    if (c.has(k)) kinds.emplace_back(k);
  }
  for (const char* k : kLeaf) {
    if (c.has(k)) kinds.emplace_back(k);
  }
  if (kinds.size() != 1) {
    c.error(kinds.empty() ? "field" : kinds[1],
            kinds.empty() ? "a condition needs one of all, any, not, or field with equals, not_equals, matches, "
                            "exists, gt, gte, lt, lte"
                          : fmt::format("a condition has one test; found {} (combine tests with all: or any:)",
                                        fmt::join(kinds, " and ")));
  }
 // With several tests the others stay unread; finish() would call them unknown as well.
  const bool report_unknown = kinds.size() <= 1;
  const std::string kind = kinds.empty() ? "" : kinds.front();
  if (kind == "all" || kind == "any") {
    out.kind = kind == "all" ? Condition::Kind::all : Condition::Kind::any;
    auto list = c.list(kind);
    if (list.empty()) c.error(kind, "expected a non-empty list of conditions");
    for (auto& child : list) out.children.push_back(read_condition(child, ctx));
  } else if (kind == "not") {
    out.kind = Condition::Kind::negate;
    auto child = c.child("not");
    out.children.push_back(read_condition(child, ctx));
  } else if (!kind.empty()) {
    const auto field = c.optional_string("field");
    if (!field || field->empty()) c.error("field", "a test needs the field it looks at (field: level, or .message)");
    else out.field = FieldRef::parse(*field);
    if (kind == "equals" || kind == "not_equals") {
      out.kind = kind == "equals" ? Condition::Kind::equals : Condition::Kind::not_equals;
      out.text = c.string(kind, "");
    } else if (kind == "matches") {
      out.kind = Condition::Kind::matches;
      if (auto p = c.literal_string("matches")) out.regex = compile(c, "matches", *p, ctx);
      if (!out.regex) out.kind = Condition::Kind::exists, out.flag = false;  // reported; never used
    } else if (kind == "exists") {
      out.kind = Condition::Kind::exists;
      out.flag = c.boolean("exists", true);
    } else {
      out.kind = kind == "gt" ? Condition::Kind::gt
                 : kind == "gte" ? Condition::Kind::gte
                 : kind == "lt" ? Condition::Kind::lt
                                 : Condition::Kind::lte;
      const auto text = c.string(kind, "");
      if (const auto n = number_of(text)) out.number = *n;
      else c.error(kind, fmt::format("expected a number, got '{}'", text));
    }
  }
  if (report_unknown) c.finish();
  return out;
}

FailureSink failure_sink(ConfigReader& r, const std::string& rule, std::initializer_list<Failure> kinds,
                         Context& ctx) {
  FailureSink sink;
  sink.rule = rule;
  sink.error_field = r.string("error_field", "error");
  if (sink.error_field.empty()) r.error("error_field", "expected a field name");
  register_failures(sink, rule, kinds, ctx);
  return sink;
}

std::unique_ptr<Op> read_parse(ConfigReader& p, const std::string& rule, Context& ctx) {
  auto op = std::make_unique<ParseOp>();
  const auto format = p.one_of("format", "", {"json", "logfmt", "regex"});
  if (format.empty() && !p.has("format")) p.error("format", "required: json, logfmt or regex");
  op->format = format == "logfmt" ? ParseFormat::logfmt : format == "regex" ? ParseFormat::regex : ParseFormat::json;
  op->from = FieldRef::parse(p.string("from", ".message"));
  op->prefix = p.string("into", "");
  op->limits.max_fields = static_cast<std::size_t>(p.integer("max_fields", 512, 1, 100'000));
  op->limits.max_bytes = p.size("max_bytes", 1 << 20);
  if (op->format == ParseFormat::json) {
    op->limits.flatten_depth = static_cast<std::size_t>(
        p.integer("flatten_depth", static_cast<std::int64_t>(kMaxJsonDepth), 1, static_cast<std::int64_t>(kMaxJsonDepth)));
  } else if (p.has("flatten_depth")) {
    p.error("flatten_depth", "only format: json flattens nested objects");
  }
  if (op->format == ParseFormat::regex) {
    const auto pattern = p.literal_string("pattern");
    if (!pattern) {
      p.error("pattern", "required with format: regex (a PCRE2 pattern with named groups such as (?<status>\\d+))");
    } else if ((op->regex = compile(p, "pattern", *pattern, ctx))) {
      if (op->regex->names().empty()) {
        p.error("pattern", "has no named groups; name what it captures: (?<field>...)");
      }
      for (const auto& [name, group] : op->regex->names()) op->fields.emplace_back(op->prefix + name, group);
    }
  } else if (p.has("pattern")) {
    p.literal_string("pattern");  // known, but wrong here: one error is enough
    p.error("pattern", "only format: regex takes a pattern");
  }
  op->failures = failure_sink(p, rule,
                              {Failure::json_syntax, Failure::json_not_object, Failure::json_depth,
                               Failure::invalid_utf8, Failure::too_many_fields, Failure::too_long,
                               Failure::logfmt_syntax, Failure::regex_no_match, Failure::regex_limit,
                               Failure::missing_field},
                              ctx);
  // Only the reasons this format can produce are exported.
  const auto keep = [&](Failure f) {
    switch (f) {
      case Failure::json_syntax: case Failure::json_not_object: case Failure::json_depth: case Failure::invalid_utf8:
        return op->format == ParseFormat::json;
      case Failure::logfmt_syntax: return op->format == ParseFormat::logfmt;
      case Failure::regex_no_match: case Failure::regex_limit: return op->format == ParseFormat::regex;
      default: return true;
    }
  };
  for (std::size_t k = 0; k < kFailureKinds; ++k) {
    if (!keep(static_cast<Failure>(k))) op->failures.counters[k] = nullptr;
  }
  p.finish();
  return op;
}

// A mapping read in file order (yaml-cpp keeps it), so renames and templates apply as written.
std::vector<std::pair<std::string, std::string>> ordered_map(ConfigReader& parent, const std::string& key,
                                                             bool literal) {
  std::vector<std::pair<std::string, std::string>> out;
  if (parent.has(key) && parent.is_scalar(key)) {
    parent.error(key, "expected a mapping of field names to values");
    parent.optional_string(key);
    return out;
  }
  auto m = parent.child(key);
  for (const auto& name : m.keys()) {
    const auto value = literal ? m.literal_string(name) : m.optional_string(name);
    if (!value) {
      m.error(name, "expected a value");
      continue;
    }
    out.emplace_back(name, *value);
  }
  if (out.empty() && parent.has(key)) parent.error(key, "expected at least one entry");
  m.finish();
  return out;
}

std::vector<TemplateOp::Part> read_template(ConfigReader& t, const std::string& key, const std::string& text) {
  std::vector<TemplateOp::Part> parts;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto open = text.find("{{", i);
    if (open == std::string::npos) {
      parts.push_back({true, text.substr(i), {}});
      break;
    }
    if (open > i) parts.push_back({true, text.substr(i, open - i), {}});
    const auto close = text.find("}}", open + 2);
    if (close == std::string::npos) {
      t.error(key, fmt::format("unterminated '{{{{' at offset {} in '{}'", open, text));
      break;
    }
    std::string name = text.substr(open + 2, close - open - 2);
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    if (name.empty()) t.error(key, fmt::format("empty field name at offset {} in '{}'", open, text));
    parts.push_back({false, {}, FieldRef::parse(name)});
    i = close + 2;
  }
  return parts;
}

std::vector<std::unique_ptr<Rule>> read_rules(ConfigReader& parent, const std::string& key,
                                              const std::string& name_prefix, Context& ctx);

std::unique_ptr<Rule> read_rule(ConfigReader& r, const std::string& default_name, Context& ctx) {
  auto rule = std::make_unique<Rule>();
  rule->name = r.string("name", default_name);
  if (r.has("when")) {
    auto w = r.child("when");
    rule->sources = w.string_list("source");
    rule->paths = w.string_list("path");
    if (rule->sources.empty() && rule->paths.empty()) w.error("source", "a selector needs source or path globs");
    w.finish();
  }
  if (r.has("if")) {
    auto c = r.child("if");
    rule->condition = read_condition(c, ctx);
  }
  std::vector<std::string> ops;
  for (const char* k : kOperations) {
    if (r.has(k)) ops.emplace_back(k);
  }
  if (ops.size() != 1) {
    r.error(ops.empty() ? "parse" : ops[1],
            ops.empty() ? fmt::format("a rule needs one operation: {}", fmt::join(kOperations, ", "))
                        : fmt::format("a rule has one operation; found {} (write one rule each, or group "
                                      "them under steps:)",
                                      fmt::join(ops, " and ")));
  }
  const std::string op = ops.empty() ? "" : ops.front();
  if (op == "parse") {
    auto p = r.child("parse");
    rule->op = read_parse(p, rule->name, ctx);
  } else if (op == "rename") {
    auto o = std::make_unique<RenameOp>();
    o->names = ordered_map(r, "rename", false);
    rule->op = std::move(o);
  } else if (op == "remove") {
    auto o = std::make_unique<RemoveOp>();
    o->names = r.string_list("remove");
    if (o->names.empty()) r.error("remove", "expected a list of field names or globs");
    rule->op = std::move(o);
  } else if (op == "add") {
    auto o = std::make_unique<AddOp>();
    // `add: {fields: {...}, overwrite: false}` or the fields directly.
    if (r.child("add").has("fields")) {
      auto a = r.child("add");
      for (auto& [k, v] : ordered_map(a, "fields", false)) o->values.emplace_back(FieldRef::parse(k), v);
      o->overwrite = a.boolean("overwrite", true);
      a.finish();
    } else {
      for (auto& [k, v] : ordered_map(r, "add", false)) o->values.emplace_back(FieldRef::parse(k), v);
    }
    rule->op = std::move(o);
  } else if (op == "template") {
    auto o = std::make_unique<TemplateOp>();
    auto t = r.child("template");
    for (auto& [k, v] : ordered_map(r, "template", true)) o->targets.emplace_back(FieldRef::parse(k), read_template(t, k, v));
    rule->op = std::move(o);
  } else if (op == "message") {
    auto o = std::make_unique<MessageOp>();
    auto m = r.child("message");
    const auto from = m.optional_string("from");
    if (!from || from->empty()) m.error("from", "required: the field whose value becomes the message");
    else o->from = FieldRef::parse(*from);
    o->remove = m.boolean("remove", true);
    m.finish();
    rule->op = std::move(o);
  } else if (op == "timestamp") {
    auto t = r.child("timestamp");
    const auto spec = t.string("format", "rfc3339");
    std::string error;
    auto format = TimestampFormat::make(spec, &error);
    if (!format) {
      t.error("format", error);
      format = TimestampFormat::make("rfc3339", nullptr);
    }
    auto o = std::make_unique<TimestampOp>(std::move(*format));
    o->from = FieldRef::parse(t.string("field", "timestamp"));
    o->remove = t.boolean("remove", false);
    o->failures = failure_sink(t, rule->name, {Failure::timestamp, Failure::missing_field}, ctx);
    t.finish();
    rule->op = std::move(o);
  } else if (op == "convert") {
    auto o = std::make_unique<ConvertOp>();
    auto c = r.child("convert");
    for (auto& [k, v] : ordered_map(r, "convert", false)) {
      using T = ConvertOp::Type;
      if (v == "integer") o->fields.emplace_back(k, T::integer);
      else if (v == "float" || v == "number") o->fields.emplace_back(k, T::floating);
      else if (v == "boolean") o->fields.emplace_back(k, T::boolean);
      else if (v == "string") o->fields.emplace_back(k, T::string);
      else c.error(k, fmt::format("expected integer, float, boolean or string, got '{}'", v));
    }
    o->failures.rule = rule->name;
    register_failures(o->failures, rule->name, {Failure::convert}, ctx);
    rule->op = std::move(o);
  } else if (op == "drop") {
    auto o = std::make_unique<DropOp>();
    o->drop = r.boolean("drop", true);
    rule->dropped = &ctx.metrics.counter("rules_dropped_total", "Log lines dropped by a rule", {{"rule", rule->name}});
    rule->op = std::move(o);
  } else if (op == "route") {
    auto o = std::make_unique<RouteOp>();
    o->route = r.string("route", "");
    if (o->route.empty()) r.error("route", "expected a route name");
    o->routed = &ctx.metrics.counter("rules_routed_total", "Log lines a rule sent to a named route",
                                     {{"rule", rule->name}, {"route", o->route}});
    rule->op = std::move(o);
  } else if (op == "steps") {
    auto o = std::make_unique<GroupOp>();
    o->rules = read_rules(r, "steps", rule->name + ".steps", ctx);
    if (o->rules.empty()) r.error("steps", "expected a non-empty list of rules");
    // A group drops through its own rules; count it there only.
    rule->op = std::move(o);
  }
  if (!rule->op) rule->op = std::make_unique<GroupOp>();  // reported above; never runs
  if (ops.size() <= 1) r.finish();  // a second operation is already reported
  return rule;
}

std::vector<std::unique_ptr<Rule>> read_rules(ConfigReader& parent, const std::string& key,
                                              const std::string& name_prefix, Context& ctx) {
  std::vector<std::unique_ptr<Rule>> out;
  if (parent.has(key) && parent.is_scalar(key)) {
    parent.error(key, "expected a list of rules");
    parent.optional_string(key);
    return out;
  }
  auto list = parent.list(key);
  for (std::size_t i = 0; i < list.size(); ++i) {
    out.push_back(read_rule(list[i], fmt::format("{}[{}]", name_prefix, i), ctx));
  }
  return out;
}

}  // namespace

RuleSet RuleSet::read(config::ConfigReader& parent, MetricsRegistry& metrics, const std::string& key) {
  Context ctx{metrics};
  RuleSet set;
  set.rules_ = read_rules(parent, key, key, ctx);
  set.max_captures_ = ctx.max_captures;
  return set;
}

}  // namespace sluice::transforms::rules
