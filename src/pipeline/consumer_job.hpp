// ConsumerJob: consumes partitions, batches their rows by offset range, and commits what sinks stored.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "bus/bus.hpp"
#include "core/ack_tracker.hpp"
#include "core/log_limiter.hpp"
#include "core/metrics.hpp"
#include "pipeline/batch_builder.hpp"
#include "pipeline/batch_sink.hpp"

namespace sluice::pipeline {

struct ConsumerJobConfig {
  std::string name;
  std::uint64_t max_rows = 100'000;
  std::uint64_t max_bytes = 64ull << 20;
  std::chrono::milliseconds max_delay{1000};
  std::chrono::milliseconds commit_interval{1000};
  std::chrono::milliseconds revoke_timeout{30'000};  // how long revocation waits for in-flight batches
  // Prepended to the deduplication token, so that two jobs reading one topic into one table never
  // take each other's batches for replays. Empty for the built-in pipelines (their tokens predate it).
  std::string token_prefix{};
};

struct OffsetRange {
  std::int64_t first = 0;
  std::int64_t last = 0;
  auto operator<=>(const OffsetRange&) const = default;
};

// Commit metadata records the boundaries of batches sent but not yet committed, so that whoever
// consumes the partition next (this process after a crash, or another outlet after a rebalance)
// rebuilds exactly the same batches and the store deduplicates them by token.
std::string encode_pending_ranges(const std::set<OffsetRange>& ranges);
std::deque<OffsetRange> decode_pending_ranges(std::string_view metadata);

// Exactly-once per batch: every batch covers one contiguous offset range of one partition and
// carries the token <topic>/<partition>/<first>-<last>. Its boundary is committed (as metadata)
// before the insert starts; the offset itself is committed only once every batch below it is stored.
class ConsumerJob final : public bus::ConsumerHandler {
 public:
  ConsumerJob(ConsumerJobConfig config, bus::Consumer& consumer, BatchBuilderFactory factory, BatchTarget& sink,
              MetricsRegistry& metrics);
  ~ConsumerJob() override;

  void on_assigned(const std::vector<bus::Assignment>& partitions) override;
  void on_revoked(const std::vector<bus::PartitionRef>& partitions) override;
  void on_message(const bus::Message& message) override;
  void on_idle() override;

  nlohmann::json status() const;
  // Messages this instance consumed, and the sum of its partitions' lag (-1 when none is known).
  std::uint64_t consumed() const { return consumed_.load(std::memory_order_relaxed); }
  std::int64_t lag() const;
  // Its sink gave up: revocation commits what was acknowledged and hands the rest over at once
  // instead of waiting for batches that will never land. Thread-safe.
  void abandon() { abandoning_.store(true); }

 private:
  struct Partition {
    bus::PartitionRef ref;
    std::unique_ptr<BatchBuilder> builder;
    AckTracker acks;
    std::int64_t batch_first = -1;
    std::int64_t batch_last = -1;
    std::int64_t next_expected = -1;  // offset after the last message seen; -1 until known
    std::chrono::steady_clock::time_point batch_started;
    std::deque<OffsetRange> plan;  // replay boundaries from the previous owner
    std::mutex mutex;              // guards in_flight (acks arrive on sink threads)
    std::set<OffsetRange> in_flight;
    std::int64_t committed = -1;
    std::string committed_metadata;
    std::uint64_t batches = 0;
    Partition(bus::PartitionRef r, std::unique_ptr<BatchBuilder> b, std::int64_t next)
        : ref(std::move(r)), builder(std::move(b)), acks(next) {}
  };

  void close_batch(Partition& p);
  // Closes p's batch (nothing when empty). Its boundary is recorded on the bus first, unless the caller
  // records the boundaries of a whole round at once (record_boundaries) before handing the batches over.
  std::optional<BatchTarget::Batch> seal_batch(Partition& p, bool record_boundary = true);
  void record_boundaries(std::span<Partition* const> parts);
  void note_skipped(Partition& p, std::int64_t offset);
  bool commit(Partition& p, bool force);
  // Commits the partitions whose committable offset or pending boundaries changed (all of `parts` when
  // `force`), in one request; those that failed.
  std::vector<Partition*> commit_changed(std::span<Partition* const> parts, bool force);
  std::string pending_metadata(Partition& p);

  ConsumerJobConfig config_;
  bus::Consumer& consumer_;
  BatchBuilderFactory factory_;
  BatchTarget& sink_;
  MetricsRegistry& metrics_;
  mutable std::mutex partitions_mutex_;  // guards the map for status(); entries are used by the consumer thread
  std::map<bus::PartitionRef, std::shared_ptr<Partition>> partitions_;
  Partition* last_partition_ = nullptr;  // consumer thread only
  std::chrono::steady_clock::time_point last_commit_;
  CounterTally messages_;  // published in on_idle
  Counter& batches_;
  Counter& empty_batches_;
  Counter& commits_;
  Counter& commit_failures_;
  Counter& replayed_batches_;
  Counter& unrecorded_boundaries_;
  Counter& skipped_offsets_;
  LogLimiter log_limiter_;
  std::atomic<std::uint64_t> consumed_{0};
  std::atomic<bool> abandoning_{false};
};

}  // namespace sluice::pipeline
