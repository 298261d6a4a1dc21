#include "pipeline/jobs/job_driver.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/thread_name.hpp"

namespace sluice::pipeline::jobs {

ProcessorContext::ProcessorContext(MetricsRegistry& metrics, const std::string& job, int index)
    : failed_counter_(metrics.counter("job_failed_records_total",
                                      "Records (or batches' rows) a job's processor sent to dead letters",
                                      {{"job", job}, {"processor", std::to_string(index)}})),
      failures_counter_(metrics.counter("job_processor_failures_total",
                                        "Times a job's processor failed (its sink gave up, or it threw)",
                                        {{"job", job}, {"processor", std::to_string(index)}})) {}

void ProcessorContext::note_error(std::string_view reason) {
  std::lock_guard lock(mutex_);
  last_error_.assign(reason);
  last_error_time_ = std::chrono::system_clock::now();
}

void ProcessorContext::record_failed(std::string_view reason, std::uint64_t n) {
  failed_records_.fetch_add(n);
  failed_counter_.inc(n);
  note_error(reason);
}

void ProcessorContext::fail(std::string_view reason) {
  note_error(reason);
  if (!failed_.exchange(true)) failures_counter_.inc();
}

double ProcessorContext::last_error_unix_seconds() const {
  std::lock_guard lock(mutex_);
  if (last_error_.empty()) return 0;
  return std::chrono::duration<double>(last_error_time_.time_since_epoch()).count();
}

nlohmann::json ProcessorContext::last_error() const {
  std::lock_guard lock(mutex_);
  if (last_error_.empty()) return nullptr;
  return {{"message", last_error_},
          {"time", fmt::format("{:%FT%TZ}", std::chrono::floor<std::chrono::milliseconds>(last_error_time_))}};
}

JobDriver::JobDriver(JobPlan plan, MetricsRegistry& metrics)
    : plan_(std::move(plan)),
      metrics_(metrics),
      restarts_counter_(metrics.counter("job_restarts_total", "Processor restarts after a failure", {{"job", plan_.name}})) {
  for (int i = 0; i < plan_.processors; ++i) {
    auto p = std::make_unique<Processor>();
    p->index = i;
    p->context = std::make_unique<ProcessorContext>(metrics_, plan_.name, i);
    processors_.push_back(std::move(p));
  }
  register_metrics();
}

JobDriver::~JobDriver() {
  stop(std::chrono::steady_clock::now());
  unregister_metrics();
}

void JobDriver::register_metrics() {
  for (const auto& pp : processors_) {
    const Processor* p = pp.get();
    const Labels labels{{"job", plan_.name}, {"processor", std::to_string(p->index)}};
    metrics_.gauge_callback("job_processor_consumed", "Messages a job's processor consumed, over its restarts", labels,
                            [p] { return static_cast<double>(p->shown_total.load()); });
    metrics_.gauge_callback("job_processor_restarts", "Restarts of a job's processor after a failure", labels,
                            [p] { return static_cast<double>(p->shown_restarts.load()); });
    metrics_.gauge_callback("job_processor_lag", "Messages behind the end of a job's processor's partitions (-1: unknown)",
                            labels, [p] { return static_cast<double>(p->shown_lag.load()); });
    metrics_.gauge_callback("job_processor_last_error_timestamp_seconds",
                            "When a job's processor last saw an error (Unix seconds; 0: never)", labels,
                            [p] { return p->context->last_error_unix_seconds(); });
  }
}

void JobDriver::unregister_metrics() {
  for (const auto& p : processors_) {
    const Labels labels{{"job", plan_.name}, {"processor", std::to_string(p->index)}};
    for (const char* name : {"job_processor_consumed", "job_processor_restarts", "job_processor_lag",
                             "job_processor_last_error_timestamp_seconds"}) {
      metrics_.remove_callbacks(name, labels);
    }
  }
}

void JobDriver::publish(Processor& p) {
  p.shown_total.store(p.consumed_before + (p.job ? p.job->consumed() : 0));
  p.shown_restarts.store(p.restarts);
  p.shown_lag.store(p.job ? p.job->lag() : -1);
}

void JobDriver::launch(Processor& p) {
  p.context->reset_for_restart();
  p.exited.store(false);
  p.parts = plan_.make_parts(p.index, *p.context);
  p.consumer = plan_.make_consumer(p.index, plan_.processors);
  BatchTarget& target = p.parts.owned_sink ? *p.parts.owned_sink : *p.parts.shared_target;
  auto config = plan_.consumer_job;
  p.job = std::make_unique<ConsumerJob>(std::move(config), *p.consumer, p.parts.builders, target, metrics_);
  p.started_at = std::chrono::steady_clock::now();
  p.state = State::running;
  p.thread = std::thread([this, &p] {
    name_this_thread("job:" + plan_.name);
    try {
      p.consumer->run(*p.job);
    } catch (const std::exception& e) {
      spdlog::error("job {}: processor {} stopped on an error: {}", plan_.name, p.index, e.what());
      p.context->fail(e.what());
    }
    p.exited.store(true);
    // Without the lock: the supervisor may hold it while joining this thread; a missed wake-up only
    // delays the restart to its next poll.
    wake_.notify_all();
  });
}

bool JobDriver::halt(Processor& p, bool abandon, std::chrono::steady_clock::time_point deadline) {
  bool clean = true;
  if (abandon) {
    if (p.job) p.job->abandon();
    // Batches the sink gave up on are never acknowledged; the next incarnation rebuilds them.
    if (p.parts.owned_sink) p.parts.owned_sink->stop(std::chrono::steady_clock::now());
  }
  if (p.consumer) p.consumer->stop();
  if (p.thread.joinable()) p.thread.join();
  if (p.parts.owned_sink) {
    clean = p.parts.owned_sink->pending() == 0;
    p.parts.owned_sink->stop(deadline);
  }
  if (p.job) p.consumed_before += p.job->consumed();
  p.job.reset();
  p.consumer.reset();
  p.parts = ProcessorParts{};
  return clean;
}

void JobDriver::start() {
  std::lock_guard lock(mutex_);
  for (auto& p : processors_) launch(*p);
  supervisor_ = std::thread([this] {
    name_this_thread("jobs-supervise");
    supervise();
  });
  spdlog::info("job {}: started {} processor(s) on {} (group {})", plan_.name, plan_.processors,
               fmt::join(plan_.topics, ","), plan_.group);
}

void JobDriver::supervise() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::milliseconds(200));
    if (stopping_) break;
    const auto now = std::chrono::steady_clock::now();
    for (auto& pp : processors_) {
      Processor& p = *pp;
      if (p.state == State::running && (p.context->failed() || p.exited.load())) {
        if (!p.context->failed()) p.context->fail("the consumer stopped unexpectedly");
        const auto error = p.context->last_error();
        halt(p, true, now);
        ++p.restarts;
        restarts_counter_.inc();
        const bool ran_long = now - p.started_at >= plan_.retry.restart_reset;
        p.backoff = (p.backoff.count() == 0 || ran_long) ? plan_.retry.restart_initial
                                                         : std::min(plan_.retry.restart_max, p.backoff * 2);
        p.restart_at = now + p.backoff;
        p.state = State::backoff;
        spdlog::warn("job {}: processor {} failed ({}); restarting it in {} ms (restart {}). What it had not "
                     "stored is consumed again from the last commit",
                     plan_.name, p.index, error.is_null() ? "" : error["message"].get<std::string>(),
                     p.backoff.count(), p.restarts);
      } else if (p.state == State::backoff && now >= p.restart_at) {
        try {
          launch(p);
          spdlog::info("job {}: processor {} restarted", plan_.name, p.index);
        } catch (const std::exception& e) {
          p.context->fail(e.what());
          halt(p, true, now);
          p.backoff = std::min(plan_.retry.restart_max, std::max(p.backoff * 2, plan_.retry.restart_initial));
          p.restart_at = now + p.backoff;
          spdlog::error("job {}: processor {} could not restart ({}); next attempt in {} ms", plan_.name, p.index,
                        e.what(), p.backoff.count());
        }
      }
      publish(p);
    }
  }
}

