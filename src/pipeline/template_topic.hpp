// TemplateTopic: the compacted Kafka topic through which outlets share NetFlow v9/IPFIX templates.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "bus/kafka_config.hpp"
#include "core/metrics.hpp"

namespace sluice::pipeline {

// One record per template cache entry (key: the entry's name, value: the entry; an empty value is a
// tombstone). A single partition, so every outlet reads every entry in the order it was written.
// Read without a consumer group: each outlet reads the whole topic itself.
class TemplateTopic {
 public:
  // Called for each record read; `value` is empty for a tombstone.
  using Handler = std::function<void(std::string_view key, std::string_view value)>;

  // Creates the topic (cleanup.policy=compact, one partition) when it does not exist and starts reading
  // it from its beginning. Throws std::runtime_error naming the topic and what to do when it can be
  // neither found nor created.
  TemplateTopic(const bus::KafkaConfig& config, std::string topic, MetricsRegistry& metrics);
  ~TemplateTopic();
  TemplateTopic(const TemplateTopic&) = delete;
  TemplateTopic& operator=(const TemplateTopic&) = delete;

  // Reads up to the end the topic had when this was called (its high watermarks). False when that
  // takes longer than `timeout`; what was read until then has been handled.
  bool catch_up(const Handler& handler, std::chrono::milliseconds timeout);
  // Handles what arrived since, waiting up to `wait` for the first record.
  void poll(const Handler& handler, std::chrono::milliseconds wait);
  // Queues a record (an empty value: a tombstone). False when the producer refused it (counted).
  bool publish(std::string_view key, std::string_view value);
  // Waits for queued records to be delivered; returns how many are still in flight.
  std::size_t flush(std::chrono::milliseconds timeout);
  const std::string& name() const { return topic_; }

 private:
  class Impl;
  std::string topic_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::pipeline
