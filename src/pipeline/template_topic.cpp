#include "pipeline/template_topic.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "bus/kafka_bus.hpp"
#include "bus/kafka_client.hpp"

namespace sluice::pipeline {
namespace {

constexpr int kMetadataTimeoutMs = 10'000;
constexpr int kCreateTimeoutMs = 5'000;

struct NewTopicDeleter {
  void operator()(rd_kafka_NewTopic_t* t) const { rd_kafka_NewTopic_destroy(t); }
};
struct AdminOptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;

// The topic's partition count; 0 when it does not exist. Throws when the brokers cannot be asked.
int partition_count(rd_kafka_t* rk, const std::string& topic, const std::string& brokers) {
  const rd_kafka_metadata_t* md = nullptr;
  const auto err = rd_kafka_metadata(rk, 1, nullptr, &md, kMetadataTimeoutMs);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error(fmt::format(
        "flow templates: cannot read the topic list from Kafka brokers {} to find topic {}: {} (is Kafka running "
        "and reachable? check bus.kafka.brokers)",
        brokers, topic, rd_kafka_err2str(err)));
  }
  int count = 0;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR && topic == md->topics[i].topic) {
      count = md->topics[i].partition_cnt;
    }
  }
  rd_kafka_metadata_destroy(md);
  return count;
}

void create_compacted_topic(rd_kafka_t* rk, const bus::KafkaConfig& config, const std::string& topic) {
  const auto advice = fmt::format(
      "create it yourself with one partition and cleanup.policy=compact (kafka-topics.sh --create --topic {} "
      "--partitions 1 --config cleanup.policy=compact), or allow CreateTopics for this client",
      topic);
  char err[512];
  std::unique_ptr<rd_kafka_NewTopic_t, NewTopicDeleter> request(
      rd_kafka_NewTopic_new(topic.c_str(), 1, config.topic_replication, err, sizeof err));
  if (!request) throw std::runtime_error(fmt::format("flow templates: invalid settings for topic {}: {}; {}", topic, err, advice));
  rd_kafka_NewTopic_set_config(request.get(), "cleanup.policy", "compact");
  std::unique_ptr<rd_kafka_AdminOptions_t, AdminOptionsDeleter> options(
      rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS));
  // Bounded apart from the flow topics: the outlet can run without this topic, so it should not wait
  // long on a cluster that will not create it.
  const int timeout_ms = std::min(config.admin_timeout_ms, kCreateTimeoutMs);
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), timeout_ms, err, sizeof err);
  rd_kafka_AdminOptions_set_request_timeout(options.get(), timeout_ms, err, sizeof err);
  bus::kafka::QueuePtr queue(rd_kafka_queue_new(rk));
  rd_kafka_NewTopic_t* requests[] = {request.get()};
  rd_kafka_CreateTopics(rk, requests, 1, options.get(), queue.get());
  std::unique_ptr<rd_kafka_event_t, EventDeleter> event(rd_kafka_queue_poll(queue.get(), timeout_ms + 1000));
  if (!event) {
    throw std::runtime_error(fmt::format("flow templates: no answer from Kafka brokers {} while creating topic {}; {}",
                                         config.brokers, topic, advice));
  }
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error(fmt::format("flow templates: Kafka brokers {} did not create topic {}: {}; {}",
                                         config.brokers, topic, rd_kafka_event_error_string(event.get()), advice));
  }
  std::size_t count = 0;
  const auto* const* results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event.get()), &count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto e = rd_kafka_topic_result_error(results[i]);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      const char* why = rd_kafka_topic_result_error_string(results[i]);
      throw std::runtime_error(fmt::format("flow templates: cannot create topic {} on Kafka brokers {}: {}; {}", topic,
                                           config.brokers, why != nullptr ? why : rd_kafka_err2str(e), advice));
    }
  }
  spdlog::info("flow templates: created compacted topic {} on Kafka brokers {}", topic, config.brokers);
}

}  // namespace

class TemplateTopic::Impl {
 public:
  Impl(const bus::KafkaConfig& config, const std::string& topic, MetricsRegistry& metrics)
      : topic_(topic),
        brokers_(config.brokers),
        read_errors_(metrics.counter("flow_template_topic_read_errors_total",
                                     "Errors reading the flow template topic (the reader retries by itself)")) {
    auto conf = bus::kafka::make_conf(config.brokers, config.client_id + "-templates");
    bus::kafka::set_properties(conf.get(), config.consumer_properties);  // security settings live there
    bus::kafka::set_property(conf.get(), "enable.partition.eof", "true");
    bus::kafka::set_property(conf.get(), "fetch.wait.max.ms", "100");
    rk_ = bus::kafka::make_handle(RD_KAFKA_CONSUMER, std::move(conf), config.brokers);

    int partitions = partition_count(rk_.get(), topic_, brokers_);
    if (partitions == 0) {
      create_compacted_topic(rk_.get(), config, topic_);
      partitions = partition_count(rk_.get(), topic_, brokers_);
      if (partitions == 0) partitions = 1;
    }
    // Offsets are never committed: every start reads the whole (compacted) topic again.
    rd_kafka_topic_conf_t* tconf = rd_kafka_topic_conf_new();
    char err[512];
    rd_kafka_topic_conf_set(tconf, "auto.commit.enable", "false", err, sizeof err);
    rkt_.reset(rd_kafka_topic_new(rk_.get(), topic_.c_str(), tconf));
    if (!rkt_) {
      throw std::runtime_error(fmt::format("flow templates: cannot open topic {}: {}", topic_,
                                           rd_kafka_err2str(rd_kafka_last_error())));
    }
    queue_.reset(rd_kafka_queue_new(rk_.get()));
    next_.assign(static_cast<std::size_t>(partitions), 0);
    for (int p = 0; p < partitions; ++p) {
      if (rd_kafka_consume_start_queue(rkt_.get(), p, RD_KAFKA_OFFSET_BEGINNING, queue_.get()) == -1) {
        throw std::runtime_error(fmt::format("flow templates: cannot read partition {} of topic {}: {}", p, topic_,
                                             rd_kafka_err2str(rd_kafka_last_error())));
      }
      ++started_;
    }
    producer_ = std::make_unique<bus::KafkaProducer>(config, metrics);
  }

