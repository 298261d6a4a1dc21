// JobManager: keeps the running ingestion jobs equal to what the config and etcd define, switching a
// changed job by draining it (commit what is stored) before its new definition starts.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bus/kafka_config.hpp"
#include "core/metrics.hpp"
#include "pipeline/batch_sink.hpp"
#include "pipeline/jobs/job_driver.hpp"
#include "pipeline/jobs/job_spec.hpp"
#include "sinks/store.hpp"

namespace sluice::pipeline::jobs {

// What jobs are built with: the process's store, Kafka settings and span pipeline.
struct JobEnvironment {
  sinks::Store* store = nullptr;
  std::optional<bus::KafkaConfig> kafka;  // bus.kafka; a job's `brokers:` overrides the address
  std::string dead_letter_root;           // <outlet.dead_letter_dir>/jobs; a job's files go in <root>/<name>
  std::chrono::milliseconds commit_interval{1000};
  std::chrono::milliseconds drain_timeout{15'000};  // how long a changed or removed job may take to drain
  int parallel_inserts = 2;
  // Spans jobs: the builders of an encoding into a table, and the table's creation.
  std::function<BatchBuilderFactory(SpanEncoding, const std::string& table, ProcessorContext&)> span_builders;
  std::function<void(const std::string& table)> ensure_spans_tables;
};

class JobManager {
 public:
  JobManager(JobEnvironment env, MetricsRegistry& metrics);
  ~JobManager();
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  void start();
  // Drains and stops every job. Returns true when everything consumed was stored.
  bool stop(std::chrono::steady_clock::time_point deadline);

  // The jobs of the config file (already validated).
  void set_config_jobs(std::vector<JobSpec> jobs);
  // The whole set of definitions under the etcd prefix, name → YAML/JSON text. An invalid definition
  // is reported (status, log, metric) and the job keeps its last valid definition, if any.
  void set_etcd_jobs(const std::map<std::string, std::string>& definitions);
  // Called after every change that was applied (registration lists the running jobs).
  void on_change(std::function<void(std::vector<std::string> names)> listener);

  // Validates a definition as the running instance would run it: the spec, the decoder's files, the
  // mapping against the store's table. {"ok": bool, "errors": [...], "job": name}
  nlohmann::json validate(std::string_view text) const;

  nlohmann::json list() const;
  std::optional<nlohmann::json> show(std::string_view name) const;
  std::vector<std::string> names() const;
  // Blocks until the desired set has been applied (start-up waits for the configured jobs this way).
  bool wait_applied(std::chrono::milliseconds timeout) const;

 private:
  struct Desired {
    JobSpec spec;
    std::string origin;  // "config" or "etcd"
  };
  struct Running {
    std::string canonical;
    std::string origin;
    std::unique_ptr<JobDriver> driver;
    std::string error;  // set when it could not start: retried after `retry_at`
    std::chrono::system_clock::time_point error_time{};
    std::chrono::steady_clock::time_point retry_at{};
    std::chrono::milliseconds backoff{0};
  };

  void reconcile_loop();
  void reconcile();
  std::unique_ptr<JobDriver> build(const JobSpec& spec);
  std::map<std::string, Desired> desired_locked() const;

  JobEnvironment env_;
  MetricsRegistry& metrics_;
  mutable std::mutex mutex_;  // desired sets, invalid definitions, generation counters
  mutable std::condition_variable changed_;
  std::map<std::string, JobSpec> config_jobs_;
  std::map<std::string, JobSpec> etcd_jobs_;
  std::map<std::string, std::string> invalid_;  // name → why its etcd definition was refused
  std::uint64_t wanted_generation_ = 0;
  std::uint64_t applied_generation_ = 0;
  bool stopping_ = false;
  std::function<void(std::vector<std::string>)> listener_;

  mutable std::mutex running_mutex_;  // the running set (status reads it while reconcile changes it)
  std::map<std::string, Running> running_;
  // Jobs taken out of the running set whose drivers still drain (name → origin): listed as "draining",
  // so a job is gone from the list only once it has stopped consuming.
  std::map<std::string, std::string> draining_;
  std::thread thread_;
  Counter& invalid_definitions_;
  Counter& switches_;
};

}  // namespace sluice::pipeline::jobs
