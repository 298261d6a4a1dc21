#include "sinks/flow_tables.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <set>
#include <sstream>

namespace sluice::sinks {
namespace {

std::string column_list(const FlowSchema& schema, bool wire) {
  std::string out;
  for (const auto* c : schema.columns) {
    if (!out.empty()) out += ",\n  ";
    out += fmt::format("`{}` {}", c->name, wire ? schema.wire_type(*c) : schema.table_type(*c));
  }
  return out;
}

std::string view_ddl(const FlowSchema& schema, const std::string& db) {
  std::string names;
  for (const auto* c : schema.columns) {
    if (!names.empty()) names += ", ";
    names += fmt::format("`{}`", c->name);
  }
  return fmt::format("CREATE MATERIALIZED VIEW IF NOT EXISTS {0}.flows_raw_consumer TO {0}.flows AS SELECT {1} FROM {0}.flows_raw",
                     db, names);
}

std::set<std::string> existing_columns(Store& store, const std::string& db, const std::string& table) {
  auto r = store.query(fmt::format("SELECT name FROM system.columns WHERE database = '{}' AND table = '{}'", db, table));
  std::set<std::string> names;
  std::istringstream in(r.data);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) names.insert(line);
  }
  return names;
}

}  // namespace

std::vector<std::string> flow_tables_ddl(const FlowSchema& schema, const std::string& db, const FlowTablesConfig& config) {
  const bool modern = schema.dialect == ClickHouseDialect::modern;
  std::string settings = "index_granularity = 8192";
  if (modern) settings += fmt::format(", non_replicated_deduplication_window = {}", config.dedup_window);
  std::string ttl = config.ttl.empty() ? "" : fmt::format("\nTTL TimeReceived + INTERVAL {}", config.ttl);
  std::vector<std::string> ddl;
  ddl.push_back(fmt::format("CREATE DATABASE IF NOT EXISTS {}", db));
  ddl.push_back(fmt::format(
      "CREATE TABLE IF NOT EXISTS {}.flows (\n  {}\n) ENGINE = MergeTree\nPARTITION BY toYYYYMMDD(TimeReceived)\n"
      "ORDER BY (toStartOfFiveMinute(TimeReceived), ExporterAddress, InIf, OutIf){}\nSETTINGS {}",
      db, column_list(schema, false), ttl, settings));
  ddl.push_back(fmt::format("CREATE TABLE IF NOT EXISTS {}.flows_raw (\n  {}\n) ENGINE = Null", db, column_list(schema, true)));
  ddl.push_back(view_ddl(schema, db));
  return ddl;
}

void ensure_flow_tables(Store& store, const FlowSchema& schema, const FlowTablesConfig& config) {
  const auto& db = store.database();
  const auto ddl = flow_tables_ddl(schema, db, config);
  store.query(ddl[0]);
  store.query(ddl[1]);
  // flows keeps its data: missing columns are added in place.
  for (const auto* c : schema.columns) {
    if (existing_columns(store, db, "flows").count(c->name)) continue;
    spdlog::info("schema: adding column {} {} to {}.flows", c->name, schema.table_type(*c), db);
    store.query(fmt::format("ALTER TABLE {}.flows ADD COLUMN `{}` {}", db, c->name, schema.table_type(*c)));
  }
  // flows_raw (Null engine) holds nothing, so a different column list is simply rebuilt, with its view.
  const auto raw = existing_columns(store, db, "flows_raw");
  std::set<std::string> wanted;
  for (const auto* c : schema.columns) wanted.insert(c->name);
  if (!raw.empty() && raw != wanted) {
    spdlog::info("schema: rebuilding {0}.flows_raw and {0}.flows_raw_consumer for the new column list", db);
    store.query(fmt::format("DROP TABLE IF EXISTS {}.flows_raw_consumer", db));
    store.query(fmt::format("DROP TABLE IF EXISTS {}.flows_raw", db));
  }
  store.query(ddl[2]);
  store.query(ddl[3]);
}

}  // namespace sluice::sinks
