// RecordBatchBuilder: one partition of a mapped job: decode each message, run the rules, map records to
// columns; records that cannot be decoded or mapped go to dead letters with their reason.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/metrics.hpp"
#include "decoders/records/record_decoder.hpp"
#include "pipeline/batch_builder.hpp"
#include "pipeline/jobs/column_mapping.hpp"
#include "pipeline/jobs/job_driver.hpp"
#include "sinks/dead_letters.hpp"
#include "transforms/rules/rules.hpp"

namespace sluice::pipeline::jobs {

// Built once per job (incarnation), shared by its processors and partitions; read-only but for counters.
struct RecordJob {
  RecordJob(const std::string& name, MetricsRegistry& metrics);
  std::string name;
  std::unique_ptr<decoders::records::RecordDecoderFactory> decoders;
  transforms::rules::RuleSet rules;
  std::shared_ptr<const CompiledMapping> mapping;
  std::unique_ptr<sinks::DeadLetters> dead_letters;
  Counter& records;   // decoded records
  Counter& written;   // rows handed to the batch
  Counter& dropped;   // dropped by the rules
  Counter& rejected;  // sent to dead letters (decode or mapping)
};

class RecordBatchBuilder final : public BatchBuilder, private decoders::records::RecordSink {
 public:
  RecordBatchBuilder(const RecordJob& job, ProcessorContext& context);

  void add(const bus::Message& message) override;
  std::uint64_t rows() const override { return writer_->rows(); }
  std::uint64_t bytes() const override { return writer_->bytes() + pending_bytes_; }
  // Writes this batch's dead letters (one fsync) before handing over the rows: a rejected record is
  // on disk before the offsets that carried it can be committed. Throws when they cannot be written,
  // which fails the processor instead of dropping them.
  sinks::InsertRequest take() override;

 private:
  void record(transforms::LogEvent& event) override;
  decoders::records::FieldSlots* slots() override { return direct_ ? writer_.get() : nullptr; }
  void record_slots() override;
  void reject(std::string_view reason, std::span<const std::byte> bytes) override;
  void dead_letter(std::string_view kind, std::string_view reason, std::span<const std::byte> bytes);

  const RecordJob& job_;
  ProcessorContext& context_;
  std::unique_ptr<decoders::records::RecordDecoder> decoder_;
  std::unique_ptr<transforms::rules::RuleSet::Scratch> scratch_;
  std::unique_ptr<MappedRowWriter> writer_;
  bool direct_ = false;  // no rules, no "*" column: decoders may hand fields straight to the writer
  transforms::LogEvent event_;
  MessageMeta meta_;
  std::span<const std::byte> payload_;
  struct Letter {
    std::string kind;
    std::string record;
    std::string detail;
  };
  std::vector<Letter> letters_;
  std::uint64_t pending_bytes_ = 0;
  // Published when the batch is taken: a count a record is dearer than some records' decoding.
  CounterTally records_;
  CounterTally written_;
};

BatchBuilderFactory record_builders(std::shared_ptr<const RecordJob> job, ProcessorContext& context);

}  // namespace sluice::pipeline::jobs
