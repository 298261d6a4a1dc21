#include "sinks/spans_table.hpp"

#include <fmt/format.h>

#include "core/native_block.hpp"

namespace sluice::sinks {
namespace {

constexpr const char* kModernColumns =
    "`Timestamp` DateTime64(9) CODEC(Delta, ZSTD(1)), `TraceId` String CODEC(ZSTD(1)), `SpanId` String CODEC(ZSTD(1)), "
    "`ParentSpanId` String CODEC(ZSTD(1)), `TraceState` String CODEC(ZSTD(1)), `SpanName` LowCardinality(String), "
    "`SpanKind` LowCardinality(String), `ServiceName` LowCardinality(String), "
    "`ResourceAttributes` Map(LowCardinality(String), String), `ScopeName` String, `ScopeVersion` String, "
    "`SpanAttributes` Map(LowCardinality(String), String), `Duration` UInt64, `StatusCode` LowCardinality(String), "
    "`StatusMessage` String, "
    "`Events` Nested(`Timestamp` DateTime64(9), `Name` LowCardinality(String), "
    "`Attributes` Map(LowCardinality(String), String)), "
    "`Links` Nested(`TraceId` String, `SpanId` String, `TraceState` String, "
    "`Attributes` Map(LowCardinality(String), String)), "
    "INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1";

constexpr const char* kLegacyColumns =
    "`Timestamp` DateTime, `TimestampNs` UInt64, `TraceId` String, `SpanId` String, `ParentSpanId` String, "
    "`TraceState` String, `SpanName` String, `SpanKind` String, `ServiceName` String, "
    "`ResourceAttributes.Key` Array(String), `ResourceAttributes.Value` Array(String), `ScopeName` String, "
    "`ScopeVersion` String, `SpanAttributes.Key` Array(String), `SpanAttributes.Value` Array(String), "
    "`Duration` UInt64, `StatusCode` String, `StatusMessage` String, "
    "`Events.Timestamp` Array(UInt64), `Events.Name` Array(String), `Events.AttributeKeys` Array(Array(String)), "
    "`Events.AttributeValues` Array(Array(String)), `Links.TraceId` Array(String), `Links.SpanId` Array(String), "
    "`Links.TraceState` Array(String), `Links.AttributeKeys` Array(Array(String)), "
    "`Links.AttributeValues` Array(Array(String))";

void put_hex_string(std::string& out, std::span<const std::uint8_t> id) {
  char buf[32];
  static constexpr char kDigits[] = "0123456789abcdef";
  for (std::size_t i = 0; i < id.size(); ++i) {
    buf[2 * i] = kDigits[id[i] >> 4];
    buf[2 * i + 1] = kDigits[id[i] & 15];
  }
  put_native_string(out, {buf, id.size() * 2});
}

}  // namespace

std::vector<std::string> spans_table_ddl(const std::string& database, ClickHouseDialect dialect,
                                         const std::string& table, const std::string& ttl) {
  const bool modern = dialect == ClickHouseDialect::modern;
  std::string engine = modern ? "ENGINE = ReplacingMergeTree PARTITION BY toDate(Timestamp) "
                                "ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), TraceId, SpanId)"
                              : "ENGINE = ReplacingMergeTree PARTITION BY toDate(Timestamp) "
                                "ORDER BY (ServiceName, SpanName, Timestamp, TraceId, SpanId)";
  std::string index_engine = "ENGINE = MergeTree PARTITION BY toDate(Start) ORDER BY (TraceId, Start)";
  if (modern) {
    if (!ttl.empty()) {
      engine += " TTL toDateTime(Timestamp) + INTERVAL " + ttl;
      index_engine += " TTL toDateTime(Start) + INTERVAL " + ttl;
    }
    engine += " SETTINGS non_replicated_deduplication_window = 10000";
  }
  const std::string index = table + "_trace_id_ts";
  const char* time_type = modern ? "DateTime64(9)" : "DateTime";
  return {
      fmt::format("CREATE DATABASE IF NOT EXISTS `{}`", database),
      fmt::format("CREATE TABLE IF NOT EXISTS `{}`.`{}` ({}) {}", database, table,
                  modern ? kModernColumns : kLegacyColumns, engine),
      fmt::format("CREATE TABLE IF NOT EXISTS `{0}`.`{1}` (`TraceId` String, `Start` {2}, `End` {2}) {3}", database,
                  index, time_type, index_engine),
      fmt::format("CREATE MATERIALIZED VIEW IF NOT EXISTS `{0}`.`{1}_mv` TO `{0}`.`{1}` AS SELECT TraceId, "
                  "min(Timestamp) AS Start, max(Timestamp) AS End FROM `{0}`.`{2}` GROUP BY TraceId",
                  database, index, table),
  };
}

void ensure_spans_tables(Store& store, const std::string& table, const std::string& ttl) {
  for (const auto& sql : spans_table_ddl(store.database(), store.dialect(), table, ttl)) {
    store.query(sql, "TabSeparated");
  }
}

std::string spans_by_trace_sql(const std::string& database, const std::string& table, ClickHouseDialect dialect,
                               const std::string& trace_hex, const std::string& select) {
  // The trace id is validated by the caller's format (hex); quote it anyway.
  std::string quoted;
  for (char c : trace_hex) {
    if (c == '\'' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return fmt::format(
      "SELECT {0} FROM `{1}`.`{2}` WHERE TraceId = '{3}' AND Timestamp >= (SELECT min(Start) FROM `{1}`.`{2}_trace_id_ts` "
      "WHERE TraceId = '{3}') AND Timestamp <= (SELECT max(End) FROM `{1}`.`{2}_trace_id_ts` WHERE TraceId = '{3}') "
      "ORDER BY {4}, SpanId",
      select, database, table, quoted, dialect == ClickHouseDialect::modern ? "Timestamp" : "TimestampNs");
}

void SpansBlock::put_map(const spans::Attributes& attrs, std::string& off, std::string& keys, std::string& values,
                         std::uint64_t& total) {
  for (const auto& a : attrs) {
    put_native_string(keys, a.key);
    put_native_string(values, a.value);
  }
  total += attrs.size();
  put_native_fixed(off, total);
}

void SpansBlock::append(const spans::Span& s) {
  const bool modern = dialect_ == ClickHouseDialect::modern;
  if (modern) {
    put_native_fixed(b_.ts, static_cast<std::int64_t>(s.start_ns));
  } else {
    put_native_fixed(b_.ts, static_cast<std::uint32_t>(s.start_ns / 1'000'000'000ULL));
    put_native_fixed(b_.ts_ns, s.start_ns);
  }
  put_hex_string(b_.trace, s.trace_id);
  put_hex_string(b_.span, s.span_id);
  if (s.has_parent) put_hex_string(b_.parent, s.parent_span_id);
  else put_native_string(b_.parent, "");
  put_native_string(b_.state, s.trace_state);
  put_native_string(b_.name, s.name);
  put_native_string(b_.kind, spans::to_string(s.kind));
  put_native_string(b_.service, s.service_name);
  put_map(s.resource_attributes, b_.res_off, b_.res_key, b_.res_val, res_total_);
  put_native_string(b_.scope_name, s.scope_name);
  put_native_string(b_.scope_version, s.scope_version);
  put_map(s.attributes, b_.attr_off, b_.attr_key, b_.attr_val, attr_total_);
  put_native_fixed(b_.duration, s.duration_ns());
  put_native_string(b_.status_code, spans::to_string(s.status_code));
  put_native_string(b_.status_message, s.status_message);
  for (const auto& e : s.events) {
    if (modern) put_native_fixed(b_.ev_ts, static_cast<std::int64_t>(e.time_ns));
    else put_native_fixed(b_.ev_ts, e.time_ns);
    put_native_string(b_.ev_name, e.name);
    put_map(e.attributes, b_.ev_attr_off, b_.ev_attr_key, b_.ev_attr_val, ev_attr_total_);
  }
  ev_total_ += s.events.size();
  put_native_fixed(b_.ev_off, ev_total_);
  for (const auto& l : s.links) {
    put_hex_string(b_.ln_trace, l.trace_id);
    put_hex_string(b_.ln_span, l.span_id);
    put_native_string(b_.ln_state, l.trace_state);
    put_map(l.attributes, b_.ln_attr_off, b_.ln_attr_key, b_.ln_attr_val, ln_attr_total_);
  }
  ln_total_ += s.links.size();
  put_native_fixed(b_.ln_off, ln_total_);
  ++rows_;
}

std::size_t SpansBlock::bytes() const {
  std::size_t n = 0;
  for (const std::string* s :
       {&b_.ts, &b_.ts_ns, &b_.trace, &b_.span, &b_.parent, &b_.state, &b_.name, &b_.kind, &b_.service, &b_.scope_name,
        &b_.scope_version, &b_.duration, &b_.status_code, &b_.status_message, &b_.res_off, &b_.res_key, &b_.res_val,
        &b_.attr_off, &b_.attr_key, &b_.attr_val, &b_.ev_off, &b_.ev_ts, &b_.ev_name, &b_.ev_attr_off, &b_.ev_attr_key,
        &b_.ev_attr_val, &b_.ln_off, &b_.ln_trace, &b_.ln_span, &b_.ln_state, &b_.ln_attr_off, &b_.ln_attr_key,
        &b_.ln_attr_val}) {
    n += s->size();
  }
  return n;
}

std::string SpansBlock::take() {
  const bool modern = dialect_ == ClickHouseDialect::modern;
  std::string out;
  out.reserve(bytes() + 2048);
  put_varint(out, modern ? 22 : 27);
  put_varint(out, rows_);
  auto column = [&out](std::string_view name, std::string_view type, std::initializer_list<const std::string*> parts) {
    put_native_column_header(out, name, type);
    for (const auto* p : parts) out += *p;
  };
  column("Timestamp", modern ? "DateTime64(9)" : "DateTime", {&b_.ts});
  if (!modern) column("TimestampNs", "UInt64", {&b_.ts_ns});
  column("TraceId", "String", {&b_.trace});
  column("SpanId", "String", {&b_.span});
  column("ParentSpanId", "String", {&b_.parent});
  column("TraceState", "String", {&b_.state});
  column("SpanName", "String", {&b_.name});
  column("SpanKind", "String", {&b_.kind});
  column("ServiceName", "String", {&b_.service});
  put_native_string_map(out, "ResourceAttributes", modern, b_.res_off, b_.res_key, b_.res_val);
  column("ScopeName", "String", {&b_.scope_name});
  column("ScopeVersion", "String", {&b_.scope_version});
  put_native_string_map(out, "SpanAttributes", modern, b_.attr_off, b_.attr_key, b_.attr_val);
  column("Duration", "UInt64", {&b_.duration});
  column("StatusCode", "String", {&b_.status_code});
  column("StatusMessage", "String", {&b_.status_message});
  // Nested columns are arrays sharing the row offsets; Array(Map) and Array(Array) add the per-element
  // offsets after them.
  column("Events.Timestamp", modern ? "Array(DateTime64(9))" : "Array(UInt64)", {&b_.ev_off, &b_.ev_ts});
  column("Events.Name", "Array(String)", {&b_.ev_off, &b_.ev_name});
  if (modern) {
    column("Events.Attributes", "Array(Map(String, String))",
           {&b_.ev_off, &b_.ev_attr_off, &b_.ev_attr_key, &b_.ev_attr_val});
  } else {
    column("Events.AttributeKeys", "Array(Array(String))", {&b_.ev_off, &b_.ev_attr_off, &b_.ev_attr_key});
    column("Events.AttributeValues", "Array(Array(String))", {&b_.ev_off, &b_.ev_attr_off, &b_.ev_attr_val});
  }
  column("Links.TraceId", "Array(String)", {&b_.ln_off, &b_.ln_trace});
  column("Links.SpanId", "Array(String)", {&b_.ln_off, &b_.ln_span});
  column("Links.TraceState", "Array(String)", {&b_.ln_off, &b_.ln_state});
  if (modern) {
    column("Links.Attributes", "Array(Map(String, String))",
           {&b_.ln_off, &b_.ln_attr_off, &b_.ln_attr_key, &b_.ln_attr_val});
  } else {
    column("Links.AttributeKeys", "Array(Array(String))", {&b_.ln_off, &b_.ln_attr_off, &b_.ln_attr_key});
    column("Links.AttributeValues", "Array(Array(String))", {&b_.ln_off, &b_.ln_attr_off, &b_.ln_attr_val});
  }
  for (std::string* s :
       {&b_.ts, &b_.ts_ns, &b_.trace, &b_.span, &b_.parent, &b_.state, &b_.name, &b_.kind, &b_.service, &b_.scope_name,
        &b_.scope_version, &b_.duration, &b_.status_code, &b_.status_message, &b_.res_off, &b_.res_key, &b_.res_val,
        &b_.attr_off, &b_.attr_key, &b_.attr_val, &b_.ev_off, &b_.ev_ts, &b_.ev_name, &b_.ev_attr_off, &b_.ev_attr_key,
        &b_.ev_attr_val, &b_.ln_off, &b_.ln_trace, &b_.ln_span, &b_.ln_state, &b_.ln_attr_off, &b_.ln_attr_key,
        &b_.ln_attr_val}) {
    s->clear();
  }
  rows_ = 0;
  res_total_ = attr_total_ = ev_total_ = ev_attr_total_ = ln_total_ = ln_attr_total_ = 0;
  return out;
}

}  // namespace sluice::sinks
