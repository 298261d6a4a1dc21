// BatchSink: delivers insert batches to a Store in parallel, retrying until they land or are dead-lettered.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/metrics.hpp"
#include "core/native_sort.hpp"
#include "sinks/store.hpp"

namespace sluice::pipeline {

struct BatchSinkPolicy {
  int parallel_inserts = 2;
  int max_pending_batches = 16;  // submitted but not yet delivered; submit() blocks beyond
  std::chrono::milliseconds retry_initial{200};
  std::chrono::milliseconds retry_max{30'000};
  std::string dead_letter_dir;
  // The same bound in body bytes, so that memory stays bounded whatever the batch size; one batch
  // larger than this still goes through alone.
  std::uint64_t max_pending_bytes = 512ull << 20;
  // Retryable failures of one batch before giving up on it: 0 retries forever. A batch given up on is
  // never acknowledged (the bus replays it) and `on_exhausted` is told why, so that the owner can
  // restart whatever feeds this sink (a job's processor) instead of retrying blindly.
  int max_attempts = 0;
  // Insert the Native batches waiting in the queue for one table together, as one part: far fewer
  // parts (and merges) when many partitions each close small batches, at the price of the per-batch
  // deduplication token (a replay after a crash may store such rows twice).
  bool coalesce = false;
  std::uint64_t coalesce_max_bytes = 256ull << 20;
  // The table's sorting key (column names), when Native bodies are to be put in its order before the
  // insert: for the embedded store, whose sort of each block would be work on this process's cores,
  // done more cheaply here. Empty: bodies go as they come.
  std::vector<std::string> sort_by{};
  std::function<void(const std::string& reason)> on_exhausted{};
};

// Where a consumer job hands its closed batches, in offset order: `on_done` runs once the batch is
// durable wherever it goes. A batch that never becomes durable is never acknowledged.
class BatchTarget {
 public:
  struct Batch {
    sinks::InsertRequest request;
    std::function<void()> on_done;
  };
  virtual ~BatchTarget() = default;
  virtual void submit(sinks::InsertRequest request, std::function<void()> on_done) = 0;
  // Batches closed together (one flush round over many partitions): a target that coalesces sees them
  // queued at once, so that they make one insert instead of racing its workers one by one.
  virtual void submit_all(std::vector<Batch> batches) {
    for (auto& b : batches) submit(std::move(b.request), std::move(b.on_done));
  }
  // Whether batches handed over together become one insert (submit_all is then worth waiting for).
  virtual bool coalesces() const { return false; }
};

// `on_done` is called exactly once per batch, from a sink thread, when the batch is stored or
// dead-lettered (both durable). A batch still failing when the sink stops is never acknowledged,
// so the bus replays it after restart: retryable errors cost latency, never data.
class BatchSink final : public BatchTarget {
 public:
  BatchSink(std::string name, sinks::Store& store, BatchSinkPolicy policy, MetricsRegistry& metrics);
  ~BatchSink();

  void submit(sinks::InsertRequest request, std::function<void()> on_done) override;
  void submit_all(std::vector<Batch> batches) override;
  bool coalesces() const override { return policy_.coalesce; }
  // Waits until every submitted batch is done, or the deadline; then abandons the rest. Idempotent.
  void stop(std::chrono::steady_clock::time_point deadline);
  std::size_t pending() const;
  nlohmann::json status() const;

 private:
  using Job = Batch;
  void worker();
  bool deliver(const sinks::InsertRequest& request);
  NativeSorter::Outcome sort(std::span<const std::string_view> bodies, std::string& out);
  std::string take_buffer();  // the largest kept, or an empty one
  void keep_buffer(std::string buffer);
  bool dead_letter(const sinks::InsertRequest& request, const std::string& reason);
  bool sleep_unless_aborted(std::chrono::milliseconds d);

  std::string name_;
  sinks::Store& store_;
  BatchSinkPolicy policy_;
  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable space_cv_;
  std::condition_variable abort_cv_;
  std::deque<Job> queue_;
  std::size_t in_flight_ = 0;
  std::uint64_t pending_bytes_ = 0;  // bodies queued or in flight
  bool closing_ = false;
  std::atomic<bool> aborted_{false};
  std::string last_error_;
  std::chrono::system_clock::time_point last_error_time_{};
  std::vector<std::thread> workers_;
  std::vector<std::string> spare_buffers_;  // guarded by mutex_: for merged and sorted bodies
  std::mutex sort_mutex_;
  NativeSorter sorter_;  // guarded by sort_mutex_

  Counter& batches_ok_;
  Counter& rows_ok_;
  Counter& coalesced_;
  Counter& unmerged_;
  Counter& sorted_;
  Counter& unsorted_;
  Counter& body_bytes_;
  Counter& retries_;
  Counter& dead_batches_;
  Counter& dead_rows_;
  Counter& abandoned_;
  MetricsRegistry& metrics_;
};

}  // namespace sluice::pipeline
