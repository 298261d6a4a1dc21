#include "decoders/spans/otlp_proto.hpp"

#include <cstring>

#include "core/protobuf_wire.hpp"

namespace sluice::spans {
namespace {

using protobuf::Field;
using protobuf::Reader;
using protobuf::WireType;
using Bytes = std::span<const std::byte>;

bool is_bytes(const Field& f) { return f.type == WireType::length_delimited; }

std::span<const std::uint8_t> u8(Bytes b) { return {reinterpret_cast<const std::uint8_t*>(b.data()), b.size()}; }

void append_int(std::string& out, std::int64_t v) { out += std::to_string(v); }

// KeyValue as a member of a JSON object: "key":value.
SpanReject json_member(Bytes kv, std::string& out, int depth, const SpanLimits& limits) {
  Field f;
  Reader r(kv);
  std::string_view key;
  Bytes value;
  bool has_value = false;
  while (r.next(f)) {
    if (f.number == 1 && is_bytes(f)) key = f.text();
    else if (f.number == 2 && is_bytes(f)) value = f.bytes, has_value = true;
  }
  if (r.failed()) return SpanReject::malformed;
  append_json_string(out, key);
  out += ':';
  if (!has_value) {
    out += "null";
    return SpanReject::none;
  }
  return otlp_any_value(value, out, depth, true, limits);
}

}  // namespace

SpanReject otlp_any_value(Bytes bytes, std::string& out, int depth, bool json, const SpanLimits& limits) {
  if (depth > limits.max_depth) return SpanReject::too_deep;
  const std::size_t start = out.size();
  bool any = false;
  Field f;
  Reader r(bytes);
  while (r.next(f)) {
    const bool ld = is_bytes(f);
    const bool vi = f.type == WireType::varint;
    switch (f.number) {
      case 1:  // string_value
        if (!ld) return SpanReject::malformed;
        out.resize(start);
        if (json) append_json_string(out, f.text());
        else out.append(f.text());
        break;
      case 2:  // bool_value
        if (!vi) return SpanReject::malformed;
        out.resize(start);
        out += f.integer != 0 ? "true" : "false";
        break;
      case 3:  // int_value
        if (!vi) return SpanReject::malformed;
        out.resize(start);
        append_int(out, static_cast<std::int64_t>(f.integer));
        break;
      case 4:  // double_value
        if (f.type != WireType::fixed64) return SpanReject::malformed;
        out.resize(start);
        append_double(out, f.as_double(), json);
        break;
      case 5: {  // array_value: ArrayValue { repeated AnyValue values = 1; }
        if (!ld) return SpanReject::malformed;
        out.resize(start);
        out += '[';
        Reader a(f.bytes);
        Field e;
        std::size_t n = 0;
        while (a.next(e)) {
          if (e.number != 1 || !is_bytes(e)) continue;
          if (++n > limits.max_attributes) return SpanReject::too_many;
          if (n > 1) out += ',';
          if (auto err = otlp_any_value(e.bytes, out, depth + 1, true, limits); err != SpanReject::none) return err;
        }
        if (a.failed()) return SpanReject::malformed;
        out += ']';
        break;
      }
      case 6: {  // kvlist_value: KeyValueList { repeated KeyValue values = 1; }
        if (!ld) return SpanReject::malformed;
        out.resize(start);
        out += '{';
        Reader a(f.bytes);
        Field e;
        std::size_t n = 0;
        while (a.next(e)) {
          if (e.number != 1 || !is_bytes(e)) continue;
          if (++n > limits.max_attributes) return SpanReject::too_many;
          if (n > 1) out += ',';
          if (auto err = json_member(e.bytes, out, depth + 1, limits); err != SpanReject::none) return err;
        }
        if (a.failed()) return SpanReject::malformed;
        out += '}';
        break;
      }
      case 7:  // bytes_value
        if (!ld) return SpanReject::malformed;
        out.resize(start);
        if (json) out += '"';
        append_base64(out, u8(f.bytes));
        if (json) out += '"';
        break;
      default:
        continue;
    }
    any = true;
  }
  if (r.failed()) return SpanReject::malformed;
  if (!any && json) out += "null";
  return SpanReject::none;
}

SpanReject otlp_key_value(Bytes bytes, Attributes& attrs, const SpanLimits& limits) {
  if (attrs.size() >= limits.max_attributes) return SpanReject::too_many;
  Attribute& a = attrs.add_entry();
  Field f;
  Reader r(bytes);
  while (r.next(f)) {
    if (f.number == 1 && is_bytes(f)) {
      a.key.assign(f.text());
    } else if (f.number == 2 && is_bytes(f)) {
      a.value.clear();
      if (auto err = otlp_any_value(f.bytes, a.value, 0, false, limits); err != SpanReject::none) return err;
    }
  }
  return r.failed() ? SpanReject::malformed : SpanReject::none;
}

DecodeResult OtlpProtoDecoder::decode(Bytes payload, SpanSink& sink) {
  DecodeResult result;
  Field f;
  Reader r(payload);
  while (r.next(f)) {
    if (f.number != 1) continue;  // resource_spans
    if (!is_bytes(f)) {
      result.error = SpanReject::malformed;
      return result;
    }
    if (auto err = resource_spans(f.bytes, sink, result); err != SpanReject::none) {
      result.error = err;
      return result;
    }
  }
  if (r.failed()) result.error = SpanReject::malformed;
  return result;
}

SpanReject OtlpProtoDecoder::resource_spans(Bytes bytes, SpanSink& sink, DecodeResult& result) {
  span_.clear_resource();
  Field f;
  // The resource may follow its spans on the wire: read it first.
  {
    Reader r(bytes);
    while (r.next(f)) {
      if (f.number != 1) continue;
      if (!is_bytes(f)) return SpanReject::malformed;
      span_.resource_attributes.clear();
      Reader res(f.bytes);
      Field a;
      while (res.next(a)) {
        if (a.number != 1) continue;  // attributes
        if (!is_bytes(a)) return SpanReject::malformed;
        if (auto err = otlp_key_value(a.bytes, span_.resource_attributes, limits_); err != SpanReject::none) return err;
      }
      if (res.failed()) return SpanReject::malformed;
    }
    if (r.failed()) return SpanReject::malformed;
  }
  if (const auto* name = span_.resource_attributes.find("service.name")) span_.service_name = *name;
  Reader r(bytes);
  while (r.next(f)) {
    if (f.number != 2) continue;  // scope_spans
    if (!is_bytes(f)) return SpanReject::malformed;
    if (auto err = scope_spans(f.bytes, sink, result); err != SpanReject::none) return err;
  }
  return r.failed() ? SpanReject::malformed : SpanReject::none;
}

SpanReject OtlpProtoDecoder::scope_spans(Bytes bytes, SpanSink& sink, DecodeResult& result) {
  span_.scope_name.clear();
  span_.scope_version.clear();
  Field f;
  {
    Reader r(bytes);
    while (r.next(f)) {
      if (f.number != 1) continue;  // scope: InstrumentationScope { name = 1; version = 2; }
      if (!is_bytes(f)) return SpanReject::malformed;
      Reader s(f.bytes);
      Field a;
      while (s.next(a)) {
        if (a.number == 1 && is_bytes(a)) span_.scope_name.assign(a.text());
        else if (a.number == 2 && is_bytes(a)) span_.scope_version.assign(a.text());
      }
      if (s.failed()) return SpanReject::malformed;
    }
    if (r.failed()) return SpanReject::malformed;
  }
  Reader r(bytes);
  while (r.next(f)) {
    if (f.number != 2) continue;  // spans
    if (!is_bytes(f)) return SpanReject::malformed;
    if (result.spans + result.rejected_spans >= limits_.max_spans) return SpanReject::too_many;
    if (auto err = span(f.bytes); err != SpanReject::none) {
      ++result.rejected_spans;
      result.span_error = err;
      continue;
    }
    sink.on_span(span_);
    ++result.spans;
  }
  return r.failed() ? SpanReject::malformed : SpanReject::none;
}

namespace {

template <std::size_t N>
bool copy_id(const Field& f, std::array<std::uint8_t, N>& out) {
  if (f.type != WireType::length_delimited || f.bytes.size() != N) return false;
  std::memcpy(out.data(), f.bytes.data(), N);
  return true;
}

}  // namespace

SpanReject OtlpProtoDecoder::span(Bytes bytes) {
  span_.clear_span();
  bool have_trace = false, have_span = false;
  SpanReject err = SpanReject::none;
  Field f;
  Reader r(bytes);
  while (r.next(f) && err == SpanReject::none) {
    const bool ld = is_bytes(f);
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
        if (!ld) return SpanReject::malformed;
        span_.trace_state.assign(f.text());
        break;
      case 4:
        if (ld && f.bytes.empty()) break;
        if (!copy_id(f, span_.parent_span_id)) return SpanReject::bad_span_id;
        span_.has_parent = !all_zero(span_.parent_span_id);
        break;
      case 5:
        if (!ld) return SpanReject::malformed;
        span_.name.assign(f.text());
        break;
      case 6:
        if (f.type != WireType::varint) return SpanReject::malformed;
        span_.kind = f.integer <= 5 ? static_cast<SpanKind>(f.integer) : SpanKind::unspecified;
        break;
      case 7:
      case 8:
        if (f.type != WireType::fixed64) return SpanReject::malformed;
        (f.number == 7 ? span_.start_ns : span_.end_ns) = f.integer;
        break;
      case 9:
        if (!ld) return SpanReject::malformed;
        err = otlp_key_value(f.bytes, span_.attributes, limits_);
        break;
      case 11: {  // Event { time_unix_nano = 1 (fixed64); name = 2; attributes = 3; }
        if (!ld) return SpanReject::malformed;
        if (span_.events.size() >= limits_.max_events) return SpanReject::too_many;
        auto& e = span_.events.add();
        Reader er(f.bytes);
        Field g;
        while (er.next(g) && err == SpanReject::none) {
          if (g.number == 1 && g.type == WireType::fixed64) e.time_ns = g.integer;
          else if (g.number == 2 && is_bytes(g)) e.name.assign(g.text());
          else if (g.number == 3 && is_bytes(g)) err = otlp_key_value(g.bytes, e.attributes, limits_);
        }
        if (er.failed()) return SpanReject::malformed;
        break;
      }
      case 13: {  // Link { trace_id = 1; span_id = 2; trace_state = 3; attributes = 4; }
        if (!ld) return SpanReject::malformed;
        if (span_.links.size() >= limits_.max_links) return SpanReject::too_many;
        auto& l = span_.links.add();
        Reader lr(f.bytes);
        Field g;
        while (lr.next(g) && err == SpanReject::none) {
          if (g.number == 1) {
            if (!copy_id(g, l.trace_id)) return SpanReject::bad_trace_id;
          } else if (g.number == 2) {
            if (!copy_id(g, l.span_id)) return SpanReject::bad_span_id;
          } else if (g.number == 3 && is_bytes(g)) {
            l.trace_state.assign(g.text());
          } else if (g.number == 4 && is_bytes(g)) {
            err = otlp_key_value(g.bytes, l.attributes, limits_);
          }
        }
        if (lr.failed()) return SpanReject::malformed;
        break;
      }
      case 15: {  // Status { message = 2; code = 3; }
        if (!ld) return SpanReject::malformed;
        Reader sr(f.bytes);
        Field g;
        while (sr.next(g)) {
          if (g.number == 2 && is_bytes(g)) span_.status_message.assign(g.text());
          else if (g.number == 3 && g.type == WireType::varint)
            span_.status_code = g.integer <= 2 ? static_cast<StatusCode>(g.integer) : StatusCode::unset;
        }
        if (sr.failed()) return SpanReject::malformed;
        break;
      }
      case 16:
        if (f.type == WireType::fixed32) span_.flags = static_cast<std::uint32_t>(f.integer);
        break;
      default:
        break;
    }
  }
  if (err != SpanReject::none) return err;
  if (r.failed()) return SpanReject::malformed;
  if (!have_trace || all_zero(span_.trace_id)) return SpanReject::bad_trace_id;
  if (!have_span || all_zero(span_.span_id)) return SpanReject::bad_span_id;
  return SpanReject::none;
}

}  // namespace sluice::spans
