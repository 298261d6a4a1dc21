#include "pipeline/jobs/job_manager.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bus/kafka_bus.hpp"
#include "core/thread_name.hpp"
#include "pipeline/jobs/record_batch_builder.hpp"

namespace sluice::pipeline::jobs {
namespace {

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    if (!out.empty()) out += "; ";
    out += l;
  }
  return out;
}

std::string sql_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

transforms::rules::RuleSet read_rules(const YAML::Node& rules, MetricsRegistry& metrics, const std::string& job) {
  if (!rules || rules.IsNull()) return {};
  YAML::Node holder;
  holder["rules"] = rules;
  auto errors = std::make_shared<std::vector<std::string>>();
  config::ConfigReader reader(holder, "jobs." + job, errors);
  auto set = transforms::rules::RuleSet::read(reader, metrics, "rules");
  reader.check();
  return set;
}

}  // namespace

JobManager::JobManager(JobEnvironment env, MetricsRegistry& metrics)
    : env_(std::move(env)),
      metrics_(metrics),
      invalid_definitions_(metrics.counter("job_invalid_definitions_total",
                                           "Job definitions from etcd refused as invalid (the previous one stays)")),
      switches_(metrics.counter("job_switches_total", "Jobs drained and restarted with a changed definition")) {}

JobManager::~JobManager() { stop(std::chrono::steady_clock::now() + env_.drain_timeout); }

void JobManager::start() {
  thread_ = std::thread([this] {
    name_this_thread("jobs-reconcile");
    reconcile_loop();
  });
}

void JobManager::on_change(std::function<void(std::vector<std::string>)> listener) {
  std::lock_guard lock(mutex_);
  listener_ = std::move(listener);
}

void JobManager::set_config_jobs(std::vector<JobSpec> jobs) {
  std::lock_guard lock(mutex_);
  config_jobs_.clear();
  for (auto& j : jobs) config_jobs_[j.name] = std::move(j);
  ++wanted_generation_;
  changed_.notify_all();
}

void JobManager::set_etcd_jobs(const std::map<std::string, std::string>& definitions) {
  std::map<std::string, JobSpec> parsed;
  std::map<std::string, std::string> invalid;
  for (const auto& [name, text] : definitions) {
    try {
      parsed[name] = parse_job_definition(text, "etcd job " + name, name);
    } catch (const config::ConfigError& e) {
      invalid[name] = joined(e.errors());
    }
  }
  std::lock_guard lock(mutex_);
  for (const auto& [name, why] : invalid) {
    auto previous = etcd_jobs_.find(name);
    const bool keeps = previous != etcd_jobs_.end();
    if (keeps) parsed[name] = previous->second;
    if (invalid_[name] != why) {
      invalid_definitions_.inc();
      spdlog::error("jobs: the definition of job {} in etcd is invalid: {}. {}", name, why,
                    keeps ? "The job keeps running with its previous definition" : "The job is not started");
    }
  }
  invalid_ = std::move(invalid);
  etcd_jobs_ = std::move(parsed);
  ++wanted_generation_;
  changed_.notify_all();
}

std::map<std::string, JobManager::Desired> JobManager::desired_locked() const {
  std::map<std::string, Desired> out;
  for (const auto& [name, spec] : etcd_jobs_) out[name] = Desired{spec, "etcd"};
  for (const auto& [name, spec] : config_jobs_) {
    if (etcd_jobs_.count(name)) {
      spdlog::warn("jobs: job {} is defined both in the config file and in etcd; the config file's definition runs. "
                   "Rename one of them",
                   name);
    }
    out[name] = Desired{spec, "config"};
  }
  return out;
}

