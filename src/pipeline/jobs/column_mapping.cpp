// read_mapping_spec and ensure_mapped_table: a job's `mapping:` section, and its table made or checked.
#include "pipeline/jobs/column_mapping.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <stdexcept>

#include "pipeline/jobs/column_types.hpp"

namespace sluice::pipeline::jobs {
namespace {

bool plain_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c == '`' || c == '\'' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return false;
  }
  return true;
}

std::string quote_string(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

// The columns a table must have for a mapping on a dialect: name → type (a legacy Map is two).
std::vector<std::pair<std::string, std::string>> table_columns(const MappingSpec& mapping, ClickHouseDialect dialect) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& c : mapping.columns) {
    auto type = parse_column_type(c.type);
    if (!type) throw std::runtime_error("table " + mapping.table + ": column " + c.name + " has an unsupported type " + c.type);
    if (type->kind == ValueKind::map_string_string && dialect == ClickHouseDialect::legacy) {
      out.emplace_back(c.name + ".Key", "Array(String)");
      out.emplace_back(c.name + ".Value", "Array(String)");
    } else {
      out.emplace_back(c.name, type->table_type(dialect));
    }
  }
  return out;
}

// TabSeparated escapes: \t \n \\ and friends.
std::string unescape_tsv(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char n = s[++i];
    out += n == 't' ? '\t' : n == 'n' ? '\n' : n == '0' ? '\0' : n;
  }
  return out;
}

std::string create_sql(const std::string& database, const MappingSpec& m, ClickHouseDialect dialect) {
  std::string columns;
  for (const auto& [name, type] : table_columns(m, dialect)) {
    if (!columns.empty()) columns += ", ";
    columns += fmt::format("`{}` {}", name, type);
  }
  std::string sql = fmt::format("CREATE TABLE IF NOT EXISTS `{}`.`{}` ({}) ENGINE = {}", database, m.table, columns, m.engine);
  // Only the MergeTree family takes these clauses; Memory, Log and friends take none.
  if (m.engine.find("MergeTree") != std::string::npos) {
    if (!m.partition_by.empty()) sql += " PARTITION BY " + m.partition_by;
    sql += " ORDER BY ";
    if (m.order_by.empty()) {
      sql += "tuple()";
    } else {
      sql += "(";
      for (std::size_t i = 0; i < m.order_by.size(); ++i) sql += (i ? ", " : "") + m.order_by[i];
      sql += ")";
    }
    if (!m.ttl.empty()) sql += " TTL " + m.ttl;
  }
  return sql;
}

}  // namespace

MappingSpec read_mapping_spec(config::ConfigReader& reader) {
  MappingSpec m;
  m.table = reader.string("table", "");
  if (m.table.empty()) {
    reader.error("table", "is required: the ClickHouse table the job writes to");
  } else if (!plain_name(m.table)) {
    reader.error("table", fmt::format("\"{}\" cannot be a table name (no quotes, backslashes or control characters)",
                                      m.table));
  }
  auto columns = reader.list("columns");
  if (columns.empty()) reader.error("columns", "is required: at least one {name, type} column");
  std::map<std::string, std::size_t> seen;
  bool has_rest = false;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    auto& c = columns[i];
    ColumnSpec col;
    col.name = c.string("name", "");
    const std::string type_text = c.string("type", "");
    col.type = type_text;
    col.from = c.string("from", col.name);
    col.default_value = c.optional_string("default");
    col.required = c.boolean("required", false);
    c.finish();
    bool ok = true;
    if (col.name.empty()) {
      c.error("name", "is required");
      ok = false;
    } else if (!plain_name(col.name)) {
      c.error("name", fmt::format("\"{}\" cannot be a column name (no quotes, backslashes or control characters)",
                                  col.name));
      ok = false;
    } else if (auto [it, fresh] = seen.emplace(col.name, i); !fresh) {
      c.error("name", fmt::format("column \"{}\" is mapped twice (also columns[{}])", col.name, it->second));
      ok = false;
    }
    std::optional<ColumnType> type;
    if (type_text.empty()) {
      c.error("type", "is required");
      ok = false;
    } else if (type = parse_column_type(type_text); !type) {
      c.error("type", fmt::format("\"{}\" is not a supported type (supported: {})", type_text, supported_types_text()));
      ok = false;
    } else {
      col.type = type->name();
    }
    if (col.from == "*" && type) {
      if (type->kind != ValueKind::map_string_string) {
        c.error("from", fmt::format("\"*\" (every field no other column takes) needs a Map(String, String) column, "
                                    "not {}", type->name()));
        ok = false;
      } else if (has_rest) {
        c.error("from", "\"*\" is taken by another column already; only one column can take the other fields");
        ok = false;
      }
      has_rest = true;
    }
    if (col.required && col.default_value) {
      c.error("required", "a required column cannot have a default (which one should a missing field get?)");
      ok = false;
    }
    if (ok && col.default_value) {
      // The default converts like a field value: try it once now rather than on the first record.
      MappingSpec probe;
      probe.table = "probe";
      probe.columns.push_back({col.name, col.type, "\x01", col.default_value, false});
      auto writer = compile_mapping(probe, ClickHouseDialect::modern)->make_writer();
      if (auto rejection = writer->append(transforms::LogEvent{}, MessageMeta{})) {
        c.error("default", rejection->reason);
        ok = false;
      }
    }
    m.columns.push_back(std::move(col));
  }
  m.create = reader.boolean("create", true);
  m.engine = reader.string("engine", "MergeTree");
  m.order_by = reader.string_list("order_by");
  m.partition_by = reader.string("partition_by", "");
  m.ttl = reader.string("ttl", "");
  reader.finish();
  return m;
}

