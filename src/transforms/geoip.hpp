// GeoIp: AS numbers and countries from MaxMind-format (MMDB) files, reloaded when the files change.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/envelope.hpp"

namespace sluice {
class Counter;
class MetricsRegistry;
}  // namespace sluice

namespace sluice::transforms {

// One opened MMDB file (memory-mapped). Lookups are read-only and safe from any number of threads.
class MmdbFile {
 public:
  // Returns nullptr and says why in `error` when the file is missing or not an MMDB database.
  static std::unique_ptr<MmdbFile> open(const std::string& path, std::string* error);
  ~MmdbFile();
  MmdbFile(const MmdbFile&) = delete;
  MmdbFile& operator=(const MmdbFile&) = delete;

  // autonomous_system_number of the network containing `a`, 0 when absent.
  std::uint32_t asn(const Ip6& a) const;
  // country.iso_code into out[0..1]; false (out untouched) when absent or not two letters.
  bool country(const Ip6& a, char out[2]) const;

 private:
  struct Handle;
  explicit MmdbFile(std::unique_ptr<Handle> h);
  std::unique_ptr<Handle> handle_;
};

// The databases in use at one moment; replaced as a whole on reload, never modified.
struct GeoSnapshot {
  std::shared_ptr<const MmdbFile> asn;
  std::shared_ptr<const MmdbFile> country;
};

struct GeoIpConfig {
  std::string asn_database;      // empty: no ASN database
  std::string country_database;  // empty: no country database
  std::chrono::milliseconds check_interval{5000};  // 0: no background checks (call check_now)
};

// Opens the configured files at construction (a missing or broken file throws std::runtime_error:
// a configuration error at start). A background thread then stats them every check_interval and
// reopens a file whose inode, size or modification time changed; a file that fails to open keeps the
// previous database in use, and is counted and logged once per change. Replace files atomically
// (write a new file, then rename it over the old one), as geoipupdate does: the old one stays mapped.
class GeoIp {
 public:
  GeoIp(GeoIpConfig config, MetricsRegistry& metrics);
  ~GeoIp();
  GeoIp(const GeoIp&) = delete;
  GeoIp& operator=(const GeoIp&) = delete;

  std::shared_ptr<const GeoSnapshot> snapshot() const;
  // Bumped on every successful reload; readers compare it to decide when to drop cached answers.
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  // Checks both files now; returns true if one was reloaded.
  bool check_now();

 private:
  struct FileState {
    std::string path;
    const char* label;  // "asn" or "country"
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    std::int64_t mtime_ns = 0;
    bool failed_signature = false;  // the current signature already failed to open: wait for a change
    Counter* reloads = nullptr;
    Counter* failures = nullptr;
  };
  // Returns the newly opened file if `f` changed and opens cleanly.
  std::shared_ptr<const MmdbFile> reload_if_changed(FileState& f);
  void run();

  GeoIpConfig config_;
  FileState asn_file_, country_file_;
  mutable std::mutex mutex_;  // guards snapshot_
  std::shared_ptr<const GeoSnapshot> snapshot_;
  std::atomic<std::uint64_t> generation_{1};
  std::mutex check_mutex_;  // one check at a time (thread and check_now)
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace sluice::transforms
