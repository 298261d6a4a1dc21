// FalconHttpReceiver (declared in falcon_receivers.hpp): Open-Falcon's POST /api/push on cpp-httplib.
#include <httplib.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <cstring>
#include <limits>

#include "decoders/falcon.hpp"
#include "sources/falcon_receivers.hpp"

namespace sluice {
namespace {

enum class HttpBad : std::uint8_t { empty_body, malformed_body, body_too_large };
constexpr std::array<const char*, 3> kHttpBadNames = {"empty_body", "malformed_body", "body_too_large"};
constexpr const char* kJson = "application/json; charset=UTF-8";

void json_message(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(nlohmann::json{{"msg", message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), kJson);
}

}  // namespace

FalconHttpReceiver::FalconHttpReceiver(FalconHttpConfig config, bus::Producer& producer, MetricsRegistry& metrics)
    : config_(std::move(config)),
      producer_(producer),
      counters_(std::make_unique<ReceiverCounters>(metrics, "falcon_http", falcon_invalid_reasons(), kHttpBadNames)),
      bytes_(&metrics.counter("inlet_http_body_bytes_total", "Request body bytes received", {{"receiver", "falcon_http"}})),
      listener_("falcon-http", config_.threads) {
  if (config_.threads < 1 || config_.threads > 1024) {
    throw std::runtime_error(fmt::format("falcon http: threads must be within 1..1024 (got {})", config_.threads));
  }
  auto& s = listener_.server();
  s.set_payload_max_length(config_.max_body);
  const auto idle = config_.idle_timeout;
  s.set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(idle).count(), (idle.count() % 1000) * 1000);
  s.set_keep_alive_timeout(std::max<long>(1, std::chrono::duration_cast<std::chrono::seconds>(idle).count()));
  // httplib closes a keep-alive connection after 5 requests by default; agents keep theirs open.
  s.set_keep_alive_max_count(std::numeric_limits<std::size_t>::max());
  s.set_tcp_nodelay(true);

  s.Post("/api/push", [this](const httplib::Request& req, httplib::Response& res) {
    const auto started = std::chrono::steady_clock::now();
    bytes_->inc(req.body.size());
    auto& c = *counters_;
    if (req.body.empty()) {
      c.bad_request(static_cast<std::size_t>(HttpBad::empty_body)).inc();
      json_message(res, 400, "blank body");
      return;
    }
    MetricSender from;
    if (auto a = ip6_parse(req.remote_addr)) from.address = *a;
    from.port = static_cast<std::uint16_t>(req.remote_port);
    MetricProducer producer(producer_, config_.topic, SourceKind::falcon);
    const auto received_ns = unix_now_ns();
    falcon::ParseCounts counts;
    std::uint64_t refused = 0;
    std::string error;
    const bool ok = falcon::parse_json_values(
        req.body, static_cast<std::int64_t>(received_ns / 1'000'000'000ULL),
        [&](const falcon::MetricValue& v) {
          if (!c.count(producer.produce(v, from, received_ns), static_cast<std::size_t>(falcon::Invalid::too_long))) {
            ++refused;
          }
        },
        counts, &error);
    if (!ok) {
      c.bad_request(static_cast<std::size_t>(HttpBad::malformed_body)).inc();
      json_message(res, 400, "decode error: " + error);
      return;
    }
    c.received().inc(counts.total);
    for (std::size_t i = 0; i < counts.invalid.size(); ++i) {
      if (counts.invalid[i] != 0) c.invalid(i).inc(counts.invalid[i]);
    }
    if (refused != 0) {
      res.set_header("Retry-After", "1");
      json_message(res, 503,
                   fmt::format("the bus refused {} of {} values (it is full or failing); retry the request", refused,
                               counts.total));
      return;
    }
    const auto latency =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    res.set_content(fmt::format(R"({{"msg":"success","data":{{"Message":"ok","Total":{},"Invalid":{},"Latency":{}}}}})",
                                counts.total, counts.invalid_total(), latency),
                    kJson);
  });
  s.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 413) {
      counters_->bad_request(static_cast<std::size_t>(HttpBad::body_too_large)).inc();
      json_message(res, 413, fmt::format("request body larger than {} bytes (inlet.falcon.http.max_body)", config_.max_body));
    } else if (res.status == 404) {
      json_message(res, 404, fmt::format("no such endpoint: {} {}; metrics go to POST /api/push", req.method, req.path));
    } else {
      json_message(res, res.status, fmt::format("HTTP error {}", res.status));
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
    spdlog::error("falcon http: {} {} failed: {}", req.method, req.path, what);
    json_message(res, 500, what);
  });
}

FalconHttpReceiver::~FalconHttpReceiver() { stop(); }

void FalconHttpReceiver::start() {
  if (port_ != 0) return;
  const auto where = parse_listen_address(config_.listen, "falcon http");
  // Many agents connect at once after a restart: a deep accept queue spares them SYN retries.
  port_ = listener_.start(where.host.empty() ? "0.0.0.0" : where.host, std::stoi(where.port), 1024, "falcon http",
                          config_.listen, "Change inlet.falcon.http.listen (SLUICE_FALCON_HTTP_LISTEN)");
  spdlog::info("falcon http: POST /api/push on {} (port {}), {} threads, producing to '{}'", config_.listen, port_,
               config_.threads, config_.topic);
}

void FalconHttpReceiver::stop() { listener_.stop(); }

nlohmann::json FalconHttpReceiver::status() const {
  nlohmann::json j = counters_->status();
  j["name"] = "falcon_http";
  j["kind"] = "falcon";
  j["listen"] = config_.listen;
  j["port"] = port_;
  j["body_bytes"] = bytes_->value();
  return j;
}

}  // namespace sluice
