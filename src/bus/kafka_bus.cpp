// Kafka bus: topic creation and the producer. The consumer lives in kafka_consumer.cpp.
#include "bus/kafka_bus.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <shared_mutex>
#include <stdexcept>
#include <thread>

#include "bus/kafka_client.hpp"
#include "core/thread_name.hpp"

namespace sluice::bus {

using kafka::err_name;

namespace {

constexpr int kMetadataTimeoutMs = 10000;
constexpr auto kDestructorFlush = std::chrono::seconds(10);

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

struct NewTopicDeleter {
  void operator()(rd_kafka_NewTopic_t* t) const { rd_kafka_NewTopic_destroy(t); }
};
struct AdminOptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};

std::set<std::string> existing_topics(rd_kafka_t* rk, const KafkaConfig& config, const std::vector<std::string>& wanted) {
  const rd_kafka_metadata_t* md = nullptr;
  const auto err = rd_kafka_metadata(rk, 1, nullptr, &md, kMetadataTimeoutMs);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error(fmt::format(
        "kafka: cannot read the topic list from brokers {} to check topics {}: {} (is Kafka running and "
        "reachable at that address? check kafka.brokers)",
        config.brokers, join(wanted), rd_kafka_err2str(err)));
  }
  std::set<std::string> names;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) names.insert(md->topics[i].topic);
  }
  rd_kafka_metadata_destroy(md);
  return names;
}

}  // namespace

void ensure_topics(const KafkaConfig& config, const std::vector<std::string>& topics, MetricsRegistry& metrics) {
  if (topics.empty()) return;
  auto& created = metrics.counter("kafka_topics_created_total", "Kafka topics created by sluice");
  auto& failed = metrics.counter("kafka_topic_create_errors_total", "Kafka topics sluice could not create");

  auto conf = kafka::make_conf(config.brokers, config.client_id);
  kafka::set_properties(conf.get(), config.producer_properties);  // security settings live there
  auto rk = kafka::make_handle(RD_KAFKA_PRODUCER, std::move(conf), config.brokers);

  // Existing topics are left alone, so a deployment without CREATE permission works once an
  // administrator has created them.
  const auto existing = existing_topics(rk.get(), config, topics);
  std::vector<std::string> missing;
  for (const auto& t : topics) {
    if (!existing.contains(t) && std::find(missing.begin(), missing.end(), t) == missing.end()) missing.push_back(t);
  }
  if (missing.empty()) return;

  const auto advice = fmt::format(
      "create it with {} partitions and replication factor {} (kafka-topics.sh --create), or let sluice "
      "create it: allow CreateTopics for this client, and keep kafka.topic_replication at most the number "
      "of brokers",
      config.topic_partitions, config.topic_replication);

  std::vector<std::unique_ptr<rd_kafka_NewTopic_t, NewTopicDeleter>> owned;
  std::vector<rd_kafka_NewTopic_t*> requests;
  for (const auto& name : missing) {
    char err[512];
    owned.emplace_back(
        rd_kafka_NewTopic_new(name.c_str(), config.topic_partitions, config.topic_replication, err, sizeof err));
    if (!owned.back()) {
      throw std::runtime_error(fmt::format("kafka: invalid settings for topic {} on brokers {}: {}; {}", name,
                                           config.brokers, err, advice));
    }
    requests.push_back(owned.back().get());
  }
  std::unique_ptr<rd_kafka_AdminOptions_t, AdminOptionsDeleter> options(
      rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS));
  char err[512];
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), config.admin_timeout_ms, err, sizeof err);
  rd_kafka_AdminOptions_set_request_timeout(options.get(), config.admin_timeout_ms, err, sizeof err);
  kafka::QueuePtr queue(rd_kafka_queue_new(rk.get()));
  rd_kafka_CreateTopics(rk.get(), requests.data(), requests.size(), options.get(), queue.get());

  std::unique_ptr<rd_kafka_event_t, EventDeleter> event(rd_kafka_queue_poll(queue.get(), config.admin_timeout_ms * 2));
  if (!event) {
    failed.inc(missing.size());
    throw std::runtime_error(fmt::format("kafka: no answer from brokers {} while creating topic(s) {}; {}",
                                         config.brokers, join(missing), advice));
  }
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    failed.inc(missing.size());
    throw std::runtime_error(fmt::format("kafka: brokers {} did not create topic(s) {}: {}; {}", config.brokers,
                                         join(missing), rd_kafka_event_error_string(event.get()), advice));
  }
  const auto* result = rd_kafka_event_CreateTopics_result(event.get());
  size_t count = 0;
  const auto* const* results = rd_kafka_CreateTopics_result_topics(result, &count);
  std::string first_error;
  for (size_t i = 0; i < count; ++i) {
    const auto topic_err = rd_kafka_topic_result_error(results[i]);
    const std::string name = rd_kafka_topic_result_name(results[i]);
    if (topic_err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      created.inc();
      spdlog::info("kafka: created topic {} on brokers {} ({} partitions, replication {})", name, config.brokers,
                   config.topic_partitions, config.topic_replication);
    } else if (topic_err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      failed.inc();
      const char* why = rd_kafka_topic_result_error_string(results[i]);
      if (first_error.empty()) {
        first_error = fmt::format("kafka: cannot create topic {} on brokers {}: {} ({}); {}", name, config.brokers,
                                  err_name(topic_err), why != nullptr ? why : rd_kafka_err2str(topic_err), advice);
      }
    }
  }
  if (!first_error.empty()) throw std::runtime_error(first_error);
}

