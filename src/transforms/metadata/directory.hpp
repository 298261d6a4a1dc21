// MetadataDirectory: the InterfaceDirectory of sluice. Answers from static configuration first, then
// from the SNMP cache; unknown keys return null at once and are fetched in the background.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "core/metrics.hpp"
#include "transforms/metadata.hpp"
#include "transforms/metadata/breaker.hpp"
#include "transforms/metadata/cache.hpp"
#include "transforms/metadata/config.hpp"

namespace sluice::transforms::metadata {

struct FetchReply;

class MetadataDirectory final : public InterfaceDirectory {
 public:
  MetadataDirectory(MetadataConfig config, MetricsRegistry& metrics);
  ~MetadataDirectory() override;
  MetadataDirectory(const MetadataDirectory&) = delete;
  MetadataDirectory& operator=(const MetadataDirectory&) = delete;

  // Loads the persisted cache and starts the SNMP poller. Lookups work before start(): their fetches
  // wait in the queue.
  void start();
  // Stops the poller (queries in flight are abandoned) and saves the cache. Idempotent.
  void stop();

  // Decode path: never waits on the network.
  std::shared_ptr<const ExporterInfo> exporter(const Ip6& exporter_address) override;
  std::shared_ptr<const InterfaceInfo> interface(const Ip6& exporter_address, std::uint32_t if_index) override;

  // For /api/v0/status.
  nlohmann::json status() const;
  // Saves the cache now (also done periodically and at stop). Returns an error message, empty if fine.
  std::string save();
  const MetadataCache& cache() const { return cache_; }

 private:
  void schedule(std::optional<FetchRequest> request);
  void run();
  void on_reply(const FetchRequest& request, FetchReply&& reply);
  ExporterPolicy resolve(const Ip6& address) const;

  const MetadataConfig config_;
  MetricsRegistry& metrics_;
  Counter& exporter_hits_;
  Counter& exporter_misses_;
  Counter& interface_hits_;
  Counter& interface_misses_;
  Counter& fetch_ok_;
  Counter& fetch_timeout_;
  Counter& fetch_error_;
  Counter& breaker_opened_;
  Counter& breaker_skipped_;
  Counter& queue_full_;
  Counter& evictions_;
  Counter& expired_;
  Counter& save_errors_;
  PrefixTable<const StaticExporter*> static_table_;  // points into config_
  CircuitBreaker breaker_;
  MetadataCache cache_;

  mutable std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<FetchRequest> queue_;
  bool stopping_ = false;  // under queue_mutex_
  std::atomic<std::size_t> in_flight_{0};
  std::thread thread_;
  bool started_ = false;
  std::atomic<TimeMs> last_save_{0};
};

}  // namespace sluice::transforms::metadata
