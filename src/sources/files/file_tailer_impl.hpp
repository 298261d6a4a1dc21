// FileTailer::Impl: the tailer's state, shared by file_tailer.cpp (thread, acks, checkpoints) and
// file_tailer_scan.cpp (discovery, identity, rotation, reading).
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/log_limiter.hpp"
#include "core/log_record.hpp"
#include "core/metrics.hpp"
#include "sources/files/ack_window.hpp"
#include "sources/files/checkpoint_store.hpp"
#include "sources/files/file_identity.hpp"
#include "sources/files/file_tailer.hpp"
#include "sources/files/line_cutter.hpp"

namespace sluice::sources {

using Clock = std::chrono::steady_clock;

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

struct SourceRt {
  FileSourceConfig config;
  std::unique_ptr<LineCutter> cutter;
  std::string topic;
  bool removed = false;
  bool scanned = false;  // start_at applies to files found by the first scan only
  CutCounts reported;    // cutter counts already added to the metrics
};

// One file identity: an open file, a file gone but remembered (checkpoint), or the old content of a
// truncated file waiting for its copy.
struct TrackedFile {
  std::uint64_t key = 0;
  std::string source;
  std::string path;          // where it was first found: part of its lines' identity and the publish key
  std::string publish_key;   // host:path
  std::string current_path;  // where it was seen last
  std::uint64_t file_id = 0;
  std::uint64_t dev = 0, ino = 0;
  Fingerprint fp;
  UniqueFd fd;
  std::uint64_t read_pos = 0;  // next byte to cut
  std::uint64_t size = 0;      // at the last look
  AckWindow acks;
  CutterState cut;
  std::vector<std::byte> refused;  // a chunk the bus refused, published again before reading on
  std::uint64_t refused_end = 0;
  bool live = true;        // at a path matched by its source at the last scan
  bool unmatched = false;  // still at its path, but no source matches it any more: drained, then closed
  bool truncated = false;  // old content of a truncated inode: waits for a copy until copy_deadline
  bool at_eof = false;
  bool finished = false;   // read to its end and closed
  bool from_gzip = false;  // fd is the decompressed remainder of its compressed rotation (a temporary file)
  Clock::time_point idle_since{};  // when it stopped being live, or last grew while not live
  Clock::time_point copy_deadline{};
  std::int64_t last_seen_ms = 0;
};

struct FileTailer::Impl {
  Impl(FileTailerConfig c, ChunkPublisher& p, MetricsRegistry& m);

  // file_tailer.cpp
  void run();
  void drain_deliveries();
  void apply_sources();
  bool publish_chunk(TrackedFile& f, std::span<const std::byte> bytes, std::uint64_t end);
  void retry_refused(TrackedFile& f);
  void rewind(TrackedFile& f, const char* why);
  void save_checkpoints();
  void load_checkpoints();
  void update_metrics();
  void housekeeping(Clock::time_point now);

  // file_tailer_scan.cpp
  void add_watches();
  void handle_inotify();
  void scan(Clock::time_point now);
  TrackedFile* adopt_found(SourceRt& src, const std::string& path, UniqueFd fd, const struct stat& st,
                           Clock::time_point now);
  void assign_identity(TrackedFile& f, const Fingerprint& fp);
  bool poll_file(TrackedFile& f, Clock::time_point now, bool verify);
  void truncated(TrackedFile& f, Clock::time_point now);
  bool read_file(TrackedFile& f, LineCutter::Flush flush);
  SourceRt* source_of(const TrackedFile& f);
  TrackedFile& new_file();

  // file_tailer_gzip.cpp
  void finish_from_gzip(Clock::time_point now);
  bool open_from_gzip(TrackedFile& f, int gz_fd, const std::string& gz_path);
  bool read_unseen_gzip(SourceRt& src, const std::string& rotated_from, int gz_fd, const std::string& gz_path,
                        std::string_view first);

  FileTailerConfig config;
  ChunkPublisher& publisher;
  MetricsRegistry& metrics;
  CheckpointStore store;

  mutable std::mutex mutex;  // everything below, held by the thread while it works
  std::map<std::string, std::unique_ptr<SourceRt>> sources;
  std::map<std::uint64_t, std::unique_ptr<TrackedFile>> files;
  std::unordered_map<std::uint64_t, std::uint64_t> cookies;  // cookie -> file key
  // New files with the first bytes of a file being tailed: probably a copy being made before a truncation.
  // Held open (the copy may be compressed and deleted right after the truncation) for copy_window.
  struct CopyCandidate {
    Clock::time_point since;
    UniqueFd fd;
    std::string path;
  };
  std::map<std::pair<std::uint64_t, std::uint64_t>, CopyCandidate> copy_candidates;  // by (dev, ino)
  // What the last look at a gzip file in a watched directory found, by (dev, ino): not looked at again while
  // its size and mtime stay the same.
  struct GzipSeen {
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    bool gzip = false;              // starts with the gzip magic
    std::string first;              // its first decompressed bytes (up to 4096), to compare fingerprints
    bool failed = false;            // corrupt, or truncated: retried when it changes
    bool used = false;              // the remainder of a tracked file was read from it
    bool reported = false;          // a failure logged and counted
    Clock::time_point since{};      // when it was first seen truncated
    bool seen = false;              // found by the current scan
  };
  std::map<std::pair<std::uint64_t, std::uint64_t>, GzipSeen> gzip_seen;
  std::uint64_t next_key = 1, next_cookie = 1;
  std::size_t in_flight_bytes = 0;
  std::vector<char> buffer;
  LogChunkWriter writer;
  bool dirty = false;
  bool scan_requested = true;
  Clock::time_point last_scan{}, last_checkpoint{}, last_event_scan{};

  std::mutex sources_mutex;  // sources handed over by set_sources()
  std::optional<std::vector<FileSourceConfig>> pending_sources;

  std::mutex deliveries_mutex;
  std::vector<std::pair<std::uint64_t, bool>> deliveries, deliveries_work;

  int inotify_fd = -1, wake_fd = -1;
  std::map<std::string, int> watches;  // directory -> watch descriptor
  std::unordered_map<int, std::string> watch_dirs;
  std::atomic<bool> stopping{false}, quit{false};
  Clock::time_point stop_deadline{};
  std::thread thread;
  bool started = false;
  LogLimiter log_limiter;

  Counter &lines_read, &bytes_read, &lines_split, &lines_truncated, &lines_invalid, &rot_rename, &rot_truncate,
      &rot_copy, &rot_compressed, &gzip_errors, &ckpt_writes, &ckpt_failures, &publish_refused, &rewinds, &lines_lost;
  Gauge &files_open;
};

}  // namespace sluice::sources
