// MetricBatchBuilder: collects the metric records of one partition's batch, checked and in order, for
// the metric router (records travel as [4-byte length][record] in the request body).
#pragma once

#include <cstring>
#include <string>
#include <string_view>

#include "core/log_limiter.hpp"
#include "core/metrics.hpp"
#include "pipeline/batch_builder.hpp"

namespace sluice::pipeline {

inline constexpr const char* kMetricRecordsFormat = "sluice-metric-records";

// Shared by every partition's builder.
struct MetricDecoding {
  explicit MetricDecoding(MetricsRegistry& metrics);
  MetricsRegistry& metrics;
  Counter& records;
  Counter& rejected;
  LogLimiter log_limiter;
};

class MetricBatchBuilder final : public BatchBuilder {
 public:
  explicit MetricBatchBuilder(MetricDecoding& shared) : shared_(shared) {}

  void add(const bus::Message& message) override;
  std::uint64_t rows() const override { return rows_; }
  std::uint64_t bytes() const override { return body_.size(); }
  sinks::InsertRequest take() override;

 private:
  MetricDecoding& shared_;
  std::string body_;
  std::uint64_t rows_ = 0;
};

// Calls f(record bytes) for each record of a request body built by MetricBatchBuilder.
template <typename F>
void for_each_metric_record(std::string_view body, F&& f) {
  while (body.size() >= 4) {
    std::uint32_t len;
    std::memcpy(&len, body.data(), 4);
    if (body.size() - 4 < len) return;
    f(body.substr(4, len));
    body.remove_prefix(4 + len);
  }
}

}  // namespace sluice::pipeline
