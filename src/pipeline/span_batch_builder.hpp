// SpanBatchBuilder: decodes one partition's span messages (OTLP or Jaeger) into rows of the spans table.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/log_limiter.hpp"
#include "core/metrics.hpp"
#include "decoders/spans/jaeger.hpp"
#include "decoders/spans/otlp_json.hpp"
#include "decoders/spans/otlp_proto.hpp"
#include "pipeline/batch_builder.hpp"
#include "sinks/spans_table.hpp"

namespace sluice::pipeline {

// What the messages of a topic hold.
enum class SpanFormat : std::uint8_t {
  otlp_envelope,  // the inlet's: an envelope (kind span) whose payload is a marker byte + an OTLP body
  jaeger_proto,   // jaeger.api_v2.Span, protobuf (Jaeger's --kafka.producer.encoding=protobuf)
  jaeger_json,    // the same, jsonpb (--kafka.producer.encoding=json)
  otlp_proto,     // a bare ExportTraceServiceRequest, protobuf
  otlp_json,      // a bare ExportTraceServiceRequest, OTLP JSON
};
const char* to_string(SpanFormat f);
std::optional<SpanFormat> span_format_from_string(std::string_view text);

// The first byte of a span envelope's payload says how the OTLP body after it is encoded
// (docs/envelope.md).
enum class OtlpBodyMarker : std::uint8_t { protobuf = 1, json = 2 };

// Shared by every partition's builder.
struct SpanDecoding {
  explicit SpanDecoding(MetricsRegistry& metrics);
  Counter& messages;  // bus messages read
  Counter& spans;     // spans written as rows
  std::array<Counter*, spans::kSpanRejectCount> rejected_messages{};  // by reason: messages cut short or skipped
  std::array<Counter*, spans::kSpanRejectCount> rejected_spans{};     // by reason: single spans refused
  LogLimiter log_limiter;
};

class SpanBatchBuilder final : public BatchBuilder, private spans::SpanSink {
 public:
  SpanBatchBuilder(SpanDecoding& shared, SpanFormat format, ClickHouseDialect dialect, std::string table);

  void add(const bus::Message& message) override;
  std::uint64_t rows() const override { return block_.rows(); }
  std::uint64_t bytes() const override { return block_.bytes(); }
  sinks::InsertRequest take() override;

 private:
  void on_span(const spans::Span& span) override { block_.append(span); }
  void reject_message(const bus::Message& message, spans::SpanReject reason, const char* what);

  SpanDecoding& shared_;
  SpanFormat format_;
  std::string table_;
  sinks::SpansBlock block_;
  spans::OtlpProtoDecoder otlp_proto_;
  spans::OtlpJsonDecoder otlp_json_;
  spans::JaegerProtoDecoder jaeger_proto_;
  spans::JaegerJsonDecoder jaeger_json_;
};

BatchBuilderFactory span_builders(SpanDecoding& shared, SpanFormat format, ClickHouseDialect dialect,
                                  std::string table);
// For one job consuming several span topics (the inlet's and Jaeger's): each partition's format
// comes from its topic; topics not listed get `fallback`.
BatchBuilderFactory span_builders(SpanDecoding& shared, std::map<std::string, SpanFormat> formats, SpanFormat fallback,
                                  ClickHouseDialect dialect, std::string table);

}  // namespace sluice::pipeline
