#include "decoders/spans/span.hpp"

#include <charconv>
#include <cmath>
#include <utility>

namespace sluice::spans {

const std::string* Attributes::find(std::string_view key) const {
  for (const auto& a : *this) {
    if (a.key == key) return &a.value;
  }
  return nullptr;
}

bool Attributes::take(std::string_view key, std::string& value) {
  for (std::size_t i = 0; i < list_.size(); ++i) {
    if (list_[i].key != key) continue;
    std::swap(value, list_[i].value);
    // Shift the rest down by swapping buffers, so that no string is copied or freed.
    for (std::size_t j = i + 1; j < list_.size(); ++j) std::swap(list_[j - 1], list_[j]);
    list_.pop_back();
    return true;
  }
  return false;
}

const char* to_string(SpanKind kind) {
  switch (kind) {
    case SpanKind::internal: return "Internal";
    case SpanKind::server: return "Server";
    case SpanKind::client: return "Client";
    case SpanKind::producer: return "Producer";
    case SpanKind::consumer: return "Consumer";
    case SpanKind::unspecified: break;
  }
  return "Unspecified";
}

const char* to_string(StatusCode code) {
  switch (code) {
    case StatusCode::ok: return "Ok";
    case StatusCode::error: return "Error";
    case StatusCode::unset: break;
  }
  return "Unset";
}

const char* to_string(SpanReject r) {
  switch (r) {
    case SpanReject::none: return "none";
    case SpanReject::malformed: return "malformed";
    case SpanReject::too_deep: return "too_deep";
    case SpanReject::too_many: return "too_many";
    case SpanReject::bad_trace_id: return "bad_trace_id";
    case SpanReject::bad_span_id: return "bad_span_id";
    case SpanReject::bad_time: return "bad_time";
    case SpanReject::unknown_format: return "unknown_format";
  }
  return "unknown";
}

void Span::clear_span() {
  trace_id = {};
  span_id = {};
  parent_span_id = {};
  has_parent = false;
  trace_state.clear();
  name.clear();
  kind = SpanKind::unspecified;
  start_ns = end_ns = 0;
  flags = 0;
  status_code = StatusCode::unset;
  status_message.clear();
  attributes.clear();
  events.clear();
  links.clear();
}

void Span::clear_resource() {
  service_name.clear();
  resource_attributes.clear();
  scope_name.clear();
  scope_version.clear();
}

void append_hex(std::string& out, std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (auto b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;  // URL-safe alphabet accepted too
  if (c == '/' || c == '_') return 63;
  return -1;
}
}  // namespace

bool parse_hex(std::string_view text, std::span<std::uint8_t> out) {
  if (text.size() != out.size() * 2) return false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return true;
}

void append_base64(std::string& out, std::span<const std::uint8_t> bytes) {
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = bytes[i] << 16 | bytes[i + 1] << 8 | bytes[i + 2];
    out += kBase64[v >> 18];
    out += kBase64[(v >> 12) & 63];
    out += kBase64[(v >> 6) & 63];
    out += kBase64[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t v = bytes[i] << 16;
    out += kBase64[v >> 18];
    out += kBase64[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const std::uint32_t v = bytes[i] << 16 | bytes[i + 1] << 8;
    out += kBase64[v >> 18];
    out += kBase64[(v >> 12) & 63];
    out += kBase64[(v >> 6) & 63];
    out += '=';
  }
}

bool decode_base64(std::string_view text, std::string& out) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return false;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int v = base64_value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return true;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kDigits[c >> 4];
          out += kDigits[c & 15];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

void append_double(std::string& out, double d, bool json) {
  if (std::isnan(d) || std::isinf(d)) {
    const char* text = std::isnan(d) ? "NaN" : (d > 0 ? "Infinity" : "-Infinity");
    if (json) out += '"';
    out += text;
    if (json) out += '"';
    return;
  }
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, d);
  out.append(buf, r.ptr);
}

bool all_zero(std::span<const std::uint8_t> bytes) {
  for (auto b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

}  // namespace sluice::spans
