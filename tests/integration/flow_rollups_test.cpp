// Rollups and the exporters table on real stores: after a known stream, flows and flows_1m/5m/1h hold the
// same sums, the rollup reads far fewer rows, and exporters lists every exporter and interface seen.
#include <gtest/gtest.h>

#include "fixtures/clickhouse_server.hpp"
#include "fixtures/process.hpp"
#include "flow_schema_test_support.hpp"
#include "sinks/chdb_store.hpp"
#include "sinks/clickhouse_http_store.hpp"
#include "sinks/flow_tables.hpp"

namespace sluice::sinks {
namespace {

using namespace schema_test;

constexpr std::uint32_t kFlows = 12 * kPerMinute;  // 12 minutes: 3 five-minute buckets, 1 hour

void rollups_agree_with_flows(Store& store) {
  const auto expected = expected_per_minute(0, kFlows);
  ASSERT_EQ(per_bucket(store, "flows"), expected);
  EXPECT_EQ(per_bucket(store, "flows_1m"), expected);
  for (const char* bucket : {"toStartOfFiveMinute", "toStartOfHour"}) {
    const auto from_flows = per_bucket(store, "flows", bucket);
    EXPECT_EQ(per_bucket(store, "flows_1m", bucket), from_flows) << bucket;
    EXPECT_EQ(per_bucket(store, "flows_5m", bucket), from_flows) << bucket;
  }
  EXPECT_EQ(per_bucket(store, "flows_1h", "toStartOfHour"), per_bucket(store, "flows", "toStartOfHour"));
  // The rollups keep SamplingRate, so sampling-scaled sums agree as well.
  for (const char* table : {"flows_1m", "flows_5m", "flows_1h"}) {
    EXPECT_EQ(scalar(store, fmt::format("SELECT sum(Bytes * SamplingRate) FROM sluice.{}", table)),
              scalar(store, "SELECT sum(Bytes * SamplingRate) FROM sluice.flows"))
        << table;
  }
}

void rollup_reads_fewer_rows(Store& store) {
  const std::string q =
      "SELECT toStartOfMinute(TimeReceived) AS t, InIf, SrcAS, sum(Bytes) FROM sluice.{} GROUP BY t, InIf, SrcAS";
  const auto flows_rows = rows_read(store, fmt::format(fmt::runtime(q), "flows"));
  const auto rollup_rows = rows_read(store, fmt::format(fmt::runtime(q), "flows_1m"));
  std::printf("[ rows_read ] %s: flows %llu, flows_1m %llu (%.1fx fewer)\n", store.describe().c_str(),
              static_cast<unsigned long long>(flows_rows), static_cast<unsigned long long>(rollup_rows),
              rollup_rows ? static_cast<double>(flows_rows) / static_cast<double>(rollup_rows) : 0.0);
  EXPECT_EQ(flows_rows, kFlows);
  // One block a minute, 24 combinations each: 288 rows, merged or not.
  EXPECT_EQ(rollup_rows, 12u * 24u);
  EXPECT_GE(flows_rows, 20 * rollup_rows);
}

// Every exporter and interface of the stream, with the time of its last flow.
std::string expected_exporters() {
  std::map<std::pair<std::string, std::uint32_t>, std::string> rows;
  std::map<std::pair<std::string, std::uint32_t>, std::uint32_t> last;
  FlowRecord r;
  for (std::uint32_t i = 0; i < kFlows; ++i) {
    fill(r, i, {});
    const std::string ex(r.exporter_name);
    rows[{ex, r.in_if}] = fmt::format("{}\t{}\t{}\t{}\t{}\ttransit\ttelia\texternal", ex, r.in_if, r.in_if_name,
                                      r.in_if_description, r.in_if_speed);
    rows[{ex, r.out_if}] = fmt::format("{}\t{}\t{}\t{}\t{}\t\t\tinternal", ex, r.out_if, r.out_if_name,
                                       r.out_if_description, r.out_if_speed);
    for (auto ifindex : {r.in_if, r.out_if}) {
      auto& t = last[{ex, ifindex}];
      t = std::max(t, r.time_received);
    }
  }
  std::string out;
  for (const auto& [k, v] : rows) out += fmt::format("{}\t{}\n", v, last[k]);
  return out;
}

void exporters_lists_interfaces(Store& store, const std::string& address_expr) {
  store.query("OPTIMIZE TABLE sluice.exporters FINAL");
  EXPECT_EQ(scalar(store, "SELECT count() FROM sluice.exporters"), "12");
  EXPECT_EQ(store
                .query("SELECT ExporterName, IfIndex, IfName, IfDescription, IfSpeed, IfConnectivity, IfProvider, "
                       "IfBoundary, toUInt32(TimeReceived) FROM sluice.exporters FINAL ORDER BY ExporterName, IfIndex")
                .data,
            expected_exporters());
  EXPECT_EQ(store
                .query("SELECT DISTINCT " + address_expr + ", ExporterGroup, ExporterSite FROM sluice.exporters "
                       "ORDER BY ExporterSite")
                .data,
            "::ffff:192.0.2.2\tedge\tams\n::ffff:192.0.2.1\tedge\tpar\n");
}

TEST(FlowRollups, ChdbRollupsAgreeWithFlowsAndReadFewerRows) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  ChdbStore store({dir / "chdb", "", "sluice"}, metrics);
  const auto schema = FlowSchema::make(store.dialect(), {});
  ensure_flow_tables(store, schema, {});
  insert_stream(store, schema, 0, kFlows);
  rollups_agree_with_flows(store);
  rollup_reads_fewer_rows(store);
  exporters_lists_interfaces(store, "toString(ExporterAddress)");
  // Merged, the rollups hold one row per bucket and combination.
  for (const char* t : {"flows_1m", "flows_5m", "flows_1h"}) store.query(fmt::format("OPTIMIZE TABLE sluice.{} FINAL", t));
  EXPECT_EQ(scalar(store, "SELECT count() FROM sluice.flows_1m"), "288");
  EXPECT_EQ(scalar(store, "SELECT count() FROM sluice.flows_5m"), "72");
  EXPECT_EQ(scalar(store, "SELECT count() FROM sluice.flows_1h"), "24");
  rollups_agree_with_flows(store);
}

TEST(FlowRollups, ChdbReplayedBatchIsDeduplicatedInFlowsAndRollups) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  ChdbStore store({dir / "chdb", "", "sluice"}, metrics);
  const auto schema = FlowSchema::make(store.dialect(), {});
  ensure_flow_tables(store, schema, {});
  insert_stream(store, schema, 0, 1000, {}, "sluice-flows/0/0-99");
  insert_stream(store, schema, 0, 1000, {}, "sluice-flows/0/0-99");  // the replay after a crash
  insert_stream(store, schema, 1000, 1000, {}, "sluice-flows/0/100-199");
  EXPECT_EQ(scalar(store, "SELECT count(), sum(Bytes) FROM sluice.flows"), "2000\t" + std::to_string(2 * (100 * 1000 + 999 * 500)));
  for (const char* t : {"flows_1m", "flows_5m", "flows_1h"}) {
    EXPECT_EQ(scalar(store, fmt::format("SELECT sum(Bytes) FROM sluice.{}", t)), std::to_string(2 * (100 * 1000 + 999 * 500))) << t;
  }
}

