// The memory bus reports a tracked message delivered only once its consumer committed past it,
// because in memory nothing survives a crash until the sink has stored it.
#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "bus/memory_bus.hpp"

namespace sluice::bus {
namespace {

class RecordingListener final : public DeliveryListener {
 public:
  void on_delivered(std::uint64_t cookie, bool delivered) override {
    std::lock_guard lock(mutex);
    cookies.push_back(cookie);
    all_delivered = all_delivered && delivered;
  }
  std::vector<std::uint64_t> seen() {
    std::lock_guard lock(mutex);
    return cookies;
  }
  std::mutex mutex;
  std::vector<std::uint64_t> cookies;
  bool all_delivered = true;
};

TEST(MemoryBusDelivery, TrackedMessagesAreDeliveredWhenTheConsumerCommitsPastThem) {
  MetricsRegistry metrics;
  MemoryBus bus({1, 1 << 20}, metrics);
  RecordingListener listener;
  const std::byte value[] = {std::byte{1}};
  for (std::uint64_t i = 0; i < 5; ++i) {
    ASSERT_EQ(bus.producer().produce_tracked("sluice-logs", {}, value, listener, 100 + i), ProduceStatus::ok);
  }
  ASSERT_EQ(bus.producer().produce("sluice-logs", {}, value), ProduceStatus::ok);  // untracked, offset 5
  EXPECT_TRUE(listener.seen().empty());

  auto consumer = bus.make_consumer(0, 1, {"sluice-logs"});
  ASSERT_TRUE(consumer->commit({"sluice-logs", 0}, 2, ""));
  EXPECT_EQ(listener.seen(), (std::vector<std::uint64_t>{100, 101}));
  ASSERT_TRUE(consumer->commit({"sluice-logs", 0}, 1, ""));  // going back changes nothing
  EXPECT_EQ(listener.seen().size(), 2u);
  ASSERT_TRUE(consumer->commit({"sluice-logs", 0}, 6, ""));
  EXPECT_EQ(listener.seen(), (std::vector<std::uint64_t>{100, 101, 102, 103, 104}));
  EXPECT_TRUE(listener.all_delivered);
}

}  // namespace
}  // namespace sluice::bus
