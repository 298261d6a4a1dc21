// The flow schema on real stores: created from the schema and config, filled through flows_raw, and
// migrated in place when optional columns are switched on (no row lost, new columns filled in flows and
// rollups, views recreated); and the DDL generated for cluster mode, statement by statement.
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

std::string view_query(Store& store, const std::string& view) {
  return scalar(store, "SELECT create_table_query FROM system.tables WHERE database = 'sluice' AND name = '" + view + "'");
}

std::string first_line_of(const std::string& s) { return s.substr(0, s.find('\n')); }

const char* const kViews[] = {"flows_raw_consumer", "flows_1m_consumer", "flows_5m_consumer", "flows_1h_consumer",
                              "exporters_in_consumer", "exporters_out_consumer"};

void migration_keeps_rows_and_fills_new_columns(Store& store) {
  const auto before = FlowSchema::make(store.dialect(), {});
  ensure_flow_tables(store, before, {});
  ensure_flow_tables(store, before, {});  // idempotent
  insert_stream(store, before, 0, 6 * kPerMinute);
  EXPECT_EQ(scalar(store, "SELECT count() FROM sluice.flows"), "12000");
  EXPECT_EQ(scalar(store, "SELECT count() FROM system.columns WHERE database = 'sluice' AND name IN ('SrcVlan', 'TCPFlags')"), "0");
  std::map<std::string, std::string> views_before;
  for (const auto* v : kViews) views_before[v] = view_query(store, v);
  EXPECT_EQ(views_before["flows_1m_consumer"].find("SrcVlan"), std::string::npos);

  // SrcVlan is a rollup dimension, TCPFlags is kept in flows only.
  const auto after = FlowSchema::make(store.dialect(), {"SrcVlan", "TCPFlags"});
  ensure_flow_tables(store, after, {});
  insert_stream(store, after, 6 * kPerMinute, 6 * kPerMinute, {42, 0x12});

  // No row lost, in flows or in the rollups.
  const auto total = scalar(store, "SELECT count(), sum(Bytes), sum(Packets) FROM sluice.flows");
  EXPECT_EQ(total, "24000\t" + std::to_string(24 * 599'500) + "\t48000");
  EXPECT_EQ(per_bucket(store, "flows"), expected_per_minute(0, 24000));
  for (const char* t : {"flows_1m", "flows_5m", "flows_1h"}) {
    EXPECT_EQ(scalar(store, fmt::format("SELECT sum(Bytes), sum(Packets) FROM sluice.{}", t)),
              total.substr(total.find('\t') + 1))
        << t;
    // New rows carry the new column through the recreated views; old rows have its default.
    EXPECT_EQ(store.query(fmt::format("SELECT SrcVlan, sum(Bytes) FROM sluice.{} GROUP BY SrcVlan ORDER BY SrcVlan", t)).data,
              "0\t" + std::to_string(12 * 599'500) + "\n42\t" + std::to_string(12 * 599'500) + "\n")
        << t;
    EXPECT_EQ(scalar(store, fmt::format("SELECT count() FROM system.columns WHERE database = 'sluice' AND table = '{}' "
                                        "AND name = 'TCPFlags'", t)),
              "0")
        << t;
  }
  EXPECT_EQ(store.query("SELECT SrcVlan, TCPFlags, count() FROM sluice.flows GROUP BY SrcVlan, TCPFlags ORDER BY SrcVlan").data,
            "0\t0\t12000\n42\t18\t12000\n");
  // The rollup's sorting key gained the new dimension (summing never merges rows differing in it).
  const auto key = scalar(store, "SELECT sorting_key FROM system.tables WHERE database = 'sluice' AND name = 'flows_1m'");
  EXPECT_EQ(key.substr(key.size() - 7), "SrcVlan") << key;
  EXPECT_EQ(scalar(store, "SELECT count() FROM sluice.exporters FINAL"), "12");

  // Views reading or writing a changed table were recreated with the new columns.
  EXPECT_NE(view_query(store, "flows_raw_consumer").find("TCPFlags"), std::string::npos);
  EXPECT_NE(view_query(store, "flows_1m_consumer").find("SrcVlan"), std::string::npos);
  EXPECT_NE(view_query(store, "flows_1h_consumer").find("SrcVlan"), std::string::npos);
  for (const auto* v : kViews) EXPECT_NE(view_query(store, v), "") << v;
  EXPECT_EQ(first_line_of(store.query("SELECT InIfBoundary FROM sluice.flows LIMIT 1").data), "external");
}

// A deployment from before the rollups (flows_raw → flows only) gains them filled with its history.
void new_rollups_start_with_the_history_of_flows(Store& store) {
  const auto schema = FlowSchema::make(store.dialect(), {});
  ensure_flow_tables(store, schema, {});
  for (const auto* v : kViews) {
    if (std::string_view(v) != "flows_raw_consumer") store.query(std::string("DROP TABLE sluice.") + v);
  }
  for (const char* t : {"flows_1m", "flows_5m", "flows_1h", "exporters"}) store.query(std::string("DROP TABLE sluice.") + t);
  insert_stream(store, schema, 0, 6 * kPerMinute);
  ensure_flow_tables(store, schema, {});
  insert_stream(store, schema, 6 * kPerMinute, 6 * kPerMinute);
  const auto expected = expected_per_minute(0, 12 * kPerMinute);
  EXPECT_EQ(per_bucket(store, "flows"), expected);
  EXPECT_EQ(per_bucket(store, "flows_1m"), expected);
  EXPECT_EQ(per_bucket(store, "flows_5m", "toStartOfFiveMinute"), per_bucket(store, "flows", "toStartOfFiveMinute"));
  EXPECT_EQ(per_bucket(store, "flows_1h", "toStartOfHour"), per_bucket(store, "flows", "toStartOfHour"));
  EXPECT_EQ(scalar(store, "SELECT count() FROM sluice.exporters FINAL"), "12");
}

TEST(FlowTables, ChdbNewRollupsStartWithTheHistoryOfFlows) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  ChdbStore store({dir / "chdb", "", "sluice"}, metrics);
  new_rollups_start_with_the_history_of_flows(store);
}

TEST(FlowTables, LegacyServerNewRollupsStartWithTheHistoryOfFlows) {
  testing::ClickHouseServer server;
  MetricsRegistry metrics;
  ClickHouseHttpConfig config;
  config.url = server.url();
  ClickHouseHttpStore store(config, metrics);
  new_rollups_start_with_the_history_of_flows(store);
}

TEST(FlowTables, ChdbCreatesAndMigratesInPlace) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  ChdbStore store({dir / "chdb", "", "sluice"}, metrics);
  migration_keeps_rows_and_fills_new_columns(store);
  EXPECT_EQ(scalar(store, "SELECT toTypeName(ExporterAddress) FROM sluice.flows LIMIT 1"), "LowCardinality(IPv6)");
  EXPECT_EQ(scalar(store, "SELECT SrcAddr FROM sluice.flows ORDER BY SrcAddr LIMIT 1"), "::ffff:10.0.0.0");
}

