#include "sources/udp_source.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include "core/thread_name.hpp"

namespace sluice {
namespace {

// The largest UDP payload; every slot can hold any datagram, so nothing is ever truncated.
constexpr std::size_t kMaxDatagram = 65535;
// recvmmsg refuses more than UIO_MAXIOV messages per call.
constexpr int kMaxBatch = 1024;

std::string errno_text(int err) { return std::strerror(err); }

struct ListenAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_INET;
  std::string host, port;
};

ListenAddress parse_listen(const UdpSourceConfig& c) {
  const std::string& text = c.listen;
  ListenAddress out;
  std::string host, port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw std::runtime_error(fmt::format("udp source '{}': listen '{}' is not [IPv6]:port", c.name, text));
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) {
      throw std::runtime_error(fmt::format(
          "udp source '{}': listen '{}' is not host:port (write IPv6 addresses as [addr]:port)", c.name, text));
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535) {
    throw std::runtime_error(fmt::format("udp source '{}': listen '{}' has no valid port (0-65535)", c.name, text));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    throw std::runtime_error(fmt::format("udp source '{}': cannot resolve listen address '{}': {}; check the host part",
                                         c.name, text, gai_strerror(rc)));
  }
  std::memcpy(&out.addr, res->ai_addr, res->ai_addrlen);
  out.len = res->ai_addrlen;
  out.family = res->ai_family;
  freeaddrinfo(res);
  out.host = host;
  out.port = port;
  return out;
}

void set_port(ListenAddress& a, std::uint16_t port) {
  if (a.family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&a.addr)->sin6_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in*>(&a.addr)->sin_port = htons(port);
  }
}

// Inode of each of our sockets → its drops column, summed. Lines look like
// "sl local rem st tx:rx tr:when retr uid timeout inode ref pointer drops".
std::uint64_t sum_proc_drops(const char* path, const std::vector<ino_t>& inodes) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  std::uint64_t total = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string f[13];
    int n = 0;
    while (n < 13 && fields >> f[n]) ++n;
    if (n < 13) continue;
    const auto inode = static_cast<ino_t>(std::strtoull(f[9].c_str(), nullptr, 10));
    for (ino_t ours : inodes) {
      if (ours == inode) total += std::strtoull(f[12].c_str(), nullptr, 10);
    }
  }
  return total;
}

}  // namespace

struct UdpSource::Counters {
  Counter* packets;
  Counter* bytes;
  Counter* drops_full;
  Counter* drops_error;
  Counter* kernel_drops;
  Counter* receive_errors;
  Gauge* receive_buffer;
};

