// Log pipeline wiring: the inlet's file tailing (static and etcd-listed sources) onto the bus, and the
// outlet's per-partition builders (rules, then the `logs` table or Elasticsearch).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bus/bus.hpp"
#include "config/config.hpp"
#include "core/metrics.hpp"
#include "pipeline/batch_builder.hpp"
#include "pipeline/log_batch_builder.hpp"

namespace sluice::sources {
class FileTailer;
class EtcdDiscovery;
class LogPublisher;
}  // namespace sluice::sources

namespace sluice::transforms::rules {
class RuleSet;
}

namespace sluice::app {

// Tails the configured files into the bus; a file's checkpoint moves only with the bus's deliveries.
class LogInlet {
 public:
  LogInlet(const config::FilesInletConfig& config, const std::string& data_dir, std::string default_topic,
           bus::Producer& producer, MetricsRegistry& metrics);
  ~LogInlet();
  void start();
  // Stops reading, waits (until the deadline) for the bus to deliver what was sent, writes checkpoints.
  void stop(std::chrono::steady_clock::time_point deadline);
  nlohmann::json status() const;

 private:
  class Publisher;
  void apply_sources();

  config::FilesInletConfig config_;
  MetricsRegistry& metrics_;
  std::unique_ptr<Publisher> publisher_;
  std::unique_ptr<sources::FileTailer> tailer_;
  std::unique_ptr<sources::EtcdDiscovery> discovery_;
  mutable std::mutex sources_mutex_;
  std::vector<sources::FileSourceConfig> discovered_;
};

// What every log consumer job shares: decoding counters and the rules.
class LogOutlet {
 public:
  LogOutlet(const config::LogsOutletConfig& config, MetricsRegistry& metrics);
  ~LogOutlet();
  // Builders writing rows of the store's logs table, in the store's dialect.
  pipeline::BatchBuilderFactory table_builders(ClickHouseDialect dialect);
  // Builders writing Elasticsearch `_bulk` bodies.
  pipeline::BatchBuilderFactory elasticsearch_builders();

 private:
  pipeline::LogTransform make_transform() const;

  config::LogsOutletConfig config_;
  MetricsRegistry& metrics_;
  pipeline::LogDecoding decoding_;
  std::unique_ptr<transforms::rules::RuleSet> rules_;
};

}  // namespace sluice::app
