// graphite_blast: a Graphite plaintext load generator and a counting destination, for relay benchmarks.
//
//   graphite_blast send --port P --metrics N [--connections C] [--series S] [--rate LINES_PER_S]
//       writes N lines "bench.<series>.value <i> <ts>" over C TCP connections to 127.0.0.1:P (as fast as
//       possible, or paced to a total rate), then prints `sent=<N> seconds=<s>`.
//   graphite_blast sink --ports K
//       listens on K free loopback ports, prints "LISTENING p1 … pK", then every 100 ms
//       "COUNT <lines received on all ports>", until killed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

std::string arg(int argc, char** argv, std::string_view name, const char* fallback = nullptr) {
  for (int i = 2; i + 1 < argc; ++i) {
    if (argv[i] == name) return argv[i + 1];
  }
  if (!fallback) throw std::invalid_argument("missing " + std::string(name));
  return fallback;
}

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("cannot connect");
  return fd;
}

void write_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n <= 0) throw std::runtime_error("write failed");
    off += static_cast<std::size_t>(n);
  }
}

int send(int argc, char** argv) {
  const int port = std::stoi(arg(argc, argv, "--port"));
  const long total = std::stol(arg(argc, argv, "--metrics"));
  const int connections = std::stoi(arg(argc, argv, "--connections", "4"));
  const long series = std::stol(arg(argc, argv, "--series", "10000"));
  const double rate = std::stod(arg(argc, argv, "--rate", "0"));
  const long ts = static_cast<long>(::time(nullptr));
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      const int fd = connect_to(port);
      const long mine = total / connections + (c < total % connections ? 1 : 0);
      const double my_rate = rate / connections;
      std::string buf;
      long i = 0;
      while (i < mine) {
        if (my_rate > 0) {
          const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          if (static_cast<double>(i) > elapsed * my_rate) {
            std::this_thread::sleep_for(std::chrono::microseconds(200));
            continue;
          }
        }
        buf.clear();
        for (int k = 0; k < 500 && i < mine; ++k, ++i) {
          const long n = i * connections + c;
          char line[96];
          const int len = std::snprintf(line, sizeof line, "bench.s%ld.value %ld %ld\n", n % series, n, ts);
          buf.append(line, static_cast<std::size_t>(len));
        }
        write_all(fd, buf);
      }
      ::close(fd);
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("sent=%ld seconds=%.3f\n", total, seconds);
  return 0;
}

int sink(int argc, char** argv) {
  const int ports = std::stoi(arg(argc, argv, "--ports", "4"));
  std::atomic<long> lines{0};
  std::vector<int> listeners;
  std::string listening("LISTENING");
  for (int i = 0; i < ports; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 128) != 0) {
      throw std::runtime_error("cannot listen");
    }
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    listening.push_back(' ');
    listening.append(std::to_string(ntohs(a.sin_port)));
    listeners.push_back(fd);
  }
  std::printf("%s\n", listening.c_str());
  std::fflush(stdout);
  for (const int l : listeners) {
    std::thread([l, &lines] {
      for (;;) {
        const int fd = ::accept(l, nullptr, nullptr);
        if (fd < 0) continue;
        std::thread([fd, &lines] {
          char buf[1 << 16];
          for (;;) {
            const ssize_t n = ::read(fd, buf, sizeof buf);
            if (n <= 0) break;
            long count = 0;
            for (ssize_t i = 0; i < n; ++i) count += buf[i] == '\n';
            lines.fetch_add(count, std::memory_order_relaxed);
          }
          ::close(fd);
        }).detach();
      }
    }).detach();
  }
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::printf("COUNT %ld\n", lines.load());
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc >= 2 && std::string_view(argv[1]) == "send") return send(argc, argv);
    if (argc >= 2 && std::string_view(argv[1]) == "sink") return sink(argc, argv);
    std::fprintf(stderr, "usage: graphite_blast send --port P --metrics N [--connections C] [--series S] [--rate R]\n"
                         "       graphite_blast sink --ports K\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "graphite_blast: %s\n", e.what());
    return 1;
  }
}
