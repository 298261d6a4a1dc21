// GraphiteRing: carbon-c-relay's carbon_ch and fnv1a_ch placement, so metrics keep their whisper files.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::sinks {

enum class GraphiteHash {
  carbon,  // carbon_ch: graphite's own ring (MD5), keyed by host and instance
  fnv1a,   // fnv1a_ch: carbon-c-relay's ring (FNV-1a), keyed by host and port
};

struct GraphiteDestination {
  std::string host;
  std::uint16_t port = 2003;
  std::string instance;  // carbon_ch only ("host:port=instance"); empty = none
};

class GraphiteRing {
 public:
  // Destinations in configuration order (the order breaks ties between equal ring points).
  GraphiteRing(GraphiteHash hash, std::vector<GraphiteDestination> destinations, int replicas = 100);

  // Appends to `out` the indexes of up to `replication` distinct destinations for `metric` (the
  // metric name only, without value and timestamp), in ring order.
  void destinations_for(std::string_view metric, int replication, std::vector<std::size_t>& out) const;
  const std::vector<GraphiteDestination>& destinations() const { return destinations_; }

  // The 16-bit ring position of a key.
  std::uint16_t position(std::string_view key) const;

 private:
  struct Point {
    std::uint16_t pos;
    std::uint32_t destination;
  };
  GraphiteHash hash_;
  std::vector<GraphiteDestination> destinations_;
  std::vector<Point> points_;  // sorted
};

}  // namespace sluice::sinks
