// Open-Falcon receivers against real clients: a Go net/rpc/jsonrpc client, an HTTP client and plain
// TCP clients; what they send arrives on the bus as exact metric records, and bad input is counted.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <map>

#include "fixtures/go_programs.hpp"
#include "fixtures/process.hpp"
#include "bus/memory_bus.hpp"
#include "core/metrics.hpp"
#include "metric_receiver_support.hpp"
#include "sources/falcon_receivers.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using testing::BusMetric;
using testing::BusReader;
using testing::TcpClient;

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::map<std::string, BusMetric> by_key(const std::vector<BusMetric>& all) {
  std::map<std::string, BusMetric> m;
  for (const auto& b : all) m[b.key] = b;
  return m;
}

FalconTcpConfig tcp_config(std::chrono::milliseconds idle = 60s) {
  FalconTcpConfig c;
  c.listen = "127.0.0.1:0";
  c.max_message = 64 * 1024;
  c.idle_timeout = idle;
  c.topic = "sluice-metrics";
  return c;
}

// Open-Falcon's agent side (tests/fixtures/go/falcon_rpc_client.go), standard library only: the same
// structs and calls as its transfer client.
TEST(FalconRpc, GoJsonRpcClientGetsOpenFalconRepliesAndExactRecords) {
  MetricsRegistry metrics;
  bus::MemoryBus bus({4, 64 << 20}, metrics);
  FalconRpcReceiver rpc(tcp_config(), bus.producer(), metrics);
  rpc.start();
  BusReader reader(bus);

  const auto client = testing::go_program("falcon_rpc_client");
  const auto before = unix_now();
  const auto run = testing::run_command({client, "127.0.0.1:" + std::to_string(rpc.bound_port())}, 60s);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("update message=ok total=12 invalid=9\n"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("ping code=0\n"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("unknown error=rpc: can't find method Transfer.Nope\n"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("again total=1 invalid=0\n"), std::string::npos) << run.out;

  ASSERT_TRUE(testing::eventually([&] { return reader.size() >= 4; }, 10s));
  const auto all = reader.all();
  ASSERT_EQ(all.size(), 4u);
  for (const auto& t : reader.topics()) EXPECT_EQ(t, "sluice-metrics");
  const auto got = by_key(all);
  ASSERT_EQ(got.size(), 3u);
  const auto& a = got.at("host1/cpu.idle/a=1,b=2");
  ASSERT_TRUE(a.decoded);
  EXPECT_EQ(a.kind, SourceKind::falcon);
  EXPECT_EQ(a.source, "127.0.0.1");
  EXPECT_EQ(a.origin, MetricOrigin::falcon);
  EXPECT_EQ(a.endpoint, "host1");
  EXPECT_EQ(a.metric, "cpu.idle");
  EXPECT_EQ(a.tags, "a=1,b=2");
  EXPECT_EQ(a.value, 12.5);
  EXPECT_EQ(a.step, 60);
  EXPECT_EQ(a.timestamp, 1'700'000'000);
  EXPECT_EQ(a.counter_type, MetricCounterType::gauge);
  const auto& b = got.at("host2/net.if.in.bytes");
  EXPECT_EQ(b.value, 1000.0);
  EXPECT_EQ(b.step, 30);
  EXPECT_EQ(b.counter_type, MetricCounterType::counter);
  EXPECT_GE(b.timestamp, before);  // 0 → now
  EXPECT_LE(b.timestamp, unix_now());
  const auto& c = got.at("host3/disk.io/iface=eth0");
  EXPECT_EQ(c.value, 7.0);
  EXPECT_EQ(c.counter_type, MetricCounterType::derive);
  EXPECT_EQ(c.timestamp, 1'700'000'100);

  const Labels rl{{"receiver", "falcon_rpc"}};
  auto invalid = [&](const char* reason) {
    return metrics.counter_value("inlet_metrics_invalid_total", {{"receiver", "falcon_rpc"}, {"reason", reason}});
  };
  EXPECT_EQ(metrics.counter_value("inlet_metrics_received_total", rl), 13u);
  for (const char* r : {"nil_entry", "hostname_metric", "empty_metric", "empty_endpoint", "bad_counter_type",
                        "empty_value", "bad_step", "too_long", "bad_value"}) {
    EXPECT_EQ(invalid(r), 1u) << r;
  }
  EXPECT_EQ(metrics.counter_value("inlet_metrics_bad_requests_total", {{"receiver", "falcon_rpc"}, {"reason", "unknown_method"}}), 1u);
  EXPECT_EQ(metrics.counter_value("inlet_tcp_connections_closed_total", {{"receiver", "falcon_rpc"}, {"reason", "peer"}}), 1u);
}

TEST(FalconRpc, ObjectsSplitAcrossWritesWithoutNewlinesAndGarbageClosesOnlyThatConnection) {
  MetricsRegistry metrics;
  bus::MemoryBus bus({4, 64 << 20}, metrics);
  FalconRpcReceiver rpc(tcp_config(), bus.producer(), metrics);
  rpc.start();
  BusReader reader(bus);
  TcpClient good(rpc.bound_port());
  TcpClient bad(rpc.bound_port());
  ASSERT_TRUE(good.connected() && bad.connected());

  const std::string req =
      R"({"method":"Transfer.Update","params":[[{"endpoint":"e","metric":"m","value":1,"step":60,"counterType":"GAUGE","tags":"","timestamp":1700000000}]],"id":41})"
      R"({"method":"Transfer.Ping","params":[{}],"id":42})";
  const auto half = req.size() / 3;
  ASSERT_TRUE(good.send(req.substr(0, half)));
  ASSERT_TRUE(good.send(req.substr(half)));
  const auto replies = good.read_lines(2);
  const auto nl = replies.find('\n');
  ASSERT_NE(nl, std::string::npos) << replies;
  ASSERT_EQ(replies.back(), '\n') << replies;
  const auto first = nlohmann::json::parse(replies.substr(0, nl));
  EXPECT_EQ(first["id"], 41);
  EXPECT_TRUE(first["error"].is_null());
  EXPECT_EQ(first["result"]["Message"], "ok");
  EXPECT_EQ(first["result"]["Total"], 1);
  EXPECT_EQ(first["result"]["Invalid"], 0);
  EXPECT_TRUE(first["result"]["Latency"].is_number_integer());
  EXPECT_EQ(replies.substr(nl + 1), "{\"id\":42,\"result\":{\"code\":0},\"error\":null}\n");

  ASSERT_TRUE(bad.send("GET / HTTP/1.0\r\n\r\n"));
  EXPECT_TRUE(bad.closed_by_peer());
  // The other connection is unaffected.
  ASSERT_TRUE(good.send(R"({"method":"Transfer.Ping","params":[{}],"id":43})"));
  EXPECT_EQ(good.read_lines(1), "{\"id\":43,\"result\":{\"code\":0},\"error\":null}\n");
  EXPECT_EQ(metrics.counter_value("inlet_metrics_bad_requests_total", {{"receiver", "falcon_rpc"}, {"reason", "not_an_object"}}), 1u);
  EXPECT_EQ(metrics.counter_value("inlet_tcp_connections_closed_total", {{"receiver", "falcon_rpc"}, {"reason", "garbage"}}), 1u);
  ASSERT_TRUE(testing::eventually([&] { return reader.size() == 1; }, 10s));
  EXPECT_EQ(reader.all()[0].key, "e/m");
}

TEST(FalconRpc, EdgeRequestsGetGoStyleRepliesAndAFullBusIsAnErrorTheAgentRetries) {
  MetricsRegistry metrics;
  bus::MemoryBus bus({1, 4 * 1024}, metrics);  // room for a few dozen records, no consumer
  FalconRpcReceiver rpc(tcp_config(), bus.producer(), metrics);
  rpc.start();
  TcpClient client(rpc.bound_port());
  ASSERT_TRUE(client.connected());
  // A string id is echoed as sent; params [null] is an empty batch (Go decodes it to a nil slice).
  ASSERT_TRUE(client.send(R"({"method":"Transfer.Update","params":[null],"id":"abc"})"));
  auto reply = nlohmann::json::parse(client.read_lines(1));
  EXPECT_EQ(reply["id"], "abc");
  EXPECT_EQ(reply["result"]["Total"], 0);
  // Params that are not [[values]] and an unknown service get an error; the connection stays.
  ASSERT_TRUE(client.send(R"({"method":"Transfer.Update","params":[{"a":1}],"id":2})"
                          R"({"method":"Graph.Send","params":[[]],"id":3})"
                          R"({"method":"Transfer.Update","params":[[1],[2]],"id":4})"));
  const auto lines = client.read_lines(3);
  std::vector<nlohmann::json> replies;
  for (std::size_t at = 0; at < lines.size();) {
    const auto nl = lines.find('\n', at);
    replies.push_back(nlohmann::json::parse(lines.substr(at, nl - at)));
    at = nl + 1;
  }
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[0]["id"], 2);
  EXPECT_TRUE(replies[0]["result"].is_null());
  EXPECT_NE(replies[0]["error"].get<std::string>().find("params"), std::string::npos);
  EXPECT_EQ(replies[1]["error"], "rpc: can't find service Graph.Send");
  EXPECT_EQ(replies[2]["id"], 4);
  EXPECT_TRUE(replies[2]["error"].is_string());
  // 200 values do not fit: the call fails, so Open-Falcon's agent sends the batch again.
  std::string values = "[";
  for (int i = 0; i < 200; ++i) {
    values += (i ? "," : "") + std::string(R"({"endpoint":"host","metric":"m)") + std::to_string(i) +
              R"(","value":1,"step":60,"counterType":"GAUGE","tags":"","timestamp":1700000000})";
  }
  values += "]";
  ASSERT_TRUE(client.send(R"({"method":"Transfer.Update","params":[)" + values + R"(],"id":5})"));
  reply = nlohmann::json::parse(client.read_lines(1));
  EXPECT_EQ(reply["id"], 5);
  EXPECT_TRUE(reply["result"].is_null());
  const auto drops =
      metrics.counter_value("inlet_metrics_produce_drops_total", {{"receiver", "falcon_rpc"}, {"reason", "full"}});
  EXPECT_GT(drops, 100u);
  EXPECT_NE(reply["error"].get<std::string>().find(std::to_string(drops) + " of 200"), std::string::npos) << reply;
  // An object without a method cannot be answered, and mismatched brackets are not JSON: each closes
  // its connection, as Go's server does when it cannot decode a request.
  ASSERT_TRUE(client.send(R"({"params":[],"id":6})"));
  EXPECT_TRUE(client.closed_by_peer());
  TcpClient mismatched(rpc.bound_port());
  ASSERT_TRUE(mismatched.send(R"({"method":"Transfer.Update","params":[[{"endpoint":"e",]],"id":7})"));
  EXPECT_TRUE(mismatched.closed_by_peer());
  EXPECT_EQ(metrics.counter_value("inlet_metrics_bad_requests_total", {{"receiver", "falcon_rpc"}, {"reason", "not_an_object"}}), 1u);
  EXPECT_EQ(metrics.counter_value("inlet_metrics_bad_requests_total", {{"receiver", "falcon_rpc"}, {"reason", "bad_params"}}), 2u);
  EXPECT_EQ(metrics.counter_value("inlet_metrics_bad_requests_total", {{"receiver", "falcon_rpc"}, {"reason", "malformed_object"}}), 1u);
}

TEST(FalconRpc, OversizedObjectClosesTheConnectionAndIdleConnectionsTimeOut) {
  MetricsRegistry metrics;
  bus::MemoryBus bus({4, 64 << 20}, metrics);
  auto config = tcp_config(300ms);
  config.max_message = 1024;
  FalconRpcReceiver rpc(config, bus.producer(), metrics);
  rpc.start();
  TcpClient big(rpc.bound_port());
  ASSERT_TRUE(big.send(R"({"method":"Transfer.Update","params":[[)" + std::string(4000, ' ')));
  EXPECT_TRUE(big.closed_by_peer());
  EXPECT_EQ(metrics.counter_value("inlet_tcp_connections_closed_total", {{"receiver", "falcon_rpc"}, {"reason", "oversize"}}), 1u);

  TcpClient idle(rpc.bound_port());
  ASSERT_TRUE(idle.connected());
  EXPECT_TRUE(idle.closed_by_peer(5s));
  EXPECT_EQ(metrics.counter_value("inlet_tcp_connections_closed_total", {{"receiver", "falcon_rpc"}, {"reason", "idle"}}), 1u);
}

TEST(FalconSocket, UpdateLinesBecomeRecordsMalformedAreCountedAndQuitCloses) {
  MetricsRegistry metrics;
  bus::MemoryBus bus({4, 64 << 20}, metrics);
  auto config = tcp_config();
  config.max_message = 256;
  FalconSocketReceiver socket(config, bus.producer(), metrics);
  socket.start();
  BusReader reader(bus);
  TcpClient client(socket.bound_port());
  ASSERT_TRUE(client.send("update host1 cpu.idle 1700000000 42.5\n"
                          "update host1 net.in 1700000060 7 GAUGE heartbeat:120:U:U:30\r\n"
                          "\n"
                          "hello there\n"
                          "update host1 cpu.idle 1700000000 notanumber\n"
                          "update host1 kernel.hostname 1700000000 1\n"
                          "update " + std::string(300, 'x') + " m 1 1\n"
                          "update host2 disk.free 1700000000 1 DERIVE 10\n"
                          "quit\n"
                          "update host3 never.read 1700000000 1\n"));
  EXPECT_TRUE(client.closed_by_peer());
  EXPECT_EQ(client.read_lines(1, 100ms), "");  // the line socket never replies
  ASSERT_TRUE(testing::eventually([&] { return reader.size() >= 3; }, 10s));
  const auto got = by_key(reader.all());
  ASSERT_EQ(got.size(), 3u);
  const auto& a = got.at("host1/cpu.idle");
  EXPECT_EQ(a.value, 42.5);
  EXPECT_EQ(a.counter_type, MetricCounterType::counter);  // the line protocol's default
  EXPECT_EQ(a.step, 60);
  EXPECT_EQ(a.timestamp, 1'700'000'000);
  EXPECT_EQ(got.at("host1/net.in").step, 30);
  EXPECT_EQ(got.at("host1/net.in").counter_type, MetricCounterType::gauge);
  EXPECT_EQ(got.at("host2/disk.free").counter_type, MetricCounterType::derive);
  EXPECT_EQ(got.at("host2/disk.free").step, 10);
  auto invalid = [&](const char* reason) {
    return metrics.counter_value("inlet_metrics_invalid_total", {{"receiver", "falcon_socket"}, {"reason", reason}});
  };
  EXPECT_EQ(invalid("unknown_command"), 1u);
  EXPECT_EQ(invalid("bad_value"), 1u);
  EXPECT_EQ(invalid("hostname_metric"), 1u);
  EXPECT_EQ(invalid("line_too_long"), 1u);
  EXPECT_EQ(metrics.counter_value("inlet_metrics_received_total", {{"receiver", "falcon_socket"}}), 7u);
  EXPECT_EQ(metrics.counter_value("inlet_tcp_connections_closed_total", {{"receiver", "falcon_socket"}, {"reason", "quit"}}), 1u);
}

std::string push_body(int valid, int invalid) {
  nlohmann::json body = nlohmann::json::array();
  for (int i = 0; i < valid; ++i) {
    body.push_back({{"endpoint", "web" + std::to_string(i % 10)}, {"metric", "http.qps"}, {"value", i}, {"step", 60},
                    {"counterType", "GAUGE"}, {"tags", "idx=" + std::to_string(i)}, {"timestamp", 1'700'000'000}});
  }
  for (int i = 0; i < invalid; ++i) {
    body.push_back({{"endpoint", "web"}, {"metric", "http.qps"}, {"value", 1}, {"step", 60}, {"counterType", "NOPE"}});
  }
  return body.dump();
}

TEST(FalconHttp, PushCountsValidAndInvalidExactlyKeepsAliveAndRefusesOversizedBodies) {
  MetricsRegistry metrics;
  bus::MemoryBus bus({4, 64 << 20}, metrics);
  FalconHttpConfig config;
  config.listen = "127.0.0.1:0";
  config.max_body = 64 * 1024;
  config.threads = 2;
  config.topic = "sluice-metrics";
  FalconHttpReceiver http(config, bus.producer(), metrics);
  http.start();
  BusReader reader(bus);

  httplib::Client client("127.0.0.1", http.bound_port());
  client.set_keep_alive(true);
  for (int round = 0; round < 3; ++round) {
    const auto res = client.Post("/api/push", push_body(100, 7), "application/json");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    ASSERT_EQ(res->status, 200) << res->body;
    const auto j = nlohmann::json::parse(res->body);
    EXPECT_EQ(j["msg"], "success");
    EXPECT_EQ(j["data"]["Message"], "ok");
    EXPECT_EQ(j["data"]["Total"], 107);
    EXPECT_EQ(j["data"]["Invalid"], 7);
  }
  ASSERT_TRUE(testing::eventually([&] { return reader.size() >= 300; }, 10s));
  const auto all = reader.all();
  EXPECT_EQ(all.size(), 300u);
  const auto got = by_key(all);
  EXPECT_EQ(got.size(), 100u);
  EXPECT_EQ(got.at("web3/http.qps/idx=13").value, 13.0);
  EXPECT_EQ(got.at("web3/http.qps/idx=13").endpoint, "web3");

  const auto big = client.Post("/api/push", push_body(1000, 0), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  const auto bad = client.Post("/api/push", "[{\"endpoint\":", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  const Labels rl{{"receiver", "falcon_http"}};
  EXPECT_EQ(metrics.counter_value("inlet_metrics_received_total", rl), 321u);
  EXPECT_EQ(metrics.counter_value("inlet_metrics_invalid_total", {{"receiver", "falcon_http"}, {"reason", "bad_counter_type"}}), 21u);
  EXPECT_EQ(metrics.counter_value("inlet_metrics_bad_requests_total", {{"receiver", "falcon_http"}, {"reason", "body_too_large"}}), 1u);
  EXPECT_EQ(metrics.counter_value("inlet_metrics_bad_requests_total", {{"receiver", "falcon_http"}, {"reason", "malformed_body"}}), 1u);
  // The same keep-alive connection still works after the refusals.
  const auto after = client.Post("/api/push", push_body(1, 0), "application/json");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
}

TEST(FalconHttp, AFullBusIsReportedSoTheSenderRetries) {
  MetricsRegistry metrics;
  bus::MemoryBus bus({1, 16 * 1024}, metrics);  // a bus with room for ~150 records and no consumer
  FalconHttpConfig config;
  config.listen = "127.0.0.1:0";
  config.threads = 1;
  config.topic = "sluice-metrics";
  FalconHttpReceiver http(config, bus.producer(), metrics);
  http.start();
  httplib::Client client("127.0.0.1", http.bound_port());
  const auto res = client.Post("/api/push", push_body(1000, 0), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->get_header_value("Retry-After"), "1");
  const auto drops = metrics.counter_value("inlet_metrics_produce_drops_total", {{"receiver", "falcon_http"}, {"reason", "full"}});
  EXPECT_GT(drops, 0u);
  EXPECT_LT(drops, 1000u);
  EXPECT_NE(res->body.find(std::to_string(drops) + " of 1000"), std::string::npos) << res->body;
}

}  // namespace
}  // namespace sluice
