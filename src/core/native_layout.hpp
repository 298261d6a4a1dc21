// The layout of a Native block's columns, located in place: what merging and sorting blocks read.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

namespace sluice::native_layout {

// The column types whose Native layout is known here: what sluice's builders write.
struct TypeNode {
  enum class Kind : std::uint8_t { fixed, string, nullable, array, map, low_cardinality };
  Kind kind = Kind::fixed;
  std::size_t width = 0;  // fixed: bytes a value
  std::unique_ptr<TypeNode> first, second;
};

// Null when the type is not one of those (or nests deeper than any mapping writes).
std::unique_ptr<TypeNode> parse_type(std::string_view type);

// Bounds-checked reading of a body: every call fails rather than read past the end.
class Reader {
 public:
  explicit Reader(std::string_view s)
      : p_(reinterpret_cast<const std::uint8_t*>(s.data())), end_(p_ + s.size()) {}
  bool at_end() const { return p_ == end_; }
  std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }
  const std::uint8_t* at() const { return p_; }
  bool varint(std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      const std::uint8_t b = *p_++;
      v |= std::uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  bool u64(std::uint64_t& v) {
    if (left() < 8) return false;
    std::memcpy(&v, p_, 8);
    p_ += 8;
    return true;
  }
  bool bytes(std::size_t n, std::string_view& out) {
    if (left() < n) return false;
    out = {reinterpret_cast<const char*>(p_), n};
    p_ += n;
    return true;
  }
  bool string(std::string_view& out) {
    std::uint64_t n = 0;
    return varint(n) && bytes(n, out);
  }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

// One block's data of one column, located (not copied) in its body.
struct Piece {
  std::string_view head;  // fixed, string: the values; nullable: the null map; array, map: the offsets;
                          // low_cardinality: the rows' numbers
  std::uint64_t rows = 0;
  std::uint64_t total = 0;  // array, map: elements
  unsigned width = 0;       // low_cardinality: bytes a number
  std::vector<std::string_view> keys;  // low_cardinality: the dictionary
  std::string_view dictionary;         // low_cardinality: its bytes, up to the rows' numbers
  std::unique_ptr<Piece> first, second;
};

// Locates `rows` values of type `t` at the reader's position and moves past them; false when they do
// not parse (offsets that go back, a dictionary layout sluice does not write, too few bytes).
bool read_piece(const TypeNode& t, Reader& r, std::uint64_t rows, Piece& piece);

// Row i's number in a LowCardinality column's numbers of `width` bytes.
inline std::uint32_t number_at(std::string_view numbers, std::size_t i, unsigned width) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(numbers.data()) + i * width;
  switch (width) {
    case 1: return *p;
    case 2: return static_cast<std::uint32_t>(p[0] | (p[1] << 8));
    default: {
      std::uint32_t v = 0;
      std::memcpy(&v, p, 4);
      return v;
    }
  }
}

// Array and map offsets: row i's end (the number of elements up to and including it).
inline std::uint64_t offset_at(std::string_view offsets, std::size_t i) {
  std::uint64_t v = 0;
  std::memcpy(&v, offsets.data() + i * 8, 8);
  return v;
}

}  // namespace sluice::native_layout
