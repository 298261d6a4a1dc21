#include "sources/files/etcd_discovery.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "core/thread_name.hpp"

namespace sluice::sources {
namespace {

constexpr auto kHealthyWatch = std::chrono::seconds(10);

std::string local_hostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

std::string iso8601(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03d}Z", fmt::gmtime(std::chrono::system_clock::to_time_t(t)), int(ms));
}

// Equal jitter: at least half the backoff, so retries stay spaced; the random half spreads a fleet
// of agents that lost etcd at the same moment.
std::chrono::milliseconds jittered(std::chrono::milliseconds backoff, std::mt19937_64& rng) {
  const auto half = backoff.count() / 2;
  std::uniform_int_distribution<std::int64_t> dist(0, std::max<std::int64_t>(half, 0));
  return std::chrono::milliseconds(backoff.count() - half + dist(rng));
}

}  // namespace

EtcdDiscoveryConfig read_etcd_discovery_config(config::ConfigReader& reader) {
  EtcdDiscoveryConfig c;
  c.client = coord::read_etcd_client_config(reader);
  c.prefix = reader.string("prefix", c.prefix);
  if (c.prefix.empty() || c.prefix.back() != '/') {
    reader.error("prefix", fmt::format("expected a key prefix ending in '/', such as /sluice/logs/, got \"{}\"", c.prefix));
  }
  c.host = reader.string("host", "");
  if (c.host.empty()) c.host = local_hostname();
  if (c.host.find('/') != std::string::npos) {
    reader.error("host", fmt::format("expected a host name without '/', got \"{}\"", c.host));
  }
  c.backoff_initial = reader.duration("backoff_initial", c.backoff_initial);
  c.backoff_max = reader.duration("backoff_max", c.backoff_max);
  if (c.backoff_initial.count() <= 0) reader.error("backoff_initial", "expected a duration above zero");
  if (c.backoff_max < c.backoff_initial) {
    reader.error("backoff_max", fmt::format("expected at least backoff_initial ({} ms), got {} ms",
                                            c.backoff_initial.count(), c.backoff_max.count()));
  }
  reader.finish();
  return c;
}

ParsedSource parse_etcd_source(const std::string& name, const std::string& value) {
  ParsedSource out;
  if (name.empty()) {
    out.errors.push_back("the key names no source: write <prefix><host>/<name>");
    return out;
  }
  YAML::Node node;
  try {
    node = YAML::Load(value);
  } catch (const YAML::Exception& e) {
    out.errors.push_back(fmt::format("not valid JSON: {}", e.what()));
    return out;
  }
  if (!node.IsMap()) {
    out.errors.push_back("expected a JSON object such as {\"include\": [\"/var/log/app/*.log\"], \"topic\": \"logs\"}");
    return out;
  }
  auto reader = config::ConfigReader::root(node);
  auto config = read_file_source(reader, name);
  try {
    reader.check();
    out.config = std::move(config);
  } catch (const config::ConfigError& e) {
    out.errors = e.errors();
  }
  return out;
}

EtcdDiscovery::EtcdDiscovery(EtcdDiscoveryConfig config, MetricsRegistry& metrics,
                             std::function<void(std::vector<FileSourceConfig>)> on_change)
    : config_(std::move(config)),
      on_change_(std::move(on_change)),
      invalid_keys_(metrics.counter("etcd_invalid_keys_total",
                                    "etcd discovery values that did not parse or validate (each version counted once)")),
      reconnects_(metrics.counter("etcd_reconnects_total", "etcd discovery: etcd reached again after an outage")),
      compactions_(metrics.counter("etcd_watch_compacted_total",
                                   "etcd discovery: watches restarted with a new range because etcd compacted")),
      state_starting_(metrics.gauge("etcd_state", "etcd discovery state: 1 for the current one", {{"state", "starting"}})),
      state_connected_(metrics.gauge("etcd_state", "etcd discovery state: 1 for the current one", {{"state", "connected"}})),
      state_unreachable_(
          metrics.gauge("etcd_state", "etcd discovery state: 1 for the current one", {{"state", "unreachable"}})) {
  if (config_.host.empty()) config_.host = local_hostname();
  host_prefix_ = config_.prefix + config_.host + "/";
  client_ = std::make_unique<coord::EtcdClient>(config_.client, metrics);
  set_state(State::starting);
}

