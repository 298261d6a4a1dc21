#include "pipeline/jobs/column_types.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "transforms/rules/timestamp.hpp"

namespace sluice::pipeline::jobs {
namespace {

using field_text::Instant;
using field_text::TimeUnit;

struct SimpleType {
  std::string_view name;
  ValueKind kind;
};
constexpr SimpleType kSimple[] = {
    {"String", ValueKind::string},       {"UInt8", ValueKind::u8},
    {"UInt16", ValueKind::u16},          {"UInt32", ValueKind::u32},
    {"UInt64", ValueKind::u64},          {"Int8", ValueKind::i8},
    {"Int16", ValueKind::i16},           {"Int32", ValueKind::i32},
    {"Int64", ValueKind::i64},           {"Float32", ValueKind::f32},
    {"Float64", ValueKind::f64},         {"Bool", ValueKind::boolean},
    {"Date", ValueKind::date},           {"DateTime", ValueKind::datetime},
    {"UUID", ValueKind::uuid},           {"IPv4", ValueKind::ipv4},
    {"IPv6", ValueKind::ipv6},           {"Array(String)", ValueKind::array_string},
    {"Array(Int64)", ValueKind::array_int64}, {"Array(Float64)", ValueKind::array_float64},
    {"Map(String,String)", ValueKind::map_string_string}, {"LowCardinality(String)", ValueKind::low_cardinality_string},
};

bool strip(std::string_view& s, std::string_view prefix, std::string_view suffix) {
  if (s.size() < prefix.size() + suffix.size() || !s.starts_with(prefix) || !s.ends_with(suffix)) return false;
  s = s.substr(prefix.size(), s.size() - prefix.size() - suffix.size());
  return true;
}

std::optional<int> small_number(std::string_view s, int min, int max) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < min || v > max) return std::nullopt;
  return v;
}

// 'Europe/Berlin' → Europe/Berlin
std::optional<std::string> quoted(std::string_view s) {
  if (s.size() < 3 || s.front() != '\'' || s.back() != '\'') return std::nullopt;
  s = s.substr(1, s.size() - 2);
  if (s.find('\'') != std::string_view::npos || s.find('\\') != std::string_view::npos) return std::nullopt;
  return std::string(s);
}

std::optional<ColumnType> parse_compact(std::string_view s) {
  ColumnType t;
  if (strip(s, "Nullable(", ")")) {
    auto inner = parse_compact(s);
    if (!inner || inner->nullable || inner->kind == ValueKind::low_cardinality_string ||
        inner->kind >= ValueKind::array_string) {
      return std::nullopt;
    }
    inner->nullable = true;
    return inner;
  }
  for (const auto& simple : kSimple) {
    if (s == simple.name) {
      t.kind = simple.kind;
      return t;
    }
  }
  if (strip(s, "FixedString(", ")")) {
    auto n = small_number(s, 1, 65535);
    if (!n) return std::nullopt;
    t.kind = ValueKind::fixed_string;
    t.param = *n;
    return t;
  }
  if (strip(s, "DateTime64(", ")")) {
    const auto comma = s.find(',');
    auto p = small_number(s.substr(0, comma), 0, 9);
    if (!p) return std::nullopt;
    t.kind = ValueKind::datetime64;
    t.param = *p;
    if (comma != std::string_view::npos) {
      auto tz = quoted(s.substr(comma + 1));
      if (!tz) return std::nullopt;
      t.timezone = *tz;
    }
    return t;
  }
  if (strip(s, "DateTime(", ")")) {
    auto tz = quoted(s);
    if (!tz) return std::nullopt;
    t.kind = ValueKind::datetime;
    t.timezone = *tz;
    return t;
  }
  return std::nullopt;
}

std::string with_timezone(std::string base, const std::string& tz, bool has_params) {
  if (tz.empty()) return has_params ? base + ")" : base;
  return base + (has_params ? ", '" : "('") + tz + "')";
}

