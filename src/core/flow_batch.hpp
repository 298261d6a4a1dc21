// FlowBatch: flows accumulated column by column, ready to send as one Native block to `flows_raw`.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/flow.hpp"
#include "core/native_block.hpp"

namespace sluice {

// Which ClickHouse dialect the schema targets: the Debian 18.16 server lacks IPv6, UInt128 and
// LowCardinality, so those map to FixedString(16) and String there.
enum class ClickHouseDialect { modern, legacy };

struct FlowColumnSpec {
  const char* name;
  const char* wire_type;    // type in flows_raw and on the wire (modern dialect)
  const char* table_type;   // type in flows (modern dialect)
  const char* legacy_type;  // both, on legacy servers
  bool optional;            // written only when enabled
  void (*write)(NativeColumn&, const FlowRecord&);
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

class FlowBatch {
 public:
  explicit FlowBatch(const FlowSchema& schema);

  void append(const FlowRecord& r);
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
  const FlowSchema* schema_;
  std::vector<NativeColumn> columns_;
  std::size_t rows_ = 0;
  std::uint64_t sum_bytes_ = 0, sum_packets_ = 0;
};

}  // namespace sluice