// ---------------------------------------------------------------------------------------------------------------

class KafkaProducer::Impl {
 public:
  Impl(const KafkaConfig& config, MetricsRegistry& metrics)
      : brokers_(config.brokers),
        metrics_(metrics),
        delivered_(metrics.counter("kafka_produced_total", "Messages the Kafka brokers acknowledged")),
        delivered_bytes_(
            metrics.counter("kafka_produced_bytes_total", "Key and value bytes the Kafka brokers acknowledged")),
        queue_full_(metrics.counter("kafka_produce_queue_full_total",
                                    "Messages refused because the producer queue was at its bound")),
        transmitted_(metrics.counter("kafka_produce_transmitted_total",
                                     "Messages sent to brokers, retransmissions included (from client statistics)")) {
    auto conf = kafka::make_conf(config.brokers, config.client_id);
    rd_kafka_conf_t* c = conf.get();
    kafka::set_property(c, "enable.idempotence", "true");
    kafka::set_property(c, "acks", "all");
    kafka::set_property(c, "partitioner", "murmur2_random");
    kafka::set_property(c, "linger.ms", std::to_string(config.linger_ms));
    kafka::set_property(c, "queue.buffering.max.kbytes",
                        std::to_string(std::clamp<std::size_t>(config.producer_queue_bytes / 1024, 1, 2147483647)));
    // The byte bound above is the one that matters; the message-count bound is lifted out of its way.
    kafka::set_property(c, "queue.buffering.max.messages", "2147483647");
    kafka::set_property(c, "batch.num.messages", "100000");
    // Counted before compression: with compressed log chunks, 1 MB batches leave most of a request
    // empty (a single file's partition then tops out near 200 MB/s). The compressed set is still capped
    // by message.max.bytes, which is what the brokers check.
    kafka::set_property(c, "batch.size", "8000000");
    kafka::set_property(c, "statistics.interval.ms", "5000");
    kafka::set_properties(c, config.producer_properties);
    rd_kafka_conf_set_opaque(c, this);
    rd_kafka_conf_set_dr_msg_cb(c, &Impl::on_delivery);
    rd_kafka_conf_set_error_cb(c, &Impl::on_error);
    rd_kafka_conf_set_stats_cb(c, &Impl::on_stats);
    rk_ = kafka::make_handle(RD_KAFKA_PRODUCER, std::move(conf), config.brokers);
    client_labels_ = {{"client", rd_kafka_name(rk_.get())}};
    metrics_.gauge_callback("kafka_produce_in_flight", "Messages produced and not yet acknowledged by Kafka",
                            client_labels_,
                            [this] { return static_cast<double>(in_flight()); });
    poller_ = std::thread([this] {
      name_this_thread("kafka-produce");
      while (!stopping_.load(std::memory_order_acquire)) rd_kafka_poll(rk_.get(), 100);
    });
  }

