// Kafka bus: the consumer-group member that feeds the outlet and commits what its sinks acknowledged.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <span>
#include <stdexcept>
#include <thread>

#include "bus/kafka_bus.hpp"
#include "bus/kafka_client.hpp"

namespace sluice::bus {

using kafka::err_name;

namespace {

constexpr int kPollMs = 100;
constexpr auto kIdleTick = std::chrono::milliseconds(kPollMs);
constexpr int kOffsetQueryTimeoutMs = 10000;

struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};

// Messages taken off the consumer queue at once.
constexpr std::size_t kRunSize = 64;

struct CommitResult {
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;  // the request's
  std::map<PartitionRef, rd_kafka_resp_err_t> partitions;  // each partition's
  // A partition's outcome: its own error, else the request's.
  rd_kafka_resp_err_t of(const PartitionRef& ref) const {
    const auto it = partitions.find(ref);
    return it != partitions.end() && it->second != RD_KAFKA_RESP_ERR_NO_ERROR ? it->second : err;
  }
};

// Served by rd_kafka_commit_queue() itself.
void on_commit_result(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets, void* opaque) {
  auto* result = static_cast<CommitResult*>(opaque);
  result->err = err;
  for (int i = 0; offsets != nullptr && i < offsets->cnt; ++i) {
    result->partitions[PartitionRef{offsets->elems[i].topic, offsets->elems[i].partition}] = offsets->elems[i].err;
  }
}

std::string describe(const rd_kafka_topic_partition_list_t* parts) {
  std::string out;
  for (int i = 0; i < parts->cnt; ++i) {
    if (!out.empty()) out += ' ';
    out += fmt::format("{}[{}]", parts->elems[i].topic, parts->elems[i].partition);
  }
  return out;
}

}  // namespace

class KafkaConsumer::Impl {
 public:
  Impl(const KafkaConfig& config, std::vector<std::string> topics, MetricsRegistry& metrics)
      : brokers_(config.brokers),
        group_(config.consumer_group),
        topics_(std::move(topics)),
        metrics_(metrics),
        consumed_(metrics.counter("kafka_consumed_total", "Messages read from Kafka")),
        consumed_bytes_(metrics.counter("kafka_consumed_bytes_total", "Key and value bytes read from Kafka")),
        commits_ok_(metrics.counter("kafka_commits_total", "Offset commits to Kafka, by result", {{"result", "ok"}})),
        commits_failed_(
            metrics.counter("kafka_commits_total", "Offset commits to Kafka, by result", {{"result", "failed"}})),
        rebalances_(metrics.counter("kafka_rebalances_total", "Partition assignments and revocations received")),
        partition_eof_(metrics.counter("kafka_partition_eof_total", "End-of-partition events (skipped)")),
        revoked_dropped_(metrics.counter("kafka_revoked_messages_dropped_total",
                                         "Messages fetched for partitions revoked before they were delivered (their next owner reads them)")) {
    if (topics_.empty()) throw std::runtime_error("kafka consumer: no topic to consume; name at least one");
    auto conf = kafka::make_conf(config.brokers, config.client_id);
    rd_kafka_conf_t* c = conf.get();
    kafka::set_property(c, "group.id", config.consumer_group);
    // Offsets move only when the outlet commits what its sinks acknowledged.
    kafka::set_property(c, "enable.auto.commit", "false");
    kafka::set_property(c, "enable.auto.offset.store", "false");
    kafka::set_property(c, "auto.offset.reset", "earliest");
    kafka::set_property(c, "partition.assignment.strategy", "range,roundrobin");
    kafka::set_property(c, "session.timeout.ms", std::to_string(config.session_timeout_ms));
    kafka::set_property(c, "heartbeat.interval.ms", std::to_string(std::clamp(config.session_timeout_ms / 3, 1, 3000)));
    // librdkafka 2.0 stops fetching once this many messages wait in the local queue and looks again
    // only about a second later, which caps a backlog drain near 100 000 messages/s with the default.
    // The queue stays bounded in bytes by queued.max.messages.kbytes (64 MiB by default).
    kafka::set_property(c, "queued.min.messages", "1000000");
    kafka::set_properties(c, config.consumer_properties);
    rd_kafka_conf_set_opaque(c, this);
    rd_kafka_conf_set_rebalance_cb(c, &Impl::on_rebalance);
    rd_kafka_conf_set_error_cb(c, &Impl::on_error);
    rk_ = kafka::make_handle(RD_KAFKA_CONSUMER, std::move(conf), config.brokers);
    // Client errors and logs are then served by rd_kafka_consumer_poll() on the run() thread.
    rd_kafka_poll_set_consumer(rk_.get());
    client_name_ = rd_kafka_name(rk_.get());
  }

