#include "sources/metric_producer.hpp"

#include <chrono>

namespace sluice {

std::uint64_t unix_now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

std::string log_sample(std::string_view text, std::size_t max) {
  std::string out(text.substr(0, max));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  return out;
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

ReceiverCounters::ReceiverCounters(MetricsRegistry& metrics, const std::string& receiver,
                                   std::span<const char* const> invalid_reasons,
                                   std::span<const char* const> bad_request_reasons)
    : invalid_names_(invalid_reasons.begin(), invalid_reasons.end()),
      bad_request_names_(bad_request_reasons.begin(), bad_request_reasons.end()) {
  const Labels l{{"receiver", receiver}};
  auto with = [&](const char* key, const char* value) {
    Labels out = l;
    out.emplace_back(key, value);
    return out;
  };
  received_ = &metrics.counter("inlet_metrics_received_total", "Metric values received, valid or not", l);
  for (const char* r : invalid_names_) {
    invalid_.push_back(&metrics.counter("inlet_metrics_invalid_total", "Metric values refused, by reason", with("reason", r)));
  }
  for (const char* r : bad_request_names_) {
    bad_requests_.push_back(&metrics.counter("inlet_metrics_bad_requests_total",
                                             "Requests, bodies or RPC objects refused whole, by reason", with("reason", r)));
  }
  const char* drop_help = "Valid metric values the bus refused (dropped), by reason";
  drops_full_ = &metrics.counter("inlet_metrics_produce_drops_total", drop_help, with("reason", "full"));
  drops_error_ = &metrics.counter("inlet_metrics_produce_drops_total", drop_help, with("reason", "error"));
}

bool ReceiverCounters::count(MetricProduceResult r, std::size_t too_long_reason) {
  switch (r) {
    case MetricProduceResult::ok: return true;
    case MetricProduceResult::full: drops_full_->inc(); return false;
    case MetricProduceResult::error: drops_error_->inc(); return false;
    case MetricProduceResult::too_long: invalid(too_long_reason).inc(); return false;
  }
  return false;
}

nlohmann::json ReceiverCounters::status() const {
  nlohmann::json j;
  j["received"] = received_->value();
  nlohmann::json invalid = nlohmann::json::object();
  for (std::size_t i = 0; i < invalid_.size(); ++i) invalid[invalid_names_[i]] = invalid_[i]->value();
  j["invalid"] = std::move(invalid);
  if (!bad_requests_.empty()) {
    nlohmann::json bad = nlohmann::json::object();
    for (std::size_t i = 0; i < bad_requests_.size(); ++i) bad[bad_request_names_[i]] = bad_requests_[i]->value();
    j["bad_requests"] = std::move(bad);
  }
  j["dropped_bus_full"] = drops_full_->value();
  j["dropped_bus_error"] = drops_error_->value();
  return j;
}

}  // namespace sluice
