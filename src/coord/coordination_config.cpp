#include "coord/coordination_config.hpp"

#include <unistd.h>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>

namespace sluice::coord {

std::string local_hostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

std::string rfc3339_utc(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03d}Z", fmt::gmtime(std::chrono::system_clock::to_time_t(t)), int(ms));
}

std::chrono::milliseconds jittered(std::chrono::milliseconds backoff, std::mt19937_64& rng) {
  const auto half = backoff.count() / 2;
  std::uniform_int_distribution<std::int64_t> dist(0, std::max<std::int64_t>(half, 0));
  return std::chrono::milliseconds(backoff.count() - half + dist(rng));
}

std::optional<CoordinationConfig> read_coordination_config(config::ConfigReader& root_reader) {
  if (!root_reader.has("coordination")) return std::nullopt;
  auto r = root_reader.child("coordination");
  // An empty endpoint string (`endpoints: ${SLUICE_ETCD_ENDPOINTS:-}` with the variable unset) turns
  // coordination off, so one file serves both standalone and clustered deployments.
  if (r.is_scalar("endpoints") && r.string_list("endpoints").empty()) {
    for (const auto& key : r.keys()) {
      if (r.is_scalar(key)) static_cast<void>(r.string(key, ""));
      else r.child(key);
    }
    r.finish();
    return std::nullopt;
  }
  CoordinationConfig c;
  c.etcd = read_etcd_client_config(r);
  c.prefix = r.string("prefix", c.prefix);
  while (c.prefix.size() > 1 && c.prefix.back() == '/') c.prefix.pop_back();
  if (c.prefix.empty() || c.prefix.front() != '/' || c.prefix == "/") {
    r.error("prefix", fmt::format("expected a key prefix starting with '/', such as /sluice, got \"{}\"", c.prefix));
  }
  c.instance_id = r.string("instance_id", "");
  if (c.instance_id.find('/') != std::string::npos) {
    r.error("instance_id", fmt::format("expected an id without '/', got \"{}\"", c.instance_id));
  }
  c.lease_ttl = r.duration("lease_ttl", c.lease_ttl);
  // etcd grants whole seconds; below 2 s a lease can expire between two keep-alives of a busy host.
  if (c.lease_ttl < std::chrono::seconds(2) || c.lease_ttl > std::chrono::hours(1)) {
    r.error("lease_ttl", fmt::format("expected a duration between 2s and 1h, got {} ms", c.lease_ttl.count()));
  }
  c.register_instance = r.boolean("register_instance", c.register_instance);
  c.watch_jobs = r.boolean("watch_jobs", c.watch_jobs);
  c.backoff_initial = r.duration("backoff_initial", c.backoff_initial);
  c.backoff_max = r.duration("backoff_max", c.backoff_max);
  if (c.backoff_initial.count() <= 0) r.error("backoff_initial", "expected a duration above zero");
  if (c.backoff_max < c.backoff_initial) {
    r.error("backoff_max", fmt::format("expected at least backoff_initial ({} ms), got {} ms",
                                       c.backoff_initial.count(), c.backoff_max.count()));
  }
  r.finish();
  return c;
}

}  // namespace sluice::coord
