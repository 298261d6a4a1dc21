// Line parsers of the rules: JSON (flattened to dotted names), logfmt and PCRE2 regular expressions
// with named groups, each writing fields into a LogEvent and reusing per-thread state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "transforms/log_event.hpp"

struct pcre2_real_code_8;
struct pcre2_real_match_data_8;
struct pcre2_real_match_context_8;
struct pcre2_real_jit_stack_8;

namespace sluice::transforms::rules {

// Why a rule failed; the label of rules_parse_failures_total{reason}.
enum class Failure : std::uint8_t {
  none,
  json_syntax,
  json_not_object,
  json_depth,
  invalid_utf8,
  too_many_fields,
  too_long,
  logfmt_syntax,
  regex_no_match,
  regex_limit,
  missing_field,
  timestamp,
  convert,
};
inline constexpr std::size_t kFailureKinds = static_cast<std::size_t>(Failure::convert) + 1;
std::string_view failure_label(Failure f);

// Deeper JSON is rejected by the parser itself, before any field is written.
inline constexpr std::size_t kMaxJsonDepth = 32;

struct ParseLimits {
  std::size_t max_fields = 512;      // fields per event; the parse stops there and says so
  std::size_t max_bytes = 1 << 20;   // longer input is not parsed
  std::size_t flatten_depth = kMaxJsonDepth;  // JSON objects deeper than this stay whole, as JSON
};

// Parses JSON objects with simdjson into dotted field names. One per thread: it keeps the parser's
// buffers and a padded copy of the input between lines.
class JsonFlattener {
 public:
  JsonFlattener();
  ~JsonFlattener();
  JsonFlattener(const JsonFlattener&) = delete;
  JsonFlattener& operator=(const JsonFlattener&) = delete;

  // Writes every member of the object in `text` as a field named prefix + dotted path. On failure
  // `error` holds the reason ("json: ..."); fields written before a field-limit stop are kept.
  Failure parse(std::string_view text, std::string_view prefix, const ParseLimits& limits, LogEvent& event,
                std::string& error);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// logfmt: key=value pairs separated by blanks; values bare or double-quoted with backslash escapes;
// a key alone is boolean true. Nothing is written when the line is malformed.
class LogfmtParser {
 public:
  Failure parse(std::string_view text, std::string_view prefix, const ParseLimits& limits, LogEvent& event,
                std::string& error);

 private:
  struct Pair {
    std::string_view key;
    std::string_view value;
    bool quoted = false;
    bool bare_key = false;
  };
  std::vector<Pair> pairs_;
  std::string name_;
};

// A compiled PCRE2 pattern (JIT when available). Shared by threads; matching needs a MatchState each.
class Regex {
 public:
  // Returns null with `error` set ("invalid regular expression at offset N: ...").
  static std::unique_ptr<Regex> compile(const std::string& pattern, std::string* error);
  ~Regex();

  const std::vector<std::pair<std::string, std::uint32_t>>& names() const { return names_; }
  std::uint32_t capture_count() const { return captures_; }
  const std::string& pattern() const { return pattern_; }
  pcre2_real_code_8* code() const { return code_; }
  bool jit() const { return jit_; }

 private:
  Regex() = default;
  pcre2_real_code_8* code_ = nullptr;
  std::string pattern_;
  std::vector<std::pair<std::string, std::uint32_t>> names_;  // group name → number, by number
  std::uint32_t captures_ = 0;
  bool jit_ = false;
};

// Per-thread matching state: match data big enough for the largest pattern, a JIT stack and limits
// that stop catastrophic backtracking.
class MatchState {
 public:
  explicit MatchState(std::uint32_t max_captures);
  ~MatchState();
  MatchState(const MatchState&) = delete;
  MatchState& operator=(const MatchState&) = delete;

  // >0: matched; 0 or PCRE2_ERROR_NOMATCH (<0): no match; other negative values: limits hit.
  int match(const Regex& re, std::string_view subject);
  // Group `n` of the last match; false when it did not take part.
  bool group(std::uint32_t n, std::string_view subject, std::string_view& out) const;

 private:
  pcre2_real_match_data_8* data_ = nullptr;
  pcre2_real_match_context_8* context_ = nullptr;
  pcre2_real_jit_stack_8* stack_ = nullptr;
};

// Matches `re` against `text` and writes each named group that took part into the field named in
// `fields` (group number → full field name). Failure::regex_no_match when it does not match.
Failure regex_parse(const Regex& re, const std::vector<std::pair<std::string, std::uint32_t>>& fields,
                    std::string_view text, const ParseLimits& limits, LogEvent& event, MatchState& state,
                    std::string& error);

}  // namespace sluice::transforms::rules
