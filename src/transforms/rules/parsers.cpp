#define PCRE2_CODE_UNIT_WIDTH 8
#include "transforms/rules/parsers.hpp"

#include <fmt/format.h>
#include <pcre2.h>
#include <simdjson.h>

#include <charconv>
#include <cstring>
#include <iterator>

namespace sluice::transforms::rules {
namespace {

void escape_json(std::string_view s, std::string& out) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
        else out += ch;
    }
  }
  out += '"';
}

// The element as T; callers have checked its type, so the conversion cannot fail.
template <typename T>
T value_of(simdjson::dom::element e) {
  T v{};
  if (e.get(v) != simdjson::SUCCESS) return T{};
  return v;
}

template <typename T>
void append_number(T v, std::string& out) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec == std::errc()) out.append(buf, end);
}

// Serializes a DOM value back to compact JSON (arrays and over-deep objects are kept as text).
void write_json(simdjson::dom::element e, std::string& out) {
  using simdjson::dom::element_type;
  switch (e.type()) {
    case element_type::ARRAY: {
      out += '[';
      bool first = true;
      simdjson::dom::array array;
      if (e.get_array().get(array)) break;
      for (auto child : array) {
        if (!first) out += ',';
        first = false;
        write_json(child, out);
      }
      out += ']';
      break;
    }
    case element_type::OBJECT: {
      out += '{';
      bool first = true;
      simdjson::dom::object object;
      if (e.get_object().get(object)) break;
      for (auto field : object) {
        if (!first) out += ',';
        first = false;
        escape_json(field.key, out);
        out += ':';
        write_json(field.value, out);
      }
      out += '}';
      break;
    }
    case element_type::STRING: escape_json(value_of<std::string_view>(e), out); break;
    case element_type::INT64: append_number(value_of<std::int64_t>(e), out); break;
    case element_type::UINT64: append_number(value_of<std::uint64_t>(e), out); break;
    case element_type::DOUBLE: append_number(value_of<double>(e), out); break;
    case element_type::BOOL: out += value_of<bool>(e) ? "true" : "false"; break;
    case element_type::NULL_VALUE: out += "null"; break;
  }
}

const char* type_name(simdjson::dom::element_type t) {
  using simdjson::dom::element_type;
  switch (t) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::STRING: return "a string";
    case element_type::INT64: case element_type::UINT64: case element_type::DOUBLE: return "a number";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

// Offset of the first byte that is not valid UTF-8 (or size when all are).
std::size_t first_invalid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) n = 1, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) n = 2, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) n = 3, cp = c & 0x07;
    else return i;
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return i;
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    const bool overlong = (n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += n + 1;
  }
  return s.size();
}

}  // namespace

std::string_view failure_label(Failure f) {
  switch (f) {
    case Failure::none: return "none";
    case Failure::json_syntax: return "json_syntax";
    case Failure::json_not_object: return "json_not_object";
    case Failure::json_depth: return "json_depth";
    case Failure::invalid_utf8: return "invalid_utf8";
    case Failure::too_many_fields: return "too_many_fields";
    case Failure::too_long: return "too_long";
    case Failure::logfmt_syntax: return "logfmt_syntax";
    case Failure::regex_no_match: return "regex_no_match";
    case Failure::regex_limit: return "regex_limit";
    case Failure::missing_field: return "missing_field";
    case Failure::timestamp: return "timestamp";
    case Failure::convert: return "convert";
  }
  return "unknown";
}

// ---- JSON ----

struct JsonFlattener::State {
  simdjson::dom::parser parser;
  std::string padded;
  std::string name;
  std::size_t added = 0;
  bool stopped = false;

