// FlowTail: a live tail of decoded flows for debugging; decoders publish, admin HTTP clients subscribe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/envelope.hpp"
#include "core/flow.hpp"
#include "core/metrics.hpp"

namespace sluice::admin {

class FlowTail;

// One listener's view of the tail. Move-only; unsubscribes on destruction. Must not outlive its FlowTail.
class FlowSubscription {
 public:
  FlowSubscription(FlowSubscription&& other) noexcept;
  FlowSubscription& operator=(FlowSubscription&& other) noexcept;
  FlowSubscription(const FlowSubscription&) = delete;
  FlowSubscription& operator=(const FlowSubscription&) = delete;
  ~FlowSubscription();

  // The next flow as one JSON object (no trailing newline). nullopt when `timeout` passes with nothing
  // queued, or at once when finished() (every wanted flow delivered) or after close().
  std::optional<std::string> next(std::chrono::milliseconds timeout);
  // True once `limit` flows were accepted and all of them were handed out by next(), or after close().
  bool finished() const;
  // Wakes a reader blocked in next() and stops accepting flows (server shutdown).
  void close();
  // Flows that matched but were discarded because the queue was full (the reader was too slow).
  std::uint64_t dropped() const;
  // Flows handed out by next() so far.
  std::uint64_t delivered() const;

 private:
  friend class FlowTail;
  struct State;
  FlowSubscription(FlowTail* tail, std::shared_ptr<State> state);
  void release();

  FlowTail* tail_ = nullptr;
  std::shared_ptr<State> state_;
};

class FlowTail {
 public:
  static constexpr std::size_t kDefaultQueueCapacity = 1024;

  explicit FlowTail(MetricsRegistry& metrics);
  FlowTail(const FlowTail&) = delete;
  FlowTail& operator=(const FlowTail&) = delete;

  // Hot path guard: one relaxed load. False while nobody listens, so decoders skip publish() entirely.
  bool active() const { return listeners_.load(std::memory_order_relaxed) > 0; }
  // Subscriptions still accepting flows (status pages, tests).
  int listeners() const { return listeners_.load(std::memory_order_relaxed); }

  // Formats `flow` once and queues it for every subscriber whose filter matches. Never waits for a
  // reader: a full queue drops the flow for that subscriber and counts it.
  void publish(const FlowRecord& flow);

  // Wants `limit` flows (at least 1), from `exporter` only when given. The queue holds at most
  // min(limit, queue_capacity) flows not yet read.
  FlowSubscription subscribe(std::size_t limit, std::optional<Ip6> exporter = std::nullopt,
                             std::size_t queue_capacity = kDefaultQueueCapacity);

  // Akvorado column names; exposed for tests and for anything else that wants the same line.
  static void format_json(const FlowRecord& flow, std::string& out);

 private:
  friend class FlowSubscription;
  void unsubscribe(const std::shared_ptr<FlowSubscription::State>& state);

  std::atomic<int> listeners_{0};
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<FlowSubscription::State>> subscribers_;  // still accepting flows
  std::string line_;                                                   // reused for every publish, guarded by mutex_
  Counter& published_;
  Counter& dropped_;
};

}  // namespace sluice::admin
