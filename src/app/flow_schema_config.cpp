#include "app/flow_schema_config.hpp"

namespace sluice::app {

sinks::FlowTablesConfig flow_tables_config(const config::OutletConfig& outlet) {
  sinks::FlowTablesConfig c;
  const auto& t = outlet.flows.table;
  c.ttl = t.ttl;
  c.order_by = t.order_by;
  c.partition_by = t.partition_by;
  c.ttl_1m = t.ttl_1m;
  c.ttl_5m = t.ttl_5m;
  c.ttl_1h = t.ttl_1h;
  // The embedded store is one process: cluster mode applies to ClickHouse servers only.
  if (outlet.clickhouse) {
    c.cluster = outlet.clickhouse->cluster;
    c.replicated = outlet.clickhouse->cluster_replicated;
  }
  return c;
}

}  // namespace sluice::app
