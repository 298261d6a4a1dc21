#include "admin/admin_server.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <utility>

#include "app/version.hpp"
#include "core/envelope.hpp"

namespace sluice::admin {

namespace {

constexpr const char* kJson = "application/json";
constexpr const char* kPrometheus = "text/plain; version=0.0.4";
// Not a type httplib compresses, so each flow line leaves as soon as it is written.
constexpr const char* kNdjson = "application/x-ndjson";
constexpr std::size_t kWorkerThreads = 16;
constexpr int kListenBacklog = 128;
// How often an idle live tail checks whether the server is stopping or the client went away.
constexpr std::chrono::milliseconds kTailPoll{200};

struct ListenAddress {
  std::string host;
  int port = 0;
};

ListenAddress parse_listen(const std::string& listen) {
  const auto fail = [&] {
    return std::runtime_error(
        fmt::format("admin.listen: invalid address '{}' (expected host:port, e.g. 127.0.0.1:8080)", listen));
  };
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw fail();
  ListenAddress out;
  out.host = listen.substr(0, colon);
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  if (out.host.empty()) out.host = "0.0.0.0";
  const std::string_view port = std::string_view(listen).substr(colon + 1);
  const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
  if (port.empty() || ec != std::errc{} || ptr != port.data() + port.size() || out.port < 0 || out.port > 65535) {
    throw fail();
  }
  return out;
}

// Job definitions and their errors quote what users wrote, which need not be UTF-8.
std::string dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void json_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(dump(nlohmann::json{{"error", message}}), kJson);
}

void text_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(message + "\n", "text/plain; charset=utf-8");
}

std::string_view endpoint_label(const std::string& path) {
  static constexpr std::string_view kKnown[] = {"/metrics",       "/api/v0/healthcheck", "/api/v0/version",
                                                "/api/v0/status", "/api/v0/query",       "/api/v0/flows",
                                                "/api/v0/jobs",   "/api/v0/jobs/validate", "/api/v0/cluster"};
  for (auto known : kKnown) {
    if (path == known) return known;
  }
  if (path.rfind("/api/v0/jobs/", 0) == 0) return "/api/v0/jobs/<name>";
  return "other";  // keeps label cardinality bounded whatever clients ask for
}

std::optional<std::size_t> parse_size(const std::string& text) {
  std::size_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace

AdminServer::AdminServer(AdminConfig config, AdminDeps deps)
    : config_(std::move(config)), deps_(std::move(deps)), listener_("admin-http", kWorkerThreads) {
  routes();
}

AdminServer::~AdminServer() { stop(); }

void AdminServer::routes() {
  // A worker pool larger than httplib's default (kWorkerThreads) leaves room for live tails without
  // starving metric scrapes.
  auto& s = listener_.server();
  s.set_payload_max_length(config_.max_body_bytes);
  s.set_read_timeout(config_.read_timeout_ms / 1000, (config_.read_timeout_ms % 1000) * 1000);
  s.set_tcp_nodelay(true);

  s.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) { handle_metrics(req, res); });
  s.Get("/api/v0/healthcheck",
        [this](const httplib::Request& req, httplib::Response& res) { handle_healthcheck(req, res); });
  s.Get("/api/v0/version",
        [](const httplib::Request&, httplib::Response& res) { res.set_content(app::version_info().dump(), kJson); });
  s.Get("/api/v0/status", [this](const httplib::Request& req, httplib::Response& res) { handle_status(req, res); });
  s.Get("/api/v0/query", [this](const httplib::Request& req, httplib::Response& res) { handle_query(req, res); });
  s.Post("/api/v0/query", [this](const httplib::Request& req, httplib::Response& res) { handle_query(req, res); });
  s.Get("/api/v0/flows", [this](const httplib::Request& req, httplib::Response& res) { handle_flows(req, res); });
  s.Get("/api/v0/jobs", [this](const httplib::Request& req, httplib::Response& res) { handle_jobs(req, res); });
  s.Post("/api/v0/jobs/validate",
         [this](const httplib::Request& req, httplib::Response& res) { handle_validate_job(req, res); });
  s.Get(R"(/api/v0/jobs/([^/]+))",
        [this](const httplib::Request& req, httplib::Response& res) { handle_job(req, res); });
  s.Get("/api/v0/cluster", [this](const httplib::Request& req, httplib::Response& res) { handle_cluster(req, res); });

  // Runs for every status >= 400; handlers that already wrote a body keep it.
  s.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.content_provider_) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 404) {
      json_error(res, 404, fmt::format("no such endpoint: {} {}", req.method, req.path));
    } else if (res.status == 413) {
      json_error(res, 413, fmt::format("request body larger than {} bytes", config_.max_body_bytes));
    } else {
      json_error(res, res.status,
                 res.status == 400 ? std::string("malformed request") : fmt::format("HTTP error {}", res.status));
    }
    return httplib::Server::HandlerResponse::Handled;
  }));
  s.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("admin HTTP: {} {} failed: {}", req.method, req.path, what);
    json_error(res, 500, what);
  });
  s.set_logger([this](const httplib::Request& req, const httplib::Response& res) { count_request(req, res); });
}

