#include "decoders/falcon.hpp"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace sluice::falcon {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool parse_double(std::string_view text, double& out) {
  text = trim(text);
  if (text.empty()) return false;
  // strtod accepts what Go's ParseFloat does for ordinary input (decimal, exponent, inf, nan).
  std::string copy(text);
  char* end = nullptr;
  errno = 0;
  out = std::strtod(copy.c_str(), &end);
  return end == copy.c_str() + copy.size() && errno != ERANGE;
}

// A JSON string field, or empty when the field holds anything else (Go leaves such fields empty too).
std::string_view string_or_empty(simdjson::dom::element v) {
  std::string_view s;
  return v.get_string().get(s) == simdjson::SUCCESS ? s : std::string_view{};
}

bool parse_int(std::string_view text, std::int64_t& out) {
  text = trim(text);
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size();
}

}  // namespace

const char* to_string(CounterType t) {
  switch (t) {
    case CounterType::gauge: return "GAUGE";
    case CounterType::counter: return "COUNTER";
    case CounterType::derive: return "DERIVE";
  }
  return "GAUGE";
}

const char* to_string(Invalid reason) {
  switch (reason) {
    case Invalid::nil_entry: return "nil_entry";
    case Invalid::not_an_object: return "not_an_object";
    case Invalid::hostname_metric: return "hostname_metric";
    case Invalid::empty_metric: return "empty_metric";
    case Invalid::empty_endpoint: return "empty_endpoint";
    case Invalid::bad_counter_type: return "bad_counter_type";
    case Invalid::empty_value: return "empty_value";
    case Invalid::bad_step: return "bad_step";
    case Invalid::too_long: return "too_long";
    case Invalid::bad_value: return "bad_value";
    case Invalid::count_: break;
  }
  return "unknown";
}

std::uint64_t ParseCounts::invalid_total() const {
  std::uint64_t n = 0;
  for (auto v : invalid) n += v;
  return n;
}

bool parse_tags(std::string_view text, MetricValue& out) {
  out.tag_count = 0;
  out.tags_text = text;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const auto pair = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos) continue;  // a piece without '=' carries no tag
    if (out.tag_count == MetricValue::kMaxTags) return false;
    out.tags[out.tag_count++] = {trim(pair.substr(0, eq)), trim(pair.substr(eq + 1))};
  }
  // Open-Falcon builds a map from the pieces, so a repeated key keeps its last value: sort stably,
  // then keep the last of each run of equal keys.
  std::stable_sort(out.tags.begin(), out.tags.begin() + out.tag_count,
                   [](const Tag& a, const Tag& b) { return a.key < b.key; });
  std::uint8_t kept = 0;
  for (std::uint8_t i = 0; i < out.tag_count; ++i) {
    if (kept != 0 && out.tags[kept - 1].key == out.tags[i].key) out.tags[kept - 1] = out.tags[i];
    else out.tags[kept++] = out.tags[i];
  }
  out.tag_count = kept;
  return true;
}

bool validate(std::string_view endpoint, std::string_view metric, std::string_view value_text, std::string_view tags,
              std::string_view counter_type, std::int64_t step, std::int64_t timestamp, std::int64_t now,
              MetricValue& out, Invalid& why) {
  auto fail = [&](Invalid reason) {
    why = reason;
    return false;
  };
  if (metric == "kernel.hostname") return fail(Invalid::hostname_metric);
  if (metric.empty()) return fail(Invalid::empty_metric);
  if (endpoint.empty()) return fail(Invalid::empty_endpoint);
  if (counter_type == "GAUGE") out.counter_type = CounterType::gauge;
  else if (counter_type == "COUNTER") out.counter_type = CounterType::counter;
  else if (counter_type == "DERIVE") out.counter_type = CounterType::derive;
  else return fail(Invalid::bad_counter_type);
  if (value_text.empty()) return fail(Invalid::empty_value);
  if (step <= 0 || step > INT32_MAX) return fail(Invalid::bad_step);
  if (metric.size() + tags.size() > 510) return fail(Invalid::too_long);
  if (!parse_double(value_text, out.value)) return fail(Invalid::bad_value);
  if (!parse_tags(tags, out)) return fail(Invalid::too_long);
  out.endpoint = endpoint;
  out.metric = metric;
  out.step = static_cast<std::int32_t>(step);
  out.timestamp = (timestamp <= 0 || timestamp > 2 * now) ? now : timestamp;
  return true;
}