TEST(FlowTables, LegacyClickHouseServerCreatesAndMigratesInPlace) {
  testing::ClickHouseServer server;
  MetricsRegistry metrics;
  ClickHouseHttpConfig config;
  config.url = server.url();
  ClickHouseHttpStore store(config, metrics);
  ASSERT_EQ(store.dialect(), ClickHouseDialect::legacy);
  migration_keeps_rows_and_fills_new_columns(store);
  EXPECT_EQ(scalar(store, "SELECT IPv6NumToString(SrcAddr) FROM sluice.flows ORDER BY SrcAddr LIMIT 1"), "::ffff:10.0.0.0");
}

TEST(FlowTables, ChdbAppliesConfiguredOrderingPartitionAndTtls) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  ChdbStore store({dir / "chdb", "", "sluice"}, metrics);
  FlowTablesConfig tables;
  tables.ttl = "30 DAY";
  tables.order_by = {"toStartOfFiveMinute(TimeReceived)", "ExporterAddress", "InIf", "OutIf", "Proto"};
  tables.partition_by = "toYYYYMM(TimeReceived)";
  tables.ttl_1h = "400 DAY";
  ensure_flow_tables(store, FlowSchema::make(store.dialect(), {}), tables);
  auto info = [&](const std::string& table) {
    return scalar(store, "SELECT sorting_key, partition_key, engine FROM system.tables WHERE database = 'sluice' AND name = '" + table + "'");
  };
  EXPECT_EQ(info("flows"), "toStartOfFiveMinute(TimeReceived), ExporterAddress, InIf, OutIf, Proto\ttoYYYYMM(TimeReceived)\tMergeTree");
  EXPECT_EQ(info("exporters"), "ExporterAddress, IfIndex\t\tReplacingMergeTree");
  auto ttl = [&](const std::string& table) {
    const auto q = view_query(store, table);
    const auto at = q.find(" TTL ");
    return at == std::string::npos ? std::string("none") : q.substr(at + 5, q.find(" SETTINGS", at) - at - 5);
  };
  EXPECT_EQ(ttl("flows"), "TimeReceived + toIntervalDay(30)");
  EXPECT_EQ(ttl("flows_1m"), "TimeReceived + toIntervalDay(7)");
  EXPECT_EQ(ttl("flows_5m"), "TimeReceived + toIntervalDay(90)");
  EXPECT_EQ(ttl("flows_1h"), "TimeReceived + toIntervalDay(400)");

  // Changed retention applies to the existing tables.
  tables.ttl = "2 MONTH";
  tables.ttl_1h = "";
  ensure_flow_tables(store, FlowSchema::make(store.dialect(), {}), tables);
  EXPECT_EQ(ttl("flows"), "TimeReceived + toIntervalMonth(2)");
  EXPECT_EQ(ttl("flows_1m"), "TimeReceived + toIntervalDay(7)");
  EXPECT_EQ(ttl("flows_1h"), "none");
}

