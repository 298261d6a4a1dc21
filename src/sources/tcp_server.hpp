// TcpServer: a small epoll TCP server for the stream receivers (Graphite plaintext, Open-Falcon line
// socket and JSON-RPC); bounded per-connection buffers, idle timeout, connection limit, counted closes.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/envelope.hpp"
#include "core/metrics.hpp"

namespace sluice {

struct TcpServerConfig {
  std::string name;    // metric label (receiver=<name>) and log prefix
  std::string listen;  // "host:port"; IPv6 as "[addr]:port"; port 0 picks a free one (tests)
  int workers = 1;     // threads, each with its own SO_REUSEPORT socket and epoll set
  std::size_t max_message = 64 * 1024;  // bytes buffered without a complete line/object
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
  int max_connections = 4096;  // across workers; more are accepted and closed at once, counted
};

// What a metric receiver on TCP is configured with; each turns it into its server's config.
struct TcpReceiverConfig {
  std::string listen;
  std::size_t max_message = 4096;  // longest line (Graphite, line socket) or request object (RPC)
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
  int max_connections = 4096;
  int workers = 1;
  std::string topic;

  TcpServerConfig server(std::string name) const {
    return TcpServerConfig{std::move(name), listen, workers, max_message, idle_timeout, max_connections};
  }
};

struct TcpPeer {
  Ip6 address{};
  std::uint16_t port = 0;
};

// Why a connection ended; each is a label of inlet_tcp_connections_closed_total.
enum class TcpClose : std::uint8_t { peer, quit, garbage, oversize, idle, error, shutdown, count_ };
const char* to_string(TcpClose reason);

// The protocol side of one connection; created per connection, used by one thread only.
class TcpSession {
 public:
  enum class Action { keep, quit, garbage };
  enum class Oversize { skip_line, close };
  virtual ~TcpSession() = default;
  // `data` is everything received and not yet consumed. Consume whole messages only (set `consumed`),
  // append replies to `reply`.
  virtual Action on_data(std::string_view data, std::size_t& consumed, std::string& reply) = 0;
  // More than max_message bytes are buffered without a complete message. skip_line discards up to and
  // including the next newline (line protocols); close ends the connection.
  virtual Oversize on_oversize() = 0;
};

using TcpSessionFactory = std::function<std::unique_ptr<TcpSession>(const TcpPeer&)>;

// Counters (label receiver=<name>): inlet_tcp_connections_opened_total, inlet_tcp_connections_closed_total
// {reason}, inlet_tcp_connections_rejected_total (over max_connections), inlet_tcp_bytes_total; gauge
// inlet_tcp_connections_open.
class TcpServer {
 public:
  TcpServer(TcpServerConfig config, TcpSessionFactory factory, MetricsRegistry& metrics);
  ~TcpServer();
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;

  // Binds and starts the threads; throws std::runtime_error naming the address and what to check.
  void start();
  // Closes every connection and joins the threads. Idempotent.
  void stop();

  std::uint16_t bound_port() const { return bound_port_; }
  const TcpServerConfig& config() const { return config_; }
  nlohmann::json status() const;

 private:
  struct Counters;
  class Worker;

  TcpServerConfig config_;
  TcpSessionFactory factory_;
  std::unique_ptr<Counters> counters_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<int> open_{0};
  int stop_fd_ = -1;
  std::uint16_t bound_port_ = 0;
};

// Splits a byte stream into top-level JSON objects by brace depth outside strings; newlines are not
// needed. Keeps its scan position across calls so a large object arriving in pieces is scanned once.
class JsonObjectSplitter {
 public:
  enum class Result { object, need_more, garbage };
  // `data` starts where the previous object ended (the caller consumed it) and only grows between
  // calls until an object is found. On `object`, `end` is one past its closing brace; the object may
  // have leading whitespace. `garbage` means something other than an object starts here.
  // Closing brackets must match their openers (a mismatch is garbage, as Go's decoder refuses it);
  // nesting deeper than kMaxDepth is garbage too.
  Result next(std::string_view data, std::size_t& end);

  static constexpr std::size_t kMaxDepth = 512;

 private:
  std::size_t pos_ = 0;
  std::size_t depth_ = 0;
  std::array<char, kMaxDepth> open_{};  // the closer each open level expects
  bool in_string_ = false;
  bool escaped_ = false;
};

// Parses "host:port" / "[v6]:port" into a socket address; throws naming `what`.
struct SocketAddress {
  std::vector<std::uint8_t> storage;  // sockaddr_storage bytes
  unsigned length = 0;
  int family = 0;
  std::string host, port;
};
SocketAddress parse_listen_address(const std::string& text, const std::string& what);

}  // namespace sluice
