#include "sources/metric_producer.hpp"

#include <chrono>

namespace sluice {

std::uint64_t unix_now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

void sorted_tags(const falcon::MetricValue& v, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < v.tag_count; ++i) {
    if (i != 0) out.push_back(',');
    out.append(v.tags[i].key);
    out.push_back('=');
    out.append(v.tags[i].value);
  }
}

MetricProduceResult MetricProducer::produce(const MetricView& m, const MetricSender& from, std::uint64_t received_ns) {
  value_.resize(kEnvelopeHeaderSize);
  if (!encode_metric(m, value_)) return MetricProduceResult::too_long;
  Envelope env;
  env.received_ns = received_ns;
  env.kind = kind_;
  env.source_address = from.address;
  env.source_port = from.port;
  encode_envelope_header(env, std::span<std::byte, kEnvelopeHeaderSize>(value_.data(), kEnvelopeHeaderSize));
  key_.clear();
  m.append_series_key(key_);
  switch (producer_.produce(topic_, std::as_bytes(std::span(key_)), value_)) {
    case bus::ProduceStatus::ok: return MetricProduceResult::ok;
    case bus::ProduceStatus::full: return MetricProduceResult::full;
    case bus::ProduceStatus::error: return MetricProduceResult::error;
  }
  return MetricProduceResult::error;
}

MetricProduceResult MetricProducer::produce(const falcon::MetricValue& v, const MetricSender& from,
                                            std::uint64_t received_ns) {
  sorted_tags(v, tags_);
  MetricView m;
  m.origin = MetricOrigin::falcon;
  m.counter_type = static_cast<MetricCounterType>(static_cast<std::uint8_t>(v.counter_type));
  m.step = v.step;
  m.timestamp = v.timestamp;
  m.value = v.value;
  m.endpoint = v.endpoint;
  m.metric = v.metric;
  m.tags = tags_;
  return produce(m, from, received_ns);
}

}  // namespace sluice
