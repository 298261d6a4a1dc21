// MetricRecord: the compact binary form of one validated metric value (Open-Falcon or Graphite) that
// travels on the bus after the envelope header; see docs/envelope.md, "Metric records".
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

enum class MetricOrigin : std::uint8_t { falcon = 1, graphite = 2 };
// Open-Falcon's counter types; Graphite values are gauges.
enum class MetricCounterType : std::uint8_t { gauge = 0, counter = 1, derive = 2 };

const char* to_string(MetricOrigin origin);
const char* to_string(MetricCounterType type);

// Wire format v1, integers big-endian:
//   0 u8 version (1)   1 u8 origin   2 u8 counter type   3 u8 reserved (0)
//   4 i32 step         8 i64 timestamp (unix s)          16 f64 value (IEEE-754 bits)
//  24 u16 endpoint length   26 u16 metric length   28 u16 tags length
//  30 endpoint bytes, metric bytes, tags bytes (exactly to the end of the record)
inline constexpr std::uint8_t kMetricRecordVersion = 1;
inline constexpr std::size_t kMetricRecordHeaderSize = 30;
inline constexpr std::size_t kMetricFieldMax = 0xffff;

// A decoded record; the strings are views into the bytes it was decoded from.
struct MetricView {
  MetricOrigin origin = MetricOrigin::falcon;
  MetricCounterType counter_type = MetricCounterType::gauge;
  std::int32_t step = 0;  // seconds; 0 for Graphite (the sender does not say)
  std::int64_t timestamp = 0;
  double value = 0;
  std::string_view endpoint;  // empty for Graphite
  std::string_view metric;    // Graphite: the whole path
  std::string_view tags;      // sorted "k=v" pairs joined by ','; empty when none

  // Open-Falcon's primary key: "endpoint/metric", or "endpoint/metric/tags" when there are tags.
  // Graphite: the path. This is the bus key, so one series stays in one partition, in order.
  std::string series_key() const;
  void append_series_key(std::string& out) const;
};

// Size encode_metric() appends for these fields.
inline std::size_t encoded_metric_size(const MetricView& m) {
  return kMetricRecordHeaderSize + m.endpoint.size() + m.metric.size() + m.tags.size();
}

// Appends the record to `out`. Returns false (and appends nothing) if a string exceeds
// kMetricFieldMax bytes.
bool encode_metric(const MetricView& m, std::vector<std::byte>& out);

// Decodes one record that spans all of `bytes`; nullopt for anything malformed (wrong version,
// unknown origin or counter type, lengths that do not add up to the size, nonzero reserved byte).
std::optional<MetricView> decode_metric(std::span<const std::byte> bytes);

}  // namespace sluice
