#include "transforms/classifier.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <regex>
#include <stdexcept>

#include "core/metrics.hpp"
#include "transforms/networks.hpp"

namespace sluice::transforms {
namespace {

// Which input a regex condition reads.
enum class Source : std::uint8_t { exporter_name, name, description };

struct OutputName {
  const char* name;
  std::uint8_t slot;
};

constexpr OutputName kExporterOutputs[] = {{"group", 0}, {"role", 1}, {"site", 2}, {"region", 3}, {"tenant", 4}, {"name", 5}};
constexpr OutputName kInterfaceOutputs[] = {
    {"connectivity", 0}, {"provider", 1}, {"boundary", 2}, {"name", 3}, {"description", 4}};
constexpr std::uint8_t kBoundarySlot = static_cast<std::uint8_t>(InterfaceField::boundary);

std::optional<Source> regex_source(ClassifierKind kind, const std::string& key) {
  if (kind == ClassifierKind::exporter) {
    if (key == "name") return Source::exporter_name;
    return std::nullopt;
  }
  if (key == "exporter_name") return Source::exporter_name;
  if (key == "name") return Source::name;
  if (key == "description") return Source::description;
  return std::nullopt;
}

std::optional<std::uint8_t> output_slot(ClassifierKind kind, const std::string& key) {
  const auto find = [&](const auto& table) -> std::optional<std::uint8_t> {
    for (const auto& o : table) {
      if (key == o.name) return o.slot;
    }
    return std::nullopt;
  };
  return kind == ClassifierKind::exporter ? find(kExporterOutputs) : find(kInterfaceOutputs);
}

std::string output_names(ClassifierKind kind) {
  std::string out;
  const auto add = [&](const auto& table) {
    for (const auto& o : table) out += (out.empty() ? "" : ", ") + std::string(o.name);
  };
  if (kind == ClassifierKind::exporter) add(kExporterOutputs);
  else add(kInterfaceOutputs);
  return out;
}

std::optional<Boundary> parse_boundary(std::string_view v) {
  std::string lower(v);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "external") return Boundary::external;
  if (lower == "internal") return Boundary::internal;
  if (lower == "undefined" || lower.empty()) return Boundary::undefined;
  return std::nullopt;
}

// A regex with named groups rewritten into plain ones (std::regex has no named groups): `(?<name>...)`
// and `(?P<name>...)` become `(...)` and the name is remembered with its group number. A leading
// `(?i)` makes the match case-insensitive.
struct PreparedRegex {
  std::string pattern;
  std::map<std::string, unsigned> names;
  bool icase = false;
};

PreparedRegex prepare_regex(std::string_view text, std::string* error) {
  PreparedRegex out;
  if (text.substr(0, 4) == "(?i)") {
    out.icase = true;
    text.remove_prefix(4);
  }
  unsigned group = 0;
  bool in_class = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\' && i + 1 < text.size()) {
      out.pattern += text.substr(i, 2);
      ++i;
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out.pattern += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out.pattern += c;
      // A ']' right after '[' or '[^' is a literal.
      if (i + 1 < text.size() && text[i + 1] == '^') out.pattern += text[++i];
      if (i + 1 < text.size() && text[i + 1] == ']') out.pattern += text[++i];
      continue;
    }
    if (c == '(') {
      const auto rest = text.substr(i + 1);
      if (rest.substr(0, 2) == "?<" || rest.substr(0, 3) == "?P<") {
        const auto start = i + 1 + (rest[1] == 'P' ? 3 : 2);
        const auto close = text.find('>', start);
        const auto name = close == std::string_view::npos ? std::string_view{} : text.substr(start, close - start);
        const bool valid = !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
          return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
        }) && !std::isdigit(static_cast<unsigned char>(name.front()));
        if (!valid) {
          if (error) *error = "a named group must look like (?<name>...) with a name of letters, digits and _";
          return out;
        }
        ++group;
        if (!out.names.emplace(std::string(name), group).second) {
          if (error) *error = fmt::format("the group name '{}' is used twice", name);
          return out;
        }
        out.pattern += '(';
        i = close;
        continue;
      }
      if (rest.empty() || rest.front() != '?') ++group;
    }
    out.pattern += c;
  }
  return out;
}

}  // namespace

