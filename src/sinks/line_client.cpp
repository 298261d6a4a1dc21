#include "sinks/line_client.hpp"

#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice::sinks {
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

bool split_address(const std::string& address, std::string& host, std::string& port) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) return false;
  host = address.substr(0, colon);
  port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return true;
}

}  // namespace

int tcp_connect(const std::string& address, std::chrono::milliseconds timeout, std::string& error) {
  std::string host, port;
  if (!split_address(address, host, port)) {
    error = "address " + address + " is not host:port";
    return -1;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    error = "cannot resolve " + host + ": " + ::gai_strerror(rc);
    return -1;
  }
  const auto deadline = Clock::now() + timeout;
  int fd = -1;
  error = "no address for " + host;
  for (addrinfo* ai = res; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        error = std::string("connect failed: ") + std::strerror(errno);
        ::close(fd), fd = -1;
        continue;
      }
      pollfd p{fd, POLLOUT, 0};
      int soerr = 0;
      socklen_t len = sizeof soerr;
      if (::poll(&p, 1, remaining_ms(deadline)) <= 0) {
        error = fmt::format("connect timed out after {} ms", timeout.count());
        ::close(fd), fd = -1;
        continue;
      }
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
      if (soerr != 0) {
        error = std::string("connect failed: ") + std::strerror(soerr);
        ::close(fd), fd = -1;
        continue;
      }
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ::freeaddrinfo(res);
  return fd;
}

bool tcp_send_all(int fd, std::string_view data, Clock::time_point deadline, std::string& error) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, remaining_ms(deadline)) <= 0) {
        error = "timed out sending";
        return false;
      }
      continue;
    }
    error = std::string("sending failed: ") + std::strerror(errno);
    return false;
  }
  return true;
}

LineClient::LineClient(LineClientConfig config) : config_(std::move(config)) {}

LineClient::~LineClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool LineClient::connected_and_open() {
  if (fd_ < 0) return false;
  // These servers never write: anything readable is the end of the connection (or garbage).
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, 0) == 0) return true;
  char buf[256];
  const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
  if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) return true;
  ::close(fd_);
  fd_ = -1;
  return false;
}

std::string LineClient::send(std::string_view data) {
  std::string error;
  if (!connected_and_open()) {
    fd_ = tcp_connect(config_.address, config_.connect_timeout, error);
    if (fd_ < 0) return fmt::format("{}: {}", config_.address, error);
  }
  if (!tcp_send_all(fd_, data, Clock::now() + config_.write_timeout, error)) {
    ::close(fd_);
    fd_ = -1;
    return fmt::format("{}: {}", config_.address, error);
  }
  return {};
}

}  // namespace sluice::sinks
