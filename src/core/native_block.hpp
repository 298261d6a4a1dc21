// NativeColumn / encode_native_block: columnar buffers laid out as ClickHouse's Native format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/same_text.hpp"

namespace sluice {

// A growable byte buffer for hot append paths: no zero-filling on growth and one capacity check per
// append, so writers can reserve room, write through a raw pointer and commit what they wrote.
class ByteBuffer {
 public:
  ByteBuffer() = default;
  ByteBuffer(const ByteBuffer& other) { *this = other; }
  ByteBuffer& operator=(const ByteBuffer& other);
  ByteBuffer(ByteBuffer&&) noexcept = default;
  ByteBuffer& operator=(ByteBuffer&&) noexcept = default;

  std::uint8_t* data() { return data_.get(); }
  const std::uint8_t* data() const { return data_.get(); }
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_.get()), size_}; }

  // Room for `n` more bytes at the end; write there, then commit().
  std::uint8_t* tail(std::size_t n) {
    if (capacity_ - size_ < n) grow(size_ + n);
    return data_.get() + size_;
  }
  void commit(std::size_t n) { size_ += n; }
  void append(const void* p, std::size_t n) {
    std::memcpy(tail(n), p, n);
    size_ += n;
  }
  // Capacity for at least `n` bytes; keeps the first size() bytes.
  void reserve(std::size_t n) {
    if (n > capacity_) reallocate(n);
  }
  // For buffers written through raw pointers: declares the first `n` bytes (<= capacity) written.
  void set_size(std::size_t n) { size_ = n; }
  void clear() { size_ = 0; }

 private:
  void grow(std::size_t need);  // amortized: at least doubles
  void reallocate(std::size_t capacity);

  std::unique_ptr<std::uint8_t[]> data_;
  std::size_t size_ = 0, capacity_ = 0;
};

// Writes `v` as an unsigned LEB128 varint at `p` (room for 10 bytes); returns the end.
inline std::uint8_t* write_varint(std::uint8_t* p, std::uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<std::uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<std::uint8_t>(v);
  return p;
}

// One fixed-width value / one String value (varint length, bytes) appended to a Native column buffer.
template <typename T>
void put_native_fixed(ByteBuffer& out, T v) {
  std::memcpy(out.tail(sizeof(T)), &v, sizeof(T));  // x86-64 is little-endian, like Native
  out.commit(sizeof(T));
}
inline void put_native_string(ByteBuffer& out, std::string_view s) {
  std::uint8_t* start = out.tail(s.size() + 10);
  std::uint8_t* p = write_varint(start, s.size());
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  out.commit(static_cast<std::size_t>(p - start) + s.size());
}

// One column of a block, its values appended in ClickHouse's Native layout (little-endian fixed
// width, varint-prefixed strings, raw bytes for FixedString/IPv6). Arrays keep their offsets apart.
class NativeColumn {
 public:
  NativeColumn(std::string name, std::string type) : name_(std::move(name)), type_(std::move(type)) {}

  template <typename T>
  void put(T v) {
    put_native_fixed(data_, v);
  }
  void put_bytes(const void* p, std::size_t n) { data_.append(p, n); }
  void put_string(std::string_view s) { put_native_string(data_, s); }
  // Arrays: push the elements with put(), then close the row.
  void close_array_row(std::size_t elements) {
    array_total_ += elements;
    offsets_.push_back(array_total_);
  }

  const std::string& name() const { return name_; }
  const std::string& type() const { return type_; }
  std::size_t bytes() const { return data_.size() + offsets_.size() * 8; }
  void clear() {
    data_.clear();
    offsets_.clear();
    array_total_ = 0;
  }
  void append_to(std::string& out) const;

 private:
  std::string name_;
  std::string type_;
  ByteBuffer data_;
  std::vector<std::uint64_t> offsets_;
  std::uint64_t array_total_ = 0;
};

void put_varint(std::string& out, std::uint64_t v);

// The dictionary of a LowCardinality(String) column in a Native block: each distinct value gets a
// number, in the order values first appear, after the empty string (number 0, the type's default, as
// ClickHouse numbers its own). The rows are those numbers; the server stores the column as it is
// instead of hashing every value of a String column to build one.
class LowCardinalityKeys {
 public:
  // The layout's constants: keys serialization version 1 (SharedDictionariesWithAdditionalKeys), and
  // the flags beside the index width code (which is 0, 1, 2 for UInt8, UInt16, UInt32 numbers).
  static constexpr std::uint64_t kKeysVersion = 1;
  static constexpr std::uint64_t kNeedGlobalDictionary = 1u << 8;
  static constexpr std::uint64_t kHasAdditionalKeys = 1u << 9;
  static constexpr std::uint64_t kNeedUpdateDictionary = 1u << 10;

  std::uint32_t index_of(std::string_view value);
  std::size_t size() const { return numbers_.size() + 1; }
  std::size_t bytes() const { return keys_.size(); }
  void clear();
  // The column's data as Native lays it out after the column's name and type: the serialization
  // version, the index width and flags, the keys, then one number a row (`rows`) at the narrowest
  // width that holds every key. Nothing for no rows (Native reads no data then).
  void append_column(std::string& out, std::span<const std::uint32_t> rows) const;

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const;
  };
  struct Equal {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const { return same_text(a, b); }
  };
  std::unordered_map<std::string, std::uint32_t, Hash, Equal> numbers_;
  ByteBuffer keys_;  // the keys after the empty one, varint-prefixed, in number order
};

// One fixed-width value of a Native column, in the machine's (little-endian) byte order.
template <typename T>
void put_native_fixed(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

// One String value of a Native column: varint length, then the bytes.
void put_native_string(std::string& out, std::string_view s);

// A column of string-to-string maps, from its parts: `offsets` (UInt64 running totals, one a row),
// every key, every value. As `Map(String, String)` when `as_map`; else, for servers without Map
// (ClickHouse 18.16), as the Nested pair `<name>.Key` / `<name>.Value` of Array(String).
void put_native_string_map(std::string& out, std::string_view name, bool as_map, std::string_view offsets,
                           std::string_view keys, std::string_view values);

// The header of one column in a Native block: its name and type, each varint-prefixed.
void put_native_column_header(std::string& out, std::string_view name, std::string_view type);

// A whole block in Native format (as sent with `INSERT ... FORMAT Native`).
void encode_native_block(const std::vector<NativeColumn>& columns, std::size_t rows, std::string& out);

}  // namespace sluice