// One compiled rule.
struct Classifier::Rule {
  struct Condition {
    Source source;
    std::string key;  // as written under `match`, for ${key.N}
    std::regex regex;
    unsigned groups = 0;
    std::map<std::string, unsigned> names;
  };
  // A piece of a `set` template: literal text, or group `group` of condition `condition`.
  struct Piece {
    std::string literal;
    int condition = -1;
    unsigned group = 0;
  };
  struct Output {
    std::uint8_t slot;
    std::vector<Piece> pieces;
  };
  std::vector<Condition> conditions;
  std::vector<Prefix> prefixes;
  std::vector<std::uint32_t> indexes;
  std::optional<std::uint32_t> speed, min_speed, max_speed;
  std::vector<Output> outputs;
};

namespace {

// Parses a `set` template against the rule's conditions. References: $N or ${N} (a group of the only
// regex), ${name} (a named group of any regex), ${key.N} (group N of the regex under match.key), $$.
bool parse_template(const std::string& text, const Classifier::Rule& rule, std::vector<Classifier::Rule::Piece>& out,
                    std::string* error) {
  using Piece = Classifier::Rule::Piece;
  const auto reference = [&](std::string_view ref) -> std::optional<Piece> {
    const auto numeric = [](std::string_view s, unsigned& n) {
      if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
        return false;
      n = 0;
      for (char c : s) n = n * 10 + static_cast<unsigned>(c - '0');
      return true;
    };
    unsigned n = 0;
    if (numeric(ref, n)) {
      if (rule.conditions.size() != 1) {
        *error = fmt::format("${} needs exactly one regex under match (this rule has {}); use ${{key.{}}} or a named group",
                             ref, rule.conditions.size(), ref);
        return std::nullopt;
      }
      if (n > rule.conditions[0].groups) {
        *error = fmt::format("${} refers to a group the regex does not have (it has {})", ref, rule.conditions[0].groups);
        return std::nullopt;
      }
      return Piece{"", 0, n};
    }
    if (const auto dot = ref.find('.'); dot != std::string_view::npos && numeric(ref.substr(dot + 1), n)) {
      const auto key = ref.substr(0, dot);
      for (std::size_t c = 0; c < rule.conditions.size(); ++c) {
        if (rule.conditions[c].key != key) continue;
        if (n > rule.conditions[c].groups) {
          *error = fmt::format("${{{}}} refers to a group the regex of match.{} does not have (it has {})", ref, key,
                               rule.conditions[c].groups);
          return std::nullopt;
        }
        return Piece{"", static_cast<int>(c), n};
      }
      *error = fmt::format("${{{}}}: there is no regex under match.{}", ref, key);
      return std::nullopt;
    }
    for (std::size_t c = 0; c < rule.conditions.size(); ++c) {
      if (auto it = rule.conditions[c].names.find(std::string(ref)); it != rule.conditions[c].names.end()) {
        return Piece{"", static_cast<int>(c), it->second};
      }
    }
    *error = fmt::format("${{{}}} names no group of this rule's regexes", ref);
    return std::nullopt;
  };

  std::string literal;
  const auto flush = [&] {
    if (!literal.empty()) out.push_back(Piece{std::move(literal), -1, 0});
    literal.clear();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$') {
      literal += text[i];
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '$') {
      literal += '$';
      ++i;
      continue;
    }
    std::string_view ref;
    if (i + 1 < text.size() && text[i + 1] == '{') {
      const auto close = text.find('}', i + 2);
      if (close == std::string::npos) {
        *error = "unterminated ${...}";
        return false;
      }
      ref = std::string_view(text).substr(i + 2, close - i - 2);
      i = close;
    } else {
      std::size_t j = i + 1;
      while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
      if (j == i + 1) {
        *error = "a $ must be followed by a group ($1, ${name}); write $$ for a dollar sign";
        return false;
      }
      ref = std::string_view(text).substr(i + 1, j - i - 1);
      i = j - 1;
    }
    auto piece = reference(ref);
    if (!piece) return false;
    flush();
    out.push_back(*piece);
  }
  flush();
  return true;
}

