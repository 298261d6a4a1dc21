// The spool queue's promises: items reach the destination in order and once; while it is down they go
// to disk (and count as durable), memory stays bounded, a full disk pushes back instead of dropping,
// and a restart sends what the previous run left on disk.
#include "sinks/spool_queue.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include "fixtures/process.hpp"

namespace sluice::sinks {
namespace {

using namespace std::chrono_literals;

// The destination: records what it receives; can be switched down.
struct Destination {
  std::mutex mutex;
  std::vector<std::string> received;
  std::atomic<bool> up{true};
  std::atomic<int> calls{0};

  SendFn fn() {
    return [this](std::span<const std::string_view> items) -> std::string {
      ++calls;
      if (!up.load()) return "connection refused";
      std::lock_guard lock(mutex);
      for (auto i : items) received.emplace_back(i);
      return {};
    };
  }
  std::size_t count() {
    std::lock_guard lock(mutex);
    return received.size();
  }
};

SpoolConfig config_in(const std::filesystem::path& dir) {
  SpoolConfig c;
  c.dir = dir;
  c.spill_after = 50ms;
  c.retry_initial = 5ms;
  c.retry_max = 20ms;
  c.batch = 64;
  return c;
}

ItemBatch items(int from, int to) {
  ItemBatch b;
  for (int i = from; i < to; ++i) b.add("item-" + std::to_string(i));
  return b;
}

void expect_in_order(Destination& d, int n) {
  std::lock_guard lock(d.mutex);
  ASSERT_EQ(d.received.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) ASSERT_EQ(d.received[i], "item-" + std::to_string(i)) << "at " << i;
}

TEST(SpoolQueue, DeliversInOrderAndCallsEachCallbackOnce) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  Destination dest;
  SpoolQueue q("graph-00", config_in(dir / "q"), dest.fn(), metrics);
  q.start();
  std::atomic<int> durable{0};
  for (int b = 0; b < 10; ++b) q.push(items(b * 100, b * 100 + 100), [&] { ++durable; });
  ASSERT_TRUE(testing::eventually([&] { return dest.count() == 1000 && durable.load() == 10; }, 10s));
  q.stop(std::chrono::steady_clock::now() + 1s);
  expect_in_order(dest, 1000);
  EXPECT_EQ(durable.load(), 10);
  EXPECT_EQ(q.queued_items(), 0u);
  EXPECT_EQ(metrics.counter_total("spool_sent_items_total"), 1000u);
}

TEST(SpoolQueue, SpillsWhileTheDestinationIsDownThenDrainsInOrderExactlyOnce) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  Destination dest;
  dest.up = false;
  auto cfg = config_in(dir / "q");
  cfg.segment_bytes = 4096;  // several segments, removed as they drain
  SpoolQueue q("graph-01", cfg, dest.fn(), metrics);
  q.start();
  std::atomic<int> durable{0};
  for (int b = 0; b < 20; ++b) q.push(items(b * 50, b * 50 + 50), [&] { ++durable; });
  // Nothing is delivered, yet everything becomes durable: it is on disk.
  ASSERT_TRUE(testing::eventually([&] { return durable.load() == 20; }, 10s));
  EXPECT_EQ(dest.count(), 0u);
  EXPECT_GT(q.disk_bytes(), 0u);
  EXPECT_EQ(q.queued_items(), 1000u);
  EXPECT_GT(metrics.counter_total("spool_send_failures_total"), 0u);
  EXPECT_EQ(q.status()["last_error"], "connection refused");
  dest.up = true;
  ASSERT_TRUE(testing::eventually([&] { return dest.count() == 1000; }, 10s));
  ASSERT_TRUE(testing::eventually([&] { return q.disk_bytes() == 0; }, 10s));
  q.stop(std::chrono::steady_clock::now() + 1s);
  expect_in_order(dest, 1000);
  EXPECT_EQ(durable.load(), 20);
}

