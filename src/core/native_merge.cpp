#include "core/native_merge.hpp"

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/native_block.hpp"

namespace sluice {
namespace {

// The column types whose Native layout is known here: what sluice's builders write.
struct TypeNode {
  enum class Kind : std::uint8_t { fixed, string, nullable, array, map, low_cardinality };
  Kind kind = Kind::fixed;
  std::size_t width = 0;  // fixed: bytes a value
  std::unique_ptr<TypeNode> first, second;
};

bool unwrap(std::string_view& t, std::string_view prefix) {
  if (!t.starts_with(prefix) || !t.ends_with(')')) return false;
  t = t.substr(prefix.size(), t.size() - prefix.size() - 1);
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

std::size_t fixed_width(std::string_view t) {
  struct Named {
    std::string_view name;
    std::size_t width;
  };
  static constexpr Named kFixed[] = {
      {"UInt8", 1},  {"Int8", 1},   {"Bool", 1},    {"UInt16", 2},  {"Int16", 2},   {"Date", 2},
      {"UInt32", 4}, {"Int32", 4},  {"Float32", 4}, {"DateTime", 4}, {"IPv4", 4},   {"Date32", 4},
      {"UInt64", 8}, {"Int64", 8},  {"Float64", 8}, {"UUID", 16},   {"IPv6", 16},   {"UInt128", 16},
      {"Int128", 16}};
  for (const auto& n : kFixed) {
    if (t == n.name) return n.width;
  }
  if (t.starts_with("DateTime64(") && t.ends_with(')')) return 8;
  if (t.starts_with("DateTime(") && t.ends_with(')')) return 4;  // with a time zone
  if (unwrap(t, "FixedString(")) {
    std::size_t n = 0;
    for (const char c : t) {
      if (c < '0' || c > '9' || n > 1'000'000) return 0;
      n = n * 10 + static_cast<std::size_t>(c - '0');
    }
    return n;
  }
  return 0;
}

std::unique_ptr<TypeNode> parse_type(std::string_view t, int depth = 0) {
  if (depth > 8) return nullptr;
  auto node = std::make_unique<TypeNode>();
  t = trim(t);
  if (t == "String") {
    node->kind = TypeNode::Kind::string;
  } else if (t == "LowCardinality(String)") {
    node->kind = TypeNode::Kind::low_cardinality;
  } else if (unwrap(t, "Nullable(")) {
    node->kind = TypeNode::Kind::nullable;
    node->first = parse_type(t, depth + 1);
    if (!node->first) return nullptr;
  } else if (unwrap(t, "Array(")) {
    node->kind = TypeNode::Kind::array;
    node->first = parse_type(t, depth + 1);
    if (!node->first) return nullptr;
  } else if (unwrap(t, "Map(")) {
    // The comma between key and value types, outside any parentheses.
    int level = 0;
    std::size_t comma = std::string_view::npos;
    for (std::size_t i = 0; i < t.size() && comma == std::string_view::npos; ++i) {
      if (t[i] == '(') ++level;
      else if (t[i] == ')') --level;
      else if (t[i] == ',' && level == 0) comma = i;
    }
    if (comma == std::string_view::npos) return nullptr;
    node->kind = TypeNode::Kind::map;
    node->first = parse_type(t.substr(0, comma), depth + 1);
    node->second = parse_type(t.substr(comma + 1), depth + 1);
    if (!node->first || !node->second) return nullptr;
  } else {
    node->width = fixed_width(t);
    if (node->width == 0) return nullptr;
  }
  return node;
}

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
  std::vector<std::string_view> keys;
  std::unique_ptr<Piece> first, second;
};

using Keys = LowCardinalityKeys;

bool read_piece(const TypeNode& t, Reader& r, std::uint64_t rows, Piece& piece) {
  piece.rows = rows;
  switch (t.kind) {
    case TypeNode::Kind::fixed:
      if (rows > r.left() / t.width) return false;
      return r.bytes(rows * t.width, piece.head);
    case TypeNode::Kind::string: {
      const auto* start = r.at();
      std::string_view value;
      for (std::uint64_t i = 0; i < rows; ++i) {
        if (!r.string(value)) return false;  // each value takes a byte at least: ends with the body
      }
      piece.head = {reinterpret_cast<const char*>(start), static_cast<std::size_t>(r.at() - start)};
      return true;
    }
    case TypeNode::Kind::nullable:
      piece.first = std::make_unique<Piece>();
      return r.bytes(rows, piece.head) && read_piece(*t.first, r, rows, *piece.first);
    case TypeNode::Kind::array:
    case TypeNode::Kind::map: {
      if (rows > r.left() / 8 || !r.bytes(rows * 8, piece.head)) return false;
      std::uint64_t previous = 0;
      for (std::uint64_t i = 0; i < rows; ++i) {
        std::uint64_t offset = 0;
        std::memcpy(&offset, piece.head.data() + i * 8, 8);
        if (offset < previous) return false;
        previous = offset;
      }
      piece.total = previous;
      piece.first = std::make_unique<Piece>();
      if (!read_piece(*t.first, r, piece.total, *piece.first)) return false;
      if (t.kind == TypeNode::Kind::array) return true;
      piece.second = std::make_unique<Piece>();
      return read_piece(*t.second, r, piece.total, *piece.second);
    }
    case TypeNode::Kind::low_cardinality: {
      std::uint64_t version = 0, index_type = 0, keys = 0, numbered = 0;
      if (!r.u64(version) || version != Keys::kKeysVersion || !r.u64(index_type)) return false;
      const std::uint64_t code = index_type & 0xff;
      const std::uint64_t flags = index_type & ~std::uint64_t{0xff};
      if (code > 2 || (flags & Keys::kNeedGlobalDictionary) != 0 || (flags & Keys::kHasAdditionalKeys) == 0 ||
          (flags & ~(Keys::kHasAdditionalKeys | Keys::kNeedUpdateDictionary)) != 0) {
        return false;
      }
      if (!r.u64(keys) || keys > r.left()) return false;
      piece.keys.resize(keys);
      for (auto& k : piece.keys) {
        if (!r.string(k)) return false;
      }
      if (!r.u64(numbered) || numbered != rows) return false;
      piece.width = 1u << code;
      if (rows > r.left() / piece.width) return false;
      return r.bytes(rows * piece.width, piece.head);
    }
  }
  return false;
}

std::uint32_t number_at(std::string_view numbers, std::size_t i, unsigned width) {
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

bool write_merged(const TypeNode& t, std::span<const Piece* const> pieces, std::string& out) {
  switch (t.kind) {
    case TypeNode::Kind::fixed:
    case TypeNode::Kind::string:
      for (const Piece* p : pieces) out += p->head;
      return true;
    case TypeNode::Kind::nullable: {
      std::vector<const Piece*> inner;
      for (const Piece* p : pieces) {
        out += p->head;
        inner.push_back(p->first.get());
      }
      return write_merged(*t.first, inner, out);
    }
    case TypeNode::Kind::array:
    case TypeNode::Kind::map: {
      std::uint64_t base = 0;
      std::vector<const Piece*> firsts, seconds;
      for (const Piece* p : pieces) {
        for (std::size_t i = 0; i < p->rows; ++i) {
          std::uint64_t offset = 0;
          std::memcpy(&offset, p->head.data() + i * 8, 8);
          put_native_fixed(out, offset + base);
        }
        base += p->total;
        firsts.push_back(p->first.get());
        if (p->second) seconds.push_back(p->second.get());
      }
      if (!write_merged(*t.first, firsts, out)) return false;
      return t.kind == TypeNode::Kind::array || write_merged(*t.second, seconds, out);
    }
    case TypeNode::Kind::low_cardinality: {
      // One dictionary for all, numbered as its keys first appear block after block, and every row
      // renumbered into it.
      Keys keys;
      std::vector<std::uint32_t> rows;
      std::vector<std::uint32_t> renumber;
      for (const Piece* p : pieces) {
        renumber.clear();
        for (const auto k : p->keys) renumber.push_back(keys.index_of(k));
        for (std::size_t i = 0; i < p->rows; ++i) {
          const std::uint32_t n = number_at(p->head, i, p->width);
          if (n >= renumber.size()) return false;
          rows.push_back(renumber[n]);
        }
      }
      keys.append_column(out, rows);
      return true;
    }
  }
  return false;
}

struct Column {
  std::string_view name;
  std::string_view type;
};

}  // namespace

bool merge_native_blocks(std::span<const std::string_view> bodies, std::string& out) {
  std::vector<Column> header;
  std::vector<std::unique_ptr<TypeNode>> types;
  std::vector<std::vector<std::unique_ptr<Piece>>> pieces;  // by column, then block
  std::uint64_t total_rows = 0;
  std::size_t total_bytes = 0;
  for (const auto body : bodies) {
    total_bytes += body.size();
    Reader r(body);
    while (!r.at_end()) {
      std::uint64_t columns = 0, rows = 0;
      if (!r.varint(columns) || !r.varint(rows) || rows == 0 || columns == 0 || columns > r.left()) return false;
      if (header.empty()) {
        header.resize(columns);
        types.resize(columns);
        pieces.resize(columns);
      } else if (columns != header.size()) {
        return false;
      }
      const bool first_block = total_rows == 0;
      for (std::size_t c = 0; c < columns; ++c) {
        std::string_view name, type;
        if (!r.string(name) || !r.string(type)) return false;
        if (first_block) {
          header[c] = {name, type};
          types[c] = parse_type(type);
          if (!types[c]) return false;
        } else if (name != header[c].name || type != header[c].type) {
          return false;
        }
        auto piece = std::make_unique<Piece>();
        if (!read_piece(*types[c], r, rows, *piece)) return false;
        pieces[c].push_back(std::move(piece));
      }
      total_rows += rows;
    }
  }
  if (header.empty()) return false;
  out.clear();
  out.reserve(total_bytes);
  put_varint(out, header.size());
  put_varint(out, total_rows);
  std::vector<const Piece*> column;
  for (std::size_t c = 0; c < header.size(); ++c) {
    put_native_column_header(out, header[c].name, header[c].type);
    column.clear();
    for (const auto& p : pieces[c]) column.push_back(p.get());
    if (!write_merged(*types[c], column, out)) return false;
  }
  return true;
}

}  // namespace sluice
