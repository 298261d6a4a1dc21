// AckTracker: per-partition bookkeeping that turns out-of-order batch acks into a safe commit offset.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>

namespace sluice {

// Offsets are consumed in increasing order (gaps allowed: compaction, control records) and grouped
// into batches that sinks acknowledge in any order. The committable offset is the first offset that is
// not yet acknowledged: everything below it has durably arrived, so committing it never loses data.
class AckTracker {
 public:
  explicit AckTracker(std::int64_t next_offset) : committable_(next_offset), next_expected_(next_offset) {}

  // Records that `offset` was read. Offsets skipped since the previous one are treated as acknowledged.
  void consumed(std::int64_t offset) { consumed_range(offset, offset); }
  // Records a batch's offsets [first, last] at once: what lies between them is either read or absent,
  // and both are acknowledged with the batch. One lock per batch instead of one per message.
  void consumed_range(std::int64_t first, std::int64_t last);
  // Acknowledges every consumed offset in [first, last].
  void acked(std::int64_t first, std::int64_t last);
  // The offset to commit (Kafka semantics: the next offset to read).
  std::int64_t committable() const;
  // Offsets read but not yet acknowledged.
  std::int64_t in_flight() const;

 private:
  void advance_locked();

  mutable std::mutex mutex_;
  std::int64_t committable_;
  std::int64_t next_expected_;
  std::map<std::int64_t, std::int64_t> acked_;  // first -> last, ranges above committable_
};

}  // namespace sluice
