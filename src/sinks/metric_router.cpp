#include "sinks/metric_router.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cctype>

#include "core/metric_record.hpp"
#include "pipeline/metric_batch_builder.hpp"
#include "sinks/jsonrpc_client.hpp"
#include "sinks/line_client.hpp"
#include "sinks/metric_items.hpp"
#include "sinks/metrics_table.hpp"

namespace sluice::sinks {
namespace {

// A spool directory name from a destination name: letters, digits, '-', '_' and '.'.
std::string directory_name(const std::string& name) {
  std::string out;
  for (const char c : name) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  return out;
}

// Counts down the destinations of one batch; the last one acknowledges it.
struct Completion {
  std::atomic<int> left{1};
  std::function<void()> on_done;
  void done() {
    if (left.fetch_sub(1) == 1 && on_done) on_done();
  }
};

std::optional<MetricView> view_of(std::string_view record) {
  return decode_metric(std::as_bytes(std::span(record.data(), record.size())));
}

// Appends every queued record as an item, `separator` between items. Records were checked when they
// were queued; one damaged in the spool is skipped.
template <typename Append>
void append_items(std::string& out, std::span<const std::string_view> items, std::string_view separator,
                  Append&& append) {
  bool first = true;
  for (const auto item : items) {
    const auto m = view_of(item);
    if (!m) continue;
    if (!first) out += separator;
    first = false;
    append(out, *m);
  }
}

}  // namespace

struct MetricRouter::Destination {
  std::string kind, node, address, name;
  std::unique_ptr<JsonRpcClient> rpc;
  std::unique_ptr<LineClient> lines;
  std::unique_ptr<httplib::Client> http;
  std::unique_ptr<SpoolQueue> queue;
  std::string scratch;  // the sender thread's
};

MetricRouter::MetricRouter(MetricRouterConfig config, std::filesystem::path spool_dir, Store* store,
                           pipeline::BatchSinkPolicy policy, MetricsRegistry& metrics)
    : config_(std::move(config)),
      spool_dir_(std::move(spool_dir)),
      store_(store),
      metrics_(metrics),
      policy_(std::move(policy)),
      routed_(metrics.counter("metric_routed_items_total", "Metric items queued for a destination")) {
  const auto add_cluster = [&](const std::optional<FalconClusterConfig>& cluster, const char* kind,
                               std::optional<FalconRing>& ring, std::map<std::string, std::vector<std::size_t>>& nodes) {
    if (!cluster) return;
    std::vector<std::string> names;
    for (const auto& [node, addresses] : cluster->nodes) {
      names.push_back(node);
      for (const auto& a : addresses) nodes[node].push_back(add_destination(kind, node, a));
    }
    ring.emplace(names, cluster->replicas);
  };
  add_cluster(config_.graph, "graph", graph_ring_, graph_nodes_);
  add_cluster(config_.judge, "judge", judge_ring_, judge_nodes_);
  if (config_.tsdb) tsdb_ = add_destination("tsdb", "tsdb", config_.tsdb->address);
  if (config_.graphite) {
    std::vector<GraphiteDestination> ring;
    for (const auto& d : config_.graphite->destinations) {
      GraphiteDestination g;
      const auto eq = d.find('=');
      const std::string hostport = d.substr(0, eq);
      if (eq != std::string::npos) g.instance = d.substr(eq + 1);
      const auto colon = hostport.rfind(':');
      g.host = hostport.substr(0, colon);
      g.port = static_cast<std::uint16_t>(std::stoi(hostport.substr(colon + 1)));
      ring.push_back(g);
      graphite_destinations_.push_back(add_destination("graphite", d, hostport));
    }
    graphite_ring_.emplace(config_.graphite->hash == "fnv1a_ch" ? GraphiteHash::fnv1a : GraphiteHash::carbon,
                           std::move(ring));
  }
}

MetricRouter::~MetricRouter() { stop(std::chrono::steady_clock::now()); }

std::size_t MetricRouter::add_destination(const std::string& kind, const std::string& node, const std::string& address) {
  auto d = std::make_unique<Destination>();
  d->kind = kind;
  d->node = node;
  d->address = address;
  d->name = kind == "graphite" || kind == "tsdb" ? kind + "/" + address : kind + "/" + node + "/" + address;
  Destination* self = d.get();
  SendFn send;
  const ItemOptions options{config_.min_step};
  if (kind == "graph" || kind == "judge") {
    const auto& c = kind == "graph" ? *config_.graph : *config_.judge;
    d->rpc = std::make_unique<JsonRpcClient>(
        JsonRpcClientConfig{address, c.connect_timeout, c.call_timeout, c.max_conns, c.max_idle});
    const bool graph = kind == "graph";
    send = [self, graph, options](std::span<const std::string_view> items) -> std::string {
      auto& out = self->scratch;
      out.clear();
      out += "[[";
      append_items(out, items, ",", [&](std::string& o, const MetricView& m) {
        if (graph) append_graph_item(o, m, options);
        else append_judge_item(o, m, options);
      });
      out += "]]";
      return self->rpc->call(graph ? "Graph.Send" : "Judge.Send", out);
    };
  } else if (kind == "tsdb" && config_.tsdb->protocol == "http") {
    d->http = std::make_unique<httplib::Client>("http://" + address);
    const auto& t = *config_.tsdb;
    d->http->set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(t.connect_timeout));
    d->http->set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(t.call_timeout));
    d->http->set_keep_alive(true);
    send = [self](std::span<const std::string_view> items) -> std::string {
      auto& out = self->scratch;
      out.clear();
      out += '[';
      append_items(out, items, ",", [](std::string& o, const MetricView& m) { append_tsdb_json(o, m); });
      out += ']';
      auto res = self->http->Post("/api/put", out.data(), out.size(), "application/json");
      if (!res) return fmt::format("{}: {}", self->address, httplib::to_string(res.error()));
      if (res->status >= 500) return fmt::format("{}: HTTP {}: {}", self->address, res->status, res->body.substr(0, 200));
      if (res->status >= 400) {
        // OpenTSDB refuses points it will never take (unknown metric with auto-create off, bad
        // value): retrying cannot help, so they are logged and counted, and the queue moves on.
        spdlog::error("tsdb {}: refused {} points with HTTP {}: {}", self->address, items.size(), res->status,
                      res->body.substr(0, 300));
      }
      return {};
    };
  } else {
    const auto connect = kind == "tsdb" ? config_.tsdb->connect_timeout : config_.graphite->connect_timeout;
    const auto write = kind == "tsdb" ? config_.tsdb->call_timeout : config_.graphite->write_timeout;
    d->lines = std::make_unique<LineClient>(LineClientConfig{address, connect, write});
    const bool tsdb = kind == "tsdb";
    send = [self, tsdb](std::span<const std::string_view> items) -> std::string {
      auto& out = self->scratch;
      out.clear();
      append_items(out, items, "", [tsdb](std::string& o, const MetricView& m) {
        if (tsdb) append_tsdb_line(o, m);
        else append_graphite_line(o, m);
      });
      return self->lines->send(out);
    };
  }
  SpoolConfig sc;
  sc.dir = spool_dir_ / directory_name(d->name);
  sc.max_memory_bytes = config_.spool.max_memory;
  sc.max_disk_bytes = config_.spool.max_disk;
  sc.spill_after = config_.spool.spill_after;
  sc.retry_initial = config_.spool.retry_initial;
  sc.retry_max = config_.spool.retry_max;
  sc.batch = kind == "graph"   ? config_.graph->batch
             : kind == "judge" ? config_.judge->batch
             : kind == "tsdb"  ? config_.tsdb->batch
                               : config_.graphite->batch;
  d->queue = std::make_unique<SpoolQueue>(d->name, sc, std::move(send), metrics_);
  destinations_.push_back(std::move(d));
  return destinations_.size() - 1;
}

