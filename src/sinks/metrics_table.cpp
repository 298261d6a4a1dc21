#include "sinks/metrics_table.hpp"

#include <fmt/format.h>


#include "core/native_block.hpp"

namespace sluice::sinks {
std::vector<std::string> metrics_table_ddl(const std::string& database, ClickHouseDialect dialect,
                                           const std::string& ttl) {
  const bool modern = dialect == ClickHouseDialect::modern;
  const std::string tags = modern ? "`Tags` Map(String, String)" : "`Tags.Key` Array(String), `Tags.Value` Array(String)";
  const std::string lc = modern ? "LowCardinality(String)" : "String";
  std::string engine;
  if (modern) {
    engine = "ENGINE = MergeTree PARTITION BY toYYYYMMDD(Timestamp) ORDER BY (Metric, Endpoint, Timestamp)";
    if (!ttl.empty()) engine += " TTL Timestamp + INTERVAL " + ttl;
    engine += " SETTINGS non_replicated_deduplication_window = 10000";
  } else {
    // No TTL before ClickHouse 19.6: old servers keep metrics until partitions are dropped.
    engine = "ENGINE = MergeTree PARTITION BY toYYYYMMDD(Timestamp) ORDER BY (Metric, Endpoint, Timestamp)";
  }
  return {
      fmt::format("CREATE DATABASE IF NOT EXISTS `{}`", database),
      fmt::format("CREATE TABLE IF NOT EXISTS `{}`.metrics (`Timestamp` DateTime, `Endpoint` {}, `Metric` {}, {}, "
                  "`Step` UInt32, `CounterType` Enum8('GAUGE' = 0, 'COUNTER' = 1, 'DERIVE' = 2), `Value` Float64, "
                  "`Origin` Enum8('falcon' = 1, 'graphite' = 2)) {}",
                  database, lc, lc, tags, engine),
  };
}

void ensure_metrics_table(Store& store, const std::string& ttl) {
  for (const auto& sql : metrics_table_ddl(store.database(), store.dialect(), ttl)) store.query(sql, "TabSeparated");
}

void MetricsBlock::append(const MetricView& m) {
  put_native_fixed(timestamps_, static_cast<std::uint32_t>(m.timestamp));
  put_native_string(endpoints_, m.endpoint);
  put_native_string(metrics_, m.metric);
  put_native_fixed(steps_, static_cast<std::uint32_t>(m.step > 0 ? m.step : 0));
  put_native_fixed(types_, static_cast<std::int8_t>(m.counter_type));
  put_native_fixed(values_, m.value);
  put_native_fixed(origins_, static_cast<std::int8_t>(m.origin));
  std::string_view tags = m.tags;
  while (!tags.empty()) {
    const auto comma = tags.find(',');
    const auto pair = tags.substr(0, comma);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos) {
      put_native_string(tag_keys_, pair.substr(0, eq));
      put_native_string(tag_values_, pair.substr(eq + 1));
      ++tags_total_;
    }
    if (comma == std::string_view::npos) break;
    tags.remove_prefix(comma + 1);
  }
  put_native_fixed(tag_offsets_, tags_total_);
  ++rows_;
}

std::string MetricsBlock::take() {
  const bool modern = dialect_ == ClickHouseDialect::modern;
  std::string out;
  put_varint(out, modern ? 8 : 9);
  put_varint(out, rows_);
  const std::string lc = "String";  // LowCardinality columns accept plain String input
  put_native_column_header(out, "Timestamp", "DateTime");
  out += timestamps_;
  put_native_column_header(out, "Endpoint", lc);
  out += endpoints_;
  put_native_column_header(out, "Metric", lc);
  out += metrics_;
  put_native_string_map(out, "Tags", modern, tag_offsets_, tag_keys_, tag_values_);
  put_native_column_header(out, "Step", "UInt32");
  out += steps_;
  put_native_column_header(out, "CounterType", "Enum8('GAUGE' = 0, 'COUNTER' = 1, 'DERIVE' = 2)");
  out += types_;
  put_native_column_header(out, "Value", "Float64");
  out += values_;
  put_native_column_header(out, "Origin", "Enum8('falcon' = 1, 'graphite' = 2)");
  out += origins_;
  for (auto* s : {&timestamps_, &endpoints_, &metrics_, &steps_, &types_, &values_, &origins_, &tag_offsets_, &tag_keys_,
                  &tag_values_}) {
    s->clear();
  }
  rows_ = 0;
  tags_total_ = 0;
  return out;
}

}  // namespace sluice::sinks
