#include "coord/registration.hpp"

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "core/thread_name.hpp"

namespace sluice::coord {
namespace {

std::string without_trailing_slash(std::string prefix) {
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  return prefix;
}

// etcd grants whole seconds.
std::chrono::seconds lease_seconds(std::chrono::milliseconds ttl) {
  return std::chrono::seconds(std::max<std::int64_t>(1, (ttl.count() + 999) / 1000));
}

}  // namespace

std::string default_instance_id(const std::string& admin_address) {
  const auto colon = admin_address.rfind(':');
  if (colon == std::string::npos || colon + 1 == admin_address.size()) return local_hostname();
  return local_hostname() + ":" + admin_address.substr(colon + 1);
}

RegistrationConfig registration_config(const CoordinationConfig& config, const std::string& admin_listen) {
  RegistrationConfig r;
  r.prefix = config.prefix;
  r.lease_ttl = config.lease_ttl;
  r.backoff_initial = config.backoff_initial;
  r.backoff_max = config.backoff_max;
  r.admin_address = admin_listen;
  if (const auto colon = admin_listen.rfind(':'); colon != std::string::npos) {
    const auto host = admin_listen.substr(0, colon);
    // Another instance cannot reach a wildcard address: advertise the name this host goes by.
    if (host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]") {
      r.admin_address = local_hostname() + admin_listen.substr(colon);
    }
  }
  r.instance_id = config.instance_id.empty() ? default_instance_id(admin_listen) : config.instance_id;
  return r;
}

InstanceRegistration::InstanceRegistration(RegistrationConfig config, EtcdClientConfig etcd, MetricsRegistry& metrics)
    : config_(std::move(config)),
      host_(local_hostname()),
      started_(rfc3339_utc(std::chrono::system_clock::now())),
      errors_(metrics.counter("coord_registration_errors_total",
                              "instance registration: etcd calls that failed (each is retried with backoff)")),
      grants_(metrics.counter("coord_registration_leases_total",
                              "instance registration: leases granted (more than one: the lease was lost and "
                              "the entry put again)")),
      registered_gauge_(metrics.gauge("coord_registered", "1 while this instance's entry is known to be in etcd")) {
  config_.prefix = without_trailing_slash(config_.prefix);
  if (config_.instance_id.empty()) config_.instance_id = default_instance_id(config_.admin_address);
  if (config_.instance_id.find('/') != std::string::npos) {
    throw std::invalid_argument("instance id \"" + config_.instance_id + "\" must not contain '/'");
  }
  key_ = config_.prefix + "/instances/" + config_.instance_id;
  client_ = std::make_unique<EtcdClient>(std::move(etcd), metrics);
}

InstanceRegistration::~InstanceRegistration() { stop(); }

void InstanceRegistration::start() {
  if (thread_.joinable()) return;
  stop_.store(false);
  set_state(State::starting);
  thread_ = std::thread([this] {
    name_this_thread("etcd-register");
    run();
  });
}

