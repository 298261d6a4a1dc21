// EtcdDiscovery: keeps the list of log sources for this host in sync with the keys under an etcd prefix.
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
#include <vector>

#include "config/reader.hpp"
#include "coord/etcd_client.hpp"
#include "core/log_limiter.hpp"
#include "core/metrics.hpp"
#include "sources/files/file_source_config.hpp"

namespace sluice::sources {

struct EtcdDiscoveryConfig {
  coord::EtcdClientConfig client;
  std::string prefix = "/sluice/logs/";  // keys are <prefix><host>/<name>
  std::string host;                      // default: gethostname()
  std::chrono::milliseconds backoff_initial{500}, backoff_max{30000};
};

// Reads the etcd client keys (see read_etcd_client_config) and `prefix`, `host`, `backoff_initial`,
// `backoff_max` from one mapping, then reports unknown keys. Problems go to the reader with their key paths.
EtcdDiscoveryConfig read_etcd_discovery_config(config::ConfigReader& reader);

// Parses one key's value (a JSON object, see read_file_source) into a source named `name`. Returns the
// config, or every problem found (each with its key path inside the value).
struct ParsedSource {
  std::optional<FileSourceConfig> config;
  std::vector<std::string> errors;
};
ParsedSource parse_etcd_source(const std::string& name, const std::string& value);

// One thread ranges the host's prefix, then watches it from the range's revision. Whenever the list
// of sources in effect changes, on_change gets the whole list (sorted by name) from that thread.
//
// Rules an operator can rely on:
//  - a value that does not parse or validate is logged (with the key and every error) and counted in
//    etcd_invalid_keys_total; if an earlier version of that key was valid, that version stays in effect
//    (a typo does not stop collection), otherwise the key contributes nothing. Deleting the key removes it.
//  - etcd unreachable: the last known list stays in effect (on_change is not called), retries back off
//    exponentially with jitter, and on reconnect the prefix is ranged again so that changes made in the
//    meantime apply. A compacted watch revision is handled the same way.
class EtcdDiscovery {
 public:
  EtcdDiscovery(EtcdDiscoveryConfig config, MetricsRegistry& metrics,
                std::function<void(std::vector<FileSourceConfig>)> on_change);
  ~EtcdDiscovery();
  EtcdDiscovery(const EtcdDiscovery&) = delete;
  EtcdDiscovery& operator=(const EtcdDiscovery&) = delete;

  void start();
  void stop();

  // state "starting" | "connected" | "unreachable", endpoint, host, prefix, revision, sources (names in
  // effect), invalid_keys ([{key, errors, in_effect}]), last_error, last_error_at, last_change_at.
  nlohmann::json status() const;
  // The list in effect now (what on_change got last).
  std::vector<FileSourceConfig> sources() const;
  // The prefix this host's keys live under: <prefix><host>/.
  const std::string& host_prefix() const { return host_prefix_; }

 private:
  enum class State { starting, connected, unreachable };
  struct Entry {
    std::optional<FileSourceConfig> in_effect;  // last valid version
    std::int64_t mod_revision = 0;              // of the value last seen (valid or not)
    std::vector<std::string> errors;            // of the value last seen; empty when it was valid
  };

  void run();
  // Applies one key's new value (nullopt: deleted). Caller holds mutex_.
  void apply_locked(const std::string& key, const std::optional<std::string>& value, std::int64_t mod_revision);
  // Calls on_change when the list in effect differs from what it got last (always the first time).
  void publish();
  void set_state(State state);
  void record_error(const std::string& message);
  // Waits `delay` unless stopped; false when stopped.
  bool pause(std::chrono::milliseconds delay);

  EtcdDiscoveryConfig config_;
  std::string host_prefix_;
  std::function<void(std::vector<FileSourceConfig>)> on_change_;
  std::unique_ptr<coord::EtcdClient> client_;

  Counter& invalid_keys_;
  Counter& reconnects_;
  Counter& compactions_;
  Gauge& state_starting_;
  Gauge& state_connected_;
  Gauge& state_unreachable_;
  LogLimiter log_limiter_{std::chrono::seconds(10)};

  mutable std::mutex mutex_;
  State state_ = State::starting;
  std::map<std::string, Entry> entries_;  // by name
  std::int64_t revision_ = 0;
  std::string last_error_;
  std::optional<std::chrono::system_clock::time_point> last_error_at_, last_change_at_;
  std::optional<std::vector<FileSourceConfig>> published_;
  bool ever_connected_ = false;

  std::atomic<bool> stop_{false};
  std::mutex wait_mutex_;
  std::condition_variable wait_cv_;
  std::thread thread_;
};

}  // namespace sluice::sources
