#include "pipeline/metric_batch_builder.hpp"

#include <spdlog/spdlog.h>

#include <cstring>

#include "core/envelope.hpp"
#include "core/metric_record.hpp"

namespace sluice::pipeline {

MetricDecoding::MetricDecoding(MetricsRegistry& m)
    : metrics(m),
      records(m.counter("metric_records_total", "Metric records read from the bus")),
      rejected(m.counter("metric_records_rejected_total",
                         "Bus messages that were not a valid metric record (skipped and acknowledged)")) {}

void MetricBatchBuilder::add(const bus::Message& message) {
  Envelope env;
  const bool envelope_ok = decode_envelope(message.value, env) == EnvelopeError::none &&
                           (env.kind == SourceKind::falcon || env.kind == SourceKind::graphite);
  if (!envelope_ok || !decode_metric(env.payload)) {
    shared_.rejected.inc();
    if (auto suppressed = shared_.log_limiter.allow("metric-record")) {
      spdlog::warn("metrics: skipped a message at {}/{} offset {} that is not a metric record ({} more since the last "
                   "report); is another program writing to this topic?",
                   message.topic, message.partition, message.offset, *suppressed);
    }
    return;
  }
  const auto len = static_cast<std::uint32_t>(env.payload.size());
  char prefix[4];
  std::memcpy(prefix, &len, 4);
  body_.append(prefix, 4);
  body_.append(reinterpret_cast<const char*>(env.payload.data()), env.payload.size());
  ++rows_;
  shared_.records.inc();
}

sinks::InsertRequest MetricBatchBuilder::take() {
  sinks::InsertRequest r;
  r.table = "metrics";
  r.format = kMetricRecordsFormat;
  r.rows = rows_;
  r.body.swap(body_);
  rows_ = 0;
  return r;
}

}  // namespace sluice::pipeline
