// CircuitBreaker: stops querying an exporter after consecutive failures, for a while, then lets one
// query through to probe it (half-open); a success closes it again.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "transforms/metadata/prefix.hpp"

namespace sluice::transforms::metadata {

class CircuitBreaker {
 public:
  CircuitBreaker(int failures, std::int64_t open_for_ms) : failures_(failures), open_for_ms_(open_for_ms) {}

  // May a query go to this exporter now? While open: no. Once open_for has passed, one probe is let
  // through (and the breaker stays open until that probe succeeds or fails).
  bool allow(const Ip6& exporter, std::int64_t now_ms) {
    std::lock_guard lock(mutex_);
    const auto it = states_.find(exporter);
    if (it == states_.end() || it->second.open_until == 0) return true;
    auto& s = it->second;
    if (now_ms < s.open_until || s.probing) return false;
    s.probing = true;
    return true;
  }

  void success(const Ip6& exporter) {
    std::lock_guard lock(mutex_);
    states_.erase(exporter);
  }

  // Returns true when this failure opens (or re-opens) the breaker.
  bool failure(const Ip6& exporter, std::int64_t now_ms) {
    std::lock_guard lock(mutex_);
    auto& s = states_[exporter];
    ++s.consecutive;
    if (s.probing || (s.open_until == 0 && s.consecutive >= failures_)) {
      s.open_until = now_ms + open_for_ms_;
      s.probing = false;
      return true;
    }
    return false;
  }

  bool is_open(const Ip6& exporter, std::int64_t now_ms) const {
    std::lock_guard lock(mutex_);
    const auto it = states_.find(exporter);
    return it != states_.end() && it->second.open_until != 0 && (now_ms < it->second.open_until || it->second.probing);
  }

  std::size_t open_count(std::int64_t now_ms) const {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& [address, s] : states_) {
      if (s.open_until != 0 && (now_ms < s.open_until || s.probing)) ++n;
    }
    return n;
  }

 private:
  struct State {
    int consecutive = 0;
    std::int64_t open_until = 0;  // 0: closed
    bool probing = false;
  };
  const int failures_;
  const std::int64_t open_for_ms_;
  mutable std::mutex mutex_;
  std::unordered_map<Ip6, State, Ip6Hash> states_;
};

}  // namespace sluice::transforms::metadata
