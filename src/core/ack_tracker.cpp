#include "core/ack_tracker.hpp"

#include <algorithm>

namespace sluice {

void AckTracker::consumed_range(std::int64_t first, std::int64_t last) {
  std::lock_guard lock(mutex_);
  if (last < next_expected_) return;  // replayed offsets: already accounted for
  if (first > next_expected_) {
    acked_[next_expected_] = first - 1;
    advance_locked();
  }
  next_expected_ = last + 1;
}

void AckTracker::acked(std::int64_t first, std::int64_t last) {
  std::lock_guard lock(mutex_);
  if (last < committable_) return;
  first = std::max(first, committable_);
  auto& slot = acked_[first];
  slot = std::max(slot, last);
  advance_locked();
}

void AckTracker::advance_locked() {
  for (auto it = acked_.begin(); it != acked_.end() && it->first <= committable_; it = acked_.erase(it)) {
    committable_ = std::max(committable_, it->second + 1);
  }
}

std::int64_t AckTracker::committable() const {
  std::lock_guard lock(mutex_);
  return committable_;
}

std::int64_t AckTracker::in_flight() const {
  std::lock_guard lock(mutex_);
  return next_expected_ - committable_;
}

}  // namespace sluice
