// carbon_ch and fnv1a_ch placement equals carbon-c-relay's own, for 10 000 metric names: the relay's
// test mode (carbon-c-relay -t -f FILE) prints each metric's destinations.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <sstream>

#include "fixtures/process.hpp"
#include "sinks/graphite_ring.hpp"

namespace sluice::sinks {
namespace {

std::vector<std::string> metric_names(int n) {
  std::mt19937 rng(7);
  const char* parts[] = {"servers", "web", "db", "cpu", "user", "system", "disk", "sda", "net", "eth0", "rx", "tx",
                         "load", "mem", "free", "app", "latency", "p99", "requests", "errors"};
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string m = parts[rng() % 20];
    for (int depth = 1 + static_cast<int>(rng() % 5); depth > 0; --depth) m.append(".").append(parts[rng() % 20]);
    m.append(".").append(std::to_string(i));
    out.push_back(m);
  }
  return out;
}

// metric -> destinations ("host:port") as the relay routes them, for the cluster named `cluster`.
std::map<std::string, std::vector<std::string>> relay_routes(const std::string& config, const std::vector<std::string>& names,
                                                             const std::string& hash) {
  testing::TempDir dir("sluice-relay");
  testing::write_file(dir / "relay.conf", config);
  std::string input;
  for (const auto& n : names) input.append(n).append(" 1 1700000000\n");
  testing::write_file(dir / "metrics.txt", input);
  auto r = testing::run_command({"/bin/sh", "-c", "carbon-c-relay -t -f " + dir / "relay.conf" + " < " + dir / "metrics.txt"},
                                std::chrono::seconds(120));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, std::vector<std::string>> routes;
  std::istringstream in(r.out);
  std::string line, metric;
  bool in_cluster = false;
  while (std::getline(in, line)) {
    const auto text = line.substr(std::min(line.find_first_not_of(' '), line.size()));
    if (text.rfind("* -> ", 0) == 0) {
      metric = text.substr(5);
      in_cluster = false;
    } else if (text.rfind(hash + "(", 0) == 0) {
      in_cluster = true;
    } else if (in_cluster && !text.empty() && std::isdigit(static_cast<unsigned char>(text[0]))) {
      routes[metric].push_back(text);
    } else {
      in_cluster = false;
    }
  }
  return routes;
}

void expect_same_as_relay(GraphiteHash hash, const std::string& hash_name, const std::vector<std::string>& servers) {
  std::string config = "cluster c\n    " + hash_name + " replication 2\n";
  std::vector<GraphiteDestination> dests;
  for (const auto& s : servers) {
    config += "        " + s + "\n";
    GraphiteDestination d;
    const auto colon = s.find(':');
    const auto eq = s.find('=');
    d.host = s.substr(0, colon);
    d.port = static_cast<std::uint16_t>(std::stoi(s.substr(colon + 1, eq == std::string::npos ? std::string::npos : eq - colon - 1)));
    if (eq != std::string::npos) d.instance = s.substr(eq + 1);
    dests.push_back(d);
  }
  config += "    ;\nmatch * send to c;\n";
  const auto names = metric_names(10'000);
  const auto routes = relay_routes(config, names, hash_name);
  ASSERT_EQ(routes.size(), names.size());
  const GraphiteRing ring(hash, dests);
  std::vector<std::size_t> picked;
  std::size_t same = 0;
  for (const auto& name : names) {
    picked.clear();
    ring.destinations_for(name, 2, picked);
    std::vector<std::string> ours;
    for (auto i : picked) ours.push_back(dests[i].host + ":" + std::to_string(dests[i].port));
    const auto& theirs = routes.at(name);
    EXPECT_EQ(ours, theirs) << name;
    same += ours == theirs;
  }
  EXPECT_EQ(same, names.size());
}

TEST(GraphiteRing, CarbonChPlacesLikeCarbonCRelay) {
  expect_same_as_relay(GraphiteHash::carbon, "carbon_ch", {"127.0.0.1:2101", "127.0.0.2:2102", "127.0.0.3:2103", "127.0.0.4:2104"});
}

TEST(GraphiteRing, CarbonChInReverseOrderPlacesLikeCarbonCRelay) {
  expect_same_as_relay(GraphiteHash::carbon, "carbon_ch", {"127.0.0.4:2104", "127.0.0.3:2103", "127.0.0.2:2102", "127.0.0.1:2101"});
}

TEST(GraphiteRing, CarbonChOverSevenDestinationsPlacesLikeCarbonCRelay) {
  expect_same_as_relay(GraphiteHash::carbon, "carbon_ch",
                       {"10.0.0.7:2003", "10.0.0.1:2003", "10.0.0.5:2003", "10.0.0.3:2003", "10.0.0.2:2003", "10.0.0.6:2003", "10.0.0.4:2003"});
}

TEST(GraphiteRing, CarbonChWithInstancesPlacesLikeCarbonCRelay) {
  expect_same_as_relay(GraphiteHash::carbon, "carbon_ch", {"127.0.0.1:2101=a", "127.0.0.1:2102=b", "127.0.0.2:2101=a", "127.0.0.2:2102=b"});
}

TEST(GraphiteRing, Fnv1aChPlacesLikeCarbonCRelay) {
  expect_same_as_relay(GraphiteHash::fnv1a, "fnv1a_ch", {"127.0.0.1:2101", "127.0.0.2:2102", "127.0.0.3:2103", "127.0.0.4:2104"});
}

std::vector<std::string> twenty_destinations() {
  std::vector<std::string> out;
  for (int i = 20; i > 0; --i) out.push_back("10.1." + std::to_string(i % 3) + "." + std::to_string(i) + ":" + std::to_string(2000 + i));
  return out;
}

// With 2000 points on a 65536-position ring some positions are shared: the tie rule matters here.
TEST(GraphiteRing, CarbonChOverTwentyDestinationsPlacesLikeCarbonCRelay) {
  expect_same_as_relay(GraphiteHash::carbon, "carbon_ch", twenty_destinations());
}

TEST(GraphiteRing, Fnv1aChOverTwentyDestinationsPlacesLikeCarbonCRelay) {
  expect_same_as_relay(GraphiteHash::fnv1a, "fnv1a_ch", twenty_destinations());
}

TEST(GraphiteRing, Fnv1aChDistinguishesPortsOnOneHost) {
  expect_same_as_relay(GraphiteHash::fnv1a, "fnv1a_ch", {"127.0.0.1:2101", "127.0.0.1:2102", "127.0.0.1:2103"});
}

}  // namespace
}  // namespace sluice::sinks
