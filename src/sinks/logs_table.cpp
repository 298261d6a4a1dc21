#include "sinks/logs_table.hpp"

#include <fmt/format.h>


#include "core/native_block.hpp"

namespace sluice::sinks {
std::vector<std::string> logs_table_ddl(const std::string& database, ClickHouseDialect dialect,
                                        const std::string& table, const std::string& ttl) {
  const bool modern = dialect == ClickHouseDialect::modern;
  std::string columns;
  if (modern) {
    columns =
        "`Timestamp` DateTime64(3), `Host` LowCardinality(String), `Path` LowCardinality(String), `FileId` UInt64, "
        "`Offset` UInt64, `Message` String, `Fields` Map(String, String)";
  } else {
    columns =
        "`Timestamp` DateTime, `Host` String, `Path` String, `FileId` UInt64, `Offset` UInt64, `Message` String, "
        "`Fields.Key` Array(String), `Fields.Value` Array(String)";
  }
  // No time partitioning: a line read twice may carry two read times, and only rows of one partition
  // are merged into one.
  std::string engine = "ENGINE = ReplacingMergeTree ORDER BY (Host, Path, FileId, Offset)";
  if (modern) {
    if (!ttl.empty()) engine += " TTL toDateTime(Timestamp) + INTERVAL " + ttl;
    engine += " SETTINGS non_replicated_deduplication_window = 10000";
  }
  return {
      fmt::format("CREATE DATABASE IF NOT EXISTS `{}`", database),
      fmt::format("CREATE TABLE IF NOT EXISTS `{}`.`{}` ({}) {}", database, table, columns, engine),
  };
}

void ensure_logs_table(Store& store, const std::string& table, const std::string& ttl) {
  for (const auto& sql : logs_table_ddl(store.database(), store.dialect(), table, ttl)) {
    store.query(sql, "TabSeparated");
  }
}

void LogsBlock::append(const transforms::LogEvent& e) {
  if (dialect_ == ClickHouseDialect::modern) {
    put_native_fixed(timestamps_, static_cast<std::int64_t>(e.timestamp_ms));
  } else {
    put_native_fixed(timestamps_, static_cast<std::uint32_t>(e.timestamp_ms > 0 ? e.timestamp_ms / 1000 : 0));
  }
  put_native_string(hosts_, e.host);
  put_native_string(paths_, e.path);
  put_native_fixed(file_ids_, e.file_id);
  put_native_fixed(offsets_, e.offset);
  put_native_string(messages_, e.message);
  for (std::size_t i = 0; i < e.field_count(); ++i) {
    const auto& f = e.field(i);
    put_native_string(field_keys_, f.name);
    put_native_string(field_values_, f.value);
  }
  fields_total_ += e.field_count();
  put_native_fixed(field_offsets_, fields_total_);
  ++rows_;
}

std::size_t LogsBlock::bytes() const {
  return timestamps_.size() + hosts_.size() + paths_.size() + file_ids_.size() + offsets_.size() + messages_.size() +
         field_offsets_.size() + field_keys_.size() + field_values_.size();
}

std::string LogsBlock::take() {
  const bool modern = dialect_ == ClickHouseDialect::modern;
  std::string out;
  out.reserve(bytes() + 512);
  put_varint(out, modern ? 7 : 8);
  put_varint(out, rows_);
  put_native_column_header(out, "Timestamp", modern ? "DateTime64(3)" : "DateTime");
  out += timestamps_;
  put_native_column_header(out, "Host", "String");
  out += hosts_;
  put_native_column_header(out, "Path", "String");
  out += paths_;
  put_native_column_header(out, "FileId", "UInt64");
  out += file_ids_;
  put_native_column_header(out, "Offset", "UInt64");
  out += offsets_;
  put_native_column_header(out, "Message", "String");
  out += messages_;
  put_native_string_map(out, "Fields", modern, field_offsets_, field_keys_, field_values_);
  for (auto* s : {&timestamps_, &hosts_, &paths_, &file_ids_, &offsets_, &messages_, &field_offsets_, &field_keys_,
                  &field_values_}) {
    s->clear();
  }
  rows_ = 0;
  fields_total_ = 0;
  return out;
}

}  // namespace sluice::sinks
