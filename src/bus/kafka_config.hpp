// KafkaConfig: how the Kafka bus reaches the brokers and tunes its librdkafka producer and consumer.
#pragma once

#include <cstddef>
#include <map>
#include <string>

namespace sluice::bus {

struct KafkaConfig {
  std::string brokers;  // bootstrap servers, "host:port,host:port"
  std::string client_id = "sluice";
  // Used by ensure_topics() for topics that do not exist yet.
  int topic_partitions = 8;
  int topic_replication = 1;
  int admin_timeout_ms = 30000;  // how long ensure_topics() waits for the cluster to create topics
  std::string consumer_group = "sluice-outlet";
  int session_timeout_ms = 10000;
  // Bound of the producer's local queue (queue.buffering.max.kbytes); produce() reports `full` beyond it.
  std::size_t producer_queue_bytes = std::size_t{256} << 20;
  int linger_ms = 5;
  // Raw librdkafka properties, applied last so that they override everything above.
  std::map<std::string, std::string> producer_properties;
  std::map<std::string, std::string> consumer_properties;
};

}  // namespace sluice::bus
