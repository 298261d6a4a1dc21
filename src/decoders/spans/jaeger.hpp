// Jaeger decoders: jaeger.api_v2.Span as the Jaeger Kafka collector/ingester writes it, in protobuf
// (--kafka.producer.encoding=protobuf) or its jsonpb form (=json), → Spans.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "decoders/spans/json_support.hpp"
#include "decoders/spans/span.hpp"

namespace sluice::spans {

// Jaeger's conventions mapped to OTLP's fields: tags span.kind, otel.status_code,
// otel.status_description, error=true (Error when no otel.status_code), otel.scope.name/version
// (or otel.library.*), w3c.tracestate are taken out of the attributes into their fields; a log's
// "event" field is the event's name; the process's service name is also the resource attribute
// service.name. The first CHILD_OF reference within the same trace is the parent; every other
// reference is a link (attribute opentracing.ref_type = child_of|follows_from). Warnings are kept
// as the attribute jaeger.warnings (a JSON array).
void apply_jaeger_conventions(Span& span);

class JaegerProtoDecoder {
 public:
  explicit JaegerProtoDecoder(SpanLimits limits = {}) : limits_(limits) {}
  // One message holds one span.
  DecodeResult decode(std::span<const std::byte> payload, SpanSink& sink);

 private:
  SpanReject span(std::span<const std::byte> bytes);
  SpanLimits limits_;
  Span span_;
};

class JaegerJsonDecoder {
 public:
  explicit JaegerJsonDecoder(SpanLimits limits = {}) : limits_(limits), doc_(32) {}
  DecodeResult decode(std::span<const std::byte> payload, SpanSink& sink);

 private:
  SpanReject span(simdjson::dom::object o);
  SpanLimits limits_;
  json::Document doc_;
  Span span_;
  std::string scratch_;
};

// RFC 3339 ("2024-01-02T03:04:05.123456789Z", offsets allowed) to unix nanoseconds.
bool parse_rfc3339_ns(std::string_view text, std::uint64_t& out);
// A google.protobuf.Duration in JSON ("0.001500s") to nanoseconds; negative ones are refused.
bool parse_duration_ns(std::string_view text, std::uint64_t& out);

}  // namespace sluice::spans
