// MetricRouter: the outlet's target for metric batches — each record goes, in bus order, to the spool
// queue of every destination that owns its series (Open-Falcon graph and judge rings, OpenTSDB,
// Graphite hashing) and to the store's `metrics` table; a batch is acknowledged on the bus once all
// of them hold it durably (delivered, or spooled to disk).
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/metrics.hpp"
#include "pipeline/batch_sink.hpp"
#include "sinks/falcon_ring.hpp"
#include "sinks/graphite_ring.hpp"
#include "sinks/metric_router_config.hpp"
#include "sinks/spool_queue.hpp"
#include "sinks/store.hpp"

namespace sluice::sinks {

class MetricRouter final : public pipeline::BatchTarget {
 public:
  // `store` (may be null) receives the `metrics` table rows through its own batch sink with `policy`.
  MetricRouter(MetricRouterConfig config, std::filesystem::path spool_dir, Store* store,
               pipeline::BatchSinkPolicy policy, MetricsRegistry& metrics);
  ~MetricRouter() override;

  // Creates the metrics table (throws StoreError) and starts every destination's queue, which first
  // sends what a previous run left in its spool.
  void start();
  void submit(InsertRequest request, std::function<void()> on_done) override;
  // Delivers what it can until the deadline, spools the rest, stops.
  void stop(std::chrono::steady_clock::time_point deadline);

  // Per destination: kind, node, address, queue length, spooled bytes, sent, failures, last error.
  nlohmann::json status() const;
  std::size_t destinations() const { return destinations_.size(); }

 private:
  struct Destination;
  std::size_t add_destination(const std::string& kind, const std::string& node, const std::string& address);

  MetricRouterConfig config_;
  std::filesystem::path spool_dir_;
  Store* store_;
  MetricsRegistry& metrics_;
  std::vector<std::unique_ptr<Destination>> destinations_;
  std::optional<FalconRing> graph_ring_, judge_ring_;
  std::map<std::string, std::vector<std::size_t>> graph_nodes_, judge_nodes_;  // node → destinations
  std::optional<std::size_t> tsdb_;
  std::optional<GraphiteRing> graphite_ring_;
  std::vector<std::size_t> graphite_destinations_;  // ring index → destination
  std::unique_ptr<pipeline::BatchSink> table_sink_;
  pipeline::BatchSinkPolicy policy_;
  Counter& routed_;
};

}  // namespace sluice::sinks