  // Writes `e` under the name currently in `name`; objects recurse until `depth` reaches the limit.
  void walk(simdjson::dom::element e, std::size_t depth, const ParseLimits& limits, LogEvent& event) {
    using simdjson::dom::element_type;
    const auto type = e.type();
    if (type == element_type::OBJECT && depth < limits.flatten_depth) {
      const auto obj = value_of<simdjson::dom::object>(e);
      if (obj.size() > 0) {
        const std::size_t base = name.size();
        for (auto field : obj) {
          if (stopped) return;
          name.resize(base);
          if (depth > 0) name += '.';
          name.append(field.key);
          walk(field.value, depth + 1, limits, event);
        }
        name.resize(base);
        return;
      }
    }
    LogField* f = event.find(name);
    if (!f) {
      if (event.field_count() >= limits.max_fields) {
        stopped = true;
        return;
      }
      f = &event.append_field(name);
    }
    f->value.clear();
    ++added;
    switch (type) {
      case element_type::STRING:
        f->value.assign(value_of<std::string_view>(e));
        f->type = FieldType::string;
        break;
      case element_type::INT64: case element_type::UINT64: case element_type::DOUBLE:
        write_json(e, f->value);
        f->type = FieldType::number;
        break;
      case element_type::BOOL:
        f->value.assign(value_of<bool>(e) ? "true" : "false");
        f->type = FieldType::boolean;
        break;
      case element_type::NULL_VALUE: f->type = FieldType::null; break;
      case element_type::ARRAY: case element_type::OBJECT:
        write_json(e, f->value);
        f->type = FieldType::json;
        break;
    }
  }
};

JsonFlattener::JsonFlattener() : state_(std::make_unique<State>()) {
  // The depth is fixed once here; later growth of the buffers keeps it.
  if (state_->parser.allocate(4096, kMaxJsonDepth) != simdjson::SUCCESS) throw std::bad_alloc();
}
JsonFlattener::~JsonFlattener() = default;

Failure JsonFlattener::parse(std::string_view text, std::string_view prefix, const ParseLimits& limits,
                             LogEvent& event, std::string& error) {
  State& s = *state_;
  if (text.size() > limits.max_bytes) {
    error.clear();
    fmt::format_to(std::back_inserter(error), "json: input of {} bytes is longer than the limit of {}", text.size(),
                   limits.max_bytes);
    return Failure::too_long;
  }
  s.padded.resize(text.size() + simdjson::SIMDJSON_PADDING);
  if (!text.empty()) std::memcpy(s.padded.data(), text.data(), text.size());
  simdjson::dom::element root;
  const auto err = s.parser.parse(s.padded.data(), text.size(), false).get(root);
  error.clear();
  if (err) {
    if (err == simdjson::UTF8_ERROR) {
      fmt::format_to(std::back_inserter(error), "json: invalid UTF-8 at byte {}", first_invalid_utf8(text));
      return Failure::invalid_utf8;
    }
    if (err == simdjson::DEPTH_ERROR) {
      fmt::format_to(std::back_inserter(error), "json: nested deeper than {} levels", kMaxJsonDepth);
      return Failure::json_depth;
    }
    if (err == simdjson::EMPTY) {
      error.assign("json: empty input");
      return Failure::json_syntax;
    }
    fmt::format_to(std::back_inserter(error), "json: {}", simdjson::error_message(err));
    return Failure::json_syntax;
  }
  if (root.type() != simdjson::dom::element_type::OBJECT) {
    fmt::format_to(std::back_inserter(error), "json: expected an object, got {}", type_name(root.type()));
    return Failure::json_not_object;
  }
  s.name.assign(prefix);
  s.added = 0;
  s.stopped = false;
  // The prefix is the name of depth 0: "http." + "status"; without one, names start at the key.
  const auto obj = value_of<simdjson::dom::object>(root);
  for (auto field : obj) {
    if (s.stopped) break;
    s.name.assign(prefix);
    s.name.append(field.key);
    s.walk(field.value, 1, limits, event);
  }
  if (s.stopped) {
    fmt::format_to(std::back_inserter(error), "json: more than {} fields, kept the first {}", limits.max_fields,
                   limits.max_fields);
    return Failure::too_many_fields;
  }
  return Failure::none;
}

// ---- logfmt ----

