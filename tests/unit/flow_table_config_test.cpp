// outlet.flows.table and outlet.clickhouse.cluster: parsed, normalized and mapped to the flow tables' layout.
#include <gtest/gtest.h>

#include "app/flow_schema_config.hpp"
#include "config/config.hpp"
#include "config/reader.hpp"

namespace sluice {
namespace {

TEST(FlowTableConfig, DefaultsKeepFlowsForeverAndRollupsForAWeekAndAQuarter) {
  const auto c = config::parse_config("outlet:\n  chdb: {path: /tmp/x}\n");
  const auto t = app::flow_tables_config(*c.outlet);
  EXPECT_EQ(t.ttl, "");
  EXPECT_TRUE(t.order_by.empty());
  EXPECT_EQ(t.partition_by, "");
  EXPECT_EQ(t.ttl_1m, "7 DAY");
  EXPECT_EQ(t.ttl_5m, "90 DAY");
  EXPECT_EQ(t.ttl_1h, "");
  EXPECT_EQ(t.cluster, "");
}

TEST(FlowTableConfig, ParsesTableLayoutTtlsAndCluster) {
  const auto c = config::parse_config(R"(
outlet:
  clickhouse: {url: "http://127.0.0.1:8123", cluster: edge, cluster_replicated: false}
  flows:
    table:
      ttl: 30 days
      order_by: [toStartOfFiveMinute(TimeReceived), ExporterAddress, InIf, OutIf, Proto]
      partition_by: toYYYYMM(TimeReceived)
      rollup_ttl: {1m: 14 day, 5m: "1 year", 1h: ""}
)");
  const auto t = app::flow_tables_config(*c.outlet);
  EXPECT_EQ(t.ttl, "30 DAY");
  EXPECT_EQ(t.order_by, (std::vector<std::string>{"toStartOfFiveMinute(TimeReceived)", "ExporterAddress", "InIf", "OutIf", "Proto"}));
  EXPECT_EQ(t.partition_by, "toYYYYMM(TimeReceived)");
  EXPECT_EQ(t.ttl_1m, "14 DAY");
  EXPECT_EQ(t.ttl_5m, "1 YEAR");
  EXPECT_EQ(t.ttl_1h, "");
  EXPECT_EQ(t.cluster, "edge");
  EXPECT_FALSE(t.replicated);
}

TEST(FlowTableConfig, RejectsMalformedTtlsAndClusterNamesWithKeyPaths) {
  try {
    config::parse_config(R"(
outlet:
  clickhouse: {url: "http://127.0.0.1:8123", cluster: "edge; DROP"}
  flows:
    table:
      ttl: forever
      rollup_ttl: {1m: 7 fortnights, 10m: 1 DAY}
)");
    FAIL() << "accepted";
  } catch (const config::ConfigError& e) {
    std::string all;
    for (const auto& line : e.errors()) all += line + "\n";
    EXPECT_NE(all.find("outlet.clickhouse.cluster: expected a cluster name"), std::string::npos) << all;
    EXPECT_NE(all.find("outlet.flows.table.ttl: expected a retention such as \"30 DAY\""), std::string::npos) << all;
    EXPECT_NE(all.find("outlet.flows.table.rollup_ttl.1m: expected a retention"), std::string::npos) << all;
    EXPECT_NE(all.find("outlet.flows.table.rollup_ttl.10m"), std::string::npos) << all;
    EXPECT_EQ(e.errors().size(), 4u) << all;
  }
}

}  // namespace
}  // namespace sluice
