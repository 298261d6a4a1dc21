// Span: one decoded trace span (OTLP or Jaeger), with storage reused from span to span.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::spans {

// A list whose elements keep their buffers when cleared, so that decoding the next span into it
// allocates nothing once the list has seen its largest span.
template <typename T>
class ReusableList {
 public:
  T& add() {
    if (size_ == items_.size()) items_.emplace_back();
    T& item = items_[size_++];
    item.clear();
    return item;
  }
  void clear() { size_ = 0; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](std::size_t i) { return items_[i]; }
  const T& operator[](std::size_t i) const { return items_[i]; }
  const T* begin() const { return items_.data(); }
  const T* end() const { return items_.data() + size_; }
  void pop_back() { --size_; }

 private:
  std::vector<T> items_;
  std::size_t size_ = 0;
};

struct Attribute {
  std::string key;
  std::string value;  // as text: ints in decimal, doubles shortest round-trip, bools true/false,
                      // bytes in base64, arrays and key-value lists as JSON text
  void clear() {
    key.clear();
    value.clear();
  }
};

class Attributes {
 public:
  // A new attribute named `key`; the caller writes its value into the returned string.
  std::string& add(std::string_view key) {
    auto& a = list_.add();
    a.key.assign(key);
    return a.value;
  }
  // A new attribute whose key and value the caller fills in (protobuf may send the value first).
  Attribute& add_entry() { return list_.add(); }
  void clear() { list_.clear(); }
  std::size_t size() const { return list_.size(); }
  const Attribute& operator[](std::size_t i) const { return list_[i]; }
  const Attribute* begin() const { return list_.begin(); }
  const Attribute* end() const { return list_.end(); }
  const std::string* find(std::string_view key) const;
  // Takes `key` out of the list (keeping the order of the others) and its value into `value`.
  bool take(std::string_view key, std::string& value);
  void drop_last() { list_.pop_back(); }

 private:
  ReusableList<Attribute> list_;
};

using TraceId = std::array<std::uint8_t, 16>;
using SpanId = std::array<std::uint8_t, 8>;

struct SpanEvent {
  std::uint64_t time_ns = 0;
  std::string name;
  Attributes attributes;
  void clear() {
    time_ns = 0;
    name.clear();
    attributes.clear();
  }
};

struct SpanLink {
  TraceId trace_id{};
  SpanId span_id{};
  std::string trace_state;
  Attributes attributes;
  void clear() {
    trace_id = {};
    span_id = {};
    trace_state.clear();
    attributes.clear();
  }
};

// OTLP's numbering.
enum class SpanKind : std::uint8_t { unspecified = 0, internal = 1, server = 2, client = 3, producer = 4, consumer = 5 };
enum class StatusCode : std::uint8_t { unset = 0, ok = 1, error = 2 };
// As the OpenTelemetry Collector's ClickHouse exporter writes them ("Server", "Error", ...).
const char* to_string(SpanKind kind);
const char* to_string(StatusCode code);

struct Span {
  // Per resource (and scope): decoders set these once for all the spans that share them.
  std::string service_name;
  Attributes resource_attributes;
  std::string scope_name, scope_version;

  // Per span.
  TraceId trace_id{};
  SpanId span_id{};
  SpanId parent_span_id{};
  bool has_parent = false;
  std::string trace_state;
  std::string name;
  SpanKind kind = SpanKind::unspecified;
  std::uint64_t start_ns = 0;
  std::uint64_t end_ns = 0;
  std::uint32_t flags = 0;
  StatusCode status_code = StatusCode::unset;
  std::string status_message;
  Attributes attributes;
  ReusableList<SpanEvent> events;
  ReusableList<SpanLink> links;

  std::uint64_t duration_ns() const { return end_ns > start_ns ? end_ns - start_ns : 0; }
  void clear_span();      // the per-span fields
  void clear_resource();  // the per-resource fields
};

// Why a message, or one span of it, was refused.
enum class SpanReject : std::uint8_t {
  none = 0,
  malformed,       // not the encoding it claims (bad protobuf wire, bad JSON, wrong JSON type)
  too_deep,        // attribute values nested deeper than the limit
  too_many,        // more attributes, events, links or spans than the limits allow
  bad_trace_id,    // trace id missing, not 16 bytes, or all zero
  bad_span_id,     // span id missing, not 8 bytes, or all zero
  bad_time,        // a timestamp or duration that cannot be read
  unknown_format,  // an envelope or format marker this outlet does not know
};
inline constexpr std::size_t kSpanRejectCount = 8;
const char* to_string(SpanReject r);

struct SpanLimits {
  std::size_t max_attributes = 1024;  // per attribute list
  std::size_t max_events = 1024;
  std::size_t max_links = 1024;
  std::size_t max_spans = 1u << 20;   // per message
  int max_depth = 16;                 // nesting of arrays and key-value lists in attribute values
};

class SpanSink {
 public:
  virtual ~SpanSink() = default;
  virtual void on_span(const Span& span) = 0;
};

// What decoding one message did. `error` != none: the message was cut short there (spans before it
// were emitted). `span_error` is the reason of the last refused span.
struct DecodeResult {
  std::uint32_t spans = 0;
  std::uint32_t rejected_spans = 0;
  SpanReject error = SpanReject::none;
  SpanReject span_error = SpanReject::none;
};

// Text helpers shared by the decoders and the table.
void append_hex(std::string& out, std::span<const std::uint8_t> bytes);
bool parse_hex(std::string_view text, std::span<std::uint8_t> out);  // exact length
void append_base64(std::string& out, std::span<const std::uint8_t> bytes);
bool decode_base64(std::string_view text, std::string& out);  // standard alphabet, padding optional
void append_json_string(std::string& out, std::string_view s);
void append_double(std::string& out, double d, bool json);  // NaN/Inf quoted in JSON
bool all_zero(std::span<const std::uint8_t> bytes);

}  // namespace sluice::spans
