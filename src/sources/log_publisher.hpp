// LogPublisher: puts the file source's log chunks on the bus in envelopes and reports each one's delivery.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "bus/bus.hpp"
#include "core/metrics.hpp"

namespace sluice::sources {

// Thread-safe. Delivery means what the bus promises (bus::DeliveryListener): Kafka acknowledged it
// with acks=all, or the memory bus's consumer stored it.
class LogPublisher final : public bus::DeliveryListener {
 public:
  using OnDelivery = std::function<void(std::uint64_t cookie, bool delivered)>;
  LogPublisher(bus::Producer& producer, MetricsRegistry& metrics, OnDelivery on_delivery);

  // false: the bus refused it for now (full, or an error counted by the bus); the caller keeps the chunk.
  bool publish(std::string_view topic, std::string_view key, std::span<const std::byte> chunk, std::uint64_t cookie);
  void on_delivered(std::uint64_t cookie, bool delivered) override;

 private:
  bus::Producer& producer_;
  OnDelivery on_delivery_;
  Counter& published_;
  Counter& published_bytes_;
  Counter& refused_;
  Counter& failed_;
};

}  // namespace sluice::sources
