// JobWatcher: follows the job definitions under <prefix>/jobs/ in etcd and hands the whole set to a handler on every change.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "coord/coordination_config.hpp"
#include "coord/etcd_client.hpp"
#include "core/log_limiter.hpp"
#include "core/metrics.hpp"

namespace sluice::coord {

struct JobWatcherConfig {
  std::string prefix = "/sluice";  // jobs are <prefix>/jobs/<name>
  std::chrono::milliseconds backoff_initial{500}, backoff_max{30000};
};

JobWatcherConfig job_watcher_config(const CoordinationConfig& config);

// Job name → definition text (YAML or JSON, as stored; parsing it is the job manager's business).
using JobDefinitions = std::map<std::string, std::string>;

// One thread ranges <prefix>/jobs/, then watches it from the range's revision. Rules the job manager
// can rely on:
//  - on_jobs gets the WHOLE current set (never a delta), from the watcher's thread, once after the
//    first successful read (even when empty) and then whenever the set differs from the last one given;
//  - the name is the key suffix after <prefix>/jobs/; keys whose suffix is empty or holds '/' are
//    ignored (logged, counted in coord_job_keys_ignored_total);
//  - etcd unreachable: the last set stays in effect (no call, never an empty set because of an
//    outage), retries back off exponentially with jitter, and on reconnect the prefix is read again
//    so that changes made meanwhile (deletions included) are delivered as one new set;
//  - a handler that throws is logged and counted; the watcher carries on.
class JobWatcher {
 public:
  using Handler = std::function<void(const JobDefinitions&)>;

  JobWatcher(JobWatcherConfig config, EtcdClientConfig etcd, MetricsRegistry& metrics, Handler on_jobs);
  ~JobWatcher();
  JobWatcher(const JobWatcher&) = delete;
  JobWatcher& operator=(const JobWatcher&) = delete;

  void start();
  void stop();

  // The set last given to on_jobs (empty before the first read).
  JobDefinitions jobs() const;
  // {state "starting"|"connected"|"unreachable", connected, endpoint, prefix, revision, jobs (count),
  //  names, errors, reconnects, last_error, last_error_at, last_change_at}.
  nlohmann::json status() const;
  const std::string& jobs_prefix() const { return jobs_prefix_; }

 private:
  enum class State { starting, connected, unreachable };

  void run();
  // Applies one key (nullopt value: deleted). Caller holds mutex_.
  void apply_locked(const std::string& key, const std::optional<std::string>& value);
  void publish();
  void set_state(State state);
  void record_error(const std::string& message);
  bool pause(std::chrono::milliseconds delay);

  JobWatcherConfig config_;
  std::string jobs_prefix_;
  Handler on_jobs_;
  std::unique_ptr<EtcdClient> client_;

  Counter& errors_;
  Counter& reconnects_;
  Counter& ignored_;
  Counter& handler_errors_;
  Gauge& jobs_gauge_;
  Gauge& connected_gauge_;
  LogLimiter log_limiter_{std::chrono::seconds(10)};

  mutable std::mutex mutex_;
  State state_ = State::starting;
  JobDefinitions current_;                  // what etcd holds as far as we know
  std::optional<JobDefinitions> published_;  // what on_jobs got last
  std::int64_t revision_ = 0;
  std::uint64_t error_count_ = 0, reconnect_count_ = 0;
  std::string last_error_;
  std::optional<std::chrono::system_clock::time_point> last_error_at_, last_change_at_;

  std::atomic<bool> stop_{false};
  std::mutex wait_mutex_;
  std::condition_variable wait_cv_;
  std::thread thread_;
};

}  // namespace sluice::coord
