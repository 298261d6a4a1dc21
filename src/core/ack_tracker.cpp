#include "core/ack_tracker.hpp"

#include <algorithm>

namespace sluice {

void AckTracker::consumed(std::int64_t offset) {
  std::lock_guard lock(mutex_);
  if (offset < next_expected_) return;  // a replayed offset: already accounted for
  if (offset > next_expected_) {
    acked_[next_expected_] = offset - 1;
    advance_locked();
  }
  next_expected_ = offset + 1;
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
