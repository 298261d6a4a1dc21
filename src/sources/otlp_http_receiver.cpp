#include "sources/otlp_http_receiver.hpp"

#include <httplib.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <cstring>
#include <limits>

#include "core/envelope.hpp"
#include "core/native_block.hpp"
#include "sources/metric_producer.hpp"
#include "sources/tcp_server.hpp"

namespace sluice {

struct OtlpHttpReceiver::Counters {
  explicit Counters(MetricsRegistry& m)
      : protobuf(m.counter("inlet_spans_requests_total", "OTLP trace requests accepted onto the bus",
                           {{"receiver", "otlp_http"}, {"encoding", "protobuf"}})),
        json(m.counter("inlet_spans_requests_total", "OTLP trace requests accepted onto the bus",
                       {{"receiver", "otlp_http"}, {"encoding", "json"}})),
        bytes(m.counter("inlet_spans_body_bytes_total", "OTLP trace request bytes after decompression",
                        {{"receiver", "otlp_http"}})),
        bad_content_type(bad(m, "content_type")),
        too_large(bad(m, "body_too_large")),
        bad_encoding(bad(m, "content_encoding")),
        unreadable(bad(m, "unreadable_body")),
        full(m.counter("inlet_spans_produce_drops_total", "OTLP trace requests the bus refused (answered 503 or 500)",
                       {{"receiver", "otlp_http"}, {"reason", "full"}})),
        error(m.counter("inlet_spans_produce_drops_total", "OTLP trace requests the bus refused (answered 503 or 500)",
                        {{"receiver", "otlp_http"}, {"reason", "error"}})) {}
  static Counter& bad(MetricsRegistry& m, const char* reason) {
    return m.counter("inlet_spans_bad_requests_total", "OTLP trace requests refused before the bus",
                     {{"receiver", "otlp_http"}, {"reason", reason}});
  }
  Counter &protobuf, &json, &bytes, &bad_content_type, &too_large, &bad_encoding, &unreadable, &full, &error;
};

namespace {

enum class Encoding { none, protobuf, json };

Encoding encoding_of(const httplib::Request& req) {
  std::string type = req.get_header_value("Content-Type");
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  for (auto& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (type == "application/x-protobuf" || type == "application/protobuf") return Encoding::protobuf;
  if (type == "application/json") return Encoding::json;
  return Encoding::none;
}

// google.rpc.Status { int32 code = 1; string message = 2; } in the request's encoding, as OTLP/HTTP
// answers errors.
void status_reply(httplib::Response& res, Encoding enc, int http, int grpc_code, const std::string& message) {
  res.status = http;
  if (enc == Encoding::protobuf) {
    std::string body;
    body += '\x08';
    body += static_cast<char>(grpc_code);
    body += '\x12';
    std::uint8_t len[10];
    body.append(reinterpret_cast<const char*>(len),
                static_cast<std::size_t>(write_varint(len, message.size()) - len));
    body += message;
    res.set_content(body, "application/x-protobuf");
  } else {
    res.set_content(nlohmann::json{{"code", grpc_code}, {"message", message}}.dump(
                        -1, ' ', false, nlohmann::json::error_handler_t::replace),
                    "application/json");
  }
}

}  // namespace

OtlpHttpReceiver::OtlpHttpReceiver(OtlpHttpConfig config, bus::Producer& producer, MetricsRegistry& metrics)
    : config_(std::move(config)),
      producer_(producer),
      counters_(std::make_unique<Counters>(metrics)),
      listener_("otlp-http", config_.threads) {
  if (config_.threads < 1 || config_.threads > 1024) {
    throw std::runtime_error(fmt::format("inlet.otlp.threads must be within 1..1024 (got {})", config_.threads));
  }
  if (config_.max_body < 1024) {
    throw std::runtime_error(fmt::format("inlet.otlp.max_body must be at least 1024 bytes (got {})", config_.max_body));
  }
  auto& s = listener_.server();
  s.set_payload_max_length(config_.max_body);  // Content-Length bound; the decompressed bound is below
  const auto idle = config_.idle_timeout;
  s.set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(idle).count(), (idle.count() % 1000) * 1000);
  s.set_keep_alive_timeout(std::max<long>(1, std::chrono::duration_cast<std::chrono::seconds>(idle).count()));
  s.set_keep_alive_max_count(std::numeric_limits<std::size_t>::max());
  s.set_tcp_nodelay(true);

