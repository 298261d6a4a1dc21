#include "sources/tcp_server.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "core/thread_name.hpp"

namespace sluice {
namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr int kListenBacklog = 1024;

std::string errno_text(int err) { return std::strerror(err); }

TcpPeer peer_of(const sockaddr_storage& from) {
  TcpPeer p;
  if (from.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(from);
    std::memcpy(p.address.data(), &a.sin6_addr, 16);
    p.port = ntohs(a.sin6_port);
  } else if (from.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(from);
    p.address = ip6_from_v4(ntohl(a.sin_addr.s_addr));
    p.port = ntohs(a.sin_port);
  }
  return p;
}

}  // namespace

const char* to_string(TcpClose reason) {
  switch (reason) {
    case TcpClose::peer: return "peer";
    case TcpClose::quit: return "quit";
    case TcpClose::garbage: return "garbage";
    case TcpClose::oversize: return "oversize";
    case TcpClose::idle: return "idle";
    case TcpClose::error: return "error";
    case TcpClose::shutdown: return "shutdown";
    case TcpClose::count_: break;
  }
  return "unknown";
}

SocketAddress parse_listen_address(const std::string& text, const std::string& what) {
  std::string host, port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw std::runtime_error(fmt::format("{}: listen '{}' is not [IPv6]:port", what, text));
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) {
      throw std::runtime_error(
          fmt::format("{}: listen '{}' is not host:port (write IPv6 addresses as [addr]:port)", what, text));
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535) {
    throw std::runtime_error(fmt::format("{}: listen '{}' has no valid port (0-65535)", what, text));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    throw std::runtime_error(fmt::format("{}: cannot resolve listen address '{}': {}; check the host part", what, text,
                                         gai_strerror(rc)));
  }
  SocketAddress out;
  out.storage.assign(sizeof(sockaddr_storage), 0);
  std::memcpy(out.storage.data(), res->ai_addr, res->ai_addrlen);
  out.length = res->ai_addrlen;
  out.family = res->ai_family;
  freeaddrinfo(res);
  out.host = host;
  out.port = port;
  return out;
}

JsonObjectSplitter::Result JsonObjectSplitter::next(std::string_view data, std::size_t& end) {
  while (pos_ < data.size()) {
    const char c = data[pos_++];
    if (in_string_) {
      if (escaped_) escaped_ = false;
      else if (c == '\\') escaped_ = true;
      else if (c == '"') in_string_ = false;
      continue;
    }
    if (depth_ == 0) {
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
      if (c != '{') return Result::garbage;
      open_[depth_++] = '}';
      continue;
    }
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      if (depth_ == kMaxDepth) return Result::garbage;
      open_[depth_++] = c == '{' ? '}' : ']';
    } else if (c == '}' || c == ']') {
      if (open_[depth_ - 1] != c) return Result::garbage;
      if (--depth_ == 0) {
        end = pos_;
        pos_ = 0;
        return Result::object;
      }
    }
  }
  return Result::need_more;
}

struct TcpServer::Counters {
  Counter* opened;
  Counter* rejected;
  Counter* bytes;
  std::array<Counter*, static_cast<std::size_t>(TcpClose::count_)> closed{};
  Gauge* open;
};

