#include "sinks/metric_router_config.hpp"

namespace sluice::sinks {
namespace {

std::vector<std::string> split_addresses(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string a = text.substr(start, comma - start);
    while (!a.empty() && a.front() == ' ') a.erase(a.begin());
    while (!a.empty() && a.back() == ' ') a.pop_back();
    if (!a.empty()) out.push_back(a);
    start = comma + 1;
  }
  return out;
}

bool looks_like_address(const std::string& a) {
  const auto colon = a.rfind(':');
  return colon != std::string::npos && colon > 0 && colon + 1 < a.size() &&
         a.find_first_not_of("0123456789", colon + 1) == std::string::npos;
}

std::optional<FalconClusterConfig> parse_cluster(config::ConfigReader& parent, const std::string& key) {
  if (!parent.has(key)) return std::nullopt;
  auto r = parent.child(key);
  FalconClusterConfig c;
  for (const auto& [node, addresses] : r.string_map_or_json("cluster")) {
    auto list = split_addresses(addresses);
    if (list.empty()) r.error("cluster." + node, "expected one or more host:port addresses separated by commas");
    for (const auto& a : list) {
      if (!looks_like_address(a)) r.error("cluster." + node, "\"" + a + "\" is not host:port");
    }
    c.nodes[node] = std::move(list);
  }
  c.replicas = static_cast<int>(r.integer("replicas", c.replicas, 1, 100'000));
  c.batch = static_cast<std::size_t>(r.integer("batch", static_cast<std::int64_t>(c.batch), 1, 100'000));
  c.max_conns = static_cast<int>(r.integer("max_conns", c.max_conns, 1, 1024));
  c.max_idle = static_cast<int>(r.integer("max_idle", c.max_idle, 0, 1024));
  c.connect_timeout = r.duration("connect_timeout", c.connect_timeout);
  c.call_timeout = r.duration("call_timeout", c.call_timeout);
  r.finish();
  // An empty cluster turns the backend off, so that a shipped config can leave it to the environment.
  if (c.nodes.empty()) return std::nullopt;
  return c;
}

}  // namespace

MetricRouterConfig parse_metric_router_config(config::ConfigReader& r) {
  MetricRouterConfig c;
  c.graph = parse_cluster(r, "graph");
  c.judge = parse_cluster(r, "judge");
  if (r.has("tsdb")) {
    auto t = r.child("tsdb");
    TsdbConfig tsdb;
    tsdb.address = t.string("address", "");
    tsdb.protocol = t.one_of("protocol", tsdb.protocol, {"http", "telnet"});
    tsdb.batch = static_cast<std::size_t>(t.integer("batch", static_cast<std::int64_t>(tsdb.batch), 1, 100'000));
    tsdb.connect_timeout = t.duration("connect_timeout", tsdb.connect_timeout);
    tsdb.call_timeout = t.duration("call_timeout", tsdb.call_timeout);
    if (!tsdb.address.empty() && !looks_like_address(tsdb.address)) t.error("address", "expected host:port");
    t.finish();
    if (!tsdb.address.empty()) c.tsdb = tsdb;
  }
  if (r.has("graphite")) {
    auto g = r.child("graphite");
    GraphiteOutConfig out;
    // A list, or one string of comma-separated destinations (from the environment).
    std::vector<std::string> list = g.string_list("destinations");
    for (const auto& d : list) {
      if (!looks_like_address(d.substr(0, d.find('=')))) g.error("destinations", "\"" + d + "\" is not host:port[=instance]");
    }
    out.destinations = std::move(list);
    out.hash = g.one_of("hash", out.hash, {"carbon_ch", "fnv1a_ch"});
    out.replication = static_cast<int>(g.integer("replication", out.replication, 1, 16));
    out.batch = static_cast<std::size_t>(g.integer("batch", static_cast<std::int64_t>(out.batch), 1, 100'000));
    out.connect_timeout = g.duration("connect_timeout", out.connect_timeout);
    out.write_timeout = g.duration("write_timeout", out.write_timeout);
    g.finish();
    if (!out.destinations.empty()) c.graphite = std::move(out);
  }
  c.table = r.boolean("table", c.table);
  c.min_step = static_cast<int>(r.integer("min_step", c.min_step, 1, 86'400));
  if (r.has("spool")) {
    auto s = r.child("spool");
    c.spool.max_memory = s.size("max_memory", c.spool.max_memory);
    c.spool.max_disk = s.size("max_disk", c.spool.max_disk);
    c.spool.spill_after = s.duration("spill_after", c.spool.spill_after);
    c.spool.retry_initial = s.duration("retry_initial", c.spool.retry_initial);
    c.spool.retry_max = s.duration("retry_max", c.spool.retry_max);
    s.finish();
  }
  r.finish();
  return c;
}

}  // namespace sluice::sinks
