#include "transforms/rules/rules.hpp"

#include <fmt/format.h>

#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <iterator>

#include "transforms/rules/ops.hpp"

namespace sluice::transforms::rules {

bool glob_match(std::string_view pattern, std::string_view text) {
  // Iterative matching with one backtrack point: the last '*' seen.
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || (pattern[p] != '*' && pattern[p] == text[t]))) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

RuleSet::RuleSet() = default;
RuleSet::~RuleSet() = default;
RuleSet::RuleSet(RuleSet&&) noexcept = default;
RuleSet& RuleSet::operator=(RuleSet&&) noexcept = default;

std::unique_ptr<RuleSet::Scratch> RuleSet::make_scratch() const { return std::make_unique<Scratch>(max_captures_); }

Outcome RuleSet::apply(LogEvent& event, Scratch& scratch) const { return detail::run_rules(rules_, event, scratch); }

namespace detail {
namespace {

constexpr std::int64_t kLogIntervalMs = 10'000;

// A failure reason cut for a log line (a reason may quote part of a hostile line).
std::string_view excerpt_of(std::string_view reason) { return reason.substr(0, 200); }

std::optional<double> to_number(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  double v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Input text of a parse or timestamp: a field is copied first, because writing fields may move it.
bool source_text(const FieldRef& from, LogEvent& e, RuleSet::Scratch& s, std::string_view& out) {
  if (from.is_message()) {
    out = e.message;
    return true;
  }
  std::string_view v;
  if (!from.get(e, v)) return false;
  s.text.assign(v);
  out = s.text;
  return true;
}

// Whether `v` is written as JSON writes a number (what typed sinks need), an integer unless `fraction`.
bool json_number(std::string_view v, bool fraction) {
  std::size_t i = 0;
  const auto digits = [&] {
    const std::size_t start = i;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
    return i - start;
  };
  if (i < v.size() && v[i] == '-') ++i;
  const std::size_t start = i;
  const std::size_t n = digits();
  if (n == 0 || (n > 1 && v[start] == '0') || n > 18) return false;
  if (fraction && i < v.size() && v[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  }
  if (fraction && i < v.size() && (v[i] == 'e' || v[i] == 'E')) {
    ++i;
    if (i < v.size() && (v[i] == '+' || v[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == v.size();
}

// A value quoted in an error message, cut to a readable length.
std::string_view excerpt(std::string_view v) { return v.substr(0, 64); }

}  // namespace

FieldRef FieldRef::parse(const std::string& text) {
  FieldRef r;
  if (text == ".message") r.kind = Kind::message;
  else if (text == ".source") r.kind = Kind::source;
  else if (text == ".path") r.kind = Kind::path;
  else if (text == ".host") r.kind = Kind::host;
  else if (text == ".route") r.kind = Kind::route;
  else r.name = text;
  return r;
}

bool FieldRef::get(const LogEvent& e, std::string_view& out) const {
  switch (kind) {
    case Kind::message: out = e.message; return true;
    case Kind::source: out = e.source; return true;
    case Kind::path: out = e.path; return true;
    case Kind::host: out = e.host; return true;
    case Kind::route: out = e.route; return true;
    case Kind::field: break;
  }
  const LogField* f = e.find(name);
  if (!f) return false;
  out = f->value;
  return true;
}

void FieldRef::set(LogEvent& e, std::string_view value, FieldType type) const {
  switch (kind) {
    case Kind::message: e.message.assign(value); return;
    case Kind::source: e.source.assign(value); return;
    case Kind::path: e.path.assign(value); return;
    case Kind::host: e.host.assign(value); return;
    case Kind::route: e.route.assign(value); return;
    case Kind::field: e.set(name, value, type); return;
  }
}

std::string FieldRef::display() const {
  switch (kind) {
    case Kind::message: return ".message";
    case Kind::source: return ".source";
    case Kind::path: return ".path";
    case Kind::host: return ".host";
    case Kind::route: return ".route";
    case Kind::field: break;
  }
  return name;
}

bool Condition::eval(const LogEvent& e, MatchState& m) const {
  switch (kind) {
    case Kind::all:
      for (const auto& c : children) {
        if (!c.eval(e, m)) return false;
      }
      return true;
    case Kind::any:
      for (const auto& c : children) {
        if (c.eval(e, m)) return true;
      }
      return false;
    case Kind::negate: return !children.front().eval(e, m);
    default: break;
  }
  std::string_view v;
  const bool present = field.get(e, v);
  switch (kind) {
    case Kind::exists: return present == flag;
    case Kind::equals: return present && v == text;
    case Kind::not_equals: return !present || v != text;
    case Kind::matches: return present && m.match(*regex, v) > 0;
    default: break;
  }
  if (!present) return false;
  const auto n = to_number(v);
  if (!n) return false;
  switch (kind) {
    case Kind::gt: return *n > number;
    case Kind::gte: return *n >= number;
    case Kind::lt: return *n < number;
    case Kind::lte: return *n <= number;
    default: return false;
  }
}

void FailureSink::report(Failure f, std::string_view reason, LogEvent& e) const {
  if (Counter* c = counters[static_cast<std::size_t>(f)]) c->inc();
  // Hostile input fails every line; the operator needs the first reason and a count, not a flood.
  const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now().time_since_epoch()).count();
  std::int64_t last = last_logged->load(std::memory_order_relaxed);
  if (now - last >= kLogIntervalMs && last_logged->compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    std::uint64_t total = 0;
    for (const Counter* c : counters) total += c ? c->value() : 0;
    spdlog::warn(
        "log rule '{}' could not process a line of {} (topic {}, offset {}): {}; the line is kept as read, with "
        "the reason in field '{}'. {} failures of this rule so far (rules_parse_failures_total by reason); if "
        "most lines fail, check the rule's format or pattern against the log. At most one such message per "
        "10 s per rule.",
        rule, e.path, e.source, e.offset, excerpt_of(reason), error_field, total);
  }
  // A second failure on the same line adds its reason to the first.
  if (LogField* existing = e.find(error_field)) {
    existing->value.append("; ");
    existing->value.append(reason);
    existing->type = FieldType::string;
    return;
  }
  e.set(error_field, reason);
}

bool Rule::selects(const LogEvent& e, MatchState& m) const {
  const auto any_of = [](const std::vector<std::string>& globs, std::string_view text) {
    if (globs.empty()) return true;
    for (const auto& g : globs) {
      if (glob_match(g, text)) return true;
    }
    return false;
  };
  if (!any_of(sources, e.source) || !any_of(paths, e.path)) return false;
  return !condition || condition->eval(e, m);
}

Outcome run_rules(const std::vector<std::unique_ptr<Rule>>& rules, LogEvent& e, RuleSet::Scratch& s) {
  for (const auto& rule : rules) {
    if (!rule->selects(e, s.match)) continue;
    if (rule->op->run(e, s) == Outcome::drop) {
      if (rule->dropped) rule->dropped->inc();
      return Outcome::drop;
    }
  }
  return Outcome::keep;
}

Outcome ParseOp::run(LogEvent& e, RuleSet::Scratch& s) const {
  static constexpr std::string_view kNames[] = {"json", "logfmt", "regex"};
  const std::string_view what = kNames[static_cast<int>(format)];
  std::string_view text;
  if (!source_text(from, e, s, text)) {
    s.error.clear();
    fmt::format_to(std::back_inserter(s.error), "{}: field '{}' not found", what, from.name);
    failures.report(Failure::missing_field, s.error, e);
    return Outcome::keep;
  }
  Failure f = Failure::none;
  switch (format) {
    case ParseFormat::json: f = s.json.parse(text, prefix, limits, e, s.error); break;
    case ParseFormat::logfmt: f = s.logfmt.parse(text, prefix, limits, e, s.error); break;
    case ParseFormat::regex: f = regex_parse(*regex, fields, text, limits, e, s.match, s.error); break;
  }
  if (f != Failure::none) failures.report(f, s.error, e);
  return Outcome::keep;
}

Outcome RenameOp::run(LogEvent& e, RuleSet::Scratch&) const {
  for (const auto& [from, to] : names) {
    if (from == to || !e.find(from)) continue;
    e.erase(to);  // the renamed field replaces one of the new name
    e.find(from)->name.assign(to);
  }
  return Outcome::keep;
}

Outcome RemoveOp::run(LogEvent& e, RuleSet::Scratch&) const {
  for (const auto& name : names) {
    if (name.find_first_of("*?") == std::string::npos) {
      e.erase(name);
      continue;
    }
    std::size_t i = 0;
    while (i < e.field_count()) {
      if (glob_match(name, e.field(i).name)) e.erase(e.field(i).name);
      else ++i;
    }
  }
  return Outcome::keep;
}

Outcome AddOp::run(LogEvent& e, RuleSet::Scratch&) const {
  for (const auto& [field, value] : values) {
    std::string_view current;
    // Attributes are always present; without overwrite only an empty one is filled.
    if (!overwrite && field.get(e, current) && (field.kind == FieldRef::Kind::field || !current.empty())) continue;
    field.set(e, value);
  }
  return Outcome::keep;
}

Outcome TemplateOp::run(LogEvent& e, RuleSet::Scratch& s) const {
  for (const auto& [target, parts] : targets) {
    s.buf.clear();
    for (const auto& part : parts) {
      if (part.literal) {
        s.buf.append(part.text);
        continue;
      }
      std::string_view v;
      if (part.field.get(e, v)) s.buf.append(v);
    }
    target.set(e, s.buf);
  }
  return Outcome::keep;
}

Outcome MessageOp::run(LogEvent& e, RuleSet::Scratch&) const {
  std::string_view v;
  if (!from.get(e, v)) return Outcome::keep;
  e.message.assign(v);
  if (remove && from.kind == FieldRef::Kind::field) e.erase(from.name);
  return Outcome::keep;
}

Outcome TimestampOp::run(LogEvent& e, RuleSet::Scratch& s) const {
  std::string_view text;
  s.error.clear();
  if (!source_text(from, e, s, text)) {
    fmt::format_to(std::back_inserter(s.error), "timestamp: field '{}' not found", from.display());
    failures.report(Failure::missing_field, s.error, e);
    return Outcome::keep;
  }
  const auto ms = format.parse(text, e.timestamp_ms);
  if (!ms) {
    fmt::format_to(std::back_inserter(s.error), "timestamp: cannot read '{}' as {}", excerpt(text), format.spec());
    failures.report(Failure::timestamp, s.error, e);
    return Outcome::keep;
  }
  e.timestamp_ms = *ms;
  if (remove && from.kind == FieldRef::Kind::field) e.erase(from.name);
  return Outcome::keep;
}

Outcome ConvertOp::run(LogEvent& e, RuleSet::Scratch& s) const {
  for (const auto& [name, type] : fields) {
    LogField* f = e.find(name);
    if (!f) continue;
    const std::string_view v = f->value;
    const char* expected = nullptr;
    switch (type) {
      case Type::string: f->type = FieldType::string; break;
      case Type::integer:
        if (json_number(v, false)) f->type = FieldType::number;
        else expected = "an integer";
        break;
      case Type::floating:
        if (json_number(v, true)) f->type = FieldType::number;
        else expected = "a number";
        break;
      case Type::boolean:
        if (v == "true" || v == "false") {
          f->type = FieldType::boolean;
        } else if (v == "1" || v == "yes" || v == "on" || v == "True" || v == "TRUE") {
          f->value.assign("true");
          f->type = FieldType::boolean;
        } else if (v == "0" || v == "no" || v == "off" || v == "False" || v == "FALSE") {
          f->value.assign("false");
          f->type = FieldType::boolean;
        } else {
          expected = "a boolean";
        }
        break;
    }
    if (expected) {
      s.error.clear();
      fmt::format_to(std::back_inserter(s.error), "convert: '{}' in field '{}' is not {}", excerpt(v), name,
                     expected);
      f->type = FieldType::string;
      failures.report(Failure::convert, s.error, e);
    }
  }
  return Outcome::keep;
}

Outcome RouteOp::run(LogEvent& e, RuleSet::Scratch&) const {
  e.route.assign(route);
  if (routed) routed->inc();
  return Outcome::keep;
}

Outcome GroupOp::run(LogEvent& e, RuleSet::Scratch& s) const { return run_rules(rules, e, s); }

}  // namespace detail
}  // namespace sluice::transforms::rules