// One thread: its own listening socket (SO_REUSEPORT spreads connections), epoll set and connections.
class TcpServer::Worker {
 public:
  Worker(TcpServer& server, int stop_fd) : server_(server), config_(server.config_), stop_fd_(stop_fd) {}
  ~Worker() {
    if (thread_.joinable()) thread_.join();
    for (auto& [fd, conn] : conns_) {
      (void)conn;
      ::close(fd);
    }
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  std::uint16_t open(const SocketAddress& where) {
    listen_fd_ = ::socket(where.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) fail("cannot create a socket", errno);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) fail("SO_REUSEPORT refused", errno);
    if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(where.storage.data()), where.length) != 0) {
      const int err = errno;
      throw std::runtime_error(fmt::format(
          "tcp receiver '{}': cannot bind {}: {}; check that no other program listens on TCP port {} (ss -ltnp) "
          "and that {} is an address of this host",
          config_.name, config_.listen, errno_text(err), where.port, where.host.empty() ? "*" : where.host));
    }
    if (::listen(listen_fd_, kListenBacklog) != 0) fail("listen failed", errno);
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) fail("epoll_create1 failed", errno);
    add(listen_fd_, EPOLLIN);
    add(stop_fd_, EPOLLIN);
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&local), &len);
    return local.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&local)->sin6_port)
                                       : ntohs(reinterpret_cast<sockaddr_in*>(&local)->sin_port);
  }

  void start() {
    thread_ = std::thread([this] {
      name_this_thread("tcp-source");
      run();
    });
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Conn {
    int fd = -1;
    std::unique_ptr<TcpSession> session;
    std::vector<char> in;  // [begin, end) is received and not consumed
    std::size_t begin = 0, end = 0;
    std::string out;  // replies the socket has not taken yet; while non-empty, nothing is read
    bool skipping = false;  // discarding an oversized line up to its newline
    std::chrono::steady_clock::time_point last_activity;
  };

  [[noreturn]] void fail(const char* what, int err) {
    throw std::runtime_error(fmt::format("tcp receiver '{}' on {}: {}: {}", config_.name, config_.listen, what,
                                         errno_text(err)));
  }

  void add(int fd, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) fail("epoll_ctl failed", errno);
  }
  void modify(int fd, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
  }

  std::chrono::milliseconds sweep_interval() const {
    const auto quarter = config_.idle_timeout / 4;
    return std::clamp(quarter, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  }

  void run() {
    std::array<epoll_event, 128> events{};
    auto last_sweep = std::chrono::steady_clock::now();
    const auto sweep_every = sweep_interval();
    while (true) {
      const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                                 static_cast<int>(sweep_every.count()));
      if (n < 0 && errno != EINTR) {
        spdlog::error("tcp receiver '{}': epoll_wait failed ({}); this worker stops", config_.name, errno_text(errno));
        break;
      }
      bool stop = false;
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == stop_fd_) {
          stop = true;
        } else if (fd == listen_fd_) {
          accept_all();
        } else if (auto it = conns_.find(fd); it != conns_.end()) {
          handle(*it->second, events[i].events);
        }
      }
      if (stop) break;
      const auto now = std::chrono::steady_clock::now();
      if (now - last_sweep >= sweep_every) {
        last_sweep = now;
        sweep(now);
      }
    }
    while (!conns_.empty()) close(*conns_.begin()->second, TcpClose::shutdown);
  }

  void accept_all() {
    while (true) {
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      const int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&from), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          // Out of descriptors or memory: back off until the next event instead of spinning.
          spdlog::warn("tcp receiver '{}' on {}: accept failed: {}; raise the open-files limit (ulimit -n) if "
                       "this repeats",
                       config_.name, config_.listen, errno_text(errno));
        }
        return;
      }
      if (server_.open_.fetch_add(1) >= config_.max_connections) {
        server_.open_.fetch_sub(1);
        server_.counters_->rejected->inc();
        ::close(fd);
        continue;
      }
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // replies are small and awaited
      auto conn = std::make_unique<Conn>();
      conn->fd = fd;
      conn->session = server_.factory_(peer_of(from));
      conn->last_activity = std::chrono::steady_clock::now();
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.fd = fd;
      if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        server_.open_.fetch_sub(1);
        ::close(fd);
        continue;
      }
      server_.counters_->opened->inc();
      server_.counters_->open->add(1);
      conns_.emplace(fd, std::move(conn));
    }
  }

  void handle(Conn& c, std::uint32_t events) {
    if ((events & EPOLLOUT) != 0 && !c.out.empty()) {
      if (!flush(c)) return;
      if (c.out.empty()) {
        modify(c.fd, EPOLLIN | EPOLLRDHUP);
        // Input buffered while the replies waited is processed now.
        if (c.end > c.begin && !process(c)) return;
      }
    }
    if (c.out.empty() && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) read(c);
  }

  // Reads what is there (a bounded number of rounds, so one busy peer cannot starve the others).
  void read(Conn& c) {
    for (int round = 0; round < 8; ++round) {
      if (c.begin > 0 && c.begin == c.end) c.begin = c.end = 0;
      if (c.in.size() - c.end < kReadChunk) {
        if (c.begin > 0) {
          std::memmove(c.in.data(), c.in.data() + c.begin, c.end - c.begin);
          c.end -= c.begin;
          c.begin = 0;
        }
        if (c.in.size() - c.end < kReadChunk) c.in.resize(c.end + kReadChunk);
      }
      const ssize_t n = ::recv(c.fd, c.in.data() + c.end, kReadChunk, 0);
      if (n > 0) {
        server_.counters_->bytes->inc(static_cast<std::uint64_t>(n));
        c.end += static_cast<std::size_t>(n);
        c.last_activity = std::chrono::steady_clock::now();
        if (!process(c)) return;
        if (!c.out.empty()) return;  // the peer must read its replies before it sends more
        if (static_cast<std::size_t>(n) < kReadChunk) return;
        continue;
      }
      if (n == 0) {
        close(c, TcpClose::peer);
        return;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) close(c, errno == ECONNRESET ? TcpClose::peer : TcpClose::error);
      return;
    }
  }

  // Hands buffered bytes to the session. false when the connection was closed.
  bool process(Conn& c) {
    if (c.skipping) {
      const char* base = c.in.data();
      const void* nl = std::memchr(base + c.begin, '\n', c.end - c.begin);
      if (nl == nullptr) {
        c.begin = c.end;
        return true;
      }
      c.begin = static_cast<std::size_t>(static_cast<const char*>(nl) - base) + 1;
      c.skipping = false;
    }
    if (c.end == c.begin) return true;
    std::size_t consumed = 0;
    reply_.clear();
    const auto action =
        c.session->on_data(std::string_view(c.in.data() + c.begin, c.end - c.begin), consumed, reply_);
    c.begin += std::min(consumed, c.end - c.begin);
    if (!reply_.empty()) {
      c.out.append(reply_);
      if (!flush(c)) return false;
    }
    if (action != TcpSession::Action::keep) {
      close(c, action == TcpSession::Action::quit ? TcpClose::quit : TcpClose::garbage);
      return false;
    }
    if (c.end - c.begin > config_.max_message) {
      if (c.session->on_oversize() == TcpSession::Oversize::close) {
        close(c, TcpClose::oversize);
        return false;
      }
      c.begin = c.end;
      c.skipping = true;
    }
    // Level-triggered input events would fire again and again while the replies wait: watch output only.
    if (!c.out.empty()) modify(c.fd, EPOLLOUT);
    return true;
  }

  // Writes pending replies. false when the connection was closed.
  bool flush(Conn& c) {
    while (!c.out.empty()) {
      const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.out.erase(0, static_cast<std::size_t>(n));
        c.last_activity = std::chrono::steady_clock::now();
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      close(c, TcpClose::peer);
      return false;
    }
    return true;
  }

  void sweep(std::chrono::steady_clock::time_point now) {
    std::vector<Conn*> idle;
    for (auto& [fd, conn] : conns_) {
      (void)fd;
      if (now - conn->last_activity > config_.idle_timeout) idle.push_back(conn.get());
    }
    for (Conn* c : idle) close(*c, TcpClose::idle);
  }

  void close(Conn& c, TcpClose reason) {
    server_.counters_->closed[static_cast<std::size_t>(reason)]->inc();
    server_.counters_->open->add(-1);
    server_.open_.fetch_sub(1);
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
    const int fd = c.fd;
    conns_.erase(fd);  // destroys c
    ::close(fd);
  }

  TcpServer& server_;
  const TcpServerConfig& config_;
  const int stop_fd_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  std::thread thread_;
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  std::string reply_;
};