void ensure_mapped_table(sinks::Store& store, const MappingSpec& mapping) {
  const auto dialect = store.dialect();
  const std::string& db = store.database();
  const std::string where = db + "." + mapping.table;
  const auto wanted = table_columns(mapping, dialect);
  if (mapping.create) {
    if (dialect == ClickHouseDialect::legacy && !mapping.ttl.empty()) {
      throw std::runtime_error("table " + where + ": mapping.ttl needs ClickHouse 19.6 or later; " + store.describe() +
                               " is older (remove ttl, or create the table yourself)");
    }
    store.query(fmt::format("CREATE DATABASE IF NOT EXISTS `{}`", db), "TabSeparated");
    const auto sql = create_sql(db, mapping, dialect);
    try {
      store.query(sql, "TabSeparated");
    } catch (const sinks::StoreError& e) {
      if (e.retryable()) throw;
      throw sinks::StoreError("table " + where + " could not be created (" + sql + "): " + e.what(), false);
    }
  }
  const auto result = store.query(
      fmt::format("SELECT name, type FROM system.columns WHERE database = {} AND table = {}", quote_string(db),
                  quote_string(mapping.table)),
      "TabSeparated");
  std::map<std::string, std::string> have;
  std::string_view rest = result.data;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    const auto line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    const auto tab = line.find('\t');
    if (tab == std::string_view::npos) continue;
    have.emplace(unescape_tsv(line.substr(0, tab)), unescape_tsv(line.substr(tab + 1)));
  }
  if (have.empty()) {
    throw std::runtime_error("table " + where + " does not exist in " + store.describe() +
                             " and the mapping does not create it (mapping.create is false): create it, or set "
                             "create: true");
  }
  std::string problems;
  for (const auto& [name, type] : wanted) {
    auto it = have.find(name);
    std::string problem;
    if (it == have.end()) {
      problem = "column " + name + " is missing";
    } else if (!same_column_type(it->second, type)) {
      problem = "column " + name + " is " + it->second + " in the table, the mapping says " + type;
    } else {
      continue;
    }
    problems += (problems.empty() ? "" : "; ") + problem;
  }
  if (!problems.empty()) {
    throw std::runtime_error("table " + where + ": " + problems +
                             " (alter the table or the mapping; extra table columns are fine)");
  }
  spdlog::info("job table {} in {} has every mapped column ({})", where, store.describe(), wanted.size());
}

std::vector<std::string> table_sorting_columns(sinks::Store& store, const std::string& table) {
  std::string key;
  try {
    const auto r = store.query(fmt::format("SELECT sorting_key FROM system.tables WHERE database = {} AND name = {}",
                                           quote_string(store.database()), quote_string(table)),
                               "TabSeparated");
    key = unescape_tsv(std::string_view(r.data).substr(0, r.data.find('\n')));
  } catch (const sinks::StoreError&) {
    return {};  // a server without system.tables.sorting_key: its inserts are sorted by the server
  }
  std::vector<std::string> columns;
  std::string_view rest = key;
  // One column is reported in its tuple's parentheses: "(ts)".
  if (rest.size() >= 2 && rest.front() == '(' && rest.back() == ')' && rest.find('(', 1) == std::string_view::npos) {
    rest = rest.substr(1, rest.size() - 2);
  }
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.size() >= 2 && item.front() == '`' && item.back() == '`') item = item.substr(1, item.size() - 2);
    const bool plain = !item.empty() && std::all_of(item.begin(), item.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    });
    if (!plain) return {};  // toStartOfHour(ts) and the like: rows cannot be put in that order here
    columns.emplace_back(item);
  }
  return columns;
}

}  // namespace sluice::pipeline::jobs