TEST(FlowTables, DdlUsesAkvoradoNamesAndTheDedupWindowOnModernStores) {
  FlowTablesConfig config;
  config.ttl = "30 DAY";
  config.dedup_window = 5000;
  const auto ddl = flow_tables_ddl(FlowSchema::make(ClickHouseDialect::modern, {}), "sluice", config);
  ASSERT_EQ(ddl.size(), 1u + 6u + 6u);  // database, 6 tables, 6 views
  EXPECT_EQ(ddl[0], "CREATE DATABASE IF NOT EXISTS sluice");
  EXPECT_NE(ddl[1].find("`ExporterAddress` LowCardinality(IPv6)"), std::string::npos);
  EXPECT_NE(ddl[1].find("`InIfBoundary` Enum8('undefined' = 0, 'external' = 1, 'internal' = 2)"), std::string::npos);
  EXPECT_EQ(ddl[1].substr(ddl[1].find(") ENGINE")),
            ") ENGINE = MergeTree\nPARTITION BY toYYYYMMDD(TimeReceived)\n"
            "ORDER BY (toStartOfFiveMinute(TimeReceived), ExporterAddress, InIf, OutIf)\n"
            "TTL TimeReceived + INTERVAL 30 DAY\nSETTINGS index_granularity = 8192, non_replicated_deduplication_window = 5000");
  EXPECT_NE(ddl[2].find("ENGINE = Null"), std::string::npos);
  EXPECT_EQ(ddl[3].substr(ddl[3].find(") ENGINE")),
            ") ENGINE = SummingMergeTree((Bytes, Packets))\nPARTITION BY toYYYYMMDD(TimeReceived)\n"
            "PRIMARY KEY (TimeReceived, ExporterAddress, InIf, OutIf)\n"
            "ORDER BY (TimeReceived, ExporterAddress, InIf, OutIf, SamplingRate, ExporterName, ExporterGroup, "
            "ExporterRole, ExporterSite, ExporterRegion, ExporterTenant, SrcAS, DstAS, SrcNetName, DstNetName, "
            "SrcNetRole, DstNetRole, SrcNetSite, DstNetSite, SrcNetRegion, DstNetRegion, SrcNetTenant, DstNetTenant, "
            "SrcCountry, DstCountry, InIfName, OutIfName, InIfDescription, OutIfDescription, InIfSpeed, OutIfSpeed, "
            "InIfConnectivity, OutIfConnectivity, InIfProvider, OutIfProvider, InIfBoundary, OutIfBoundary, EType, "
            "Proto, ForwardingStatus, FlowDirection)\n"
            "TTL TimeReceived + INTERVAL 7 DAY\nSETTINGS index_granularity = 8192, non_replicated_deduplication_window = 5000");
  EXPECT_EQ(ddl[6],
            "CREATE TABLE IF NOT EXISTS sluice.exporters (\n  `TimeReceived` DateTime,\n  `ExporterAddress` LowCardinality(IPv6),\n"
            "  `ExporterName` LowCardinality(String),\n  `ExporterGroup` LowCardinality(String),\n"
            "  `ExporterRole` LowCardinality(String),\n  `ExporterSite` LowCardinality(String),\n"
            "  `ExporterRegion` LowCardinality(String),\n  `ExporterTenant` LowCardinality(String),\n  `IfIndex` UInt32,\n"
            "  `IfName` LowCardinality(String),\n  `IfDescription` LowCardinality(String),\n  `IfSpeed` UInt32,\n"
            "  `IfConnectivity` LowCardinality(String),\n  `IfProvider` LowCardinality(String),\n"
            "  `IfBoundary` Enum8('undefined' = 0, 'external' = 1, 'internal' = 2)\n"
            ") ENGINE = ReplacingMergeTree(TimeReceived)\nORDER BY (ExporterAddress, IfIndex)\nSETTINGS index_granularity = 8192");
  EXPECT_TRUE(ddl[7].starts_with("CREATE MATERIALIZED VIEW IF NOT EXISTS sluice.flows_raw_consumer TO sluice.flows AS SELECT `TimeReceived`"));
  // Modern servers feed the rollups from flows (views cascade there).
  EXPECT_EQ(ddl[8].substr(ddl[8].find(" FROM ")), " FROM sluice.flows GROUP BY TimeReceived, SamplingRate, ExporterAddress, "
            "ExporterName, ExporterGroup, ExporterRole, ExporterSite, ExporterRegion, ExporterTenant, SrcAS, DstAS, SrcNetName, "
            "DstNetName, SrcNetRole, DstNetRole, SrcNetSite, DstNetSite, SrcNetRegion, DstNetRegion, SrcNetTenant, DstNetTenant, "
            "SrcCountry, DstCountry, InIf, OutIf, InIfName, OutIfName, InIfDescription, OutIfDescription, InIfSpeed, OutIfSpeed, "
            "InIfConnectivity, OutIfConnectivity, InIfProvider, OutIfProvider, InIfBoundary, OutIfBoundary, EType, Proto, "
            "ForwardingStatus, FlowDirection");
  EXPECT_EQ(ddl[11],
            "CREATE MATERIALIZED VIEW IF NOT EXISTS sluice.exporters_in_consumer TO sluice.exporters AS SELECT max(TimeReceived) "
            "AS TimeReceived, ExporterAddress, ExporterName, ExporterGroup, ExporterRole, ExporterSite, ExporterRegion, "
            "ExporterTenant, InIf AS IfIndex, InIfName AS IfName, InIfDescription AS IfDescription, InIfSpeed AS IfSpeed, "
            "InIfConnectivity AS IfConnectivity, InIfProvider AS IfProvider, InIfBoundary AS IfBoundary FROM sluice.flows "
            "GROUP BY ExporterAddress, ExporterName, ExporterGroup, ExporterRole, ExporterSite, ExporterRegion, ExporterTenant, "
            "InIf, InIfName, InIfDescription, InIfSpeed, InIfConnectivity, InIfProvider, InIfBoundary");

  // Legacy servers: no LowCardinality, no deduplication window, no TTL; views read flows_raw.
  const auto legacy = flow_tables_ddl(FlowSchema::make(ClickHouseDialect::legacy, {}), "sluice", config);
  for (const auto& s : legacy) {
    EXPECT_EQ(s.find("LowCardinality"), std::string::npos) << s;
    EXPECT_EQ(s.find("deduplication_window"), std::string::npos) << s;
    EXPECT_EQ(s.find("TTL"), std::string::npos) << s;
    if (s.find("_consumer") != std::string::npos) {
      EXPECT_NE(s.find("FROM sluice.flows_raw"), std::string::npos) << s;
    }
  }
}

