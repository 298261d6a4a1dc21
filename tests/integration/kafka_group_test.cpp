// Kafka consumer groups against librdkafka's mock cluster: members split partitions and hand them over
// at the offsets committed in on_revoked, without loss or duplicates.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>

#include "kafka_test_support.hpp"

namespace sluice::bus {
namespace {

using namespace kafka_test;
using sluice::testing::eventually;

bool split_between(const RecordingHandler& a, const RecordingHandler& b, std::size_t partitions) {
  const auto pa = a.assigned();
  const auto pb = b.assigned();
  std::set<PartitionRef> all(pa.begin(), pa.end());
  all.insert(pb.begin(), pb.end());
  return !pa.empty() && !pb.empty() && all.size() == partitions && pa.size() + pb.size() == partitions;
}

// Assignments from the `first`-th on, of partitions `from` held last, resume where `from` committed them.
void expect_resumed_at_commits(const RecordingHandler& from, const std::set<PartitionRef>& held,
                               const std::vector<Assignment>& assignments, std::size_t first = 0) {
  const auto committed = from.committed();
  for (std::size_t i = first; i < assignments.size(); ++i) {
    const auto& as = assignments[i];
    if (!held.contains(as.ref)) continue;
    const auto it = committed.find(as.ref);
    if (it != committed.end()) {
      EXPECT_EQ(as.next_offset, it->second) << as.ref.topic << "[" << as.ref.partition << "]";
    }
  }
}

// Eager (range) assignment. The mock cluster answers REBALANCE_IN_PROGRESS to commits while a join is
// under way (Apache Kafka accepts them from the current generation), so members commit periodically
// and the join happens with nothing outstanding; the commit-in-on_revoked hand-over is exercised when a
// member leaves, which revokes before the group starts rebalancing.
TEST(KafkaBus, GroupMembersSplitPartitionsAndHandOverWithoutDuplicates) {
  MockKafka kafka(3, {{"split", 8}});
  MetricsRegistry producer_metrics, metrics_a, metrics_b;
  auto config = test_config(kafka, "split-group");
  KafkaProducer producer(config, producer_metrics);
  produce_keyed(producer, "split", 10'000, 64);
  ASSERT_EQ(producer.flush(30s), 0u);

  RunningConsumer a(config, "split", metrics_a, std::make_unique<RecordingHandler>(1));
  auto& ra = a.recorder();
  ASSERT_TRUE(eventually([&] { return ra.count() >= 10'000 && ra.all_committed(); }, 60s)) << ra.count();
  EXPECT_EQ(ra.assigned().size(), 8u);

  // A second member joins: the partitions are split, and it resumes where the first one committed.
  const auto held_by_a = ra.assigned();
  RunningConsumer b(config, "split", metrics_b, std::make_unique<RecordingHandler>(1));
  auto& rb = b.recorder();
  ASSERT_TRUE(eventually([&] { return split_between(ra, rb, 8); }, 60s));
  EXPECT_GE(ra.revocations(), 1);
  expect_resumed_at_commits(ra, held_by_a, rb.assignments());

  produce_keyed(producer, "split", 20'000, 64, 10'000);
  ASSERT_EQ(producer.flush(30s), 0u);
  ASSERT_TRUE(eventually([&] { return ra.count() + rb.count() >= 30'000 && ra.all_committed() && rb.all_committed(); },
                         60s))
      << ra.count() + rb.count();
  EXPECT_GT(rb.count(), 0u);

  // The first member now holds uncommitted work when it leaves: its on_revoked commits it, and the
  // other member takes its partitions over exactly there.
  ra.set_periodic_commits(false);
  produce_keyed(producer, "split", 10'000, 64, 30'000);
  ASSERT_EQ(producer.flush(30s), 0u);
  ASSERT_TRUE(eventually([&] { return ra.count() + rb.count() >= 40'000 && rb.all_committed(); }, 60s));
  EXPECT_FALSE(ra.all_committed());
  const auto assignments_before = rb.assignments().size();
  const auto held_by_a_last = ra.assigned();
  a.stop();
  EXPECT_GE(ra.revoke_commits(), 1);
  EXPECT_TRUE(ra.all_committed());
  ASSERT_TRUE(eventually([&] { return rb.assigned().size() == 8; }, 60s));
  expect_resumed_at_commits(ra, held_by_a_last, rb.assignments(), assignments_before);

  produce_keyed(producer, "split", 5'000, 64, 40'000);
  ASSERT_EQ(producer.flush(30s), 0u);
  constexpr std::size_t kTotal = 45'000;
  ASSERT_TRUE(eventually([&] { return ra.count() + rb.count() >= kTotal; }, 60s));
  b.stop();

  auto seen = ra.seen();
  const auto seen_b = rb.seen();
  seen.insert(seen.end(), seen_b.begin(), seen_b.end());
  EXPECT_EQ(seen.size(), kTotal);
  EXPECT_EQ(duplicates(seen), 0u);
  EXPECT_EQ(ra.failed_commits(), 0);
  EXPECT_EQ(rb.failed_commits(), 0);
  EXPECT_EQ(ra.out_of_order() + rb.out_of_order(), 0u);
  EXPECT_GE(metrics_b.counter_total("kafka_rebalances_total"), 3u);
}

// Cooperative assignment (an operator's override): partitions moving to a joining member are revoked
// after the group settled, so on_revoked commits succeed even while messages keep flowing.
TEST(KafkaBus, CooperativeRebalanceCommitsRevokedPartitionsWhileMessagesFlow) {
  MockKafka kafka(3, {{"coop", 8}});
  MetricsRegistry producer_metrics, metrics_a, metrics_b;
  auto config = test_config(kafka, "coop-group");
  config.consumer_properties["partition.assignment.strategy"] = "cooperative-sticky";
  KafkaProducer producer(config, producer_metrics);
  produce_keyed(producer, "coop", 10'000, 64);
  ASSERT_EQ(producer.flush(30s), 0u);

  // Both commit only in on_revoked: a hand-over without that commit would duplicate.
  RunningConsumer a(config, "coop", metrics_a, std::make_unique<RecordingHandler>(SIZE_MAX));
  auto& ra = a.recorder();
  ASSERT_TRUE(eventually([&] { return ra.count() >= 10'000; }, 60s));
  const auto held_by_a = ra.assigned();
  ASSERT_EQ(held_by_a.size(), 8u);

  // Messages keep arriving during the join, and for a while after the partitions were split.
  auto b = std::make_unique<RunningConsumer>(config, "coop", metrics_b, std::make_unique<RecordingHandler>(SIZE_MAX));
  auto& rb = b->recorder();
  int produced = 10'000;
  int rounds_after_split = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (rounds_after_split < 10 && std::chrono::steady_clock::now() < deadline) {
    produce_keyed(producer, "coop", 500, 64, produced);
    produced += 500;
    if (split_between(ra, rb, 8)) ++rounds_after_split;
    std::this_thread::sleep_for(100ms);  // pacing, not waiting for a condition
  }
  ASSERT_EQ(producer.flush(30s), 0u);
  ASSERT_EQ(rounds_after_split, 10) << "the partitions were not split within 60s";
  EXPECT_GE(ra.revoke_commits(), 1);
  expect_resumed_at_commits(ra, held_by_a, rb.assignments());
  const auto total = static_cast<std::size_t>(produced);
  ASSERT_TRUE(eventually([&] { return ra.count() + rb.count() >= total; }, 60s)) << ra.count() + rb.count();

  a.stop();
  ASSERT_TRUE(eventually([&] { return rb.assigned().size() == 8; }, 60s));
  b->stop();
  auto seen = ra.seen();
  const auto seen_b = rb.seen();
  EXPECT_FALSE(seen_b.empty());
  seen.insert(seen.end(), seen_b.begin(), seen_b.end());
  EXPECT_EQ(seen.size(), total);
  EXPECT_EQ(duplicates(seen), 0u);
  EXPECT_EQ(ra.failed_commits(), 0);
  EXPECT_EQ(rb.failed_commits(), 0);
  EXPECT_EQ(ra.out_of_order() + rb.out_of_order(), 0u);
}

}  // namespace
}  // namespace sluice::bus
