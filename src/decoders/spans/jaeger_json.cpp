// JaegerJsonDecoder: jaeger.api_v2.Span in its jsonpb form (ids in base64, RFC 3339 start time,
// "1.5s" durations, vType by name).
#include <cstring>

#include "decoders/spans/jaeger.hpp"

namespace sluice::spans {
namespace {

using simdjson::SUCCESS;
using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

template <std::size_t N>
bool base64_id(element e, std::array<std::uint8_t, N>& out, std::string& scratch) {
  std::string_view s;
  scratch.clear();
  if (e.get_string().get(s) != SUCCESS || !decode_base64(s, scratch) || scratch.size() != N) return false;
  std::memcpy(out.data(), scratch.data(), N);
  return true;
}

SpanReject tags(element list, Attributes& attrs, const SpanLimits& limits, std::string& scratch) {
  array items;
  if (list.get_array().get(items) != SUCCESS) return SpanReject::malformed;
  for (element item : items) {
    if (attrs.size() >= limits.max_attributes) return SpanReject::too_many;
    object kv;
    std::string_view key, text;
    if (item.get_object().get(kv) != SUCCESS) return SpanReject::malformed;
    if (kv["key"].get_string().get(key) != SUCCESS) key = {};
    std::uint64_t type = 0;
    element t;
    if (kv["vType"].get(t) == SUCCESS) {
      if (t.get_string().get(text) == SUCCESS) {
        if (text == "BOOL") type = 1;
        else if (text == "INT64") type = 2;
        else if (text == "FLOAT64") type = 3;
        else if (text == "BINARY") type = 4;
      } else if (!json::get_u64(t, type)) {
        return SpanReject::malformed;
      }
    }
    auto& out = attrs.add(key);
    element v;
    switch (type) {
      case 1: {
        bool b = false;
        if (kv["vBool"].get(v) == SUCCESS && v.get_bool().get(b) != SUCCESS) return SpanReject::malformed;
        out = b ? "true" : "false";
        break;
      }
      case 2: {
        std::int64_t i = 0;
        if (kv["vInt64"].get(v) == SUCCESS && !json::get_i64(v, i)) return SpanReject::malformed;
        out = std::to_string(i);
        break;
      }
      case 3: {
        double d = 0;
        if (kv["vFloat64"].get(v) == SUCCESS && !json::get_double(v, d)) return SpanReject::malformed;
        append_double(out, d, false);
        break;
      }
      case 4: {
        // Re-encoded so that both Jaeger encodings give the same text.
        scratch.clear();
        if (kv["vBinary"].get_string().get(text) == SUCCESS && !decode_base64(text, scratch)) return SpanReject::malformed;
        append_base64(out, {reinterpret_cast<const std::uint8_t*>(scratch.data()), scratch.size()});
        break;
      }
      default:
        if (kv["vStr"].get_string().get(text) == SUCCESS) out.assign(text);
        break;
    }
  }
  return SpanReject::none;
}

}  // namespace

DecodeResult JaegerJsonDecoder::decode(std::span<const std::byte> payload, SpanSink& sink) {
  DecodeResult result;
  element root;
  object o;
  const auto parsed = doc_.parse(payload, root);
  if (parsed == simdjson::DEPTH_ERROR) {
    result.error = SpanReject::too_deep;
    return result;
  }
  if (parsed != SUCCESS || root.get_object().get(o) != SUCCESS) {
    result.error = SpanReject::malformed;
    return result;
  }
  const auto err = span(o);
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

SpanReject JaegerJsonDecoder::span(object o) {
  span_.clear_span();
  span_.clear_resource();
  element e;
  std::string_view text;
  if (o["traceId"].get(e) != SUCCESS || !base64_id(e, span_.trace_id, scratch_) || all_zero(span_.trace_id)) {
    return SpanReject::bad_trace_id;
  }
  if (o["spanId"].get(e) != SUCCESS || !base64_id(e, span_.span_id, scratch_) || all_zero(span_.span_id)) {
    return SpanReject::bad_span_id;
  }
  if (o["operationName"].get_string().get(text) == SUCCESS) span_.name.assign(text);
  if (o["flags"].get(e) == SUCCESS) {
    std::uint64_t flags = 0;
    if (json::get_u64(e, flags)) span_.flags = static_cast<std::uint32_t>(flags);
  }
  if (o["startTime"].get_string().get(text) == SUCCESS && !parse_rfc3339_ns(text, span_.start_ns)) {
    return SpanReject::bad_time;
  }
  std::uint64_t duration = 0;
  if (o["duration"].get_string().get(text) == SUCCESS && !parse_duration_ns(text, duration)) return SpanReject::bad_time;
  span_.end_ns = span_.start_ns + duration;
  if (o["references"].get(e) == SUCCESS) {
    array refs;
    if (e.get_array().get(refs) != SUCCESS) return SpanReject::malformed;
    for (element ref : refs) {
      object ro;
      if (ref.get_object().get(ro) != SUCCESS) return SpanReject::malformed;
      TraceId trace{};
      SpanId id{};
      element t;
      if (ro["traceId"].get(t) != SUCCESS || !base64_id(t, trace, scratch_)) return SpanReject::bad_trace_id;
      if (ro["spanId"].get(t) != SUCCESS || !base64_id(t, id, scratch_)) return SpanReject::bad_span_id;
      // jsonpb leaves out CHILD_OF, the enum's zero.
      const bool child_of = ro["refType"].get_string().get(text) != SUCCESS || text != "FOLLOWS_FROM";
      if (child_of && !span_.has_parent && trace == span_.trace_id) {
        span_.parent_span_id = id;
        span_.has_parent = true;
      } else {
        if (span_.links.size() >= limits_.max_links) return SpanReject::too_many;
        auto& l = span_.links.add();
        l.trace_id = trace;
        l.span_id = id;
        l.attributes.add("opentracing.ref_type") = child_of ? "child_of" : "follows_from";
      }
    }
  }
  if (o["tags"].get(e) == SUCCESS) {
    if (auto err = tags(e, span_.attributes, limits_, scratch_); err != SpanReject::none) return err;
  }
  if (o["logs"].get(e) == SUCCESS) {
    array logs;
    if (e.get_array().get(logs) != SUCCESS) return SpanReject::malformed;
    for (element log : logs) {
      if (span_.events.size() >= limits_.max_events) return SpanReject::too_many;
      object lo;
      if (log.get_object().get(lo) != SUCCESS) return SpanReject::malformed;
      auto& ev = span_.events.add();
      if (lo["timestamp"].get_string().get(text) == SUCCESS && !parse_rfc3339_ns(text, ev.time_ns)) {
        return SpanReject::bad_time;
      }
      element fields;
      if (lo["fields"].get(fields) == SUCCESS) {
        if (auto err = tags(fields, ev.attributes, limits_, scratch_); err != SpanReject::none) return err;
      }
    }
  }
  object process;
  if (o["process"].get_object().get(process) == SUCCESS) {
    if (process["serviceName"].get_string().get(text) == SUCCESS) span_.service_name.assign(text);
    span_.resource_attributes.add("service.name") = span_.service_name;
    if (process["tags"].get(e) == SUCCESS) {
      if (auto err = tags(e, span_.resource_attributes, limits_, scratch_); err != SpanReject::none) return err;
    }
  }
  if (o["warnings"].get(e) == SUCCESS) {
    array warnings;
    if (e.get_array().get(warnings) != SUCCESS) return SpanReject::malformed;
    if (warnings.size() > limits_.max_attributes) return SpanReject::too_many;
    if (warnings.size() != 0) {
      if (span_.attributes.size() >= limits_.max_attributes) return SpanReject::too_many;
      auto& out = span_.attributes.add("jaeger.warnings");
      out += '[';
      for (element w : warnings) {
        if (w.get_string().get(text) != SUCCESS) return SpanReject::malformed;
        if (out.size() > 1) out += ',';
        append_json_string(out, text);
      }
      out += ']';
    }
  }
  apply_jaeger_conventions(span_);
  return SpanReject::none;
}

}  // namespace sluice::spans
