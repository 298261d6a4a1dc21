// ColumnMapping: how an ingestion job's records become typed rows of one ClickHouse table.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/reader.hpp"
#include "core/flow_batch.hpp"
#include "decoders/records/record_decoder.hpp"
#include "sinks/store.hpp"
#include "transforms/log_event.hpp"

namespace sluice::pipeline::jobs {

// One column: its ClickHouse type, the record field it comes from, and what to write when the field
// is missing or null. Supported types: String, LowCardinality(String), FixedString(N), UInt8..UInt64,
// Int8..Int64, Float32, Float64, Bool, Date, DateTime, DateTime64(P), UUID, IPv4, IPv6,
// Array(String), Array(Int64), Array(Float64), Map(String, String), and Nullable(T) of the scalars.
struct ColumnSpec {
  std::string name;
  std::string type;
  std::string from;                        // field name; defaults to `name`. `_topic`, `_partition`,
                                           // `_offset`, `_key`, `_timestamp` are the message's own.
  std::optional<std::string> default_value;  // as text, converted like a field value
  bool required = false;                   // missing and no default: the record goes to dead letters
};

struct MappingSpec {
  std::string table;                       // unqualified; the store's database applies
  std::vector<ColumnSpec> columns;
  // Table creation: `create` makes the table from the columns when it does not exist; otherwise the
  // existing table's columns are checked against the mapping and a mismatch stops the job with the
  // difference named.
  bool create = true;
  std::string engine = "MergeTree";
  std::vector<std::string> order_by;       // empty: tuple()
  std::string partition_by;
  std::string ttl;
};

// Reads `mapping:` of a job, reporting problems (unknown type, duplicate column) with key paths.
MappingSpec read_mapping_spec(config::ConfigReader& reader);

// Creates the table or checks its columns. Throws sinks::StoreError (retryable when the store is
// unreachable) or std::runtime_error naming every mismatching column.
void ensure_mapped_table(sinks::Store& store, const MappingSpec& mapping);

// The columns of the table's sorting key, most significant first: empty when it has none, when an
// element is an expression rather than a column, or when the store does not say (ClickHouse 18.16).
std::vector<std::string> table_sorting_columns(sinks::Store& store, const std::string& table);

// What a record that cannot be written looks like to the caller.
struct RowRejection {
  std::string reason;                      // "column bytes (UInt64): field 'bytes' is \"abc\", not a number"
};

// The message a record came from, for the `_topic`, `_partition`, ... fields.
struct MessageMeta {
  std::string_view topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string_view key;
  std::int64_t timestamp_ms = 0;
};

// Accumulates rows in ClickHouse Native columns; one per partition (not thread-safe).
class MappedRowWriter : public decoders::records::FieldSlots {
 public:
  // Converts and appends one row; on failure nothing is appended and the reason is returned.
  virtual std::optional<RowRejection> append(const transforms::LogEvent& record, const MessageMeta& meta) = 0;
  // The same from the slots a decoder set (FieldSlots); false from takes_slots() when a column takes
  // every other field, which needs the whole event.
  virtual bool takes_slots() const = 0;
  virtual std::optional<RowRejection> append_slots(const MessageMeta& meta) = 0;
  virtual std::uint64_t rows() const = 0;
  virtual std::uint64_t bytes() const = 0;
  // A Native block of the rows appended since the last take(), into mapping.table.
  virtual sinks::InsertRequest take() = 0;
};

// Shared, read-only: the compiled mapping (column converters). Throws std::runtime_error on a type
// it cannot write for this dialect.
class CompiledMapping {
 public:
  virtual ~CompiledMapping() = default;
  virtual std::unique_ptr<MappedRowWriter> make_writer() const = 0;
  virtual const MappingSpec& spec() const = 0;
};
std::shared_ptr<const CompiledMapping> compile_mapping(const MappingSpec& spec, ClickHouseDialect dialect);

}  // namespace sluice::pipeline::jobs