  ~Impl() {
    close();
    std::map<PartitionRef, std::int64_t> left;
    {
      std::lock_guard lock(assigned_mutex_);
      left.swap(assigned_);
    }
    for (const auto& [ref, start] : left) metrics_.remove_callbacks("kafka_consumer_lag", lag_labels(ref));
  }

  void run(ConsumerHandler& handler) {
    if (ran_.exchange(true)) throw std::logic_error("KafkaConsumer::run() called twice");
    handler_ = &handler;
    subscribe();
    auto last_idle = std::chrono::steady_clock::now();
    // Messages are taken off the consumer queue in runs: one lock of the queue and one reading of the
    // clock (librdkafka's, for max.poll.interval.ms) per run instead of per message.
    const std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue(rd_kafka_queue_get_consumer(rk_.get()));
    if (!queue) throw std::logic_error("kafka consumer: no consumer group queue (group.id is always set)");
    std::array<rd_kafka_message_t*, kRunSize> run{};
    try {
      while (!stop_.load(std::memory_order_acquire)) {
        // Without waiting first: a wait for a full run would hold back the messages already there.
        const auto revocations_before = revocations_.load(std::memory_order_relaxed);
        const ssize_t taken = rd_kafka_consume_batch_queue(queue.get(), 0, run.data(), run.size());
        const std::span<rd_kafka_message_t*> messages(run.data(), taken > 0 ? static_cast<std::size_t>(taken) : 0);
        if (handler_error_) {  // thrown by the handler inside a rebalance callback
          for (auto* m : messages) rd_kafka_message_destroy(m);
          break;
        }
        if (messages.empty()) {
          // Nothing queued: wait for the next message (or the idle tick).
          std::unique_ptr<rd_kafka_message_t, MessageDeleter> message(rd_kafka_consumer_poll(rk_.get(), kPollMs));
          if (handler_error_) break;
          if (message) deliver(*message, handler);
        } else {
          // A revocation served while the run was gathered leaves the messages taken before it in
          // the run: those of partitions no longer held go, as they do one by one (their next owner
          // reads them from the offset committed in on_revoked).
          const bool revoked = revocations_.load(std::memory_order_relaxed) != revocations_before;
          deliver_run(revoked ? drop_unassigned(messages) : messages, handler);
        }
        consumed_.flush();
        consumed_bytes_.flush();
        const auto now = std::chrono::steady_clock::now();
        if (messages.empty() || now - last_idle >= kIdleTick) {
          last_idle = now;
          handler.on_idle();
        }
      }
    } catch (...) {
      handler_error_ = std::current_exception();
    }
    // Give the handler its chance to commit before the partitions go to another member.
    if (!handler_error_) revoke_all();
    close();
    handler_ = nullptr;
    if (handler_error_) std::rethrow_exception(handler_error_);
  }

  void stop() { stop_.store(true, std::memory_order_release); }

  bool commit(const PartitionRef& ref, std::int64_t next_offset, std::string_view metadata) {
    const Consumer::OffsetCommit one[] = {{ref, next_offset, std::string(metadata)}};
    return commit_all(one).front();
  }