std::unique_ptr<JobDriver> JobManager::build(const JobSpec& spec) {
  if (!env_.store) throw std::runtime_error("this instance has no store: jobs run in an outlet (or `sluice run`)");
  if (!env_.kafka && spec.brokers.empty()) {
    throw std::runtime_error("jobs consume Kafka topics: configure bus.kafka.brokers or the job's `brokers:`");
  }
  bus::KafkaConfig kc = env_.kafka.value_or(bus::KafkaConfig{});
  if (!spec.brokers.empty()) kc.brokers = spec.brokers;
  kc.consumer_group = spec.group;
  const std::string dir = spec.dead_letter_dir.empty() ? env_.dead_letter_root + "/" + spec.name : spec.dead_letter_dir;

  JobPlan plan;
  plan.name = spec.name;
  plan.kind = spec.output == JobOutput::spans ? "spans" : "records";
  plan.topics = spec.topics;
  plan.group = spec.group;
  plan.processors = spec.parallelism;
  plan.retry = spec.retry;
  plan.definition = spec.canonical;
  plan.consumer_job.name = "job-" + spec.name;
  plan.consumer_job.max_rows = spec.batch.max_rows;
  plan.consumer_job.max_bytes = spec.batch.max_bytes;
  plan.consumer_job.max_delay = spec.batch.max_delay;
  plan.consumer_job.commit_interval = env_.commit_interval;
  plan.consumer_job.revoke_timeout = env_.drain_timeout;
  plan.consumer_job.token_prefix = spec.name + "/";
  auto& metrics = metrics_;
  plan.make_consumer = [kc, topics = spec.topics, &metrics](int, int) -> std::unique_ptr<bus::Consumer> {
    return std::make_unique<bus::KafkaConsumer>(kc, topics, metrics);
  };
  BatchSinkPolicy policy;
  policy.parallel_inserts = env_.parallel_inserts;
  policy.retry_initial = spec.retry.initial;
  policy.retry_max = spec.retry.max;
  policy.max_attempts = spec.retry.max_attempts;
  policy.dead_letter_dir = dir + "/batches";
  policy.coalesce = spec.batch.coalesce;
  if (spec.batch.coalesce) policy.max_pending_batches = 1024;  // many small batches make one insert
  sinks::Store* store = env_.store;
  const std::string name = spec.name;

  if (spec.output == JobOutput::spans) {
    if (!env_.span_builders) throw std::runtime_error("this instance cannot write spans (no span pipeline)");
    env_.ensure_spans_tables(spec.spans_table);
    auto span_builders = env_.span_builders;
    plan.make_parts = [span_builders, policy, store, name, encoding = spec.span_encoding, table = spec.spans_table,
                       &metrics](int index, ProcessorContext& context) {
      ProcessorParts parts;
      auto p = policy;
      p.on_exhausted = [&context](const std::string& reason) { context.fail(reason); };
      parts.owned_sink = std::make_unique<BatchSink>(fmt::format("job-{}-{}", name, index), *store, p, metrics);
      parts.builders = span_builders(encoding, table, context);
      return parts;
    };
  } else {
    auto job = std::make_shared<RecordJob>(spec.name, metrics_);
    job->decoders = decoders::records::make_record_decoder_factory(spec.decoder);
    job->rules = read_rules(spec.rules, metrics_, spec.name);
    job->mapping = compile_mapping(spec.mapping, store->dialect());
    ensure_mapped_table(*store, spec.mapping);
    if (store->embedded()) policy.sort_by = table_sorting_columns(*store, spec.mapping.table);
    job->dead_letters = std::make_unique<sinks::DeadLetters>(dir, metrics_);
    std::shared_ptr<const RecordJob> shared = job;
    plan.make_parts = [shared, policy, store, name, &metrics](int index, ProcessorContext& context) {
      ProcessorParts parts;
      auto p = policy;
      p.on_exhausted = [&context](const std::string& reason) { context.fail(reason); };
      parts.owned_sink = std::make_unique<BatchSink>(fmt::format("job-{}-{}", name, index), *store, p, metrics);
      parts.builders = record_builders(shared, context);
      return parts;
    };
  }
  return std::make_unique<JobDriver>(std::move(plan), metrics_);
}

void JobManager::reconcile() {
  std::map<std::string, Desired> desired;
  {
    std::lock_guard lock(mutex_);
    desired = desired_locked();
  }
  // Removed and changed jobs drain first: what they consumed is stored and committed before the new
  // definition reads the same partitions from the committed offsets.
  std::vector<std::pair<std::string, std::unique_ptr<JobDriver>>> leaving;
  {
    std::lock_guard lock(running_mutex_);
    for (auto it = running_.begin(); it != running_.end();) {
      auto want = desired.find(it->first);
      if (want == desired.end() || want->second.spec.canonical != it->second.canonical) {
        if (want != desired.end() && it->second.driver) switches_.inc();
        if (it->second.driver) draining_[it->first] = it->second.origin;
        leaving.emplace_back(it->first, std::move(it->second.driver));
        it = running_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [name, driver] : leaving) {
    if (!driver) continue;
    spdlog::info("jobs: draining job {} ({})", name, desired.count(name) ? "its definition changed" : "removed");
    const bool clean = driver->stop(std::chrono::steady_clock::now() + env_.drain_timeout);
    if (!clean) {
      spdlog::warn("jobs: job {} did not store everything within {} ms; the rest is consumed again by its next run",
                   name, env_.drain_timeout.count());
    }
  }
  // Gone before their successors exist: a driver unregisters its per-processor metrics when destroyed,
  // and a successor of the same name registers the same series.
  {
    std::lock_guard lock(running_mutex_);
    for (const auto& [name, driver] : leaving) draining_.erase(name);
  }
  leaving.clear();
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [name, want] : desired) {
    {
      std::lock_guard lock(running_mutex_);
      auto it = running_.find(name);
      if (it != running_.end() && (it->second.driver || now < it->second.retry_at)) continue;
    }
    Running entry;
    entry.canonical = want.spec.canonical;
    entry.origin = want.origin;
    try {
      entry.driver = build(want.spec);
      entry.driver->start();
      spdlog::info("jobs: job {} ({}) running", name, want.origin);
    } catch (const std::exception& e) {
      std::chrono::milliseconds previous{0};
      {
        std::lock_guard lock(running_mutex_);
        if (auto it = running_.find(name); it != running_.end()) previous = it->second.backoff;
      }
      entry.driver.reset();
      entry.error = e.what();
      entry.error_time = std::chrono::system_clock::now();
      entry.backoff = std::min(std::chrono::milliseconds(60'000),
                               previous.count() ? previous * 2 : std::chrono::milliseconds(1000));
      entry.retry_at = now + entry.backoff;
      spdlog::error("jobs: job {} cannot start: {}; retrying in {} ms", name, e.what(), entry.backoff.count());
    }
    std::lock_guard lock(running_mutex_);
    running_[name] = std::move(entry);
  }
}

void JobManager::reconcile_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const auto generation = wanted_generation_;
    lock.unlock();
    reconcile();
    std::function<void(std::vector<std::string>)> listener;
    lock.lock();
    applied_generation_ = generation;
    listener = listener_;
    changed_.notify_all();
    if (listener) {
      lock.unlock();
      listener(names());
      lock.lock();
    }
    changed_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_ || wanted_generation_ != generation; });
  }
}

