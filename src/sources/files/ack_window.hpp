// AckWindow: the chunks of one file published and not yet acknowledged, and the contiguous acknowledged offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

namespace sluice::sources {

// Chunks are added in file order. A delivery marks its chunk; the acknowledged offset moves over the
// delivered chunks at the front only, so an out-of-order delivery waits for the ones before it.
class AckWindow {
 public:
  explicit AckWindow(std::uint64_t acked = 0) : acked_(acked) {}

  void add(std::uint64_t cookie, std::uint64_t end, std::size_t bytes) {
    chunks_.push_back(Chunk{cookie, end, bytes, false});
    bytes_ += bytes;
  }
  // Marks a chunk delivered. Returns the bytes released from the front (0 when it waits behind others, or
  // when the cookie is not in the window).
  std::size_t delivered(std::uint64_t cookie) {
    for (auto& c : chunks_) {
      if (c.cookie == cookie) {
        c.delivered = true;
        break;
      }
    }
    std::size_t released = 0;
    while (!chunks_.empty() && chunks_.front().delivered) {
      acked_ = chunks_.front().end;
      released += chunks_.front().bytes;
      bytes_ -= chunks_.front().bytes;
      chunks_.pop_front();
    }
    return released;
  }
  bool contains(std::uint64_t cookie) const {
    for (const auto& c : chunks_) {
      if (c.cookie == cookie) return true;
    }
    return false;
  }
  // Forgets every chunk in flight (after a failed delivery the file is read again from acked()).
  // Returns the bytes they held.
  std::size_t clear() {
    std::size_t b = bytes_;
    chunks_.clear();
    bytes_ = 0;
    return b;
  }
  void reset(std::uint64_t acked) {
    clear();
    acked_ = acked;
  }

  std::uint64_t acked() const { return acked_; }
  std::size_t in_flight_bytes() const { return bytes_; }
  std::size_t in_flight_chunks() const { return chunks_.size(); }
  bool empty() const { return chunks_.empty(); }

 private:
  struct Chunk {
    std::uint64_t cookie, end;
    std::size_t bytes;
    bool delivered;
  };
  std::deque<Chunk> chunks_;
  std::uint64_t acked_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace sluice::sources