  ~Impl() {
    const auto left = flush(std::chrono::duration_cast<std::chrono::milliseconds>(kDestructorFlush));
    if (left > 0) {
      spdlog::error(
          "kafka producer: {} message(s) to brokers {} were not delivered within {}s of shutdown and are dropped "
          "(see sluice_kafka_produce_failed_total; check that the brokers are up)",
          left, brokers_, kDestructorFlush.count());
      // Purged messages get a delivery report with an error, so the drop is counted by reason.
      rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      rd_kafka_flush(rk_.get(), 1000);
    }
    stopping_.store(true, std::memory_order_release);
    poller_.join();
    metrics_.remove_callbacks("kafka_produce_in_flight", client_labels_);
    {
      std::unique_lock lock(topics_mutex_);
      topics_.clear();
    }
    rk_.reset();
  }

  // What a tracked message carries to its delivery report.
  struct Tracking {
    DeliveryListener* listener;
    std::uint64_t cookie;
  };

  ProduceStatus produce(std::string_view topic, std::span<const std::byte> key, std::span<const std::byte> value,
                        DeliveryListener* listener = nullptr, std::uint64_t cookie = 0) {
    rd_kafka_topic_t* rkt = topic_handle(topic);
    std::unique_ptr<Tracking> tracking;
    if (listener != nullptr) tracking = std::make_unique<Tracking>(Tracking{listener, cookie});
    // F_COPY: the caller's buffers are only valid during this call.
    const auto err = rd_kafka_producev(
        rk_.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(const_cast<std::byte*>(key.data()), key.size()),
        RD_KAFKA_V_VALUE(const_cast<std::byte*>(value.data()), value.size()),
        RD_KAFKA_V_OPAQUE(tracking.get()), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      // The delivery report owns it from here on.
      static_cast<void>(tracking.release());
      accepted_.value.fetch_add(1, std::memory_order_relaxed);
      return ProduceStatus::ok;
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      queue_full_.inc();
      return ProduceStatus::full;
    }
    error_counter("kafka_produce_refused_total", "Messages librdkafka refused to queue, by error", err).inc();
    if (auto held = refused_log_.allow()) {
      spdlog::error("kafka producer: message for topic {} refused: {} ({} similar message(s) suppressed); check "
                    "that the topic exists and the message is below message.max.bytes",
                    topic, rd_kafka_err2str(err), *held);
    }
    return ProduceStatus::error;
  }

  std::size_t flush(std::chrono::milliseconds timeout) {
    rd_kafka_flush(rk_.get(), static_cast<int>(timeout.count()));
    return in_flight();
  }

  std::size_t in_flight() const {
    // Reports first, so that a report counted before its message is never seen as negative.
    const auto reported = reported_.value.load(std::memory_order_acquire);
    const auto accepted = accepted_.value.load(std::memory_order_acquire);
    return accepted > reported ? static_cast<std::size_t>(accepted - reported) : 0;
  }

 private:
  rd_kafka_topic_t* topic_handle(std::string_view name) {
    {
      std::shared_lock lock(topics_mutex_);
      if (auto it = topics_.find(name); it != topics_.end()) return it->second.get();
    }
    std::unique_lock lock(topics_mutex_);
    if (auto it = topics_.find(name); it != topics_.end()) return it->second.get();
    std::string key(name);
    kafka::TopicPtr rkt(rd_kafka_topic_new(rk_.get(), key.c_str(), nullptr));
    auto* raw = rkt.get();
    topics_.emplace(std::move(key), std::move(rkt));
    return raw;
  }