bool JobManager::wait_applied(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  const auto target = wanted_generation_;
  return changed_.wait_for(lock, timeout, [&] { return applied_generation_ >= target || stopping_; });
}

bool JobManager::stop(std::chrono::steady_clock::time_point deadline) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return true;
    stopping_ = true;
    changed_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  std::map<std::string, Running> running;
  {
    std::lock_guard lock(running_mutex_);
    running.swap(running_);
    for (const auto& [name, r] : running) {
      if (r.driver) draining_[name] = r.origin;
    }
  }
  bool clean = true;
  for (auto& [name, r] : running) {
    if (r.driver) clean = r.driver->stop(deadline) && clean;
  }
  std::lock_guard lock(running_mutex_);
  draining_.clear();
  return clean;
}

std::vector<std::string> JobManager::names() const {
  std::lock_guard lock(running_mutex_);
  std::vector<std::string> out;
  for (const auto& [name, r] : running_) {
    if (r.driver) out.push_back(name);
  }
  return out;
}

nlohmann::json JobManager::list() const {
  nlohmann::json out = nlohmann::json::array();
  std::map<std::string, std::string> invalid;
  {
    std::lock_guard lock(mutex_);
    invalid = invalid_;
  }
  std::lock_guard lock(running_mutex_);
  for (const auto& [name, r] : running_) {
    nlohmann::json j;
    if (r.driver) {
      j = r.driver->status();
    } else {
      j = {{"name", name},
           {"state", "error"},
           {"processors", nlohmann::json::array()},
           {"last_error", r.error},
           {"last_error_time", fmt::format("{:%FT%TZ}", std::chrono::floor<std::chrono::milliseconds>(r.error_time))}};
    }
    j["origin"] = r.origin;
    if (auto it = invalid.find(name); it != invalid.end()) j["invalid_definition"] = it->second;
    out.push_back(std::move(j));
  }
  // A draining driver holds its lock while it drains: it is listed without asking it.
  for (const auto& [name, origin] : draining_) {
    if (running_.count(name)) continue;
    out.push_back({{"name", name}, {"state", "draining"}, {"origin", origin}, {"processors", nlohmann::json::array()}});
  }
  for (const auto& [name, why] : invalid) {
    if (running_.count(name) || draining_.count(name)) continue;
    out.push_back({{"name", name}, {"state", "invalid"}, {"origin", "etcd"}, {"processors", nlohmann::json::array()},
                   {"invalid_definition", why}, {"last_error", why}});
  }
  return out;
}

std::optional<nlohmann::json> JobManager::show(std::string_view name) const {
  for (auto& j : list()) {
    if (j["name"] == name) return j;
  }
  return std::nullopt;
}

nlohmann::json JobManager::validate(std::string_view text) const {
  nlohmann::json result{{"ok", false}, {"errors", nlohmann::json::array()}};
  JobSpec spec;
  try {
    spec = parse_job_definition(text, "job");
  } catch (const config::ConfigError& e) {
    for (const auto& line : e.errors()) result["errors"].push_back(line);
    return result;
  }
  result["job"] = spec.name;
  try {
    if (spec.output == JobOutput::mapped_rows) {
      static_cast<void>(decoders::records::make_record_decoder_factory(spec.decoder));
      if (env_.store) {
        static_cast<void>(compile_mapping(spec.mapping, env_.store->dialect()));
        const auto exists = env_.store->query(fmt::format("SELECT count() FROM system.tables WHERE database = '{}' AND "
                                                          "name = '{}'",
                                                          sql_escape(env_.store->database()), sql_escape(spec.mapping.table)));
        if (exists.data.rfind("0", 0) == 0) {
          if (!spec.mapping.create) {
            result["errors"].push_back(fmt::format("mapping.table: table {}.{} does not exist and mapping.create is false",
                                                   env_.store->database(), spec.mapping.table));
          } else {
            result["table"] = "created when the job starts";
          }
        } else {
          auto check = spec.mapping;
          check.create = false;
          ensure_mapped_table(*env_.store, check);
          result["table"] = "exists and matches the mapping";
        }
      }
    }
  } catch (const std::exception& e) {
    result["errors"].push_back(e.what());
  }
  result["ok"] = result["errors"].empty();
  return result;
}

}  // namespace sluice::pipeline::jobs
