// The layout of the flow schema: which tables and views exist, with which columns, engines and keys.
#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "sinks/flow_tables.hpp"

namespace sluice::sinks {
namespace {

const FlowColumnSpec& column(const char* name) {
  for (const auto& c : flow_columns()) {
    if (std::string_view(c.name) == name) return c;
  }
  throw std::logic_error(std::string("no flow column ") + name);
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::string joined(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

std::string ttl_clause(const FlowSchema& schema, const std::string& ttl) {
  // 18.16 has no TTL at all; ensure_flow_tables warns about it.
  if (ttl.empty() || schema.dialect == ClickHouseDialect::legacy) return "";
  return "TimeReceived + INTERVAL " + ttl;
}

struct Naming {
  const FlowTablesConfig& config;
  const std::string& db;
  bool cluster() const { return !config.cluster.empty(); }
  // Where rows are stored (and where views on storage read and write).
  std::string storage(const std::string& name) const { return cluster() ? name + "_local" : name; }
  std::string engine(const std::string& family, const std::string& table, const std::string& args) const {
    if (!cluster() || !config.replicated) return args.empty() ? family : fmt::format("{}({})", family, args);
    const auto path = fmt::format("'/clickhouse/tables/{{shard}}/{}/{}', '{{replica}}'", db, table);
    return fmt::format("Replicated{}({}{}{})", family, path, args.empty() ? "" : ", ", args);
  }
  std::string settings(const FlowSchema& schema, bool dedup) const {
    std::string s = "index_granularity = 8192";
    if (dedup && schema.dialect == ClickHouseDialect::modern) {
      s += fmt::format(", {}deduplication_window = {}", cluster() && config.replicated ? "replicated_" : "non_replicated_",
                       config.dedup_window);
    }
    return s;
  }
};

// The Distributed table carrying a storage table's public name in cluster mode.
FlowTableSpec distributed_over(const FlowTableSpec& local, const std::string& name, const Naming& n) {
  FlowTableSpec d;
  d.name = name;
  d.role = FlowTableSpec::Role::distributed;
  d.columns = local.columns;
  d.engine = fmt::format("Distributed({}, {}, {}, rand())", n.config.cluster, n.db, local.name);
  return d;
}

}  // namespace

std::vector<std::string> rollup_dimensions(const FlowSchema& schema) {
  static const char* const kCore[] = {
      "TimeReceived",    "SamplingRate",     "ExporterAddress",   "ExporterName",     "ExporterGroup",
      "ExporterRole",    "ExporterSite",     "ExporterRegion",    "ExporterTenant",   "SrcAS",
      "DstAS",           "SrcNetName",       "DstNetName",        "SrcNetRole",       "DstNetRole",
      "SrcNetSite",      "DstNetSite",       "SrcNetRegion",      "DstNetRegion",     "SrcNetTenant",
      "DstNetTenant",    "SrcCountry",       "DstCountry",        "InIf",             "OutIf",
      "InIfName",        "OutIfName",        "InIfDescription",   "OutIfDescription", "InIfSpeed",
      "OutIfSpeed",      "InIfConnectivity", "OutIfConnectivity", "InIfProvider",     "OutIfProvider",
      "InIfBoundary",    "OutIfBoundary",    "EType",             "Proto",            "ForwardingStatus",
      "FlowDirection",   "SrcVlan",          "DstVlan"};
  std::vector<std::string> out;
  for (const auto* c : schema.columns) {
    if (std::find_if(std::begin(kCore), std::end(kCore), [&](const char* n) { return std::string_view(n) == c->name; }) !=
        std::end(kCore)) {
      out.emplace_back(c->name);
    }
  }
  return out;
}

FlowTablesPlan plan_flow_tables(const FlowSchema& schema, const std::string& db, const FlowTablesConfig& config) {
  const Naming n{config, db};
  const bool legacy = schema.dialect == ClickHouseDialect::legacy;
  FlowTablesPlan plan;
  plan.database = db;
  if (n.cluster() && config.replicated) plan.on_cluster = " ON CLUSTER " + config.cluster;

  // flows: every column, stored.
  FlowTableSpec flows;
  flows.name = n.storage("flows");
  flows.role = FlowTableSpec::Role::flows;
  for (const auto* c : schema.columns) flows.columns.emplace_back(c->name, schema.table_type(*c));
  flows.engine = n.engine("MergeTree", flows.name, "");
  flows.partition_by = config.partition_by.empty() ? "toYYYYMMDD(TimeReceived)" : config.partition_by;
  flows.order_by = config.order_by.empty()
                       ? std::vector<std::string>{"toStartOfFiveMinute(TimeReceived)", "ExporterAddress", "InIf", "OutIf"}
                       : config.order_by;
  flows.ttl = ttl_clause(schema, config.ttl);
  flows.settings = n.settings(schema, true);

  FlowTableSpec raw;
  raw.name = "flows_raw";
  raw.role = FlowTableSpec::Role::raw;
  for (const auto* c : schema.columns) raw.columns.emplace_back(c->name, schema.wire_type(*c));
  raw.engine = "Null";

  plan.tables.push_back(flows);
  if (n.cluster()) plan.tables.push_back(distributed_over(flows, "flows", n));
  plan.tables.push_back(raw);
  plan.views.push_back({"flows_raw_consumer", "flows_raw", "flows", {}, {}, {}});
  for (const auto& [name, type] : raw.columns) plan.views.back().columns.push_back(name);
  {
    std::vector<std::string> quoted;
    for (const auto& c : plan.views.back().columns) quoted.push_back("`" + c + "`");
    plan.views.back().select = fmt::format("SELECT {} FROM {}.flows_raw", joined(quoted), db);
  }

  // Modern servers cascade views: an insert into flows (by flows_raw_consumer or anyone) fires the
  // views on flows, and a deduplicated insert is deduplicated in the rollups too. 18.16 does not
  // fire views on a view's target table, so there the rollups and exporters read flows_raw, which is
  // the only way rows reach flows.
  const std::string feed = legacy ? "flows_raw" : n.storage("flows");
  auto into = [&](const std::string& name) { return legacy ? name : n.storage(name); };

  const auto dims = rollup_dimensions(schema);
  struct Rollup {
    const char* name;
    const char* bucket;
    const char* partition;
    const std::string& ttl;
  };
  const Rollup rollups[] = {{"flows_1m", "toStartOfMinute", "toYYYYMMDD(TimeReceived)", config.ttl_1m},
                            {"flows_5m", "toStartOfFiveMinute", "toYYYYMM(TimeReceived)", config.ttl_5m},
                            {"flows_1h", "toStartOfHour", "toYYYYMM(TimeReceived)", config.ttl_1h}};
  for (const auto& r : rollups) {
    FlowTableSpec t;
    t.name = n.storage(r.name);
    t.role = FlowTableSpec::Role::rollup;
    for (const auto* c : schema.columns) {
      if (has(dims, c->name) || std::string_view(c->name) == "Bytes" || std::string_view(c->name) == "Packets") {
        t.columns.emplace_back(c->name, schema.table_type(*c));
      }
    }
    t.engine = n.engine("SummingMergeTree", t.name, "(Bytes, Packets)");
    t.partition_by = r.partition;
    // The sorting key holds every dimension (summing merges rows with equal keys); the primary
    // index only its selective prefix.
    t.primary_key = "TimeReceived, ExporterAddress, InIf, OutIf";
    t.order_by = {"TimeReceived", "ExporterAddress", "InIf", "OutIf"};
    for (const auto& d : dims) {
      if (!has(t.order_by, d)) t.order_by.push_back(d);
    }
    t.ttl = ttl_clause(schema, r.ttl);
    t.settings = n.settings(schema, true);
    plan.tables.push_back(t);
    if (n.cluster()) plan.tables.push_back(distributed_over(t, r.name, n));

    FlowViewSpec v{std::string(r.name) + "_consumer", feed, into(r.name), {}, {}, {}};
    // The bucket keeps the column's name, so the GROUP BY on TimeReceived groups by the bucket.
    std::string select = fmt::format("SELECT {}(TimeReceived) AS TimeReceived", r.bucket);
    for (const auto& d : dims) {
      if (d != "TimeReceived") select += ", " + d;
    }
    select += ", sum(Bytes) AS Bytes, sum(Packets) AS Packets";
    v.columns = dims;
    v.columns.insert(v.columns.end(), {"Bytes", "Packets"});
    v.select = fmt::format("{} FROM {}.{} GROUP BY {}", select, db, feed, joined(dims));
    v.backfill = fmt::format("INSERT INTO {0}.{1} ({2}) {3} FROM {0}.flows GROUP BY {4}", db, r.name, joined(v.columns), select,
                             joined(dims));
    plan.views.push_back(std::move(v));
  }

  // exporters: one row per exporter and interface index, the latest metadata winning.
  FlowTableSpec ex;
  ex.name = n.storage("exporters");
  ex.role = FlowTableSpec::Role::exporters;
  const char* const kExporter[] = {"TimeReceived", "ExporterAddress", "ExporterName",   "ExporterGroup",
                                   "ExporterRole", "ExporterSite",    "ExporterRegion", "ExporterTenant"};
  const char* const kIf[] = {"", "Name", "Description", "Speed", "Connectivity", "Provider", "Boundary"};
  for (const auto* name : kExporter) ex.columns.emplace_back(name, schema.table_type(column(name)));
  for (const auto* suffix : kIf) {
    const std::string in = std::string("InIf") + suffix;
    ex.columns.emplace_back(std::string("If") + (*suffix ? suffix : "Index"), schema.table_type(column(in.c_str())));
  }
  ex.engine = n.engine("ReplacingMergeTree", ex.name, "TimeReceived");
  ex.order_by = {"ExporterAddress", "IfIndex"};
  ex.settings = n.settings(schema, false);
  plan.tables.push_back(ex);
  if (n.cluster()) plan.tables.push_back(distributed_over(ex, "exporters", n));

  for (const char* side : {"In", "Out"}) {
    FlowViewSpec v{fmt::format("exporters_{}_consumer", side == std::string_view("In") ? "in" : "out"), feed,
                   into("exporters"), {}, {}, {}};
    std::vector<std::string> select{"max(TimeReceived) AS TimeReceived"}, group;
    for (const auto* name : kExporter) {
      if (std::string_view(name) == "TimeReceived") continue;
      select.emplace_back(name);
      group.emplace_back(name);
    }
    for (const auto* suffix : kIf) {
      const std::string from = fmt::format("{}If{}", side, suffix);
      select.push_back(fmt::format("{} AS If{}", from, *suffix ? suffix : "Index"));
      group.push_back(from);
    }
    for (const auto& [name, type] : ex.columns) v.columns.push_back(name);
    v.select = fmt::format("SELECT {} FROM {}.{} GROUP BY {}", joined(select), db, feed, joined(group));
    // INSERT ... SELECT matches columns by position: name them.
    v.backfill = fmt::format("INSERT INTO {0}.exporters ({1}) SELECT {2} FROM {0}.flows GROUP BY {3}", db, joined(v.columns),
                             joined(select), joined(group));
    plan.views.push_back(std::move(v));
  }
  return plan;
}

std::string create_table_sql(const FlowTablesPlan& plan, const FlowTableSpec& t) {
  std::string cols;
  for (const auto& [name, type] : t.columns) {
    if (!cols.empty()) cols += ",\n  ";
    cols += fmt::format("`{}` {}", name, type);
  }
  std::string sql = fmt::format("CREATE TABLE IF NOT EXISTS {}.{}{} (\n  {}\n) ENGINE = {}", plan.database, t.name,
                                plan.on_cluster, cols, t.engine);
  if (!t.partition_by.empty()) sql += "\nPARTITION BY " + t.partition_by;
  if (!t.primary_key.empty()) sql += "\nPRIMARY KEY (" + t.primary_key + ")";
  if (!t.order_by.empty()) sql += "\nORDER BY (" + joined(t.order_by) + ")";
  if (!t.ttl.empty()) sql += "\nTTL " + t.ttl;
  if (!t.settings.empty()) sql += "\nSETTINGS " + t.settings;
  return sql;
}

std::string create_view_sql(const FlowTablesPlan& plan, const FlowViewSpec& v) {
  return fmt::format("CREATE MATERIALIZED VIEW IF NOT EXISTS {0}.{1}{2} TO {0}.{3} AS {4}", plan.database, v.name,
                     plan.on_cluster, v.target, v.select);
}

std::vector<std::string> flow_tables_ddl(const FlowSchema& schema, const std::string& db, const FlowTablesConfig& config) {
  const auto plan = plan_flow_tables(schema, db, config);
  std::vector<std::string> ddl;
  ddl.push_back(fmt::format("CREATE DATABASE IF NOT EXISTS {}{}", db, plan.on_cluster));
  for (const auto& t : plan.tables) ddl.push_back(create_table_sql(plan, t));
  for (const auto& v : plan.views) ddl.push_back(create_view_sql(plan, v));
  return ddl;
}

}  // namespace sluice::sinks
