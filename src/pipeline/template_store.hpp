// TemplateStore: keeps an outlet's NetFlow v9/IPFIX templates across restarts (a file in the data
// directory) and across outlets (a compacted Kafka topic), loaded before any flow is consumed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "bus/kafka_config.hpp"
#include "core/metrics.hpp"
#include "decoders/template_cache.hpp"

namespace sluice::pipeline {

class TemplateTopic;

// Decides when the template file is written: when the cache's generation moved since the last
// write, and at most once per interval (the first change after a quiet period is written at once).
class SaveDebounce {
 public:
  using Clock = std::chrono::steady_clock;
  explicit SaveDebounce(std::chrono::milliseconds interval) : interval_(interval) {}

  bool due(std::uint64_t generation, Clock::time_point now) const {
    return generation != written_ && (!attempted_ || now - last_attempt_ >= interval_);
  }
  // A write of `generation` succeeded at `now`.
  void written(std::uint64_t generation, Clock::time_point now) {
    written_ = generation;
    attempted(now);
  }
  // A write was tried at `now` (whether it worked or not): the next one waits the interval.
  void attempted(Clock::time_point now) {
    attempted_ = true;
    last_attempt_ = now;
  }
  // The cache holds what was written as `generation` (just loaded from the file): nothing is due yet.
  void reset(std::uint64_t generation) { written_ = generation; }
  std::uint64_t written_generation() const { return written_; }

 private:
  std::chrono::milliseconds interval_;
  std::uint64_t written_ = 0;
  bool attempted_ = false;
  Clock::time_point last_attempt_{};
};

struct TemplateStoreConfig {
  std::filesystem::path dir;  // where TemplateCache::kFileName lives; empty: no file
  std::chrono::milliseconds save_interval{2000};
  // Distributed mode: the compacted topic shared by every outlet.
  std::optional<bus::KafkaConfig> kafka;
  std::string topic;
  std::chrono::milliseconds catch_up_timeout{10'000};
};

class TemplateStore {
 public:
  TemplateStore(TemplateCache& cache, TemplateStoreConfig config, MetricsRegistry& metrics);
  // Stops (saving once more) if still running.
  ~TemplateStore();
  TemplateStore(const TemplateStore&) = delete;
  TemplateStore& operator=(const TemplateStore&) = delete;

  // Loads the file, reads the topic to its end (bounded by catch_up_timeout), then saves and publishes
  // changes in the background. A topic that can be neither found nor created is logged and counted
  // (flow_template_topic_unavailable_total), and the store runs on its file alone.
  void start();
  // Stops the background work, then writes the file and publishes what changed one last time.
  void stop();

 private:
  void run();
  void save_if(bool force);
  void publish_changes();
  void apply_remote(std::string_view key, std::string_view value);

  TemplateCache& cache_;
  TemplateStoreConfig config_;
  Counter& saves_;
  Counter& save_errors_;
  Counter& published_;
  Counter& publish_errors_;
  Counter& received_;
  Counter& malformed_;
  MetricsRegistry& metrics_;
  SaveDebounce debounce_;
  bool save_failing_ = false;
  bool malformed_logged_ = false;
  std::unique_ptr<TemplateTopic> topic_;
  // What the topic holds as far as this outlet knows (its own records and those read): only
  // differences are published, and records this outlet wrote are not applied again.
  std::map<std::string, std::string, std::less<>> on_topic_;
  // Records this outlet published and has not read back yet, per key in order: reading them back is
  // not news (and a stale one must not undo a later change).
  std::map<std::string, std::deque<std::string>, std::less<>> own_in_flight_;
  std::uint64_t published_generation_ = 0;
  bool publish_pending_ = true;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool running_ = false;
  std::thread thread_;
};

}  // namespace sluice::pipeline
