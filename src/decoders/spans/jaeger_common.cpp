// apply_jaeger_conventions and the JSON time formats, shared by both Jaeger decoders.
#include <cstring>

#include "decoders/spans/jaeger.hpp"
#include "decoders/spans/json_support.hpp"

namespace sluice::spans {

void apply_jaeger_conventions(Span& span) {
  std::string value;
  if (span.attributes.take("span.kind", value)) {
    if (value == "server") span.kind = SpanKind::server;
    else if (value == "client") span.kind = SpanKind::client;
    else if (value == "producer") span.kind = SpanKind::producer;
    else if (value == "consumer") span.kind = SpanKind::consumer;
    else if (value == "internal") span.kind = SpanKind::internal;
  }
  bool have_status = false;
  if (span.attributes.take("otel.status_code", value)) {
    have_status = true;
    if (value == "OK") span.status_code = StatusCode::ok;
    else if (value == "ERROR") span.status_code = StatusCode::error;
  }
  if (const auto* error = span.attributes.find("error"); error && *error == "true") {
    span.attributes.take("error", value);
    if (!have_status) span.status_code = StatusCode::error;
  }
  if (span.attributes.take("otel.status_description", value)) span.status_message = value;
  if (span.attributes.take("otel.scope.name", value) || span.attributes.take("otel.library.name", value)) {
    span.scope_name = value;
  }
  if (span.attributes.take("otel.scope.version", value) || span.attributes.take("otel.library.version", value)) {
    span.scope_version = value;
  }
  if (span.attributes.take("w3c.tracestate", value)) span.trace_state = value;
  for (std::size_t i = 0; i < span.events.size(); ++i) {
    auto& e = span.events[i];
    if (e.attributes.take("event", value)) e.name = value;
  }
}

namespace {

bool digits(std::string_view s, std::size_t at, std::size_t n, int& out) {
  if (at + n > s.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date.
std::int64_t days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return static_cast<std::int64_t>(era) * 146097 + doe - 719468;
}

}  // namespace

bool parse_rfc3339_ns(std::string_view s, std::uint64_t& out) {
  int year, month, day, hour, minute, second;
  if (!digits(s, 0, 4, year) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, month) || s[7] != '-' ||
      !digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2, hour) ||
      s[13] != ':' || !digits(s, 14, 2, minute) || s[16] != ':' || !digits(s, 17, 2, second)) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return false;
  std::size_t at = 19;
  std::int64_t nanos = 0;
  if (at < s.size() && s[at] == '.') {
    ++at;
    int n = 0;
    while (at < s.size() && s[at] >= '0' && s[at] <= '9') {
      if (n < 9) nanos = nanos * 10 + (s[at] - '0'), ++n;
      ++at;
    }
    if (n == 0) return false;
    for (; n < 9; ++n) nanos *= 10;
  }
  std::int64_t offset_s = 0;
  if (at < s.size() && (s[at] == 'Z' || s[at] == 'z')) {
    ++at;
  } else if (at < s.size() && (s[at] == '+' || s[at] == '-')) {
    int oh, om;
    if (!digits(s, at + 1, 2, oh) || at + 3 >= s.size() || s[at + 3] != ':' || !digits(s, at + 4, 2, om)) return false;
    offset_s = (oh * 3600 + om * 60) * (s[at] == '+' ? 1 : -1);
    at += 6;
  } else {
    return false;
  }
  if (at != s.size()) return false;
  const std::int64_t secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset_s;
  if (secs < 0) return false;
  out = static_cast<std::uint64_t>(secs) * 1'000'000'000ULL + static_cast<std::uint64_t>(nanos);
  return true;
}

bool parse_duration_ns(std::string_view s, std::uint64_t& out) {
  if (s.size() < 2 || s.back() != 's') return false;
  s.remove_suffix(1);
  const auto dot = s.find('.');
  std::uint64_t secs = 0, nanos = 0;
  if (!json::parse_u64(s.substr(0, dot), secs) || secs > 315'576'000'000ULL) return false;
  if (dot != std::string_view::npos) {
    const auto frac = s.substr(dot + 1);
    if (frac.empty() || frac.size() > 9 || !json::parse_u64(frac, nanos)) return false;
    for (std::size_t n = frac.size(); n < 9; ++n) nanos *= 10;
  }
  out = secs * 1'000'000'000ULL + nanos;
  return true;
}

}  // namespace sluice::spans
