#include "bus/memory_bus.hpp"

#include <algorithm>
#include <xxhash.h>

#include <chrono>
#include <cstring>

namespace sluice::bus {
namespace {
constexpr std::size_t kChunkBytes = 1 << 20;
constexpr std::size_t kChunkEntries = 8192;
}  // namespace

class MemoryBus::MemoryProducer final : public Producer {
 public:
  explicit MemoryProducer(MemoryBus& bus) : bus_(bus) {}
  ProduceStatus produce(std::string_view topic, std::span<const std::byte> key, std::span<const std::byte> value) override {
    return bus_.produce(topic, key, value);
  }
  ProduceStatus produce_tracked(std::string_view topic, std::span<const std::byte> key,
                                std::span<const std::byte> value, DeliveryListener& listener,
                                std::uint64_t cookie) override {
    return bus_.produce(topic, key, value, &listener, cookie);
  }
  // Everything accepted is already on the bus.
  std::size_t flush(std::chrono::milliseconds) override { return 0; }

 private:
  MemoryBus& bus_;
};

class MemoryBus::MemoryConsumer final : public Consumer {
 public:
  MemoryConsumer(MemoryBus& bus, int index, int count, std::vector<std::string> topics)
      : bus_(bus), index_(index), count_(count), topics_(std::move(topics)) {}

  void run(ConsumerHandler& handler) override {
    std::vector<std::pair<PartitionRef, Partition*>> owned;
    auto refresh_assignment = [&] {
      std::vector<Assignment> added;
      std::shared_lock lock(bus_.topics_mutex_);
      for (auto& [name, topic] : bus_.topics_) {
        if (!topics_.empty() && std::find(topics_.begin(), topics_.end(), name) == topics_.end()) continue;
        for (std::size_t p = 0; p < topic->partitions.size(); ++p) {
          if (static_cast<int>(p) % count_ != index_) continue;
          PartitionRef ref{name, static_cast<std::int32_t>(p)};
          bool known = false;
          for (auto& o : owned) known |= o.first == ref;
          if (known) continue;
          owned.emplace_back(ref, topic->partitions[p].get());
          std::lock_guard plock(topic->partitions[p]->mutex);
          added.push_back({ref, topic->partitions[p]->committed, {}});
        }
      }
      if (!added.empty()) handler.on_assigned(added);
    };

    std::vector<std::unique_ptr<Chunk>> taken;
    // Takes closed chunks, and the chunk still being filled when `partial`: taking partial chunks on
    // every pass would have this thread contend for the producers' locks all the time.
    auto drain_once = [&](bool partial) -> bool {
      bool any = false;
      for (auto& [ref, part] : owned) {
        taken.clear();
        {
          std::lock_guard lock(part->mutex);
          taken.swap(part->ready);
          if (partial && part->filling && !part->filling->entries.empty()) taken.push_back(std::move(part->filling));
        }
        for (auto& chunk : taken) {
          std::uint64_t released = 0;
          for (std::size_t i = 0; i < chunk->entries.size(); ++i) {
            const auto& e = chunk->entries[i];
            Message m;
            m.topic = ref.topic;
            m.partition = ref.partition;
            m.offset = chunk->first_offset + static_cast<std::int64_t>(i);
            m.key = std::span<const std::byte>(chunk->data.get() + e.at, e.key_size);
            m.value = std::span<const std::byte>(chunk->data.get() + e.at + e.key_size, e.value_size);
            handler.on_message(m);
            released += e.key_size + e.value_size;
          }
          bus_.queued_bytes_.fetch_sub(released, std::memory_order_relaxed);
          any = true;
        }
      }
      return any;
    };

    auto last_idle = std::chrono::steady_clock::now();
    while (!stopping_.load()) {
      std::uint64_t generation;
      {
        std::lock_guard lock(bus_.wake_mutex_);
        generation = bus_.wake_generation_;
      }
      refresh_assignment();
      if (drain_once(false)) {
        const auto now = std::chrono::steady_clock::now();
        if (now - last_idle >= std::chrono::milliseconds(50)) {
          handler.on_idle();
          last_idle = now;
        }
        continue;
      }
      // Nothing closed: sleep until a producer closes a chunk, or 50 ms pass; then take partial
      // chunks too, so a slow stream waits at most that long.
      bool woken;
      {
        std::unique_lock lock(bus_.wake_mutex_);
        woken = bus_.wake_.wait_for(lock, std::chrono::milliseconds(50),
                                    [&] { return stopping_.load() || bus_.wake_generation_ != generation; });
      }
      if (!woken) drain_once(true);
      handler.on_idle();
      last_idle = std::chrono::steady_clock::now();
    }
    // Shutdown: deliver what is still queued (the inlet stopped first), then hand partitions back.
    refresh_assignment();
    while (drain_once(true)) {
    }
    handler.on_idle();
    std::vector<PartitionRef> refs;
    for (auto& o : owned) refs.push_back(o.first);
    if (!refs.empty()) handler.on_revoked(refs);
  }

  void stop() override {
    stopping_.store(true);
    bus_.wake_consumers();
  }

