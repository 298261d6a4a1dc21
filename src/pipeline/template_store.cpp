#include "pipeline/template_store.hpp"

#include <spdlog/spdlog.h>

#include <exception>
#include <set>
#include <vector>

#include "core/thread_name.hpp"
#include "pipeline/template_topic.hpp"

namespace sluice::pipeline {
namespace {

constexpr auto kTick = std::chrono::milliseconds(200);
constexpr std::size_t kMaxOwnInFlightPerKey = 8;
constexpr auto kFinalFlush = std::chrono::seconds(5);

}  // namespace

TemplateStore::TemplateStore(TemplateCache& cache, TemplateStoreConfig config, MetricsRegistry& metrics)
    : cache_(cache),
      config_(std::move(config)),
      saves_(metrics.counter("flow_template_saves_total", "Writes of the flow template file in the data directory")),
      save_errors_(metrics.counter("flow_template_save_errors_total",
                                   "Failed writes of the flow template file (retried at the next change)")),
      published_(metrics.counter("flow_template_topic_published_total",
                                 "Flow template entries (and tombstones) queued for the template topic")),
      publish_errors_(metrics.counter("flow_template_topic_publish_errors_total",
                                      "Flow template entries the Kafka producer refused (retried)")),
      received_(metrics.counter("flow_template_topic_received_total", "Records read from the flow template topic")),
      malformed_(metrics.counter("flow_template_topic_malformed_total",
                                 "Records of the flow template topic that are not template entries (skipped)")),
      metrics_(metrics),
      debounce_(config_.save_interval) {}

TemplateStore::~TemplateStore() { stop(); }

void TemplateStore::start() {
  if (!config_.dir.empty()) cache_.load(config_.dir);
  debounce_.reset(cache_.generation());
  if (config_.kafka) {
    try {
      topic_ = std::make_unique<TemplateTopic>(*config_.kafka, config_.topic, metrics_);
    } catch (const std::exception& e) {
      // Flows still flow without it: templates are then kept per outlet, in its data directory.
      metrics_.counter("flow_template_topic_unavailable_total",
                       "Outlet starts that could not open the flow template topic")
          .inc();
      spdlog::error("{}. Continuing without sharing templates through Kafka: a new outlet, or one that takes over "
                    "partitions, waits for exporters to resend their templates. Create the topic and restart",
                    e.what());
    }
  }
  if (topic_) {
    const auto before = cache_.template_count();
    const auto apply = [this](std::string_view key, std::string_view value) { apply_remote(key, value); };
    if (topic_->catch_up(apply, config_.catch_up_timeout)) {
      spdlog::info("flow templates: read topic {} to its end; {} templates known ({} before)", config_.topic,
                   cache_.template_count(), before);
    } else {
      spdlog::warn("flow templates: could not read topic {} to its end within {} ms; starting with {} templates. "
                   "The rest is applied as it arrives; until then data from exporters whose templates are missing "
                   "waits for them (check the Kafka brokers if this repeats)",
                   config_.topic, config_.catch_up_timeout.count(), cache_.template_count());
    }
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = false;
    running_ = true;
  }
  thread_ = std::thread([this] {
    name_this_thread("templates");
    run();
  });
}

void TemplateStore::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!running_) return;
    running_ = false;
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  if (topic_) {
    publish_changes();
    if (const auto left = topic_->flush(kFinalFlush)) {
      spdlog::warn("flow templates: {} template entries were not delivered to topic {} before shutdown; the other "
                   "outlets learn them from the exporters instead",
                   left, config_.topic);
    }
  }
  save_if(true);
}

void TemplateStore::run() {
  const auto apply = [this](std::string_view key, std::string_view value) { apply_remote(key, value); };
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (stopping_) return;
      // With a topic, its poll is the wait.
      if (!topic_) wake_.wait_for(lock, kTick, [this] { return stopping_; });
      if (stopping_) return;
    }
    // Local changes go out before records are read, so a record read now never hides one of ours.
    if (topic_) {
      publish_changes();
      topic_->poll(apply, kTick);
    }
    save_if(false);
  }
}

void TemplateStore::save_if(bool force) {
  if (config_.dir.empty()) return;
  const auto now = SaveDebounce::Clock::now();
  const auto generation = cache_.generation();
  if (force ? generation == debounce_.written_generation() : !debounce_.due(generation, now)) return;
  try {
    cache_.save(config_.dir);
    saves_.inc();
    debounce_.written(generation, now);
    if (save_failing_) {
      spdlog::info("flow templates: saving to {} works again", config_.dir.string());
      save_failing_ = false;
    }
  } catch (const std::exception& e) {
    save_errors_.inc();
    debounce_.attempted(now);
    if (!save_failing_) {
      spdlog::error("flow templates: cannot save templates to {}: {}. Retrying at each change; until it works a "
                    "restarted outlet waits for exporters to resend their templates. Check that the data "
                    "directory exists, is writable and has free space (see sluice_flow_template_save_errors_total)",
                    config_.dir.string(), e.what());
      save_failing_ = true;
    }
  }
}

void TemplateStore::publish_changes() {
  const auto generation = cache_.generation();
  if (!publish_pending_ && generation == published_generation_) return;
  bool all_queued = true;
  const auto send = [&](const std::string& key, const std::string& value) {
    if (!topic_->publish(key, value)) {
      publish_errors_.inc();
      all_queued = false;
      return false;
    }
    published_.inc();
    auto& own = own_in_flight_[key];
    if (own.size() >= kMaxOwnInFlightPerKey) own.pop_front();
    own.push_back(value);
    return true;
  };
  std::set<std::string_view> present;
  const auto entries = cache_.entries();
  for (const auto& e : entries) {
    present.insert(e.key);
    auto it = on_topic_.find(e.key);
    if (it != on_topic_.end() && it->second == e.value) continue;
    if (send(e.key, e.value)) on_topic_.insert_or_assign(e.key, e.value);
  }
  // Gone from the cache (withdrawn, or evicted when full): a tombstone, so no outlet brings it back.
  for (auto it = on_topic_.begin(); it != on_topic_.end();) {
    if (!present.contains(it->first) && send(it->first, {})) {
      it = on_topic_.erase(it);
    } else {
      ++it;
    }
  }
  published_generation_ = generation;
  publish_pending_ = !all_queued;
}

void TemplateStore::apply_remote(std::string_view key, std::string_view value) {
  received_.inc();
  if (auto own = own_in_flight_.find(key); own != own_in_flight_.end()) {
    const bool mine = !own->second.empty() && own->second.front() == value;
    if (mine) {
      own->second.pop_front();
      if (own->second.empty()) own_in_flight_.erase(own);
      return;
    }
  }
  if (!value.empty()) {
    if (auto it = on_topic_.find(key); it != on_topic_.end() && it->second == value) return;
  }
  if (cache_.restore_entry(key, value) == TemplateCache::EntryResult::malformed) {
    malformed_.inc();
    if (!malformed_logged_) {
      spdlog::warn("flow templates: skipped a record of topic {} that is not a template entry (key '{}', {} bytes); "
                   "something other than sluice writes to this topic, or a newer sluice. See "
                   "sluice_flow_template_topic_malformed_total",
                   config_.topic, key.substr(0, 80), value.size());
      malformed_logged_ = true;
    }
    return;
  }
  if (value.empty()) {
    if (auto it = on_topic_.find(key); it != on_topic_.end()) on_topic_.erase(it);
  } else {
    on_topic_.insert_or_assign(std::string(key), std::string(value));
  }
}

}  // namespace sluice::pipeline
