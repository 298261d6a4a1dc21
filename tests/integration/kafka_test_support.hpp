// Helpers for the Kafka bus integration tests: keyed messages, recording handlers, a consumer on its thread.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bus/kafka_bus.hpp"
#include "fixtures/mock_kafka.hpp"
#include "fixtures/process.hpp"

namespace sluice::bus::kafka_test {

using namespace std::chrono_literals;
using sluice::testing::MockKafka;

inline std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

inline std::string key_name(int k) { return "key-" + std::to_string(k); }

inline KafkaConfig test_config(const MockKafka& kafka, const std::string& group) {
  KafkaConfig c;
  c.brokers = kafka.bootstrap();
  c.consumer_group = group;
  // The mock cluster waits session.timeout.ms - 1s for members to (re)join: keep rebalances short.
  // (No low topic.metadata.refresh.interval.ms: a refresh landing with a JoinGroup response makes
  // librdkafka 2.0.2 join again, one more round each time.)
  c.session_timeout_ms = 4000;
  c.consumer_properties = {{"heartbeat.interval.ms", "200"}};
  c.producer_properties = {{"statistics.interval.ms", "100"}};
  return c;
}

// Produces `count` messages over `keys` keys; the value is "<key>:<sequence within the key>".
inline void produce_keyed(KafkaProducer& producer, const std::string& topic, int count, int keys, int first = 0) {
  std::string key;
  std::string value;
  for (int i = first; i < first + count; ++i) {
    key = key_name(i % keys);
    value = key + ":" + std::to_string(i / keys);
    while (producer.produce(topic, bytes(key), bytes(value)) == ProduceStatus::full) producer.flush(100ms);
  }
}

struct Seen {
  PartitionRef ref;
  std::int64_t offset = 0;
};

// Records what it is given, checks per-key order, and commits what it processed: every `commit_every`
// messages (from on_idle) and always for partitions being revoked.
class RecordingHandler final : public ConsumerHandler {
 public:
  explicit RecordingHandler(std::size_t commit_every = 5000) : commit_every_(commit_every) {}
  void attach(Consumer& consumer) { consumer_ = &consumer; }

  void on_assigned(const std::vector<Assignment>& parts) override {
    std::lock_guard lock(mutex_);
    for (const auto& a : parts) {
      assigned_.insert(a.ref);
      processed_[a.ref] = a.next_offset;
      committed_[a.ref] = a.next_offset;  // where the group had committed it
      assignments_.push_back(a);
    }
  }

  void on_revoked(const std::vector<PartitionRef>& parts) override {
    commit(parts, true);
    std::lock_guard lock(mutex_);
    for (const auto& p : parts) assigned_.erase(p);
    ++revocations_;
  }

  void on_message(const Message& m) override {
    const std::string_view value(reinterpret_cast<const char*>(m.value.data()), m.value.size());
    const std::string_view key(reinterpret_cast<const char*>(m.key.data()), m.key.size());
    const auto colon = value.find(':');
    std::uint64_t seq = 0;
    std::from_chars(value.data() + colon + 1, value.data() + value.size(), seq);
    std::lock_guard lock(mutex_);
    const PartitionRef ref{std::string(m.topic), m.partition};
    seen_.push_back({ref, m.offset});
    processed_[ref] = m.offset + 1;
    if (colon == std::string_view::npos || value.substr(0, colon) != key) ++malformed_;
    auto [it, fresh] = last_seq_.try_emplace(std::string(key), seq);
    if (!fresh) {
      if (seq <= it->second) ++out_of_order_;
      it->second = seq;
    }
    ++since_commit_;
  }

  void on_idle() override {
    std::vector<PartitionRef> parts;
    {
      std::lock_guard lock(mutex_);
      if (!periodic_ || since_commit_ < commit_every_) return;
      since_commit_ = 0;
      parts.assign(assigned_.begin(), assigned_.end());
    }
    commit(parts, false);
  }