  bool commit(const PartitionRef& ref, std::int64_t next_offset, std::string_view) override {
    auto& topic = bus_.topic(ref.topic);
    if (ref.partition < 0 || ref.partition >= static_cast<int>(topic.partitions.size())) return false;
    auto& part = *topic.partitions[static_cast<std::size_t>(ref.partition)];
    std::vector<Awaiting> delivered;
    {
      std::lock_guard lock(part.mutex);
      if (next_offset > part.committed) part.committed = next_offset;
      while (!part.awaiting.empty() && part.awaiting.front().offset < part.committed) {
        delivered.push_back(part.awaiting.front());
        part.awaiting.pop_front();
      }
    }
    // Outside the lock: a listener may produce again from its callback.
    for (const auto& a : delivered) a.listener->on_delivered(a.cookie, true);
    return true;
  }

  std::int64_t lag(const PartitionRef& ref) const override {
    auto& topic = bus_.topic(ref.topic);
    if (ref.partition < 0 || ref.partition >= static_cast<int>(topic.partitions.size())) return -1;
    auto& part = *topic.partitions[static_cast<std::size_t>(ref.partition)];
    std::lock_guard lock(part.mutex);
    return part.next_offset - part.committed;
  }

 private:
  MemoryBus& bus_;
  int index_;
  int count_;
  std::vector<std::string> topics_;  // empty: every topic
  std::atomic<bool> stopping_{false};
};

MemoryBus::MemoryBus(MemoryBusConfig config, MetricsRegistry& metrics)
    : config_(config),
      metrics_(metrics),
      produced_(metrics.counter("bus_produced_messages_total", "Messages accepted by the memory bus", {{"bus", "memory"}})),
      dropped_full_(metrics.counter("bus_produce_dropped_total", "Messages refused by the bus, by reason",
                                    {{"bus", "memory"}, {"reason", "full"}})),
      producer_(std::make_unique<MemoryProducer>(*this)) {
  metrics_.gauge_callback("bus_queued_bytes", "Bytes produced but not yet consumed", {{"bus", "memory"}},
                          [this] { return static_cast<double>(queued_bytes()); });
}

MemoryBus::~MemoryBus() { metrics_.remove_callbacks("bus_queued_bytes", {{"bus", "memory"}}); }

Producer& MemoryBus::producer() { return *producer_; }

std::unique_ptr<Consumer> MemoryBus::make_consumer(int index, int count, std::vector<std::string> topics) {
  return std::make_unique<MemoryConsumer>(*this, index, count, std::move(topics));
}

MemoryBus::Topic& MemoryBus::topic(std::string_view name) {
  if (Topic* last = last_topic_.load(std::memory_order_acquire); last && last->name == name) return *last;
  {
    std::shared_lock lock(topics_mutex_);
    auto it = topics_.find(name);
    if (it != topics_.end()) {
      last_topic_.store(it->second.get(), std::memory_order_release);
      return *it->second;
    }
  }
  std::unique_lock lock(topics_mutex_);
  auto it = topics_.find(name);
  if (it != topics_.end()) return *it->second;
  auto t = std::make_unique<Topic>();
  t->name = std::string(name);
  for (int i = 0; i < config_.partitions; ++i) {
    t->partitions.push_back(std::make_unique<Partition>());
    t->partitions.back()->next_offset = t->partitions.back()->committed = config_.first_offset;
  }
  auto& ref = *t;
  topics_.emplace(std::string(name), std::move(t));
  last_topic_.store(&ref, std::memory_order_release);
  return ref;
}

void MemoryBus::wake_consumers() {
  {
    std::lock_guard lock(wake_mutex_);
    ++wake_generation_;
  }
  wake_.notify_all();
}

ProduceStatus MemoryBus::produce(std::string_view topic_name, std::span<const std::byte> key,
                                 std::span<const std::byte> value, DeliveryListener* listener,
                                 std::uint64_t cookie) {
  const std::uint64_t size = key.size() + value.size();
  if (queued_bytes_.fetch_add(size, std::memory_order_relaxed) + size > config_.max_bytes) {
    queued_bytes_.fetch_sub(size, std::memory_order_relaxed);
    dropped_full_.inc();
    return ProduceStatus::full;
  }
  auto& t = topic(topic_name);
  const auto p = key.empty() ? 0 : XXH3_64bits(key.data(), key.size()) % t.partitions.size();
  auto& part = *t.partitions[p];
  bool chunk_closed = false;
  {
    std::lock_guard lock(part.mutex);
    if (part.filling && (part.filling->used + size > part.filling->capacity ||
                         part.filling->entries.size() >= kChunkEntries)) {
      part.ready.push_back(std::move(part.filling));
      chunk_closed = true;
    }
    if (!part.filling) {
      part.filling = std::make_unique<Chunk>();
      part.filling->capacity = std::max(kChunkBytes, static_cast<std::size_t>(size));
      part.filling->data = std::make_unique_for_overwrite<std::byte[]>(part.filling->capacity);
      part.filling->entries.reserve(kChunkEntries);
      part.filling->first_offset = part.next_offset;
    }
    auto& c = *part.filling;
    const auto at = static_cast<std::uint32_t>(c.used);
    c.used += size;
    if (!key.empty()) std::memcpy(c.data.get() + at, key.data(), key.size());
    if (!value.empty()) std::memcpy(c.data.get() + at + key.size(), value.data(), value.size());
    c.entries.push_back({at, static_cast<std::uint32_t>(key.size()), static_cast<std::uint32_t>(value.size())});
    if (listener != nullptr) part.awaiting.push_back({part.next_offset, listener, cookie});
    ++part.next_offset;
  }
  produced_.inc();
  // Waking on every message would cost a syscall each; consumers also poll every 50 ms.
  if (chunk_closed) wake_consumers();
  return ProduceStatus::ok;
}

}  // namespace sluice::bus