// One socket and its receive thread. Buffers are allocated once; each slot keeps room for the
// envelope header in front of the datagram, so wrapping it costs a 28-byte write and no copy.
class UdpSource::Worker {
 public:
  Worker(const UdpSourceConfig& config, bus::Producer& producer, Counters& counters, int stop_fd)
      : config_(config), producer_(producer), counters_(counters), stop_fd_(stop_fd) {
    const auto n = static_cast<std::size_t>(config.batch);
    slots_.resize(n * kSlotSize);
    names_.resize(n);
    iovs_.resize(n);
    control_.resize(n * kControlSize);
    hdrs_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      iovs_[i].iov_base = slots_.data() + i * kSlotSize + kEnvelopeHeaderSize;
      iovs_[i].iov_len = kMaxDatagram;
    }
  }
  ~Worker() {
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Creates, tunes and binds the socket. Returns the bound port.
  std::uint16_t open(const ListenAddress& where, bool log_buffer) {
    fd_ = ::socket(where.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      throw std::runtime_error(fmt::format("udp source '{}': cannot create a socket for {}: {}", config_.name,
                                           config_.listen, errno_text(errno)));
    }
    const int one = 1;
    if (::setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      throw std::runtime_error(fmt::format("udp source '{}': SO_REUSEPORT refused on {}: {}", config_.name,
                                           config_.listen, errno_text(errno)));
    }
    if (::setsockopt(fd_, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) != 0) {
      spdlog::warn("udp source '{}': SO_RXQ_OVFL refused ({}); kernel drops are only visible in inlet_udp_proc_drops",
                   config_.name, errno_text(errno));
    }
    set_receive_buffer(log_buffer);
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&where.addr), where.len) != 0) {
      const int err = errno;
      throw std::runtime_error(fmt::format(
          "udp source '{}': cannot bind {}: {}; check that no other program listens on UDP port {} "
          "(ss -lunp) and that {} is an address of this host",
          config_.name, config_.listen, errno_text(err), where.port, where.host.empty() ? "*" : where.host));
    }
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len);
    struct stat st {};
    if (::fstat(fd_, &st) == 0) inode_ = st.st_ino;
    return local.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&local)->sin6_port)
                                       : ntohs(reinterpret_cast<sockaddr_in*>(&local)->sin_port);
  }

  void start() {
    thread_ = std::thread([this] {
      name_this_thread("udp-source");
      run();
    });
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  ino_t inode() const { return inode_; }

 private:
  static constexpr std::size_t kSlotSize = kEnvelopeHeaderSize + kMaxDatagram;
  static constexpr std::size_t kControlSize = CMSG_SPACE(sizeof(std::uint32_t));

  void set_receive_buffer(bool log) {
    const int want = config_.receive_buffer;
    // FORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN; without it the plain option applies.
    if (::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    }
    int granted = 0;
    socklen_t len = sizeof granted;
    ::getsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &granted, &len);
    // The kernel reports twice what it accounts against (bookkeeping overhead), so halve it.
    const int effective = granted / 2;
    counters_.receive_buffer->set(effective);
    if (!log) return;
    if (effective < want) {
      spdlog::warn(
          "udp source '{}' on {}: the kernel capped the receive buffer to {} bytes (asked {}); bursts may be "
          "dropped: raise net.core.rmem_max (sysctl -w net.core.rmem_max={}) or run with CAP_NET_ADMIN",
          config_.name, config_.listen, effective, want, want);
    } else {
      spdlog::info("udp source '{}' on {}: receive buffer {} bytes per socket, {} socket(s)", config_.name,
                   config_.listen, effective, config_.workers);
    }
  }

  void run() {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    while (true) {
      fds[0].revents = fds[1].revents = 0;
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        spdlog::error("udp source '{}': poll failed ({}); receive thread stops", config_.name, errno_text(errno));
        return;
      }
      if (fds[1].revents != 0) return;
      // Drain without polling while batches come back full.
      while (true) {
        const int n = receive();
        if (n < config_.batch) break;
        if (stop_requested()) return;
      }
    }
  }

  bool stop_requested() const {
    pollfd p{stop_fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }

  // One recvmmsg and the produce of what it returned; the number of datagrams received.
  int receive() {
    const auto n = static_cast<unsigned>(config_.batch);
    for (unsigned i = 0; i < n; ++i) {
      msghdr& m = hdrs_[i].msg_hdr;
      m.msg_name = &names_[i];
      m.msg_namelen = sizeof(sockaddr_storage);
      m.msg_iov = &iovs_[i];
      m.msg_iovlen = 1;
      m.msg_control = control_.data() + i * kControlSize;
      m.msg_controllen = kControlSize;
      m.msg_flags = 0;
      hdrs_[i].msg_len = 0;
    }
    const int got = ::recvmmsg(fd_, hdrs_.data(), n, MSG_DONTWAIT, nullptr);
    if (got < 0) {
      const int err = errno;
      if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
        counters_.receive_errors->inc();
        log_receive_error(err);
      }
      return 0;
    }
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    Envelope env;
    env.kind = config_.kind;
    env.received_ns = static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(now.tv_nsec);
    std::uint64_t bytes = 0, full = 0, error = 0;
    std::uint32_t kernel_drops = last_kernel_drops_;
    for (int i = 0; i < got; ++i) {
      const msghdr& m = hdrs_[i].msg_hdr;
      for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&m), c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
          std::uint32_t v;
          std::memcpy(&v, CMSG_DATA(c), sizeof v);
          // The kernel's count is cumulative and may wrap; only its advance is new.
          if (static_cast<std::int32_t>(v - kernel_drops) > 0) kernel_drops = v;
        }
      }
      set_source(names_[i], env);
      const std::size_t len = hdrs_[i].msg_len;
      std::byte* slot = slots_.data() + static_cast<std::size_t>(i) * kSlotSize;
      encode_envelope_header(env, std::span<std::byte, kEnvelopeHeaderSize>(slot, kEnvelopeHeaderSize));
      const std::span<const std::byte> value(slot, kEnvelopeHeaderSize + len);
      const auto key = std::as_bytes(std::span(env.source_address));
      bytes += len;
      switch (producer_.produce(config_.topic, key, value)) {
        case bus::ProduceStatus::ok: break;
        case bus::ProduceStatus::full: ++full; break;
        case bus::ProduceStatus::error: ++error; break;
      }
    }
    counters_.packets->inc(static_cast<std::uint64_t>(got));
    counters_.bytes->inc(bytes);
    if (full != 0) counters_.drops_full->inc(full);
    if (error != 0) counters_.drops_error->inc(error);
    if (kernel_drops != last_kernel_drops_) {
      counters_.kernel_drops->inc(kernel_drops - last_kernel_drops_);
      last_kernel_drops_ = kernel_drops;
    }
    if (full + error != 0) log_produce_drops(full, error);
    return got;
  }

  static void set_source(const sockaddr_storage& from, Envelope& env) {
    if (from.ss_family == AF_INET6) {
      const auto& a = reinterpret_cast<const sockaddr_in6&>(from);
      std::memcpy(env.source_address.data(), &a.sin6_addr, 16);
      env.source_port = ntohs(a.sin6_port);
    } else {
      const auto& a = reinterpret_cast<const sockaddr_in&>(from);
      env.source_address = ip6_from_v4(ntohl(a.sin_addr.s_addr));
      env.source_port = ntohs(a.sin_port);
    }
  }

  // At most one line per 10 s per worker: a flood must not turn into a log flood.
  bool log_due() {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_log_ < std::chrono::seconds(10)) return false;
    last_log_ = now;
    return true;
  }
  void log_receive_error(int err) {
    if (log_due()) spdlog::error("udp source '{}' on {}: recvmmsg failed: {}", config_.name, config_.listen, errno_text(err));
  }
  void log_produce_drops(std::uint64_t full, std::uint64_t error) {
    if (log_due()) {
      spdlog::warn("udp source '{}' on {}: the bus refused {} datagram(s) (full: {}, error: {}); they are dropped "
                   "and counted in inlet_udp_produce_drops_total; check the bus health and outlet lag",
                   config_.name, config_.listen, full + error, full, error);
    }
  }

  const UdpSourceConfig& config_;
  bus::Producer& producer_;
  Counters& counters_;
  const int stop_fd_;
  int fd_ = -1;
  ino_t inode_ = 0;
  std::thread thread_;
  std::vector<std::byte> slots_;
  std::vector<sockaddr_storage> names_;
  std::vector<iovec> iovs_;
  std::vector<std::byte> control_;
  std::vector<mmsghdr> hdrs_;
  std::uint32_t last_kernel_drops_ = 0;
  std::chrono::steady_clock::time_point last_log_{};
};

