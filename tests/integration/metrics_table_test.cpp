// The `metrics` table on both stores: rows from metric records arrive with their tags queryable, and
// a batch replayed with the same token is stored once.
#include <gtest/gtest.h>

#include "core/metric_record.hpp"
#include "fixtures/clickhouse_server.hpp"
#include "fixtures/process.hpp"
#include "sinks/chdb_store.hpp"
#include "sinks/clickhouse_http_store.hpp"
#include "sinks/metrics_table.hpp"

namespace sluice::sinks {
namespace {

MetricView value(std::string_view endpoint, std::string_view metric, std::string_view tags, double v, std::int64_t ts,
                 MetricOrigin origin = MetricOrigin::falcon) {
  MetricView m;
  m.origin = origin;
  m.counter_type = origin == MetricOrigin::falcon ? MetricCounterType::counter : MetricCounterType::gauge;
  m.step = origin == MetricOrigin::falcon ? 60 : 0;
  m.timestamp = ts;
  m.value = v;
  m.endpoint = endpoint;
  m.metric = metric;
  m.tags = tags;
  return m;
}

void insert_known_rows(Store& store) {
  ensure_metrics_table(store);
  MetricsBlock block(store.dialect());
  block.append(value("host-1", "net.if.in.bytes", "iface=eth0,role=edge", 1234.5, 1'700'000'000));
  block.append(value("host-2", "cpu.idle", "", 99, 1'700'000'060));
  block.append(value("", "servers.web1.load", "", 0.25, 1'700'000'120, MetricOrigin::graphite));
  const auto body = block.take();
  EXPECT_EQ(block.rows(), 0u);
  store.insert({"metrics", "Native", body, 3, "metrics/0/0-2"});
  // A replay of the same batch after a crash: the token makes it a no-op where the store supports it.
  if (store.supports_dedup_token()) store.insert({"metrics", "Native", body, 3, "metrics/0/0-2"});
}

TEST(MetricsTable, ChdbStoresRowsWithMapTags) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  ChdbStore store({dir / "chdb", "", "sluice"}, metrics);
  insert_known_rows(store);
  EXPECT_EQ(store.query("SELECT Endpoint, Metric, Tags['iface'], Tags['role'], Step, CounterType, Value, Origin, "
                        "toUnixTimestamp(Timestamp) FROM sluice.metrics ORDER BY Timestamp",
                        "TabSeparated")
                .data,
            "host-1\tnet.if.in.bytes\teth0\tedge\t60\tCOUNTER\t1234.5\tfalcon\t1700000000\n"
            "host-2\tcpu.idle\t\t\t60\tCOUNTER\t99\tfalcon\t1700000060\n"
            "\tservers.web1.load\t\t\t0\tGAUGE\t0.25\tgraphite\t1700000120\n");
}

TEST(MetricsTable, LegacyServerStoresRowsWithNestedTags) {
  testing::ClickHouseServer server;
  MetricsRegistry metrics;
  ClickHouseHttpConfig config;
  config.url = server.url();
  ClickHouseHttpStore store(config, metrics);
  ASSERT_EQ(store.dialect(), ClickHouseDialect::legacy);
  insert_known_rows(store);
  EXPECT_EQ(store.query("SELECT Endpoint, Metric, Tags.Value[indexOf(Tags.Key, 'role')], length(Tags.Key), "
                        "CounterType, Value, Origin FROM sluice.metrics ORDER BY Timestamp",
                        "TabSeparated")
                .data,
            "host-1\tnet.if.in.bytes\tedge\t2\tCOUNTER\t1234.5\tfalcon\n"
            "host-2\tcpu.idle\t\t0\tCOUNTER\t99\tfalcon\n"
            "\tservers.web1.load\t\t0\tGAUGE\t0.25\tgraphite\n");
}

}  // namespace
}  // namespace sluice::sinks
