#include "sinks/elasticsearch_body.hpp"

// The state struct lives on the stack: no allocation per document.
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include <array>
#include <chrono>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "sinks/dead_letters.hpp"

namespace sluice::sinks {
namespace {

IndexPattern compile_or_throw(const std::string& pattern) {
  std::string why;
  auto p = IndexPattern::compile(pattern, &why);
  if (!p) throw std::invalid_argument("elasticsearch index pattern '" + pattern + "': " + why);
  return std::move(*p);
}

void append_digits(std::string& out, unsigned v, int width) {
  std::array<char, 8> buf{};
  for (int i = width - 1; i >= 0; --i) {
    buf[static_cast<std::size_t>(i)] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  out.append(buf.data(), static_cast<std::size_t>(width));
}

// JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool is_json_number(std::string_view s) {
  std::size_t i = 0;
  const auto digits = [&] {
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') ++i;
  else if (!digits()) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

bool is_reserved(std::string_view name) {
  for (const std::string_view r : {"@timestamp", "message", "host", "log"}) {
    if (name == r) return true;
    if (name.size() > r.size() && name.starts_with(r) && name[r.size()] == '.') return true;
  }
  return name.empty();
}

}  // namespace

BulkBodyWriter::BulkBodyWriter(const ElasticsearchConfig& config) : index_(compile_or_throw(config.index)) {
  for (const auto& [route, pattern] : config.routes) routes_.emplace(route, compile_or_throw(pattern));
}

BulkBodyWriter::BulkBodyWriter(const ElasticsearchConfig& config, MetricsRegistry& metrics) : BulkBodyWriter(config) {
  invalid_utf8_counter_ = &metrics.counter(
      "elasticsearch_invalid_utf8_total", "Invalid UTF-8 bytes replaced by U+FFFD in documents sent to Elasticsearch");
}

const IndexPattern& BulkBodyWriter::index_for(std::string_view route) const {
  if (!route.empty()) {
    if (const auto it = routes_.find(route); it != routes_.end()) return it->second;
  }
  return index_;
}

void BulkBodyWriter::document_id(const transforms::LogEvent& e, std::string& out) {
  // Lengths keep ("ab","c") and ("a","bc") apart; integers are hashed little-endian-independent as text.
  XXH3_state_t state;
  XXH3_128bits_reset(&state);
  const auto put_u64 = [&](std::uint64_t v) {
    std::array<unsigned char, 8> b{};
    for (std::size_t i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
    XXH3_128bits_update(&state, b.data(), b.size());
  };
  put_u64(e.host.size());
  XXH3_128bits_update(&state, e.host.data(), e.host.size());
  put_u64(e.path.size());
  XXH3_128bits_update(&state, e.path.data(), e.path.size());
  put_u64(e.file_id);
  put_u64(e.offset);
  const XXH128_hash_t h = XXH3_128bits_digest(&state);
  static constexpr char kHex[] = "0123456789abcdef";
  out.clear();
  for (const std::uint64_t part : {h.high64, h.low64}) {
    for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHex[(part >> shift) & 15]);
  }
}

void BulkBodyWriter::append_timestamp(std::int64_t timestamp_ms, std::string& out) {
  using namespace std::chrono;
  const sys_time<milliseconds> t{milliseconds(timestamp_ms)};
  const sys_days day = floor<days>(t);
  const year_month_day ymd(day);
  const auto ms_of_day = static_cast<unsigned>((t - day).count());
  const int y = static_cast<int>(ymd.year());
  if (y < 0 || y > 9999) {
    // Outside what four digits hold: clamp rather than write a date Elasticsearch cannot parse.
    out.append(y < 0 ? "0000-01-01T00:00:00.000Z" : "9999-12-31T23:59:59.999Z");
    return;
  }
  append_digits(out, static_cast<unsigned>(y), 4);
  out.push_back('-');
  append_digits(out, static_cast<unsigned>(ymd.month()), 2);
  out.push_back('-');
  append_digits(out, static_cast<unsigned>(ymd.day()), 2);
  out.push_back('T');
  append_digits(out, ms_of_day / 3'600'000, 2);
  out.push_back(':');
  append_digits(out, ms_of_day / 60'000 % 60, 2);
  out.push_back(':');
  append_digits(out, ms_of_day / 1000 % 60, 2);
  out.push_back('.');
  append_digits(out, ms_of_day % 1000, 3);
  out.push_back('Z');
}

void BulkBodyWriter::string_value(std::string_view text, std::string& body) {
  body.push_back('"');
  if (const auto n = append_json_escaped(body, text); n > 0) {
    invalid_utf8_ += n;
    if (invalid_utf8_counter_) invalid_utf8_counter_->inc(n);
  }
  body.push_back('"');
}

void BulkBodyWriter::append(const transforms::LogEvent& e, std::string& body) {
  body.append("{\"create\":{\"_index\":\"");
  body.append(index_for(e.route).render(e.timestamp_ms));  // validated names: nothing to escape
  body.append("\",\"_id\":\"");
  document_id(e, id_);
  body.append(id_);
  body.append("\"}}\n{\"@timestamp\":\"");
  append_timestamp(e.timestamp_ms, body);
  body.append("\",\"message\":");
  string_value(e.message, body);
  body.append(",\"host\":{\"name\":");
  string_value(e.host, body);
  body.append("},\"log\":{\"file\":{\"path\":");
  string_value(e.path, body);
  body.append("},\"offset\":");
  {
    std::array<char, 24> buf{};
    std::size_t n = 0;
    std::uint64_t v = e.offset;
    do {
      buf[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v > 0);
    while (n > 0) body.push_back(buf[--n]);
  }
  body.push_back('}');
  for (std::size_t i = 0; i < e.field_count(); ++i) {
    const auto& f = e.field(i);
    body.push_back(',');
    if (is_reserved(f.name)) {
      key_.assign("fields.").append(f.name);
      string_value(key_, body);
    } else {
      string_value(f.name, body);
    }
    body.push_back(':');
    switch (f.type) {
      case transforms::FieldType::number:
        if (is_json_number(f.value)) body.append(f.value);
        else string_value(f.value, body);
        break;
      case transforms::FieldType::boolean:
        if (f.value == "true" || f.value == "false") body.append(f.value);
        else string_value(f.value, body);
        break;
      case transforms::FieldType::null: body.append("null"); break;
      case transforms::FieldType::json:
        // Raw only when it parses: one bad value must not make the whole request unreadable.
        if (!f.value.empty() && nlohmann::json::accept(f.value)) {
          // Outside strings a line break is only whitespace, and NDJSON cannot hold one.
          const std::size_t at = body.size();
          body.append(f.value);
          for (std::size_t k = at; k < body.size(); ++k) {
            if (body[k] == '\n' || body[k] == '\r') body[k] = ' ';
          }
        } else {
          string_value(f.value, body);
        }
        break;
      case transforms::FieldType::string: string_value(f.value, body); break;
    }
  }
  body.append("}\n");
}

}  // namespace sluice::sinks
