// InstanceRegistration: keeps this instance's entry <prefix>/instances/<id> alive in etcd under a lease, and lists the live ones.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "coord/coordination_config.hpp"
#include "coord/etcd_client.hpp"
#include "core/log_limiter.hpp"
#include "core/metrics.hpp"

namespace sluice::coord {

struct RegistrationConfig {
  std::string prefix = "/sluice";
  std::string instance_id;    // empty: default_instance_id(admin_address)
  std::string admin_address;  // where this instance's admin API answers, advertised to the others
  std::chrono::milliseconds lease_ttl{10000};
  std::chrono::milliseconds backoff_initial{500}, backoff_max{30000};
};

// The registration part of a coordination section; `admin_listen` is the admin address actually bound
// (with port 0 resolved). A wildcard host (0.0.0.0, ::, empty) is advertised as this host's name.
RegistrationConfig registration_config(const CoordinationConfig& config, const std::string& admin_listen);

// <hostname>:<port of admin_address>.
std::string default_instance_id(const std::string& admin_address);

// One thread grants a lease, puts the entry under it, and renews the lease every TTL/3. Rules an
// operator can rely on:
//  - the value is JSON {id, host, version, admin, jobs, started (RFC 3339 UTC)}; set_jobs() rewrites it;
//  - a lost lease (etcd restarted without its data, a partition longer than the TTL, a revoke) or a
//    deleted key is noticed at the next renewal: a new lease is granted and the entry put again;
//  - etcd unreachable: retries back off exponentially with jitter (never beyond TTL/3, so that a short
//    outage does not cost the lease); callers never wait for etcd except in stop();
//  - stop() revokes the lease so the entry disappears at once; a process that dies leaves it until
//    the lease expires (at most TTL later).
class InstanceRegistration {
 public:
  InstanceRegistration(RegistrationConfig config, EtcdClientConfig etcd, MetricsRegistry& metrics);
  ~InstanceRegistration();
  InstanceRegistration(const InstanceRegistration&) = delete;
  InstanceRegistration& operator=(const InstanceRegistration&) = delete;

  void start();
  // Ends the thread and revokes the lease (one attempt, bounded by the client's request_timeout).
  void stop();
  // Ends the thread WITHOUT revoking: the entry stays until its lease expires, as after a crash. For tests.
  void abandon();

  // Names of the jobs this instance runs; the entry is rewritten soon after (from the thread).
  void set_jobs(std::vector<std::string> jobs);

  // The value of every live entry under <prefix>/instances/, sorted by id; an entry whose value is not
  // a JSON object is listed as {"id": <key suffix>, "error": ...}. Throws EtcdError when etcd cannot be read.
  nlohmann::json list_instances();
  // Never throws: {"self": status(), "instances": list_instances() or [], "error": null or why the
  // list could not be read}. What GET /api/v0/cluster shows.
  nlohmann::json cluster();

  // state "starting" | "registered" | "unreachable" | "refused" (etcd answered with an error) | "stopped", id, key, admin, lease (hex), lease_ttl_ms,
  // jobs, registered_at, lease_grants, errors, last_error, last_error_at, endpoint.
  nlohmann::json status() const;

  const std::string& instance_id() const { return config_.instance_id; }
  const std::string& key() const { return key_; }
  // The value currently put (or to be put), for tests and status pages.
  std::string value() const;

 private:
  enum class State { starting, registered, unreachable, refused, stopped };

  void run();
  // One registration step: grant+put when there is no lease, otherwise renew, then put again when the
  // value changed or the key is gone. Throws EtcdError.
  void step();
  void record_error(const std::string& message);
  void set_state(State state);
  // Waits `delay`; false when stopping. With `wake_on_change`, set_jobs() ends the wait early.
  bool pause(std::chrono::milliseconds delay, bool wake_on_change);
  std::string make_value_locked() const;
  void halt();

  RegistrationConfig config_;
  std::string key_;
  std::string host_;
  std::string started_;  // RFC 3339
  std::unique_ptr<EtcdClient> client_;

  Counter& errors_;
  Counter& grants_;
  Gauge& registered_gauge_;
  LogLimiter log_limiter_{std::chrono::seconds(10)};

  mutable std::mutex mutex_;
  State state_ = State::starting;
  std::vector<std::string> jobs_;
  std::int64_t lease_ = 0;        // 0: none granted (or known lost)
  std::string put_value_;         // what the key holds as far as we know; empty: not put under lease_
  std::uint64_t error_count_ = 0;
  std::uint64_t grant_count_ = 0;
  std::string last_error_;
  std::optional<std::chrono::system_clock::time_point> last_error_at_, registered_at_;

  std::atomic<bool> stop_{false};
  std::mutex wait_mutex_;
  std::condition_variable wait_cv_;
  bool wake_ = false;
  std::thread thread_;
};

}  // namespace sluice::coord
