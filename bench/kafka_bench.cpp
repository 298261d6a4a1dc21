// Kafka bus throughput against librdkafka's mock cluster (3 brokers, 8 partitions, its own process):
// produce with delivery confirmed, and consume with commits. SLUICE_BENCH_KAFKA_MESSAGES sets the count.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bus/kafka_bus.hpp"
#include "fixtures/mock_kafka.hpp"

namespace {

using namespace std::chrono_literals;
using sluice::MetricsRegistry;
using sluice::bus::KafkaConfig;
using sluice::bus::KafkaConsumer;
using sluice::bus::KafkaProducer;
using sluice::bus::ProduceStatus;
using sluice::testing::MockKafka;

constexpr int kPartitions = 8;
constexpr std::size_t kValueBytes = 100;
constexpr int kKeys = 1024;

std::size_t message_count() {
  const char* env = std::getenv("SLUICE_BENCH_KAFKA_MESSAGES");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : 1'000'000;
}

KafkaConfig bench_config(const MockKafka& kafka, const std::string& group) {
  KafkaConfig c;
  c.brokers = kafka.bootstrap();
  c.consumer_group = group;
  c.session_timeout_ms = 4000;  // the mock cluster waits session - 1s for joins
  c.consumer_properties = {{"heartbeat.interval.ms", "200"}};
  return c;
}

// Produces `n` keyed 100-byte messages; returns how many were accepted (all, unless the bus refuses).
std::size_t produce(KafkaProducer& producer, const std::string& topic, std::size_t n) {
  const std::string value(kValueBytes, 'v');
  std::vector<std::string> keys;  // formatted once, as kcat reads them ready-made from its input
  for (int k = 0; k < kKeys; ++k) keys.push_back(fmt::format("key-{:04}", k));
  std::size_t accepted = 0;
  const auto v = std::as_bytes(std::span(value.data(), value.size()));
  for (std::size_t i = 0; i < n; ++i) {
    const auto& key = keys[i % kKeys];
    const auto k = std::as_bytes(std::span(key.data(), key.size()));
    for (;;) {
      const auto status = producer.produce(topic, k, v);
      if (status == ProduceStatus::ok) {
        ++accepted;
        break;
      }
      if (status == ProduceStatus::error) return accepted;
      producer.flush(1ms);  // full: let deliveries drain the queue
    }
  }
  return accepted;
}

void BM_KafkaProduce(benchmark::State& state) {
  const auto n = message_count();
  MockKafka kafka(3);
  MetricsRegistry metrics;
  std::size_t delivered = 0;
  int round = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::string topic = "produce-" + std::to_string(round++);
    kafka.create_topic(topic, kPartitions);
    auto producer = std::make_unique<KafkaProducer>(bench_config(kafka, "bench"), metrics);
    // Connections and metadata are set up before the clock runs.
    const std::string warm = "warm";
    producer->produce(topic, std::as_bytes(std::span(warm)), std::as_bytes(std::span(warm)));
    producer->flush(30s);
    state.ResumeTiming();

    const auto accepted = produce(*producer, topic, n);
    if (producer->flush(120s) != 0 || accepted != n) state.SkipWithError("messages were not delivered");
    delivered += n;

    state.PauseTiming();
    producer.reset();
    state.ResumeTiming();
  }
  state.counters["records"] = benchmark::Counter(static_cast<double>(delivered), benchmark::Counter::kIsRate);
  state.counters["failed"] = static_cast<double>(metrics.counter_total("kafka_produce_failed_total"));
}
// CPU time covers every thread of this process (librdkafka's included), not the mock cluster's.
BENCHMARK(BM_KafkaProduce)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime()->MeasureProcessCPUTime();

// Counts messages and commits each partition's progress every idle tick, like the outlet does.
class CommittingHandler final : public sluice::bus::ConsumerHandler {
 public:
  CommittingHandler(std::size_t expected, sluice::bus::Consumer& consumer) : expected_(expected), consumer_(consumer) {}

  void on_assigned(const std::vector<sluice::bus::Assignment>& parts) override {
    if (!started_) start_ = std::chrono::steady_clock::now();
    started_ = true;
    for (const auto& p : parts) next_[p.ref] = {p.next_offset, p.next_offset};
  }
  void on_revoked(const std::vector<sluice::bus::PartitionRef>& parts) override {
    for (const auto& p : parts) commit(p);
  }
  void on_message(const sluice::bus::Message& m) override {
    ++count_;
    auto& slot = next_[{std::string(m.topic), m.partition}];
    slot.first = m.offset + 1;
    if (count_ == expected_) {
      for (const auto& [ref, progress] : next_) commit(ref);
      elapsed_ = std::chrono::steady_clock::now() - start_;
      done_.store(true);
      consumer_.stop();
    }
  }
  void on_idle() override {
    for (const auto& [ref, progress] : next_) commit(ref);
  }

  bool done() const { return done_.load(); }
  std::chrono::duration<double> elapsed() const { return elapsed_; }
  std::size_t commits() const { return commits_; }

 private:
  void commit(const sluice::bus::PartitionRef& ref) {
    auto& [processed, committed] = next_[ref];
    if (processed == committed) return;
    if (consumer_.commit(ref, processed, {})) {
      committed = processed;
      ++commits_;
    }
  }

  const std::size_t expected_;
  sluice::bus::Consumer& consumer_;
  std::map<sluice::bus::PartitionRef, std::pair<std::int64_t, std::int64_t>> next_;  // processed, committed
  std::size_t count_ = 0;
  std::size_t commits_ = 0;
  bool started_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::duration<double> elapsed_{};
  std::atomic<bool> done_{false};
};

void BM_KafkaConsume(benchmark::State& state) {
  // The mock keeps at most 5 MB per partition; 200 000 messages of this size stay within it.
  const auto n = std::min<std::size_t>(message_count(), 200'000);
  MockKafka kafka(3, {{"consume", kPartitions}});
  MetricsRegistry metrics;
  {
    KafkaProducer producer(bench_config(kafka, "bench"), metrics);
    if (produce(producer, "consume", n) != n || producer.flush(120s) != 0) {
      state.SkipWithError("cannot fill the topic");
      return;
    }
  }
  std::size_t consumed = 0;
  int round = 0;
  for (auto _ : state) {
    // A fresh group each round reads the whole topic; the clock runs from the assignment (the group
    // join is the mock's fixed delay) to the last message processed and committed.
    KafkaConsumer consumer(bench_config(kafka, "bench-" + std::to_string(round++)), {"consume"}, metrics);
    CommittingHandler handler(n, consumer);
    std::thread runner([&] { consumer.run(handler); });
    sluice::testing::eventually([&] { return handler.done(); }, 300s);
    consumer.stop();
    runner.join();
    if (!handler.done()) state.SkipWithError("not everything was consumed within 300s");
    state.SetIterationTime(handler.elapsed().count());
    consumed += n;
  }
  state.counters["records"] = benchmark::Counter(static_cast<double>(consumed), benchmark::Counter::kIsRate);
  state.counters["commits_failed"] =
      static_cast<double>(metrics.counter_value("kafka_commits_total", {{"result", "failed"}}));
}
BENCHMARK(BM_KafkaConsume)->Unit(benchmark::kMillisecond)->Iterations(3)->UseManualTime()->MeasureProcessCPUTime();

}  // namespace

BENCHMARK_MAIN();