  s.Post("/v1/traces", [this](const httplib::Request& req, httplib::Response& res,
                              const httplib::ContentReader& content_reader) {
    auto& c = *counters_;
    const Encoding enc = encoding_of(req);
    if (enc == Encoding::none) {
      c.bad_content_type.inc();
      res.set_header("Connection", "close");
      status_reply(res, Encoding::json, 400, 3,
                   fmt::format("unsupported Content-Type '{}': send application/x-protobuf or application/json",
                               req.get_header_value("Content-Type")));
      return;
    }
    // The envelope header and the marker byte go in front; the body is read straight behind them.
    thread_local std::string value;
    constexpr std::size_t kPrefix = kEnvelopeHeaderSize + 1;
    value.resize(kPrefix);
    bool too_large = false;
    const bool read = content_reader([&](const char* data, std::size_t n) {
      if (value.size() - kPrefix + n > config_.max_body) {
        too_large = true;
        return false;
      }
      value.append(data, n);
      return true;
    });
    if (too_large || res.status == 413) {
      c.too_large.inc();
      res.set_header("Connection", "close");
      status_reply(res, enc, 413, 8,
                   fmt::format("request body larger than {} bytes (inlet.otlp.max_body)", config_.max_body));
      return;
    }
    if (!read) {
      const bool encoding = res.status == 415;
      (encoding ? c.bad_encoding : c.unreadable).inc();
      res.set_header("Connection", "close");
      status_reply(res, enc, encoding ? 415 : 400, 3,
                   encoding ? "unsupported Content-Encoding: send gzip, deflate or none"
                            : "the request body could not be read (truncated or corrupt compression)");
      return;
    }
    const std::size_t body_size = value.size() - kPrefix;
    c.bytes.inc(body_size);
    if (body_size != 0) {
      Envelope env;
      env.received_ns = unix_now_ns();
      env.kind = SourceKind::span;
      if (auto a = ip6_parse(req.remote_addr)) env.source_address = *a;
      env.source_port = static_cast<std::uint16_t>(req.remote_port);
      auto* bytes = reinterpret_cast<std::byte*>(value.data());
      encode_envelope_header(env, std::span<std::byte, kEnvelopeHeaderSize>(bytes, kEnvelopeHeaderSize));
      value[kEnvelopeHeaderSize] = static_cast<char>(enc == Encoding::protobuf ? 1 : 2);
      const std::uint64_t seq = sequence_.fetch_add(1, std::memory_order_relaxed);
      const auto status = producer_.produce(config_.topic, std::as_bytes(std::span(&seq, 1)),
                                            std::span<const std::byte>(bytes, value.size()));
      if (status != bus::ProduceStatus::ok) {
        const bool full = status == bus::ProduceStatus::full;
        (full ? c.full : c.error).inc();
        if (full) res.set_header("Retry-After", "1");
        status_reply(res, enc, full ? 503 : 500, full ? 14 : 13,
                     full ? "the bus is full; retry later" : "the bus refused the request (too large or failing)");
        return;
      }
    }
    (enc == Encoding::protobuf ? c.protobuf : c.json).inc();
    res.status = 200;
    if (enc == Encoding::protobuf) res.set_content("", "application/x-protobuf");
    else res.set_content("{}", "application/json");
  });
  s.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.status == 200) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 413) {
      status_reply(res, Encoding::json, 413, 8, "request body too large (inlet.otlp.max_body)");
    } else if (res.status == 404) {
      status_reply(res, Encoding::json, 404, 5,
                   fmt::format("no such endpoint: {} {}; traces go to POST /v1/traces", req.method, req.path));
    } else {
      status_reply(res, Encoding::json, res.status, 2, fmt::format("HTTP error {}", res.status));
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
    spdlog::error("otlp http: {} {} failed: {}", req.method, req.path, what);
    status_reply(res, Encoding::json, 500, 13, what);
  });
}

OtlpHttpReceiver::~OtlpHttpReceiver() { stop(); }

void OtlpHttpReceiver::start() {
  if (port_ != 0) return;
  const auto where = parse_listen_address(config_.listen, "otlp http");
  port_ = listener_.start(where.host.empty() ? "0.0.0.0" : where.host, std::stoi(where.port), 1024, "otlp http",
                          config_.listen, "Change inlet.otlp.listen");
  spdlog::info("otlp http: POST /v1/traces on {} (port {}), {} threads, producing to '{}'", config_.listen, port_,
               config_.threads, config_.topic);
}

void OtlpHttpReceiver::stop() { listener_.stop(); }

nlohmann::json OtlpHttpReceiver::status() const {
  const auto& c = *counters_;
  return {
      {"name", "otlp_http"},
      {"kind", "span"},
      {"listen", config_.listen},
      {"port", port_},
      {"topic", config_.topic},
      {"requests", {{"protobuf", c.protobuf.value()}, {"json", c.json.value()}}},
      {"body_bytes", c.bytes.value()},
      {"bad_requests",
       {{"content_type", c.bad_content_type.value()},
        {"body_too_large", c.too_large.value()},
        {"content_encoding", c.bad_encoding.value()},
        {"unreadable_body", c.unreadable.value()}}},
      {"produce_drops", {{"full", c.full.value()}, {"error", c.error.value()}}},
  };
}

}  // namespace sluice
