// LogLimiter: lets a message through at most once per interval per key, counting what it held back.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace sluice {

// Hostile input can produce millions of identical rejections a second; operators need the first one
// and a count, not a flooded log. Thread-safe.
class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::milliseconds interval = std::chrono::seconds(10)) : interval_(interval) {}

  // Returns how many were suppressed since the last message for `key` when this one may be logged.
  std::optional<std::uint64_t> allow(const std::string& key) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
    auto& slot = slots_[key];
    if (slot.logged && now - slot.last < interval_) {
      ++slot.suppressed;
      return std::nullopt;
    }
    const auto suppressed = slot.suppressed;
    slot = {true, now, 0};
    return suppressed;
  }

 private:
  struct Slot {
    bool logged = false;
    std::chrono::steady_clock::time_point last{};
    std::uint64_t suppressed = 0;
  };
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::map<std::string, Slot> slots_;
};

}  // namespace sluice
