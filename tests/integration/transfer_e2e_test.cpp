// sluice as Open-Falcon's transfer, end to end with the shipped config/transfer.yaml: values pushed
// through all three Open-Falcon receivers (HTTP, JSON-RPC, line socket) reach exactly the graph and
// judge nodes Open-Falcon's ring picks — every address of a graph node — converted as the spec says,
// Graphite lines reach carbon-cache's whisper files, and every value is in the metrics table.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <set>

#include "core/metric_record.hpp"
#include "fixtures/go_programs.hpp"
#include "fixtures/process.hpp"
#include "fixtures/sluice_instance.hpp"
#include "sinks/falcon_ring.hpp"
#include "sinks/jsonrpc_client.hpp"
#include "sinks/line_client.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using testing::SluiceInstance;

// One value of the known set: its series, the receiver it goes through, and what the peers must see.
struct Sent {
  std::string endpoint, metric, tags_json, tags_text, counter_type;
  double value;
  long timestamp;
  int step;
  std::string via;  // http | rpc | socket
};

std::string json_value(const Sent& s) {
  return "{\"endpoint\":\"" + s.endpoint + "\",\"metric\":\"" + s.metric + "\",\"value\":" + std::to_string(s.value) +
         ",\"step\":" + std::to_string(s.step) + ",\"counterType\":\"" + s.counter_type + "\",\"tags\":\"" +
         s.tags_text + "\",\"timestamp\":" + std::to_string(s.timestamp) + "}";
}

std::string series_key(const Sent& s) {
  MetricView m;
  m.endpoint = s.endpoint;
  m.metric = s.metric;
  m.tags = s.tags_text;
  return m.series_key();
}

