// MetricRouterConfig: where the outlet sends metrics (`outlet.metrics`): Open-Falcon graph and judge
// clusters, OpenTSDB, Graphite destinations, the store's `metrics` table, and the spool that keeps
// what a destination cannot take yet.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/reader.hpp"

namespace sluice::sinks {

struct FalconClusterConfig {
  // Node name → its addresses; every address of the chosen node gets a copy (graph replication).
  std::map<std::string, std::vector<std::string>> nodes;
  int replicas = 500;
  std::size_t batch = 200;
  int max_conns = 32;
  int max_idle = 32;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds call_timeout{5000};
};

struct TsdbConfig {
  std::string address;         // host:port
  std::string protocol = "http";  // http (/api/put) | telnet (put lines)
  std::size_t batch = 200;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds call_timeout{5000};
};

struct GraphiteOutConfig {
  std::vector<std::string> destinations;  // "host:port" or, for carbon_ch, "host:port=instance"
  std::string hash = "carbon_ch";         // carbon_ch | fnv1a_ch
  int replication = 1;
  std::size_t batch = 500;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds write_timeout{5000};
};

struct SpoolSettings {
  std::uint64_t max_memory = 64ull << 20;  // per destination
  std::uint64_t max_disk = 4ull << 30;     // per destination
  std::chrono::milliseconds spill_after{1000};
  std::chrono::milliseconds retry_initial{200};
  std::chrono::milliseconds retry_max{30'000};
};

struct MetricRouterConfig {
  std::optional<FalconClusterConfig> graph;
  std::optional<FalconClusterConfig> judge;
  std::optional<TsdbConfig> tsdb;
  std::optional<GraphiteOutConfig> graphite;
  bool table = true;  // also insert into the store's `metrics` table
  int min_step = 30;  // Open-Falcon's minStep
  SpoolSettings spool;
};

// Reads the `outlet.metrics` mapping; problems are recorded with their key paths.
MetricRouterConfig parse_metric_router_config(config::ConfigReader& r);

}  // namespace sluice::sinks
