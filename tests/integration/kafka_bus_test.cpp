// Kafka bus against librdkafka's mock cluster (3 brokers): order per key, commits with metadata, injected
// produce errors, a full producer queue, interoperability with kcat, topic creation.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <stdexcept>
#include <sstream>
#include <string>

#include "kafka_test_support.hpp"

namespace sluice::bus {
namespace {

using namespace kafka_test;
using sluice::testing::eventually;

TEST(KafkaBus, KeyedMessagesArriveOnceAndInOrderPerKey) {
  MockKafka kafka(3, {{"flows", 8}});
  MetricsRegistry metrics;
  auto config = test_config(kafka, "order");
  constexpr int kMessages = 200'000;
  {
    KafkaProducer producer(config, metrics);
    produce_keyed(producer, "flows", kMessages, 64);
    EXPECT_EQ(producer.flush(60s), 0u);
  }
  EXPECT_EQ(metrics.counter_total("kafka_produced_total"), static_cast<std::uint64_t>(kMessages));
  EXPECT_EQ(metrics.counter_total("kafka_produce_failed_total"), 0u);

  RunningConsumer running(config, "flows", metrics);
  auto& rec = running.recorder();
  ASSERT_TRUE(eventually([&] { return rec.count() >= kMessages; }, 180s)) << rec.count();
  // Everything consumed: the lag of every assigned partition drops to 0; unassigned ones are unknown.
  const auto assigned = rec.assigned();
  ASSERT_EQ(assigned.size(), 8u);
  for (const auto& ref : assigned) {
    EXPECT_TRUE(eventually([&] { return running.consumer().lag(ref) == 0; }, 10s)) << ref.partition;
  }
  EXPECT_EQ(running.consumer().lag({"flows", 99}), -1);
  EXPECT_NE(metrics.render_prometheus().find("sluice_kafka_consumer_lag{"), std::string::npos);
  running.stop();

  const auto seen = rec.seen();
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kMessages));
  EXPECT_EQ(duplicates(seen), 0u);
  EXPECT_EQ(rec.out_of_order(), 0u);
  EXPECT_EQ(rec.malformed(), 0u);
  EXPECT_EQ(rec.failed_commits(), 0);
  // Committed as it went and on the final revoke: the committed offsets cover every message.
  std::int64_t committed = 0;
  for (const auto& [ref, next] : rec.committed()) committed += next;
  EXPECT_EQ(committed, kMessages);
  EXPECT_EQ(metrics.counter_total("kafka_consumed_total"), static_cast<std::uint64_t>(kMessages));
  EXPECT_EQ(metrics.counter_value("kafka_commits_total", {{"result", "failed"}}), 0u);
  EXPECT_GE(metrics.counter_value("kafka_commits_total", {{"result", "ok"}}), 8u);
  EXPECT_EQ(metrics.render_prometheus().find("sluice_kafka_consumer_lag{"), std::string::npos);
}

TEST(KafkaBus, CommitMetadataIsReturnedToTheNextOwner) {
  MockKafka kafka(3, {{"meta", 1}});
  MetricsRegistry metrics;
  auto config = test_config(kafka, "meta-group");
  {
    KafkaProducer producer(config, metrics);
    produce_keyed(producer, "meta", 100, 4);
    ASSERT_EQ(producer.flush(30s), 0u);
  }
  const PartitionRef ref{"meta", 0};
  const std::string metadata = "pending=40-59,60-99";
  {
    auto handler = std::make_unique<CountingHandler>();
    auto* h = handler.get();
    RunningConsumer first(config, "meta", metrics, std::move(handler));
    ASSERT_TRUE(eventually([&] { return h->count() >= 100; }, 60s));
    // A fresh group starts at the beginning, with no metadata.
    const auto fresh = h->assigned();
    ASSERT_EQ(fresh.size(), 1u);
    EXPECT_EQ(fresh[0].ref, ref);
    EXPECT_EQ(fresh[0].next_offset, 0);
    EXPECT_EQ(fresh[0].metadata, "");
    EXPECT_TRUE(first.consumer().commit(ref, 40, metadata));
    first.stop();
    // Out of the group, a commit fails and says so.
    EXPECT_FALSE(first.consumer().commit(ref, 41, {}));
    EXPECT_EQ(metrics.counter_value("kafka_commits_total", {{"result", "failed"}}), 1u);
  }
  auto handler = std::make_unique<CountingHandler>();
  auto* h = handler.get();
  RunningConsumer second(config, "meta", metrics, std::move(handler));
  ASSERT_TRUE(eventually([&] { return h->count() >= 60; }, 60s));
  second.stop();
  ASSERT_EQ(h->assignments.size(), 1u);
  EXPECT_EQ(h->assignments[0].next_offset, 40);
  EXPECT_EQ(h->assignments[0].metadata, metadata);
  ASSERT_EQ(h->offsets.size(), 60u);
  for (std::size_t i = 0; i < h->offsets.size(); ++i) EXPECT_EQ(h->offsets[i], 40 + static_cast<std::int64_t>(i));
}

