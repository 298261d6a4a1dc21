// The check every span decoder fuzz target runs: no crash, every emitted span has non-zero ids and stays
// within the limits, the counts add up, and the spans-table encoding (both dialects) takes what it emits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "decoders/spans/span.hpp"
#include "sinks/spans_table.hpp"

namespace sluice::fuzz {

struct SpanCheck final : spans::SpanSink {
  spans::SpanLimits limits;
  sinks::SpansBlock modern{ClickHouseDialect::modern};
  sinks::SpansBlock legacy{ClickHouseDialect::legacy};
  std::uint32_t seen = 0;
  void on_span(const spans::Span& s) override {
    if (spans::all_zero(s.trace_id) || spans::all_zero(s.span_id)) __builtin_trap();
    if (s.attributes.size() > limits.max_attributes || s.resource_attributes.size() > limits.max_attributes ||
        s.events.size() > limits.max_events || s.links.size() > limits.max_links) {
      __builtin_trap();
    }
    modern.append(s);
    legacy.append(s);
    ++seen;
  }
};

template <typename Decoder>
int fuzz_span_decoder(const std::uint8_t* data, std::size_t size) {
  static const spans::SpanLimits limits = [] {
    spans::SpanLimits l;
    l.max_attributes = 16;
    l.max_events = 4;
    l.max_links = 4;
    l.max_depth = 4;
    return l;
  }();
  static Decoder decoder(limits);
  static SpanCheck check;
  check.limits = limits;
  check.seen = 0;
  const auto r = decoder.decode(std::span(reinterpret_cast<const std::byte*>(data), size), check);
  if (r.spans != check.seen) __builtin_trap();
  if (r.rejected_spans != 0 && r.span_error == spans::SpanReject::none) __builtin_trap();
  if (check.modern.rows() >= 64) {
    if (check.modern.take().empty() || check.legacy.take().empty()) __builtin_trap();
  }
  return 0;
}

}  // namespace sluice::fuzz
