// CoordinationConfig: the top-level `coordination:` section (etcd, key prefix, instance registration, job watching).
#pragma once

#include <chrono>
#include <optional>
#include <random>
#include <string>

#include "config/reader.hpp"
#include "coord/etcd_client.hpp"

namespace sluice::coord {

struct CoordinationConfig {
  EtcdClientConfig etcd;
  // Keys live under <prefix>/instances/<instance_id> and <prefix>/jobs/<name>; no trailing '/'.
  std::string prefix = "/sluice";
  std::string instance_id;  // empty: <hostname>:<admin port>, chosen when the admin address is known
  std::chrono::milliseconds lease_ttl{10000};
  bool register_instance = true;
  bool watch_jobs = true;
  // Retry spacing while etcd is unreachable (exponential with jitter between the two).
  std::chrono::milliseconds backoff_initial{500}, backoff_max{30000};
};

// Reads the top-level `coordination:` mapping: the etcd client keys (`endpoints`, `dial_timeout`,
// `request_timeout`, `watch_idle_timeout`, `username`, `password`, see read_etcd_client_config) plus
// `prefix`, `instance_id`, `lease_ttl`, `register_instance`, `watch_jobs`, `backoff_initial`,
// `backoff_max`. Absent section, or `endpoints` given as an empty string (an unset
// ${SLUICE_ETCD_ENDPOINTS:-}) → nullopt: no coordination. Problems go to the reader with their key paths
// (coordination.lease_ttl: ...); the caller's root.check() raises them. Unknown keys are reported.
std::optional<CoordinationConfig> read_coordination_config(config::ConfigReader& root_reader);

// Small helpers shared by registration and the job watcher.
std::string local_hostname();
// 2026-11-21T19:26:00.123Z
std::string rfc3339_utc(std::chrono::system_clock::time_point t);
// Equal jitter: at least half of `backoff`, so retries stay spaced; the random half spreads a fleet
// that lost etcd at the same moment.
std::chrono::milliseconds jittered(std::chrono::milliseconds backoff, std::mt19937_64& rng);

}  // namespace sluice::coord