void AdminServer::count_request(const httplib::Request& req, const httplib::Response& res) {
  deps_.metrics
      .counter("admin_http_requests_total", "Admin HTTP requests answered, by endpoint and status code",
               {{"endpoint", std::string(endpoint_label(req.path))}, {"code", std::to_string(res.status)}})
      .inc();
}

void AdminServer::start() {
  if (port_ != 0) return;
  const ListenAddress addr = parse_listen(config_.listen);
  port_ = listener_.start(addr.host, addr.port, kListenBacklog, "admin HTTP server", config_.listen,
                          "Change admin.listen (SLUICE_ADMIN_LISTEN)", [listen = config_.listen] {
                            spdlog::error("admin HTTP server on {} stopped accepting connections; metrics and the "
                                          "API are unavailable until sluice restarts",
                                          listen);
                          });
  spdlog::info("admin HTTP server listening on {}:{} (metrics at /metrics, API under /api/v0/)", addr.host, port_);
}

void AdminServer::stop() {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard lock(streams_mutex_);
    for (const auto& sub : streams_) sub->close();
  }
  listener_.stop();
}

void AdminServer::handle_metrics(const httplib::Request&, httplib::Response& res) {
  res.set_content(deps_.metrics.render_prometheus(), kPrometheus);
}

void AdminServer::handle_healthcheck(const httplib::Request&, httplib::Response& res) {
  const bool ok = !deps_.healthy || deps_.healthy();
  res.status = ok ? 200 : 503;
  res.set_content(nlohmann::json{{"status", ok ? "ok" : "unhealthy"}}.dump(), kJson);
}

void AdminServer::handle_status(const httplib::Request&, httplib::Response& res) {
  if (!deps_.status) return json_error(res, 503, "status unavailable in this process");
  res.set_content(deps_.status().dump(), kJson);
}

void AdminServer::handle_query(const httplib::Request& req, httplib::Response& res) {
  if (!deps_.query) return text_error(res, 503, "query unavailable: this process has no store configured");

  std::string sql;
  const bool form = req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0;
  if (req.method == "POST" && !form && !req.body.empty()) {
    sql = req.body;
  } else if (req.has_param("sql")) {
    // Query string or, for a urlencoded POST, the form field (httplib merges both into params).
    sql = req.get_param_value("sql");
  }
  if (sql.empty()) {
    return text_error(res, 400, "missing SQL: pass ?sql=..., a form field sql, or the statement as the POST body");
  }

  const std::string format = req.has_param("format") ? req.get_param_value("format") : "TabSeparated";
  const char* content_type = nullptr;
  if (format == "JSONEachRow") {
    content_type = "application/x-ndjson; charset=utf-8";
  } else if (format == "TabSeparated") {
    content_type = "text/tab-separated-values; charset=utf-8";
  } else {
    return text_error(res, 400, fmt::format("unsupported format '{}': use JSONEachRow or TabSeparated", format));
  }

  try {
    sinks::QueryResult result = deps_.query(sql, format);
    res.set_header("X-Sluice-Rows-Read", std::to_string(result.rows_read));
    res.set_header("X-Sluice-Bytes-Read", std::to_string(result.bytes_read));
    res.set_content(std::move(result.data), content_type);
  } catch (const sinks::StoreError& e) {
    text_error(res, e.retryable() ? 503 : 400, e.what());
  }
}