Failure LogfmtParser::parse(std::string_view text, std::string_view prefix, const ParseLimits& limits,
                            LogEvent& event, std::string& error) {
  error.clear();
  if (text.size() > limits.max_bytes) {
    fmt::format_to(std::back_inserter(error), "logfmt: input of {} bytes is longer than the limit of {}",
                   text.size(), limits.max_bytes);
    return Failure::too_long;
  }
  pairs_.clear();
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    while (i < n && blank(text[i])) ++i;
    if (i >= n) break;
    const std::size_t key_start = i;
    while (i < n && !blank(text[i]) && text[i] != '=' && text[i] != '"') ++i;
    if (i == key_start) {
      fmt::format_to(std::back_inserter(error), "logfmt: expected a key at byte {}, got '{}'", i,
                     text[i] == '"' ? "\\\"" : "=");
      return Failure::logfmt_syntax;
    }
    Pair p;
    p.key = text.substr(key_start, i - key_start);
    if (i >= n || blank(text[i])) {
      p.bare_key = true;
    } else if (text[i] == '"') {
      fmt::format_to(std::back_inserter(error), "logfmt: unexpected '\"' in key at byte {}", i);
      return Failure::logfmt_syntax;
    } else {
      ++i;  // '='
      if (i < n && text[i] == '"') {
        const std::size_t open = i++;
        const std::size_t value_start = i;
        while (i < n && text[i] != '"') i += text[i] == '\\' ? 2 : 1;
        if (i >= n) {
          fmt::format_to(std::back_inserter(error), "logfmt: unterminated quoted value at byte {}", open);
          return Failure::logfmt_syntax;
        }
        p.value = text.substr(value_start, i - value_start);
        p.quoted = true;
        ++i;
        if (i < n && !blank(text[i])) {
          fmt::format_to(std::back_inserter(error), "logfmt: expected a blank after the quoted value at byte {}", i);
          return Failure::logfmt_syntax;
        }
      } else {
        const std::size_t value_start = i;
        while (i < n && !blank(text[i])) {
          if (text[i] == '"') {
            fmt::format_to(std::back_inserter(error), "logfmt: unexpected '\"' in a bare value at byte {}", i);
            return Failure::logfmt_syntax;
          }
          ++i;
        }
        p.value = text.substr(value_start, i - value_start);
      }
    }
    pairs_.push_back(p);
  }
  bool stopped = false;
  for (const auto& p : pairs_) {
    name_.assign(prefix);
    name_.append(p.key);
    LogField* f = event.find(name_);
    if (!f) {
      if (event.field_count() >= limits.max_fields) {
        stopped = true;
        break;
      }
      f = &event.append_field(name_);
    }
    f->value.clear();
    f->type = FieldType::string;
    if (p.bare_key) {
      f->value.assign("true");
      f->type = FieldType::boolean;
    } else if (!p.quoted) {
      f->value.assign(p.value);
    } else {
      for (std::size_t k = 0; k < p.value.size(); ++k) {
        char c = p.value[k];
        if (c == '\\' && k + 1 < p.value.size()) {
          c = p.value[++k];
          if (c == 'n') c = '\n';
          else if (c == 't') c = '\t';
          else if (c == 'r') c = '\r';
          else if (c != '"' && c != '\\') f->value += '\\';
        }
        f->value += c;
      }
    }
  }
  if (stopped) {
    fmt::format_to(std::back_inserter(error), "logfmt: more than {} fields, kept the first {}", limits.max_fields,
                   limits.max_fields);
    return Failure::too_many_fields;
  }
  return Failure::none;
}

// ---- regular expressions ----

