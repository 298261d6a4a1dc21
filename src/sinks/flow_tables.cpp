// Creating and migrating the flow schema in place: tables gain columns, views are recreated, data stays.
#include "sinks/flow_tables.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

namespace sluice::sinks {
namespace {

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

std::set<std::string> existing_columns(Store& store, const std::string& db, const std::string& table) {
  const auto r = store.query(fmt::format("SELECT name FROM system.columns WHERE database = '{}' AND table = '{}'", db, table));
  const auto names = lines(r.data);
  return {names.begin(), names.end()};
}

std::string sorting_key(Store& store, const std::string& db, const std::string& table) {
  const auto r = store.query(fmt::format("SELECT sorting_key FROM system.tables WHERE database = '{}' AND name = '{}'", db, table));
  auto v = lines(r.data);
  return v.empty() ? std::string() : v.front();
}

std::string without_spaces(std::string s) {
  s.erase(std::remove_if(s.begin(), s.end(), [](char c) { return c == ' ' || c == '`'; }), s.end());
  return s;
}

void warn_about_unsupported(const FlowSchema& schema, const FlowTablesConfig& config) {
  if (schema.dialect != ClickHouseDialect::legacy) return;
  for (const auto* ttl : {&config.ttl, &config.ttl_1m, &config.ttl_5m, &config.ttl_1h}) {
    if (!ttl->empty()) {
      spdlog::warn("schema: this ClickHouse server is too old for TTL (needs 19.6 or later): tables keep their rows "
                   "until dropped by hand (ALTER TABLE ... DROP PARTITION); the configured TTLs are ignored");
      return;
    }
  }
}

// Adds the table's missing columns. Rollups sort by every dimension, so a new dimension joins the
// sorting key in the same statement: otherwise summing would merge rows that differ in it.
bool add_missing_columns(Store& store, const FlowTablesPlan& plan, const FlowTableSpec& t,
                         const std::set<std::string>& existing) {
  std::vector<std::string> clauses, new_keys;
  for (const auto& [name, type] : t.columns) {
    if (existing.count(name)) continue;
    spdlog::info("schema: adding column {} {} to {}.{}", name, type, plan.database, t.name);
    clauses.push_back(fmt::format("ADD COLUMN `{}` {}", name, type));
    if (t.role == FlowTableSpec::Role::rollup && std::find(t.order_by.begin(), t.order_by.end(), name) != t.order_by.end()) {
      new_keys.push_back("`" + name + "`");
    }
  }
  if (clauses.empty()) return false;
  std::string sql = fmt::format("ALTER TABLE {}.{}{} ", plan.database, t.name, plan.on_cluster);
  for (std::size_t i = 0; i < clauses.size(); ++i) sql += (i ? ", " : "") + clauses[i];
  if (!new_keys.empty()) {
    std::string key = sorting_key(store, plan.database, t.name);
    for (const auto& k : new_keys) key += (key.empty() ? "" : ", ") + k;
    sql += ", MODIFY ORDER BY (" + key + ")";
  }
  store.query(sql);
  return true;
}

// "TimeReceived + INTERVAL 30 DAY" as modern servers print it back: "TimeReceived + toIntervalDay(30)".
std::string server_ttl_form(const std::string& ttl) {
  const std::string prefix = "TimeReceived + INTERVAL ";
  if (ttl.rfind(prefix, 0) != 0) return ttl;
  std::istringstream in(ttl.substr(prefix.size()));
  std::string n, unit;
  in >> n >> unit;
  for (std::size_t i = 1; i < unit.size(); ++i) unit[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(unit[i])));
  return fmt::format("TimeReceived + toInterval{}({})", unit, n);
}

// A changed TTL is applied to existing tables (modern servers; the server rewrites parts in the
// background to drop what the new TTL expires).
void update_ttl(Store& store, const FlowTablesPlan& plan, const FlowTableSpec& t) {
  const auto q = store.query(fmt::format("SELECT create_table_query FROM system.tables WHERE database = '{}' AND name = '{}'",
                                         plan.database, t.name)).data;
  std::string have;
  if (const auto at = q.find(" TTL "); at != std::string::npos) {
    const auto end = q.find(" SETTINGS ", at);
    have = q.substr(at + 5, end == std::string::npos ? std::string::npos : end - at - 5);
    while (!have.empty() && (have.back() == '\n' || have.back() == ' ')) have.pop_back();
  }
  const auto want = server_ttl_form(t.ttl);
  if (have == want) return;
  spdlog::info("schema: {}.{} TTL changes from '{}' to '{}'", plan.database, t.name, have.empty() ? "none" : have,
               want.empty() ? "none" : want);
  if (want.empty()) {
    store.query(fmt::format("ALTER TABLE {}.{}{} REMOVE TTL", plan.database, t.name, plan.on_cluster));
  } else {
    store.query(fmt::format("ALTER TABLE {}.{}{} MODIFY TTL {}", plan.database, t.name, plan.on_cluster, t.ttl));
  }
}

void drop_view(Store& store, const FlowTablesPlan& plan, const std::string& name) {
  store.query(fmt::format("DROP TABLE IF EXISTS {}.{}{}", plan.database, name, plan.on_cluster));
}

}  // namespace

