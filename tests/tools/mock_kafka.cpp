// sluice-mock-kafka: librdkafka's mock Kafka cluster as a process that tests and benchmarks drive over stdin.
//
//   sluice-mock-kafka [--brokers N] [--topic NAME:PARTITIONS]...
//
// Prints `BOOTSTRAP <servers>` once the cluster listens, then answers one command a line with `OK` or
// `ERR <why>`:
//   produce_errors <count> <ERROR_NAME>   the next <count> Produce requests fail with that error
//   broker_down <id> | broker_up <id>     take a broker off / back on the network
//   topic_create <name> <partitions>      create a topic (replicated on every broker, up to 3)
//   quit                                  exit 0 (as do stdin EOF, SIGTERM and SIGINT)
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

// Kafka protocol API keys (public protocol numbers); rdkafka_mock.h takes them as plain integers.
constexpr std::int16_t kApiProduce = 0;

struct Options {
  int brokers = 3;
  std::vector<std::pair<std::string, int>> topics;
};

std::optional<int> parse_int(std::string_view s) {
  int v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Splits "name:partitions" at the last colon so topic names stay unrestricted.
std::optional<std::pair<std::string, int>> parse_topic(std::string_view spec) {
  const auto colon = spec.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  const auto n = parse_int(spec.substr(colon + 1));
  if (!n || *n <= 0) return std::nullopt;
  return std::pair{std::string(spec.substr(0, colon)), *n};
}

std::optional<Options> parse_args(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) return std::nullopt;
    const std::string_view value = argv[++i];
    if (arg == "--brokers") {
      const auto n = parse_int(value);
      if (!n || *n <= 0) return std::nullopt;
      opt.brokers = *n;
    } else if (arg == "--topic") {
      auto t = parse_topic(value);
      if (!t) return std::nullopt;
      opt.topics.push_back(std::move(*t));
    } else {
      return std::nullopt;
    }
  }
  return opt;
}

// Maps an error name as librdkafka prints it (NOT_LEADER_FOR_PARTITION, _TRANSPORT) to its code.
std::optional<rd_kafka_resp_err_t> error_by_name(std::string_view name) {
  const rd_kafka_err_desc* descs = nullptr;
  size_t count = 0;
  rd_kafka_get_err_descs(&descs, &count);
  for (size_t i = 0; i < count; ++i) {
    if (descs[i].name != nullptr && name == descs[i].name) return descs[i].code;
  }
  return std::nullopt;
}

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
struct MockDeleter {
  void operator()(rd_kafka_mock_cluster_t* mc) const { rd_kafka_mock_cluster_destroy(mc); }
};

class MockCluster {
 public:
  explicit MockCluster(int brokers) : brokers_(brokers) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    // The handle only hosts the mock cluster; keep its own logging quiet unless something breaks.
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    rk_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err));
    if (!rk_) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(std::string("cannot create librdkafka handle: ") + err);
    }
    cluster_.reset(rd_kafka_mock_cluster_new(rk_.get(), brokers));
    if (!cluster_) throw std::runtime_error("cannot create the mock cluster");
  }

  std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(cluster_.get()); }

  std::string create_topic(const std::string& name, int partitions) {
    const int replication = std::min(brokers_, 3);
    const auto err = rd_kafka_mock_topic_create(cluster_.get(), name.c_str(), partitions, replication);
    return err ? rd_kafka_err2name(err) : std::string();
  }

  // Returns an empty string on success, else why it failed.
  std::string execute(const std::string& line) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    if (cmd == "produce_errors") {
      long long count = 0;
      std::string name;
      if (!(in >> count >> name) || count <= 0) return "usage: produce_errors <count> <ERROR_NAME>";
      const auto code = error_by_name(name);
      if (!code) return "unknown error name " + name;
      const std::vector<rd_kafka_resp_err_t> errors(static_cast<size_t>(count), *code);
      rd_kafka_mock_push_request_errors_array(cluster_.get(), kApiProduce, errors.size(), errors.data());
      return {};
    }
    if (cmd == "broker_down" || cmd == "broker_up") {
      int id = 0;
      if (!(in >> id)) return "usage: " + cmd + " <broker id>";
      const auto err = cmd == "broker_down" ? rd_kafka_mock_broker_set_down(cluster_.get(), id)
                                            : rd_kafka_mock_broker_set_up(cluster_.get(), id);
      return err ? rd_kafka_err2name(err) : std::string();
    }
    if (cmd == "topic_create") {
      std::string name;
      int partitions = 0;
      if (!(in >> name >> partitions) || partitions <= 0) return "usage: topic_create <name> <partitions>";
      return create_topic(name, partitions);
    }
    return "unknown command '" + cmd + "'";
  }

 private:
  int brokers_;
  std::unique_ptr<rd_kafka_t, KafkaDeleter> rk_;
  std::unique_ptr<rd_kafka_mock_cluster_t, MockDeleter> cluster_;
};

void reply(const std::string& why) {
  if (why.empty()) {
    std::fputs("OK\n", stdout);
  } else {
    std::fprintf(stdout, "ERR %s\n", why.c_str());
  }
  std::fflush(stdout);
}

// Serves commands until quit, stdin EOF or a termination signal.
void serve(MockCluster& cluster, int signal_fd) {
  std::string pending;
  char buf[4096];
  for (;;) {
    pollfd fds[2] = {{0, POLLIN, 0}, {signal_fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      std::perror("sluice-mock-kafka: poll");
      return;
    }
    if (fds[1].revents & POLLIN) return;
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    const ssize_t n = ::read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    pending.append(buf, static_cast<size_t>(n));
    for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      if (line == "quit") {
        reply({});
        return;
      }
      reply(cluster.execute(line));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = parse_args(argc, argv);
  if (!options) {
    std::fprintf(stderr, "usage: %s [--brokers N] [--topic NAME:PARTITIONS]...\n", argv[0]);
    return 2;
  }
  // Blocked before librdkafka starts its threads, so every thread inherits the mask and the
  // signals arrive only through the signalfd.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  const int signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
  if (signal_fd < 0) {
    std::perror("sluice-mock-kafka: signalfd");
    return 1;
  }
  try {
    MockCluster cluster(options->brokers);
    for (const auto& [name, partitions] : options->topics) {
      const auto err = cluster.create_topic(name, partitions);
      if (!err.empty()) {
        std::fprintf(stderr, "sluice-mock-kafka: cannot create topic %s: %s\n", name.c_str(), err.c_str());
        return 1;
      }
    }
    std::fprintf(stdout, "BOOTSTRAP %s\n", cluster.bootstraps().c_str());
    std::fflush(stdout);
    serve(cluster, signal_fd);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice-mock-kafka: %s\n", e.what());
    return 1;
  }
  ::close(signal_fd);
  return 0;
}