  Counter& error_counter(const char* name, const char* help, rd_kafka_resp_err_t err) {
    std::lock_guard lock(error_counters_mutex_);
    auto& slot = error_counters_[{name, err}];
    if (slot == nullptr) slot = &metrics_.counter(name, help, {{"error", err_name(err)}});
    return *slot;
  }

  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    if (message->_private != nullptr) {
      std::unique_ptr<Tracking> tracking(static_cast<Tracking*>(message->_private));
      tracking->listener->on_delivered(tracking->cookie, message->err == RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      self->delivered_.inc();
      self->delivered_bytes_.inc(message->len + message->key_len);
    } else {
      self->error_counter("kafka_produce_failed_total", "Messages Kafka did not acknowledge, by error", message->err)
          .inc();
      if (auto held = self->failed_log_.allow()) {
        spdlog::error("kafka producer: delivery to topic {} on brokers {} failed: {} ({} similar failure(s) "
                      "suppressed); the message is dropped",
                      rd_kafka_topic_name(message->rkt), self->brokers_, rd_kafka_err2str(message->err), *held);
      }
    }
    // Last: flush() and the destructor rely on the report being fully accounted for.
    self->reported_.value.fetch_add(1, std::memory_order_release);
  }

  static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    const auto code = static_cast<rd_kafka_resp_err_t>(err);
    self->error_counter("kafka_client_errors_total", "Errors reported by the Kafka client, by error", code).inc();
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
      char why[512];
      const auto fatal = rd_kafka_fatal_error(rk, why, sizeof why);
      spdlog::critical("kafka producer: fatal error {} ({}); nothing more can be produced, restart sluice",
                       err_name(fatal), why);
      return;
    }
    if (auto held = self->client_log_.allow()) {
      spdlog::warn("kafka producer: {} ({}) with brokers {} ({} similar error(s) suppressed); librdkafka retries "
                   "by itself, messages wait in the queue meanwhile",
                   reason, err_name(code), self->brokers_, *held);
    }
  }

  static int on_stats(rd_kafka_t*, char* json, size_t len, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    const auto doc = nlohmann::json::parse(json, json + len, nullptr, false);
    if (doc.is_discarded() || !doc.contains("txmsgs")) return 0;
    const auto total = doc["txmsgs"].get<std::uint64_t>();
    // flush() serves callbacks too, so two threads may report statistics; count each message once.
    std::lock_guard lock(self->stats_mutex_);
    if (total > self->transmitted_seen_) {
      self->transmitted_.inc(total - self->transmitted_seen_);
      self->transmitted_seen_ = total;
    }
    return 0;  // librdkafka frees the JSON
  }

  std::string brokers_;
  MetricsRegistry& metrics_;
  Labels client_labels_;
  Counter& delivered_;
  Counter& delivered_bytes_;
  Counter& queue_full_;
  Counter& transmitted_;
  std::mutex stats_mutex_;
  std::uint64_t transmitted_seen_ = 0;
  // Counted apart, on their own cache lines: producing threads and the delivery-report thread would
  // otherwise bounce one line between cores for every message.
  struct alignas(64) PaddedCount {
    std::atomic<std::uint64_t> value{0};
  };
  PaddedCount accepted_;
  PaddedCount reported_;
  kafka::LogRateLimiter refused_log_, failed_log_, client_log_;
  std::mutex error_counters_mutex_;
  std::map<std::pair<std::string, rd_kafka_resp_err_t>, Counter*> error_counters_;
  std::shared_mutex topics_mutex_;
  std::map<std::string, kafka::TopicPtr, std::less<>> topics_;
  kafka::HandlePtr rk_;
  std::atomic<bool> stopping_{false};
  std::thread poller_;
};

KafkaProducer::KafkaProducer(const KafkaConfig& config, MetricsRegistry& metrics)
    : impl_(std::make_unique<Impl>(config, metrics)) {}

KafkaProducer::~KafkaProducer() = default;

ProduceStatus KafkaProducer::produce(std::string_view topic, std::span<const std::byte> key,
                                     std::span<const std::byte> value) {
  return impl_->produce(topic, key, value);
}

ProduceStatus KafkaProducer::produce_tracked(std::string_view topic, std::span<const std::byte> key,
                                             std::span<const std::byte> value, DeliveryListener& listener,
                                             std::uint64_t cookie) {
  return impl_->produce(topic, key, value, &listener, cookie);
}

std::size_t KafkaProducer::flush(std::chrono::milliseconds timeout) { return impl_->flush(timeout); }

std::size_t KafkaProducer::in_flight() const { return impl_->in_flight(); }

}  // namespace sluice::bus
