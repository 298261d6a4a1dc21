// FlowTables: lays out, creates and migrates the flow schema (flows_raw, flows, rollups, exporters, views) in a Store.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/flow_batch.hpp"
#include "sinks/store.hpp"

namespace sluice::sinks {

struct FlowTablesConfig {
  // TTLs are "<n> <unit>" (e.g. "30 DAY"); empty keeps data forever. Legacy servers (18.16) have no
  // TTL: the setting is ignored there with a warning.
  std::string ttl = "";                 // flows
  std::vector<std::string> order_by;    // flows sorting key; empty: 5-minute bucket, exporter, interfaces
  std::string partition_by;             // flows; empty: toYYYYMMDD(TimeReceived)
  std::string ttl_1m = "7 DAY";
  std::string ttl_5m = "90 DAY";
  std::string ttl_1h = "";
  // Cluster mode: storage tables become <name>_local on every node and <name> a Distributed table
  // over them, so queries and inserts keep the same names.
  std::string cluster;
  // Cluster mode only: Replicated*MergeTree created ON CLUSTER (needs ZooKeeper/Keeper). false: plain
  // engines and statements without ON CLUSTER, for a single server or nodes provisioned one by one.
  bool replicated = true;
  int dedup_window = 10'000;  // blocks remembered for insert_deduplication_token (modern servers)
};

// One table sluice owns, as it should be.
struct FlowTableSpec {
  enum class Role { raw, flows, rollup, exporters, distributed };
  std::string name;
  Role role;
  std::vector<std::pair<std::string, std::string>> columns;  // name, type
  std::string engine;
  std::string partition_by;
  std::string primary_key;             // empty: the sorting key
  std::vector<std::string> order_by;   // empty for Null and Distributed tables
  std::string ttl;                     // full TTL expression, empty for none
  std::string settings;
};

// A materialized view `name` from `source` into `target`, producing `columns`.
struct FlowViewSpec {
  std::string name, source, target;
  std::vector<std::string> columns;
  std::string select;
  // For views filling a table from flows: the INSERT ... SELECT that fills a new target from the rows
  // flows already holds (a rollup added to an existing deployment starts with its history).
  std::string backfill;
};

struct FlowTablesPlan {
  std::string database;
  std::string on_cluster;  // " ON CLUSTER name" or empty
  std::vector<FlowTableSpec> tables;  // in creation order
  std::vector<FlowViewSpec> views;    // in creation order, after every table
};

// The columns each rollup keeps (time bucket, exporter, interfaces, AS, countries, networks, protocol,
// sampling rate and the optional VLAN columns when enabled), summing Bytes and Packets.
std::vector<std::string> rollup_dimensions(const FlowSchema& schema);

FlowTablesPlan plan_flow_tables(const FlowSchema& schema, const std::string& database, const FlowTablesConfig& config);
std::string create_table_sql(const FlowTablesPlan& plan, const FlowTableSpec& table);
std::string create_view_sql(const FlowTablesPlan& plan, const FlowViewSpec& view);

// The DDL for the given schema, in execution order (for `sluice check --ddl` output and tests).
std::vector<std::string> flow_tables_ddl(const FlowSchema& schema, const std::string& database,
                                         const FlowTablesConfig& config);

// Brings the store's flow tables to `schema`: creates what is missing, adds missing columns to every
// table that should have them (rollups also extend their sorting key, so summing never merges rows
// that differ in a new column), rebuilds flows_raw (it holds no rows) and recreates every view whose
// columns, source or target changed. Never drops a column or a row. Throws StoreError.
void ensure_flow_tables(Store& store, const FlowSchema& schema, const FlowTablesConfig& config);

}  // namespace sluice::sinks