void JobDriver::begin_stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (supervisor_.joinable()) supervisor_.join();
  std::lock_guard lock(mutex_);
  for (auto& p : processors_) {
    if (p->consumer) p->consumer->stop();
  }
}

bool JobDriver::stop(std::chrono::steady_clock::time_point deadline) {
  begin_stop();
  std::lock_guard lock(mutex_);
  if (stopped_) return true;
  stopped_ = true;
  bool clean = true;
  for (auto& p : processors_) {
    if (p->state == State::running) clean = halt(*p, false, deadline) && clean;
    p->state = State::stopped;
    publish(*p);
  }
  spdlog::info("job {}: stopped{}", plan_.name, clean ? "" : " (some batches stay on the bus for the next owner)");
  return clean;
}

std::uint64_t JobDriver::total_restarts() const {
  std::lock_guard lock(mutex_);
  std::uint64_t n = 0;
  for (const auto& p : processors_) n += p->restarts;
  return n;
}

nlohmann::json JobDriver::status() const {
  static constexpr const char* kStates[] = {"starting", "running", "backoff", "stopped"};
  std::lock_guard lock(mutex_);
  nlohmann::json procs = nlohmann::json::array();
  std::string overall = stopping_ ? "stopped" : "running";
  for (const auto& p : processors_) {
    nlohmann::json j;
    j["id"] = p->index;
    j["state"] = kStates[static_cast<int>(p->state)];
    j["total"] = p->consumed_before + (p->job ? p->job->consumed() : 0);
    j["failed"] = p->context->failed_records();
    j["restarts"] = p->restarts;
    const auto lag = p->job ? p->job->lag() : -1;
    j["lag"] = lag;
    const auto error = p->context->last_error();
    j["last_error"] = error.is_null() ? nlohmann::json(nullptr) : error["message"];
    j["last_error_time"] = error.is_null() ? nlohmann::json(nullptr) : error["time"];
    if (p->state == State::backoff) {
      j["restart_in_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(p->restart_at -
                                                                                 std::chrono::steady_clock::now())
                               .count();
      if (overall == "running") overall = "degraded";
    }
    if (p->job) j["partitions"] = p->job->status()["partitions"];
    procs.push_back(std::move(j));
  }
  return {{"name", plan_.name}, {"kind", plan_.kind},        {"state", overall},    {"topics", plan_.topics},
          {"group", plan_.group}, {"processors", std::move(procs)}, {"definition", plan_.definition}};
}

}  // namespace sluice::pipeline::jobs