// Builds a rule, reporting every problem; returns nullptr if any.
std::unique_ptr<Classifier::Rule> compile_rule(ClassifierKind kind, const ClassifierRuleConfig& cfg,
                                               const RuleErrorSink& sink) {
  auto rule = std::make_unique<Classifier::Rule>();
  bool ok = true;
  const auto fail = [&](const std::string& key, const std::string& message) {
    sink(key, message);
    ok = false;
  };
  for (const auto& [key, text] : cfg.regexes) {
    const auto source = regex_source(kind, key);
    if (!source) {
      fail("match." + key, "not a regex field of this kind of rule");
      continue;
    }
    std::string error;
    auto prepared = prepare_regex(text, &error);
    if (!error.empty()) {
      fail("match." + key, error);
      continue;
    }
    Classifier::Rule::Condition c;
    c.source = *source;
    c.key = key;
    try {
      auto flags = std::regex::ECMAScript | std::regex::optimize;
      if (prepared.icase) flags |= std::regex::icase;
      c.regex = std::regex(prepared.pattern, flags);
    } catch (const std::regex_error& e) {
      fail("match." + key, fmt::format("'{}' is not a valid regular expression: {}", text, e.what()));
      continue;
    }
    c.groups = static_cast<unsigned>(c.regex.mark_count());
    c.names = std::move(prepared.names);
    for (const auto& [name, _] : c.names) {
      for (const auto& other : rule->conditions) {
        if (other.names.count(name)) fail("match." + key, fmt::format("the group name '{}' is also used in match.{}", name, other.key));
      }
    }
    rule->conditions.push_back(std::move(c));
  }
  for (std::size_t i = 0; i < cfg.exporter_addresses.size(); ++i) {
    std::string error;
    if (auto p = parse_prefix(cfg.exporter_addresses[i], &error)) rule->prefixes.push_back(*p);
    else fail(kind == ClassifierKind::exporter ? "match.address" : "match.exporter_address", error);
  }
  rule->indexes = cfg.indexes;
  rule->speed = cfg.speed;
  rule->min_speed = cfg.min_speed;
  rule->max_speed = cfg.max_speed;
  if (kind == ClassifierKind::exporter && (!cfg.indexes.empty() || cfg.speed || cfg.min_speed || cfg.max_speed)) {
    fail("match", "exporter rules match on name and address only");
  }
  if (cfg.set.empty()) fail("set", fmt::format("required: what the rule sets, among {}", output_names(kind)));
  for (const auto& [key, text] : cfg.set) {
    const auto slot = output_slot(kind, key);
    if (!slot) {
      fail("set." + key, fmt::format("unknown field (known: {})", output_names(kind)));
      continue;
    }
    Classifier::Rule::Output out{*slot, {}};
    std::string error;
    if (!parse_template(text, *rule, out.pieces, &error)) {
      fail("set." + key, error);
      continue;
    }
    const bool literal_only = std::all_of(out.pieces.begin(), out.pieces.end(), [](const auto& p) { return p.condition < 0; });
    if (kind == ClassifierKind::interface && *slot == kBoundarySlot && literal_only && !parse_boundary(text)) {
      fail("set." + key, fmt::format("expected external, internal or undefined, got '{}'", text));
      continue;
    }
    rule->outputs.push_back(std::move(out));
  }
  if (!ok) return nullptr;
  return rule;
}

std::string_view source_text(Source s, const ClassifierInput& in) {
  switch (s) {
    case Source::exporter_name: return in.exporter_name;
    case Source::name: return in.name;
    case Source::description: return in.description;
  }
  return {};
}

}  // namespace

