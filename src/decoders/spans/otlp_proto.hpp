// OtlpProtoDecoder: OTLP/protobuf ExportTraceServiceRequest (opentelemetry-proto trace v1) → Spans.
#pragma once

#include <cstddef>
#include <span>

#include "decoders/spans/span.hpp"

namespace sluice::spans {

// Decoded by hand with the bounds-checked protobuf::Reader; one instance per thread, reused.
class OtlpProtoDecoder {
 public:
  explicit OtlpProtoDecoder(SpanLimits limits = {}) : limits_(limits) {}
  DecodeResult decode(std::span<const std::byte> payload, SpanSink& sink);

 private:
  SpanReject resource_spans(std::span<const std::byte> bytes, SpanSink& sink, DecodeResult& result);
  SpanReject scope_spans(std::span<const std::byte> bytes, SpanSink& sink, DecodeResult& result);
  SpanReject span(std::span<const std::byte> bytes);

  SpanLimits limits_;
  Span span_;
};

// Shared with the Jaeger decoders: one OTLP KeyValue into `attrs`, an AnyValue rendered as text.
SpanReject otlp_key_value(std::span<const std::byte> bytes, Attributes& attrs, const SpanLimits& limits);
SpanReject otlp_any_value(std::span<const std::byte> bytes, std::string& out, int depth, bool json,
                          const SpanLimits& limits);

}  // namespace sluice::spans
