// JobDriver: runs one job's processors (a consumer with its batching and sink each) and restarts
// failed ones with exponential backoff.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bus/bus.hpp"
#include "core/metrics.hpp"
#include "pipeline/batch_sink.hpp"
#include "pipeline/consumer_job.hpp"
#include "pipeline/jobs/job_spec.hpp"

namespace sluice::pipeline::jobs {

// What one processor tells its driver while it runs; thread-safe.
class ProcessorContext {
 public:
  ProcessorContext(MetricsRegistry& metrics, const std::string& job, int index);
  // A record or batch that did not make it into the store (dead-lettered), with the reason.
  void record_failed(std::string_view reason, std::uint64_t n = 1);
  // The processor cannot go on (its sink gave up on a batch): the driver restarts it.
  void fail(std::string_view reason);
  bool failed() const { return failed_.load(); }
  std::uint64_t failed_records() const { return failed_records_.load(); }
  nlohmann::json last_error() const;
  double last_error_unix_seconds() const;  // 0 when none

 private:
  friend class JobDriver;
  void note_error(std::string_view reason);
  void reset_for_restart() { failed_.store(false); }

  std::atomic<bool> failed_{false};
  std::atomic<std::uint64_t> failed_records_{0};
  mutable std::mutex mutex_;
  std::string last_error_;
  std::chrono::system_clock::time_point last_error_time_{};  // epoch when none
  Counter& failed_counter_;
  Counter& failures_counter_;
};

// What a processor runs: builders per partition, and the target of its batches (one it owns, stopped
// and rebuilt with it, or one shared by the whole job).
struct ProcessorParts {
  BatchBuilderFactory builders;
  std::unique_ptr<BatchSink> owned_sink;
  BatchTarget* shared_target = nullptr;
};

struct JobPlan {
  std::string name;
  std::string kind;  // "records", "spans", or a built-in pipeline ("flows", "metrics", "logs", ...)
  std::vector<std::string> topics;
  std::string group;
  int processors = 1;
  ConsumerJobConfig consumer_job;
  JobRetryPolicy retry;
  std::string definition;  // shown in status; the canonical job text for configured jobs
  std::function<std::unique_ptr<bus::Consumer>(int index, int count)> make_consumer;
  std::function<ProcessorParts(int index, ProcessorContext& context)> make_parts;
};

class JobDriver {
 public:
  JobDriver(JobPlan plan, MetricsRegistry& metrics);
  ~JobDriver();
  JobDriver(const JobDriver&) = delete;
  JobDriver& operator=(const JobDriver&) = delete;

  // Starts every processor and the supervisor. Throws when a processor cannot be built at all.
  void start();
  // Drains: every processor stops consuming, closes its batches, waits for them to be stored (until
  // the deadline) and commits what was stored. Returns true when nothing was left unstored.
  bool stop(std::chrono::steady_clock::time_point deadline);
  // The first half of stop(): every consumer is told to stop, so that several jobs revoke their
  // partitions at the same time. Idempotent.
  void begin_stop();

  const std::string& name() const { return plan_.name; }
  const std::string& definition() const { return plan_.definition; }
  nlohmann::json status() const;
  // Sum over processors (tests and summaries).
  std::uint64_t total_restarts() const;

 private:
  enum class State { starting, running, backoff, stopped };
  struct Processor {
    int index = 0;
    std::unique_ptr<ProcessorContext> context;
    std::unique_ptr<bus::Consumer> consumer;
    std::unique_ptr<ConsumerJob> job;
    ProcessorParts parts;
    std::thread thread;
    std::atomic<bool> exited{false};
    State state = State::starting;
    std::uint64_t restarts = 0;
    std::uint64_t consumed_before = 0;  // by earlier incarnations
    std::chrono::milliseconds backoff{0};
    std::chrono::steady_clock::time_point restart_at{};
    std::chrono::steady_clock::time_point started_at{};
    // What /metrics shows, refreshed by the supervisor: a scrape must not take the driver's lock,
    // which is held while processors are torn down (and they unregister metrics).
    std::atomic<std::uint64_t> shown_total{0};
    std::atomic<std::uint64_t> shown_restarts{0};
    std::atomic<std::int64_t> shown_lag{-1};
  };

  void launch(Processor& p);
  // Tears a processor down; `abandon`: its sink failed, hand over at once instead of waiting.
  bool halt(Processor& p, bool abandon, std::chrono::steady_clock::time_point deadline);
  void supervise();
  void publish(Processor& p);  // under mutex_
  void register_metrics();
  void unregister_metrics();

  JobPlan plan_;
  MetricsRegistry& metrics_;
  mutable std::mutex mutex_;  // guards processors' state for status() against the supervisor
  std::vector<std::unique_ptr<Processor>> processors_;
  std::thread supervisor_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool stopped_ = false;
  Counter& restarts_counter_;
};

}  // namespace sluice::pipeline::jobs
