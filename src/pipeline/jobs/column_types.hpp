// ColumnType and field conversions: the ClickHouse types a job's column mapping writes, parsed from
// their SQL spelling, and the allocation-free conversions of field text into their Native values.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/flow_batch.hpp"

namespace sluice::pipeline::jobs {

enum class ValueKind : std::uint8_t {
  string,
  low_cardinality_string,
  fixed_string,
  u8,
  u16,
  u32,
  u64,
  i8,
  i16,
  i32,
  i64,
  f32,
  f64,
  boolean,
  date,
  datetime,
  datetime64,
  uuid,
  ipv4,
  ipv6,
  array_string,
  array_int64,
  array_float64,
  map_string_string,
};

struct ColumnType {
  ValueKind kind = ValueKind::string;
  bool nullable = false;
  int param = 0;         // FixedString(N): N; DateTime64(P): P
  std::string timezone;  // DateTime('tz'), DateTime64(P, 'tz'); empty: the server's

  // The ClickHouse spelling, as system.columns of a current server reports it.
  std::string name() const;
  // The column's type in CREATE TABLE for a dialect. Legacy (ClickHouse 18.16) has no Bool, no
  // LowCardinality, no DateTime64, no IPv4/IPv6 types: UInt8, String, DateTime, UInt32, FixedString(16).
  // Map(String, String) on legacy is the Nested pair and has no single type; this returns "".
  std::string table_type(ClickHouseDialect dialect) const;
  // Bytes per value of the fixed-width kinds; 0 for strings, arrays and maps.
  std::size_t width(ClickHouseDialect dialect) const;

  bool operator==(const ColumnType&) const = default;
};

// Parses "UInt64", "Nullable(DateTime64(3))", "Map(String,String)" (spaces are free). nullopt when the
// type is not one the mapping can write.
std::optional<ColumnType> parse_column_type(std::string_view text);
// For error messages: every supported type.
const char* supported_types_text();

// Whether two SQL spellings denote the same column type as far as writing goes (timezones aside:
// they change how a time is shown, not what is stored). Unknown spellings compare as text.
bool same_column_type(std::string_view table_type, std::string_view mapping_type);

// Conversions of field text (their own namespace: short names, easily taken elsewhere in jobs).
namespace field_text {

// An integer written as "42", "+42", "-7", "12.0" or "1e3" (integral values only: "12.5" is not one).
std::optional<__int128> parse_integral(std::string_view text);
// "true"/"false" in any case, or "1"/"0".
std::optional<bool> parse_bool(std::string_view text);
std::optional<double> parse_double(std::string_view text);

// A point in time: seconds since the epoch and the nanoseconds after them (always 0..999'999'999).
struct Instant {
  std::int64_t seconds = 0;
  std::int32_t nanos = 0;
};
enum class TimeUnit : std::uint8_t { by_magnitude, milliseconds };
// Numbers: unix time, in seconds, milliseconds, microseconds or nanoseconds by their magnitude
// (below 1e11: s, 1e14: ms, 1e17: us, else ns), fractions allowed. Text: "YYYY-MM-DD",
// "YYYY-MM-DD[T ]hh:mm:ss[.fraction][Z|+hh:mm|-hh:mm]" (no zone: UTC).
std::optional<Instant> parse_instant(std::string_view text, TimeUnit unit);
// parse_instant() of the text of a whole number 0 <= v < 10^18, without the text.
Instant instant_of_count(std::int64_t v, TimeUnit unit);
// "550e8400-e29b-41d4-a716-446655440000" (or 32 hex digits) as ClickHouse stores a UUID: the two
// 64-bit halves, each little-endian.
std::optional<std::array<std::uint8_t, 16>> parse_uuid(std::string_view text);
// Dotted quad as the number ClickHouse's IPv4 stores (1.2.3.4 → 0x01020304).
std::optional<std::uint32_t> parse_ipv4(std::string_view text);
// IPv6 text, or IPv4 text as ::ffff:a.b.c.d; network byte order.
std::optional<std::array<std::uint8_t, 16>> parse_ipv6(std::string_view text);

}  // namespace field_text

}  // namespace sluice::pipeline::jobs
