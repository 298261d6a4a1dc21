// FlowBatch: flows accumulated column by column, ready to send as one Native block to `flows_raw`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/flow.hpp"
#include "core/native_block.hpp"

namespace sluice {

// Which ClickHouse dialect the schema targets: the Debian 18.16 server lacks IPv6, UInt128 and
// LowCardinality, so those map to FixedString(16) and String there.
enum class ClickHouseDialect { modern, legacy };

// How a column's values sit in a FlowRecord, so FlowBatch can copy them without a call per value.
enum class FlowColumnKind : std::uint8_t {
  fixed,        // `width` bytes at `offset`, copied as they are (little-endian, like Native)
  string,       // a std::string_view at `offset`
  u32_array,    // `len_offset` (uint8) elements of uint32 from `offset`
  empty_array,  // always an empty array (no data yet)
};

struct FlowColumnSpec {
  const char* name;
  const char* wire_type;    // type in flows_raw and on the wire (modern dialect)
  const char* table_type;   // type in flows (modern dialect)
  const char* legacy_type;  // both, on legacy servers
  bool optional;            // written only when enabled
  FlowColumnKind kind;
  std::uint16_t offset;      // of the value in FlowRecord
  std::uint16_t width;       // fixed: bytes per value
  std::uint16_t len_offset;  // u32_array: of the element count in FlowRecord
};

// Every flow column sluice knows, in table order.
const std::vector<FlowColumnSpec>& flow_columns();

// The set of columns a deployment writes: all core columns plus the enabled optional ones.
struct FlowSchema {
  ClickHouseDialect dialect = ClickHouseDialect::modern;
  std::vector<const FlowColumnSpec*> columns;

  static FlowSchema make(ClickHouseDialect dialect, const std::vector<std::string>& enabled_optional);
  std::string wire_type(const FlowColumnSpec& c) const {
    return dialect == ClickHouseDialect::legacy ? c.legacy_type : c.wire_type;
  }
  std::string table_type(const FlowColumnSpec& c) const {
    return dialect == ClickHouseDialect::legacy ? c.legacy_type : c.table_type;
  }
};

// Append is the outlet's hottest loop, so columns are grouped by kind: fixed-width ones share one
// row capacity (no check per value) and are copied per width with constant-size memcpy; strings
// and arrays each own a growable buffer. Movable (buffers keep their addresses), not copyable.
class FlowBatch {
 public:
  explicit FlowBatch(const FlowSchema& schema);
  FlowBatch(const FlowBatch&) = delete;  // slots point into the buffers
  FlowBatch& operator=(const FlowBatch&) = delete;
  FlowBatch(FlowBatch&&) noexcept = default;
  FlowBatch& operator=(FlowBatch&&) noexcept = default;

  void append(const FlowRecord& r);
  // Room for `rows` rows in the fixed-width columns, e.g. the batch limit, to skip regrowth.
  void reserve(std::size_t rows);
  std::size_t rows() const { return rows_; }
  std::size_t bytes() const;
  bool empty() const { return rows_ == 0; }
  // Encodes the batch as one Native block and clears it for reuse (buffers keep their capacity).
  void take_native(std::string& out);
  void clear();

  // Totals of what the batch holds, for counters.
  std::uint64_t total_bytes() const { return sum_bytes_; }
  std::uint64_t total_packets() const { return sum_packets_; }

 private:
  struct FixedSlot {
    std::uint16_t offset;
    std::uint8_t* base;  // into fixed_[buffer]; refreshed whenever the row capacity grows
    std::uint32_t buffer;
  };
  struct StringSlot {
    std::uint16_t offset;
    ByteBuffer data;
  };
  struct ArraySlot {
    std::uint16_t offset = 0, len_offset = 0;
    bool always_empty = false;
    std::uint64_t total = 0;
    std::uint8_t* offsets = nullptr;  // into fixed_[offsets_buffer], one uint64 per row
    std::uint32_t offsets_buffer = 0;
    ByteBuffer data;
  };
  // Where each schema column's bytes live, in schema order, for encoding.
  struct ColumnRef {
    FlowColumnKind kind;
    std::uint32_t index;  // into fixed_ (fixed), strings_ or arrays_
    std::uint16_t width;
    std::string header;  // name and type, Native-encoded
  };

  void grow_rows(std::size_t capacity);

  std::vector<ColumnRef> refs_;
  std::vector<ByteBuffer> fixed_;  // fixed-width columns and array offsets, `row_capacity_` rows each
  std::vector<std::uint16_t> fixed_width_;
  std::vector<FixedSlot> by_width_[5];  // widths 1, 2, 4, 8, 16
  std::size_t fixed_row_bytes_ = 0;    // per row, over fixed_
  std::vector<StringSlot> strings_;
  std::vector<ArraySlot> arrays_;
  std::size_t row_capacity_ = 0;
  std::size_t rows_ = 0;
  std::uint64_t sum_bytes_ = 0, sum_packets_ = 0;
};

}  // namespace sluice
