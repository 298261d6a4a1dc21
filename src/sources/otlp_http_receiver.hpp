// OtlpHttpReceiver: the inlet's OTLP/HTTP traces endpoint (POST /v1/traces); bodies go on the bus unparsed.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "bus/bus.hpp"
#include "core/http_listener.hpp"
#include "core/metrics.hpp"

namespace httplib {
class Server;
}

namespace sluice {

struct OtlpHttpConfig {
  std::string listen;                  // host:port (inlet.otlp.listen)
  std::size_t max_body = 16ull << 20;  // after gzip decompression; larger requests get 413
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(5)};
  int threads = 8;  // request threads
  std::string topic;
};

// Answers like an OTLP collector: 200 with an empty ExportTraceServiceResponse in the request's
// encoding (application/x-protobuf or application/json), 400 for another content type, 413 beyond
// max_body, 415 for a content encoding other than gzip/deflate, 503 with Retry-After when the bus is
// full. Each accepted body becomes one envelope (kind span) whose payload is a one-byte marker
// (1 protobuf, 2 JSON; pipeline::OtlpBodyMarker) followed by the decompressed body, keyed by a
// request sequence number so that requests spread over partitions. Nothing is parsed here.
class OtlpHttpReceiver {
 public:
  OtlpHttpReceiver(OtlpHttpConfig config, bus::Producer& producer, MetricsRegistry& metrics);
  ~OtlpHttpReceiver();
  void start();
  void stop();
  std::uint16_t bound_port() const { return port_; }
  nlohmann::json status() const;

 private:
  struct Counters;
  OtlpHttpConfig config_;
  bus::Producer& producer_;
  std::unique_ptr<Counters> counters_;
  HttpListener listener_;
  std::atomic<std::uint64_t> sequence_{0};
  std::uint16_t port_ = 0;
};

}  // namespace sluice
