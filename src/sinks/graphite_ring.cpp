#include "sinks/graphite_ring.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <stdexcept>

namespace sluice::sinks {
namespace {

// The first two bytes of the key's MD5, big-endian: graphite's ring position.
std::uint16_t md5_position(std::string_view key) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(key.data(), key.size(), digest, &len, EVP_md5(), nullptr);
  return static_cast<std::uint16_t>((digest[0] << 8) | digest[1]);
}

// 32-bit FNV-1a folded to 16 bits. Bytes enter as signed chars widened to 32 bits, as in the relay
// (x86 char is signed), so names with bytes >= 0x80 land where the relay puts them.
std::uint16_t fnv1a_position(std::string_view key) {
  std::uint32_t h = 2166136261u;
  for (char c : key) h = (h ^ static_cast<std::uint32_t>(static_cast<std::int32_t>(static_cast<signed char>(c)))) * 16777619u;
  return static_cast<std::uint16_t>((h >> 16) ^ (h & 0xFFFFu));
}

}  // namespace

GraphiteRing::GraphiteRing(GraphiteHash hash, std::vector<GraphiteDestination> destinations, int replicas)
    : hash_(hash), destinations_(std::move(destinations)) {
  if (destinations_.empty()) throw std::invalid_argument("a Graphite cluster needs at least one destination");
  for (std::uint32_t d = 0; d < destinations_.size(); ++d) {
    const auto& dest = destinations_[d];
    for (int i = 0; i < replicas; ++i) {
      // carbon_ch hashes Python's repr of the (host, instance) tuple, as graphite does.
      const auto key = hash_ == GraphiteHash::carbon
                           ? fmt::format("('{}', {}):{}", dest.host,
                                         dest.instance.empty() ? "None" : "'" + dest.instance + "'", i)
                           : fmt::format("{}-{}:{}", i, dest.host, dest.port);
      points_.push_back({position(key), d});
    }
  }
  // Equal positions are ordered by host, then instance (none last) or port, then by configuration
  // order, which is how the relay merges each destination's points into its ring.
  std::stable_sort(points_.begin(), points_.end(), [&](const Point& a, const Point& b) {
    if (a.pos != b.pos) return a.pos < b.pos;
    const auto& da = destinations_[a.destination];
    const auto& db = destinations_[b.destination];
    if (const int c = da.host.compare(db.host); c != 0) return c < 0;
    if (hash_ == GraphiteHash::carbon) {
      if (da.instance.empty() != db.instance.empty()) return db.instance.empty();
      return da.instance < db.instance;
    }
    return da.port < db.port;
  });
  {
    // carbon-c-relay hands every point of a position several destinations share to the first of them
    // in that order (observed in its ring dump: "25064@127.0.0.2" twice where .2 and .3 collide).
    for (std::size_t i = 1; i < points_.size(); ++i) {
      if (points_[i].pos == points_[i - 1].pos) points_[i].destination = points_[i - 1].destination;
    }
  }
}

std::uint16_t GraphiteRing::position(std::string_view key) const {
  return hash_ == GraphiteHash::carbon ? md5_position(key) : fnv1a_position(key);
}

void GraphiteRing::destinations_for(std::string_view metric, int replication, std::vector<std::size_t>& out) const {
  const auto start_size = out.size();
  const auto want = std::min<std::size_t>(static_cast<std::size_t>(std::max(replication, 1)), destinations_.size());
  const auto pos = position(metric);
  // bisect_left: the first point at or after the metric's position, wrapping around.
  auto it = std::lower_bound(points_.begin(), points_.end(), pos, [](const Point& p, std::uint16_t v) { return p.pos < v; });
  for (std::size_t seen = 0; out.size() - start_size < want && seen < points_.size(); ++seen, ++it) {
    if (it == points_.end()) it = points_.begin();
    const std::size_t d = it->destination;
    if (std::find(out.begin() + static_cast<std::ptrdiff_t>(start_size), out.end(), d) == out.end()) out.push_back(d);
  }
}

}  // namespace sluice::sinks
