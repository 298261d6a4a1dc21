// MetricsTable: the store's `metrics` table (endpoint, metric, tags, timestamp, step, counter type,
// value) — its DDL, and Native blocks built from metric records.
#pragma once

#include <string>
#include <vector>

#include "core/metric_record.hpp"
#include "sinks/store.hpp"

namespace sluice::sinks {

// Modern servers get Tags as Map(String, String); ClickHouse 18.16 has no Map, so there the tags are
// the parallel arrays `Tags.Key` and `Tags.Value` (a Nested column, queried with indexOf()).
std::vector<std::string> metrics_table_ddl(const std::string& database, ClickHouseDialect dialect,
                                           const std::string& ttl = "");
void ensure_metrics_table(Store& store, const std::string& ttl = "");

// Builds one Native block of rows for the `metrics` table.
class MetricsBlock {
 public:
  explicit MetricsBlock(ClickHouseDialect dialect) : dialect_(dialect) {}
  void append(const MetricView& m);
  std::size_t rows() const { return rows_; }
  // The Native bytes of every row appended so far; the block is empty afterwards.
  std::string take();

 private:
  ClickHouseDialect dialect_;
  std::size_t rows_ = 0;
  std::string timestamps_, endpoints_, metrics_, steps_, types_, values_, origins_;
  std::string tag_offsets_, tag_keys_, tag_values_;
  std::uint64_t tags_total_ = 0;
};

}  // namespace sluice::sinks
