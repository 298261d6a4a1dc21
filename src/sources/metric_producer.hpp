// MetricProducer: turns one validated metric into envelope + MetricRecord and produces it to the bus,
// keyed by its series key; one per receiving thread (it reuses its buffers, so it is not thread-safe).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "bus/bus.hpp"
#include "core/envelope.hpp"
#include "core/metric_record.hpp"
#include "core/metrics.hpp"
#include "decoders/falcon.hpp"

namespace sluice {

// The sender of what is being produced, stamped into every envelope.
struct MetricSender {
  Ip6 address{};
  std::uint16_t port = 0;
};

enum class MetricProduceResult { ok, full, error, too_long };

class MetricProducer {
 public:
  MetricProducer(bus::Producer& producer, std::string topic, SourceKind kind)
      : producer_(producer), topic_(std::move(topic)), kind_(kind) {}

  MetricProduceResult produce(const MetricView& m, const MetricSender& from, std::uint64_t received_ns);
  // An Open-Falcon value: tags are written as the spec's sorted "k=v,k=v".
  MetricProduceResult produce(const falcon::MetricValue& v, const MetricSender& from, std::uint64_t received_ns);

 private:
  bus::Producer& producer_;
  std::string topic_;
  SourceKind kind_;
  std::vector<std::byte> value_;
  std::string key_;
  std::string tags_;
};

// Open-Falcon's sorted tag string of a validated value (tags are sorted by key, one per key).
void sorted_tags(const falcon::MetricValue& v, std::string& out);

std::uint64_t unix_now_ns();

// Up to `max` bytes of received input for a log line, with control and non-ASCII bytes as '?'.
std::string log_sample(std::string_view text, std::size_t max = 120);

// The counters every metric receiver keeps (label receiver=<name>): inlet_metrics_received_total
// (values seen, valid or not), inlet_metrics_invalid_total{reason}, inlet_metrics_produce_drops_total
// {reason=full|error} (valid values the bus refused), inlet_metrics_bad_requests_total (bodies or
// objects refused whole, {reason}).
class ReceiverCounters {
 public:
  ReceiverCounters(MetricsRegistry& metrics, const std::string& receiver, std::span<const char* const> invalid_reasons,
                   std::span<const char* const> bad_request_reasons = {});
  Counter& received() { return *received_; }
  Counter& invalid(std::size_t reason) { return *invalid_.at(reason); }
  Counter& bad_request(std::size_t reason) { return *bad_requests_.at(reason); }
  // Counts a produce result other than ok; true when the value is on the bus.
  bool count(MetricProduceResult r, std::size_t too_long_reason);
  std::uint64_t drops() const { return drops_full_->value() + drops_error_->value(); }
  nlohmann::json status() const;

 private:
  std::vector<const char*> invalid_names_, bad_request_names_;
  Counter* received_;
  std::vector<Counter*> invalid_;
  std::vector<Counter*> bad_requests_;
  Counter* drops_full_;
  Counter* drops_error_;
};

}  // namespace sluice