TcpServer::TcpServer(TcpServerConfig config, TcpSessionFactory factory, MetricsRegistry& metrics)
    : config_(std::move(config)), factory_(std::move(factory)), counters_(std::make_unique<Counters>()) {
  if (config_.workers < 1 || config_.workers > 64) {
    throw std::runtime_error(fmt::format("tcp receiver '{}': workers must be within 1..64 (got {})", config_.name,
                                         config_.workers));
  }
  if (config_.max_message < 16) {
    throw std::runtime_error(fmt::format("tcp receiver '{}': the maximum line/object size must be at least 16 bytes",
                                         config_.name));
  }
  if (config_.idle_timeout.count() <= 0) {
    throw std::runtime_error(fmt::format("tcp receiver '{}': idle_timeout must be positive", config_.name));
  }
  const Labels l{{"receiver", config_.name}};
  counters_->opened = &metrics.counter("inlet_tcp_connections_opened_total", "TCP connections accepted", l);
  counters_->rejected = &metrics.counter("inlet_tcp_connections_rejected_total",
                                         "TCP connections closed at once because max_connections were open", l);
  counters_->bytes = &metrics.counter("inlet_tcp_bytes_total", "Bytes received on TCP receivers", l);
  for (std::size_t i = 0; i < counters_->closed.size(); ++i) {
    Labels with = l;
    with.emplace_back("reason", to_string(static_cast<TcpClose>(i)));
    counters_->closed[i] = &metrics.counter("inlet_tcp_connections_closed_total", "TCP connections closed, by reason", with);
  }
  counters_->open = &metrics.gauge("inlet_tcp_connections_open", "TCP connections open now", l);
}