std::unique_ptr<Regex> Regex::compile(const std::string& pattern, std::string* error) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), 0, &code, &offset,
                                 nullptr);
  if (!re) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(code, buf, sizeof buf);
    if (error) *error = fmt::format("invalid regular expression at offset {}: {}", offset, reinterpret_cast<char*>(buf));
    return nullptr;
  }
  std::unique_ptr<Regex> out(new Regex());  // private constructor: make_unique cannot reach it
  out->code_ = re;
  out->pattern_ = pattern;
  out->jit_ = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
  pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &out->captures_);
  std::uint32_t count = 0, entry_size = 0;
  PCRE2_SPTR table = nullptr;
  pcre2_pattern_info(re, PCRE2_INFO_NAMECOUNT, &count);
  pcre2_pattern_info(re, PCRE2_INFO_NAMEENTRYSIZE, &entry_size);
  pcre2_pattern_info(re, PCRE2_INFO_NAMETABLE, &table);
  for (std::uint32_t k = 0; k < count; ++k) {
    const PCRE2_SPTR entry = table + k * entry_size;
    const std::uint32_t group = (static_cast<std::uint32_t>(entry[0]) << 8) | entry[1];
    out->names_.emplace_back(reinterpret_cast<const char*>(entry + 2), group);
  }
  return out;
}

Regex::~Regex() { pcre2_code_free(code_); }

MatchState::MatchState(std::uint32_t max_captures) {
  data_ = pcre2_match_data_create(max_captures + 1, nullptr);
  context_ = pcre2_match_context_create(nullptr);
  stack_ = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, nullptr);
  if (!data_ || !context_ || !stack_) {
    pcre2_match_data_free(data_);
    pcre2_match_context_free(context_);
    pcre2_jit_stack_free(stack_);
    throw std::bad_alloc();
  }
  pcre2_jit_stack_assign(context_, nullptr, stack_);
  // Bounds the work of one match, so that a pattern that backtracks badly on a hostile line fails
  // that line instead of stalling the outlet.
  pcre2_set_match_limit(context_, 1'000'000);
  pcre2_set_depth_limit(context_, 10'000);
}

MatchState::~MatchState() {
  pcre2_match_data_free(data_);
  pcre2_match_context_free(context_);
  pcre2_jit_stack_free(stack_);
}

int MatchState::match(const Regex& re, std::string_view subject) {
  const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  if (re.jit()) return pcre2_jit_match(re.code(), s, subject.size(), 0, 0, data_, context_);
  return pcre2_match(re.code(), s, subject.size(), 0, 0, data_, context_);
}

bool MatchState::group(std::uint32_t n, std::string_view subject, std::string_view& out) const {
  if (n >= pcre2_get_ovector_count(data_)) return false;
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data_);
  if (ov[2 * n] == PCRE2_UNSET || ov[2 * n + 1] < ov[2 * n]) return false;
  out = subject.substr(ov[2 * n], ov[2 * n + 1] - ov[2 * n]);
  return true;
}

Failure regex_parse(const Regex& re, const std::vector<std::pair<std::string, std::uint32_t>>& fields,
                    std::string_view text, const ParseLimits& limits, LogEvent& event, MatchState& state,
                    std::string& error) {
  error.clear();
  if (text.size() > limits.max_bytes) {
    fmt::format_to(std::back_inserter(error), "regex: input of {} bytes is longer than the limit of {}",
                   text.size(), limits.max_bytes);
    return Failure::too_long;
  }
  const int rc = state.match(re, text);
  if (rc == PCRE2_ERROR_NOMATCH) {
    error.assign("regex: no match");
    return Failure::regex_no_match;
  }
  if (rc < 0) {
    PCRE2_UCHAR buf[128];
    pcre2_get_error_message(rc, buf, sizeof buf);
    fmt::format_to(std::back_inserter(error), "regex: {}", reinterpret_cast<char*>(buf));
    return Failure::regex_limit;
  }
  // Fresh events need no lookup: group names are unique within a pattern.
  const bool fresh = event.field_count() == 0;
  for (const auto& [name, group] : fields) {
    std::string_view value;
    if (!state.group(group, text, value)) continue;
    LogField* f = fresh ? nullptr : event.find(name);
    if (!f) {
      if (event.field_count() >= limits.max_fields) {
        fmt::format_to(std::back_inserter(error), "regex: more than {} fields, kept the first {}", limits.max_fields,
                       limits.max_fields);
        return Failure::too_many_fields;
      }
      f = &event.append_field(name);
    }
    f->value.assign(value);
    f->type = FieldType::string;
  }
  return Failure::none;
}

}  // namespace sluice::transforms::rules
