#include "sinks/falcon_ring.hpp"

#include <zlib.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace sluice::sinks {

std::uint32_t crc32_ieee(std::string_view data) {
  return static_cast<std::uint32_t>(
      ::crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

FalconRing::FalconRing(std::vector<std::string> nodes, int replicas) : nodes_(std::move(nodes)) {
  if (nodes_.empty()) throw std::invalid_argument("a hash ring needs at least one node");
  if (replicas < 1) throw std::invalid_argument("a hash ring needs at least one replica per node");
  std::sort(nodes_.begin(), nodes_.end());
  nodes_.erase(std::unique(nodes_.begin(), nodes_.end()), nodes_.end());
  // Nodes are added in sorted order and a point that collides with an earlier one takes the later
  // node: a map keyed by point reproduces that.
  std::map<std::uint32_t, std::uint32_t> ring;
  std::string key;
  for (std::uint32_t n = 0; n < nodes_.size(); ++n) {
    for (int i = 0; i < replicas; ++i) {
      key = std::to_string(i);
      key += nodes_[n];
      ring[crc32_ieee(key)] = n;
    }
  }
  points_.reserve(ring.size());
  owners_.reserve(ring.size());
  for (const auto& [point, owner] : ring) {
    points_.push_back(point);
    owners_.push_back(owner);
  }
}

const std::string& FalconRing::node_for(std::string_view key) const {
  const auto h = crc32_ieee(key);
  auto it = std::upper_bound(points_.begin(), points_.end(), h);  // first point strictly greater
  if (it == points_.end()) it = points_.begin();
  return nodes_[owners_[static_cast<std::size_t>(it - points_.begin())]];
}

std::string falcon_series_key(std::string_view endpoint, std::string_view metric,
                              const std::map<std::string, std::string>& tags) {
  std::string pk;
  pk.reserve(endpoint.size() + metric.size() + 16 * tags.size() + 2);
  pk.append(endpoint).append("/").append(metric);
  if (tags.empty()) return pk;
  pk += '/';
  bool first = true;
  for (const auto& [k, v] : tags) {  // std::map iterates in key order
    if (!first) pk += ',';
    first = false;
    pk.append(k).append("=").append(v);
  }
  return pk;
}

}  // namespace sluice::sinks
