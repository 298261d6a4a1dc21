// OtlpJsonDecoder: the OTLP/HTTP JSON encoding of ExportTraceServiceRequest → Spans.
#pragma once

#include <cstddef>
#include <span>

#include "decoders/spans/json_support.hpp"
#include "decoders/spans/span.hpp"

namespace sluice::spans {

// The proto3 JSON mapping as OTLP/HTTP specifies it: lowerCamelCase keys, trace and span ids as hex
// strings, 64-bit integers as decimal strings or numbers, enums as integers (names accepted too).
// One instance per thread, reused.
// Each attribute nesting level is three JSON levels ({"arrayValue":{"values":[...]}}): the parser's
// own depth bound leaves room for max_depth of them, and anything deeper is refused as too_deep.
class OtlpJsonDecoder {
 public:
  explicit OtlpJsonDecoder(SpanLimits limits = {}) : limits_(limits), doc_(static_cast<std::size_t>(limits.max_depth) * 3 + 20) {}
  DecodeResult decode(std::span<const std::byte> payload, SpanSink& sink);

 private:
  SpanReject span(simdjson::dom::object o);

  SpanLimits limits_;
  json::Document doc_;
  Span span_;
};

// One OTLP JSON KeyValue list into `attrs`; an AnyValue object rendered as text. Shared with tests.
SpanReject otlp_json_attributes(simdjson::dom::element list, Attributes& attrs, const SpanLimits& limits);
SpanReject otlp_json_any_value(simdjson::dom::element value, std::string& out, int depth, bool json,
                               const SpanLimits& limits);

}  // namespace sluice::spans
