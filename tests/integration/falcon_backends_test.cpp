// Open-Falcon backends for real: items converted as the spec says and sent with Graph.Send /
// Judge.Send to a graph/judge server built on Go's net/rpc/jsonrpc; the pool survives a server that
// dies, times out a server that never answers, and a spool queue delivers in order once it returns.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fixtures/go_programs.hpp"
#include "fixtures/process.hpp"
#include "sinks/jsonrpc_client.hpp"
#include "sinks/metric_items.hpp"
#include "sinks/spool_queue.hpp"

namespace sluice::sinks {
namespace {

using namespace std::chrono_literals;
using CounterType = MetricCounterType;

MetricPoint point(std::string_view endpoint, std::string_view metric, std::string_view tags, double value,
                  std::int64_t timestamp, std::int32_t step, CounterType type) {
  MetricPoint p;
  p.endpoint = endpoint, p.metric = metric, p.tags = tags, p.value = value, p.timestamp = timestamp, p.step = step;
  p.counter_type = type;
  return p;
}

std::string params_of(const std::vector<MetricPoint>& points, bool graph, const ItemOptions& options = {}) {
  std::string out = "[[";
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (i) out += ',';
    if (graph) append_graph_item(out, points[i], options);
    else append_judge_item(out, points[i], options);
  }
  out += "]]";
  return out;
}

TEST(FalconBackends, GraphItemsArriveConvertedAsTheSpecSays) {
  testing::TempDir dir;
  testing::FalconPeer peer(dir.path());
  JsonRpcClient client({peer.address()});
  const std::vector<MetricPoint> points{
      point("host-1", "cpu.idle", "", 12.5, 1'700'000'017, 60, CounterType::gauge),
      point("host-2", "net.if.in.bytes", "iface=eth0,role=edge", 123456789, 1'700'000'017, 10, CounterType::counter),
      point("host \"3\"", "disk.io", "dev=sda", 0.25, 1'700'000'045, 30, CounterType::derive),
  };
  std::string result;
  ASSERT_EQ(client.call("Graph.Send", params_of(points, true), &result), "");
  EXPECT_EQ(result, R"({"code":0})");
  std::vector<nlohmann::json> items;
  ASSERT_TRUE(testing::eventually([&] { return (items = peer.items()).size() == 3; }, 10s));
  const auto& a = items[0]["item"];
  EXPECT_EQ(items[0]["service"], "graph");
  EXPECT_EQ(a["endpoint"], "host-1");
  EXPECT_EQ(a["metric"], "cpu.idle");
  EXPECT_EQ(a["value"], 12.5);
  EXPECT_EQ(a["timestamp"], 1'699'999'980);  // aligned down to the 60 s step
  EXPECT_EQ(a["dstype"], "GAUGE");
  EXPECT_EQ(a["step"], 60);
  EXPECT_EQ(a["heartbeat"], 120);
  EXPECT_EQ(a["min"], "U");
  EXPECT_EQ(a["max"], "U");
  EXPECT_TRUE(a["tags"].is_null() || a["tags"].empty());
  const auto& b = items[1]["item"];
  EXPECT_EQ(b["value"], 123456789.0);
  EXPECT_EQ(b["step"], 30);  // raised to minStep
  EXPECT_EQ(b["heartbeat"], 60);
  EXPECT_EQ(b["timestamp"], 1'699'999'980 + 30);
  EXPECT_EQ(b["dstype"], "DERIVE");
  EXPECT_EQ(b["min"], "0");
  EXPECT_EQ(b["tags"], (nlohmann::json{{"iface", "eth0"}, {"role", "edge"}}));
  const auto& c = items[2]["item"];
  EXPECT_EQ(c["endpoint"], "host \"3\"");
  EXPECT_EQ(c["dstype"], "DERIVE");
  EXPECT_EQ(c["timestamp"], 1'700'000'040);
}

TEST(FalconBackends, JudgeItemsArriveConvertedAsTheSpecSays) {
  testing::TempDir dir;
  testing::FalconPeer peer(dir.path());
  JsonRpcClient client({peer.address()});
  const std::vector<MetricPoint> points{
      point("host-1", "cpu.idle", "a=1", 99.5, 1'700'000'017, 10, CounterType::gauge),
      point("host-1", "net.if.in.bytes", "", 42, 1'700'000'017, 60, CounterType::counter),
  };
  ASSERT_EQ(client.call("Judge.Send", params_of(points, false)), "");
  std::vector<nlohmann::json> items;
  ASSERT_TRUE(testing::eventually([&] { return (items = peer.items()).size() == 2; }, 10s));
  const auto& a = items[0]["item"];
  EXPECT_EQ(items[0]["service"], "judge");
  EXPECT_EQ(a["value"], 99.5);
  EXPECT_EQ(a["valueRaw"], "99.5");
  EXPECT_EQ(a["timestamp"], 1'699'999'980 + 30);  // aligned to max(step, minStep) = 30
  EXPECT_EQ(a["judgeType"], "GAUGE");
  EXPECT_EQ(a["tags"], (nlohmann::json{{"a", "1"}}));
  const auto& b = items[1]["item"];
  EXPECT_EQ(b["timestamp"], 1'699'999'980);
  EXPECT_EQ(b["judgeType"], "COUNTER");
}

TEST(FalconBackends, TheServersErrorIsReported) {
  testing::TempDir dir;
  testing::FalconPeer peer(dir.path());
  JsonRpcClient client({peer.address()});
  const auto error = client.call("Graph.Nope", "[[]]");
  EXPECT_NE(error.find("Graph.Nope failed"), std::string::npos) << error;
  // The connection stays usable after an error reply.
  EXPECT_EQ(client.call("Graph.Send", "[[]]"), "");
}

TEST(FalconBackends, APoolSurvivesAServerThatDiesAndComesBack) {
  testing::TempDir dir;
  const int port = testing::free_port();
  auto peer = std::make_unique<testing::FalconPeer>(dir.path(), "items", port);
  JsonRpcClient client({peer->address(), 500ms, 2000ms});
  ASSERT_EQ(client.call("Graph.Send", "[[]]"), "");
  peer->kill9();
  peer.reset();
  const auto error = client.call("Graph.Send", "[[]]");
  EXPECT_NE(error, "");
  peer = std::make_unique<testing::FalconPeer>(dir.path(), "items", port);
  // The broken pooled connection was dropped: the next call reconnects.
  std::string last;
  EXPECT_TRUE(testing::eventually([&] { return (last = client.call("Graph.Send", "[[]]")).empty(); }, 5s)) << last;
}

TEST(FalconBackends, AServerThatNeverAnswersTimesOut) {
  // A listening socket nobody accepts from: connects succeed, no reply ever comes.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  JsonRpcClient client({"127.0.0.1:" + std::to_string(ntohs(a.sin_port)), 500ms, 300ms});
  const auto start = std::chrono::steady_clock::now();
  const auto error = client.call("Graph.Send", "[[]]");
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_NE(error.find("no reply within 300 ms"), std::string::npos) << error;
  EXPECT_LT(took, 3s);
  ::close(fd);
}

TEST(FalconBackends, ASpooledQueueDeliversInOrderOnceTheGraphReturns) {
  testing::TempDir dir;
  const int port = testing::free_port();
  MetricsRegistry metrics;
  JsonRpcClient client({"127.0.0.1:" + std::to_string(port), 300ms, 2000ms});
  SpoolConfig cfg;
  cfg.dir = dir / "spool";
  cfg.spill_after = 50ms;
  cfg.retry_initial = 20ms;
  cfg.retry_max = 100ms;
  SpoolQueue queue("graph-00/127.0.0.1", cfg,
                   [&](std::span<const std::string_view> items) {
                     std::string params = "[[";
                     for (std::size_t i = 0; i < items.size(); ++i) {
                       if (i) params += ',';
                       params += items[i];
                     }
                     params += "]]";
                     return client.call("Graph.Send", params);
                   },
                   metrics);
  queue.start();
  // The graph is down: 1000 values of one series are queued (and spooled).
  std::atomic<int> durable{0};
  for (int b = 0; b < 10; ++b) {
    ItemBatch batch;
    for (int i = 0; i < 100; ++i) {
      std::string item;
      append_graph_item(item,
                        point("host-1", "seq", "", double(b * 100 + i), 1'700'000'000 + 60 * (b * 100 + i), 60,
                              CounterType::gauge),
                        {});
      batch.add(item);
    }
    queue.push(std::move(batch), [&] { ++durable; });
  }
  ASSERT_TRUE(testing::eventually([&] { return durable.load() == 10; }, 10s));
  EXPECT_GT(queue.disk_bytes(), 0u);
  testing::FalconPeer peer(dir.path(), "items", port);
  std::vector<nlohmann::json> items;
  ASSERT_TRUE(testing::eventually([&] { return (items = peer.items()).size() >= 1000; }, 20s));
  queue.stop(std::chrono::steady_clock::now() + 1s);
  ASSERT_EQ(items.size(), 1000u);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(items[i]["item"]["value"], double(i)) << "at " << i;
}

}  // namespace
}  // namespace sluice::sinks
