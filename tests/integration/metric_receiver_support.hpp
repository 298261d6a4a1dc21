// Test support for the metric receivers: a bus reader that decodes every message into envelope +
// metric record, and a plain blocking TCP client.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bus/memory_bus.hpp"
#include "core/envelope.hpp"
#include "core/metric_record.hpp"

namespace sluice::testing {

struct BusMetric {
  std::string key;
  SourceKind kind;
  std::string source;  // sender address
  MetricOrigin origin;
  MetricCounterType counter_type;
  std::int32_t step;
  std::int64_t timestamp;
  double value;
  std::string endpoint, metric, tags;
  bool decoded = false;
};

// Consumes every partition of a MemoryBus on its own thread and keeps what it read.
class BusReader final : public bus::ConsumerHandler {
 public:
  explicit BusReader(bus::MemoryBus& bus) : consumer_(bus.make_consumer(0, 1)) {
    thread_ = std::thread([this] { consumer_->run(*this); });
  }
  ~BusReader() override {
    consumer_->stop();
    thread_.join();
  }
  std::vector<BusMetric> all() {
    std::lock_guard lock(mutex_);
    return got_;
  }
  std::size_t size() {
    std::lock_guard lock(mutex_);
    return got_.size();
  }
  std::vector<std::string> topics() {
    std::lock_guard lock(mutex_);
    return topics_;
  }

  void on_assigned(const std::vector<bus::Assignment>&) override {}
  void on_revoked(const std::vector<bus::PartitionRef>&) override {}
  void on_idle() override {}
  void on_message(const bus::Message& m) override {
    BusMetric b;
    b.key.assign(reinterpret_cast<const char*>(m.key.data()), m.key.size());
    Envelope env;
    if (decode_envelope(m.value, env) == EnvelopeError::none) {
      b.kind = env.kind;
      b.source = ip6_to_string(env.source_address);
      if (const auto r = decode_metric(env.payload)) {
        b.decoded = true;
        b.origin = r->origin;
        b.counter_type = r->counter_type;
        b.step = r->step;
        b.timestamp = r->timestamp;
        b.value = r->value;
        b.endpoint = r->endpoint;
        b.metric = r->metric;
        b.tags = r->tags;
      }
    }
    std::lock_guard lock(mutex_);
    got_.push_back(std::move(b));
    topics_.emplace_back(m.topic);
  }

 private:
  std::unique_ptr<bus::Consumer> consumer_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<BusMetric> got_;
  std::vector<std::string> topics_;
};

// A blocking TCP client on 127.0.0.1.
class TcpClient {
 public:
  explicit TcpClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~TcpClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  TcpClient(const TcpClient&) = delete;
  TcpClient& operator=(const TcpClient&) = delete;

  bool connected() const { return connected_; }
  bool send(const std::string& data) {
    std::size_t at = 0;
    while (at < data.size()) {
      const auto n = ::send(fd_, data.data() + at, data.size() - at, MSG_NOSIGNAL);
      if (n <= 0) return false;
      at += static_cast<std::size_t>(n);
    }
    return true;
  }
  // Reads until `count` newlines arrived, the peer closed, or the timeout.
  std::string read_lines(std::size_t count, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (static_cast<std::size_t>(std::count(out.begin(), out.end(), '\n')) < count) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
  // True once the server closed the connection (reads EOF or a reset within the timeout).
  bool closed_by_peer(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    if (closed_) return true;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return closed_ = true;
    }
    return false;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
};

}  // namespace sluice::testing
