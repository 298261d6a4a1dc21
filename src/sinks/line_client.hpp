// LineClient: a persistent TCP connection for line protocols without replies (Graphite plaintext,
// OpenTSDB's telnet `put`), reconnected whenever the server closed it.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace sluice::sinks {

struct LineClientConfig {
  std::string address;  // "host:port"
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds write_timeout{5000};
};

// Not thread-safe: one sender thread owns it.
class LineClient {
 public:
  explicit LineClient(LineClientConfig config);
  ~LineClient();
  LineClient(const LineClient&) = delete;
  LineClient& operator=(const LineClient&) = delete;

  // Writes every byte of `data`; an empty string when written, else why not (the connection is then
  // closed and the next call reconnects). Lines the server had not read when it died can be lost:
  // these protocols have no acknowledgement, which is why the spool keeps a batch until written.
  std::string send(std::string_view data);
  const std::string& address() const { return config_.address; }

 private:
  bool connected_and_open();

  LineClientConfig config_;
  int fd_ = -1;
};

// Opens a non-blocking TCP connection to "host:port" within the timeout; -1 and `error` when it cannot.
int tcp_connect(const std::string& address, std::chrono::milliseconds timeout, std::string& error);
// Writes all of `data` to a non-blocking socket before the deadline; false and `error` otherwise.
bool tcp_send_all(int fd, std::string_view data, std::chrono::steady_clock::time_point deadline, std::string& error);

}  // namespace sluice::sinks
