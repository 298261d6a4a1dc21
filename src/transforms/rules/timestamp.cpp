#include "transforms/rules/timestamp.hpp"

#include <array>
#include <cctype>
#include <cstdint>
#include <chrono>

namespace sluice::transforms::rules {
namespace {

constexpr std::array<std::string_view, 12> kMonths = {"january", "february", "march",     "april",   "may",      "june",
                                                      "july",    "august",   "september", "october", "november", "december"};
constexpr std::array<std::string_view, 7> kWeekdays = {"monday", "tuesday", "wednesday", "thursday",
                                                       "friday", "saturday", "sunday"};

bool leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
unsigned days_in_month(std::int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDays[m - 1];
}

std::int64_t year_of(std::int64_t ms) {
  // Inverse of days_from_civil, only the year is needed.
  std::int64_t z = (ms >= 0 ? ms : ms - 86'399'999) / 86'400'000 + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  return yoe + era * 400 + (m <= 2 ? 1 : 0);
}

// A cursor over the text being parsed; every reader returns false when the text does not fit.
struct Cursor {
  std::string_view s;
  std::size_t i = 0;
  bool end() const { return i >= s.size(); }
  char peek() const { return i < s.size() ? s[i] : '\0'; }
  bool lit(char c) {
    if (peek() != c) return false;
    ++i;
    return true;
  }
  // Between min and max digits.
  bool digits(int min, int max, std::int64_t& out) {
    out = 0;
    int n = 0;
    while (n < max && i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (out > (INT64_MAX - 9) / 10) return false;
      out = out * 10 + (s[i] - '0');
      ++i;
      ++n;
    }
    return n >= min;
  }
  // Fraction digits as milliseconds (digits past the third are read and ignored).
  bool fraction_ms(std::int64_t& ms) {
    ms = 0;
    int n = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (n < 3) ms = ms * 10 + (s[i] - '0');
      ++i;
      ++n;
      if (n > 18) return false;
    }
    for (int k = n; k < 3; ++k) ms *= 10;
    return n > 0;
  }
  // Z, z, or ±HH[:MM] / ±HHMM, as seconds east of UTC.
  bool offset(std::int64_t& seconds) {
    if (lit('Z') || lit('z')) {
      seconds = 0;
      return true;
    }
    const char sign = peek();
    if (sign != '+' && sign != '-') return false;
    ++i;
    std::int64_t h = 0, m = 0;
    if (!digits(2, 2, h) || h > 23) return false;
    lit(':');
    if (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (!digits(2, 2, m) || m > 59) return false;
    }
    seconds = (h * 3600 + m * 60) * (sign == '-' ? -1 : 1);
    return true;
  }
  // A month or weekday name: the full name or its first three letters, any case.
  template <std::size_t N>
  bool name(const std::array<std::string_view, N>& names, std::int64_t& index) {
    std::size_t n = 0;
    while (i + n < s.size() && std::isalpha(static_cast<unsigned char>(s[i + n]))) ++n;
    if (n < 3) return false;
    for (std::size_t k = 0; k < N; ++k) {
      const std::string_view full = names[k];
      if (n != 3 && n != full.size()) continue;
      bool same = true;
      for (std::size_t c = 0; c < n && same; ++c) {
        same = std::tolower(static_cast<unsigned char>(s[i + c])) == full[c];
      }
      if (same) {
        i += n;
        index = static_cast<std::int64_t>(k);
        return true;
      }
    }
    return false;
  }
};

struct Parts {
  std::int64_t year = 1970, month = 1, day = 1, hour = 0, minute = 0, second = 0, ms = 0, offset_s = 0;
  bool pm = false, twelve_hour = false;
  std::optional<std::int64_t> epoch_ms;  // %s
};

std::optional<std::int64_t> to_ms(const Parts& p) {
  if (p.epoch_ms) return *p.epoch_ms;
  if (p.month < 1 || p.month > 12 || p.year < 0 || p.year > 9999) return std::nullopt;
  if (p.day < 1 || p.day > days_in_month(p.year, static_cast<unsigned>(p.month))) return std::nullopt;
  std::int64_t hour = p.hour;
  if (p.twelve_hour) {
    if (hour < 1 || hour > 12) return std::nullopt;
    hour = hour % 12 + (p.pm ? 12 : 0);
  }
  if (hour > 23 || p.minute > 59 || p.second > 60) return std::nullopt;
  const std::int64_t days = days_from_civil(p.year, static_cast<unsigned>(p.month), static_cast<unsigned>(p.day));
  return ((days * 24 + hour) * 60 + p.minute) * 60'000 + p.second * 1000 + p.ms - p.offset_s * 1000;
}

std::optional<std::int64_t> parse_iso8601(std::string_view text) {
  Cursor c{text};
  Parts p;
  if (!c.digits(4, 4, p.year) || !c.lit('-') || !c.digits(2, 2, p.month) || !c.lit('-') || !c.digits(2, 2, p.day)) {
    return std::nullopt;
  }
  if (!c.end()) {
    if (!(c.lit('T') || c.lit('t') || c.lit(' '))) return std::nullopt;
    if (!c.digits(2, 2, p.hour) || !c.lit(':') || !c.digits(2, 2, p.minute)) return std::nullopt;
    if (c.lit(':')) {
      if (!c.digits(2, 2, p.second)) return std::nullopt;
      if ((c.lit('.') || c.lit(',')) && !c.fraction_ms(p.ms)) return std::nullopt;
    }
    c.lit(' ');
    if (!c.end() && !c.offset(p.offset_s)) return std::nullopt;
  }
  if (!c.end()) return std::nullopt;
  return to_ms(p);
}

// A decimal number of `unit_per_second` units since the epoch, with an optional fraction.
std::optional<std::int64_t> parse_unix(std::string_view text, std::int64_t units_per_second) {
  Cursor c{text};
  const bool negative = c.lit('-');
  std::int64_t whole = 0;
  if (!c.digits(1, 19, whole) || (!c.end() && c.peek() != '.')) return std::nullopt;
  std::int64_t frac_ms = 0;
  if (c.lit('.') && (!c.fraction_ms(frac_ms) || !c.end())) return std::nullopt;
  // Milliseconds: whole units scaled, plus the fraction of one unit.
  std::int64_t ms = 0;
  if (units_per_second == 1) {
    if (whole > 9'000'000'000'000) return std::nullopt;
    ms = whole * 1000 + frac_ms;
  } else {
    ms = whole / (units_per_second / 1000);
  }
  return negative ? -ms : ms;
}

bool run_pattern(std::string_view pattern, std::string_view text, Parts& p) {
  Cursor c{text};
  for (std::size_t k = 0; k < pattern.size(); ++k) {
    const char f = pattern[k];
    if (f == ' ') {  // one or more blanks
      if (c.peek() != ' ' && c.peek() != '\t') return false;
      while (c.peek() == ' ' || c.peek() == '\t') ++c.i;
      continue;
    }
    if (f != '%') {
      if (!c.lit(f)) return false;
      continue;
    }
    if (++k >= pattern.size()) return false;
    std::int64_t v = 0;
    switch (pattern[k]) {
      case 'Y': if (!c.digits(4, 4, p.year)) return false; break;
      case 'y':
        if (!c.digits(2, 2, v)) return false;
        p.year = v < 69 ? 2000 + v : 1900 + v;
        break;
      case 'm': if (!c.digits(1, 2, p.month)) return false; break;
      case 'e': while (c.peek() == ' ') ++c.i; [[fallthrough]];
      case 'd': if (!c.digits(1, 2, p.day)) return false; break;
      case 'H': if (!c.digits(1, 2, p.hour)) return false; break;
      case 'I': p.twelve_hour = true; if (!c.digits(1, 2, p.hour)) return false; break;
      case 'M': if (!c.digits(1, 2, p.minute)) return false; break;
      case 'S': if (!c.digits(1, 2, p.second)) return false; break;
      case 'f': if (!c.fraction_ms(p.ms)) return false; break;
      case 'z': if (!c.offset(p.offset_s)) return false; break;
      case 'Z':
        if (c.s.substr(c.i, 3) == "UTC" || c.s.substr(c.i, 3) == "GMT") c.i += 3;
        else if (!c.lit('Z')) return false;
        break;
      case 'b': case 'h': case 'B':
        if (!c.name(kMonths, v)) return false;
        p.month = v + 1;
        break;
      case 'a': case 'A': if (!c.name(kWeekdays, v)) return false; break;
      case 'p': {
        const auto two = c.s.substr(c.i, 2);
        if (two == "AM" || two == "am") p.pm = false;
        else if (two == "PM" || two == "pm") p.pm = true;
        else return false;
        c.i += 2;
        break;
      }
      case 's': {
        std::int64_t secs = 0, frac = 0;
        if (!c.digits(1, 12, secs)) return false;
        if (c.peek() == '.' && c.i + 1 < c.s.size() && std::isdigit(static_cast<unsigned char>(c.s[c.i + 1]))) {
          ++c.i;
          c.fraction_ms(frac);
        }
        p.epoch_ms = secs * 1000 + frac;
        break;
      }
      case 'T':
        if (!c.digits(1, 2, p.hour) || !c.lit(':') || !c.digits(1, 2, p.minute) || !c.lit(':') ||
            !c.digits(1, 2, p.second)) {
          return false;
        }
        break;
      case 'F':
        if (!c.digits(4, 4, p.year) || !c.lit('-') || !c.digits(1, 2, p.month) || !c.lit('-') ||
            !c.digits(1, 2, p.day)) {
          return false;
        }
        break;
      case '%': if (!c.lit('%')) return false; break;
      default: return false;
    }
  }
  return c.end();
}

}  // namespace

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

