// ProtobufReader: a bounds-checked cursor over Protocol Buffers wire format (varints, tags, fields).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace sluice::protobuf {

enum class WireType : std::uint8_t { varint = 0, fixed64 = 1, length_delimited = 2, start_group = 3, end_group = 4, fixed32 = 5 };

// One field as read: its number, wire type, and value (the integer for varint/fixed, the bytes for
// length-delimited).
struct Field {
  std::uint32_t number = 0;
  WireType type = WireType::varint;
  std::uint64_t integer = 0;
  std::span<const std::byte> bytes;

  std::string_view text() const { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }
  double as_double() const {
    double d;
    std::memcpy(&d, &integer, sizeof d);
    return d;
  }
  float as_float() const {
    const auto bits = static_cast<std::uint32_t>(integer);
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }
  std::int64_t as_sint64() const {  // zigzag
    return static_cast<std::int64_t>((integer >> 1) ^ (~(integer & 1) + 1));
  }
};

// Reads fields one after the other. Never reads outside its span: a truncated or malformed input
// makes next() return false with failed() true. Groups (deprecated) are refused as malformed.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> data) : p_(data.data()), end_(data.data() + data.size()) {}

  bool next(Field& f) {
    if (p_ == end_ || failed_) return false;
    std::uint64_t key;
    if (!varint(key) || key >> 32 != 0) return fail();
    f.number = static_cast<std::uint32_t>(key >> 3);
    if (f.number == 0) return fail();
    f.type = static_cast<WireType>(key & 7);
    f.bytes = {};
    switch (f.type) {
      case WireType::varint:
        return varint(f.integer) || fail();
      case WireType::fixed64:
        if (end_ - p_ < 8) return fail();
        f.integer = load_le(8);
        return true;
      case WireType::fixed32:
        if (end_ - p_ < 4) return fail();
        f.integer = load_le(4);
        return true;
      case WireType::length_delimited: {
        std::uint64_t n;
        if (!varint(n) || n > static_cast<std::uint64_t>(end_ - p_)) return fail();
        f.bytes = {p_, static_cast<std::size_t>(n)};
        p_ += n;
        return true;
      }
      default:
        return fail();
    }
  }
  bool failed() const { return failed_; }
  bool done() const { return p_ == end_; }

  // Packed repeated scalars: reads one varint from `bytes` of a length-delimited field.
  static bool read_varint(std::span<const std::byte>& bytes, std::uint64_t& out) {
    Reader r(bytes);
    if (!r.varint(out)) return false;
    bytes = bytes.subspan(static_cast<std::size_t>(r.p_ - bytes.data()));
    return true;
  }

 private:
  bool fail() {
    failed_ = true;
    return false;
  }
  bool varint(std::uint64_t& out) {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      const auto b = static_cast<std::uint8_t>(*p_++);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        out = v;
        return true;
      }
    }
    return false;
  }
  std::uint64_t load_le(int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(p_[i])) << (8 * i);
    p_ += n;
    return v;
  }

  const std::byte* p_;
  const std::byte* end_;
  bool failed_ = false;
};

}  // namespace sluice::protobuf
