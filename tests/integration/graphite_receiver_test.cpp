// The Graphite plaintext receiver against plain TCP clients (python3 and a socket): exact records on
// the bus, invalid lines counted by reason, oversize lines skipped, idle connections closed.
#include <gtest/gtest.h>

#include <chrono>
#include <map>

#include "fixtures/process.hpp"
#include "bus/memory_bus.hpp"
#include "core/metrics.hpp"
#include "metric_receiver_support.hpp"
#include "sources/graphite_receiver.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using testing::BusReader;
using testing::TcpClient;

GraphiteReceiverConfig config(std::chrono::milliseconds idle = 60s) {
  GraphiteReceiverConfig c;
  c.listen = "127.0.0.1:0";
  c.max_message = 128;
  c.idle_timeout = idle;
  c.workers = 2;
  c.topic = "sluice-metrics";
  return c;
}

std::uint64_t invalid(MetricsRegistry& m, const char* reason) {
  return m.counter_value("inlet_metrics_invalid_total", {{"receiver", "graphite"}, {"reason", reason}});
}

TEST(GraphiteReceiver, Python3ClientLinesArriveAsExactRecords) {
  MetricsRegistry metrics;
  bus::MemoryBus bus({4, 64 << 20}, metrics);
  GraphiteReceiver receiver(config(), bus.producer(), metrics);
  receiver.start();
  BusReader reader(bus);
  testing::TempDir dir("sluice-graphite");
  // 1000 lines in many small writes, then garbage, as a sender script would.
  testing::write_file(dir / "send.py", R"PY(
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for i in range(1000):
    s.sendall(("servers.web%02d.cpu %d.5 %d\n" % (i % 50, i, 1700000000 + i)).encode())
s.sendall(b"servers.bad nan 1700000000\nonly.path\nx.y 1 2 3\na.b 1 tomorrow\n\x00\x01\x02 junk\n")
s.sendall(b"now.metric 3 -1\n")
s.shutdown(socket.SHUT_WR)
s.recv(1)
s.close()
)PY");
  const auto before = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const auto run = testing::run_command({"python3", dir / "send.py", std::to_string(receiver.bound_port())}, 60s);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_TRUE(testing::eventually([&] { return reader.size() >= 1001; }, 10s));
  const auto all = reader.all();
  ASSERT_EQ(all.size(), 1001u);
  std::map<std::string, std::vector<testing::BusMetric>> series;
  for (const auto& b : all) series[b.key].push_back(b);
  ASSERT_EQ(series.size(), 51u);
  // Per series, order is kept: web07 got i = 7, 57, 107, ...
  const auto& web07 = series.at("servers.web07.cpu");
  ASSERT_EQ(web07.size(), 20u);
  for (std::size_t k = 0; k < web07.size(); ++k) {
    const int i = 7 + 50 * static_cast<int>(k);
    ASSERT_TRUE(web07[k].decoded);
    EXPECT_EQ(web07[k].kind, SourceKind::graphite);
    EXPECT_EQ(web07[k].origin, MetricOrigin::graphite);
    EXPECT_EQ(web07[k].metric, "servers.web07.cpu");
    EXPECT_EQ(web07[k].endpoint, "");
    EXPECT_EQ(web07[k].tags, "");
    EXPECT_EQ(web07[k].value, i + 0.5);
    EXPECT_EQ(web07[k].timestamp, 1'700'000'000 + i);
    EXPECT_EQ(web07[k].step, 0);
  }
  EXPECT_GE(series.at("now.metric")[0].timestamp, before);
  EXPECT_EQ(invalid(metrics, "nan_value"), 1u);
  EXPECT_EQ(invalid(metrics, "field_count"), 2u);
  EXPECT_EQ(invalid(metrics, "bad_timestamp"), 1u);
  EXPECT_EQ(invalid(metrics, "bad_value"), 1u);
  EXPECT_EQ(metrics.counter_value("inlet_metrics_received_total", {{"receiver", "graphite"}}), 1006u);
}

TEST(GraphiteReceiver, LongLinesAreSkippedGarbageNeverHurtsOtherConnectionsIdleOnesClose) {
  MetricsRegistry metrics;
  bus::MemoryBus bus({4, 64 << 20}, metrics);
  GraphiteReceiver receiver(config(400ms), bus.producer(), metrics);
  receiver.start();
  BusReader reader(bus);
  TcpClient a(receiver.bound_port());
  TcpClient b(receiver.bound_port());
  ASSERT_TRUE(a.connected() && b.connected());
  // A line beyond max_line (128) in several writes, then a good line on the same connection.
  ASSERT_TRUE(a.send("too.long " + std::string(100, '9')));
  ASSERT_TRUE(a.send(std::string(500, '9')));
  ASSERT_TRUE(a.send(" 1\nafter.long 2 1700000000\n"));
  std::string binary(4096, '\0');
  for (std::size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>(i * 31 + 7);
  ASSERT_TRUE(b.send(binary + "\nb.ok 5 1700000000\n"));
  ASSERT_TRUE(testing::eventually([&] { return reader.size() >= 2; }, 10s));
  std::map<std::string, double> values;
  for (const auto& m : reader.all()) values[m.key] = m.value;
  EXPECT_EQ(values.at("after.long"), 2.0);
  EXPECT_EQ(values.at("b.ok"), 5.0);
  EXPECT_GE(invalid(metrics, "line_too_long"), 2u);  // one on a, at least one for b's binary run
  // Both connections go idle and are closed by the server.
  EXPECT_TRUE(a.closed_by_peer(5s));
  EXPECT_TRUE(b.closed_by_peer(5s));
  EXPECT_EQ(metrics.counter_value("inlet_tcp_connections_closed_total", {{"receiver", "graphite"}, {"reason", "idle"}}), 2u);
  EXPECT_EQ(metrics.counter_value("inlet_tcp_connections_opened_total", {{"receiver", "graphite"}}), 2u);
}

TEST(GraphiteReceiver, ConnectionsBeyondTheLimitAreRefusedAndCounted) {
  MetricsRegistry metrics;
  bus::MemoryBus bus({4, 64 << 20}, metrics);
  auto c = config();
  c.workers = 1;
  c.max_connections = 2;
  GraphiteReceiver receiver(c, bus.producer(), metrics);
  receiver.start();
  TcpClient a(receiver.bound_port());
  TcpClient b(receiver.bound_port());
  ASSERT_TRUE(testing::eventually(
      [&] { return metrics.counter_value("inlet_tcp_connections_opened_total", {{"receiver", "graphite"}}) == 2; }, 5s));
  TcpClient third(receiver.bound_port());
  EXPECT_TRUE(third.closed_by_peer());
  EXPECT_EQ(metrics.counter_value("inlet_tcp_connections_rejected_total", {{"receiver", "graphite"}}), 1u);
}

}  // namespace
}  // namespace sluice
