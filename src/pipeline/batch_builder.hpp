// BatchBuilder: turns bus messages of one partition into rows of one table, one batch at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "bus/bus.hpp"
#include "sinks/store.hpp"

namespace sluice::pipeline {

// One instance per partition, used only from that partition's consumer thread. A message that
// cannot be decoded is counted by the builder and contributes no row; it is still acknowledged
// with its batch, because replaying it would fail the same way.
class BatchBuilder {
 public:
  virtual ~BatchBuilder() = default;
  virtual void add(const bus::Message& message) = 0;
  virtual std::uint64_t rows() const = 0;
  virtual std::uint64_t bytes() const = 0;
  // Encodes the rows added since the last take() (table, format, body, rows) and starts afresh.
  virtual sinks::InsertRequest take() = 0;
};

using BatchBuilderFactory = std::function<std::unique_ptr<BatchBuilder>(const bus::PartitionRef&)>;

}  // namespace sluice::pipeline
