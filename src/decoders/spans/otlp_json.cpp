#include "decoders/spans/otlp_json.hpp"

namespace sluice::spans {
namespace {

using simdjson::SUCCESS;
using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

constexpr std::string_view kKinds[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
                                       "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"};
constexpr std::string_view kCodes[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"};

// An enum as its integer or its name; unknown values read as 0.
template <std::size_t N>
std::uint64_t enum_value(element e, const std::string_view (&names)[N]) {
  std::uint64_t v = 0;
  std::string_view s;
  if (e.get_string().get(s) == SUCCESS) {
    for (std::size_t i = 0; i < N; ++i) {
      if (names[i] == s) return i;
    }
    return 0;
  }
  if (!json::get_u64(e, v) || v >= N) return 0;
  return v;
}

template <std::size_t N>
SpanReject hex_id(element e, std::array<std::uint8_t, N>& out, SpanReject bad) {
  std::string_view s;
  if (e.get_string().get(s) != SUCCESS || !parse_hex(s, out)) return bad;
  return SpanReject::none;
}

}  // namespace

SpanReject otlp_json_any_value(element value, std::string& out, int depth, bool as_json, const SpanLimits& limits) {
  if (depth > limits.max_depth) return SpanReject::too_deep;
  object o;
  if (value.get_object().get(o) != SUCCESS) return SpanReject::malformed;
  const std::size_t start = out.size();
  bool any = false;
  for (auto [key, v] : o) {
    out.resize(start);
    any = true;
    if (key == "stringValue") {
      std::string_view s;
      if (v.get_string().get(s) != SUCCESS) return SpanReject::malformed;
      if (as_json) append_json_string(out, s);
      else out.append(s);
    } else if (key == "boolValue") {
      bool b;
      if (v.get_bool().get(b) != SUCCESS) return SpanReject::malformed;
      out += b ? "true" : "false";
    } else if (key == "intValue") {
      std::int64_t i;
      if (!json::get_i64(v, i)) return SpanReject::malformed;
      out += std::to_string(i);
    } else if (key == "doubleValue") {
      double d;
      if (!json::get_double(v, d)) return SpanReject::malformed;
      append_double(out, d, as_json);
    } else if (key == "bytesValue") {
      std::string_view s;
      if (v.get_string().get(s) != SUCCESS) return SpanReject::malformed;
      if (as_json) append_json_string(out, s);
      else out.append(s);
    } else if (key == "arrayValue" || key == "kvlistValue") {
      const bool is_array = key == "arrayValue";
      object inner;
      if (v.get_object().get(inner) != SUCCESS) return SpanReject::malformed;
      out += is_array ? '[' : '{';
      element values;
      if (inner["values"].get(values) == SUCCESS) {
        array items;
        if (values.get_array().get(items) != SUCCESS) return SpanReject::malformed;
        std::size_t n = 0;
        for (element item : items) {
          if (++n > limits.max_attributes) return SpanReject::too_many;
          if (n > 1) out += ',';
          if (!is_array) {
            object kv;
            std::string_view k;
            if (item.get_object().get(kv) != SUCCESS || kv["key"].get_string().get(k) != SUCCESS) {
              return SpanReject::malformed;
            }
            append_json_string(out, k);
            out += ':';
            element kvv;
            if (kv["value"].get(kvv) != SUCCESS) {
              out += "null";
              continue;
            }
            item = kvv;
          }
          if (auto err = otlp_json_any_value(item, out, depth + 1, true, limits); err != SpanReject::none) return err;
        }
      }
      out += is_array ? ']' : '}';
    } else {
      any = false;  // unknown member: ignored, like protobuf's unknown fields
    }
    if (any) break;
  }
  if (!any && as_json) out += "null";
  return SpanReject::none;
}

SpanReject otlp_json_attributes(element list, Attributes& attrs, const SpanLimits& limits) {
  array items;
  if (list.get_array().get(items) != SUCCESS) return SpanReject::malformed;
  for (element item : items) {
    if (attrs.size() >= limits.max_attributes) return SpanReject::too_many;
    object kv;
    std::string_view key;
    if (item.get_object().get(kv) != SUCCESS || kv["key"].get_string().get(key) != SUCCESS) return SpanReject::malformed;
    auto& value = attrs.add(key);
    element v;
    if (kv["value"].get(v) != SUCCESS) continue;
    if (auto err = otlp_json_any_value(v, value, 0, false, limits); err != SpanReject::none) return err;
  }
  return SpanReject::none;
}

DecodeResult OtlpJsonDecoder::decode(std::span<const std::byte> payload, SpanSink& sink) {
  DecodeResult result;
  element root;
  object top;
  const auto parsed = doc_.parse(payload, root);
  if (parsed == simdjson::DEPTH_ERROR) {
    result.error = SpanReject::too_deep;
    return result;
  }
  if (parsed != SUCCESS || root.get_object().get(top) != SUCCESS) {
    result.error = SpanReject::malformed;
    return result;
  }
  element rs_list;
  if (top["resourceSpans"].get(rs_list) != SUCCESS) return result;  // an empty request
  array resource_spans;
  if (rs_list.get_array().get(resource_spans) != SUCCESS) {
    result.error = SpanReject::malformed;
    return result;
  }
  for (element rs_el : resource_spans) {
    object rs;
    if (rs_el.get_object().get(rs) != SUCCESS) {
      result.error = SpanReject::malformed;
      return result;
    }
    span_.clear_resource();
    element attrs;
    if (rs["resource"]["attributes"].get(attrs) == SUCCESS) {
      if (auto err = otlp_json_attributes(attrs, span_.resource_attributes, limits_); err != SpanReject::none) {
        result.error = err;
        return result;
      }
    }
    if (const auto* name = span_.resource_attributes.find("service.name")) span_.service_name = *name;
    element ss_list;
    if (rs["scopeSpans"].get(ss_list) != SUCCESS) continue;
    array scope_spans;
    if (ss_list.get_array().get(scope_spans) != SUCCESS) {
      result.error = SpanReject::malformed;
      return result;
    }
    for (element ss_el : scope_spans) {
      object ss;
      if (ss_el.get_object().get(ss) != SUCCESS) {
        result.error = SpanReject::malformed;
        return result;
      }
      span_.scope_name.clear();
      span_.scope_version.clear();
      std::string_view text;
      if (ss["scope"]["name"].get_string().get(text) == SUCCESS) span_.scope_name.assign(text);
      if (ss["scope"]["version"].get_string().get(text) == SUCCESS) span_.scope_version.assign(text);
      element spans_el;
      if (ss["spans"].get(spans_el) != SUCCESS) continue;
      array spans;
      if (spans_el.get_array().get(spans) != SUCCESS) {
        result.error = SpanReject::malformed;
        return result;
      }
      for (element s : spans) {
        if (result.spans + result.rejected_spans >= limits_.max_spans) {
          result.error = SpanReject::too_many;
          return result;
        }
        object so;
        SpanReject err = s.get_object().get(so) == SUCCESS ? span(so) : SpanReject::malformed;
        if (err != SpanReject::none) {
          ++result.rejected_spans;
          result.span_error = err;
          continue;
        }
        sink.on_span(span_);
        ++result.spans;
      }
    }
  }
  return result;
}

SpanReject OtlpJsonDecoder::span(object o) {
  span_.clear_span();
  element e;
  if (o["traceId"].get(e) != SUCCESS) return SpanReject::bad_trace_id;
  if (auto err = hex_id(e, span_.trace_id, SpanReject::bad_trace_id); err != SpanReject::none) return err;
  if (o["spanId"].get(e) != SUCCESS) return SpanReject::bad_span_id;
  if (auto err = hex_id(e, span_.span_id, SpanReject::bad_span_id); err != SpanReject::none) return err;
  if (all_zero(span_.trace_id)) return SpanReject::bad_trace_id;
  if (all_zero(span_.span_id)) return SpanReject::bad_span_id;
  std::string_view text;
  if (o["parentSpanId"].get_string().get(text) == SUCCESS && !text.empty()) {
    if (!parse_hex(text, span_.parent_span_id)) return SpanReject::bad_span_id;
    span_.has_parent = !all_zero(span_.parent_span_id);
  }
  if (o["traceState"].get_string().get(text) == SUCCESS) span_.trace_state.assign(text);
  if (o["name"].get_string().get(text) == SUCCESS) span_.name.assign(text);
  if (o["kind"].get(e) == SUCCESS) span_.kind = static_cast<SpanKind>(enum_value(e, kKinds));
  if (o["startTimeUnixNano"].get(e) == SUCCESS && !json::get_u64(e, span_.start_ns)) return SpanReject::bad_time;
  if (o["endTimeUnixNano"].get(e) == SUCCESS && !json::get_u64(e, span_.end_ns)) return SpanReject::bad_time;
  if (o["flags"].get(e) == SUCCESS) {
    std::uint64_t flags = 0;
    if (json::get_u64(e, flags)) span_.flags = static_cast<std::uint32_t>(flags);
  }
  if (o["attributes"].get(e) == SUCCESS) {
    if (auto err = otlp_json_attributes(e, span_.attributes, limits_); err != SpanReject::none) return err;
  }
  if (o["events"].get(e) == SUCCESS) {
    array events;
    if (e.get_array().get(events) != SUCCESS) return SpanReject::malformed;
    for (element ev : events) {
      if (span_.events.size() >= limits_.max_events) return SpanReject::too_many;
      object eo;
      if (ev.get_object().get(eo) != SUCCESS) return SpanReject::malformed;
      auto& out = span_.events.add();
      element t;
      if (eo["timeUnixNano"].get(t) == SUCCESS && !json::get_u64(t, out.time_ns)) return SpanReject::bad_time;
      if (eo["name"].get_string().get(text) == SUCCESS) out.name.assign(text);
      if (eo["attributes"].get(t) == SUCCESS) {
        if (auto err = otlp_json_attributes(t, out.attributes, limits_); err != SpanReject::none) return err;
      }
    }
  }
  if (o["links"].get(e) == SUCCESS) {
    array links;
    if (e.get_array().get(links) != SUCCESS) return SpanReject::malformed;
    for (element lk : links) {
      if (span_.links.size() >= limits_.max_links) return SpanReject::too_many;
      object lo;
      if (lk.get_object().get(lo) != SUCCESS) return SpanReject::malformed;
      auto& out = span_.links.add();
      element t;
      if (lo["traceId"].get(t) != SUCCESS) return SpanReject::bad_trace_id;
      if (auto err = hex_id(t, out.trace_id, SpanReject::bad_trace_id); err != SpanReject::none) return err;
      if (lo["spanId"].get(t) != SUCCESS) return SpanReject::bad_span_id;
      if (auto err = hex_id(t, out.span_id, SpanReject::bad_span_id); err != SpanReject::none) return err;
      if (lo["traceState"].get_string().get(text) == SUCCESS) out.trace_state.assign(text);
      if (lo["attributes"].get(t) == SUCCESS) {
        if (auto err = otlp_json_attributes(t, out.attributes, limits_); err != SpanReject::none) return err;
      }
    }
  }
  object status;
  if (o["status"].get_object().get(status) == SUCCESS) {
    if (status["code"].get(e) == SUCCESS) span_.status_code = static_cast<StatusCode>(enum_value(e, kCodes));
    if (status["message"].get_string().get(text) == SUCCESS) span_.status_message.assign(text);
  }
  return SpanReject::none;
}

}  // namespace sluice::spans