  std::vector<bool> commit_all(std::span<const Consumer::OffsetCommit> commits) {
    std::vector<bool> ok(commits.size(), false);
    if (commits.empty()) return ok;
    kafka::PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(commits.size())));
    for (const auto& c : commits) {
      auto* p = rd_kafka_topic_partition_list_add(list.get(), c.partition.topic.c_str(), c.partition.partition);
      p->offset = c.next_offset;
      if (!c.metadata.empty()) {
        // librdkafka releases the metadata with free() when the list is destroyed.
        p->metadata = std::malloc(c.metadata.size());
        if (p->metadata == nullptr) throw std::bad_alloc();
        std::memcpy(p->metadata, c.metadata.data(), c.metadata.size());
        p->metadata_size = c.metadata.size();
      }
    }
    auto result = commit_once(list.get());
    // A cooperative revoke can reach this member while another one has not yet synced: the coordinator
    // then refuses commits as "rebalance in progress" (Kafka does so until the group is stable), which
    // does not depend on this callback returning. A short wait lets the hand-over be committed, so the
    // next owner does not replay what was already processed.
    const auto rebalancing = [&] {
      return std::any_of(commits.begin(), commits.end(), [&](const auto& c) {
        return result.of(c.partition) == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS;
      });
    };
    auto wait = std::chrono::milliseconds(50);
    for (auto waited = std::chrono::milliseconds(0);
         rebalancing() && in_cooperative_revoke_.load(std::memory_order_relaxed) && waited < std::chrono::seconds(3);
         waited += wait, wait = std::min(wait * 2, std::chrono::milliseconds(500))) {
      std::this_thread::sleep_for(wait);
      result = commit_once(list.get());
    }
    for (std::size_t i = 0; i < commits.size(); ++i) {
      const auto& c = commits[i];
      const auto err = result.of(c.partition);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        commits_ok_.inc();
        ok[i] = true;
        continue;
      }
      commits_failed_.inc();
      commit_error_counter(err).inc();
      if (auto held = commit_log_.allow()) {
        spdlog::warn("kafka consumer: commit of {}[{}] at offset {} for group {} on brokers {} failed: {} ({} similar "
                     "failure(s) suppressed); it is retried with the next commit, and if the partition moves, the "
                     "new owner replays from the last committed offset",
                     c.partition.topic, c.partition.partition, c.next_offset, group_, brokers_, rd_kafka_err2str(err),
                     *held);
      }
    }
    return ok;
  }

  std::int64_t lag(const PartitionRef& ref) const {
    std::int64_t start = 0;
    {
      std::lock_guard lock(assigned_mutex_);
      const auto it = assigned_.find(ref);
      if (it == assigned_.end()) return -1;
      start = it->second;
    }
    std::int64_t low = 0;
    std::int64_t high = 0;
    if (rd_kafka_get_watermark_offsets(rk_.get(), ref.topic.c_str(), ref.partition, &low, &high) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        high < 0) {
      return -1;
    }
    kafka::PartitionListPtr list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), ref.topic.c_str(), ref.partition);
    std::int64_t position = start;  // nothing consumed yet since the assignment
    if (rd_kafka_position(rk_.get(), list.get()) == RD_KAFKA_RESP_ERR_NO_ERROR && list->elems[0].offset >= 0) {
      position = list->elems[0].offset;
    }
    return std::max<std::int64_t>(0, high - position);
  }

 private:
  void subscribe() {
    kafka::PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(topics_.size())));
    for (const auto& t : topics_) rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
    if (const auto err = rd_kafka_subscribe(rk_.get(), list.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error(fmt::format("kafka consumer: cannot subscribe group {} to {} on brokers {}: {}",
                                           group_, describe(list.get()), brokers_, rd_kafka_err2str(err)));
    }
    spdlog::info("kafka consumer {}: joining group {} for {} on brokers {}", client_name_, group_,
                 describe(list.get()), brokers_);
  }

  std::span<rd_kafka_message_t*> drop_unassigned(std::span<rd_kafka_message_t*> messages) {
    std::size_t kept = 0;
    std::lock_guard lock(assigned_mutex_);
    for (auto* m : messages) {
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR || m->rkt == nullptr ||
          assigned_.contains(PartitionRef{rd_kafka_topic_name(m->rkt), m->partition})) {
        messages[kept++] = m;
      } else {
        rd_kafka_message_destroy(m);
        revoked_dropped_.inc();
      }
    }
    return messages.first(kept);
  }

  // Every message of the run is destroyed, also when the handler throws.
  void deliver_run(std::span<rd_kafka_message_t*> messages, ConsumerHandler& handler) {
    std::size_t next = 0;
    try {
      for (; next < messages.size(); ++next) {
        std::unique_ptr<rd_kafka_message_t, MessageDeleter> message(messages[next]);
        deliver(*message, handler);
      }
    } catch (...) {
      for (++next; next < messages.size(); ++next) rd_kafka_message_destroy(messages[next]);
      throw;
    }
  }

  void deliver(const rd_kafka_message_t& m, ConsumerHandler& handler) {
    if (m.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        partition_eof_.inc();
        return;
      }
      error_counter(m.err).inc();
      if (auto held = message_log_.allow()) {
        spdlog::warn("kafka consumer: error reading {}[{}] in group {} from brokers {}: {} ({} similar error(s) "
                     "suppressed); librdkafka retries by itself",
                     m.rkt != nullptr ? rd_kafka_topic_name(m.rkt) : "-", m.partition, group_, brokers_,
                     rd_kafka_message_errstr(&m), *held);
      }
      return;
    }
    consumed_.inc();
    consumed_bytes_.inc(m.len + m.key_len);  // tallies: published after each run of messages
    Message msg;
    msg.topic = rd_kafka_topic_name(m.rkt);
    msg.partition = m.partition;
    msg.offset = m.offset;
    msg.key = {static_cast<const std::byte*>(m.key), m.key_len};
    msg.value = {static_cast<const std::byte*>(m.payload), m.len};
    handler.on_message(msg);
  }

  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                           void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    self->rebalances_.inc();
    const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      self->assign(parts, cooperative);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      if (rd_kafka_assignment_lost(rk)) {
        spdlog::warn("kafka consumer {}: partitions {} of group {} were lost (session timed out?); commits for "
                     "them will fail and the new owner replays from the last committed offset",
                     self->client_name_, describe(parts), self->group_);
      }
      self->revoke(parts, cooperative);
    } else {
      spdlog::error("kafka consumer {}: rebalance of group {} failed: {}; releasing all partitions",
                    self->client_name_, self->group_, rd_kafka_err2str(err));
      self->revoke_all();
    }
  }

  static void on_error(rd_kafka_t*, int err, const char* reason, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    const auto code = static_cast<rd_kafka_resp_err_t>(err);
    self->metrics_.counter("kafka_client_errors_total", "Errors reported by the Kafka client, by error",
                           {{"error", err_name(code)}})
        .inc();
    if (auto held = self->client_log_.allow()) {
      spdlog::warn("kafka consumer {}: {} ({}) with brokers {} ({} similar error(s) suppressed); librdkafka "
                   "retries by itself",
                   self->client_name_, reason, err_name(code), self->brokers_, *held);
    }
  }

  // Fills `parts` with where each partition resumes: its committed offset, else its beginning.
  bool resolve_start_offsets(rd_kafka_topic_partition_list_t* parts, std::vector<Assignment>& out) {
    for (;;) {
      auto err = rd_kafka_committed(rk_.get(), parts, kOffsetQueryTimeoutMs);
      for (int i = 0; i < parts->cnt && err == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) err = parts->elems[i].err;
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      spdlog::warn("kafka consumer {}: cannot read the committed offsets of group {} for {} from brokers {}: {}; "
                   "retrying (nothing is consumed until they are known)",
                   client_name_, group_, describe(parts), brokers_, rd_kafka_err2str(err));
      if (stop_.load(std::memory_order_acquire)) return false;
    }
    out.clear();
    for (int i = 0; i < parts->cnt; ++i) {
      auto& p = parts->elems[i];
      Assignment a;
      a.ref = PartitionRef{p.topic, p.partition};
      if (p.metadata != nullptr && p.metadata_size > 0) {
        a.metadata.assign(static_cast<const char*>(p.metadata), p.metadata_size);
      }
      if (p.offset < 0) {
        std::int64_t low = 0;
        std::int64_t high = 0;
        const auto werr =
            rd_kafka_query_watermark_offsets(rk_.get(), p.topic, p.partition, &low, &high, kOffsetQueryTimeoutMs);
        if (werr == RD_KAFKA_RESP_ERR_NO_ERROR) {
          p.offset = low;
        } else {
          // The handler sees 0, and offsets below the real beginning never arrive: harmless.
          spdlog::warn("kafka consumer {}: cannot read where {}[{}] begins: {}; reading it from its beginning",
                       client_name_, p.topic, p.partition, rd_kafka_err2str(werr));
          p.offset = RD_KAFKA_OFFSET_BEGINNING;
          low = 0;
        }
        a.next_offset = low;
      } else {
        a.next_offset = p.offset;
      }
      out.push_back(std::move(a));
    }
    return true;
  }

  void assign(rd_kafka_topic_partition_list_t* parts, bool cooperative) {
    std::vector<Assignment> assignments;
    if (!resolve_start_offsets(parts, assignments)) return;  // stopping: leave them unassigned
    if (handler_ != nullptr && !handler_error_) {
      try {
        handler_->on_assigned(assignments);
      } catch (...) {
        handler_error_ = std::current_exception();
        stop_.store(true, std::memory_order_release);
        return;
      }
    }
    {
      std::lock_guard lock(assigned_mutex_);
      for (const auto& a : assignments) assigned_[a.ref] = a.next_offset;
    }
    // Outside assigned_mutex_: rendering the metrics calls lag(), which takes it.
    for (const auto& a : assignments) {
      metrics_.gauge_callback("kafka_consumer_lag", "Messages behind the end of an assigned partition",
                              lag_labels(a.ref), [this, ref = a.ref] { return static_cast<double>(lag(ref)); });
    }
    apply(parts, cooperative, true);
    std::string where;
    for (const auto& a : assignments) where += fmt::format(" {}[{}]@{}", a.ref.topic, a.ref.partition, a.next_offset);
    spdlog::info("kafka consumer {}: group {} assigned{}", client_name_, group_, where);
  }

  CommitResult commit_once(rd_kafka_topic_partition_list_t* list) {
    CommitResult result;
    if (const auto err = rd_kafka_commit_queue(rk_.get(), list, nullptr, &on_commit_result, &result);
        err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      result.err = err;
    }
    return result;
  }

  void revoke(rd_kafka_topic_partition_list_t* parts, bool cooperative) {
    std::vector<PartitionRef> refs;
    {
      std::lock_guard lock(assigned_mutex_);
      for (int i = 0; i < parts->cnt; ++i) {
        PartitionRef ref{parts->elems[i].topic, parts->elems[i].partition};
        if (assigned_.contains(ref)) refs.push_back(std::move(ref));
      }
    }
    if (!refs.empty() && handler_ != nullptr && !handler_error_) {
      in_cooperative_revoke_.store(cooperative, std::memory_order_relaxed);
      try {
        handler_->on_revoked(refs);
        in_cooperative_revoke_.store(false, std::memory_order_relaxed);
      } catch (...) {
        in_cooperative_revoke_.store(false, std::memory_order_relaxed);
        handler_error_ = std::current_exception();
        stop_.store(true, std::memory_order_release);
      }
    }
    for (const auto& ref : refs) metrics_.remove_callbacks("kafka_consumer_lag", lag_labels(ref));
    {
      std::lock_guard lock(assigned_mutex_);
      for (const auto& ref : refs) assigned_.erase(ref);
    }
    revocations_.fetch_add(1, std::memory_order_relaxed);
    apply(parts, cooperative, false);
    if (!refs.empty()) spdlog::info("kafka consumer {}: group {} revoked {}", client_name_, group_, describe(parts));
  }

  // Revokes everything this member holds (shutdown, failed rebalance).
  void revoke_all() {
    kafka::PartitionListPtr list(rd_kafka_topic_partition_list_new(8));
    {
      std::lock_guard lock(assigned_mutex_);
      for (const auto& [ref, start] : assigned_) {
        rd_kafka_topic_partition_list_add(list.get(), ref.topic.c_str(), ref.partition);
      }
    }
    const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk_.get()), "COOPERATIVE") == 0;
    revoke(list.get(), cooperative);
  }

  void apply(rd_kafka_topic_partition_list_t* parts, bool cooperative, bool add) {
    if (cooperative) {
      rd_kafka_error_t* error =
          add ? rd_kafka_incremental_assign(rk_.get(), parts) : rd_kafka_incremental_unassign(rk_.get(), parts);
      if (error != nullptr) {
        spdlog::error("kafka consumer {}: cannot {} {}: {}", client_name_, add ? "assign" : "unassign",
                      describe(parts), rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
      }
      return;
    }
    const auto err = rd_kafka_assign(rk_.get(), add ? parts : nullptr);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::error("kafka consumer {}: cannot {} {}: {}", client_name_, add ? "assign" : "unassign", describe(parts),
                    rd_kafka_err2str(err));
    }
  }

  void close() {
    if (closed_ || !rk_) return;
    closed_ = true;
    // Leaves the group so the partitions move at once instead of after the session timeout.
    if (const auto err = rd_kafka_consumer_close(rk_.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("kafka consumer {}: leaving group {} failed: {}; its partitions move after session.timeout.ms",
                   client_name_, group_, rd_kafka_err2str(err));
    }
  }

  Labels lag_labels(const PartitionRef& ref) const {
    return {{"client", client_name_}, {"group", group_}, {"topic", ref.topic},
            {"partition", std::to_string(ref.partition)}};
  }

  Counter& error_counter(rd_kafka_resp_err_t err) {
    return metrics_.counter("kafka_consume_errors_total", "Errors while reading from Kafka, by error",
                            {{"error", err_name(err)}});
  }
  Counter& commit_error_counter(rd_kafka_resp_err_t err) {
    return metrics_.counter("kafka_commit_errors_total", "Offset commits Kafka refused or that failed, by error",
                            {{"error", err_name(err)}});
  }

  std::string brokers_;
  std::string group_;
  std::vector<std::string> topics_;
  MetricsRegistry& metrics_;
  std::atomic<bool> in_cooperative_revoke_{false};  // a cooperative revoke's handler is running
  std::atomic<std::uint64_t> revocations_{0};  // revoke() calls (rebalance callbacks, on the polling thread)
  CounterTally consumed_;
  CounterTally consumed_bytes_;
  Counter& commits_ok_;
  Counter& commits_failed_;
  Counter& rebalances_;
  Counter& partition_eof_;
  Counter& revoked_dropped_;
  kafka::LogRateLimiter message_log_, client_log_, commit_log_;
  std::string client_name_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ran_{false};
  bool closed_ = false;  // only touched by the run() thread, then the destructor
  ConsumerHandler* handler_ = nullptr;
  std::exception_ptr handler_error_;
  mutable std::mutex assigned_mutex_;
  std::map<PartitionRef, std::int64_t> assigned_;  // partition -> offset it was assigned at
  kafka::HandlePtr rk_;
};

KafkaConsumer::KafkaConsumer(const KafkaConfig& config, std::vector<std::string> topics, MetricsRegistry& metrics)
    : impl_(std::make_unique<Impl>(config, std::move(topics), metrics)) {}

KafkaConsumer::~KafkaConsumer() = default;

void KafkaConsumer::run(ConsumerHandler& handler) { impl_->run(handler); }
void KafkaConsumer::stop() { impl_->stop(); }
bool KafkaConsumer::commit(const PartitionRef& partition, std::int64_t next_offset, std::string_view metadata) {
  return impl_->commit(partition, next_offset, metadata);
}
std::vector<bool> KafkaConsumer::commit_all(std::span<const OffsetCommit> commits) { return impl_->commit_all(commits); }
std::int64_t KafkaConsumer::lag(const PartitionRef& partition) const { return impl_->lag(partition); }

}  // namespace sluice::bus