TEST(FlowRollups, LegacyServerRollupsAgreeWithFlowsAndReadFewerRows) {
  testing::ClickHouseServer server;
  MetricsRegistry metrics;
  ClickHouseHttpConfig config;
  config.url = server.url();
  ClickHouseHttpStore store(config, metrics);
  ASSERT_EQ(store.dialect(), ClickHouseDialect::legacy);
  const auto schema = FlowSchema::make(store.dialect(), {});
  FlowTablesConfig tables;
  tables.ttl = "30 DAY";  // ignored (with a warning): 18.16 has no TTL
  ensure_flow_tables(store, schema, tables);
  insert_stream(store, schema, 0, kFlows);
  rollups_agree_with_flows(store);
  rollup_reads_fewer_rows(store);
  exporters_lists_interfaces(store, "IPv6NumToString(ExporterAddress)");
}

// A single-shard cluster whose one replica is the server itself: no ZooKeeper here, so the local
// tables use plain engines (replicated: false) and statements run without ON CLUSTER.
TEST(FlowRollups, LegacyServerSingleShardClusterWritesThroughDistributedTables) {
  testing::ClickHouseServer server(
      "<remote_servers><sluice_single><shard><replica><host>127.0.0.1</host><port>{tcp_port}</port></replica>"
      "</shard></sluice_single></remote_servers>");
  MetricsRegistry metrics;
  ClickHouseHttpConfig config;
  config.url = server.url();
  ClickHouseHttpStore store(config, metrics);
  FlowTablesConfig tables;
  tables.cluster = "sluice_single";
  tables.replicated = false;
  const auto schema = FlowSchema::make(store.dialect(), {});
  ensure_flow_tables(store, schema, tables);
  EXPECT_EQ(store.query("SELECT name, engine FROM system.tables WHERE database = 'sluice' AND engine NOT LIKE '%View' "
                        "ORDER BY name")
                .data,
            "exporters\tDistributed\nexporters_local\tReplacingMergeTree\nflows\tDistributed\n"
            "flows_1h\tDistributed\nflows_1h_local\tSummingMergeTree\nflows_1m\tDistributed\n"
            "flows_1m_local\tSummingMergeTree\nflows_5m\tDistributed\nflows_5m_local\tSummingMergeTree\n"
            "flows_local\tMergeTree\nflows_raw\tNull\n");
  insert_stream(store, schema, 0, kFlows);
  // Distributed tables may forward in the background.
  ASSERT_TRUE(testing::eventually([&] { return scalar(store, "SELECT count() FROM sluice.flows_local") == "24000"; },
                                  std::chrono::seconds(30)));
  ASSERT_TRUE(testing::eventually(
      [&] { return scalar(store, "SELECT sum(Bytes) FROM sluice.flows_1h_local") == scalar(store, "SELECT sum(Bytes) FROM sluice.flows"); },
      std::chrono::seconds(30)));
  ASSERT_TRUE(testing::eventually([&] { return scalar(store, "SELECT uniqExact(ExporterName, IfIndex) FROM sluice.exporters") == "12"; },
                                  std::chrono::seconds(30)));
  rollups_agree_with_flows(store);

  // Migration in cluster mode: the local and the Distributed tables gain the column.
  const auto after = FlowSchema::make(store.dialect(), {"SrcVlan"});
  ensure_flow_tables(store, after, tables);
  insert_stream(store, after, kFlows, kPerMinute, {42, 0});
  ASSERT_TRUE(testing::eventually(
      [&] { return store.query("SELECT SrcVlan, count() FROM sluice.flows GROUP BY SrcVlan ORDER BY SrcVlan").data == "0\t24000\n42\t2000\n"; },
      std::chrono::seconds(30)));
  ASSERT_TRUE(testing::eventually(
      [&] {
        return store.query("SELECT SrcVlan, sum(Bytes) FROM sluice.flows_1m GROUP BY SrcVlan ORDER BY SrcVlan").data ==
               store.query("SELECT SrcVlan, sum(Bytes) FROM sluice.flows GROUP BY SrcVlan ORDER BY SrcVlan").data;
      },
      std::chrono::seconds(30)));
}

}  // namespace
}  // namespace sluice::sinks
