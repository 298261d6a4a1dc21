// The batch sink's memory bound: submit() waits while the batches not yet stored hold more bytes than
// the policy allows, and a batch bigger than the bound still goes through alone.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "fixtures/process.hpp"
#include "pipeline/batch_sink.hpp"

namespace sluice::pipeline {
namespace {

using namespace std::chrono_literals;

// Holds every insert until released, so the test controls what is pending.
class GatedStore final : public sinks::Store {
 public:
  sinks::QueryResult query(std::string_view, std::string_view) override { return {}; }
  void insert(const sinks::InsertRequest&) override {
    std::unique_lock lock(mutex_);
    ++waiting_;
    cv_.wait(lock, [&] { return released_ > 0; });
    --released_;
    --waiting_;
    ++stored_;
  }
  const std::string& database() const override { return db_; }
  ClickHouseDialect dialect() const override { return ClickHouseDialect::modern; }
  bool supports_dedup_token() const override { return true; }
  std::string describe() const override { return "gated"; }

  void release_one() {
    std::lock_guard lock(mutex_);
    ++released_;
    cv_.notify_all();
  }
  int waiting() {
    std::lock_guard lock(mutex_);
    return waiting_;
  }
  int stored() {
    std::lock_guard lock(mutex_);
    return stored_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int waiting_ = 0, released_ = 0, stored_ = 0;
  std::string db_ = "test";
};

sinks::InsertRequest request_of(std::size_t bytes) {
  return sinks::InsertRequest{"t", "Native", std::string(bytes, 'x'), 1, ""};
}

TEST(BatchSink, SubmitWaitsWhilePendingBytesExceedTheBound) {
  MetricsRegistry metrics;
  GatedStore store;
  testing::TempDir dir;
  BatchSinkPolicy policy{1, 100, 1ms, 5ms, dir / "dead"};
  policy.max_pending_bytes = 250;
  BatchSink sink("t", store, policy, metrics);
  std::atomic<int> acked{0};
  sink.submit(request_of(100), [&] { ++acked; });
  sink.submit(request_of(100), [&] { ++acked; });
  std::atomic<bool> third_submitted{false};
  std::thread producer([&] {
    sink.submit(request_of(100), [&] { ++acked; });  // 300 bytes would be pending: waits
    third_submitted = true;
  });
  ASSERT_TRUE(testing::eventually([&] { return store.waiting() == 1; }, 5s));
  EXPECT_FALSE(third_submitted.load());
  EXPECT_EQ(sink.status()["pending_bytes"].get<std::uint64_t>(), 200u);
  store.release_one();  // the first is stored: 100 bytes leave, the third fits
  ASSERT_TRUE(testing::eventually([&] { return third_submitted.load(); }, 5s));
  producer.join();
  store.release_one();
  store.release_one();
  ASSERT_TRUE(testing::eventually([&] { return acked.load() == 3; }, 5s));
  EXPECT_EQ(sink.status()["pending_bytes"].get<std::uint64_t>(), 0u);
  sink.stop(std::chrono::steady_clock::now() + 1s);
}

TEST(BatchSink, ABatchLargerThanTheBoundStillGoesThroughAlone) {
  MetricsRegistry metrics;
  GatedStore store;
  testing::TempDir dir;
  BatchSinkPolicy policy{1, 100, 1ms, 5ms, dir / "dead"};
  policy.max_pending_bytes = 50;
  BatchSink sink("t", store, policy, metrics);
  std::atomic<int> acked{0};
  sink.submit(request_of(1000), [&] { ++acked; });
  store.release_one();
  ASSERT_TRUE(testing::eventually([&] { return acked.load() == 1; }, 5s));
  EXPECT_EQ(store.stored(), 1);
  sink.stop(std::chrono::steady_clock::now() + 1s);
}

}  // namespace
}  // namespace sluice::pipeline
