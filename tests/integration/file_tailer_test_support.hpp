// Test support for the file tailer: a recording publisher (acks inline, late, shuffled or failed), a writer of
// numbered lines, and the exactly-once tally.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "../fixtures/process.hpp"
#include "core/log_record.hpp"
#include "core/metrics.hpp"
#include "sources/files/file_tailer.hpp"

namespace sluice::sources::test {

using namespace std::chrono_literals;

struct StoredLine {
  std::string host, path;
  std::uint64_t file_id = 0, offset = 0;
  std::string text;
  std::uint8_t flags = 0;
};

// The bus and store of the tests: lines count as arrived when their chunk is delivered with ok.
class TestPublisher : public ChunkPublisher {
 public:
  ~TestPublisher() override { halt(); }
  void attach(FileTailer* t) {
    tailer_ = t;
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
  }
  // Stops delivering (what is pending is dropped: a crash before the bus answered).
  void halt() {
    quit_ = true;
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mutex_);
    pending_.clear();
    tailer_ = nullptr;
    quit_ = false;
  }

  std::atomic<bool> refuse{false};
  std::atomic<bool> defer{false};     // deliver later from another thread, in shuffled order
  std::atomic<int> fail_every{0};     // every Nth delivery reports delivered=false

  bool publish(std::string_view topic, std::string_view key, std::span<const std::byte> chunk,
               std::uint64_t cookie) override {
    if (refuse) {
      ++refused_;
      return false;
    }
    std::unique_lock lock(mutex_);
    topics_.insert(std::string(topic));
    keys_.insert(std::string(key));
    if (defer) {
      pending_.push_back({cookie, std::vector<std::byte>(chunk.begin(), chunk.end())});
      return true;
    }
    std::vector<std::byte> copy(chunk.begin(), chunk.end());
    lock.unlock();
    deliver(cookie, copy);  // from inside publish(), as a synchronous bus may
    return true;
  }

  std::vector<StoredLine> lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  std::set<std::string> keys() const {
    std::lock_guard lock(mutex_);
    return keys_;
  }
  std::set<std::string> topics() const {
    std::lock_guard lock(mutex_);
    return topics_;
  }
  std::uint64_t failed() const { return failed_; }
  std::uint64_t refused() const { return refused_; }

 private:
  void deliver(std::uint64_t cookie, const std::vector<std::byte>& chunk) {
    int every = fail_every;
    bool ok = !(every > 0 && ++deliveries_ % every == 0);
    if (ok) {
      LogChunkReader r;
      EXPECT_EQ(r.open(chunk), LogChunkError::none);
      LogLine l;
      std::lock_guard lock(mutex_);
      while (r.next(l)) {
        lines_.push_back({std::string(r.host()), std::string(r.path()), r.file_id(), l.offset, std::string(l.text),
                          l.flags});
      }
      EXPECT_EQ(r.error(), LogChunkError::none);
    } else {
      ++failed_;
    }
    if (FileTailer* t = tailer_.load()) t->on_delivery(cookie, ok);
  }
  void loop() {
    std::mt19937 rng(12345);
    while (!quit_) {
      std::vector<std::pair<std::uint64_t, std::vector<std::byte>>> batch;
      {
        std::lock_guard lock(mutex_);
        batch.swap(pending_);
      }
      std::shuffle(batch.begin(), batch.end(), rng);
      for (auto& [cookie, bytes] : batch) deliver(cookie, bytes);
      std::this_thread::sleep_for(3ms);  // deliveries come late: the tailer keeps reading meanwhile
    }
  }

  mutable std::mutex mutex_;
  std::vector<StoredLine> lines_;
  std::set<std::string> keys_, topics_;
  std::vector<std::pair<std::uint64_t, std::vector<std::byte>>> pending_;
  std::atomic<FileTailer*> tailer_{nullptr};
  std::atomic<bool> quit_{false};
  std::atomic<std::uint64_t> failed_{0}, refused_{0}, deliveries_{0};
  std::thread thread_;
};

// A tailer with its publisher and metrics; destroy() without stop() is what kill -9 leaves.
struct Harness {
  explicit Harness(std::string data_dir) : data(std::move(data_dir)) {}
  ~Harness() { kill(); }
  FileTailerConfig config() const {
    FileTailerConfig c;
    c.host = "testhost";
    c.data_dir = data;
    c.default_topic = "logs";
    c.rescan_interval = 200ms;
    c.checkpoint_interval = 100ms;
    c.rotated_grace = 300ms;
    c.copy_window = 3000ms;
    return c;
  }
  FileTailer& start(std::vector<FileSourceConfig> sources, std::optional<FileTailerConfig> cfg = {}) {
    tailer = std::make_unique<FileTailer>(cfg ? *cfg : config(), pub, metrics);
    pub.attach(tailer.get());
    tailer->set_sources(std::move(sources));
    tailer->start();
    return *tailer;
  }
  void stop() {
    if (!tailer) return;
    tailer->stop(std::chrono::steady_clock::now() + 5s);
    pub.halt();
    tailer.reset();
  }
  void kill() {
    pub.halt();
    tailer.reset();
  }