EtcdDiscovery::~EtcdDiscovery() { stop(); }

void EtcdDiscovery::start() {
  if (thread_.joinable()) return;
  stop_.store(false);
  thread_ = std::thread([this] {
    name_this_thread("etcd-logpaths");
    run();
  });
}

void EtcdDiscovery::stop() {
  {
    std::lock_guard lock(wait_mutex_);
    stop_.store(true);
  }
  wait_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool EtcdDiscovery::pause(std::chrono::milliseconds delay) {
  std::unique_lock lock(wait_mutex_);
  return !wait_cv_.wait_for(lock, delay, [this] { return stop_.load(); });
}

void EtcdDiscovery::set_state(State state) {
  {
    std::lock_guard lock(mutex_);
    state_ = state;
  }
  state_starting_.set(state == State::starting ? 1 : 0);
  state_connected_.set(state == State::connected ? 1 : 0);
  state_unreachable_.set(state == State::unreachable ? 1 : 0);
}

void EtcdDiscovery::record_error(const std::string& message) {
  std::lock_guard lock(mutex_);
  last_error_ = message;
  last_error_at_ = std::chrono::system_clock::now();
}

void EtcdDiscovery::run() {
  std::mt19937_64 rng(std::random_device{}());
  auto backoff = config_.backoff_initial;
  const auto retry_later = [&](const std::string& what) {
    record_error(what);
    set_state(State::unreachable);
    const auto delay = jittered(backoff, rng);
    if (auto suppressed = log_limiter_.allow("unreachable")) {
      spdlog::warn("etcd discovery: {}; the {} log sources last known for {} stay in effect; retrying in {} ms{}", what,
                   sources().size(), host_prefix_, delay.count(),
                   *suppressed ? fmt::format(" ({} similar messages suppressed)", *suppressed) : "");
    }
    backoff = std::min(backoff * 2, config_.backoff_max);
    return pause(delay);
  };

  while (!stop_.load()) {
    coord::EtcdClient::RangeResult range;
    try {
      range = client_->get_prefix(host_prefix_);
    } catch (const coord::EtcdError& e) {
      if (!retry_later(fmt::format("cannot read {} from etcd: {}", host_prefix_, e.what()))) return;
      continue;
    }
    bool reconnected = false;
    {
      std::lock_guard lock(mutex_);
      // Keys gone from the range were deleted while we were not watching.
      std::map<std::string, Entry> kept;
      for (const auto& kv : range.kvs) {
        if (kv.key.rfind(host_prefix_, 0) != 0) continue;
        const auto name = kv.key.substr(host_prefix_.size());
        if (auto it = entries_.find(name); it != entries_.end()) kept[name] = std::move(it->second);
      }
      entries_ = std::move(kept);
      for (const auto& kv : range.kvs) apply_locked(kv.key, kv.value, kv.mod_revision);
      revision_ = range.revision;
      reconnected = state_ == State::unreachable && ever_connected_;
      ever_connected_ = true;
    }
    set_state(State::connected);
    if (reconnected) {
      reconnects_.inc();
      spdlog::info("etcd discovery: reached etcd at {} again; {} read at revision {}", client_->endpoint(),
                   host_prefix_, range.revision);
    }
    publish();

    // The backoff is reset only by a watch that held a while: an etcd that answers ranges but drops
    // every watch at once (a proxy, a permission) must not be hammered at backoff_initial.
    const auto watch_started = std::chrono::steady_clock::now();
    const auto end = client_->watch_prefix(
        host_prefix_, range.revision + 1,
        [&](const coord::EtcdClient::WatchEvent& event) {
          {
            std::lock_guard lock(mutex_);
            if (event.type == coord::EtcdClient::WatchEvent::Type::remove) {
              apply_locked(event.kv.key, std::nullopt, event.kv.mod_revision);
            } else {
              apply_locked(event.kv.key, event.kv.value, event.kv.mod_revision);
            }
            revision_ = std::max(revision_, event.kv.mod_revision);
          }
          if (event.last_in_batch) publish();
          return !stop_.load();
        },
        stop_);
    using Reason = coord::EtcdClient::WatchEnd::Reason;
    switch (end.reason) {
      case Reason::cancelled:
      case Reason::callback:
        break;  // stop_ is set: the loop ends
      case Reason::compacted:
        compactions_.inc();
        spdlog::warn("etcd discovery: etcd compacted past revision {} (oldest kept: {}) while watching {}; reading "
                     "the prefix again",
                     end.next_revision, end.compact_revision, host_prefix_);
        break;
      case Reason::error:
        if (std::chrono::steady_clock::now() - watch_started >= kHealthyWatch) backoff = config_.backoff_initial;
        if (!retry_later(end.error)) return;
        break;
    }
  }
}

void EtcdDiscovery::apply_locked(const std::string& key, const std::optional<std::string>& value,
                                 std::int64_t mod_revision) {
  if (key.rfind(host_prefix_, 0) != 0) return;
  const auto name = key.substr(host_prefix_.size());
  if (!value) {
    entries_.erase(name);
    return;
  }
  auto& entry = entries_[name];
  // A range after a reconnect sees unchanged keys again: parse, log and count each version once.
  if (mod_revision != 0 && entry.mod_revision == mod_revision) return;
  entry.mod_revision = mod_revision;
  auto parsed = parse_etcd_source(name, *value);
  if (parsed.config) {
    entry.in_effect = std::move(parsed.config);
    entry.errors.clear();
    return;
  }
  entry.errors = std::move(parsed.errors);
  invalid_keys_.inc();
  if (auto suppressed = log_limiter_.allow(key)) {
    spdlog::error("etcd discovery: ignoring the value of {} (revision {}): {}; {}. Fix it with `etcdctl put {} "
                  "'<json>'`{}",
                  key, mod_revision, fmt::join(entry.errors, "; "),
                  entry.in_effect ? "its previous valid version stays in effect" : "no source is started for it", key,
                  *suppressed ? fmt::format(" ({} similar messages suppressed)", *suppressed) : "");
  }
}

std::vector<FileSourceConfig> EtcdDiscovery::sources() const {
  std::lock_guard lock(mutex_);
  std::vector<FileSourceConfig> out;
  for (const auto& [name, entry] : entries_) {
    if (entry.in_effect) out.push_back(*entry.in_effect);
  }
  return out;
}

void EtcdDiscovery::publish() {
  auto list = sources();
  {
    std::lock_guard lock(mutex_);
    if (published_ && *published_ == list) return;
    published_ = list;
    last_change_at_ = std::chrono::system_clock::now();
  }
  spdlog::info("etcd discovery: {} log sources in effect for {} at revision {}", list.size(), host_prefix_,
               [&] {
                 std::lock_guard lock(mutex_);
                 return revision_;
               }());
  if (on_change_) on_change_(std::move(list));
}

nlohmann::json EtcdDiscovery::status() const {
  std::lock_guard lock(mutex_);
  nlohmann::json out;
  out["state"] = state_ == State::connected ? "connected" : state_ == State::unreachable ? "unreachable" : "starting";
  out["endpoint"] = client_->endpoint();
  out["host"] = config_.host;
  out["prefix"] = host_prefix_;
  out["revision"] = revision_;
  auto names = nlohmann::json::array();
  auto invalid = nlohmann::json::array();
  for (const auto& [name, entry] : entries_) {
    if (entry.in_effect) names.push_back(name);
    if (!entry.errors.empty()) {
      invalid.push_back({{"key", host_prefix_ + name},
                         {"mod_revision", entry.mod_revision},
                         {"errors", entry.errors},
                         {"in_effect", entry.in_effect ? "previous version" : "none"}});
    }
  }
  out["sources"] = names;
  out["invalid_keys"] = invalid;
  out["last_error"] = last_error_.empty() ? nlohmann::json() : nlohmann::json(last_error_);
  out["last_error_at"] = last_error_at_ ? nlohmann::json(iso8601(*last_error_at_)) : nlohmann::json();
  out["last_change_at"] = last_change_at_ ? nlohmann::json(iso8601(*last_change_at_)) : nlohmann::json();
  return out;
}

}  // namespace sluice::sources
