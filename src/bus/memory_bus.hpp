// MemoryBus: the in-process bus of `sluice run`, partitioned like Kafka and bounded in bytes.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "bus/bus.hpp"
#include "core/metrics.hpp"

namespace sluice::bus {

struct MemoryBusConfig {
  int partitions = 8;
  std::uint64_t max_bytes = 256ull << 20;  // queued, not yet consumed
  // The first offset of every partition. A process sets it above any offset of its previous incarnation
  // (e.g. the start time in microseconds): the outlet's insert deduplication tokens name offset ranges, and
  // reused ranges would make the store drop a restarted process's first batches as replays.
  std::int64_t first_offset = 0;
};

// Messages live in append-only chunks per partition, so producing copies bytes but allocates only
// when a chunk fills. Consumers take whole chunks. Nothing survives the process: `sluice run`
// trades durability across crashes for zero dependencies, and says so in the docs.
class MemoryBus {
 public:
  MemoryBus(MemoryBusConfig config, MetricsRegistry& metrics);
  ~MemoryBus();

  Producer& producer();
  // Consumer `index` of `count` reads partitions p with p % count == index, of the given topics
  // (every topic when none is given).
  std::unique_ptr<Consumer> make_consumer(int index, int count, std::vector<std::string> topics = {});
  std::uint64_t queued_bytes() const { return queued_bytes_.load(std::memory_order_relaxed); }

  struct Entry {
    std::uint32_t at;
    std::uint32_t key_size;
    std::uint32_t value_size;
  };
  struct Chunk {
    std::unique_ptr<std::byte[]> data;  // not a vector: appends must not zero-fill first
    std::size_t capacity = 0;
    std::size_t used = 0;
    std::vector<Entry> entries;
    std::int64_t first_offset = 0;
  };
  // A tracked message waiting for its consumer to commit past it.
  struct Awaiting {
    std::int64_t offset;
    DeliveryListener* listener;
    std::uint64_t cookie;
  };
  struct Partition {
    std::mutex mutex;
    std::deque<Awaiting> awaiting;  // offset order
    std::vector<std::unique_ptr<Chunk>> ready;  // oldest first
    std::unique_ptr<Chunk> filling;
    std::int64_t next_offset = 0;
    std::int64_t committed = 0;
  };
  struct Topic {
    std::string name;
    std::vector<std::unique_ptr<Partition>> partitions;
  };

 private:
  class MemoryProducer;
  class MemoryConsumer;
  friend class MemoryProducer;
  friend class MemoryConsumer;

  Topic& topic(std::string_view name);
  ProduceStatus produce(std::string_view topic, std::span<const std::byte> key, std::span<const std::byte> value,
                        DeliveryListener* listener = nullptr, std::uint64_t cookie = 0);
  void wake_consumers();

  MemoryBusConfig config_;
  MetricsRegistry& metrics_;
  std::shared_mutex topics_mutex_;  // topics are created once and read on every produce
  std::map<std::string, std::unique_ptr<Topic>, std::less<>> topics_;
  // Producers almost always name the topic they named last; topics live as long as the bus.
  std::atomic<Topic*> last_topic_{nullptr};
  std::atomic<std::uint64_t> queued_bytes_{0};
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::uint64_t wake_generation_ = 0;
  Counter& produced_;
  Counter& dropped_full_;
  std::unique_ptr<MemoryProducer> producer_;
};

}  // namespace sluice::bus
