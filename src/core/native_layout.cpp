#include "core/native_layout.hpp"

#include "core/native_block.hpp"

namespace sluice::native_layout {
namespace {

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

std::unique_ptr<TypeNode> parse_type_at(std::string_view t, int depth) {
  if (depth > 8) return nullptr;
  auto node = std::make_unique<TypeNode>();
  t = trim(t);
  if (t == "String") {
    node->kind = TypeNode::Kind::string;
  } else if (t == "LowCardinality(String)") {
    node->kind = TypeNode::Kind::low_cardinality;
  } else if (unwrap(t, "Nullable(")) {
    node->kind = TypeNode::Kind::nullable;
    node->first = parse_type_at(t, depth + 1);
    if (!node->first) return nullptr;
  } else if (unwrap(t, "Array(")) {
    node->kind = TypeNode::Kind::array;
    node->first = parse_type_at(t, depth + 1);
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
    node->first = parse_type_at(t.substr(0, comma), depth + 1);
    node->second = parse_type_at(t.substr(comma + 1), depth + 1);
    if (!node->first || !node->second) return nullptr;
  } else {
    node->width = fixed_width(t);
    if (node->width == 0) return nullptr;
  }
  return node;
}

}  // namespace

std::unique_ptr<TypeNode> parse_type(std::string_view type) { return parse_type_at(type, 0); }

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
      using Keys = LowCardinalityKeys;
      const auto* start = r.at();
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
      piece.dictionary = {reinterpret_cast<const char*>(start), static_cast<std::size_t>(r.at() - start)};
      piece.width = 1u << code;
      if (rows > r.left() / piece.width) return false;
      return r.bytes(rows * piece.width, piece.head);
    }
  }
  return false;
}

}  // namespace sluice::native_layout
