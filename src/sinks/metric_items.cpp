#include "sinks/metric_items.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace sluice::sinks {
namespace {

// Calls f(key, value) for each "k=v" pair of a sorted tag string.
template <typename F>
void for_each_tag(std::string_view tags, F&& f) {
  while (!tags.empty()) {
    const auto comma = tags.find(',');
    const auto pair = tags.substr(0, comma);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos) f(pair.substr(0, eq), pair.substr(eq + 1));
    if (comma == std::string_view::npos) break;
    tags.remove_prefix(comma + 1);
  }
}

void append_tags_object(std::string& out, std::string_view tags, std::string_view endpoint = {}) {
  out += '{';
  bool first = true;
  if (!endpoint.empty()) {
    out += "\"endpoint\":";
    append_json_string(out, endpoint);
    first = false;
  }
  for_each_tag(tags, [&](std::string_view k, std::string_view v) {
    if (!first) out += ',';
    first = false;
    append_json_string(out, k);
    out += ':';
    append_json_string(out, v);
  });
  out += '}';
}

void append_int(std::string& out, std::int64_t v) { fmt::format_to(std::back_inserter(out), "{}", v); }

std::int64_t align_down(std::int64_t ts, std::int64_t step) { return step > 0 ? ts - ts % step : ts; }

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void append_number(std::string& out, double v) {
  if (!std::isfinite(v)) v = 0;
  fmt::format_to(std::back_inserter(out), "{}", v);
}

void append_graph_item(std::string& out, const MetricPoint& m, const ItemOptions& options) {
  const std::int32_t step = std::max(m.step, options.min_step);
  const bool gauge = m.counter_type == MetricCounterType::gauge;
  out += "{\"endpoint\":";
  append_json_string(out, m.endpoint);
  out += ",\"metric\":";
  append_json_string(out, m.metric);
  out += ",\"tags\":";
  append_tags_object(out, m.tags);
  out += ",\"value\":";
  append_number(out, m.value);
  out += ",\"timestamp\":";
  append_int(out, align_down(m.timestamp, step));
  out += gauge ? ",\"dstype\":\"GAUGE\"" : ",\"dstype\":\"DERIVE\"";
  out += ",\"step\":";
  append_int(out, step);
  out += ",\"heartbeat\":";
  append_int(out, 2 * std::int64_t{step});
  out += gauge ? ",\"min\":\"U\",\"max\":\"U\"}" : ",\"min\":\"0\",\"max\":\"U\"}";
}

void append_judge_item(std::string& out, const MetricPoint& m, const ItemOptions& options) {
  const std::int32_t step = std::max(m.step, options.min_step);
  out += "{\"endpoint\":";
  append_json_string(out, m.endpoint);
  out += ",\"metric\":";
  append_json_string(out, m.metric);
  out += ",\"value\":";
  append_number(out, m.value);
  out += ",\"valueRaw\":\"";
  append_number(out, m.value);
  out += "\",\"timestamp\":";
  append_int(out, align_down(m.timestamp, step));
  out += ",\"judgeType\":\"";
  out += to_string(m.counter_type);
  out += "\",\"tags\":";
  append_tags_object(out, m.tags);
  out += '}';
}

void append_tsdb_json(std::string& out, const MetricPoint& m) {
  out += "{\"metric\":";
  append_json_string(out, m.metric);
  out += ",\"timestamp\":";
  append_int(out, m.timestamp);
  out += ",\"value\":";
  append_number(out, m.value);
  out += ",\"tags\":";
  append_tags_object(out, m.tags, m.endpoint);
  out += '}';
}

void append_tsdb_line(std::string& out, const MetricPoint& m) {
  out += "put ";
  out += m.metric;
  out += ' ';
  append_int(out, m.timestamp);
  out += ' ';
  append_number(out, m.value);
  if (!m.endpoint.empty()) {
    out += " endpoint=";
    out += m.endpoint;
  }
  for_each_tag(m.tags, [&](std::string_view k, std::string_view v) {
    out += ' ';
    out += k;
    out += '=';
    out += v;
  });
  out += '\n';
}

void append_graphite_line(std::string& out, const MetricPoint& m) {
  out += m.metric;
  out += ' ';
  append_number(out, m.value);
  out += ' ';
  append_int(out, m.timestamp);
  out += '\n';
}

}  // namespace sluice::sinks
