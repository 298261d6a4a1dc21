// LogsTable: the store's `logs` table (one row per log line, keyed by its identity) — its DDL, and
// Native blocks built from log events.
#pragma once

#include <string>
#include <vector>

#include "sinks/store.hpp"
#include "transforms/log_event.hpp"

namespace sluice::sinks {

// A line's identity (Host, Path, FileId, Offset) is the sorting key of a ReplacingMergeTree: the
// file source re-reads lines after a crash (between the bus acknowledgement and the checkpoint write),
// and such a second copy is merged away. Queries that must count each line exactly once use FINAL.
// Modern servers: Timestamp DateTime64(3), Fields Map(String, String). ClickHouse 18.16 has neither:
// Timestamp DateTime (seconds) and Fields as the parallel arrays `Fields.Key` / `Fields.Value`.
std::vector<std::string> logs_table_ddl(const std::string& database, ClickHouseDialect dialect,
                                        const std::string& table = "logs", const std::string& ttl = "");
void ensure_logs_table(Store& store, const std::string& table = "logs", const std::string& ttl = "");

// Builds one Native block of rows for the `logs` table.
class LogsBlock {
 public:
  explicit LogsBlock(ClickHouseDialect dialect) : dialect_(dialect) {}
  void append(const transforms::LogEvent& e);
  std::size_t rows() const { return rows_; }
  std::size_t bytes() const;
  // The Native bytes of every row appended so far; the block is empty afterwards.
  std::string take();

 private:
  ClickHouseDialect dialect_;
  std::size_t rows_ = 0;
  std::string timestamps_, hosts_, paths_, file_ids_, offsets_, messages_;
  std::string field_offsets_, field_keys_, field_values_;
  std::uint64_t fields_total_ = 0;
};

}  // namespace sluice::sinks
