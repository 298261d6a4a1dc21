#include "pipeline/jobs/record_batch_builder.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace sluice::pipeline::jobs {
namespace {

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

std::string base64(std::span<const std::byte> in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const auto v = (std::to_integer<unsigned>(in[i]) << 16) | (std::to_integer<unsigned>(in[i + 1]) << 8) |
                   std::to_integer<unsigned>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    unsigned v = std::to_integer<unsigned>(in[i]) << 16;
    if (i + 1 < in.size()) v |= std::to_integer<unsigned>(in[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace

RecordJob::RecordJob(const std::string& job_name, MetricsRegistry& metrics)
    : name(job_name),
      records(metrics.counter("job_records_total", "Records decoded by a job", {{"job", job_name}})),
      written(metrics.counter("job_rows_total", "Rows a job handed to its sink", {{"job", job_name}})),
      dropped(metrics.counter("job_dropped_records_total", "Records a job's rules dropped", {{"job", job_name}})),
      rejected(metrics.counter("job_rejected_records_total",
                               "Records a job could not decode or map, written to its dead letters", {{"job", job_name}})) {}

RecordBatchBuilder::RecordBatchBuilder(const RecordJob& job, ProcessorContext& context)
    : job_(job),
      context_(context),
      decoder_(job.decoders->make()),
      scratch_(job.rules.make_scratch()),
      writer_(job.mapping->make_writer()),
      direct_(job.rules.empty() && writer_->takes_slots()),
      records_(job.records),
      written_(job.written) {}

void RecordBatchBuilder::add(const bus::Message& m) {
  meta_.topic = m.topic;
  meta_.partition = m.partition;
  meta_.offset = m.offset;
  meta_.key = {reinterpret_cast<const char*>(m.key.data()), m.key.size()};
  meta_.timestamp_ms = 0;
  payload_ = m.value;
  decoder_->decode(m.value, event_, *this);
}

void RecordBatchBuilder::record(transforms::LogEvent& event) {
  records_.inc();
  event.source.assign(meta_.topic);
  event.offset = static_cast<std::uint64_t>(meta_.offset);
  if (!job_.rules.empty() && job_.rules.apply(event, *scratch_) == transforms::rules::Outcome::drop) {
    job_.dropped.inc();
    return;
  }
  if (auto rejection = writer_->append(event, meta_)) {
    dead_letter("mapping", rejection->reason, payload_);
    return;
  }
  written_.inc();
}

void RecordBatchBuilder::record_slots() {
  records_.inc();
  if (auto rejection = writer_->append_slots(meta_)) {
    dead_letter("mapping", rejection->reason, payload_);
    return;
  }
  written_.inc();
}

void RecordBatchBuilder::reject(std::string_view reason, std::span<const std::byte> bytes) {
  dead_letter("decode", reason, bytes.empty() ? payload_ : bytes);
}

void RecordBatchBuilder::dead_letter(std::string_view kind, std::string_view reason, std::span<const std::byte> bytes) {
  job_.rejected.inc();
  context_.record_failed(fmt::format("{}/{}@{}: {}", meta_.topic, meta_.partition, meta_.offset, reason));
  Letter letter;
  letter.kind.assign(kind);
  const std::string_view text{reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  // Binary payloads (Avro, Protobuf) survive the NDJSON file only as base64.
  letter.record = valid_utf8(text) ? std::string(text) : "base64:" + base64(bytes);
  letter.detail = fmt::format("job {}: {}/{} offset {}: {}", job_.name, meta_.topic, meta_.partition, meta_.offset, reason);
  pending_bytes_ += letter.record.size() + letter.detail.size();
  letters_.push_back(std::move(letter));
}

sinks::InsertRequest RecordBatchBuilder::take() {
  records_.flush();
  written_.flush();
  if (!letters_.empty()) {
    std::vector<sinks::DeadLetter> batch;
    batch.reserve(letters_.size());
    for (const auto& l : letters_) batch.push_back({l.kind, l.record, l.detail});
    if (!job_.dead_letters->write("job:" + job_.name, batch)) {
      throw std::runtime_error(fmt::format("cannot write {} dead letters into {}; the records are consumed again after "
                                           "the restart. Check the directory's space and permissions",
                                           letters_.size(), job_.dead_letters->dir()));
    }
    letters_.clear();
    pending_bytes_ = 0;
  }
  return writer_->take();
}

BatchBuilderFactory record_builders(std::shared_ptr<const RecordJob> job, ProcessorContext& context) {
  return [job = std::move(job), &context](const bus::PartitionRef&) -> std::unique_ptr<BatchBuilder> {
    return std::make_unique<RecordBatchBuilder>(*job, context);
  };
}

}  // namespace sluice::pipeline::jobs