  // Off: commits only when partitions are revoked.
  void set_periodic_commits(bool on) {
    std::lock_guard lock(mutex_);
    periodic_ = on;
  }
  // Everything processed on the partitions it holds is committed.
  bool all_committed() const {
    std::lock_guard lock(mutex_);
    for (const auto& ref : assigned_) {
      const auto c = committed_.find(ref);
      if (c == committed_.end() || c->second != processed_.at(ref)) return false;
    }
    return true;
  }
  std::size_t count() const {
    std::lock_guard lock(mutex_);
    return seen_.size();
  }
  std::vector<Seen> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }
  std::set<PartitionRef> assigned() const {
    std::lock_guard lock(mutex_);
    return assigned_;
  }
  std::vector<Assignment> assignments() const {
    std::lock_guard lock(mutex_);
    return assignments_;
  }
  std::map<PartitionRef, std::int64_t> committed() const {
    std::lock_guard lock(mutex_);
    return committed_;
  }
  std::size_t out_of_order() const {
    std::lock_guard lock(mutex_);
    return out_of_order_;
  }
  std::size_t malformed() const {
    std::lock_guard lock(mutex_);
    return malformed_;
  }
  int revocations() const {
    std::lock_guard lock(mutex_);
    return revocations_;
  }
  int failed_commits() const {
    std::lock_guard lock(mutex_);
    return failed_commits_;
  }
  int revoke_commits() const {
    std::lock_guard lock(mutex_);
    return revoke_commits_;
  }

 private:
  void commit(const std::vector<PartitionRef>& parts, bool revoking) {
    for (const auto& p : parts) {
      std::int64_t next = 0;
      {
        std::lock_guard lock(mutex_);
        const auto it = processed_.find(p);
        if (it == processed_.end()) continue;
        const auto done = committed_.find(p);
        if (done != committed_.end() && done->second == it->second) continue;
        next = it->second;
      }
      const bool ok = consumer_->commit(p, next, {});
      std::lock_guard lock(mutex_);
      if (ok) {
        committed_[p] = next;
        if (revoking) ++revoke_commits_;
      } else {
        ++failed_commits_;
      }
    }
  }

  const std::size_t commit_every_;
  Consumer* consumer_ = nullptr;
  mutable std::mutex mutex_;
  std::set<PartitionRef> assigned_;
  std::vector<Assignment> assignments_;
  std::map<PartitionRef, std::int64_t> processed_;  // next offset to process
  std::map<PartitionRef, std::int64_t> committed_;
  std::vector<Seen> seen_;
  std::map<std::string, std::uint64_t> last_seq_;
  std::size_t out_of_order_ = 0;
  std::size_t malformed_ = 0;
  std::size_t since_commit_ = 0;
  bool periodic_ = true;
  int revocations_ = 0;
  int revoke_commits_ = 0;
  int failed_commits_ = 0;
};

// A consumer running its poll loop on its own thread; stopped and joined on destruction.
class RunningConsumer {
 public:
  RunningConsumer(const KafkaConfig& config, const std::string& topic, MetricsRegistry& metrics,
                  std::unique_ptr<ConsumerHandler> handler = std::make_unique<RecordingHandler>())
      : consumer_(config, {topic}, metrics), handler_(std::move(handler)) {
    if (auto* rec = dynamic_cast<RecordingHandler*>(handler_.get())) rec->attach(consumer_);
    thread_ = std::thread([this] {
      try {
        consumer_.run(*handler_);
      } catch (...) {
        error_ = std::current_exception();
      }
    });
  }
  ~RunningConsumer() {
    consumer_.stop();
    if (thread_.joinable()) thread_.join();
  }

  void stop() {
    consumer_.stop();
    if (thread_.joinable()) thread_.join();
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }
  KafkaConsumer& consumer() { return consumer_; }
  RecordingHandler& recorder() { return dynamic_cast<RecordingHandler&>(*handler_); }

 private:
  KafkaConsumer consumer_;
  std::unique_ptr<ConsumerHandler> handler_;
  std::thread thread_;
  std::exception_ptr error_;
};

inline std::size_t duplicates(const std::vector<Seen>& seen) {
  std::set<std::pair<PartitionRef, std::int64_t>> unique;
  for (const auto& s : seen) unique.emplace(s.ref, s.offset);
  return seen.size() - unique.size();
}

// Consumes without committing by itself; the test commits through the consumer.
class CountingHandler final : public ConsumerHandler {
 public:
  void on_assigned(const std::vector<Assignment>& parts) override {
    std::lock_guard lock(mutex_);
    assignments.insert(assignments.end(), parts.begin(), parts.end());
  }
  void on_revoked(const std::vector<PartitionRef>&) override {}
  void on_message(const Message& m) override {
    std::lock_guard lock(mutex_);
    offsets.push_back(m.offset);
  }
  void on_idle() override {}
  std::size_t count() {
    std::lock_guard lock(mutex_);
    return offsets.size();
  }
  std::vector<Assignment> assigned() {
    std::lock_guard lock(mutex_);
    return assignments;
  }

  std::mutex mutex_;
  std::vector<Assignment> assignments;
  std::vector<std::int64_t> offsets;
};

}  // namespace sluice::bus::kafka_test
