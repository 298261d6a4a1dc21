#include "coord/job_watcher.hpp"

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "core/thread_name.hpp"

namespace sluice::coord {
namespace {

// A watch that held this long counts as healthy: the next failure starts again at backoff_initial.
constexpr auto kHealthyWatch = std::chrono::seconds(10);

}  // namespace

JobWatcherConfig job_watcher_config(const CoordinationConfig& config) {
  JobWatcherConfig c;
  c.prefix = config.prefix;
  c.backoff_initial = config.backoff_initial;
  c.backoff_max = config.backoff_max;
  return c;
}

JobWatcher::JobWatcher(JobWatcherConfig config, EtcdClientConfig etcd, MetricsRegistry& metrics, Handler on_jobs)
    : config_(std::move(config)),
      on_jobs_(std::move(on_jobs)),
      errors_(metrics.counter("coord_job_watch_errors_total",
                              "job watcher: etcd reads and watches that failed (retried with backoff)")),
      reconnects_(metrics.counter("coord_job_watch_reconnects_total", "job watcher: etcd reached again after an outage")),
      ignored_(metrics.counter("coord_job_keys_ignored_total",
                               "job watcher: keys under <prefix>/jobs/ that name no job (empty or nested name)")),
      handler_errors_(metrics.counter("coord_job_handler_errors_total", "job watcher: job set handler threw")),
      jobs_gauge_(metrics.gauge("coord_jobs", "job definitions currently in etcd")),
      connected_gauge_(metrics.gauge("coord_job_watch_connected", "1 while the job watcher is connected to etcd")) {
  while (!config_.prefix.empty() && config_.prefix.back() == '/') config_.prefix.pop_back();
  jobs_prefix_ = config_.prefix + "/jobs/";
  client_ = std::make_unique<EtcdClient>(std::move(etcd), metrics);
}

JobWatcher::~JobWatcher() { stop(); }

void JobWatcher::start() {
  if (thread_.joinable()) return;
  stop_.store(false);
  thread_ = std::thread([this] {
    name_this_thread("etcd-jobs");
    run();
  });
}

void JobWatcher::stop() {
  {
    std::lock_guard lock(wait_mutex_);
    stop_.store(true);
  }
  wait_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool JobWatcher::pause(std::chrono::milliseconds delay) {
  std::unique_lock lock(wait_mutex_);
  return !wait_cv_.wait_for(lock, delay, [this] { return stop_.load(); });
}

void JobWatcher::set_state(State state) {
  {
    std::lock_guard lock(mutex_);
    state_ = state;
  }
  connected_gauge_.set(state == State::connected ? 1 : 0);
}

void JobWatcher::record_error(const std::string& message) {
  errors_.inc();
  std::lock_guard lock(mutex_);
  ++error_count_;
  last_error_ = message;
  last_error_at_ = std::chrono::system_clock::now();
}

void JobWatcher::apply_locked(const std::string& key, const std::optional<std::string>& value) {
  if (key.rfind(jobs_prefix_, 0) != 0) return;
  const auto name = key.substr(jobs_prefix_.size());
  if (name.empty() || name.find('/') != std::string::npos) {
    if (!value) return;
    ignored_.inc();
    if (auto suppressed = log_limiter_.allow(key)) {
      spdlog::warn("job watcher: ignoring etcd key {}: a job is <prefix>/jobs/<name> with a name without '/'{}", key,
                   *suppressed ? fmt::format(" ({} similar messages suppressed)", *suppressed) : "");
    }
    return;
  }
  if (value) current_[name] = *value;
  else current_.erase(name);
}

void JobWatcher::publish() {
  JobDefinitions set;
  std::int64_t revision = 0;
  {
    std::lock_guard lock(mutex_);
    if (published_ && *published_ == current_) return;
    published_ = current_;
    set = current_;
    revision = revision_;
    last_change_at_ = std::chrono::system_clock::now();
  }
  jobs_gauge_.set(static_cast<double>(set.size()));
  spdlog::info("job watcher: {} job definitions under {} at revision {}", set.size(), jobs_prefix_, revision);
  if (!on_jobs_) return;
  try {
    on_jobs_(set);
  } catch (const std::exception& e) {
    handler_errors_.inc();
    spdlog::error("job watcher: the job manager failed to apply {} job definitions: {}", set.size(), e.what());
  }
}

void JobWatcher::run() {
  std::mt19937_64 rng(std::random_device{}());
  auto backoff = config_.backoff_initial;
  bool ever_connected = false;
  const auto retry_later = [&](const std::string& what) {
    record_error(what);
    set_state(State::unreachable);
    const auto delay = jittered(backoff, rng);
    if (auto suppressed = log_limiter_.allow("unreachable")) {
      spdlog::warn("job watcher: {}; the {} job definitions last read stay in effect; retrying in {} ms{}", what,
                   jobs().size(), delay.count(),
                   *suppressed ? fmt::format(" ({} similar messages suppressed)", *suppressed) : "");
    }
    backoff = std::min(backoff * 2, config_.backoff_max);
    return pause(delay);
  };

  while (!stop_.load()) {
    EtcdClient::RangeResult range;
    try {
      range = client_->get_prefix(jobs_prefix_);
    } catch (const EtcdError& e) {
      if (!retry_later(fmt::format("cannot read {} from etcd: {}", jobs_prefix_, e.what()))) return;
      continue;
    }
    bool reconnected = false;
    {
      std::lock_guard lock(mutex_);
      // Read afresh: keys missing from the range were deleted while nobody watched.
      current_.clear();
      for (const auto& kv : range.kvs) apply_locked(kv.key, kv.value);
      revision_ = range.revision;
      reconnected = state_ == State::unreachable && ever_connected;
      if (reconnected) ++reconnect_count_;
    }
    ever_connected = true;
    set_state(State::connected);
    if (reconnected) {
      reconnects_.inc();
      spdlog::info("job watcher: reached etcd at {} again; {} read at revision {}", client_->endpoint(), jobs_prefix_,
                   range.revision);
    }
    publish();

    const auto watch_started = std::chrono::steady_clock::now();
    const auto end = client_->watch_prefix(
        jobs_prefix_, range.revision + 1,
        [&](const EtcdClient::WatchEvent& event) {
          {
            std::lock_guard lock(mutex_);
            if (event.type == EtcdClient::WatchEvent::Type::remove) apply_locked(event.kv.key, std::nullopt);
            else apply_locked(event.kv.key, event.kv.value);
            revision_ = std::max(revision_, event.kv.mod_revision);
          }
          // One watch response is one transaction: act on it whole.
          if (event.last_in_batch) publish();
          return !stop_.load();
        },
        stop_);
    using Reason = EtcdClient::WatchEnd::Reason;
    switch (end.reason) {
      case Reason::cancelled:
      case Reason::callback:
        break;
      case Reason::compacted:
        spdlog::warn("job watcher: etcd compacted past revision {} (oldest kept: {}) while watching {}; reading the "
                     "prefix again",
                     end.next_revision, end.compact_revision, jobs_prefix_);
        break;
      case Reason::error:
        if (std::chrono::steady_clock::now() - watch_started >= kHealthyWatch) backoff = config_.backoff_initial;
        if (!retry_later(end.error)) return;
        break;
    }
  }
}

JobDefinitions JobWatcher::jobs() const {
  std::lock_guard lock(mutex_);
  return published_ ? *published_ : JobDefinitions{};
}

nlohmann::json JobWatcher::status() const {
  std::lock_guard lock(mutex_);
  nlohmann::json out;
  out["state"] = state_ == State::connected ? "connected" : state_ == State::unreachable ? "unreachable" : "starting";
  out["connected"] = state_ == State::connected;
  out["endpoint"] = client_->endpoint();
  out["prefix"] = jobs_prefix_;
  out["revision"] = revision_;
  auto names = nlohmann::json::array();
  if (published_) {
    for (const auto& [name, definition] : *published_) names.push_back(name);
  }
  out["jobs"] = names.size();
  out["names"] = std::move(names);
  out["errors"] = error_count_;
  out["reconnects"] = reconnect_count_;
  out["last_error"] = last_error_.empty() ? nlohmann::json() : nlohmann::json(last_error_);
  out["last_error_at"] = last_error_at_ ? nlohmann::json(rfc3339_utc(*last_error_at_)) : nlohmann::json();
  out["last_change_at"] = last_change_at_ ? nlohmann::json(rfc3339_utc(*last_change_at_)) : nlohmann::json();
  return out;
}

}  // namespace sluice::coord
