// Bus: carries raw envelopes from the inlet to the outlet, partitioned, in order, acknowledged.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::bus {

enum class ProduceStatus {
  ok,     // accepted; delivery is tracked by the bus (and counted)
  full,   // refused because the bus is at its bound; the caller counts a drop
  error,  // refused for another reason (unknown topic, message too large); counted by the bus
};

// Told when the bus holds a message for good: Kafka once the brokers acknowledged it (acks=all), the
// memory bus once its consumer committed past it (its sinks stored it, since nothing in memory survives
// a crash). Called from a bus thread; must not block.
class DeliveryListener {
 public:
  virtual ~DeliveryListener() = default;
  virtual void on_delivered(std::uint64_t cookie, bool delivered) = 0;
};

// Thread-safe; produce() never blocks.
class Producer {
 public:
  virtual ~Producer() = default;
  // Copies key and value. The key chooses the partition: equal keys keep their order.
  virtual ProduceStatus produce(std::string_view topic, std::span<const std::byte> key,
                                std::span<const std::byte> value) = 0;
  // The same, and once the message is held for good (or definitely lost), exactly one
  // listener.on_delivered(cookie, ...) follows; not when the status is other than ok. Producers that
  // hold nothing back (captures in tests) report delivery at once, which is this default.
  virtual ProduceStatus produce_tracked(std::string_view topic, std::span<const std::byte> key,
                                        std::span<const std::byte> value, DeliveryListener& listener,
                                        std::uint64_t cookie) {
    const auto status = produce(topic, key, value);
    if (status == ProduceStatus::ok) listener.on_delivered(cookie, true);
    return status;
  }
  // Waits until everything produced so far is delivered, or the timeout; returns what is still in flight.
  virtual std::size_t flush(std::chrono::milliseconds timeout) = 0;
};

struct PartitionRef {
  std::string topic;
  std::int32_t partition = 0;
  auto operator<=>(const PartitionRef&) const = default;
};

struct Message {
  std::string_view topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::span<const std::byte> key;
  std::span<const std::byte> value;  // valid only during ConsumerHandler::on_message
};

struct Assignment {
  PartitionRef ref;
  std::int64_t next_offset = 0;  // where consumption resumes (committed offset; 0 when none)
  std::string metadata;          // metadata stored with the last commit (pending batch boundaries)
};

// Callbacks run on the consumer's own thread, from Consumer::run.
class ConsumerHandler {
 public:
  virtual ~ConsumerHandler() = default;
  virtual void on_assigned(const std::vector<Assignment>& partitions) = 0;
  // Partitions are about to move elsewhere (rebalance or shutdown). Return only once what was
  // acknowledged for them is committed; unacknowledged work is dropped and replayed by the next owner.
  virtual void on_revoked(const std::vector<PartitionRef>& partitions) = 0;
  virtual void on_message(const Message& message) = 0;
  // Called at least every `idle_tick` while run() waits, so timers (batch deadlines, commits) fire.
  virtual void on_idle() = 0;
};

class Consumer {
 public:
  virtual ~Consumer() = default;
  // Polls until stop(); calls the handler on this thread. Revokes all partitions before returning.
  virtual void run(ConsumerHandler& handler) = 0;
  // Thread-safe; run() returns soon after.
  virtual void stop() = 0;
  // Commits `next_offset` for a partition with metadata. Thread-safe; synchronous. false on failure.
  virtual bool commit(const PartitionRef& partition, std::int64_t next_offset, std::string_view metadata) = 0;
  struct OffsetCommit {
    PartitionRef partition;
    std::int64_t next_offset = 0;
    std::string metadata;
  };
  // Commits several partitions at once: one request where the bus allows, instead of a round trip
  // each. Thread-safe; synchronous. Whether each one was committed, in order.
  virtual std::vector<bool> commit_all(std::span<const OffsetCommit> commits) {
    std::vector<bool> ok;
    for (const auto& c : commits) ok.push_back(commit(c.partition, c.next_offset, c.metadata));
    return ok;
  }
  // Messages behind the end of the partition (high watermark - position), -1 when unknown.
  virtual std::int64_t lag(const PartitionRef& partition) const = 0;
};

}  // namespace sluice::bus
