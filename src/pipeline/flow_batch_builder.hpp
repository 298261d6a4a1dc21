// FlowBatchBuilder: decodes flow envelopes of one partition straight into a FlowBatch for flows_raw.
#pragma once

#include <cstdint>
#include <memory>

#include "core/flow_batch.hpp"
#include "core/log_limiter.hpp"
#include "core/metrics.hpp"
#include "decoders/flow_decoder.hpp"
#include "decoders/sflow.hpp"
#include "decoders/template_cache.hpp"
#include "pipeline/batch_builder.hpp"
#include "transforms/enricher.hpp"

namespace sluice::admin {
class FlowTail;
}

namespace sluice::pipeline {

// Shared by every partition's builder: counters and options that do not change per partition.
struct FlowDecoding {
  FlowDecoding(MetricsRegistry& metrics, const FlowSchema& schema, std::uint64_t default_sampling_rate,
               admin::FlowTail* tail, transforms::Enricher* enricher = nullptr);
  // Counts a rejected message and logs it, at most every 10 s per exporter and reason.
  void count_error(const std::string& kind, const char* reason, const Envelope* env);

  MetricsRegistry& metrics;
  const FlowSchema& schema;
  std::uint64_t default_sampling_rate;
  admin::FlowTail* tail;
  transforms::Enricher* enricher;  // null: flows go out as decoded
  Counter& flows;
  Counter& packets;
  Counter& unknown_sampling;
  LogLimiter log_limiter;
  TemplateCache templates;  // NetFlow v9 / IPFIX templates of every exporter, whichever partition they came by
  SflowOptions sflow_options;  // set from outlet.flows.sflow before any builder runs
  // What sFlow datagrams held besides flows (SflowCounts), by sample type and for skipped records.
  Counter& sflow_flow_samples;
  Counter& sflow_counter_samples;
  Counter& sflow_skipped_samples;
  Counter& sflow_skipped_records;
};

class FlowBatchBuilder final : public BatchBuilder, private FlowOutput {
 public:
  explicit FlowBatchBuilder(FlowDecoding& shared)
      : shared_(shared), batch_(shared.schema), enrich_(shared.enricher ? shared.enricher->session() : nullptr) {}

  void add(const bus::Message& message) override;
  std::uint64_t rows() const override { return batch_.rows(); }
  std::uint64_t bytes() const override { return batch_.bytes(); }
  sinks::InsertRequest take() override;

 private:
  void emit(FlowRecord& record) override;

  FlowDecoding& shared_;
  FlowBatch batch_;
  FlowRecord scratch_;
  std::unique_ptr<transforms::Enricher::Session> enrich_;  // this builder's caches: one decode thread at a time
};

}  // namespace sluice::pipeline
