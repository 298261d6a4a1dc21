// Kafka client plumbing shared by the producer, the consumer and the topic admin (internal to src/bus).
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::bus::kafka {

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
struct TopicDeleter {
  void operator()(rd_kafka_topic_t* rkt) const { rd_kafka_topic_destroy(rkt); }
};
struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const { rd_kafka_topic_partition_list_destroy(list); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* queue) const { rd_kafka_queue_destroy(queue); }
};

using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;

// A configuration with the brokers, the client id and librdkafka's logs routed to spdlog (each line
// names the client instance, e.g. `sluice#producer-1`, so an operator knows which one spoke).
ConfPtr make_conf(std::string_view brokers, std::string_view client_id);
// Throws std::runtime_error naming the property when librdkafka rejects it.
void set_property(rd_kafka_conf_t* conf, const std::string& name, const std::string& value);
void set_properties(rd_kafka_conf_t* conf, const std::map<std::string, std::string>& properties);
// Creates the handle; the configuration is consumed on success and destroyed on failure.
HandlePtr make_handle(rd_kafka_type_t type, ConfPtr conf, std::string_view brokers);

std::string err_name(rd_kafka_resp_err_t err);

// Lets one message through per period; the caller reports how many were held back meanwhile.
class LogRateLimiter {
 public:
  explicit LogRateLimiter(std::chrono::steady_clock::duration period = std::chrono::seconds(10)) : period_(period) {}
  // nullopt: stay quiet. Otherwise the number of messages suppressed since the last one let through.
  std::optional<std::uint64_t> allow();

 private:
  std::mutex mutex_;
  std::chrono::steady_clock::duration period_;
  std::chrono::steady_clock::time_point next_{};
  std::uint64_t suppressed_ = 0;
};

}  // namespace sluice::bus::kafka
