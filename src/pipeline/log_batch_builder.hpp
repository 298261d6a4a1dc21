// LogBatchBuilder: turns the log chunks of one partition into events, runs the rules on them, and
// collects the kept ones into one insert for the partition's sink (a `logs` table or Elasticsearch).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/log_limiter.hpp"
#include "core/metrics.hpp"
#include "pipeline/batch_builder.hpp"
#include "transforms/log_event.hpp"

namespace sluice::pipeline {

// Encodes kept events for one sink; one per partition (not thread-safe).
class LogEventWriter {
 public:
  virtual ~LogEventWriter() = default;
  virtual void append(const transforms::LogEvent& event) = 0;
  virtual std::uint64_t rows() const = 0;
  virtual std::uint64_t bytes() const = 0;
  virtual sinks::InsertRequest take() = 0;
};

// Runs the rules on one event; false drops it. One per partition (it may keep per-thread state).
using LogTransform = std::function<bool(transforms::LogEvent&)>;

// Shared by every partition's builder.
struct LogDecoding {
  explicit LogDecoding(MetricsRegistry& metrics);
  Counter& lines;     // lines read from the bus
  Counter& kept;      // events handed to the sink
  Counter& dropped;   // events the rules dropped
  Counter& rejected;  // bus messages that were not a log chunk (skipped and acknowledged)
  LogLimiter log_limiter;
};

class LogBatchBuilder final : public BatchBuilder {
 public:
  LogBatchBuilder(LogDecoding& shared, std::unique_ptr<LogEventWriter> writer, LogTransform transform)
      : shared_(shared), writer_(std::move(writer)), transform_(std::move(transform)) {}

  void add(const bus::Message& message) override;
  std::uint64_t rows() const override { return writer_->rows(); }
  std::uint64_t bytes() const override { return writer_->bytes(); }
  sinks::InsertRequest take() override { return writer_->take(); }

 private:
  LogDecoding& shared_;
  std::unique_ptr<LogEventWriter> writer_;
  LogTransform transform_;
  transforms::LogEvent event_;
};

// Writes events as rows of a `logs` table (sinks/logs_table.hpp).
std::unique_ptr<LogEventWriter> make_logs_table_writer(ClickHouseDialect dialect, std::string table);

}  // namespace sluice::pipeline
