// The outlet's metric routing with real peers: Open-Falcon graph/judge servers built on Go's
// net/rpc/jsonrpc and graphite-carbon's carbon-cache. Every series lands on the node the ring picks
// (every address of a graph node gets a copy), a node that is down is spooled for and then served in
// order while the others go on, and carbon's whisper files hold the Graphite values.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <map>
#include <set>
#include <thread>

#include "bus/memory_bus.hpp"
#include "core/metric_record.hpp"
#include "fixtures/go_programs.hpp"
#include "fixtures/process.hpp"
#include "pipeline/consumer_job.hpp"
#include "pipeline/metric_batch_builder.hpp"
#include "sinks/falcon_ring.hpp"
#include "sinks/graphite_ring.hpp"
#include "sinks/metric_router.hpp"
#include "sources/metric_producer.hpp"

namespace sluice::sinks {
namespace {

using namespace std::chrono_literals;

// The outlet's metrics path on the memory bus: consumer job → router.
struct Pipeline {
  MetricsRegistry metrics;
  bus::MemoryBus bus{{4, 256 << 20}, metrics};
  pipeline::MetricDecoding decoding{metrics};
  std::unique_ptr<MetricRouter> router;
  std::unique_ptr<bus::Consumer> consumer;
  std::unique_ptr<pipeline::ConsumerJob> job;
  std::thread thread;
  MetricProducer producer{bus.producer(), "sluice-metrics", SourceKind::falcon};

