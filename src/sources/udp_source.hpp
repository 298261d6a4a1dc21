// UdpSource: the UDP inlet for flow exports; receives datagrams on several SO_REUSEPORT sockets and
// produces each one, wrapped in an envelope and keyed by exporter address, onto the bus.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bus/bus.hpp"
#include "core/envelope.hpp"
#include "core/metrics.hpp"

namespace sluice {

struct UdpSourceConfig {
  std::string name;    // metric label and log prefix
  std::string listen;  // "host:port"; IPv6 as "[addr]:port"; port 0 picks a free one (tests)
  SourceKind kind = SourceKind::netflow;
  int workers = 1;                       // sockets on the same port, one receive thread each
  int receive_buffer = 8 * 1024 * 1024;  // SO_RCVBUF bytes per socket
  int batch = 64;                        // datagrams per recvmmsg call (each worker holds batch x 64 KiB)
  std::string topic;
};

// Does no parsing: every datagram is passed on untouched, so a decoder bug never costs received data.
// Counters (label source=<name>): inlet_udp_packets_total, inlet_udp_bytes_total,
// inlet_udp_produce_drops_total{reason=full|error}, inlet_udp_kernel_drops_total (SO_RXQ_OVFL),
// inlet_udp_receive_errors_total; gauges inlet_udp_proc_drops (/proc/net/udp{,6} drops column) and
// inlet_udp_receive_buffer_bytes (what the kernel granted per socket).
class UdpSource {
 public:
  UdpSource(UdpSourceConfig config, bus::Producer& producer, MetricsRegistry& metrics);
  ~UdpSource();
  UdpSource(const UdpSource&) = delete;
  UdpSource& operator=(const UdpSource&) = delete;

  // Binds every socket and starts the receive threads. Throws std::runtime_error naming the listen
  // address and what to check when a socket cannot be set up; nothing keeps running then.
  void start();
  // Wakes and joins the receive threads, then closes the sockets. Idempotent.
  void stop();

  // The port the sockets are bound to (after start()); differs from the config only for port 0.
  std::uint16_t bound_port() const { return bound_port_; }
  const UdpSourceConfig& config() const { return config_; }

  // Sum of the kernel's drops column in /proc/net/udp and /proc/net/udp6 for this source's sockets.
  std::uint64_t proc_drops() const;
  // Counters for /api/v0/status.
  nlohmann::json status() const;

 private:
  struct Counters;
  class Worker;

  void close_all();

  UdpSourceConfig config_;
  bus::Producer& producer_;
  MetricsRegistry& metrics_;
  std::unique_ptr<Counters> counters_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<ino_t> inodes_;  // fixed once start() returns; read by the /proc gauge
  int stop_fd_ = -1;           // eventfd: readable once stop() is asked
  std::uint16_t bound_port_ = 0;
  bool started_ = false;
  bool gauge_registered_ = false;
};

}  // namespace sluice
