#include "core/native_merge.hpp"

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/native_block.hpp"
#include "core/native_layout.hpp"

namespace sluice {
namespace {

using namespace native_layout;
using Keys = LowCardinalityKeys;

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
