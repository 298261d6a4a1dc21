#include "pipeline/span_batch_builder.hpp"

#include <spdlog/spdlog.h>

#include "core/envelope.hpp"

namespace sluice::pipeline {

const char* to_string(SpanFormat f) {
  switch (f) {
    case SpanFormat::otlp_envelope: return "otlp_envelope";
    case SpanFormat::jaeger_proto: return "jaeger_proto";
    case SpanFormat::jaeger_json: return "jaeger_json";
    case SpanFormat::otlp_proto: return "otlp_proto";
    case SpanFormat::otlp_json: return "otlp_json";
  }
  return "unknown";
}

std::optional<SpanFormat> span_format_from_string(std::string_view text) {
  for (auto f : {SpanFormat::otlp_envelope, SpanFormat::jaeger_proto, SpanFormat::jaeger_json, SpanFormat::otlp_proto,
                 SpanFormat::otlp_json}) {
    if (text == to_string(f)) return f;
  }
  return std::nullopt;
}

SpanDecoding::SpanDecoding(MetricsRegistry& m)
    : messages(m.counter("spans_messages_total", "Bus messages read from span topics")),
      spans(m.counter("spans_total", "Spans decoded and written as rows of the spans table")) {
  for (std::size_t i = 1; i < spans::kSpanRejectCount; ++i) {
    const char* reason = spans::to_string(static_cast<spans::SpanReject>(i));
    rejected_messages[i] = &m.counter("spans_rejected_messages_total",
                                      "Span messages skipped whole or cut short (their remaining spans lost)",
                                      {{"reason", reason}});
    rejected_spans[i] = &m.counter("spans_rejected_total", "Single spans refused", {{"reason", reason}});
  }
}

SpanBatchBuilder::SpanBatchBuilder(SpanDecoding& shared, SpanFormat format, ClickHouseDialect dialect,
                                   std::string table)
    : shared_(shared), format_(format), table_(std::move(table)), block_(dialect) {}

void SpanBatchBuilder::reject_message(const bus::Message& message, spans::SpanReject reason, const char* what) {
  shared_.rejected_messages[static_cast<std::size_t>(reason)]->inc();
  if (auto suppressed = shared_.log_limiter.allow(std::string("span-message-") + spans::to_string(reason))) {
    spdlog::warn("spans: a message at {}/{} offset {} ({}) was {} ({}); it is skipped from there. Check what "
                 "writes to this topic ({} more since the last report)",
                 message.topic, message.partition, message.offset, to_string(format_), what, spans::to_string(reason),
                 *suppressed);
  }
}

void SpanBatchBuilder::add(const bus::Message& message) {
  shared_.messages.inc();
  std::span<const std::byte> body = message.value;
  SpanFormat format = format_;
  if (format == SpanFormat::otlp_envelope) {
    Envelope env;
    if (decode_envelope(message.value, env) != EnvelopeError::none || env.kind != SourceKind::span ||
        env.payload.empty()) {
      reject_message(message, spans::SpanReject::unknown_format, "not a span envelope");
      return;
    }
    const auto marker = static_cast<OtlpBodyMarker>(env.payload[0]);
    if (marker == OtlpBodyMarker::protobuf) format = SpanFormat::otlp_proto;
    else if (marker == OtlpBodyMarker::json) format = SpanFormat::otlp_json;
    else {
      reject_message(message, spans::SpanReject::unknown_format, "a span envelope with an unknown body marker");
      return;
    }
    body = env.payload.subspan(1);
  }
  spans::DecodeResult r;
  switch (format) {
    case SpanFormat::otlp_proto: r = otlp_proto_.decode(body, *this); break;
    case SpanFormat::otlp_json: r = otlp_json_.decode(body, *this); break;
    case SpanFormat::jaeger_proto: r = jaeger_proto_.decode(body, *this); break;
    case SpanFormat::jaeger_json: r = jaeger_json_.decode(body, *this); break;
    case SpanFormat::otlp_envelope: break;
  }
  shared_.spans.inc(r.spans);
  if (r.rejected_spans != 0) {
    shared_.rejected_spans[static_cast<std::size_t>(r.span_error)]->inc(r.rejected_spans);
    if (auto suppressed = shared_.log_limiter.allow(std::string("span-") + spans::to_string(r.span_error))) {
      spdlog::warn("spans: {} span(s) of the message at {}/{} offset {} were refused (last reason: {}); the others "
                   "were kept ({} more since the last report)",
                   r.rejected_spans, message.topic, message.partition, message.offset, spans::to_string(r.span_error),
                   *suppressed);
    }
  }
  if (r.error != spans::SpanReject::none) reject_message(message, r.error, "not decodable");
}

sinks::InsertRequest SpanBatchBuilder::take() {
  sinks::InsertRequest r;
  r.table = table_;
  r.format = "Native";
  r.rows = block_.rows();
  r.body = block_.take();
  return r;
}

BatchBuilderFactory span_builders(SpanDecoding& shared, SpanFormat format, ClickHouseDialect dialect,
                                  std::string table) {
  return [&shared, format, dialect, table = std::move(table)](const bus::PartitionRef&) {
    return std::make_unique<SpanBatchBuilder>(shared, format, dialect, table);
  };
}

BatchBuilderFactory span_builders(SpanDecoding& shared, std::map<std::string, SpanFormat> formats, SpanFormat fallback,
                                  ClickHouseDialect dialect, std::string table) {
  return [&shared, formats = std::move(formats), fallback, dialect, table = std::move(table)](const bus::PartitionRef& p) {
    const auto it = formats.find(p.topic);
    return std::make_unique<SpanBatchBuilder>(shared, it != formats.end() ? it->second : fallback, dialect, table);
  };
}

}  // namespace sluice::pipeline
