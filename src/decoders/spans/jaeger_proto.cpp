// JaegerProtoDecoder: jaeger.api_v2.Span (model.proto) in protobuf.
#include <cstring>

#include "core/protobuf_wire.hpp"
#include "decoders/spans/jaeger.hpp"

namespace sluice::spans {
namespace {

using protobuf::Field;
using protobuf::Reader;
using protobuf::WireType;
using Bytes = std::span<const std::byte>;

bool ld(const Field& f) { return f.type == WireType::length_delimited; }

// google.protobuf.Timestamp / Duration { int64 seconds = 1; int32 nanos = 2; } as nanoseconds.
SpanReject time_ns(Bytes bytes, std::uint64_t& out) {
  std::int64_t seconds = 0, nanos = 0;
  Field f;
  Reader r(bytes);
  while (r.next(f)) {
    if (f.type != WireType::varint) continue;
    if (f.number == 1) seconds = static_cast<std::int64_t>(f.integer);
    else if (f.number == 2) nanos = static_cast<std::int32_t>(f.integer);
  }
  if (r.failed()) return SpanReject::malformed;
  if (seconds < 0 || seconds > 9'000'000'000LL || nanos < 0 || nanos > 999'999'999) return SpanReject::bad_time;
  out = static_cast<std::uint64_t>(seconds) * 1'000'000'000ULL + static_cast<std::uint64_t>(nanos);
  return SpanReject::none;
}

// KeyValue { key = 1; ValueType v_type = 2; v_str = 3; v_bool = 4; v_int64 = 5; v_float64 = 6; v_binary = 7; }
SpanReject key_value(Bytes bytes, Attributes& attrs, const SpanLimits& limits) {
  if (attrs.size() >= limits.max_attributes) return SpanReject::too_many;
  std::string_view key, str;
  Bytes binary;
  std::uint64_t type = 0, boolean = 0, integer = 0;
  double dbl = 0;
  Field f;
  Reader r(bytes);
  while (r.next(f)) {
    switch (f.number) {
      case 1: if (ld(f)) key = f.text(); break;
      case 2: if (f.type == WireType::varint) type = f.integer; break;
      case 3: if (ld(f)) str = f.text(); break;
      case 4: if (f.type == WireType::varint) boolean = f.integer; break;
      case 5: if (f.type == WireType::varint) integer = f.integer; break;
      case 6: if (f.type == WireType::fixed64) dbl = f.as_double(); break;
      case 7: if (ld(f)) binary = f.bytes; break;
      default: break;
    }
  }
  if (r.failed()) return SpanReject::malformed;
  auto& out = attrs.add(key);
  switch (type) {
    case 1: out = boolean != 0 ? "true" : "false"; break;
    case 2: out = std::to_string(static_cast<std::int64_t>(integer)); break;
    case 3: append_double(out, dbl, false); break;
    case 4: append_base64(out, {reinterpret_cast<const std::uint8_t*>(binary.data()), binary.size()}); break;
    default: out.assign(str); break;
  }
  return SpanReject::none;
}

template <std::size_t N>
bool copy_id(const Field& f, std::array<std::uint8_t, N>& out) {
  if (!ld(f) || f.bytes.size() != N) return false;
  std::memcpy(out.data(), f.bytes.data(), N);
  return true;
}

}  // namespace

DecodeResult JaegerProtoDecoder::decode(Bytes payload, SpanSink& sink) {
  DecodeResult result;
  const auto err = span(payload);
  if (err == SpanReject::malformed) {
    result.error = err;
  } else if (err != SpanReject::none) {
    result.rejected_spans = 1;
    result.span_error = err;
  } else {
    sink.on_span(span_);
    result.spans = 1;
  }
  return result;
}

SpanReject JaegerProtoDecoder::span(Bytes bytes) {
  span_.clear_span();
  span_.clear_resource();
  bool have_trace = false, have_span = false;
  std::uint64_t duration = 0;
  std::string& warnings = span_.status_message;  // scratch until the end; status comes from tags
  warnings.clear();
  std::size_t n_warnings = 0;
  Field f;
  Reader r(bytes);
  while (r.next(f)) {
    SpanReject err = SpanReject::none;
    switch (f.number) {
      case 1:
        if (!copy_id(f, span_.trace_id)) return SpanReject::bad_trace_id;
        have_trace = true;
        break;
      case 2:
        if (!copy_id(f, span_.span_id)) return SpanReject::bad_span_id;
        have_span = true;
        break;
      case 3:
        if (!ld(f)) return SpanReject::malformed;
        span_.name.assign(f.text());
        break;
      case 4: {  // SpanRef { trace_id = 1; span_id = 2; SpanRefType ref_type = 3; }
        if (!ld(f)) return SpanReject::malformed;
        TraceId trace{};
        SpanId id{};
        std::uint64_t type = 0;
        Reader rr(f.bytes);
        Field g;
        while (rr.next(g)) {
          if (g.number == 1 && !copy_id(g, trace)) return SpanReject::bad_trace_id;
          if (g.number == 2 && !copy_id(g, id)) return SpanReject::bad_span_id;
          if (g.number == 3 && g.type == WireType::varint) type = g.integer;
        }
        if (rr.failed()) return SpanReject::malformed;
        // The trace id comes first on the wire in practice; a parent is decided after the loop anyway.
        if (type == 0 && !span_.has_parent && (!have_trace || trace == span_.trace_id)) {
          span_.parent_span_id = id;
          span_.has_parent = true;
        } else {
          if (span_.links.size() >= limits_.max_links) return SpanReject::too_many;
          auto& l = span_.links.add();
          l.trace_id = trace;
          l.span_id = id;
          l.attributes.add("opentracing.ref_type") = type == 0 ? "child_of" : "follows_from";
        }
        break;
      }
      case 5:
        if (f.type == WireType::varint) span_.flags = static_cast<std::uint32_t>(f.integer);
        break;
      case 6:
        if (!ld(f)) return SpanReject::malformed;
        err = time_ns(f.bytes, span_.start_ns);
        break;
      case 7:
        if (!ld(f)) return SpanReject::malformed;
        err = time_ns(f.bytes, duration);
        break;
      case 8:
        if (!ld(f)) return SpanReject::malformed;
        err = key_value(f.bytes, span_.attributes, limits_);
        break;
      case 9: {  // Log { Timestamp timestamp = 1; repeated KeyValue fields = 2; }
        if (!ld(f)) return SpanReject::malformed;
        if (span_.events.size() >= limits_.max_events) return SpanReject::too_many;
        auto& e = span_.events.add();
        Reader lr(f.bytes);
        Field g;
        while (lr.next(g) && err == SpanReject::none) {
          if (g.number == 1 && ld(g)) err = time_ns(g.bytes, e.time_ns);
          else if (g.number == 2 && ld(g)) err = key_value(g.bytes, e.attributes, limits_);
        }
        if (lr.failed()) return SpanReject::malformed;
        break;
      }
      case 10: {  // Process { service_name = 1; repeated KeyValue tags = 2; }
        if (!ld(f)) return SpanReject::malformed;
        span_.clear_resource();
        Reader pr(f.bytes);
        Field g;
        while (pr.next(g)) {
          if (g.number == 1 && ld(g)) span_.service_name.assign(g.text());
        }
        if (pr.failed()) return SpanReject::malformed;
        span_.resource_attributes.add("service.name") = span_.service_name;
        Reader tr(f.bytes);
        while (tr.next(g) && err == SpanReject::none) {
          if (g.number == 2 && ld(g)) err = key_value(g.bytes, span_.resource_attributes, limits_);
        }
        break;
      }
      case 12:
        if (!ld(f)) return SpanReject::malformed;
        if (++n_warnings > limits_.max_attributes) return SpanReject::too_many;
        warnings += n_warnings == 1 ? '[' : ',';
        append_json_string(warnings, f.text());
        break;
      default:
        break;
    }
    if (err != SpanReject::none) return err;
  }
  if (r.failed()) return SpanReject::malformed;
  if (!have_trace || all_zero(span_.trace_id)) return SpanReject::bad_trace_id;
  if (!have_span || all_zero(span_.span_id)) return SpanReject::bad_span_id;
  span_.end_ns = span_.start_ns + duration;
  if (n_warnings != 0) {
    if (span_.attributes.size() >= limits_.max_attributes) return SpanReject::too_many;
    warnings += ']';
    span_.attributes.add("jaeger.warnings").swap(warnings);
  }
  warnings.clear();
  apply_jaeger_conventions(span_);
  return SpanReject::none;
}

}  // namespace sluice::spans
