// The consumer job's promises, on the real memory bus: batches follow offset ranges, commits follow
// acknowledgements, replays rebuild the same batches, and nothing is lost or doubled.
#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>

#include "bus/memory_bus.hpp"
#include "core/native_block.hpp"
#include "fixtures/process.hpp"
#include "pipeline/batch_sink.hpp"
#include "pipeline/consumer_job.hpp"

namespace sluice::pipeline {
namespace {

using namespace std::chrono_literals;

// Rows are the message values (8-byte numbers), so the store can check exactly what arrived.
class NumberBuilder final : public BatchBuilder {
 public:
  // "Native" lets a coalescing sink concatenate the bodies, which stay a plain run of numbers.
  explicit NumberBuilder(std::string format = "Numbers") : format_(std::move(format)) {}
  void add(const bus::Message& m) override {
    std::uint64_t v = 0;
    std::memcpy(&v, m.value.data(), sizeof v);
    values_.push_back(v);
  }
  std::uint64_t rows() const override { return values_.size(); }
  std::uint64_t bytes() const override { return values_.size() * 8; }
  sinks::InsertRequest take() override {
    sinks::InsertRequest r;
    r.table = "numbers";
    r.format = format_;
    r.rows = values_.size();
    r.body.assign(reinterpret_cast<const char*>(values_.data()), values_.size() * 8);
    values_.clear();
    return r;
  }

 private:
  std::string format_;
  std::vector<std::uint64_t> values_;
};

// Records what a store would receive, deduplicating by token as ClickHouse does; can be told to fail.
class RecordingStore final : public sinks::Store {
 public:
  sinks::QueryResult query(std::string_view, std::string_view) override { return {}; }
  void insert(const sinks::InsertRequest& r) override {
    if (failures_left.load() > 0) {
      --failures_left;
      throw sinks::StoreError("injected: server unavailable", true);
    }
    std::lock_guard lock(mutex);
    tokens.push_back(r.dedup_token);
    if (!seen_tokens.insert(r.dedup_token).second) return;
    for (std::size_t i = 0; i < r.body.size(); i += 8) {
      std::uint64_t v;
      std::memcpy(&v, r.body.data() + i, 8);
      values.push_back(v);
    }
  }
  const std::string& database() const override { return db_; }
  ClickHouseDialect dialect() const override { return ClickHouseDialect::modern; }
  bool supports_dedup_token() const override { return true; }
  std::string describe() const override { return "recording"; }

  std::mutex mutex;
  std::vector<std::uint64_t> values;
  std::vector<std::string> tokens;
  std::set<std::string> seen_tokens;
  std::atomic<int> failures_left{0};

