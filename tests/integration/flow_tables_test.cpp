// The flow tables on real stores: created from the schema, filled through flows_raw, and migrated in
// place when optional columns are switched on (no row lost, new columns filled, view recreated).
#include <gtest/gtest.h>

#include "core/flow_batch.hpp"
#include "fixtures/clickhouse_server.hpp"
#include "fixtures/process.hpp"
#include "sinks/chdb_store.hpp"
#include "sinks/clickhouse_http_store.hpp"
#include "sinks/flow_tables.hpp"

namespace sluice::sinks {
namespace {

void insert_flows(Store& store, const FlowSchema& schema, std::uint32_t first, std::uint32_t n) {
  FlowBatch batch(schema);
  FlowRecord r;
  for (std::uint32_t i = first; i < first + n; ++i) {
    r.reset();
    r.time_received = 1'700'000'000 + i;
    r.exporter_address = ip6_from_v4(0xc0000201);
    r.src_addr = ip6_from_v4(0x0a000000 + i);
    r.dst_addr = ip6_from_v4(0xc0a80001);
    r.bytes = 100 + i;
    r.packets = 1;
    r.proto = 6;
    r.tcp_flags = 0x12;
    r.ip_tos = 0x28;
    r.in_if_boundary = Boundary::external;
    batch.append(r);
  }
  InsertRequest req;
  req.table = "flows_raw";
  req.format = "Native";
  req.rows = batch.rows();
  batch.take_native(req.body);
  store.insert(req);
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

void migration_keeps_rows_and_fills_new_columns(Store& store) {
  const auto before = FlowSchema::make(store.dialect(), {});
  ensure_flow_tables(store, before, {});
  ensure_flow_tables(store, before, {});  // idempotent
  insert_flows(store, before, 0, 1000);
  EXPECT_EQ(store.query("SELECT count(), sum(Bytes) FROM sluice.flows").data, "1000\t599500\n");
  EXPECT_EQ(store.query("SELECT count() FROM system.columns WHERE database = 'sluice' AND table = 'flows' AND name = 'TCPFlags'").data, "0\n");

  const auto after = FlowSchema::make(store.dialect(), {"TCPFlags", "IPTos"});
  ensure_flow_tables(store, after, {});
  insert_flows(store, after, 1000, 500);
  EXPECT_EQ(store.query("SELECT count(), sum(Bytes) FROM sluice.flows").data, "1500\t" + std::to_string(599500 + 500 * 100 + (1000 + 1499) * 500 / 2) + "\n");
  // Old rows get the column default; new rows carry the value through the recreated view.
  EXPECT_EQ(store.query("SELECT TCPFlags, IPTos, count() FROM sluice.flows GROUP BY TCPFlags, IPTos ORDER BY TCPFlags").data,
            "0\t0\t1000\n18\t40\t500\n");
  EXPECT_EQ(first_line(store.query("SELECT InIfBoundary FROM sluice.flows LIMIT 1").data), "external");
}

TEST(FlowTables, ChdbCreatesAndMigratesInPlace) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  ChdbStore store({dir / "chdb", "", "sluice"}, metrics);
  migration_keeps_rows_and_fills_new_columns(store);
  EXPECT_EQ(first_line(store.query("SELECT toTypeName(ExporterAddress) FROM sluice.flows LIMIT 1").data), "LowCardinality(IPv6)");
  EXPECT_EQ(first_line(store.query("SELECT SrcAddr FROM sluice.flows ORDER BY Bytes LIMIT 1").data), "::ffff:10.0.0.0");
}

TEST(FlowTables, LegacyClickHouseServerCreatesAndMigratesInPlace) {
  testing::ClickHouseServer server;
  MetricsRegistry metrics;
  ClickHouseHttpConfig config;
  config.url = server.url();
  ClickHouseHttpStore store(config, metrics);
  ASSERT_EQ(store.dialect(), ClickHouseDialect::legacy);
  migration_keeps_rows_and_fills_new_columns(store);
  EXPECT_EQ(first_line(store.query("SELECT IPv6NumToString(SrcAddr) FROM sluice.flows ORDER BY Bytes LIMIT 1").data),
            "::ffff:10.0.0.0");
}

TEST(FlowTables, DdlUsesAkvoradoNamesAndTheDedupWindowOnModernStores) {
  const auto ddl = flow_tables_ddl(FlowSchema::make(ClickHouseDialect::modern, {}), "sluice", {"30 DAY", 5000});
  ASSERT_EQ(ddl.size(), 4u);
  EXPECT_NE(ddl[1].find("`ExporterAddress` LowCardinality(IPv6)"), std::string::npos);
  EXPECT_NE(ddl[1].find("`InIfBoundary` Enum8('undefined' = 0, 'external' = 1, 'internal' = 2)"), std::string::npos);
  EXPECT_NE(ddl[1].find("non_replicated_deduplication_window = 5000"), std::string::npos);
  EXPECT_NE(ddl[1].find("TTL TimeReceived + INTERVAL 30 DAY"), std::string::npos);
  EXPECT_NE(ddl[2].find("ENGINE = Null"), std::string::npos);
  EXPECT_NE(ddl[3].find("flows_raw_consumer TO sluice.flows"), std::string::npos);
  const auto legacy = flow_tables_ddl(FlowSchema::make(ClickHouseDialect::legacy, {}), "sluice", {});
  EXPECT_EQ(legacy[1].find("LowCardinality"), std::string::npos);
  EXPECT_EQ(legacy[1].find("deduplication_window"), std::string::npos);
}

}  // namespace
}  // namespace sluice::sinks