void ensure_flow_tables(Store& store, const FlowSchema& schema, const FlowTablesConfig& config) {
  const auto& db = store.database();
  const auto plan = plan_flow_tables(schema, db, config);
  warn_about_unsupported(schema, config);
  store.query(fmt::format("CREATE DATABASE IF NOT EXISTS {}{}", db, plan.on_cluster));

  std::set<std::string> changed;  // tables created, rebuilt or altered: their views are recreated
  std::set<std::string> created;
  std::set<std::string> dropped_views;
  for (const auto& t : plan.tables) {
    const auto existing = existing_columns(store, db, t.name);
    if (existing.empty()) {
      spdlog::info("schema: creating {}.{}", db, t.name);
      store.query(create_table_sql(plan, t));
      changed.insert(t.name);
      created.insert(t.name);
      continue;
    }
    if (t.role == FlowTableSpec::Role::raw) {
      // flows_raw (Null engine) holds nothing: a different column list is simply rebuilt, after the
      // views reading it.
      std::set<std::string> wanted;
      for (const auto& c : t.columns) wanted.insert(c.first);
      if (existing == wanted) continue;
      spdlog::info("schema: rebuilding {0}.{1} and the views reading it for the new column list", db, t.name);
      for (const auto& v : plan.views) {
        if (v.source == t.name) {
          drop_view(store, plan, v.name);
          dropped_views.insert(v.name);
        }
      }
      store.query(fmt::format("DROP TABLE IF EXISTS {}.{}{}", db, t.name, plan.on_cluster));
      store.query(create_table_sql(plan, t));
      changed.insert(t.name);
      continue;
    }
    if (t.role == FlowTableSpec::Role::flows && !t.order_by.empty()) {
      std::string want;
      for (const auto& k : t.order_by) want += (want.empty() ? "" : ",") + k;
      const auto have = sorting_key(store, db, t.name);
      if (without_spaces(have) != without_spaces(want)) {
        spdlog::warn("schema: {}.{} is sorted by ({}), not by the configured ({}); a sorting key cannot change in "
                     "place: the table keeps its key (create a new table and INSERT ... SELECT to change it)",
                     db, t.name, have, want);
      }
    }
    if (add_missing_columns(store, plan, t, existing)) changed.insert(t.name);
    if (schema.dialect == ClickHouseDialect::modern &&
        (t.role == FlowTableSpec::Role::flows || t.role == FlowTableSpec::Role::rollup)) {
      update_ttl(store, plan, t);
    }
  }

  for (const auto& v : plan.views) {
    const auto existing = existing_columns(store, db, v.name);
    const std::set<std::string> wanted(v.columns.begin(), v.columns.end());
    const bool missing = existing.empty();
    if (!missing && existing == wanted && !changed.count(v.source) && !changed.count(v.target)) continue;
    const bool recreate = !missing || dropped_views.count(v.name);
    spdlog::info("schema: {} view {}.{} ({} → {})", recreate ? "recreating" : "creating", db, v.name, v.source, v.target);
    if (!missing) drop_view(store, plan, v.name);
    // A table added next to an existing flows table starts with what flows holds. Before the view
    // exists, so no row is counted twice (the outlet inserts only once the schema is ready).
    const bool flows_existed = std::any_of(plan.tables.begin(), plan.tables.end(), [&](const FlowTableSpec& t) {
      return t.role == FlowTableSpec::Role::flows && !created.count(t.name);
    });
    if (!v.backfill.empty() && created.count(v.target) && flows_existed) {
      spdlog::info("schema: filling the new {}.{} from the rows already in {}.flows", db, v.target, db);
      store.query(v.backfill);
    }
    store.query(create_view_sql(plan, v));
  }
}

}  // namespace sluice::sinks