bool parse_json_values(std::string_view json, std::int64_t now, const MetricCallback& on_value, ParseCounts& counts,
                       std::string* error) {
  // The DOM parser validates the whole document before anything is read: Open-Falcon refuses a
  // malformed body whole (Go's json.Unmarshal), so nothing is delivered or counted unless it parses.
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array array;
  if (parser.parse(json.data(), json.size(), true).get(doc) != simdjson::SUCCESS ||
      doc.get_array().get(array) != simdjson::SUCCESS) {
    if (error) *error = "the body must be one well-formed JSON array of metric values";
    return false;
  }
  MetricValue out;
  std::string value_buf;
  for (simdjson::dom::element element : array) {
    ++counts.total;
    auto count_invalid = [&](Invalid reason) { ++counts.invalid[static_cast<std::size_t>(reason)]; };
    if (element.is_null()) {
      count_invalid(Invalid::nil_entry);
      continue;
    }
    simdjson::dom::object object;
    if (element.get_object().get(object) != simdjson::SUCCESS) {
      count_invalid(Invalid::not_an_object);
      continue;
    }
    std::string_view endpoint, metric, tags, counter_type;
    std::int64_t step = 0, timestamp = 0;
    bool value_present = false, step_ok = true;
    value_buf.clear();
    for (const auto [key, v] : object) {
      if (key == "endpoint") endpoint = string_or_empty(v);
      else if (key == "metric") metric = string_or_empty(v);
      else if (key == "tags") tags = string_or_empty(v);
      else if (key == "counterType") counter_type = string_or_empty(v);
      else if (key == "step") {
        double d = 0;
        if (v.get_int64().get(step) != simdjson::SUCCESS) {
          step_ok = v.get_double().get(d) == simdjson::SUCCESS && d == std::floor(d);
          step = static_cast<std::int64_t>(d);
        }
      } else if (key == "timestamp") {
        double d = 0;
        if (v.get_int64().get(timestamp) != simdjson::SUCCESS && v.get_double().get(d) == simdjson::SUCCESS) {
          timestamp = static_cast<std::int64_t>(d);
        }
      } else if (key == "value") {
        std::string_view text;
        if (v.get_string().get(text) == simdjson::SUCCESS) {
          value_buf.assign(text);
          value_present = true;
        } else if (v.is_number()) {
          // Keep the number's value exactly: print it back as shortest round-trip text.
          double d = 0;
          if (v.get_double().get(d) == simdjson::SUCCESS) {
            char buf[32];
            auto [p, ec] = std::to_chars(buf, buf + sizeof buf, d);
            value_buf.assign(buf, ec == std::errc() ? static_cast<std::size_t>(p - buf) : 0);
            value_present = true;
          }
        } else if (!v.is_null()) {
          value_buf.assign(1, '?');  // a bool, array or object: present but not a number
          value_present = true;
        }
      }
    }
    Invalid why{};
    if (!step_ok) step = 0;
    if (!value_present) value_buf.clear();
    if (validate(endpoint, metric, value_buf, tags, counter_type, step, timestamp, now, out, why)) {
      ++counts.valid;
      on_value(out);
    } else {
      count_invalid(why);
    }
  }
  return true;
}

LineKind parse_line(std::string_view line, std::int64_t now, MetricValue& out, Invalid& why) {
  std::array<std::string_view, 8> tok{};
  std::size_t n = 0;
  line = trim(line);
  while (!line.empty() && n < tok.size()) {
    const auto sp = line.find_first_of(" \t");
    tok[n++] = line.substr(0, sp);
    line = sp == std::string_view::npos ? std::string_view{} : trim(line.substr(sp));
  }
  if (n == 0) return LineKind::unknown_command;
  if (tok[0] == "quit") return LineKind::quit;
  if (tok[0] != "update") return LineKind::unknown_command;
  if (n < 5 || !line.empty()) {
    why = Invalid::empty_value;
    return LineKind::invalid;
  }
  std::int64_t timestamp = 0;
  parse_int(tok[3], timestamp);
  std::string_view counter_type = n > 5 ? tok[5] : "COUNTER";
  std::int64_t step = 60;
  if (n > 6) {
    auto s = tok[6];
    if (const auto colon = s.rfind(':'); colon != std::string_view::npos) s = s.substr(colon + 1);  // heartbeat:min:max:step
    if (!parse_int(s, step)) step = 0;
  }
  return validate(tok[1], tok[2], tok[4], {}, counter_type, step, timestamp, now, out, why) ? LineKind::value
                                                                                             : LineKind::invalid;
}

}  // namespace sluice::falcon
