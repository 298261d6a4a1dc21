// DeadLetters: append-only NDJSON files of items a sink refused for good, fsynced, bounded with rotation.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "core/metrics.hpp"

namespace sluice::sinks {

// One refused item. `reason` is a short kind (it becomes a metric label: keep it low-cardinality,
// e.g. "mapper_parsing_exception"); `detail` is the full explanation; `record` is the item itself.
struct DeadLetter {
  std::string_view reason;
  std::string_view record;
  std::string_view detail;
};

// Each record is one line:
//   {"time":"2026-11-21T15:23:26.123Z","sink":"elasticsearch","reason":"...","detail":"...","record":"..."}
// with the record as a JSON string (any bytes; invalid UTF-8 becomes U+FFFD), so that a file stays valid
// NDJSON whatever the sinks put in it. Files are `dead-letters-<sequence>.ndjson`; a file is closed at a
// quarter of `max_bytes`, and the oldest files are removed (counted) while the total exceeds `max_bytes`.
// Thread-safe; write() returns only once the records are on disk.
class DeadLetters {
 public:
  DeadLetters(std::string dir, MetricsRegistry& metrics, std::uint64_t max_bytes = 1ull << 30);
  ~DeadLetters();
  DeadLetters(const DeadLetters&) = delete;
  DeadLetters& operator=(const DeadLetters&) = delete;

  // false when the records could not be made durable (disk full, permissions): the caller keeps the
  // items and retries, so that a broken dead-letter directory never loses data.
  bool write(std::string_view sink, std::string_view reason, std::string_view record, std::string_view detail = {});
  // Several records with one fsync.
  bool write(std::string_view sink, std::span<const DeadLetter> letters);

  const std::string& dir() const { return dir_; }
  std::uint64_t bytes() const;

 private:
  bool open_next();
  void enforce_bound();

  std::string dir_;
  std::uint64_t max_bytes_;
  std::uint64_t file_limit_;
  MetricsRegistry& metrics_;
  Counter& write_errors_;
  Counter& removed_files_;
  Counter& removed_bytes_;
  mutable std::mutex mutex_;
  int fd_ = -1;
  std::uint64_t sequence_ = 0;
  std::uint64_t file_bytes_ = 0;
  std::uint64_t total_bytes_ = 0;
  std::string line_;  // reused encoding buffer
};

// Appends `text` to `out` as the inside of a JSON string: quotes, backslashes and control characters
// escaped, invalid UTF-8 sequences replaced by U+FFFD. Returns how many replacements were made.
std::size_t append_json_escaped(std::string& out, std::string_view text);

}  // namespace sluice::sinks
