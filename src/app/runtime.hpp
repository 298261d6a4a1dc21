// Runtime: builds the components a role needs from the config, starts them, and drains them on stop.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "core/metrics.hpp"
#include "pipeline/batch_sink.hpp"
#include "pipeline/consumer_job.hpp"

namespace sluice::app {

enum class Role { all_in_one, inlet, outlet };

class Runtime {
 public:
  Runtime(config::Config config, Role role);
  ~Runtime();

  // Starts everything; throws std::runtime_error (with what to do) if a component cannot start.
  void start();
  // Graceful drain: stop sources, flush the bus, flush batches, wait for sinks, commit. Returns true
  // if everything was delivered within the configured shutdown timeout.
  bool stop();
  // Stops as soon as possible, from any thread (a second signal).
  void request_stop() { stop_requested_.store(true); }
  bool stop_requested() const { return stop_requested_.load(); }

  nlohmann::json status() const;
  MetricsRegistry& metrics() { return metrics_; }

 private:
  struct Parts;
  void start_store();
  void start_outlet();
  void start_metrics(const pipeline::BatchSinkPolicy& policy);
  void start_logs(const pipeline::BatchSinkPolicy& policy);
  void start_jobs();
  void start_coordination();
  std::vector<std::string> running_job_names() const;
  void start_spans(const pipeline::BatchSinkPolicy& policy);
  void add_builtin_job(const std::string& name, const std::string& group_suffix, const std::vector<std::string>& topics,
                       int processors, pipeline::BatchBuilderFactory builders, pipeline::BatchTarget& target);
  nlohmann::json jobs_status() const;
  pipeline::ConsumerJobConfig job_config(const std::string& name) const;
  void start_inlet();

  config::Config config_;
  Role role_;
  MetricsRegistry metrics_;
  std::atomic<bool> stop_requested_{false};
  std::unique_ptr<Parts> parts_;
};

}  // namespace sluice::app
