// BulkBodyWriter: turns LogEvents into the NDJSON body of an Elasticsearch `_bulk` request.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/metrics.hpp"
#include "sinks/elasticsearch_config.hpp"
#include "transforms/log_event.hpp"

namespace sluice::sinks {

// InsertRequest.format of bodies this writer makes.
inline constexpr std::string_view kBulkFormat = "elasticsearch-bulk";

// Each event becomes two lines:
//   {"create":{"_index":"sluice-logs-2026.11.21","_id":"<32 hex>"}}
//   {"@timestamp":"2026-11-21T15:23:26.123Z","message":"...","host":{"name":"..."},
//    "log":{"file":{"path":"..."},"offset":123},"<field>":<value>,...}
// `create` with an _id derived from the line's identity (host, path, file_id, offset) makes a replayed
// line a 409 conflict, not a second document. Fields keep their FieldType (numbers and booleans bare,
// json raw). A field whose name would collide with the document's own keys (@timestamp, message, host,
// log, or a dotted name under host. / log.) is written as "fields.<name>". Strings are escaped; invalid
// UTF-8 becomes U+FFFD (counted).
// Not thread-safe: one writer per batch builder. Allocates nothing once its buffers are warm.
class BulkBodyWriter {
 public:
  explicit BulkBodyWriter(const ElasticsearchConfig& config);
  // Also counts invalid UTF-8 replacements in elasticsearch_invalid_utf8_total.
  BulkBodyWriter(const ElasticsearchConfig& config, MetricsRegistry& metrics);

  void append(const transforms::LogEvent& e, std::string& body);

  // The _id of a line: 32 hex digits of XXH3-128 over its identity.
  static void document_id(const transforms::LogEvent& e, std::string& out);
  // ISO 8601 UTC with milliseconds: 2026-11-21T15:23:26.123Z.
  static void append_timestamp(std::int64_t timestamp_ms, std::string& out);

  std::uint64_t invalid_utf8() const { return invalid_utf8_; }

 private:
  const IndexPattern& index_for(std::string_view route) const;
  void string_value(std::string_view text, std::string& body);

  IndexPattern index_;
  std::map<std::string, IndexPattern, std::less<>> routes_;
  std::string id_;
  std::string key_;
  std::uint64_t invalid_utf8_ = 0;
  Counter* invalid_utf8_counter_ = nullptr;
};

}  // namespace sluice::sinks