std::string base_name(const ColumnType& t, ClickHouseDialect d) {
  const bool legacy = d == ClickHouseDialect::legacy;
  switch (t.kind) {
    case ValueKind::string: return "String";
    case ValueKind::low_cardinality_string: return legacy ? "String" : "LowCardinality(String)";
    case ValueKind::fixed_string: return "FixedString(" + std::to_string(t.param) + ")";
    case ValueKind::u8: return "UInt8";
    case ValueKind::u16: return "UInt16";
    case ValueKind::u32: return "UInt32";
    case ValueKind::u64: return "UInt64";
    case ValueKind::i8: return "Int8";
    case ValueKind::i16: return "Int16";
    case ValueKind::i32: return "Int32";
    case ValueKind::i64: return "Int64";
    case ValueKind::f32: return "Float32";
    case ValueKind::f64: return "Float64";
    case ValueKind::boolean: return legacy ? "UInt8" : "Bool";
    case ValueKind::date: return "Date";
    case ValueKind::datetime: return with_timezone("DateTime", t.timezone, false);
    case ValueKind::datetime64:
      if (legacy) return with_timezone("DateTime", t.timezone, false);
      return with_timezone("DateTime64(" + std::to_string(t.param), t.timezone, true);
    case ValueKind::uuid: return "UUID";
    case ValueKind::ipv4: return legacy ? "UInt32" : "IPv4";
    case ValueKind::ipv6: return legacy ? "FixedString(16)" : "IPv6";
    case ValueKind::array_string: return "Array(String)";
    case ValueKind::array_int64: return "Array(Int64)";
    case ValueKind::array_float64: return "Array(Float64)";
    case ValueKind::map_string_string: return legacy ? "" : "Map(String, String)";
  }
  return "";
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

struct Cursor {
  std::string_view s;
  std::size_t i = 0;
  bool done() const { return i == s.size(); }
  bool lit(char c) {
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  bool digits(std::size_t n, int& out) {
    if (s.size() - i < n) return false;
    out = 0;
    for (std::size_t k = 0; k < n; ++k, ++i) {
      const char c = s[i];
      if (c < '0' || c > '9') return false;
      out = out * 10 + (c - '0');
    }
    return true;
  }
};

std::optional<Instant> parse_time_text(std::string_view text) {
  Cursor c{text};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!c.digits(4, y) || !c.lit('-') || !c.digits(2, mo) || !c.lit('-') || !c.digits(2, d)) return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return std::nullopt;
  std::int64_t nanos = 0;
  std::int64_t offset_s = 0;
  if (!c.done()) {
    if (!(c.lit('T') || c.lit('t') || c.lit(' '))) return std::nullopt;
    if (!c.digits(2, h) || !c.lit(':') || !c.digits(2, mi) || !c.lit(':') || !c.digits(2, sec)) return std::nullopt;
    if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
    if (c.lit('.') || c.lit(',')) {
      int n = 0;
      std::int64_t scale = 100'000'000;
      for (; !c.done() && c.s[c.i] >= '0' && c.s[c.i] <= '9'; ++c.i, ++n) {
        nanos += (c.s[c.i] - '0') * scale;  // digits past nanoseconds are dropped
        scale /= 10;
      }
      if (n == 0) return std::nullopt;
    }
    if (c.lit('Z') || c.lit('z')) {
    } else if (!c.done()) {
      const char sign = c.s[c.i];
      if (sign != '+' && sign != '-') return std::nullopt;
      ++c.i;
      int oh = 0, om = 0;
      if (!c.digits(2, oh)) return std::nullopt;
      c.lit(':');
      if (!c.digits(2, om) || oh > 23 || om > 59) return std::nullopt;
      offset_s = (sign == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    }
    if (!c.done()) return std::nullopt;
  }
  const std::int64_t days =
      transforms::rules::days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  return Instant{days * 86400 + h * 3600 + mi * 60 + sec - offset_s, static_cast<std::int32_t>(nanos)};
}

std::optional<Instant> from_nanoseconds(__int128 ns) {
  __int128 s = ns / 1'000'000'000;
  __int128 rest = ns % 1'000'000'000;
  if (rest < 0) {
    rest += 1'000'000'000;
    --s;
  }
  if (s > INT64_MAX || s < INT64_MIN) return std::nullopt;
  return Instant{static_cast<std::int64_t>(s), static_cast<std::int32_t>(rest)};
}

std::optional<Instant> parse_time_number(std::string_view text, TimeUnit unit) {
  // The common case, a plain non-negative integer of up to 18 digits, without wide arithmetic.
  if (!text.empty() && text.size() <= 18) {
    std::int64_t v = 0;
    std::size_t k = 0;
    for (; k < text.size() && text[k] >= '0' && text[k] <= '9'; ++k) v = v * 10 + (text[k] - '0');
    if (k == text.size()) return field_text::instant_of_count(v, unit);
  }
  // Exact decimal arithmetic: the digits, and where the point falls once an exponent moved it.
  std::size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) negative = text[i++] == '-';
  char digits[40];
  std::size_t n = 0, point = 0;
  bool seen_point = false, any = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c >= '0' && c <= '9') {
      any = true;
      if (n == 0 && c == '0' && !seen_point) continue;  // leading zeros say nothing
      if (n < sizeof(digits)) {
        digits[n++] = c;
        if (!seen_point) ++point;
      } else if (!seen_point) {
        return std::nullopt;  // more integer digits than any time has
      }
    } else if (c == '.' && !seen_point) {
      seen_point = true;
    } else {
      break;
    }
  }
  if (!any) return std::nullopt;
  std::int64_t exponent = 0;
  if (i < text.size()) {
    if (text[i] != 'e' && text[i] != 'E') return std::nullopt;
    ++i;
    if (i < text.size() && text[i] == '+') ++i;
    auto [p, ec] = std::from_chars(text.data() + i, text.data() + text.size(), exponent);
    if (ec != std::errc() || p != text.data() + text.size() || exponent > 30 || exponent < -30) return std::nullopt;
  }
  const std::int64_t dot = static_cast<std::int64_t>(point) + exponent;
  __int128 whole = 0, frac = 0, frac_scale = 1;
  for (std::int64_t k = 0; k < std::max<std::int64_t>(dot, 0); ++k) {
    whole = whole * 10 + (k < static_cast<std::int64_t>(n) ? digits[k] - '0' : 0);
  }
  if (whole > static_cast<__int128>(1e30)) return std::nullopt;
  for (std::int64_t k = dot; k < static_cast<std::int64_t>(n) && frac_scale < static_cast<__int128>(1e18); ++k) {
    frac = frac * 10 + (k >= 0 ? digits[k] - '0' : 0);
    frac_scale *= 10;
  }
  __int128 unit_ns = 1'000'000'000;
  if (unit == TimeUnit::milliseconds) {
    unit_ns = 1'000'000;
  } else if (whole >= static_cast<__int128>(100'000'000'000'000'000)) {
    unit_ns = 1;
  } else if (whole >= static_cast<__int128>(100'000'000'000'000)) {
    unit_ns = 1'000;
  } else if (whole >= static_cast<__int128>(100'000'000'000)) {
    unit_ns = 1'000'000;
  }
  const __int128 ns = whole * unit_ns + frac * unit_ns / frac_scale;
  return from_nanoseconds(negative ? -ns : ns);
}

}  // namespace