void MetricRouter::start() {
  if (store_ && config_.table) {
    ensure_metrics_table(*store_);
    table_sink_ = std::make_unique<pipeline::BatchSink>("metrics", *store_, policy_, metrics_);
  }
  for (auto& d : destinations_) d->queue->start();
  spdlog::info("metrics: routing to {} destination(s){}", destinations_.size(),
               table_sink_ ? " and the store's metrics table" : "");
}

void MetricRouter::submit(InsertRequest request, std::function<void()> on_done) {
  auto completion = std::make_shared<Completion>();
  completion->on_done = std::move(on_done);
  std::vector<ItemBatch> batches(destinations_.size());
  std::optional<MetricsBlock> block;
  if (table_sink_) block.emplace(store_->dialect());
  std::string key;
  std::vector<std::size_t> targets;
  std::uint64_t routed = 0;
  pipeline::for_each_metric_record(request.body, [&](std::string_view record) {
    const auto m = view_of(record);
    if (!m) return;
    if (block) block->append(*m);
    if (m->origin == MetricOrigin::graphite) {
      if (!graphite_ring_) return;
      targets.clear();
      graphite_ring_->destinations_for(m->metric, config_.graphite->replication, targets);
      for (const auto t : targets) batches[graphite_destinations_[t]].add(record), ++routed;
      return;
    }
    key.clear();
    m->append_series_key(key);
    if (graph_ring_) {
      for (const auto d : graph_nodes_.at(graph_ring_->node_for(key))) batches[d].add(record), ++routed;
    }
    if (judge_ring_) {
      for (const auto d : judge_nodes_.at(judge_ring_->node_for(key))) batches[d].add(record), ++routed;
    }
    if (tsdb_) batches[*tsdb_].add(record), ++routed;
  });
  routed_.inc(routed);
  for (std::size_t i = 0; i < batches.size(); ++i) {
    if (batches[i].empty()) continue;
    completion->left.fetch_add(1);
    destinations_[i]->queue->push(std::move(batches[i]), [completion] { completion->done(); });
  }
  if (block && block->rows() > 0) {
    completion->left.fetch_add(1);
    InsertRequest table{"metrics", "Native", block->take(), request.rows, request.dedup_token};
    table_sink_->submit(std::move(table), [completion] { completion->done(); });
  }
  completion->done();
}

void MetricRouter::stop(std::chrono::steady_clock::time_point deadline) {
  if (table_sink_) table_sink_->stop(deadline);
  for (auto& d : destinations_) d->queue->stop(deadline);
}

nlohmann::json MetricRouter::status() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& d : destinations_) {
    auto j = d->queue->status();
    j["kind"] = d->kind;
    j["node"] = d->node;
    j["address"] = d->address;
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace sluice::sinks
