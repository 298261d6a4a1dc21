// AdminServer: the admin HTTP API (metrics, health, version, status, SQL query, live flow tail, jobs, cluster).
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "admin/flow_tail.hpp"
#include "core/http_listener.hpp"
#include "core/metrics.hpp"
#include "sinks/store.hpp"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace sluice::admin {

struct AdminConfig {
  std::string listen = "127.0.0.1:8080";  // host:port or [v6]:port; port 0 picks a free one
  std::size_t max_body_bytes = 1024 * 1024;
  int read_timeout_ms = 10000;
};

// What the server shows; any callback may be empty (the endpoint then answers 503).
// Callbacks run on the server's worker threads and must be thread-safe. The members added later carry
// `{}` so that positional initialisations written before them stay warning-free.
struct AdminDeps {
  MetricsRegistry& metrics;
  std::function<nlohmann::json()> status;
  // Throws sinks::StoreError; format is "JSONEachRow" or "TabSeparated".
  std::function<sinks::QueryResult(std::string_view sql, std::string_view format)> query;
  FlowTail* flows = nullptr;  // not owned; must outlive the server
  std::function<bool()> healthy;
  // GET /api/v0/jobs: a JSON array, one element per job.
  std::function<nlohmann::json()> jobs{};
  // GET /api/v0/jobs/<name>: nullopt for an unknown job (answered 404).
  std::function<std::optional<nlohmann::json>(std::string_view name)> job{};
  // POST /api/v0/jobs/validate: `body` is a job definition (YAML or JSON); the answer goes back as
  // is, with 200 when it holds "ok": true and 422 otherwise.
  std::function<nlohmann::json(std::string_view body)> validate_job{};
  // GET /api/v0/cluster.
  std::function<nlohmann::json()> cluster{};
};

class AdminServer {
 public:
  // Live tails (each holds a worker thread while streaming) allowed at once; more get 503.
  static constexpr int kMaxFlowStreams = 8;
  static constexpr std::size_t kDefaultFlowLimit = 10;
  static constexpr std::size_t kMaxFlowLimit = 10000;

  AdminServer(AdminConfig config, AdminDeps deps);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and serves on a thread of its own. Throws std::runtime_error naming the address on failure.
  void start();
  // Ends live tails, stops accepting, waits for in-flight requests. Idempotent.
  void stop();
  // The bound port (the chosen one when the configured port is 0); 0 before start().
  int port() const { return port_; }

 private:
  void routes();
  void handle_metrics(const httplib::Request& req, httplib::Response& res);
  void handle_healthcheck(const httplib::Request& req, httplib::Response& res);
  void handle_status(const httplib::Request& req, httplib::Response& res);
  void handle_query(const httplib::Request& req, httplib::Response& res);
  void handle_flows(const httplib::Request& req, httplib::Response& res);
  void handle_jobs(const httplib::Request& req, httplib::Response& res);
  void handle_job(const httplib::Request& req, httplib::Response& res);
  void handle_validate_job(const httplib::Request& req, httplib::Response& res);
  void handle_cluster(const httplib::Request& req, httplib::Response& res);
  void count_request(const httplib::Request& req, const httplib::Response& res);

  AdminConfig config_;
  AdminDeps deps_;
  HttpListener listener_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};

  // Live tails in progress, so that stop() can wake their readers instead of waiting for a flow.
  std::mutex streams_mutex_;
  std::set<std::shared_ptr<FlowSubscription>> streams_;
};

}  // namespace sluice::admin
