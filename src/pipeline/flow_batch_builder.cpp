#include "pipeline/flow_batch_builder.hpp"

#include <spdlog/spdlog.h>

#include "admin/flow_tail.hpp"
#include "decoders/netflow.hpp"
#include "decoders/sflow.hpp"

namespace sluice::pipeline {

FlowDecoding::FlowDecoding(MetricsRegistry& m, const FlowSchema& s, std::uint64_t default_rate, admin::FlowTail* t,
                           transforms::Enricher* e)
    : metrics(m),
      schema(s),
      default_sampling_rate(default_rate),
      tail(t),
      enricher(e),
      flows(m.counter("flows_decoded_total", "Flows decoded and batched")),
      packets(m.counter("flow_packets_decoded_total", "Flow datagrams decoded without error")),
      unknown_sampling(m.counter("flows_unknown_sampling_rate_total",
                                 "Flows whose exporter sent no sampling rate and no default is configured")),
      templates(m),
      sflow_flow_samples(m.counter("sflow_samples_total", "sFlow samples in decoded datagrams, by type",
                                   {{"type", "flow"}})),
      sflow_counter_samples(m.counter("sflow_samples_total", "sFlow samples in decoded datagrams, by type",
                                      {{"type", "counter"}})),
      sflow_skipped_samples(m.counter("sflow_samples_total", "sFlow samples in decoded datagrams, by type",
                                      {{"type", "skipped"}})),
      sflow_skipped_records(m.counter("sflow_flow_records_skipped_total",
                                      "sFlow flow records of formats sluice does not decode, skipped")) {}

void FlowDecoding::count_error(const std::string& kind, const char* reason, const Envelope* env) {
  metrics.counter("decode_errors_total", "Messages rejected by decoders, by kind and reason", {{"kind", kind}, {"reason", reason}})
      .inc();
  const std::string from = env ? ip6_to_string(env->source_address) : "the bus";
  if (auto suppressed = log_limiter.allow(kind + "/" + reason + "/" + from)) {
    spdlog::warn("decode: rejected a {} message from {}: {} ({} more like it since the last report); see "
                 "sluice_decode_errors_total. Check the exporter's configuration if this persists",
                 kind, from, reason, *suppressed);
  }
}

void FlowBatchBuilder::add(const bus::Message& message) {
  Envelope env;
  if (auto err = decode_envelope(message.value, env); err != EnvelopeError::none) {
    shared_.count_error("envelope", to_string(err), nullptr);
    return;
  }
  DecodeStatus status = DecodeStatus::unsupported_version;
  switch (env.kind) {
    case SourceKind::netflow: status = decode_netflow(env, shared_.templates, scratch_, *this); break;
    case SourceKind::sflow: {
      SflowCounts counts;
      status = decode_sflow(env, scratch_, *this, shared_.sflow_options, &counts);
      if (counts.flow_samples) shared_.sflow_flow_samples.inc(counts.flow_samples);
      if (counts.counter_samples) shared_.sflow_counter_samples.inc(counts.counter_samples);
      if (counts.skipped_samples) shared_.sflow_skipped_samples.inc(counts.skipped_samples);
      if (counts.skipped_records) shared_.sflow_skipped_records.inc(counts.skipped_records);
      break;
    }
    default: break;
  }
  if (status == DecodeStatus::ok) shared_.packets.inc();
  else shared_.count_error(to_string(env.kind), to_string(status), &env);
}

void FlowBatchBuilder::emit(FlowRecord& record) {
  if (record.sampling_rate == 0) {
    if (shared_.default_sampling_rate) record.sampling_rate = shared_.default_sampling_rate;
    else shared_.unknown_sampling.inc();
  }
  if (enrich_) enrich_->enrich(record);
  if (shared_.tail && shared_.tail->active()) shared_.tail->publish(record);
  batch_.append(record);
  shared_.flows.inc();
}

sinks::InsertRequest FlowBatchBuilder::take() {
  sinks::InsertRequest r;
  r.table = "flows_raw";
  r.format = "Native";
  r.rows = batch_.rows();
  if (r.rows) batch_.take_native(r.body);
  return r;
}

}  // namespace sluice::pipeline
