// FlowTables: creates and migrates the flow tables (flows_raw → flows_raw_consumer → flows) in a Store.
#pragma once

#include <string>
#include <vector>

#include "core/flow_batch.hpp"
#include "sinks/store.hpp"

namespace sluice::sinks {

struct FlowTablesConfig {
  std::string ttl = "";  // e.g. "15 DAY"; empty keeps data forever
  int dedup_window = 10'000;  // blocks remembered for insert_deduplication_token (modern servers)
};

// The DDL for the given schema, in execution order (for `sluice check` output and tests).
std::vector<std::string> flow_tables_ddl(const FlowSchema& schema, const std::string& database,
                                         const FlowTablesConfig& config);

// Brings the store's flow tables to `schema`: creates what is missing, adds missing columns to
// `flows` and `flows_raw` (never drops a column or a row), and recreates the materialized view when
// the column list changed so that it forwards every column. Throws StoreError.
void ensure_flow_tables(Store& store, const FlowSchema& schema, const FlowTablesConfig& config);

}  // namespace sluice::sinks