TEST(TransferE2E, EveryValueReachesItsNodesConvertedAndGraphiteReachesCarbon) {
  testing::TempDir dir;
  testing::FalconPeer g0a(dir / "g0a"), g0b(dir / "g0b"), g1(dir / "g1"), j0(dir / "j0"), j1(dir / "j1");
  // carbon-cache for the Graphite path.
  const int carbon_port = testing::free_port();
  std::filesystem::create_directories(dir / "carbon/conf");
  testing::write_file(dir / "carbon/conf/carbon.conf",
                      "[cache]\nSTORAGE_DIR = " + dir / "carbon/data" + "\nLOCAL_DATA_DIR = " + dir / "carbon/whisper" +
                          "\nCONF_DIR = " + dir / "carbon/conf" + "\nLOG_DIR = " + dir / "carbon/log" +
                          "\nPID_DIR = " + dir / "carbon" + "\nWHITELISTS_DIR = " + dir / "carbon/lists" +
                          "\nENABLE_LOGROTATION = False\nLINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = " +
                          std::to_string(carbon_port) + "\nENABLE_UDP_LISTENER = False\nPICKLE_RECEIVER_INTERFACE = "
                          "127.0.0.1\nPICKLE_RECEIVER_PORT = " + std::to_string(testing::free_port()) +
                          "\nCACHE_QUERY_INTERFACE = 127.0.0.1\nCACHE_QUERY_PORT = " + std::to_string(testing::free_port()) +
                          "\nMAX_CACHE_SIZE = inf\nMAX_CREATES_PER_MINUTE = inf\n");
  testing::write_file(dir / "carbon/conf/storage-schemas.conf", "[default]\npattern = .*\nretentions = 60s:1d\n");
  testing::Process carbon({"carbon-cache", "--config=" + dir / "carbon/conf/carbon.conf", "--nodaemon", "start"},
                          dir / "carbon");
  ASSERT_TRUE(carbon.wait_for_stdout_line("CarbonReceiverFactory starting on " + std::to_string(carbon_port), 60s))
      << carbon.stdout_text() << carbon.stderr_text();

  const int http_port = testing::free_port(), rpc_port = testing::free_port(), socket_port = testing::free_port(),
            graphite_port = testing::free_port();
  const std::map<std::string, std::string> env{
      {"SLUICE_DATA_DIR", dir / "data"},
      {"SLUICE_FALCON_HTTP_LISTEN", "127.0.0.1:" + std::to_string(http_port)},
      {"SLUICE_FALCON_RPC_LISTEN", "127.0.0.1:" + std::to_string(rpc_port)},
      {"SLUICE_FALCON_SOCKET_LISTEN", "127.0.0.1:" + std::to_string(socket_port)},
      {"SLUICE_GRAPHITE_LISTEN", "127.0.0.1:" + std::to_string(graphite_port)},
      {"SLUICE_GRAPH_CLUSTER",
       "{\"graph-00\":\"" + g0a.address() + "," + g0b.address() + "\",\"graph-01\":\"" + g1.address() + "\"}"},
      {"SLUICE_JUDGE_CLUSTER", "{\"judge-00\":\"" + j0.address() + "\",\"judge-01\":\"" + j1.address() + "\"}"},
      {"SLUICE_GRAPHITE_CLUSTER", "127.0.0.1:" + std::to_string(carbon_port)},
  };
  SluiceInstance sluice("run", testing::read_file(std::string(SLUICE_SOURCE_DIR) + "/config/transfer.yaml"), dir, env);
  sluice.start();

  // The known set: 60 series, 3 values each, a third through each receiver.
  std::vector<Sent> sent;
  const char* types[] = {"GAUGE", "COUNTER", "DERIVE"};
  for (int s = 0; s < 60; ++s) {
    for (int v = 0; v < 3; ++v) {
      Sent x;
      x.endpoint = "host-" + std::to_string(s % 13);
      x.metric = "app.metric" + std::to_string(s);
      x.tags_text = s % 2 ? "" : "idc=dc" + std::to_string(s % 3) + ",svc=api";
      x.counter_type = types[s % 3];
      x.value = s * 100 + v + 0.5;
      x.step = s % 4 == 0 ? 10 : 60;
      x.timestamp = 1'700'000'000 + 60 * v + 7;
      x.via = v == 0 ? "http" : v == 1 ? "rpc" : "socket";
      sent.push_back(x);
    }
  }
  // HTTP: one POST with its values.
  std::string body = "[";
  for (const auto& x : sent) {
    if (x.via != "http") continue;
    if (body.size() > 1) body += ',';
    body += json_value(x);
  }
  body += ']';
  httplib::Client http("127.0.0.1", http_port);
  auto res = http.Post("/api/push", body, "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_NE(res->body.find("\"Invalid\":0"), std::string::npos) << res->body;
  // JSON-RPC: Transfer.Update with the same wire format Open-Falcon's agents use.
  std::string params = "[[";
  for (const auto& x : sent) {
    if (x.via != "rpc") continue;
    if (params.size() > 2) params += ',';
    params += json_value(x);
  }
  params += "]]";
  sinks::JsonRpcClient rpc({"127.0.0.1:" + std::to_string(rpc_port)});
  std::string reply;
  ASSERT_EQ(rpc.call("Transfer.Update", params, &reply), "");
  EXPECT_NE(reply.find("\"Total\":60"), std::string::npos) << reply;
  EXPECT_NE(reply.find("\"Invalid\":0"), std::string::npos) << reply;
  // Line socket: update <endpoint> <metric> <timestamp> <value> <counterType> <step>; tags do not travel here.
  std::string lines;
  for (auto& x : sent) {
    if (x.via != "socket") continue;
    x.tags_text.clear();
    lines += "update " + x.endpoint + " " + x.metric + " " + std::to_string(x.timestamp) + " " + std::to_string(x.value) +
             " " + x.counter_type + " " + std::to_string(x.step) + "\n";
  }
  lines += "quit\n";
  sinks::LineClient socket({"127.0.0.1:" + std::to_string(socket_port)});
  ASSERT_EQ(socket.send(lines), "");
  // Graphite.
  const long now = static_cast<long>(::time(nullptr));
  const long minute = now - now % 60 - 120;
  sinks::LineClient graphite({"127.0.0.1:" + std::to_string(graphite_port)});
  ASSERT_EQ(graphite.send("relay.test.a 41.5 " + std::to_string(minute) + "\nrelay.test.b 7 " + std::to_string(minute) +
                          "\nrelay.test.a 42.5 " + std::to_string(minute + 60) + "\n"),
            "");

  // Where each value must land.
  const sinks::FalconRing graph_ring({"graph-00", "graph-01"}), judge_ring({"judge-00", "judge-01"});
  std::map<std::string, std::size_t> expect{{"g0", 0}, {"g1", 0}, {"j0", 0}, {"j1", 0}};
  for (const auto& x : sent) {
    ++expect[graph_ring.node_for(series_key(x)) == "graph-00" ? "g0" : "g1"];
    ++expect[judge_ring.node_for(series_key(x)) == "judge-00" ? "j0" : "j1"];
  }
  ASSERT_TRUE(testing::eventually(
      [&] {
        return g0a.items().size() == expect["g0"] && g0b.items().size() == expect["g0"] &&
               g1.items().size() == expect["g1"] && j0.items().size() == expect["j0"] && j1.items().size() == expect["j1"];
      },
      60s))
      << g0a.items().size() << "/" << expect["g0"] << " " << g1.items().size() << "/" << expect["g1"] << " "
      << j0.items().size() << "/" << expect["j0"] << "\n"
      << sluice.log();
  // Converted fields, value by value.
  std::map<std::pair<std::string, double>, nlohmann::json> graph_items, judge_items;
  for (auto* peer : {&g0a, &g1}) {
    for (const auto& it : peer->items()) graph_items[{it["item"]["metric"], it["item"]["value"]}] = it["item"];
  }
  for (auto* peer : {&j0, &j1}) {
    for (const auto& it : peer->items()) judge_items[{it["item"]["metric"], it["item"]["value"]}] = it["item"];
  }
  ASSERT_EQ(graph_items.size(), sent.size());
  ASSERT_EQ(judge_items.size(), sent.size());
  for (const auto& x : sent) {
    SCOPED_TRACE(x.metric + " via " + x.via);
    const int step = std::max(x.step, 30);
    const auto& g = graph_items.at({x.metric, x.value});
    EXPECT_EQ(g["endpoint"], x.endpoint);
    EXPECT_EQ(g["step"], step);
    EXPECT_EQ(g["heartbeat"], 2 * step);
    EXPECT_EQ(g["timestamp"], x.timestamp - x.timestamp % step);
    EXPECT_EQ(g["dstype"], x.counter_type == "GAUGE" ? "GAUGE" : "DERIVE");
    EXPECT_EQ(g["min"], x.counter_type == "GAUGE" ? "U" : "0");
    const auto& j = judge_items.at({x.metric, x.value});
    EXPECT_EQ(j["judgeType"], x.counter_type);
    EXPECT_EQ(j["timestamp"], x.timestamp - x.timestamp % step);
    if (!x.tags_text.empty()) {
      EXPECT_EQ(g["tags"]["svc"], "api");
    }
  }
  // Graphite: carbon's whisper files hold the values.
  ASSERT_TRUE(testing::eventually(
      [&] { return std::filesystem::exists(dir / "carbon/whisper/relay/test/a.wsp") &&
                   std::filesystem::exists(dir / "carbon/whisper/relay/test/b.wsp"); },
      60s));
  std::string fetched;
  ASSERT_TRUE(testing::eventually(
      [&] {
        fetched = testing::run_command({"whisper-fetch", "--from=" + std::to_string(minute - 60),
                                        dir / "carbon/whisper/relay/test/a.wsp"})
                      .out;
        return fetched.find(std::to_string(minute) + "\t41.5") != std::string::npos &&
               fetched.find(std::to_string(minute + 60) + "\t42.5") != std::string::npos;
      },
      60s))
      << fetched;
  // And the store's metrics table has every value once.
  ASSERT_TRUE(testing::eventually(
      [&] { return sluice.query_u64("SELECT count() FROM sluice.metrics") == sent.size() + 3; }, 30s));
  EXPECT_EQ(sluice.query_u64("SELECT count() FROM sluice.metrics WHERE Origin = 'graphite'"), 3u);
  EXPECT_EQ(sluice.stop(), 0);
}

