// Open-Falcon receivers: the JSON-RPC port (Transfer.Update / Transfer.Ping, Go net/rpc/jsonrpc wire
// format), the line socket ("update ..." / "quit") and HTTP POST /api/push. Every valid value becomes
// one MetricRecord on the bus, keyed by its series key.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <thread>

#include "bus/bus.hpp"
#include "core/http_listener.hpp"
#include "core/metrics.hpp"
#include "sources/metric_producer.hpp"
#include "sources/tcp_server.hpp"

namespace httplib {
class Server;
}

namespace sluice {

// inlet_metrics_invalid_total reasons of the Open-Falcon receivers: falcon::Invalid's, then these.
enum class FalconExtraInvalid : std::uint8_t { unknown_command = 10, line_too_long = 11 };
std::span<const char* const> falcon_invalid_reasons();

using FalconTcpConfig = TcpReceiverConfig;

// The line socket. Like Open-Falcon's it never replies; `quit` ends the session; unknown commands
// and malformed lines are skipped and counted.
class FalconSocketReceiver {
 public:
  FalconSocketReceiver(FalconTcpConfig config, bus::Producer& producer, MetricsRegistry& metrics);
  ~FalconSocketReceiver();
  void start();
  void stop();
  std::uint16_t bound_port() const { return server_->bound_port(); }
  nlohmann::json status() const;

 private:
  class Session;
  FalconTcpConfig config_;
  bus::Producer& producer_;
  std::unique_ptr<ReceiverCounters> counters_;
  std::unique_ptr<TcpServer> server_;
};

// JSON-RPC 1.0 as Go's net/rpc/jsonrpc speaks it: a stream of request objects (no newlines needed),
// one reply line per request with the same id. A bus that refuses values turns the call into an RPC
// error, so the agent retries (at least once: the values that were accepted arrive twice).
// Something that is not a JSON object, or an object over max_message, closes that connection only.
class FalconRpcReceiver {
 public:
  FalconRpcReceiver(FalconTcpConfig config, bus::Producer& producer, MetricsRegistry& metrics);
  ~FalconRpcReceiver();
  void start();
  void stop();
  std::uint16_t bound_port() const { return server_->bound_port(); }
  nlohmann::json status() const;

 private:
  class Session;
  FalconTcpConfig config_;
  bus::Producer& producer_;
  std::unique_ptr<ReceiverCounters> counters_;
  std::unique_ptr<TcpServer> server_;
};

struct FalconHttpConfig {
  std::string listen;
  std::size_t max_body = 32ull << 20;  // larger bodies get 413
  // How long an idle keep-alive connection and a stalled body read are kept; stop() waits up to this
  // long for connections that are idle at that moment.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(5)};
  int threads = 8;  // request threads (one per active keep-alive connection)
  std::string topic;
};

// HTTP POST /api/push (cpp-httplib). The reply is Open-Falcon's: {"msg":"success","data":{"Message":"ok",
// "Total":T,"Invalid":K,"Latency":ms}}; 400 for an empty or malformed body, 413 beyond max_body, 503 (with
// Retry-After) when the bus refused values, so that the sender retries.
class FalconHttpReceiver {
 public:
  FalconHttpReceiver(FalconHttpConfig config, bus::Producer& producer, MetricsRegistry& metrics);
  ~FalconHttpReceiver();
  void start();
  void stop();
  std::uint16_t bound_port() const { return port_; }
  nlohmann::json status() const;

 private:
  FalconHttpConfig config_;
  bus::Producer& producer_;
  std::unique_ptr<ReceiverCounters> counters_;
  Counter* bytes_;
  HttpListener listener_;
  std::uint16_t port_ = 0;
};

}  // namespace sluice