  std::string data;
  TestPublisher pub;
  MetricsRegistry metrics;
  std::unique_ptr<FileTailer> tailer;
};

inline FileSourceConfig source(std::vector<std::string> include, std::vector<std::string> exclude = {}) {
  FileSourceConfig c;
  c.name = "static";
  c.include = std::move(include);
  c.exclude = std::move(exclude);
  return c;
}

inline std::string numbered(long n, std::size_t bytes = 100) {
  char head[16];
  std::snprintf(head, sizeof head, "L%09ld ", n);
  std::string s(head);
  s.resize(bytes - 1, 'x');
  s.push_back('\n');
  return s;
}

inline void append(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
}

inline std::string lines_from(long first, long last) {
  std::string s;
  for (long n = first; n <= last; ++n) s += numbered(n);
  return s;
}

// Appends numbered lines at a steady rate, reopening the path when it is replaced (as an application does
// after logrotate's postrotate signal).
class Writer {
 public:
  Writer(std::string path, long total, int per_ms = 25) : path_(std::move(path)), total_(total), per_ms_(per_ms) {
    thread_ = std::thread([this] { run(); });
  }
  ~Writer() { join(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  long written() const { return written_; }
  double lines_per_second() const { return rate_; }

 private:
  void run() {
    int fd = -1;
    ino_t ino = 0;
    auto t0 = std::chrono::steady_clock::now();
    auto next = t0;
    std::string batch;
    long n = 1;
    while (n <= total_) {
      struct stat st {};
      if (fd < 0 || (::stat(path_.c_str(), &st) == 0 && st.st_ino != ino)) {
        // Only the first open creates the file. After a rename the writer goes on in the renamed file until the
        // new one exists: creating it itself would race logrotate's `create`, which then moves the writer's file
        // aside as <name>-<date>.backup (matched by no source), losing what was written there.
        int next_fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | (fd < 0 ? O_CREAT : 0), 0644);
        if (next_fd >= 0) {
          if (fd >= 0) ::close(fd);
          fd = next_fd;
          struct stat fst {};
          ::fstat(fd, &fst);
          ino = fst.st_ino;
        }
      }
      batch.clear();
      for (int i = 0; i < per_ms_ && n <= total_; ++i) batch += numbered(n++);
      if (::write(fd, batch.data(), batch.size()) != static_cast<ssize_t>(batch.size())) std::abort();
      written_ = n - 1;
      next += 1ms;
      std::this_thread::sleep_until(next);
    }
    rate_ = total_ / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ::close(fd);
  }
  std::string path_;
  long total_;
  int per_ms_;
  std::atomic<long> written_{0};
  std::atomic<double> rate_{0};
  std::thread thread_;
};

struct Tally {
  std::map<long, int> raw, unique;  // line number -> arrivals, and distinct identities carrying it
  std::size_t raw_total = 0, unique_total = 0, other = 0;
};

inline Tally tally(const std::vector<StoredLine>& lines) {
  Tally t;
  std::set<std::tuple<std::string, std::uint64_t, std::uint64_t>> seen;
  for (const auto& l : lines) {
    if (l.text.size() < 10 || l.text[0] != 'L') {
      ++t.other;
      continue;
    }
    long n = std::stol(l.text.substr(1, 9));
    ++t.raw[n];
    ++t.raw_total;
    if (seen.emplace(l.path, l.file_id, l.offset).second) {
      ++t.unique[n];
      ++t.unique_total;
    }
  }
  return t;
}

// Every line 1..total arrived once by identity; with `exact_raw`, also once in raw count (no duplicate at all).
inline void expect_exactly_once(const Tally& t, long total, bool exact_raw) {
  long missing = 0, doubled = 0, raw_doubled = 0;
  for (long n = 1; n <= total; ++n) {
    auto u = t.unique.find(n);
    if (u == t.unique.end()) {
      if (++missing <= 5) ADD_FAILURE() << "line " << n << " never arrived";
    } else if (u->second != 1) {
      if (++doubled <= 5) ADD_FAILURE() << "line " << n << " arrived under " << u->second << " identities";
    }
    auto r = t.raw.find(n);
    if (r != t.raw.end() && r->second > 1) ++raw_doubled;
  }
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(doubled, 0);
  EXPECT_EQ(t.unique_total, static_cast<std::size_t>(total));
  if (exact_raw) {
    EXPECT_EQ(raw_doubled, 0);
    EXPECT_EQ(t.raw_total, static_cast<std::size_t>(total));
  }
}

inline bool all_arrived(const TestPublisher& pub, long total) {
  return static_cast<long>(tally(pub.lines()).unique.size()) >= total;
}

}  // namespace sluice::sources::test
