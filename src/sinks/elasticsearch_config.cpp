#include "sinks/elasticsearch_config.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <chrono>
#include <climits>

namespace sluice::sinks {
namespace {

// http(s)://host:port with an optional trailing slash; anything else is why not.
std::string check_url(const std::string& url) {
  const auto sep = url.find("://");
  if (sep == std::string::npos) return "no scheme (expected http://host:9200)";
  const auto scheme = url.substr(0, sep);
  if (scheme != "http" && scheme != "https") return "scheme must be http or https";
  std::string_view rest = std::string_view(url).substr(sep + 3);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) return "paths are not supported (expected http://host:9200)";
  if (rest.empty() || rest.front() == ':') return "no host";
  const auto close = rest.rfind(']');
  const auto colon = rest.rfind(':');
  if (colon != std::string_view::npos && (close == std::string_view::npos || colon > close)) {
    int port = 0;
    const auto digits = rest.substr(colon + 1);
    const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || p != digits.data() + digits.size() || port <= 0 || port > 65535) return "bad port";
  }
  return {};
}

void append_2(std::string& out, unsigned v) {
  out.push_back(static_cast<char>('0' + (v / 10) % 10));
  out.push_back(static_cast<char>('0' + v % 10));
}

}  // namespace

std::string check_index_name(std::string_view name) {
  if (name.empty()) return "index name is empty";
  if (name.size() > 255) return "index name is longer than 255 bytes";
  if (name == "." || name == "..") return "index name cannot be '.' or '..'";
  if (name.front() == '-' || name.front() == '_' || name.front() == '+') {
    return "index name cannot start with '-', '_' or '+'";
  }
  for (const char c : name) {
    if (std::isupper(static_cast<unsigned char>(c))) return "index name must be lowercase";
    if (std::string_view("\\/*?\"<>|,#: ").find(c) != std::string_view::npos) {
      return fmt::format("index name cannot contain '{}'", c);
    }
  }
  return {};
}

std::optional<IndexPattern> IndexPattern::compile(std::string_view pattern, std::string* error) {
  IndexPattern p;
  p.pattern_ = std::string(pattern);
  std::string literal;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '%') {
      literal.push_back(pattern[i]);
      continue;
    }
    if (i + 1 == pattern.size()) {
      if (error) *error = "pattern ends with a lone '%' (write %% for a percent sign)";
      return std::nullopt;
    }
    const char f = pattern[++i];
    if (f == '%') {
      literal.push_back('%');
      continue;
    }
    if (std::string_view("YymdHj").find(f) == std::string_view::npos) {
      if (error) *error = fmt::format("unknown field %{} (known: %Y %y %m %d %H %j %%)", f);
      return std::nullopt;
    }
    if (!literal.empty()) p.parts_.push_back(Part{0, std::move(literal)});
    literal.clear();
    p.parts_.push_back(Part{f, {}});
  }
  if (!literal.empty()) p.parts_.push_back(Part{0, std::move(literal)});
  // Any date gives a name of the same shape: checking one checks them all.
  const std::string sample = p.render(0);
  if (auto why = check_index_name(sample); !why.empty()) {
    if (error) *error = fmt::format("makes index names like '{}': {}", sample, why);
    return std::nullopt;
  }
  return p;
}

const std::string& IndexPattern::render(std::int64_t timestamp_ms) const {
  using namespace std::chrono;
  const std::int64_t hour = timestamp_ms >= 0 ? timestamp_ms / 3'600'000 : (timestamp_ms - 3'599'999) / 3'600'000;
  if (hour == cached_hour_) return cached_;
  const sys_days day = floor<days>(sys_time<hours>(hours(hour)));
  const year_month_day ymd(day);
  const auto jan1 = sys_days(ymd.year() / January / 1);
  const int y = static_cast<int>(ymd.year());
  const auto hh = static_cast<unsigned>(hour - duration_cast<hours>(day.time_since_epoch()).count());
  cached_.clear();
  for (const auto& part : parts_) {
    switch (part.field) {
      case 0: cached_.append(part.text); break;
      case 'Y': cached_.append(fmt::format("{:04}", y)); break;
      case 'y': append_2(cached_, static_cast<unsigned>((y % 100 + 100) % 100)); break;
      case 'm': append_2(cached_, static_cast<unsigned>(ymd.month())); break;
      case 'd': append_2(cached_, static_cast<unsigned>(ymd.day())); break;
      case 'H': append_2(cached_, hh); break;
      case 'j': cached_.append(fmt::format("{:03}", (day - jan1).count() + 1)); break;
      default: break;
    }
  }
  cached_hour_ = hour;
  return cached_;
}

ElasticsearchConfig read_elasticsearch_config(config::ConfigReader& reader) {
  ElasticsearchConfig c;
  c.urls = reader.string_list("urls");
  if (c.urls.empty()) reader.error("urls", "at least one Elasticsearch URL is required (http://host:9200)");
  for (std::size_t i = 0; i < c.urls.size(); ++i) {
    if (auto why = check_url(c.urls[i]); !why.empty()) {
      reader.error(fmt::format("urls[{}]", i), fmt::format("'{}': {}", c.urls[i], why));
    }
  }
  c.index = reader.string("index", c.index);
  std::string why;
  if (!IndexPattern::compile(c.index, &why)) reader.error("index", fmt::format("'{}': {}", c.index, why));
  c.routes = reader.string_map("routes");
  for (const auto& [route, pattern] : c.routes) {
    if (!IndexPattern::compile(pattern, &why)) {
      reader.error("routes." + route, fmt::format("'{}': {}", pattern, why));
    }
  }
  c.username = reader.string("username", "");
  c.password = reader.string("password", "");
  c.api_key = reader.string("api_key", "");
  if (!c.username.empty() && !c.api_key.empty()) {
    reader.error("api_key", "set either username/password or api_key, not both");
  }
  if (c.username.empty() && !c.password.empty()) reader.error("username", "a password is set without a username");
  c.ca_file = reader.string("ca_file", "");
  c.tls_verify = reader.boolean("tls_verify", c.tls_verify);
  c.connect_timeout = reader.duration("connect_timeout", c.connect_timeout);
  c.request_timeout = reader.duration("request_timeout", c.request_timeout);
  if (c.connect_timeout.count() <= 0) reader.error("connect_timeout", "must be positive");
  if (c.request_timeout.count() <= 0) reader.error("request_timeout", "must be positive");
  c.parallel_requests = static_cast<int>(reader.integer("parallel_requests", c.parallel_requests, 1, 64));
  c.max_pending_batches = static_cast<int>(reader.integer("max_pending_batches", c.max_pending_batches, 1, 4096));
  c.max_body_bytes = reader.size("max_body_bytes", c.max_body_bytes);
  if (c.max_body_bytes < 1024) reader.error("max_body_bytes", "must be at least 1KiB");
  c.retry_initial = reader.duration("retry_initial", c.retry_initial);
  c.retry_max = reader.duration("retry_max", c.retry_max);
  if (c.retry_initial.count() <= 0) reader.error("retry_initial", "must be positive");
  if (c.retry_max < c.retry_initial) reader.error("retry_max", "must not be shorter than retry_initial");
  c.gzip = reader.boolean("gzip", c.gzip);
  c.dead_letter_dir = reader.string("dead_letter_dir", "");
  c.dead_letter_max_bytes = reader.size("dead_letter_max_bytes", c.dead_letter_max_bytes);
  reader.finish();
  return c;
}

}  // namespace sluice::sinks
