// FileTailer: the log file source — finds files by glob, tails them across rotation and truncation, publishes
// LogChunks and checkpoints each file's position once the bus has acknowledged every line before it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sources/files/file_source_config.hpp"

namespace sluice {
class MetricsRegistry;
}

namespace sluice::sources {

// Where the tailer hands encoded chunks (implemented by the bus wiring; tests implement it too).
class ChunkPublisher {
 public:
  virtual ~ChunkPublisher() = default;
  // One encoded LogChunk. false: the bus refuses for now (full); the tailer keeps the chunk and retries
  // later (backpressure: stop reading that file meanwhile; nothing is dropped). After true, exactly one call
  // FileTailer::on_delivery(cookie, ok) follows, from any thread (possibly from inside publish()).
  virtual bool publish(std::string_view topic, std::string_view key, std::span<const std::byte> chunk,
                       std::uint64_t cookie) = 0;
};

struct FileTailerConfig {
  std::string host;            // stamped into every chunk; default gethostname()
  std::string data_dir;        // checkpoints live in <data_dir>/files/
  std::string default_topic;   // for sources whose topic is empty
  std::chrono::milliseconds rescan_interval{2000};   // glob rescan, the fallback when inotify misses
  std::chrono::milliseconds checkpoint_interval{1000};
  std::size_t max_chunk_bytes = 1 << 20;             // lines are grouped into chunks up to this size
  std::size_t max_in_flight_bytes = 64 << 20;        // published, not yet acknowledged: reading pauses beyond
  // A file no longer found at a matching path (renamed away, deleted) is read on while it grows, and
  // closed once it has been idle this long, read to its end and acknowledged.
  std::chrono::milliseconds rotated_grace{5000};
  // How long a truncated file's old content waits for its copy (copytruncate), and a new file whose first
  // bytes equal a tailed file's waits to be told apart from a copy about to be made.
  std::chrono::milliseconds copy_window{10000};
  // Checkpoints of files gone and fully read are forgotten after this long.
  std::chrono::milliseconds forget_after{std::chrono::hours(24)};
  std::size_t max_checkpoints = 10000;
};

class FileTailer {
 public:
  FileTailer(FileTailerConfig config, ChunkPublisher& publisher, MetricsRegistry& metrics);
  // Without stop(), stops the thread without writing checkpoints (what a kill leaves behind).
  ~FileTailer();
  FileTailer(const FileTailer&) = delete;
  FileTailer& operator=(const FileTailer&) = delete;

  // Live: new sources start; removed ones stop once their open files are read to the end and acknowledged.
  void set_sources(std::vector<FileSourceConfig> sources);
  // Loads checkpoints and starts the thread. Throws std::runtime_error (with what to do) when the
  // checkpoint directory cannot be used.
  void start();
  // Stops reading, waits for deliveries until `deadline`, writes checkpoints.
  void stop(std::chrono::steady_clock::time_point deadline);
  void on_delivery(std::uint64_t cookie, bool delivered);  // thread-safe
  // Per source and file: path, file id, read offset, acked offset, lag bytes.
  nlohmann::json status() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::sources