UdpSource::UdpSource(UdpSourceConfig config, bus::Producer& producer, MetricsRegistry& metrics)
    : config_(std::move(config)), producer_(producer), metrics_(metrics), counters_(std::make_unique<Counters>()) {
  if (config_.workers < 1) {
    throw std::runtime_error(fmt::format("udp source '{}': workers must be at least 1 (got {})", config_.name,
                                         config_.workers));
  }
  if (config_.batch < 1 || config_.batch > kMaxBatch) {
    throw std::runtime_error(fmt::format("udp source '{}': batch must be within 1..{} (got {})", config_.name,
                                         kMaxBatch, config_.batch));
  }
  if (config_.receive_buffer < 0) {
    throw std::runtime_error(fmt::format("udp source '{}': receive_buffer must not be negative", config_.name));
  }
  const Labels l{{"source", config_.name}};
  auto with = [&](const char* key, const char* value) {
    Labels out = l;
    out.emplace_back(key, value);
    return out;
  };
  counters_->packets = &metrics_.counter("inlet_udp_packets_total", "Datagrams received by a UDP source", l);
  counters_->bytes = &metrics_.counter("inlet_udp_bytes_total", "UDP payload bytes received by a UDP source", l);
  const char* drop_help = "Datagrams received but refused by the bus, by reason";
  counters_->drops_full = &metrics_.counter("inlet_udp_produce_drops_total", drop_help, with("reason", "full"));
  counters_->drops_error = &metrics_.counter("inlet_udp_produce_drops_total", drop_help, with("reason", "error"));
  counters_->kernel_drops = &metrics_.counter(
      "inlet_udp_kernel_drops_total", "Datagrams the kernel dropped because the socket buffer was full (SO_RXQ_OVFL)", l);
  counters_->receive_errors =
      &metrics_.counter("inlet_udp_receive_errors_total", "recvmmsg calls that failed (other than no data)", l);
  counters_->receive_buffer =
      &metrics_.gauge("inlet_udp_receive_buffer_bytes", "Receive buffer the kernel granted per socket", l);
}