TEST(KafkaBus, IdempotentProducerSurvivesInjectedProduceErrors) {
  MockKafka kafka(3, {{"retry", 8}});
  MetricsRegistry metrics;
  auto config = test_config(kafka, "retry-group");
  // The mock accepts a sequence that follows a failed one (a real broker refuses it) and then acks the
  // retried batch as a duplicate without storing it: one request in flight keeps that off the wire.
  config.producer_properties["max.in.flight.requests.per.connection"] = "1";
  EXPECT_EQ(kafka.command("produce_errors 10 NOT_LEADER_FOR_PARTITION"), "OK");
  // Only errors a broker returns before appending: an injected REQUEST_TIMED_OUT leaves the mock with
  // nothing stored while it still accepts the next sequence, which a real broker refuses; the
  // idempotent producer then rightly counts the batch as stored (as a real leader would have it).
  EXPECT_EQ(kafka.command("produce_errors 10 NOT_ENOUGH_REPLICAS"), "OK");
  constexpr int kMessages = 20'000;
  {
    KafkaProducer producer(config, metrics);
    produce_keyed(producer, "retry", kMessages / 2, 64);
    // Errors arriving in the middle of the stream too, not only on the first requests.
    EXPECT_EQ(kafka.command("produce_errors 5 NOT_LEADER_FOR_PARTITION"), "OK");
    produce_keyed(producer, "retry", kMessages / 2, 64, kMessages / 2);
    ASSERT_EQ(producer.flush(60s), 0u);
    // Retries happened: more messages went to the brokers than were produced.
    EXPECT_TRUE(eventually([&] { return metrics.counter_total("kafka_produce_transmitted_total") > kMessages; }, 10s))
        << metrics.counter_total("kafka_produce_transmitted_total");
  }
  EXPECT_EQ(metrics.counter_total("kafka_produce_failed_total"), 0u);
  EXPECT_EQ(metrics.counter_total("kafka_produced_total"), static_cast<std::uint64_t>(kMessages));

  RunningConsumer running(config, "retry", metrics);
  auto& rec = running.recorder();
  ASSERT_TRUE(eventually([&] { return rec.count() >= kMessages; }, 60s));
  running.stop();
  EXPECT_EQ(rec.count(), static_cast<std::size_t>(kMessages));
  EXPECT_EQ(duplicates(rec.seen()), 0u);
  EXPECT_EQ(rec.out_of_order(), 0u);
}

TEST(KafkaBus, KcatReadsWhatWasProduced) {
  MockKafka kafka(3, {{"interop", 4}});
  MetricsRegistry metrics;
  auto config = test_config(kafka, "interop-group");
  constexpr int kMessages = 5000;
  {
    KafkaProducer producer(config, metrics);
    produce_keyed(producer, "interop", kMessages, 64);
    ASSERT_EQ(producer.flush(30s), 0u);
  }
  const auto r = sluice::testing::run_command(
      {"kcat", "-b", kafka.bootstrap(), "-C", "-t", "interop", "-e", "-q", "-f", "%k\n"}, 60s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, int> per_key;
  std::istringstream in(r.out);
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) ++per_key[line];
  EXPECT_EQ(lines, kMessages);
  ASSERT_EQ(per_key.size(), 64u);
  for (int k = 0; k < 64; ++k) {
    EXPECT_EQ(per_key[key_name(k)], kMessages / 64 + (k < kMessages % 64 ? 1 : 0)) << k;
  }
}