TEST(FlowTables, ClusterDdlUsesReplicatedLocalTablesAndDistributedPublicNames) {
  FlowTablesConfig config;
  config.cluster = "edge";
  const auto ddl = flow_tables_ddl(FlowSchema::make(ClickHouseDialect::modern, {}), "sluice", config);
  ASSERT_EQ(ddl.size(), 1u + 11u + 6u);  // database, 6 tables + 5 Distributed, 6 views
  EXPECT_EQ(ddl[0], "CREATE DATABASE IF NOT EXISTS sluice ON CLUSTER edge");
  EXPECT_TRUE(ddl[1].starts_with("CREATE TABLE IF NOT EXISTS sluice.flows_local ON CLUSTER edge (\n  `TimeReceived` DateTime,")) << ddl[1];
  EXPECT_EQ(ddl[1].substr(ddl[1].find(") ENGINE")),
            ") ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/sluice/flows_local', '{replica}')\n"
            "PARTITION BY toYYYYMMDD(TimeReceived)\nORDER BY (toStartOfFiveMinute(TimeReceived), ExporterAddress, InIf, OutIf)\n"
            "SETTINGS index_granularity = 8192, replicated_deduplication_window = 10000");
  EXPECT_TRUE(ddl[2].starts_with("CREATE TABLE IF NOT EXISTS sluice.flows ON CLUSTER edge")) << ddl[2];
  EXPECT_EQ(ddl[2].substr(ddl[2].find(") ENGINE")), ") ENGINE = Distributed(edge, sluice, flows_local, rand())");
  EXPECT_TRUE(ddl[3].starts_with("CREATE TABLE IF NOT EXISTS sluice.flows_raw ON CLUSTER edge")) << ddl[3];
  EXPECT_NE(ddl[4].find(") ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/sluice/flows_1m_local', "
                        "'{replica}', (Bytes, Packets))\n"),
            std::string::npos);
  EXPECT_EQ(ddl[5].substr(ddl[5].find(") ENGINE")), ") ENGINE = Distributed(edge, sluice, flows_1m_local, rand())");
  EXPECT_EQ(ddl[10].substr(ddl[10].find(") ENGINE")),
            ") ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/sluice/exporters_local', '{replica}', "
            "TimeReceived)\nORDER BY (ExporterAddress, IfIndex)\nSETTINGS index_granularity = 8192");
  EXPECT_EQ(ddl[11].substr(ddl[11].find(") ENGINE")), ") ENGINE = Distributed(edge, sluice, exporters_local, rand())");
  // Inserts go through flows_raw to the Distributed flows; each shard rolls up its own rows.
  EXPECT_TRUE(ddl[12].starts_with("CREATE MATERIALIZED VIEW IF NOT EXISTS sluice.flows_raw_consumer ON CLUSTER edge TO sluice.flows AS SELECT ")) << ddl[12];
  EXPECT_TRUE(ddl[13].starts_with("CREATE MATERIALIZED VIEW IF NOT EXISTS sluice.flows_1m_consumer ON CLUSTER edge TO sluice.flows_1m_local AS SELECT ")) << ddl[13];
  EXPECT_NE(ddl[13].find(" FROM sluice.flows_local GROUP BY "), std::string::npos);
  EXPECT_NE(ddl[17].find(" FROM sluice.flows_local GROUP BY "), std::string::npos);
}

}  // namespace
}  // namespace sluice::sinks