void InstanceRegistration::halt() {
  {
    std::lock_guard lock(wait_mutex_);
    stop_.store(true);
  }
  wait_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void InstanceRegistration::stop() {
  halt();
  std::int64_t lease = 0;
  {
    std::lock_guard lock(mutex_);
    if (state_ == State::stopped) return;
    lease = std::exchange(lease_, 0);
    put_value_.clear();
  }
  if (lease != 0) {
    try {
      client_->revoke(lease);
      spdlog::info("instance registration: {} removed from etcd (lease {:x} revoked)", key_, lease);
    } catch (const EtcdError& e) {
      spdlog::warn("instance registration: could not revoke lease {:x} on stop ({}); {} disappears when the lease "
                   "expires, within {} s",
                   lease, e.what(), key_, lease_seconds(config_.lease_ttl).count());
    }
  }
  set_state(State::stopped);
}

void InstanceRegistration::abandon() {
  halt();
  {
    std::lock_guard lock(mutex_);
    lease_ = 0;
    put_value_.clear();
  }
  set_state(State::stopped);
}

void InstanceRegistration::set_jobs(std::vector<std::string> jobs) {
  {
    std::lock_guard lock(mutex_);
    jobs_ = std::move(jobs);
  }
  {
    std::lock_guard lock(wait_mutex_);
    wake_ = true;
  }
  wait_cv_.notify_all();
}

std::string InstanceRegistration::make_value_locked() const {
  return nlohmann::json{{"id", config_.instance_id}, {"host", host_},   {"version", SLUICE_VERSION},
                        {"admin", config_.admin_address}, {"jobs", jobs_}, {"started", started_}}
      .dump();
}

std::string InstanceRegistration::value() const {
  std::lock_guard lock(mutex_);
  return make_value_locked();
}

bool InstanceRegistration::pause(std::chrono::milliseconds delay, bool wake_on_change) {
  std::unique_lock lock(wait_mutex_);
  wait_cv_.wait_for(lock, delay, [&] { return stop_.load() || (wake_on_change && wake_); });
  if (wake_on_change) wake_ = false;
  return !stop_.load();
}

void InstanceRegistration::set_state(State state) {
  std::lock_guard lock(mutex_);
  state_ = state;
  registered_gauge_.set(state == State::registered ? 1 : 0);
}

void InstanceRegistration::record_error(const std::string& message) {
  errors_.inc();
  std::lock_guard lock(mutex_);
  ++error_count_;
  last_error_ = message;
  last_error_at_ = std::chrono::system_clock::now();
}

void InstanceRegistration::step() {
  std::int64_t lease = 0;
  std::string value, put_value;
  {
    std::lock_guard lock(mutex_);
    lease = lease_;
    value = make_value_locked();
    put_value = put_value_;
  }
  if (lease != 0) {
    try {
      client_->keep_alive(lease);
    } catch (const EtcdError& e) {
      if (e.code() != kEtcdNotFound) throw;
      spdlog::warn("instance registration: lease {:x} of {} was lost (etcd restarted without its data, a partition "
                   "longer than {} s, or a revoke); registering again",
                   lease, key_, lease_seconds(config_.lease_ttl).count());
      std::lock_guard lock(mutex_);
      lease_ = lease = 0;
      put_value_.clear();
      put_value.clear();
    }
  }
  bool fresh = false;
  if (lease == 0) {
    lease = client_->grant_lease(lease_seconds(config_.lease_ttl));
    grants_.inc();
    fresh = true;
    std::lock_guard lock(mutex_);
    lease_ = lease;
    ++grant_count_;
  }
  bool needs_put = value != put_value;
  if (!needs_put) {
    // Someone may have deleted the key (or put over it) while the lease lives on.
    const auto kv = client_->get(key_);
    if (!kv || kv->lease != lease || kv->value != value) {
      spdlog::warn("instance registration: {} was deleted or overwritten in etcd; putting it back", key_);
      needs_put = true;
    }
  }
  if (needs_put) {
    client_->put(key_, value, lease);
    std::lock_guard lock(mutex_);
    put_value_ = value;
    if (fresh || !registered_at_) registered_at_ = std::chrono::system_clock::now();
  }
  if (fresh) {
    spdlog::info("instance registration: registered as {} (lease {:x}, TTL {} s) at etcd {}", key_, lease,
                 lease_seconds(config_.lease_ttl).count(), client_->endpoint());
  }
}

void InstanceRegistration::run() {
  std::mt19937_64 rng(std::random_device{}());
  const auto renew_every =
      std::chrono::duration_cast<std::chrono::milliseconds>(lease_seconds(config_.lease_ttl)) / 3;
  // Retrying less often than renewals would let a short outage cost the lease.
  const auto backoff_cap = std::max(std::min(config_.backoff_max, renew_every), std::chrono::milliseconds(1));
  auto backoff = std::min(config_.backoff_initial, backoff_cap);
  bool failing = false;
  while (!stop_.load()) {
    try {
      step();
      if (failing) {
        spdlog::info("instance registration: {} is registered again at etcd {}", key_, client_->endpoint());
      }
      failing = false;
      backoff = std::min(config_.backoff_initial, backoff_cap);
      set_state(State::registered);
      if (!pause(renew_every, true)) return;
    } catch (const EtcdError& e) {
      failing = true;
      record_error(e.what());
      set_state(e.unreachable() ? State::unreachable : State::refused);
      const auto delay = jittered(backoff, rng);
      if (auto suppressed = log_limiter_.allow("error")) {
        spdlog::warn("instance registration: {} for {}; retrying in {} ms{}", e.what(), key_, delay.count(),
                     *suppressed ? fmt::format(" ({} similar messages suppressed)", *suppressed) : "");
      }
      backoff = std::min(backoff * 2, backoff_cap);
      if (!pause(delay, false)) return;
    }
  }
}

nlohmann::json InstanceRegistration::list_instances() {
  const auto prefix = config_.prefix + "/instances/";
  const auto range = client_->get_prefix(prefix);
  auto out = nlohmann::json::array();
  for (const auto& kv : range.kvs) {
    const auto id = kv.key.substr(prefix.size());
    auto value = nlohmann::json::parse(kv.value, nullptr, false);
    if (value.is_discarded() || !value.is_object()) {
      out.push_back({{"id", id}, {"error", "the value is not a JSON object"}});
      continue;
    }
    if (!value.contains("id")) value["id"] = id;
    out.push_back(std::move(value));
  }
  return out;
}

nlohmann::json InstanceRegistration::cluster() {
  nlohmann::json out{{"self", status()}, {"instances", nlohmann::json::array()}, {"error", nullptr}};
  try {
    out["instances"] = list_instances();
  } catch (const EtcdError& e) {
    out["error"] = fmt::format("cannot list the instances: {}", e.what());
  }
  return out;
}

nlohmann::json InstanceRegistration::status() const {
  std::lock_guard lock(mutex_);
  static constexpr const char* kStates[] = {"starting", "registered", "unreachable", "refused", "stopped"};
  nlohmann::json out;
  out["state"] = kStates[static_cast<int>(state_)];
  out["id"] = config_.instance_id;
  out["key"] = key_;
  out["admin"] = config_.admin_address;
  out["lease"] = lease_ != 0 ? nlohmann::json(fmt::format("{:x}", lease_)) : nlohmann::json();
  out["lease_ttl_ms"] = lease_seconds(config_.lease_ttl).count() * 1000;
  out["jobs"] = jobs_;
  out["registered_at"] = registered_at_ ? nlohmann::json(rfc3339_utc(*registered_at_)) : nlohmann::json();
  out["lease_grants"] = grant_count_;
  out["errors"] = error_count_;
  out["last_error"] = last_error_.empty() ? nlohmann::json() : nlohmann::json(last_error_);
  out["last_error_at"] = last_error_at_ ? nlohmann::json(rfc3339_utc(*last_error_at_)) : nlohmann::json();
  out["endpoint"] = client_->endpoint();
  return out;
}

}  // namespace sluice::coord
