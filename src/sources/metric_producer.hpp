// MetricProducer: turns one validated metric into envelope + MetricRecord and produces it to the bus,
// keyed by its series key; one per receiving thread (it reuses its buffers, so it is not thread-safe).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bus/bus.hpp"
#include "core/envelope.hpp"
#include "core/metric_record.hpp"
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

}  // namespace sluice
