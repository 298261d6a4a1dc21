#include "core/metric_record.hpp"

#include <bit>
#include <cstring>

#include "core/bytes.hpp"

namespace sluice {

const char* to_string(MetricOrigin origin) {
  switch (origin) {
    case MetricOrigin::falcon: return "falcon";
    case MetricOrigin::graphite: return "graphite";
  }
  return "unknown";
}

const char* to_string(MetricCounterType type) {
  switch (type) {
    case MetricCounterType::gauge: return "GAUGE";
    case MetricCounterType::counter: return "COUNTER";
    case MetricCounterType::derive: return "DERIVE";
  }
  return "GAUGE";
}

void MetricView::append_series_key(std::string& out) const {
  if (origin == MetricOrigin::graphite) {
    out.append(metric);
    return;
  }
  out.append(endpoint);
  out.push_back('/');
  out.append(metric);
  if (!tags.empty()) {
    out.push_back('/');
    out.append(tags);
  }
}

std::string MetricView::series_key() const {
  std::string out;
  out.reserve(endpoint.size() + metric.size() + tags.size() + 2);
  append_series_key(out);
  return out;
}

bool encode_metric(const MetricView& m, std::vector<std::byte>& out) {
  if (m.endpoint.size() > kMetricFieldMax || m.metric.size() > kMetricFieldMax || m.tags.size() > kMetricFieldMax) {
    return false;
  }
  const auto start = out.size();
  out.resize(start + encoded_metric_size(m));
  auto* p = reinterpret_cast<std::uint8_t*>(out.data() + start);
  p[0] = kMetricRecordVersion;
  p[1] = static_cast<std::uint8_t>(m.origin);
  p[2] = static_cast<std::uint8_t>(m.counter_type);
  p[3] = 0;
  store_be32(p + 4, static_cast<std::uint32_t>(m.step));
  store_be64(p + 8, static_cast<std::uint64_t>(m.timestamp));
  store_be64(p + 16, std::bit_cast<std::uint64_t>(m.value));
  store_be16(p + 24, static_cast<std::uint16_t>(m.endpoint.size()));
  store_be16(p + 26, static_cast<std::uint16_t>(m.metric.size()));
  store_be16(p + 28, static_cast<std::uint16_t>(m.tags.size()));
  auto* q = p + kMetricRecordHeaderSize;
  for (std::string_view s : {m.endpoint, m.metric, m.tags}) {
    if (!s.empty()) std::memcpy(q, s.data(), s.size());
    q += s.size();
  }
  return true;
}

std::optional<MetricView> decode_metric(std::span<const std::byte> bytes) {
  if (bytes.size() < kMetricRecordHeaderSize) return std::nullopt;
  const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
  if (p[0] != kMetricRecordVersion || p[3] != 0) return std::nullopt;
  if (p[1] != static_cast<std::uint8_t>(MetricOrigin::falcon) && p[1] != static_cast<std::uint8_t>(MetricOrigin::graphite)) {
    return std::nullopt;
  }
  if (p[2] > static_cast<std::uint8_t>(MetricCounterType::derive)) return std::nullopt;
  const std::size_t endpoint_len = load_be16(p + 24), metric_len = load_be16(p + 26), tags_len = load_be16(p + 28);
  if (kMetricRecordHeaderSize + endpoint_len + metric_len + tags_len != bytes.size()) return std::nullopt;
  MetricView m;
  m.origin = static_cast<MetricOrigin>(p[1]);
  m.counter_type = static_cast<MetricCounterType>(p[2]);
  m.step = static_cast<std::int32_t>(load_be32(p + 4));
  m.timestamp = static_cast<std::int64_t>(load_be64(p + 8));
  m.value = std::bit_cast<double>(load_be64(p + 16));
  const char* s = reinterpret_cast<const char*>(p + kMetricRecordHeaderSize);
  m.endpoint = {s, endpoint_len};
  m.metric = {s + endpoint_len, metric_len};
  m.tags = {s + endpoint_len + metric_len, tags_len};
  return m;
}

}  // namespace sluice
