// ElasticsearchSink: delivers NDJSON `_bulk` batches, reads every item's result, retries or dead-letters.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/log_limiter.hpp"
#include "core/metrics.hpp"
#include "pipeline/batch_sink.hpp"
#include "sinks/dead_letters.hpp"
#include "sinks/elasticsearch_body.hpp"
#include "sinks/elasticsearch_config.hpp"
#include "sinks/store.hpp"

namespace httplib {
class Client;
}

namespace sluice::sinks {

// Per item of a `_bulk` response: 200/201 indexed; 409 (create of an existing _id: a replayed line)
// duplicate; 429 and 5xx retried alone with backoff; any other status dead-lettered with its reason.
// Whole requests: 429, 5xx, 401/403 and connection errors retry the request (misconfiguration must not
// lose data); 413 splits it in halves; a 400 for the whole body splits it to isolate the item at fault.
// `on_done` runs exactly once, from a sink thread, after every item is indexed, duplicate or durably
// dead-lettered. Items still failing at stop() are never acknowledged: the bus replays them.
class ElasticsearchSink final : public pipeline::BatchTarget {
 public:
  ElasticsearchSink(ElasticsearchConfig config, DeadLetters& dead_letters, MetricsRegistry& metrics,
                    std::string name = "elasticsearch");
  ~ElasticsearchSink() override;
  ElasticsearchSink(const ElasticsearchSink&) = delete;
  ElasticsearchSink& operator=(const ElasticsearchSink&) = delete;

  // `request.body` is NDJSON from BulkBodyWriter (format kBulkFormat); `rows` its item count.
  // Blocks while max_pending_batches are pending.
  void submit(InsertRequest request, std::function<void()> on_done) override;
  // Waits for pending batches until `deadline`, then abandons the rest (in-flight requests are cut).
  // Idempotent.
  void stop(std::chrono::steady_clock::time_point deadline);
  std::size_t pending() const;
  nlohmann::json status() const;

 private:
  struct Job {
    InsertRequest request;
    std::function<void()> on_done;
  };
  struct HttpResult {
    int status = 0;  // 0: no response (connection error, timeout)
    std::string body;
    std::string error;
    std::string url;
  };
  // What became of the items of one round.
  struct Round {
    std::vector<std::size_t> retry;
    std::vector<std::size_t> dead;
    std::vector<std::string> reasons;  // parallel to dead
    std::vector<std::string> details;
  };
  struct Worker {
    std::vector<std::unique_ptr<httplib::Client>> clients;  // one per URL
    std::string body;                                         // reused request body
    std::mt19937_64 rng;
  };

  void run(Worker& w);
  bool deliver(Worker& w, Job& job);
  void send(Worker& w, std::span<const std::string_view> items, std::span<const std::size_t> which, Round& round);
  void read_items(const HttpResult& r, std::span<const std::size_t> which, Round& round);
  HttpResult post(Worker& w, const std::string& body);
  bool sleep_unless_aborted(std::chrono::milliseconds d);
  void note_error(const std::string& what);

  ElasticsearchConfig config_;
  std::string name_;
  DeadLetters& dead_letters_;
  MetricsRegistry& metrics_;
  std::atomic<std::size_t> next_url_{0};
  LogLimiter log_limiter_;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable space_cv_;
  std::condition_variable abort_cv_;
  std::condition_variable exited_cv_;
  std::size_t exited_ = 0;  // worker threads that have returned
  std::deque<Job> queue_;
  std::size_t in_flight_ = 0;
  bool closing_ = false;
  std::atomic<bool> aborted_{false};
  std::string last_error_;
  std::chrono::system_clock::time_point last_error_time_{};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;

  Counter& indexed_;
  Counter& duplicate_;
  Counter& retried_;
  Counter& dead_;
  Counter& batches_;
  Counter& abandoned_;
  Gauge& request_seconds_;
};

}  // namespace sluice::sinks