UdpSource::~UdpSource() {
  stop();
  if (gauge_registered_) metrics_.remove_callbacks("inlet_udp_proc_drops", {{"source", config_.name}});
}

void UdpSource::start() {
  if (started_) throw std::logic_error(fmt::format("udp source '{}' started twice", config_.name));
  ListenAddress where = parse_listen(config_);
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) {
    throw std::runtime_error(fmt::format("udp source '{}': eventfd failed: {}", config_.name, errno_text(errno)));
  }
  try {
    for (int i = 0; i < config_.workers; ++i) {
      auto w = std::make_unique<Worker>(config_, producer_, *counters_, stop_fd_);
      const std::uint16_t port = w->open(where, i == 0);
      // With port 0 the first socket picks the port; the others join it.
      if (i == 0) {
        bound_port_ = port;
        set_port(where, port);
      }
      inodes_.push_back(w->inode());
      workers_.push_back(std::move(w));
    }
  } catch (...) {
    close_all();
    throw;
  }
  if (!gauge_registered_) {
    metrics_.gauge_callback("inlet_udp_proc_drops", "Drops counted by the kernel for this source's sockets (/proc/net/udp)",
                            {{"source", config_.name}}, [this] { return static_cast<double>(proc_drops()); });
    gauge_registered_ = true;
  }
  for (auto& w : workers_) w->start();
  started_ = true;
  spdlog::info("udp source '{}' receiving {} datagrams on {} (port {}) with {} socket(s), producing to '{}'",
               config_.name, to_string(config_.kind), config_.listen, bound_port_, config_.workers, config_.topic);
}

void UdpSource::stop() {
  if (stop_fd_ < 0) return;
  const std::uint64_t one = 1;
  // The eventfd stays readable, so every worker's poll wakes and none consumes the signal.
  [[maybe_unused]] const auto w = ::write(stop_fd_, &one, sizeof one);
  for (auto& worker : workers_) worker->join();
  close_all();
}

void UdpSource::close_all() {
  workers_.clear();
  if (stop_fd_ >= 0) ::close(stop_fd_);
  stop_fd_ = -1;
}

std::uint64_t UdpSource::proc_drops() const {
  return sum_proc_drops("/proc/net/udp", inodes_) + sum_proc_drops("/proc/net/udp6", inodes_);
}

nlohmann::json UdpSource::status() const {
  nlohmann::json j;
  j["name"] = config_.name;
  j["listen"] = config_.listen;
  j["kind"] = to_string(config_.kind);
  j["workers"] = config_.workers;
  j["packets"] = counters_->packets ? counters_->packets->value() : 0;
  j["bytes"] = counters_->bytes ? counters_->bytes->value() : 0;
  j["dropped_bus_full"] = counters_->drops_full ? counters_->drops_full->value() : 0;
  j["dropped_bus_error"] = counters_->drops_error ? counters_->drops_error->value() : 0;
  j["kernel_drops"] = counters_->kernel_drops ? counters_->kernel_drops->value() : 0;
  j["proc_drops"] = proc_drops();
  return j;
}

}  // namespace sluice
