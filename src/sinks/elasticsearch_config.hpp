// ElasticsearchConfig: where and how the Elasticsearch `_bulk` sink writes, and its index name patterns.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/reader.hpp"

namespace sluice::sinks {

struct ElasticsearchConfig {
  std::vector<std::string> urls;                 // http(s)://host:port; several = round robin, failover
  std::string index = "sluice-logs-%Y.%m.%d";     // strftime-like, applied to the event time in UTC
  std::map<std::string, std::string> routes;      // event.route → index pattern
  std::string username, password;                 // basic auth
  std::string api_key;                            // "Authorization: ApiKey <api_key>" (the encoded id:key)
  std::string ca_file;                            // https: CA bundle (PEM); empty = the system's
  bool tls_verify = true;                         // https: check the server's certificate
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds request_timeout{60'000};
  int parallel_requests = 2;
  int max_pending_batches = 16;                   // submit() blocks beyond
  std::uint64_t max_body_bytes = 10ull << 20;     // larger batches go as several requests
  std::chrono::milliseconds retry_initial{200};
  std::chrono::milliseconds retry_max{30'000};
  bool gzip = false;                              // Content-Encoding: gzip on requests
  std::string dead_letter_dir;                    // where refused items go (the outlet makes DeadLetters)
  std::uint64_t dead_letter_max_bytes = 1ull << 30;
};

// Reads the mapping `reader` points at (e.g. `outlet.elasticsearch`); problems are reported with
// their key paths through the reader (ConfigReader::check() throws them).
ElasticsearchConfig read_elasticsearch_config(config::ConfigReader& reader);

// An index name pattern, compiled: literal text and date fields (%Y %y %m %d %H %j %%).
class IndexPattern {
 public:
  // nullopt and `error` set when the pattern has an unknown directive or makes an invalid index name.
  static std::optional<IndexPattern> compile(std::string_view pattern, std::string* error);

  // The index for an event at `timestamp_ms` (UTC). Cached per hour: cheap for a steady stream.
  const std::string& render(std::int64_t timestamp_ms) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Part {
    char field = 0;  // 0: literal
    std::string text;
  };
  std::string pattern_;
  std::vector<Part> parts_;
  mutable std::int64_t cached_hour_ = INT64_MIN;
  mutable std::string cached_;
};

// Index names Elasticsearch accepts: lowercase, none of \ / * ? " < > | , # : or space, not starting
// with - _ +, not "." or "..", at most 255 bytes. Empty string when valid, otherwise why not.
std::string check_index_name(std::string_view name);

}  // namespace sluice::sinks
