#include "transforms/metadata/directory.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/thread_name.hpp"
#include "transforms/metadata/snmp_client.hpp"

namespace sluice::transforms::metadata {
namespace {

MetadataCache::Options cache_options(const MetadataConfig& c, Counter& evictions) {
  MetadataCache::Options o;
  o.ttl = c.cache.ttl.count();
  o.refresh = c.cache.refresh.count();
  o.retry_after = c.snmp.retry_after.count();
  o.max_exporters = c.cache.max_exporters;
  o.max_interfaces = c.cache.max_interfaces;
  o.evictions = &evictions;
  return o;
}

// Maintenance often enough that refreshes and retries start close to when they are due.
std::chrono::milliseconds maintenance_interval(const MetadataConfig& c) {
  const auto shortest = std::min(c.cache.refresh, c.snmp.retry_after);
  return std::clamp(shortest / 4, std::chrono::milliseconds(100), std::chrono::milliseconds(5000));
}

}  // namespace

MetadataDirectory::MetadataDirectory(MetadataConfig config, MetricsRegistry& metrics)
    : config_(std::move(config)),
      metrics_(metrics),
      exporter_hits_(metrics.counter("metadata_lookups_total", "Exporter and interface metadata lookups",
                                     {{"kind", "exporter"}, {"result", "hit"}})),
      exporter_misses_(metrics.counter("metadata_lookups_total", "Exporter and interface metadata lookups",
                                       {{"kind", "exporter"}, {"result", "miss"}})),
      interface_hits_(metrics.counter("metadata_lookups_total", "Exporter and interface metadata lookups",
                                      {{"kind", "interface"}, {"result", "hit"}})),
      interface_misses_(metrics.counter("metadata_lookups_total", "Exporter and interface metadata lookups",
                                        {{"kind", "interface"}, {"result", "miss"}})),
      fetch_ok_(metrics.counter("metadata_snmp_fetches_total", "SNMP metadata queries by outcome", {{"result", "ok"}})),
      fetch_timeout_(
          metrics.counter("metadata_snmp_fetches_total", "SNMP metadata queries by outcome", {{"result", "timeout"}})),
      fetch_error_(
          metrics.counter("metadata_snmp_fetches_total", "SNMP metadata queries by outcome", {{"result", "error"}})),
      breaker_opened_(metrics.counter("metadata_snmp_breaker_opened_total",
                                      "Times an exporter's circuit breaker opened after consecutive SNMP failures")),
      breaker_skipped_(metrics.counter("metadata_snmp_breaker_skipped_total",
                                       "SNMP queries not sent because the exporter's circuit breaker was open")),
      queue_full_(metrics.counter("metadata_snmp_queue_full_total",
                                  "SNMP queries not queued because the queue was full (retried later)")),
      evictions_(metrics.counter("metadata_cache_evictions_total",
                                 "Exporters evicted from the metadata cache to stay within max_exporters")),
      expired_(metrics.counter("metadata_cache_expired_total",
                               "Cached values dropped because they were not refreshed within the ttl")),
      save_errors_(metrics.counter("metadata_cache_save_errors_total", "Failed writes of the metadata cache file")),
      breaker_(config_.snmp.breaker_failures, config_.snmp.breaker_open_for.count()),
      cache_(cache_options(config_, evictions_), [this](const Ip6& a) { return resolve(a); }) {
  for (const auto& entry : config_.static_entries) static_table_.add(entry.exporters, &entry);
  metrics.gauge_callback("metadata_cache_exporters", "Exporters in the metadata cache", {},
                         [this] { return static_cast<double>(cache_.sizes().exporters); });
  metrics.gauge_callback("metadata_cache_interfaces", "Interfaces in the metadata cache", {},
                         [this] { return static_cast<double>(cache_.sizes().interfaces); });
  metrics.gauge_callback("metadata_snmp_queue_depth", "SNMP metadata queries waiting to be sent", {}, [this] {
    std::lock_guard lock(queue_mutex_);
    return static_cast<double>(queue_.size());
  });
  metrics.gauge_callback("metadata_snmp_in_flight", "SNMP metadata queries sent and not yet answered", {},
                         [this] { return static_cast<double>(in_flight_.load()); });
  metrics.gauge_callback("metadata_snmp_breakers_open", "Exporters whose SNMP circuit breaker is open", {},
                         [this] { return static_cast<double>(breaker_.open_count(now_ms())); });
}

MetadataDirectory::~MetadataDirectory() {
  stop();
  for (const auto* name : {"metadata_cache_exporters", "metadata_cache_interfaces", "metadata_snmp_queue_depth",
                           "metadata_snmp_in_flight", "metadata_snmp_breakers_open"}) {
    metrics_.remove_callbacks(name, {});
  }
}

ExporterPolicy MetadataDirectory::resolve(const Ip6& address) const {
  ExporterPolicy p;
  if (const auto* s = static_table_.find(address)) p.static_entry = *s;
  p.fetchable = config_.snmp.enabled && config_.snmp.credentials.find(address) != nullptr;
  return p;
}

std::shared_ptr<const ExporterInfo> MetadataDirectory::exporter(const Ip6& exporter_address) {
  Found found = Found::miss;
  auto info = cache_.exporter(exporter_address, found);
  if (!info && found == Found::unseen) {
    // First sight: admitting resolves the static entry, which may answer right away.
    schedule(cache_.admit_exporter(exporter_address, now_ms()));
    info = cache_.exporter(exporter_address, found);
  }
  (info ? exporter_hits_ : exporter_misses_).inc();
  return info;
}

std::shared_ptr<const InterfaceInfo> MetadataDirectory::interface(const Ip6& exporter_address,
                                                                  std::uint32_t if_index) {
  Found found = Found::miss;
  auto info = cache_.interface(exporter_address, if_index, found);
  if (!info && found == Found::unseen) {
    schedule(cache_.admit_interface(exporter_address, if_index, now_ms()));
    info = cache_.interface(exporter_address, if_index, found);
  }
  (info ? interface_hits_ : interface_misses_).inc();
  return info;
}

void MetadataDirectory::schedule(std::optional<FetchRequest> request) {
  if (!request) return;
  {
    std::lock_guard lock(queue_mutex_);
    if (queue_.size() < config_.snmp.queue) {
      queue_.push_back(std::move(*request));
      queue_cv_.notify_one();
      return;
    }
  }
  queue_full_.inc();
  cache_.fetch_failed(*request);  // maintenance asks again after retry_after
}

void MetadataDirectory::start() {
  if (started_) return;
  started_ = true;
  if (!config_.cache.path.empty()) {
    std::string error;
    const auto loaded = cache_.load(config_.cache.path, now_ms(), &error);
    if (!error.empty()) {
      spdlog::warn("metadata: ignoring the cache file {} ({}); names will be fetched again from the exporters",
                   config_.cache.path, error);
    } else if (loaded > 0) {
      spdlog::info("metadata: loaded {} cached exporter/interface values from {}", loaded, config_.cache.path);
    }
  }
  thread_ = std::thread([this] {
    name_this_thread("metadata-poll");
    run();
  });
}

void MetadataDirectory::stop() {
  {
    std::lock_guard lock(queue_mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (started_ && !config_.cache.path.empty()) save();
}

std::string MetadataDirectory::save() {
  auto error = cache_.save(config_.cache.path);
  if (!error.empty()) {
    save_errors_.inc();
    spdlog::warn("metadata: cannot save the cache ({}); after a restart names are fetched again", error);
  } else {
    last_save_.store(now_ms());
  }
  return error;
}

void MetadataDirectory::on_reply(const FetchRequest& request, FetchReply&& reply) {
  in_flight_.fetch_sub(1);
  const auto now = now_ms();
  if (reply.status == FetchStatus::ok) {
    fetch_ok_.inc();
    breaker_.success(request.exporter);
    cache_.store(reply.result, now);
    return;
  }
  (reply.status == FetchStatus::timeout ? fetch_timeout_ : fetch_error_).inc();
  cache_.fetch_failed(request);
  spdlog::debug("metadata: SNMP query to {} failed: {}", ip6_to_string(request.exporter), reply.error);
  if (breaker_.failure(request.exporter, now)) {
    breaker_opened_.inc();
    spdlog::warn("metadata: SNMP to exporter {} failed {} times in a row ({}); not asking it for {} ms. Check that "
                 "it answers SNMP on port {} from this host with the configured community or user",
                 ip6_to_string(request.exporter), config_.snmp.breaker_failures, reply.error,
                 config_.snmp.breaker_open_for.count(), config_.snmp.port);
  }
}

void MetadataDirectory::run() {
  std::unique_ptr<SnmpClient> client;
  if (config_.snmp.enabled) {
    client = std::make_unique<SnmpClient>(
        config_.snmp, [this](const FetchRequest& r, FetchReply&& reply) { on_reply(r, std::move(reply)); });
  }
  using Clock = std::chrono::steady_clock;
  const auto interval = maintenance_interval(config_);
  auto next_maintenance = Clock::now() + interval;
  auto next_save = Clock::now() + config_.cache.save_every;
  const auto concurrency = static_cast<std::size_t>(config_.snmp.concurrency);
  while (true) {
    // Start what the queue holds, up to the concurrency.
    while (client && client->in_flight() < concurrency) {
      FetchRequest request;
      {
        std::lock_guard lock(queue_mutex_);
        if (stopping_) return;
        if (queue_.empty()) break;
        request = std::move(queue_.front());
        queue_.pop_front();
      }
      const auto* credentials = config_.snmp.credentials.find(request.exporter);
      if (!credentials || !breaker_.allow(request.exporter, now_ms())) {
        breaker_skipped_.inc();
        cache_.fetch_failed(request);
        continue;
      }
      in_flight_.fetch_add(1);
      client->send(std::move(request), *credentials);
    }
    if (client && client->in_flight() > 0) {
      client->poll(std::chrono::milliseconds(50));
    } else {
      std::unique_lock lock(queue_mutex_);
      queue_cv_.wait_until(lock, std::min(next_maintenance, next_save),
                           [this] { return stopping_ || !queue_.empty(); });
    }
    {
      std::lock_guard lock(queue_mutex_);
      if (stopping_) return;
    }
    const auto now = Clock::now();
    if (now >= next_maintenance) {
      next_maintenance = now + interval;
      auto result = cache_.maintain(now_ms());
      expired_.inc(result.expired);
      for (auto& request : result.due) schedule(std::move(request));
    }
    if (now >= next_save) {
      next_save = now + config_.cache.save_every;
      if (!config_.cache.path.empty()) save();
    }
  }
}

nlohmann::json MetadataDirectory::status() const {
  const auto sizes = cache_.sizes();
  std::size_t queued = 0;
  {
    std::lock_guard lock(queue_mutex_);
    queued = queue_.size();
  }
  nlohmann::json out;
  out["static_entries"] = config_.static_entries.size();
  out["cache"] = {{"exporters", sizes.exporters},
                  {"interfaces", sizes.interfaces},
                  {"values", sizes.values},
                  {"path", config_.cache.path},
                  {"last_save_ms", last_save_.load()}};
  out["lookups"] = {{"exporter_hits", exporter_hits_.value()},
                    {"exporter_misses", exporter_misses_.value()},
                    {"interface_hits", interface_hits_.value()},
                    {"interface_misses", interface_misses_.value()}};
  out["snmp"] = {{"enabled", config_.snmp.enabled},
                 {"port", config_.snmp.port},
                 {"queued", queued},
                 {"in_flight", in_flight_.load()},
                 {"fetch_ok", fetch_ok_.value()},
                 {"fetch_timeout", fetch_timeout_.value()},
                 {"fetch_error", fetch_error_.value()},
                 {"queue_full", queue_full_.value()},
                 {"breakers_open", breaker_.open_count(now_ms())},
                 {"breaker_opened", breaker_opened_.value()},
                 {"breaker_skipped", breaker_skipped_.value()}};
  return out;
}

}  // namespace sluice::transforms::metadata
