// SpansTable: the store's `spans` table (OpenTelemetry Collector ClickHouse exporter column names),
// its trace-id index, and Native blocks built from decoded spans.
#pragma once

#include <string>
#include <vector>

#include "decoders/spans/span.hpp"
#include "sinks/store.hpp"

namespace sluice::sinks {

// `<table>`: a ReplacingMergeTree ordered by (ServiceName, SpanName, toDateTime(Timestamp), TraceId,
// SpanId) and partitioned by day, so that a span replayed after a crash (the same TraceId, SpanId and
// start) is merged into one row; queries that must count each span once use FINAL. Batches also
// carry the consumer's insert_deduplication_token where the server honours it.
// `<table>_trace_id_ts` (TraceId, Start, End), filled by the materialized view `<table>_trace_id_ts_mv`
// with min/max(Timestamp) per TraceId of every inserted block: a lookup by trace id reads it first
// (see spans_by_trace_sql) and then only the time range of that trace.
// Modern servers: DateTime64(9), Map(LowCardinality(String), String), LowCardinality, Nested Events/Links.
// ClickHouse 18.16 has none of these: Timestamp DateTime (seconds) plus TimestampNs UInt64 (unix ns),
// maps as `<name>.Key` / `<name>.Value` arrays, Events.Timestamp Array(UInt64) (ns), and event/link
// attributes as `Events.AttributeKeys` / `Events.AttributeValues` Array(Array(String)); no TTL.
std::vector<std::string> spans_table_ddl(const std::string& database, ClickHouseDialect dialect,
                                         const std::string& table = "spans", const std::string& ttl = "");
void ensure_spans_tables(Store& store, const std::string& table = "spans", const std::string& ttl = "");

// The SQL that returns `select` (columns of the spans table) for one trace (32 hex digits, lower
// case), reading the index first to bound the scan. Rows in start order (nanoseconds on both dialects).
std::string spans_by_trace_sql(const std::string& database, const std::string& table, ClickHouseDialect dialect,
                               const std::string& trace_hex, const std::string& select);

// Builds one Native block of rows for the spans table. Reuses its buffers from block to block.
class SpansBlock {
 public:
  explicit SpansBlock(ClickHouseDialect dialect) : dialect_(dialect) {}
  void append(const spans::Span& span);
  std::size_t rows() const { return rows_; }
  std::size_t bytes() const;
  // The Native bytes of every row appended so far; the block is empty afterwards.
  std::string take();

 private:
  // One column's data: for arrays, the per-row offsets live in their own buffer.
  struct Buffers {
    std::string ts, ts_ns, trace, span, parent, state, name, kind, service, scope_name, scope_version, duration,
        status_code, status_message;
    std::string res_off, res_key, res_val, attr_off, attr_key, attr_val;
    std::string ev_off, ev_ts, ev_name, ev_attr_off, ev_attr_key, ev_attr_val;
    std::string ln_off, ln_trace, ln_span, ln_state, ln_attr_off, ln_attr_key, ln_attr_val;
  };
  void put_map(const spans::Attributes& attrs, std::string& off, std::string& keys, std::string& values,
               std::uint64_t& total);

  ClickHouseDialect dialect_;
  std::size_t rows_ = 0;
  Buffers b_;
  std::uint64_t res_total_ = 0, attr_total_ = 0, ev_total_ = 0, ev_attr_total_ = 0, ln_total_ = 0,
                ln_attr_total_ = 0;
};

}  // namespace sluice::sinks
