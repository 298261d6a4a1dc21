// SpoolQueue: one destination's ordered send queue — bounded in memory, spilled to disk when the
// destination is slow or down, drained in order when it returns, and resumed after a restart.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/metrics.hpp"

namespace sluice::sinks {

struct SpoolConfig {
  std::filesystem::path dir;  // this destination's own directory
  std::uint64_t max_memory_bytes = 64ull << 20;
  std::uint64_t max_disk_bytes = 4ull << 30;
  // Unsent data older than this is written to disk, so that a slow destination never holds back
  // the bus acknowledgements of the others for longer.
  std::chrono::milliseconds spill_after{1000};
  std::uint64_t segment_bytes = 64ull << 20;
  std::size_t batch = 200;  // items per send
  std::chrono::milliseconds retry_initial{200};
  std::chrono::milliseconds retry_max{30'000};
};

// Items queued together, in order: each is stored as a 4-byte little-endian length and its bytes.
class ItemBatch {
 public:
  void add(std::string_view item);
  std::uint32_t count() const { return count_; }
  bool empty() const { return count_ == 0; }
  std::string& data() { return data_; }

 private:
  std::string data_;
  std::uint32_t count_ = 0;
};

// Delivers one batch of items to the destination: an empty string when delivered, otherwise why
// not (the batch is retried with backoff until it goes through or the queue stops).
using SendFn = std::function<std::string(std::span<const std::string_view> items)>;

// Metrics (label dest=<name>): spool_sent_items_total, spool_send_failures_total,
// spool_spilled_bytes_total, spool_corrupt_records_total; gauges spool_queued_items,
// spool_memory_bytes, spool_disk_bytes.
class SpoolQueue {
 public:
  SpoolQueue(std::string name, SpoolConfig config, SendFn send, MetricsRegistry& metrics);
  ~SpoolQueue();
  SpoolQueue(const SpoolQueue&) = delete;
  SpoolQueue& operator=(const SpoolQueue&) = delete;

  // Picks up what a previous run left on disk (sent first), then starts sending. Throws when the
  // directory cannot be used.
  void start();
  // Queues the items after everything queued before. `on_durable` runs exactly once, on a queue
  // thread, when every item is delivered or safely on disk. Blocks while memory is full and the
  // disk cannot take more: the caller's bus then stops acknowledging, and nothing is dropped.
  void push(ItemBatch items, std::function<void()> on_durable);
  // Sends what it can until the deadline, then writes what is left to disk and stops.
  void stop(std::chrono::steady_clock::time_point deadline);

  std::uint64_t queued_items() const;
  std::uint64_t disk_bytes() const;
  nlohmann::json status() const;
  const std::string& name() const { return name_; }

 private:
  struct Group;
  using GroupPtr = std::shared_ptr<Group>;

  void sender();
  void spiller();
  bool load_group(Group& g);
  void spill(std::vector<GroupPtr>& groups);
  void write_cursor(std::uint64_t segment, std::uint64_t offset);
  void recover();
  bool sleep_unless_stopping(std::chrono::milliseconds d);

  std::string name_;
  SpoolConfig config_;
  SendFn send_;
  MetricsRegistry& metrics_;
  Counter& sent_items_;
  Counter& send_failures_;
  Counter& spilled_bytes_;
  Counter& corrupt_records_;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;   // sender: something to send, or stop
  std::condition_variable space_cv_;  // push: memory freed
  std::condition_variable spill_cv_;  // spiller: memory over its bound, or stop
  std::deque<GroupPtr> groups_;
  std::uint64_t queued_items_ = 0;
  std::uint64_t memory_bytes_ = 0;
  std::uint64_t disk_bytes_ = 0;
  std::uint64_t write_segment_ = 0;         // segment new spills append to
  std::uint64_t write_offset_ = 0;
  int write_fd_ = -1;
  std::deque<std::pair<std::uint64_t, std::uint64_t>> segments_;  // id, size: every segment file kept
  std::uint64_t cursor_segment_ = 0, cursor_offset_ = 0;         // the first record not yet delivered
  std::string last_error_;
  std::chrono::system_clock::time_point last_error_time_{};
  bool stopping_ = false;
  bool started_ = false;
  std::thread sender_thread_;
  std::thread spiller_thread_;
};

}  // namespace sluice::sinks