TcpServer::~TcpServer() { stop(); }

void TcpServer::start() {
  if (stop_fd_ >= 0) throw std::logic_error(fmt::format("tcp receiver '{}' started twice", config_.name));
  SocketAddress where = parse_listen_address(config_.listen, fmt::format("tcp receiver '{}'", config_.name));
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) throw std::runtime_error(fmt::format("tcp receiver '{}': eventfd failed", config_.name));
  try {
    for (int i = 0; i < config_.workers; ++i) {
      auto w = std::make_unique<Worker>(*this, stop_fd_);
      const std::uint16_t port = w->open(where);
      if (i == 0) {
        // With port 0 the first socket picks the port; the others join it.
        bound_port_ = port;
        auto* sa = reinterpret_cast<sockaddr*>(where.storage.data());
        if (sa->sa_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(sa)->sin6_port = htons(port);
        else reinterpret_cast<sockaddr_in*>(sa)->sin_port = htons(port);
      }
      workers_.push_back(std::move(w));
    }
  } catch (...) {
    workers_.clear();
    ::close(stop_fd_);
    stop_fd_ = -1;
    throw;
  }
  for (auto& w : workers_) w->start();
  spdlog::info("tcp receiver '{}' listening on {} (port {}) with {} thread(s)", config_.name, config_.listen,
               bound_port_, config_.workers);
}

void TcpServer::stop() {
  if (stop_fd_ < 0) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto w = ::write(stop_fd_, &one, sizeof one);
  for (auto& worker : workers_) worker->join();
  workers_.clear();
  ::close(stop_fd_);
  stop_fd_ = -1;
}

nlohmann::json TcpServer::status() const {
  nlohmann::json j;
  j["listen"] = config_.listen;
  j["port"] = bound_port_;
  j["connections_open"] = open_.load();
  j["connections_opened"] = counters_->opened->value();
  j["connections_rejected"] = counters_->rejected->value();
  j["bytes"] = counters_->bytes->value();
  nlohmann::json closed;
  for (std::size_t i = 0; i < counters_->closed.size(); ++i) {
    closed[to_string(static_cast<TcpClose>(i))] = counters_->closed[i]->value();
  }
  j["connections_closed"] = std::move(closed);
  return j;
}

}  // namespace sluice
