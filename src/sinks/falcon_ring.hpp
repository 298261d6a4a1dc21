// FalconRing: Open-Falcon's consistent-hash ring, byte-compatible with its transfer's node choice.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::sinks {

// Open-Falcon places each series (its primary key) on the node whose ring point follows the key's
// CRC-32: keeping the same placement lets a deployment swap its transfer without moving RRD files.
class FalconRing {
 public:
  // `nodes` are the cluster's node names (the keys of its cluster map); order does not matter.
  FalconRing(std::vector<std::string> nodes, int replicas = 500);

  // The node that owns `key` (a series primary key, see falcon_series_key).
  const std::string& node_for(std::string_view key) const;
  std::size_t points() const { return points_.size(); }

 private:
  std::vector<std::string> nodes_;
  std::vector<std::uint32_t> points_;   // sorted
  std::vector<std::uint32_t> owners_;   // index into nodes_, parallel to points_
};

// CRC-32 (IEEE 802.3, the polynomial Go's hash/crc32.ChecksumIEEE uses).
std::uint32_t crc32_ieee(std::string_view data);

// The series primary key: "endpoint/metric" without tags, else "endpoint/metric/" followed by the
// k=v pairs sorted by key and joined by ','. `tags` is the map parsed from "k1=v1,k2=v2".
std::string falcon_series_key(std::string_view endpoint, std::string_view metric,
                              const std::map<std::string, std::string>& tags);

}  // namespace sluice::sinks