std::string ColumnType::name() const { return table_type(ClickHouseDialect::modern); }

std::string ColumnType::table_type(ClickHouseDialect dialect) const {
  auto base = base_name(*this, dialect);
  if (base.empty()) return base;
  return nullable ? "Nullable(" + base + ")" : base;
}

std::size_t ColumnType::width(ClickHouseDialect dialect) const {
  switch (kind) {
    case ValueKind::u8: case ValueKind::i8: case ValueKind::boolean: return 1;
    case ValueKind::u16: case ValueKind::i16: case ValueKind::date: return 2;
    case ValueKind::u32: case ValueKind::i32: case ValueKind::f32: case ValueKind::datetime: case ValueKind::ipv4:
      return 4;
    case ValueKind::u64: case ValueKind::i64: case ValueKind::f64: return 8;
    case ValueKind::datetime64: return dialect == ClickHouseDialect::legacy ? 4 : 8;
    case ValueKind::uuid: case ValueKind::ipv6: return 16;
    case ValueKind::fixed_string: return static_cast<std::size_t>(param);
    default: return 0;
  }
}

std::optional<ColumnType> parse_column_type(std::string_view text) {
  std::string compact;
  bool in_quote = false;
  for (char c : text) {
    if (c == '\'') in_quote = !in_quote;
    if (!in_quote && (c == ' ' || c == '\t')) continue;
    compact.push_back(c);
  }
  return parse_compact(compact);
}

const char* supported_types_text() {
  return "String, LowCardinality(String), FixedString(N), UInt8, UInt16, UInt32, UInt64, Int8, Int16, Int32, "
         "Int64, Float32, Float64, Bool, Date, DateTime, DateTime64(P), UUID, IPv4, IPv6, Array(String), "
         "Array(Int64), Array(Float64), Map(String, String), Nullable(T) of the scalars";
}