Classifier::Classifier(ClassifierKind kind, const std::vector<ClassifierRuleConfig>& rules, std::size_t cache_entries,
                       MetricsRegistry& metrics)
    : kind_(kind),
      cache_entries_(std::max<std::size_t>(cache_entries, 1)),
      evaluations_(metrics.counter("enrich_classifier_evaluations_total",
                                   "Classifier rule evaluations (cache misses), by kind",
                                   {{"kind", kind == ClassifierKind::exporter ? "exporter" : "interface"}})),
      invalid_values_(metrics.counter("enrich_classifier_invalid_values_total",
                                      "Classifier results ignored because a template produced an invalid boundary",
                                      {{"kind", kind == ClassifierKind::exporter ? "exporter" : "interface"}})) {
  for (const auto& cfg : rules) {
    auto rule = compile_rule(kind, cfg, [&](const std::string& key, const std::string& message) {
      throw std::invalid_argument(fmt::format("{}.{}: {}", cfg.path, key, message));
    });
    rules_.push_back(std::move(rule));
  }
}

Classifier::~Classifier() = default;

bool Classifier::validate(ClassifierKind kind, const ClassifierRuleConfig& rule, const RuleErrorSink& sink) {
  return compile_rule(kind, rule, sink) != nullptr;
}

Classification Classifier::evaluate(const ClassifierInput& in) const {
  Classification out;
  const std::uint8_t all = kind_ == ClassifierKind::exporter ? 0x3f : 0x1f;
  std::vector<std::cmatch> matches;
  for (const auto& rule : rules_) {
    if (out.set_mask == all) break;
    if (!rule->prefixes.empty() &&
        std::none_of(rule->prefixes.begin(), rule->prefixes.end(), [&](const Prefix& p) { return p.contains(in.exporter_address); }))
      continue;
    if (!rule->indexes.empty() && std::find(rule->indexes.begin(), rule->indexes.end(), in.index) == rule->indexes.end())
      continue;
    if ((rule->speed && in.speed != *rule->speed) || (rule->min_speed && in.speed < *rule->min_speed) ||
        (rule->max_speed && in.speed > *rule->max_speed))
      continue;
    matches.assign(rule->conditions.size(), std::cmatch{});
    bool matched = true;
    for (std::size_t c = 0; c < rule->conditions.size() && matched; ++c) {
      const auto text = source_text(rule->conditions[c].source, in);
      matched = std::regex_search(text.data(), text.data() + text.size(), matches[c], rule->conditions[c].regex);
    }
    if (!matched) continue;
    for (const auto& output : rule->outputs) {
      if (out.has(output.slot)) continue;
      std::string value;
      for (const auto& piece : output.pieces) {
        if (piece.condition < 0) value += piece.literal;
        else value += matches[static_cast<std::size_t>(piece.condition)][piece.group].str();
      }
      if (value.empty()) continue;  // an optional group that did not match: leave the field to later rules
      if (kind_ == ClassifierKind::interface && output.slot == kBoundarySlot) {
        const auto b = parse_boundary(value);
        if (!b) {
          invalid_values_.inc();
          spdlog::warn("classifier: a rule produced the boundary '{}', which is none of external, internal or "
                       "undefined; it is ignored. Check the interface_classifiers rule setting boundary",
                       value);
          continue;
        }
        out.boundary = *b;
      }
      out.values[output.slot] = std::move(value);
      out.set_mask = static_cast<std::uint8_t>(out.set_mask | (1u << output.slot));
    }
  }
  return out;
}

std::shared_ptr<const Classification> Classifier::classify(const ClassifierInput& in) {
  std::string key;
  key.reserve(16 + 8 + in.exporter_name.size() + in.name.size() + in.description.size() + 3);
  key.append(reinterpret_cast<const char*>(in.exporter_address.data()), in.exporter_address.size());
  key.append(reinterpret_cast<const char*>(&in.index), sizeof in.index);
  key.append(reinterpret_cast<const char*>(&in.speed), sizeof in.speed);
  key.append(in.exporter_name).push_back('\0');
  key.append(in.name).push_back('\0');
  key.append(in.description);
  {
    std::lock_guard lock(mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  }
  evaluations_.inc();
  auto result = std::make_shared<const Classification>(evaluate(in));
  std::lock_guard lock(mutex_);
  if (cache_.size() >= cache_entries_) cache_.clear();
  cache_.emplace(std::move(key), result);
  return result;
}

}  // namespace sluice::transforms