  Pipeline(MetricRouterConfig config, const std::string& spool) {
    config.table = false;
    router = std::make_unique<MetricRouter>(config, spool, nullptr, pipeline::BatchSinkPolicy{}, metrics);
    router->start();
    consumer = bus.make_consumer(0, 1, {"sluice-metrics"});
    job = std::make_unique<pipeline::ConsumerJob>(
        pipeline::ConsumerJobConfig{"metrics", 500, 1 << 20, 100ms, 100ms, 10s}, *consumer,
        [this](const bus::PartitionRef&) { return std::make_unique<pipeline::MetricBatchBuilder>(decoding); }, *router,
        metrics);
    thread = std::thread([this] { consumer->run(*job); });
  }
  ~Pipeline() {
    consumer->stop();
    thread.join();
    router->stop(std::chrono::steady_clock::now() + 2s);
  }
  void send(const MetricView& m) { ASSERT_EQ(producer.produce(m, {}, unix_now_ns()), MetricProduceResult::ok); }
};

MetricView falcon_value(const std::string& endpoint, const std::string& metric, const std::string& tags, double value,
                        std::int64_t ts) {
  MetricView m;
  m.origin = MetricOrigin::falcon;
  m.counter_type = MetricCounterType::gauge;
  m.step = 60;
  m.timestamp = ts;
  m.value = value;
  m.endpoint = endpoint;
  m.metric = metric;
  m.tags = tags;
  return m;
}

std::string key_of(const nlohmann::json& item) {
  std::string tags;
  if (item["tags"].is_object()) {
    for (const auto& [k, v] : item["tags"].items()) tags += (tags.empty() ? "" : ",") + k + "=" + v.get<std::string>();
  }
  return item["endpoint"].get<std::string>() + "/" + item["metric"].get<std::string>() + (tags.empty() ? "" : "/" + tags);
}

TEST(MetricRouter, EverySeriesLandsOnItsRingNodeAndEveryAddressOfAGraphNodeGetsACopy) {
  testing::TempDir dir;
  testing::FalconPeer g0a(dir / "g0a"), g0b(dir / "g0b"), g1(dir / "g1"), j0(dir / "j0"), j1(dir / "j1");
  MetricRouterConfig config;
  config.graph = FalconClusterConfig{};
  config.graph->nodes = {{"graph-00", {g0a.address(), g0b.address()}}, {"graph-01", {g1.address()}}};
  config.judge = FalconClusterConfig{};
  config.judge->nodes = {{"judge-00", {j0.address()}}, {"judge-01", {j1.address()}}};
  Pipeline p(config, dir / "spool");
  // 300 series, 5 values each.
  std::vector<std::string> endpoints, tags;
  for (int s = 0; s < 300; ++s) {
    endpoints.push_back("host-" + std::to_string(s % 37));
    tags.push_back(s % 3 == 0 ? "" : "idc=dc" + std::to_string(s % 5) + ",svc=s" + std::to_string(s));
  }
  for (int v = 0; v < 5; ++v) {
    for (int s = 0; s < 300; ++s) {
      p.send(falcon_value(endpoints[s], "metric." + std::to_string(s % 11), tags[s], s * 10 + v,
                          1'700'000'000 + 60 * v));
    }
  }
  const FalconRing graph_ring({"graph-00", "graph-01"}), judge_ring({"judge-00", "judge-01"});
  std::map<std::string, long> expect;  // node → items
  for (int s = 0; s < 300; ++s) {
    const std::string metric = "metric." + std::to_string(s % 11);
    const MetricView m = falcon_value(endpoints[s], metric, tags[s], 0, 0);
    expect[graph_ring.node_for(m.series_key())] += 5;
    expect[judge_ring.node_for(m.series_key())] += 5;
  }
  ASSERT_TRUE(testing::eventually(
      [&] {
        return static_cast<long>(g0a.items().size()) == expect["graph-00"] &&
               static_cast<long>(g0b.items().size()) == expect["graph-00"] &&
               static_cast<long>(g1.items().size()) == expect["graph-01"] &&
               static_cast<long>(j0.items().size()) == expect["judge-00"] &&
               static_cast<long>(j1.items().size()) == expect["judge-01"];
      },
      20s))
      << g0a.items().size() << "/" << expect["graph-00"] << " " << g1.items().size() << "/" << expect["graph-01"];
  EXPECT_EQ(expect["graph-00"] + expect["graph-01"], 1500);
  // Each item is on the node its series belongs to, and both addresses of graph-00 got the same items.
  for (auto* peer : {&g0a, &g1, &j0, &j1}) {
    for (const auto& it : peer->items()) {
      const bool graph = it["service"] == "graph";
      const auto node = (graph ? graph_ring : judge_ring).node_for(key_of(it["item"]));
      const std::string expected_address = graph ? (node == "graph-00" ? g0a.address() : g1.address())
                                                 : (node == "judge-00" ? j0.address() : j1.address());
      ASSERT_EQ(peer->address(), expected_address) << key_of(it["item"]);
    }
  }
  EXPECT_EQ(g0a.items(), g0b.items());
}

TEST(MetricRouter, ANodeThatIsDownIsSpooledForWhileTheOthersGoOnThenServedInOrder) {
  testing::TempDir dir;
  testing::FalconPeer up(dir / "up", "count");
  const int down_port = testing::free_port();
  MetricRouterConfig config;
  config.graph = FalconClusterConfig{};
  config.graph->nodes = {{"graph-00", {up.address()}}, {"graph-01", {"127.0.0.1:" + std::to_string(down_port)}}};
  config.graph->connect_timeout = 200ms;
  config.spool.spill_after = 200ms;
  config.spool.retry_initial = 50ms;
  config.spool.retry_max = 200ms;
  Pipeline p(config, dir / "spool");
  const FalconRing ring({"graph-00", "graph-01"});
  long expect_up = 0, expect_down = 0;
  std::vector<std::string> endpoints;
  for (int s = 0; s < 1000; ++s) endpoints.push_back("host-" + std::to_string(s));
  for (int s = 0; s < 1000; ++s) {
    (ring.node_for(endpoints[s] + "/m") == "graph-00" ? expect_up : expect_down) += 20;
  }
  ASSERT_GT(expect_down, 0);
  // 20 000 values while graph-01 is down: graph-00 gets all of its own meanwhile.
  for (int v = 0; v < 20; ++v) {
    for (int s = 0; s < 1000; ++s) p.send(falcon_value(endpoints[s], "m", "", v, 1'700'000'000 + 60 * v));
  }
  ASSERT_TRUE(testing::eventually([&] { return up.counts().graph == expect_up; }, 30s)) << up.counts().graph;
  // graph-01's share is on disk and acknowledged on the bus.
  ASSERT_TRUE(testing::eventually([&] { return p.consumer->lag({"sluice-metrics", 0}) == 0; }, 10s));
  auto status = p.router->status();
  nlohmann::json down_status;
  for (const auto& d : status) {
    if (d["node"] == "graph-01") down_status = d;
  }
  EXPECT_EQ(down_status["queued_items"], expect_down);
  EXPECT_GT(down_status["spooled_bytes"].get<long>(), 0);
  EXPECT_NE(down_status["last_error"].get<std::string>().find("connect"), std::string::npos);
  // It comes back: everything it missed arrives, each series in order.
  testing::FalconPeer back(dir / "back", "count", down_port);
  ASSERT_TRUE(testing::eventually([&] { return back.counts().graph == expect_down; }, 30s)) << back.counts().graph;
  EXPECT_EQ(back.counts().out_of_order, 0);
  EXPECT_EQ(up.counts().out_of_order, 0);
  EXPECT_EQ(up.counts().graph, expect_up);
}

// graphite-carbon's carbon-cache on loopback, writing whisper files under `dir`.
class CarbonCache {
 public:
  explicit CarbonCache(const std::string& dir) : port_(testing::free_port()) {
    std::filesystem::create_directories(dir + "/conf");
    testing::write_file(dir + "/conf/carbon.conf",
                        "[cache]\nSTORAGE_DIR = " + dir + "/data\nLOCAL_DATA_DIR = " + dir + "/data/whisper\n" +
                            "WHITELISTS_DIR = " + dir + "/data/lists\nCONF_DIR = " + dir + "/conf\nLOG_DIR = " + dir +
                            "/data/log\nPID_DIR = " + dir + "/data\nENABLE_LOGROTATION = False\n" +
                            "LINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = " + std::to_string(port_) +
                            "\nENABLE_UDP_LISTENER = False\nPICKLE_RECEIVER_INTERFACE = 127.0.0.1\n" +
                            "PICKLE_RECEIVER_PORT = " + std::to_string(testing::free_port()) +
                            "\nCACHE_QUERY_INTERFACE = 127.0.0.1\nCACHE_QUERY_PORT = " +
                            std::to_string(testing::free_port()) +
                            "\nMAX_CACHE_SIZE = inf\nMAX_UPDATES_PER_SECOND = 100000\nMAX_CREATES_PER_MINUTE = inf\n" +
                            "CACHE_WRITE_STRATEGY = sorted\n");
    testing::write_file(dir + "/conf/storage-schemas.conf", "[default]\npattern = .*\nretentions = 10s:1d\n");
    process_ = std::make_unique<testing::Process>(
        std::vector<std::string>{"carbon-cache", "--config=" + dir + "/conf/carbon.conf", "--nodaemon", "start"}, dir);
    if (!process_->wait_for_stdout_line("CarbonReceiverFactory starting on " + std::to_string(port_), 60s) &&
        !process_->wait_for_stderr("CarbonReceiverFactory starting on " + std::to_string(port_), 1s)) {
      throw std::runtime_error("carbon-cache did not start: " + process_->stdout_text() + process_->stderr_text());
    }
    whisper_ = dir + "/data/whisper";
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // The non-empty points of a metric's whisper file: timestamp → value.
  std::map<long, double> points(const std::string& path, long from) const {
    std::string relative = path;
    std::replace(relative.begin(), relative.end(), '.', '/');
    const std::string file = whisper_ + "/" + relative + ".wsp";
    std::map<long, double> out;
    if (!std::filesystem::exists(file)) return out;
    const auto r = testing::run_command({"whisper-fetch", "--from=" + std::to_string(from), file}, 30s);
    std::istringstream in(r.out);
    std::string ts, value;
    while (in >> ts >> value) {
      if (value != "None") out[std::stol(ts)] = std::stod(value);
    }
    return out;
  }

 private:
  int port_;
  std::string whisper_;
  std::unique_ptr<testing::Process> process_;
};

TEST(MetricRouter, GraphiteValuesReachCarbonsWhisperFiles) {
  testing::TempDir dir;
  CarbonCache carbon(dir / "carbon");
  MetricRouterConfig config;
  config.graphite = GraphiteOutConfig{};
  config.graphite->destinations = {carbon.address()};
  Pipeline p(config, dir / "spool");
  MetricProducer graphite(p.bus.producer(), "sluice-metrics", SourceKind::graphite);
  const long now = static_cast<long>(::time(nullptr));
  const long base = now - now % 10 - 300;
  for (int i = 0; i < 30; ++i) {
    MetricView m;
    m.origin = MetricOrigin::graphite;
    m.metric = i % 2 ? "servers.web1.cpu" : "servers.web2.load";
    m.value = 100 + i;
    m.timestamp = base + 10 * (i / 2);
    ASSERT_EQ(graphite.produce(m, {}, unix_now_ns()), MetricProduceResult::ok);
  }
  std::map<long, double> web1, web2;
  ASSERT_TRUE(testing::eventually(
      [&] {
        web1 = carbon.points("servers.web1.cpu", base - 10);
        web2 = carbon.points("servers.web2.load", base - 10);
        return web1.size() == 15 && web2.size() == 15;
      },
      60s))
      << web1.size() << " " << web2.size();
  for (int k = 0; k < 15; ++k) {
    EXPECT_EQ(web1[base + 10 * k], 100 + 2 * k + 1);
    EXPECT_EQ(web2[base + 10 * k], 100 + 2 * k);
  }
}

}  // namespace
}  // namespace sluice::sinks
