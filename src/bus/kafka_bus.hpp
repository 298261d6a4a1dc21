// Kafka bus: the bus::Producer and bus::Consumer over librdkafka, for Apache Kafka, Redpanda and alike.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bus/bus.hpp"
#include "bus/kafka_config.hpp"
#include "core/metrics.hpp"

namespace sluice::bus {

// Creates the topics that do not exist yet, with the configured partitions and replication.
// Throws std::runtime_error naming the topic, the brokers and what to do when a topic can be neither
// found nor created (brokers unreachable, no permission, cluster refuses CreateTopics).
void ensure_topics(const KafkaConfig& config, const std::vector<std::string>& topics, MetricsRegistry& metrics);

// Idempotent producer (acks=all): retries never duplicate nor reorder messages of one partition.
// Keys are hashed like the Java client (murmur2), so other Kafka clients agree on the partition of a key.
// Delivery reports are served by a background thread and counted; produce() never blocks.
class KafkaProducer final : public Producer {
 public:
  // Throws std::runtime_error when librdkafka rejects the configuration.
  KafkaProducer(const KafkaConfig& config, MetricsRegistry& metrics);
  // Flushes for a bounded time, then drops (counts and logs) what could not be delivered.
  ~KafkaProducer() override;
  KafkaProducer(const KafkaProducer&) = delete;
  KafkaProducer& operator=(const KafkaProducer&) = delete;

  ProduceStatus produce(std::string_view topic, std::span<const std::byte> key,
                        std::span<const std::byte> value) override;
  ProduceStatus produce_tracked(std::string_view topic, std::span<const std::byte> key,
                                std::span<const std::byte> value, DeliveryListener& listener,
                                std::uint64_t cookie) override;
  std::size_t flush(std::chrono::milliseconds timeout) override;
  // Messages accepted by produce() whose delivery report has not arrived yet.
  std::size_t in_flight() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Member of a consumer group with manual commits: offsets move only through commit(), which the outlet
// calls for what its sinks acknowledged. Assignment is eager (range, roundrobin); a partition without
// a committed offset is read from its beginning.
class KafkaConsumer final : public Consumer {
 public:
  // Throws std::runtime_error when librdkafka rejects the configuration.
  KafkaConsumer(const KafkaConfig& config, std::vector<std::string> topics, MetricsRegistry& metrics);
  ~KafkaConsumer() override;
  KafkaConsumer(const KafkaConsumer&) = delete;
  KafkaConsumer& operator=(const KafkaConsumer&) = delete;

  // Subscribes, polls and calls the handler until stop(); then revokes everything through the handler
  // (so it can commit) and leaves the group. Runs once per consumer. Rethrows what the handler threw.
  void run(ConsumerHandler& handler) override;
  void stop() override;
  bool commit(const PartitionRef& partition, std::int64_t next_offset, std::string_view metadata) override;
  std::vector<bool> commit_all(std::span<const OffsetCommit> commits) override;
  std::int64_t lag(const PartitionRef& partition) const override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::bus