std::optional<TimestampFormat> TimestampFormat::make(const std::string& spec, std::string* error) {
  TimestampFormat f;
  f.spec_ = spec;
  if (spec == "rfc3339" || spec == "iso8601") f.kind_ = Kind::iso8601;
  else if (spec == "unix") f.kind_ = Kind::unix_s;
  else if (spec == "unix_ms") f.kind_ = Kind::unix_ms;
  else if (spec == "unix_us") f.kind_ = Kind::unix_us;
  else if (spec == "unix_ns") f.kind_ = Kind::unix_ns;
  else if (spec == "common_log") f.kind_ = Kind::pattern, f.pattern_ = "%d/%b/%Y:%H:%M:%S %z";
  else if (spec == "syslog") f.kind_ = Kind::pattern, f.pattern_ = "%b %e %H:%M:%S";
  else if (spec.find('%') != std::string::npos) {
    f.kind_ = Kind::pattern;
    f.pattern_ = spec;
    static constexpr std::string_view kKnown = "YymdeHIMSfzZbhBaApsTF%";
    for (std::size_t k = 0; k < spec.size(); ++k) {
      if (spec[k] != '%') continue;
      if (k + 1 >= spec.size() || kKnown.find(spec[k + 1]) == std::string_view::npos) {
        if (error) {
          *error = "unknown directive '" + spec.substr(k, 2) + "' in timestamp format '" + spec +
                   "' (known: %Y %y %m %d %e %H %I %p %M %S %f %z %Z %b %B %a %s %T %F %%)";
        }
        return std::nullopt;
      }
      ++k;
    }
  } else {
    if (error) {
      *error = "unknown timestamp format '" + spec +
               "' (expected rfc3339, iso8601, unix, unix_ms, unix_us, unix_ns, common_log, syslog, or a "
               "pattern such as '%Y-%m-%d %H:%M:%S')";
    }
    return std::nullopt;
  }
  if (f.kind_ == Kind::pattern) {
    const auto& p = f.pattern_;
    f.has_year_ = p.find("%Y") != std::string::npos || p.find("%y") != std::string::npos ||
                  p.find("%F") != std::string::npos || p.find("%s") != std::string::npos;
  }
  return f;
}