void AdminServer::handle_flows(const httplib::Request& req, httplib::Response& res) {
  if (deps_.flows == nullptr) {
    return json_error(res, 503, "live flow tail unavailable: this process decodes no flows");
  }
  std::size_t limit = kDefaultFlowLimit;
  if (req.has_param("limit")) {
    const auto v = parse_size(req.get_param_value("limit"));
    if (!v || *v == 0) return json_error(res, 400, "limit must be a positive integer");
    limit = std::min(*v, kMaxFlowLimit);
  }
  std::optional<Ip6> exporter;
  if (req.has_param("exporter")) {
    exporter = ip6_parse(req.get_param_value("exporter"));
    if (!exporter) {
      return json_error(res, 400, fmt::format("exporter '{}' is not an IP address", req.get_param_value("exporter")));
    }
  }

  std::shared_ptr<FlowSubscription> sub;
  {
    std::lock_guard lock(streams_mutex_);
    if (stopping_.load()) return json_error(res, 503, "server is stopping");
    if (streams_.size() >= static_cast<std::size_t>(kMaxFlowStreams)) {
      return json_error(res, 503, fmt::format("too many live tails at once (max {})", kMaxFlowStreams));
    }
    sub = std::make_shared<FlowSubscription>(deps_.flows->subscribe(limit, exporter));
    streams_.insert(sub);
  }

  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      kNdjson,
      [this, sub](std::size_t, httplib::DataSink& sink) {
        // One line per call; httplib calls again until done() or a false return.
        while (!stopping_.load()) {
          if (sub->finished()) break;
          auto line = sub->next(kTailPoll);
          if (!line) {
            if (!sink.is_writable()) return false;  // client went away while idle
            continue;
          }
          line->push_back('\n');
          return sink.write(line->data(), line->size());
        }
        sink.done();
        return true;
      },
      [this, sub](bool) {
        std::lock_guard lock(streams_mutex_);
        streams_.erase(sub);
      });
}

void AdminServer::handle_jobs(const httplib::Request&, httplib::Response& res) {
  if (!deps_.jobs) return json_error(res, 503, "jobs unavailable: this process runs no ingestion jobs");
  res.set_content(dump(deps_.jobs()), kJson);
}

void AdminServer::handle_job(const httplib::Request& req, httplib::Response& res) {
  if (!deps_.job) return json_error(res, 503, "jobs unavailable: this process runs no ingestion jobs");
  const std::string name = req.matches[1];
  auto job = deps_.job(name);
  if (!job) return json_error(res, 404, fmt::format("no job named \"{}\" (GET /api/v0/jobs lists them)", name));
  res.set_content(dump(*job), kJson);
}

void AdminServer::handle_validate_job(const httplib::Request& req, httplib::Response& res) {
  if (!deps_.validate_job) return json_error(res, 503, "job validation unavailable in this process");
  if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) {
    return json_error(res, 400, "missing job definition: send it (YAML or JSON) as the POST body");
  }
  const auto answer = deps_.validate_job(req.body);
  const auto ok = answer.find("ok");  // end() for anything but an object
  res.status = ok != answer.end() && ok->is_boolean() && ok->get<bool>() ? 200 : 422;
  res.set_content(dump(answer), kJson);
}

void AdminServer::handle_cluster(const httplib::Request&, httplib::Response& res) {
  if (!deps_.cluster) return json_error(res, 503, "cluster view unavailable: coordination (etcd) is not configured");
  res.set_content(dump(deps_.cluster()), kJson);
}

}  // namespace sluice::admin