TEST(KafkaBus, ProduceReportsFullWhileBrokersAreDownAndDeliversAfter) {
  MockKafka kafka(3, {{"full", 8}});
  MetricsRegistry metrics;
  auto config = test_config(kafka, "full-group");
  config.producer_queue_bytes = 64 * 1024;
  KafkaProducer producer(config, metrics);
  // Learn the partition leaders first, so the broker outage below is what holds the messages back.
  const std::string warmup = "warmup";
  ASSERT_EQ(producer.produce("full", bytes(warmup), bytes(warmup)), ProduceStatus::ok);
  ASSERT_EQ(producer.flush(30s), 0u);
  for (int b = 1; b <= 3; ++b) ASSERT_EQ(kafka.command("broker_down " + std::to_string(b)), "OK");

  const std::string value(100, 'v');
  int accepted = 0;
  int full = 0;
  for (int i = 0; i < 10'000 && full < 10; ++i) {
    const auto key = key_name(i % 64);
    const auto status = producer.produce("full", bytes(key), bytes(value));
    ASSERT_NE(status, ProduceStatus::error);
    status == ProduceStatus::ok ? ++accepted : ++full;
  }
  EXPECT_EQ(full, 10);
  EXPECT_LT(accepted, 1000);  // 64 KiB of ~110-byte messages
  EXPECT_EQ(metrics.counter_total("kafka_produce_queue_full_total"), 10u);

  for (int b = 1; b <= 3; ++b) ASSERT_EQ(kafka.command("broker_up " + std::to_string(b)), "OK");
  EXPECT_EQ(producer.flush(60s), 0u);
  EXPECT_EQ(metrics.counter_total("kafka_produced_total"), static_cast<std::uint64_t>(accepted + 1));
  EXPECT_EQ(metrics.counter_total("kafka_produce_failed_total"), 0u);
}

TEST(KafkaBus, EnsureTopicsAcceptsExistingTopicsAndExplainsFailures) {
  MockKafka kafka(3, {{"present", 2}});
  MetricsRegistry metrics;
  auto config = test_config(kafka, "admin-group");
  config.admin_timeout_ms = 2000;
  EXPECT_NO_THROW(ensure_topics(config, {"present"}, metrics));
  EXPECT_EQ(metrics.counter_total("kafka_topic_create_errors_total"), 0u);
  // The mock cluster does not implement CreateTopics, so a missing topic exercises the failure path.
  try {
    ensure_topics(config, {"present", "absent"}, metrics);
    FAIL() << "ensure_topics accepted a topic it could not create";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("absent"), std::string::npos) << what;
    EXPECT_NE(what.find(kafka.bootstrap()), std::string::npos) << what;
    EXPECT_NE(what.find("create it"), std::string::npos) << what;
  }
  EXPECT_EQ(metrics.counter_total("kafka_topic_create_errors_total"), 1u);
}

TEST(KafkaBus, ProducerShutdownDropsUndeliverableMessagesAndCountsThem) {
  MockKafka kafka(3, {{"gone", 8}});
  MetricsRegistry metrics;
  auto config = test_config(kafka, "gone-group");
  const auto started = std::chrono::steady_clock::now();
  {
    KafkaProducer producer(config, metrics);
    const std::string warmup = "warmup";
    ASSERT_EQ(producer.produce("gone", bytes(warmup), bytes(warmup)), ProduceStatus::ok);
    ASSERT_EQ(producer.flush(30s), 0u);
    for (int b = 1; b <= 3; ++b) ASSERT_EQ(kafka.command("broker_down " + std::to_string(b)), "OK");
    produce_keyed(producer, "gone", 100, 8);
    EXPECT_EQ(producer.in_flight(), 100u);
  }
  // The destructor waited its bounded time, then dropped and counted what it could not deliver.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s);
  EXPECT_EQ(metrics.counter_total("kafka_produced_total"), 1u);
  EXPECT_EQ(metrics.counter_total("kafka_produce_failed_total"), 100u);
}

TEST(KafkaBus, RejectedPropertiesAreNamedAtStartup) {
  KafkaConfig config;
  config.brokers = "127.0.0.1:1";
  config.producer_properties = {{"no.such.property", "1"}};
  MetricsRegistry metrics;
  try {
    KafkaProducer producer(config, metrics);
    FAIL() << "the producer accepted an unknown property";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no.such.property"), std::string::npos) << e.what();
  }
  config.producer_properties.clear();
  config.consumer_properties = {{"session.timeout.ms", "not-a-number"}};
  try {
    KafkaConsumer consumer(config, {"flows"}, metrics);
    FAIL() << "the consumer accepted an invalid property";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("session.timeout.ms"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sluice::bus