  ~Impl() {
    for (int p = 0; p < started_; ++p) rd_kafka_consume_stop(rkt_.get(), p);
    queue_.reset();
    rkt_.reset();
    rk_.reset();
  }

  bool catch_up(const Handler& handler, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<std::int64_t> end(next_.size(), 0);
    for (std::size_t p = 0; p < next_.size(); ++p) {
      std::int64_t low = 0, high = 0;
      const auto err = rd_kafka_query_watermark_offsets(rk_.get(), topic_.c_str(), static_cast<std::int32_t>(p), &low,
                                                        &high, static_cast<int>(timeout.count()));
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        spdlog::warn("flow templates: cannot ask Kafka brokers {} where topic {} ends: {}", brokers_, topic_,
                     rd_kafka_err2str(err));
        return false;
      }
      end[p] = high;
      next_[p] = std::max(next_[p], low);
    }
    for (;;) {
      bool done = true;
      for (std::size_t p = 0; p < next_.size(); ++p) done = done && next_[p] >= end[p];
      if (done) return true;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      poll(handler, std::min(left, std::chrono::milliseconds(100)));
    }
  }

  void poll(const Handler& handler, std::chrono::milliseconds wait) {
    MessagePtr m(rd_kafka_consume_queue(queue_.get(), static_cast<int>(wait.count())));
    // Then whatever else is already here, bounded so a long backlog still lets the caller do its work.
    for (int handled = 0; m;) {
      handle(*m, handler);
      if (++handled == 10'000) break;
      m.reset(rd_kafka_consume_queue(queue_.get(), 0));
    }
  }

  bool publish(std::string_view key, std::string_view value) {
    const auto k = std::as_bytes(std::span(key.data(), key.size()));
    // A tombstone has no value at all (not an empty one).
    const auto v = value.empty() ? std::span<const std::byte>{} : std::as_bytes(std::span(value.data(), value.size()));
    return producer_->produce(topic_, k, v) == bus::ProduceStatus::ok;
  }

  std::size_t flush(std::chrono::milliseconds timeout) { return producer_->flush(timeout); }

 private:
  void handle(const rd_kafka_message_t& m, const Handler& handler) {
    const auto p = static_cast<std::size_t>(m.partition);
    if (m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (p < next_.size()) next_[p] = std::max(next_[p], m.offset);
      return;
    }
    if (m.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      read_errors_.inc();
      if (auto held = log_.allow()) {
        spdlog::warn("flow templates: reading topic {} from Kafka brokers {}: {} ({} similar error(s) suppressed); "
                     "retrying. Outlets still learn templates from their exporters meanwhile",
                     topic_, brokers_, rd_kafka_message_errstr(&m), *held);
      }
      return;
    }
    const std::string_view key = m.key ? std::string_view(static_cast<const char*>(m.key), m.key_len) : std::string_view{};
    const std::string_view value =
        m.payload ? std::string_view(static_cast<const char*>(m.payload), m.len) : std::string_view{};
    handler(key, value);
    if (p < next_.size()) next_[p] = std::max(next_[p], m.offset + 1);
  }

  std::string topic_;
  std::string brokers_;
  Counter& read_errors_;
  bus::kafka::LogRateLimiter log_;
  bus::kafka::HandlePtr rk_;
  bus::kafka::TopicPtr rkt_;
  bus::kafka::QueuePtr queue_;
  int started_ = 0;
  std::vector<std::int64_t> next_;  // per partition: the offset after the last one handled
  std::unique_ptr<bus::KafkaProducer> producer_;
};

TemplateTopic::TemplateTopic(const bus::KafkaConfig& config, std::string topic, MetricsRegistry& metrics)
    : topic_(std::move(topic)), impl_(std::make_unique<Impl>(config, topic_, metrics)) {}

TemplateTopic::~TemplateTopic() = default;

bool TemplateTopic::catch_up(const Handler& handler, std::chrono::milliseconds timeout) {
  return impl_->catch_up(handler, timeout);
}
void TemplateTopic::poll(const Handler& handler, std::chrono::milliseconds wait) { impl_->poll(handler, wait); }
bool TemplateTopic::publish(std::string_view key, std::string_view value) { return impl_->publish(key, value); }
std::size_t TemplateTopic::flush(std::chrono::milliseconds timeout) { return impl_->flush(timeout); }

}  // namespace sluice::pipeline