bool same_column_type(std::string_view table_type, std::string_view mapping_type) {
  auto a = parse_column_type(table_type);
  auto b = parse_column_type(mapping_type);
  if (!a || !b) return table_type == mapping_type;
  a->timezone.clear();
  b->timezone.clear();
  return *a == *b;
}

namespace field_text {

Instant instant_of_count(std::int64_t v, TimeUnit unit) {
  std::int64_t per_second = 1;
  if (unit == TimeUnit::milliseconds || (v >= 100'000'000'000 && v < 100'000'000'000'000)) {
    per_second = 1'000;
  } else if (v >= 100'000'000'000'000 && v < 100'000'000'000'000'000) {
    per_second = 1'000'000;
  } else if (v >= 100'000'000'000'000'000) {
    per_second = 1'000'000'000;
  }
  const std::int64_t rest = v % per_second;
  return Instant{v / per_second, static_cast<std::int32_t>(rest * (1'000'000'000 / per_second))};
}

std::optional<__int128> parse_integral(std::string_view text) {
  std::size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) negative = text[i++] == '-';
  __int128 v = 0;
  std::size_t digits = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++digits) {
    if (digits >= 30) return std::nullopt;
    v = v * 10 + (text[i] - '0');
  }
  if (i == text.size()) {
    if (digits == 0) return std::nullopt;
    return negative ? -v : v;
  }
  if (text[i] == '.') {
    // "12.0", "12.": integral when every fraction digit is zero.
    std::size_t j = i + 1;
    while (j < text.size() && text[j] == '0') ++j;
    if (j == text.size() && digits > 0) return negative ? -v : v;
  }
  // "1e3", "1.5e2": through a double, integral and exact (below 2^53) only.
  auto d = parse_double(text);
  if (!d || !std::isfinite(*d) || std::trunc(*d) != *d || std::fabs(*d) > 9007199254740992.0) return std::nullopt;
  return static_cast<__int128>(*d);
}

std::optional<bool> parse_bool(std::string_view text) {
  auto is = [&](std::string_view word) {
    if (text.size() != word.size()) return false;
    for (std::size_t i = 0; i < word.size(); ++i) {
      if ((text[i] | 0x20) != word[i]) return false;
    }
    return true;
  };
  if (text == "1" || is("true")) return true;
  if (text == "0" || is("false")) return false;
  return std::nullopt;
}

std::optional<double> parse_double(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  double v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

std::optional<Instant> parse_instant(std::string_view text, TimeUnit unit) {
  // Text times start with a four-digit year and a dash; anything else is a number.
  if (text.size() >= 5 && text[4] == '-') return parse_time_text(text);
  return parse_time_number(text, unit);
}

std::optional<std::array<std::uint8_t, 16>> parse_uuid(std::string_view text) {
  std::array<std::uint8_t, 16> raw{};
  const bool dashed = text.size() == 36;
  if (!dashed && text.size() != 32) return std::nullopt;
  std::size_t n = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (dashed && (i == 8 || i == 13 || i == 18 || i == 23)) {
      if (text[i] != '-') return std::nullopt;
      continue;
    }
    const int hi = hex_digit(text[i]);
    const int lo = i + 1 < text.size() ? hex_digit(text[i + 1]) : -1;
    if (hi < 0 || lo < 0) return std::nullopt;
    raw[n++] = static_cast<std::uint8_t>(hi * 16 + lo);
    ++i;
  }
  if (n != 16) return std::nullopt;
  std::array<std::uint8_t, 16> out{};
  for (std::size_t k = 0; k < 8; ++k) {
    out[k] = raw[7 - k];
    out[8 + k] = raw[15 - k];
  }
  return out;
}

std::optional<std::uint32_t> parse_ipv4(std::string_view text) {
  char buf[16];
  if (text.size() >= sizeof(buf)) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = 0;
  in_addr a{};
  if (inet_pton(AF_INET, buf, &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

std::optional<std::array<std::uint8_t, 16>> parse_ipv6(std::string_view text) {
  char buf[64];
  if (text.size() >= sizeof(buf)) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = 0;
  std::array<std::uint8_t, 16> out{};
  if (inet_pton(AF_INET6, buf, out.data()) == 1) return out;
  in_addr a{};
  if (inet_pton(AF_INET, buf, &a) != 1) return std::nullopt;
  out[10] = out[11] = 0xff;
  std::memcpy(out.data() + 12, &a.s_addr, 4);
  return out;
}

}  // namespace field_text

}  // namespace sluice::pipeline::jobs