std::optional<std::int64_t> TimestampFormat::parse(std::string_view text, std::int64_t reference_ms) const {
  const auto ms = parse_any(text, reference_ms);
  // Years 0 to 9999, as the calendar formats allow: an epoch number beyond is a misread field, not a time.
  if (ms && (*ms < kMinMs || *ms >= kMaxMs)) return std::nullopt;
  return ms;
}

std::optional<std::int64_t> TimestampFormat::parse_any(std::string_view text, std::int64_t reference_ms) const {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  switch (kind_) {
    case Kind::iso8601: return parse_iso8601(text);
    case Kind::unix_s: return parse_unix(text, 1);
    case Kind::unix_ms: return parse_unix(text, 1000);
    case Kind::unix_us: return parse_unix(text, 1'000'000);
    case Kind::unix_ns: return parse_unix(text, 1'000'000'000);
    case Kind::pattern: break;
  }
  Parts p;
  if (!has_year_) {
    if (reference_ms == 0) {
      reference_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
    }
    p.year = year_of(reference_ms);
  }
  if (!run_pattern(pattern_, text, p)) return std::nullopt;
  auto ms = to_ms(p);
  if (ms && !has_year_ && *ms > reference_ms + 86'400'000) {
    // A December line read in January belongs to the year before.
    p.year -= 1;
    ms = to_ms(p);
  }
  return ms;
}

}  // namespace sluice::transforms::rules