TEST(TransferE2E, AGraphNodeDownAcrossARestartGetsItsSpoolInOrderWhenItReturns) {
  testing::TempDir dir;
  testing::FalconPeer up(dir / "up", "count");
  const int down_port = testing::free_port(), http_port = testing::free_port();
  const std::map<std::string, std::string> env{
      {"SLUICE_DATA_DIR", dir / "data"},
      {"SLUICE_FALCON_HTTP_LISTEN", "127.0.0.1:" + std::to_string(http_port)},
      {"SLUICE_FALCON_RPC_LISTEN", "127.0.0.1:" + std::to_string(testing::free_port())},
      {"SLUICE_FALCON_SOCKET_LISTEN", "127.0.0.1:" + std::to_string(testing::free_port())},
      {"SLUICE_GRAPHITE_LISTEN", "127.0.0.1:" + std::to_string(testing::free_port())},
      {"SLUICE_GRAPH_CLUSTER",
       "{\"graph-00\":\"" + up.address() + "\",\"graph-01\":\"127.0.0.1:" + std::to_string(down_port) + "\"}"},
  };
  const auto yaml = testing::read_file(std::string(SLUICE_SOURCE_DIR) + "/config/transfer.yaml");
  const sinks::FalconRing ring({"graph-00", "graph-01"});
  long for_up = 0, for_down = 0;
  std::string body = "[";
  for (int s = 0; s < 500; ++s) {
    for (int v = 0; v < 10; ++v) {
      Sent x{"host-" + std::to_string(s), "m", "", "", "GAUGE", double(v), 1'700'000'000 + 60 * v, 60, "http"};
      (ring.node_for(series_key(x)) == "graph-00" ? for_up : for_down) += 1;
      if (body.size() > 1) body += ',';
      body += json_value(x);
    }
  }
  body += ']';
  {
    SluiceInstance sluice("run", yaml, dir, env);
    sluice.start();
    httplib::Client http("127.0.0.1", http_port);
    auto res = http.Post("/api/push", body, "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
    ASSERT_TRUE(testing::eventually([&] { return up.counts().graph == for_up; }, 30s)) << up.counts().graph;
    // graph-01's share waits on disk, acknowledged on the bus, when sluice stops.
    ASSERT_TRUE(testing::eventually(
        [&] { return sluice.metric("sluice_spool_disk_bytes", "graph-01") > 0; }, 30s));
    EXPECT_EQ(sluice.metric("sluice_spool_queued_items", "graph-01"), for_down);
    EXPECT_EQ(sluice.stop(), 0);
  }
  EXPECT_EQ(up.counts().graph, for_up);
  // Restarted with graph-01 back: the spool is delivered, in order, nothing twice.
  testing::FalconPeer back(dir / "back", "count", down_port);
  SluiceInstance again("run", yaml, dir, env, "again");
  again.start();
  ASSERT_TRUE(testing::eventually([&] { return back.counts().graph == for_down; }, 30s)) << back.counts().graph;
  EXPECT_EQ(back.counts().out_of_order, 0);
  EXPECT_EQ(again.metric("sluice_spool_queued_items", "graph-01"), 0);
  EXPECT_EQ(again.stop(), 0);
  EXPECT_EQ(back.counts().graph, for_down);
  EXPECT_EQ(up.counts().graph, for_up);
}

}  // namespace
}  // namespace sluice
