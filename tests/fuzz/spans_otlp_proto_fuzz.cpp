// Fuzzes the OTLP protobuf ExportTraceServiceRequest decoder and the spans-table encoding of what it emits (both dialects): no
// crash, every emitted span has non-zero ids and stays within the limits, and the counts add up.
#include <cstddef>
#include <cstdint>

#include "decoders/spans/otlp_proto.hpp"
#include "sinks/spans_table.hpp"

namespace {

struct Check final : sluice::spans::SpanSink {
  sluice::spans::SpanLimits limits;
  sluice::sinks::SpansBlock modern{sluice::ClickHouseDialect::modern};
  sluice::sinks::SpansBlock legacy{sluice::ClickHouseDialect::legacy};
  std::uint32_t seen = 0;
  void on_span(const sluice::spans::Span& s) override {
    if (sluice::spans::all_zero(s.trace_id) || sluice::spans::all_zero(s.span_id)) __builtin_trap();
    if (s.attributes.size() > limits.max_attributes || s.resource_attributes.size() > limits.max_attributes ||
        s.events.size() > limits.max_events || s.links.size() > limits.max_links) {
      __builtin_trap();
    }
    modern.append(s);
    legacy.append(s);
    ++seen;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static sluice::spans::SpanLimits limits = [] {
    sluice::spans::SpanLimits l;
    l.max_attributes = 16;
    l.max_events = 4;
    l.max_links = 4;
    l.max_depth = 4;
    return l;
  }();
  static sluice::spans::OtlpProtoDecoder decoder(limits);
  static Check check;
  check.limits = limits;
  check.seen = 0;
  const auto r = decoder.decode(std::span(reinterpret_cast<const std::byte*>(data), size), check);
  if (r.spans != check.seen) __builtin_trap();
  if (r.rejected_spans != 0 && r.span_error == sluice::spans::SpanReject::none) __builtin_trap();
  if (check.modern.rows() >= 64) {
    if (check.modern.take().empty() || check.legacy.take().empty()) __builtin_trap();
  }
  return 0;
}