TEST(SpoolQueue, ARestartSendsWhatThePreviousRunLeftOnDisk) {
  testing::TempDir dir;
  Destination dest;
  dest.up = false;
  {
    MetricsRegistry metrics;
    SpoolQueue q("judge-00", config_in(dir / "q"), dest.fn(), metrics);
    q.start();
    std::atomic<int> durable{0};
    for (int b = 0; b < 5; ++b) q.push(items(b * 200, b * 200 + 200), [&] { ++durable; });
    // Stopped at once: what is only in memory is written to disk on the way out.
    q.stop(std::chrono::steady_clock::now());
    EXPECT_EQ(durable.load(), 5);
  }
  EXPECT_EQ(dest.count(), 0u);
  dest.up = true;
  MetricsRegistry metrics;
  SpoolQueue q("judge-00", config_in(dir / "q"), dest.fn(), metrics);
  q.start();
  EXPECT_EQ(q.queued_items(), 1000u);
  ASSERT_TRUE(testing::eventually([&] { return dest.count() == 1000; }, 10s));
  q.stop(std::chrono::steady_clock::now() + 1s);
  expect_in_order(dest, 1000);
  // A third start finds nothing left to send.
  MetricsRegistry metrics3;
  SpoolQueue again("judge-00", config_in(dir / "q"), dest.fn(), metrics3);
  again.start();
  EXPECT_EQ(again.queued_items(), 0u);
  again.stop(std::chrono::steady_clock::now());
}

TEST(SpoolQueue, MemoryStaysBoundedWhileTheDestinationIsDown) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  Destination dest;
  dest.up = false;
  auto cfg = config_in(dir / "q");
  cfg.max_memory_bytes = 16 << 10;
  cfg.spill_after = 10s;  // only the memory bound makes it spill
  SpoolQueue q("graph-02", cfg, dest.fn(), metrics);
  q.start();
  double peak = 0;
  for (int b = 0; b < 200; ++b) {
    q.push(items(b * 100, b * 100 + 100), nullptr);  // ~1.2 KB each, 240 KB in all
    peak = std::max(peak, q.status()["memory_bytes"].get<double>());
  }
  EXPECT_LE(peak, 16 << 10);
  EXPECT_GT(q.disk_bytes(), 200u << 10);
  dest.up = true;
  ASSERT_TRUE(testing::eventually([&] { return dest.count() == 20'000; }, 20s));
  q.stop(std::chrono::steady_clock::now() + 1s);
  expect_in_order(dest, 20'000);
}

TEST(SpoolQueue, AFullDiskPushesBackInsteadOfDropping) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  Destination dest;
  dest.up = false;
  auto cfg = config_in(dir / "q");
  cfg.max_memory_bytes = 4 << 10;
  cfg.max_disk_bytes = 8 << 10;
  SpoolQueue q("graph-03", cfg, dest.fn(), metrics);
  q.start();
  std::atomic<int> pushed{0};
  std::thread producer([&] {
    for (int b = 0; b < 40; ++b) {
      q.push(items(b * 100, b * 100 + 100), nullptr);  // ~1.2 KB each: 48 KB > memory + disk
      ++pushed;
    }
  });
  // The producer stalls once memory and disk are full.
  ASSERT_TRUE(testing::eventually([&] { return q.disk_bytes() > 4u << 10; }, 10s));
  const int stalled_at = pushed.load();
  EXPECT_LT(stalled_at, 40);
  EXPECT_LE(q.disk_bytes(), 8u << 10);
  dest.up = true;
  producer.join();
  ASSERT_TRUE(testing::eventually([&] { return dest.count() == 4000; }, 20s));
  q.stop(std::chrono::steady_clock::now() + 1s);
  expect_in_order(dest, 4000);
}

TEST(SpoolQueue, ADamagedSpoolFileLosesOnlyWhatFollowsTheDamage) {
  testing::TempDir dir;
  Destination dest;
  dest.up = false;
  {
    MetricsRegistry metrics;
    SpoolQueue q("graph-04", config_in(dir / "q"), dest.fn(), metrics);
    q.start();
    for (int b = 0; b < 4; ++b) q.push(items(b * 10, b * 10 + 10), nullptr);
    q.stop(std::chrono::steady_clock::now());
  }
  // Flip a byte in the last record's payload.
  std::filesystem::path segment;
  for (const auto& e : std::filesystem::directory_iterator(dir / "q")) {
    if (e.path().extension() == ".spool") segment = e.path();
  }
  ASSERT_FALSE(segment.empty());
  {
    std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('#');
  }
  dest.up = true;
  MetricsRegistry metrics;
  SpoolQueue q("graph-04", config_in(dir / "q"), dest.fn(), metrics);
  q.start();
  ASSERT_TRUE(testing::eventually([&] { return dest.count() == 30; }, 10s));
  q.stop(std::chrono::steady_clock::now() + 1s);
  expect_in_order(dest, 30);
  EXPECT_EQ(metrics.counter_total("spool_corrupt_records_total"), 1u);
}

}  // namespace
}  // namespace sluice::sinks
