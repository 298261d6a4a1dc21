// TimestampFormat: parses event times in named formats (rfc3339, unix, common log, syslog) or a
// strftime-like pattern into milliseconds since the epoch, without allocating.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::transforms::rules {

class TimestampFormat {
 public:
  // `spec` is a named format (rfc3339, iso8601, unix, unix_ms, unix_us, unix_ns, common_log, syslog)
  // or a pattern with % directives (%Y %m %d ...). Returns nullopt with `error` set when it is neither.
  static std::optional<TimestampFormat> make(const std::string& spec, std::string* error);

  // `reference_ms` gives the year to formats without one (syslog): the year of the reference, or the
  // one before when that would put the line more than a day after the reference.
  std::optional<std::int64_t> parse(std::string_view text, std::int64_t reference_ms) const;

  const std::string& spec() const { return spec_; }

  static constexpr std::int64_t kMinMs = -62'167'219'200'000;  // 0000-01-01T00:00:00Z
  static constexpr std::int64_t kMaxMs = 253'402'300'800'000;  // 10000-01-01T00:00:00Z

 private:
  std::optional<std::int64_t> parse_any(std::string_view text, std::int64_t reference_ms) const;

  enum class Kind { iso8601, unix_s, unix_ms, unix_us, unix_ns, pattern };
  Kind kind_ = Kind::iso8601;
  std::string spec_;
  std::string pattern_;  // the % pattern for Kind::pattern (common_log and syslog are patterns too)
  bool has_year_ = false;
};

// Days since 1970-01-01 of a proleptic Gregorian date (exposed for tests).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d);

}  // namespace sluice::transforms::rules
