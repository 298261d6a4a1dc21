#include "pipeline/log_batch_builder.hpp"

#include <spdlog/spdlog.h>

#include "core/envelope.hpp"
#include "core/log_record.hpp"
#include "sinks/logs_table.hpp"

namespace sluice::pipeline {

LogDecoding::LogDecoding(MetricsRegistry& m)
    : lines(m.counter("logs_lines_total", "Log lines read from the bus")),
      kept(m.counter("logs_events_total", "Log events handed to their sink after the rules")),
      dropped(m.counter("logs_dropped_total", "Log events the rules dropped")),
      rejected(m.counter("logs_rejected_messages_total",
                         "Bus messages on a log topic that were not a valid log chunk (skipped and acknowledged)")) {}

void LogBatchBuilder::add(const bus::Message& message) {
  Envelope env;
  LogChunkReader chunk;
  const bool ok = decode_envelope(message.value, env) == EnvelopeError::none && env.kind == SourceKind::log &&
                  chunk.open(env.payload) == LogChunkError::none;
  if (!ok) {
    shared_.rejected.inc();
    if (auto suppressed = shared_.log_limiter.allow("log-chunk")) {
      spdlog::warn("logs: skipped a message at {}/{} offset {} that is not a log chunk ({} more since the last "
                   "report); is another program writing to this topic?",
                   message.topic, message.partition, message.offset, *suppressed);
    }
    return;
  }
  const auto received_ms = static_cast<std::int64_t>(env.received_ns / 1'000'000);
  LogLine line;
  std::uint64_t lines = 0, kept = 0;
  while (chunk.next(line)) {
    ++lines;
    event_.clear();
    event_.host.assign(chunk.host());
    event_.path.assign(chunk.path());
    event_.file_id = chunk.file_id();
    event_.offset = line.offset;
    event_.source.assign(message.topic);
    event_.timestamp_ms = received_ms;
    event_.message.assign(line.text);
    if (line.flags & kLogLineTruncated) event_.set("truncated", "true", transforms::FieldType::boolean);
    if (line.flags & kLogLineSplit) event_.set("split", "true", transforms::FieldType::boolean);
    if (line.flags & kLogLineInvalidUtf8) event_.set("invalid_utf8", "true", transforms::FieldType::boolean);
    if (transform_ && !transform_(event_)) continue;
    writer_->append(event_);
    ++kept;
  }
  if (chunk.error() != LogChunkError::none) {
    // The lines before the damage are kept; the rest of the chunk cannot be read.
    shared_.rejected.inc();
    if (auto suppressed = shared_.log_limiter.allow("log-line")) {
      spdlog::warn("logs: a log chunk at {}/{} offset {} is damaged after {} line(s) ({}); the rest of it is skipped "
                   "({} more since the last report)",
                   message.topic, message.partition, message.offset, lines, to_string(chunk.error()), *suppressed);
    }
  }
  shared_.lines.inc(lines);
  shared_.kept.inc(kept);
  shared_.dropped.inc(lines - kept);
}

namespace {

class LogsTableWriter final : public LogEventWriter {
 public:
  LogsTableWriter(ClickHouseDialect dialect, std::string table) : block_(dialect), table_(std::move(table)) {}
  void append(const transforms::LogEvent& event) override { block_.append(event); }
  std::uint64_t rows() const override { return block_.rows(); }
  std::uint64_t bytes() const override { return block_.bytes(); }
  sinks::InsertRequest take() override {
    sinks::InsertRequest r;
    r.table = table_;
    r.format = "Native";
    r.rows = block_.rows();
    r.body = block_.take();
    return r;
  }

 private:
  sinks::LogsBlock block_;
  std::string table_;
};

}  // namespace

std::unique_ptr<LogEventWriter> make_logs_table_writer(ClickHouseDialect dialect, std::string table) {
  return std::make_unique<LogsTableWriter>(dialect, std::move(table));
}

}  // namespace sluice::pipeline
