// MetadataCache: what is known about exporters and interfaces (static answers first, then SNMP values),
// read lock-shared on the decode path; refreshed ahead of expiry, bounded, and persisted across restarts.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/metrics.hpp"
#include "transforms/metadata.hpp"
#include "transforms/metadata/config.hpp"
#include "transforms/metadata/prefix.hpp"

namespace sluice::transforms::metadata {

// Unix time in milliseconds: cached values carry wall-clock times because they outlive the process.
using TimeMs = std::int64_t;
TimeMs now_ms();

// What a lookup found. `unseen` means the key was never asked for: the caller admits it (which may
// schedule a fetch); `miss` means it is known but has no value (fetch pending or failed, or absent).
enum class Found { hit, miss, unseen };

// One SNMP query to make: sysName.0 always, plus these interfaces.
struct FetchRequest {
  Ip6 exporter{};
  std::vector<std::uint32_t> interfaces;
};

// The answer to a FetchRequest. A value the agent does not have (noSuchInstance) is a null pointer:
// it is remembered as absent until the next refresh rather than asked for on every flow.
struct FetchResult {
  Ip6 exporter{};
  std::shared_ptr<const ExporterInfo> exporter_info;
  std::vector<std::pair<std::uint32_t, std::shared_ptr<const InterfaceInfo>>> interfaces;
};

// Decided once per exporter when it is first seen.
struct ExporterPolicy {
  const StaticExporter* static_entry = nullptr;  // must outlive the cache
  bool fetchable = false;                        // SNMP enabled and credentials known
};

struct MaintenanceResult {
  std::vector<FetchRequest> due;  // marked pending; each must end in store() or fetch_failed()
  std::size_t expired = 0;        // values dropped because they outlived the ttl
  std::size_t forgotten = 0;      // unused keys removed
};

struct CacheSizes {
  std::size_t exporters = 0;
  std::size_t interfaces = 0;
  std::size_t values = 0;  // slots holding a value
};

class MetadataCache {
 public:
  struct Options {
    TimeMs ttl = 24 * 3600 * 1000;
    TimeMs refresh = 30 * 60 * 1000;
    TimeMs retry_after = 30 * 1000;
    std::size_t max_exporters = 4096;
    std::size_t max_interfaces = 4096;
    std::size_t interfaces_per_request = 6;  // keeps a response well under a 1500-byte datagram
    Counter* evictions = nullptr;            // exporters evicted to stay within max_exporters
  };

  MetadataCache(Options options, std::function<ExporterPolicy(const Ip6&)> resolve);
  MetadataCache(const MetadataCache&) = delete;
  MetadataCache& operator=(const MetadataCache&) = delete;

  // Decode path: a shared lock and hash lookups; no allocation, no clock, no syscall.
  std::shared_ptr<const ExporterInfo> exporter(const Ip6& address, Found& found) const;
  std::shared_ptr<const InterfaceInfo> interface(const Ip6& address, std::uint32_t index, Found& found) const;

  // Records a key first seen by a lookup. Returns the fetch to make now, if any (the key is marked
  // pending); nullopt when nothing is to be fetched (static answer, SNMP off, bounds, someone else).
  std::optional<FetchRequest> admit_exporter(const Ip6& address, TimeMs now);
  std::optional<FetchRequest> admit_interface(const Ip6& address, std::uint32_t index, TimeMs now);

  // Ends a pending fetch.
  void store(const FetchResult& result, TimeMs now);
  void fetch_failed(const FetchRequest& request);

  // Expires, forgets and collects what is due for a (re)fetch. Call every few seconds.
  MaintenanceResult maintain(TimeMs now);

  // Atomic replacement of `path` (tmp, fsync, rename). Returns an error message, empty on success.
  std::string save(const std::string& path) const;
  // Loads what is still within the ttl. Returns entries loaded; throws nothing: a damaged file is
  // reported through `error` and ignored, since the cache can always be rebuilt from the devices.
  std::size_t load(const std::string& path, TimeMs now, std::string* error);

  CacheSizes sizes() const;

 private:
  template <typename T>
  struct Slot {
    std::shared_ptr<const T> value;
    TimeMs fetched = 0;    // last successful fetch, 0: never
    TimeMs attempted = 0;  // last fetch started
    bool pending = false;  // queued or in flight
    mutable std::atomic<bool> used{false};  // looked up since the last fetch started

    void touch() const {
      if (!used.load(std::memory_order_relaxed)) used.store(true, std::memory_order_relaxed);
    }
  };
  struct Entry {
    ExporterPolicy policy;
    Slot<ExporterInfo> exporter;
    std::unordered_map<std::uint32_t, Slot<InterfaceInfo>> interfaces;
    bool full = false;       // max_interfaces reached: new indexes are misses, not admissions
    TimeMs refreshed = 0;    // last successful fetch of anything: eviction order
  };

  Entry* insert_entry(const Ip6& address, TimeMs now);  // exclusive lock held
  template <typename T>
  bool start_fetch(Slot<T>& slot, TimeMs now);

  Options options_;
  std::function<ExporterPolicy(const Ip6&)> resolve_;
  mutable std::shared_mutex mutex_;
  std::unordered_map<Ip6, Entry, Ip6Hash> entries_;
};

}  // namespace sluice::transforms::metadata