 private:
  std::string db_ = "test";
};

void produce_numbers(bus::Producer& p, std::uint64_t from, std::uint64_t to) {
  for (std::uint64_t v = from; v < to; ++v) {
    const std::uint64_t key = v % 16;
    ASSERT_EQ(p.produce("numbers", std::as_bytes(std::span(&key, 1)), std::as_bytes(std::span(&v, 1))),
              bus::ProduceStatus::ok);
  }
}

TEST(ConsumerJob, EveryMessageArrivesOnceAndOffsetsCommitToTheEnd) {
  MetricsRegistry metrics;
  bus::MemoryBus bus({4, 64 << 20}, metrics);
  RecordingStore store;
  store.failures_left = 5;  // the first inserts fail and are retried
  testing::TempDir dir;
  BatchSink sink("numbers", store, {2, 8, 1ms, 5ms, dir / "dead"}, metrics);
  auto consumer = bus.make_consumer(0, 1);
  ConsumerJob job({"numbers", 1000, 1 << 20, 20ms, 10ms, 10s}, *consumer,
                  [](const bus::PartitionRef&) { return std::make_unique<NumberBuilder>(); }, sink, metrics);
  std::thread t([&] { consumer->run(job); });
  produce_numbers(bus.producer(), 0, 50'000);
  ASSERT_TRUE(testing::eventually([&] { std::lock_guard l(store.mutex); return store.values.size() >= 50'000; }, 20s));
  consumer->stop();
  t.join();
  std::lock_guard l(store.mutex);
  std::set<std::uint64_t> unique(store.values.begin(), store.values.end());
  EXPECT_EQ(store.values.size(), 50'000u);
  EXPECT_EQ(unique.size(), 50'000u);
  EXPECT_EQ(*unique.rbegin(), 49'999u);
  EXPECT_EQ(metrics.counter_total("sink_retries_total"), 5u);
  // All four partitions committed to their end.
  for (int p = 0; p < 4; ++p) EXPECT_EQ(consumer->lag({"numbers", p}), 0) << "partition " << p;
  // Tokens name topic, partition and the offset range.
  EXPECT_EQ(store.tokens.front().rfind("numbers/", 0), 0u);
}

TEST(ConsumerJob, WithACoalescingSinkOneDueBatchTakesEveryOpenBatchIntoOneInsert) {
  MetricsRegistry metrics;
  bus::MemoryBus bus({4, 64 << 20}, metrics);
  RecordingStore store;
  testing::TempDir dir;
  BatchSinkPolicy policy{1, 64, 1ms, 5ms, dir / "dead"};
  policy.coalesce = true;
  BatchSink sink("numbers", store, policy, metrics);
  produce_numbers(bus.producer(), 0, 4000);  // 16 keys over 4 partitions, all before the consumer starts
  auto consumer = bus.make_consumer(0, 1);
  ConsumerJob job({"numbers", 1'000'000, 1 << 30, 200ms, 10ms, 10s}, *consumer,
                  [](const bus::PartitionRef&) { return std::make_unique<NumberBuilder>("Native"); }, sink, metrics);
  std::thread t([&] { consumer->run(job); });
  ASSERT_TRUE(testing::eventually([&] { std::lock_guard l(store.mutex); return store.values.size() >= 4000; }, 20s));
  consumer->stop();
  t.join();
  std::lock_guard l(store.mutex);
  EXPECT_EQ(std::set<std::uint64_t>(store.values.begin(), store.values.end()).size(), 4000u);
  EXPECT_EQ(store.values.size(), 4000u);
  // Four partitions' batches, closed in one round, made one insert.
  EXPECT_EQ(store.tokens.size(), 1u);
  EXPECT_EQ(metrics.counter_total("sink_coalesced_batches_total"), 3u);
  for (int p = 0; p < 4; ++p) EXPECT_EQ(consumer->lag({"numbers", p}), 0) << "partition " << p;
}

TEST(ConsumerJob, ReplayPlanRebuildsTheSameBatchBoundaries) {
  MetricsRegistry metrics;
  bus::MemoryBus bus({1, 64 << 20}, metrics);
  RecordingStore store;
  testing::TempDir dir;
  BatchSink sink("numbers", store, {1, 8, 1ms, 5ms, dir / "dead"}, metrics);
  produce_numbers(bus.producer(), 0, 100);
  auto consumer = bus.make_consumer(0, 1);
  // A previous owner sent [0-9] and [10-36] before crashing; batches of 25 rows otherwise.
  ConsumerJob job({"numbers", 25, 1 << 20, 10s, 10ms, 10s}, *consumer,
                  [](const bus::PartitionRef&) { return std::make_unique<NumberBuilder>(); }, sink, metrics);
  bus::Assignment previous;
  previous.ref = bus::PartitionRef{"numbers", 0};
  previous.next_offset = 0;
  previous.metadata = encode_pending_ranges({{0, 9}, {10, 36}});
  job.on_assigned(std::vector<bus::Assignment>{previous});
  // Feed the messages by hand so the assignment above stands.
  for (std::uint64_t v = 0; v < 100; ++v) {
    bus::Message m{"numbers", 0, static_cast<std::int64_t>(v), {}, std::as_bytes(std::span(&v, 1))};
    job.on_message(m);
  }
  job.on_revoked({{"numbers", 0}});
  std::lock_guard l(store.mutex);
  std::vector<std::string> expected{"numbers/0/0-9", "numbers/0/10-36", "numbers/0/37-61", "numbers/0/62-86",
                                    "numbers/0/87-99"};
  EXPECT_EQ(store.tokens, expected);
  EXPECT_EQ(store.values.size(), 100u);
  EXPECT_EQ(metrics.counter_total("outlet_replayed_batches_total"), 2u);
}

TEST(ConsumerJob, CountsOffsetsTheBusRemovedBeforeTheyWereRead) {
  MetricsRegistry metrics;
  bus::MemoryBus bus({1, 64 << 20}, metrics);
  RecordingStore store;
  testing::TempDir dir;
  BatchSink sink("numbers", store, {1, 8, 1ms, 5ms, dir / "dead"}, metrics);
  auto consumer = bus.make_consumer(0, 1);
  ConsumerJob job({"numbers", 1000, 1 << 20, 10s, 10ms, 10s}, *consumer,
                  [](const bus::PartitionRef&) { return std::make_unique<NumberBuilder>(); }, sink, metrics);
  bus::Assignment a;
  a.ref = bus::PartitionRef{"numbers", 0};
  a.next_offset = 100;
  job.on_assigned(std::vector<bus::Assignment>{a});
  // Retention removed 100..104, then an offset reset jumped from 110 to 150.
  std::vector<std::int64_t> offsets;
  for (std::int64_t o = 105; o < 110; ++o) offsets.push_back(o);
  for (std::int64_t o = 150; o < 155; ++o) offsets.push_back(o);
  for (std::int64_t o : offsets) {
    const auto v = static_cast<std::uint64_t>(o);
    job.on_message(bus::Message{"numbers", 0, o, {}, std::as_bytes(std::span(&v, 1))});
  }
  job.on_revoked({{"numbers", 0}});
  EXPECT_EQ(metrics.counter_total("outlet_skipped_offsets_total"), 5u + 40u);
  std::lock_guard l(store.mutex);
  EXPECT_EQ(store.values.size(), 10u);
}

TEST(ConsumerJob, PendingRangesRoundTripThroughCommitMetadata) {
  const auto text = encode_pending_ranges({{5, 9}, {100, 250}});
  EXPECT_EQ(text, "sluice1:5-9,100-250");
  const auto back = decode_pending_ranges(text);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0], (OffsetRange{5, 9}));
  EXPECT_EQ(back[1], (OffsetRange{100, 250}));
  EXPECT_TRUE(decode_pending_ranges("").empty());
  EXPECT_TRUE(decode_pending_ranges("someone-else's metadata").empty());
  EXPECT_EQ(decode_pending_ranges("sluice1:9-5,x-1,3-4").size(), 1u);
}

TEST(ConsumerJob, PermanentErrorsGoToDeadLettersAndAreAcknowledged) {
  MetricsRegistry metrics;
  class Refusing final : public sinks::Store {
   public:
    sinks::QueryResult query(std::string_view, std::string_view) override { return {}; }
    void insert(const sinks::InsertRequest&) override { throw sinks::StoreError("Code: 60. Table test.numbers doesn't exist", false); }
    const std::string& database() const override { return db_; }
    ClickHouseDialect dialect() const override { return ClickHouseDialect::modern; }
    bool supports_dedup_token() const override { return true; }
    std::string describe() const override { return "refusing"; }
    std::string db_ = "test";
  } store;
  testing::TempDir dir;
  bus::MemoryBus bus({1, 64 << 20}, metrics);
  BatchSink sink("numbers", store, {1, 8, 1ms, 5ms, dir / "dead"}, metrics);
  auto consumer = bus.make_consumer(0, 1);
  ConsumerJob job({"numbers", 10, 1 << 20, 20ms, 10ms, 10s}, *consumer,
                  [](const bus::PartitionRef&) { return std::make_unique<NumberBuilder>(); }, sink, metrics);
  std::thread t([&] { consumer->run(job); });
  produce_numbers(bus.producer(), 0, 30);
  ASSERT_TRUE(testing::eventually([&] { return metrics.counter_total("sink_dead_letter_rows_total") == 30; }, 10s));
  consumer->stop();
  t.join();
  EXPECT_EQ(consumer->lag({"numbers", 0}), 0);
  EXPECT_EQ(metrics.counter_total("sink_dead_letter_batches_total"), 3u);
  const auto reason = testing::read_file(dir / "dead/numbers-numbers_0_0-9.reason");
  EXPECT_NE(reason.find("Table test.numbers doesn't exist"), std::string::npos) << reason;
  EXPECT_EQ(testing::read_file(dir / "dead/numbers-numbers_0_0-9.Numbers").size(), 80u);
}

TEST(MemoryBus, AConsumerReadsOnlyTheTopicsItNames) {
  MetricsRegistry metrics;
  bus::MemoryBus bus({2, 1 << 20}, metrics);
  RecordingStore store;
  testing::TempDir dir;
  BatchSink sink("numbers", store, {1, 8, 1ms, 5ms, dir / "dead"}, metrics);
  auto consumer = bus.make_consumer(0, 1, {"numbers"});
  ConsumerJob job({"numbers", 1000, 1 << 20, 20ms, 10ms, 10s}, *consumer,
                  [](const bus::PartitionRef&) { return std::make_unique<NumberBuilder>(); }, sink, metrics);
  for (std::uint64_t v = 0; v < 100; ++v) {
    const std::uint64_t other = 1000 + v;
    ASSERT_EQ(bus.producer().produce("others", {}, std::as_bytes(std::span(&other, 1))), bus::ProduceStatus::ok);
    ASSERT_EQ(bus.producer().produce("numbers", {}, std::as_bytes(std::span(&v, 1))), bus::ProduceStatus::ok);
  }
  std::thread t([&] { consumer->run(job); });
  ASSERT_TRUE(testing::eventually([&] { std::lock_guard l(store.mutex); return store.values.size() >= 100; }, 10s));
  consumer->stop();
  t.join();
  std::lock_guard l(store.mutex);
  EXPECT_EQ(store.values.size(), 100u);
  EXPECT_EQ(*std::max_element(store.values.begin(), store.values.end()), 99u);
}

TEST(MemoryBus, RefusesBeyondItsByteBoundAndCountsTheDrop) {
  MetricsRegistry metrics;
  bus::MemoryBus bus({2, 1000}, metrics);
  std::string value(100, 'x');
  int accepted = 0;
  for (int i = 0; i < 20; ++i) {
    accepted += bus.producer().produce("t", {}, std::as_bytes(std::span(value))) == bus::ProduceStatus::ok;
  }
  EXPECT_EQ(accepted, 10);
  EXPECT_EQ(metrics.counter_total("bus_produce_dropped_total"), 10u);
}

}  // namespace
}  // namespace sluice::pipeline
