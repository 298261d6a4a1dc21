// Helpers shared by the JSON span decoders (simdjson DOM): a padded, reused parse buffer and
// readers for the proto3 JSON mapping's numbers (64-bit integers may be strings).
#pragma once

#include <simdjson.h>

#include <charconv>
#include <limits>
#include <new>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace sluice::spans::json {

// One simdjson parser with its own padded copy of the input (no allocation once warm).
class Document {
 public:
  explicit Document(std::size_t max_depth) {
    if (parser_.allocate(64 * 1024, max_depth) != simdjson::SUCCESS) throw std::bad_alloc();
  }
  simdjson::error_code parse(std::span<const std::byte> payload, simdjson::dom::element& root) {
    buffer_.assign(reinterpret_cast<const char*>(payload.data()), payload.size());
    buffer_.reserve(payload.size() + simdjson::SIMDJSON_PADDING);
    return parser_.parse(buffer_.data(), payload.size(), false).get(root);
  }

 private:
  simdjson::dom::parser parser_;
  std::string buffer_;
};

inline bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc{} && r.ptr == s.data() + s.size();
}
inline bool parse_i64(std::string_view s, std::int64_t& out) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc{} && r.ptr == s.data() + s.size();
}

// A proto3 JSON uint64/fixed64: a number or a decimal string.
inline bool get_u64(simdjson::dom::element e, std::uint64_t& out) {
  std::string_view s;
  if (e.get_string().get(s) == simdjson::SUCCESS) return parse_u64(s, out);
  if (e.get_uint64().get(out) == simdjson::SUCCESS) return true;
  double d;
  if (e.get_double().get(d) == simdjson::SUCCESS && d >= 0 && d < 1.8e19 && d == static_cast<double>(static_cast<std::uint64_t>(d))) {
    out = static_cast<std::uint64_t>(d);
    return true;
  }
  return false;
}
inline bool get_i64(simdjson::dom::element e, std::int64_t& out) {
  std::string_view s;
  if (e.get_string().get(s) == simdjson::SUCCESS) return parse_i64(s, out);
  if (e.get_int64().get(out) == simdjson::SUCCESS) return true;
  double d;
  if (e.get_double().get(d) == simdjson::SUCCESS && d > -9.2e18 && d < 9.2e18 && d == static_cast<double>(static_cast<std::int64_t>(d))) {
    out = static_cast<std::int64_t>(d);
    return true;
  }
  return false;
}
// A proto3 JSON double: a number, or "NaN", "Infinity", "-Infinity" (or a numeric string).
inline bool get_double(simdjson::dom::element e, double& out) {
  if (e.get_double().get(out) == simdjson::SUCCESS) return true;
  std::string_view s;
  if (e.get_string().get(s) != simdjson::SUCCESS) return false;
  if (s == "NaN") out = std::numeric_limits<double>::quiet_NaN();
  else if (s == "Infinity") out = std::numeric_limits<double>::infinity();
  else if (s == "-Infinity") out = -std::numeric_limits<double>::infinity();
  else {
    const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc{} && r.ptr == s.data() + s.size();
  }
  return true;
}

}  // namespace sluice::spans::json
