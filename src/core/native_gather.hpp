// Gather and BlockGather: rows of Native columns copied in a given order (what sorting a block writes).
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "core/native_block.hpp"
#include "core/native_layout.hpp"

namespace sluice::native_layout {

// One String value (`n` bytes with its length prefix). Most are short: those are copied 32 bytes at once
// where both sides have room (what spills over is overwritten by the next value), instead of a call
// sized to each.
inline void copy_value(char* dst, const char* dst_end, const char* src, const char* src_end, std::size_t n) {
  constexpr std::size_t kWide = 32;
  if (n <= kWide && src + kWide <= src_end && dst + kWide <= dst_end) {
    std::memcpy(dst, src, kWide);
  } else {
    std::memcpy(dst, src, n);
  }
}

// Calls copy(width) with the width as a compile-time constant for the common ones: a copy of a
// constant width is a move or two, not a call.
template <typename Copy>
void with_constant_width(std::size_t width, Copy&& copy) {
  switch (width) {
    case 1: copy(std::integral_constant<std::size_t, 1>{}); break;
    case 2: copy(std::integral_constant<std::size_t, 2>{}); break;
    case 4: copy(std::integral_constant<std::size_t, 4>{}); break;
    case 8: copy(std::integral_constant<std::size_t, 8>{}); break;
    case 16: copy(std::integral_constant<std::size_t, 16>{}); break;
    default: copy(width);
  }
}

// Rows of `p` copied into `out` in the order `order` gives (a permutation of its rows).
class Gather {
 public:
  explicit Gather(std::vector<std::uint32_t>& starts) : starts_(starts) {}

  bool column(const TypeNode& t, const Piece& p, std::span<const std::uint32_t> order, std::string& out) {
    switch (t.kind) {
      case TypeNode::Kind::fixed:
        fixed(p.head, t.width, order, out);
        return true;
      case TypeNode::Kind::string:
        return strings(p, order, out);
      case TypeNode::Kind::nullable:
        fixed(p.head, 1, order, out);
        return column(*t.first, *p.first, order, out);
      case TypeNode::Kind::low_cardinality:
        out += p.dictionary;
        fixed(p.head, p.width, order, out);
        return true;
      case TypeNode::Kind::array:
      case TypeNode::Kind::map: {
        if (p.total > std::numeric_limits<std::uint32_t>::max()) return false;
        std::vector<std::uint32_t> elements;
        elements.reserve(p.total);
        std::uint64_t end = 0;
        for (const std::uint32_t row : order) {
          const std::uint64_t first = row == 0 ? 0 : offset_at(p.head, row - 1);
          const std::uint64_t last = offset_at(p.head, row);
          for (std::uint64_t e = first; e < last; ++e) elements.push_back(static_cast<std::uint32_t>(e));
          end += last - first;
          put_native_fixed(out, end);
        }
        if (!column(*t.first, *p.first, elements, out)) return false;
        return t.kind == TypeNode::Kind::array || column(*t.second, *p.second, elements, out);
      }
    }
    return false;
  }

 private:
  static void fixed(std::string_view values, std::size_t width, std::span<const std::uint32_t> order,
                    std::string& out) {
    const std::size_t at = out.size();
    out.resize(at + order.size() * width);
    char* dst = out.data() + at;
    const char* src = values.data();
    with_constant_width(width, [&](auto w) {
      for (const std::uint32_t row : order) {
        std::memcpy(dst, src + std::size_t{row} * w, w);
        dst += w;
      }
    });
  }

  // Each value with its length prefix, which is where the next one starts.
  bool strings(const Piece& p, std::span<const std::uint32_t> order, std::string& out) {
    if (p.head.size() > std::numeric_limits<std::uint32_t>::max()) return false;
    starts_.resize(p.rows + 1);
    Reader r(p.head);
    std::string_view value;
    for (std::uint64_t i = 0; i < p.rows; ++i) {
      starts_[i] = static_cast<std::uint32_t>(r.at() - reinterpret_cast<const std::uint8_t*>(p.head.data()));
      if (!r.string(value)) return false;
    }
    starts_[p.rows] = static_cast<std::uint32_t>(p.head.size());
    const std::size_t at = out.size();
    out.resize(at + p.head.size());
    char* dst = out.data() + at;
    const char* const src_end = p.head.data() + p.head.size();
    const char* const dst_end = out.data() + out.size();
    for (const std::uint32_t row : order) {
      const std::size_t n = starts_[row + 1] - starts_[row];
      copy_value(dst, dst_end, p.head.data() + starts_[row], src_end, n);
      dst += n;
    }
    return true;
  }

  std::vector<std::uint32_t>& starts_;
};

// Rows of several blocks' pieces of one column, in the order `order` gives (global row numbers, the
// blocks' rows numbered one after another). Fixed, String, LowCardinality and Nullable columns; arrays
// and maps are gathered from one block only (Gather).
class BlockGather {
 public:
  BlockGather(std::span<const std::uint64_t> first_rows, std::span<const std::uint32_t> order,
              std::span<const std::uint32_t> from_block, std::span<const std::uint32_t> from_row,
              std::vector<std::uint32_t>& begins, std::vector<std::uint32_t>& numbers)
      : first_rows_(first_rows), order_(order), from_block_(from_block), from_row_(from_row), begins_(begins),
        numbers_(numbers) {}

  bool column(const TypeNode& t, std::span<const Piece* const> pieces, std::string& out) {
    switch (t.kind) {
      case TypeNode::Kind::fixed:
        fixed(pieces, t.width, out);
        return true;
      case TypeNode::Kind::string:
        return strings(pieces, out);
      case TypeNode::Kind::nullable: {
        fixed(pieces, 1, out);
        std::vector<const Piece*> inner;
        for (const Piece* p : pieces) inner.push_back(p->first.get());
        return column(*t.first, inner, out);
      }
      case TypeNode::Kind::low_cardinality:
        return dictionary(pieces, out);
      default:
        return false;
    }
  }

 private:
  void fixed(std::span<const Piece* const> pieces, std::size_t width, std::string& out) {
    const std::size_t at = out.size();
    out.resize(at + order_.size() * width);
    char* dst = out.data() + at;
    heads_.clear();
    for (const Piece* p : pieces) heads_.push_back(p->head.data());
    with_constant_width(width, [&](auto w) {
      for (std::size_t k = 0; k < order_.size(); ++k, dst += w) {
        std::memcpy(dst, heads_[from_block_[k]] + std::size_t{from_row_[k]} * w, w);
      }
    });
  }

  bool strings(std::span<const Piece* const> pieces, std::string& out) {
    // Where each row's value (with its length prefix) starts in its block, by global row, and one past
    // each block's last.
    begins_.resize(order_.size() + pieces.size());
    std::size_t total = 0;
    for (std::size_t b = 0; b < pieces.size(); ++b) {
      const Piece& p = *pieces[b];
      if (p.head.size() > std::numeric_limits<std::uint32_t>::max()) return false;
      total += p.head.size();
      Reader r(p.head);
      std::string_view value;
      const std::size_t first = first_rows_[b] + b;  // each block keeps one more slot, its end
      for (std::uint64_t i = 0; i < p.rows; ++i) {
        begins_[first + i] = static_cast<std::uint32_t>(r.at() - reinterpret_cast<const std::uint8_t*>(p.head.data()));
        if (!r.string(value)) return false;
      }
      begins_[first + p.rows] = static_cast<std::uint32_t>(p.head.size());
    }
    const std::size_t at = out.size();
    out.resize(at + total);
    char* dst = out.data() + at;
    const char* const dst_end = out.data() + out.size();
    for (std::size_t k = 0; k < order_.size(); ++k) {
      const std::size_t b = from_block_[k];
      const std::size_t slot = order_[k] + b;
      const std::size_t n = begins_[slot + 1] - begins_[slot];
      const std::string_view head = pieces[b]->head;
      copy_value(dst, dst_end, head.data() + begins_[slot], head.data() + head.size(), n);
      dst += n;
    }
    return true;
  }

  // One dictionary for all blocks, numbered as its keys first appear block after block (as
  // merge_native_blocks numbers it), and every row renumbered into it.
  bool dictionary(std::span<const Piece* const> pieces, std::string& out) {
    LowCardinalityKeys keys;
    std::vector<std::vector<std::uint32_t>> renumber(pieces.size());
    for (std::size_t b = 0; b < pieces.size(); ++b) {
      for (const auto k : pieces[b]->keys) renumber[b].push_back(keys.index_of(k));
    }
    numbers_.resize(order_.size());
    for (std::size_t k = 0; k < order_.size(); ++k) {
      const Piece& p = *pieces[from_block_[k]];
      const std::uint32_t n = number_at(p.head, from_row_[k], p.width);
      if (n >= renumber[from_block_[k]].size()) return false;
      numbers_[k] = renumber[from_block_[k]][n];
    }
    keys.append_column(out, numbers_);
    return true;
  }

  std::span<const std::uint64_t> first_rows_;
  std::span<const std::uint32_t> order_, from_block_, from_row_;
  std::vector<std::uint32_t>& begins_;
  std::vector<std::uint32_t>& numbers_;
  std::vector<const char*> heads_;  // each block's values of the column at hand
};

}  // namespace sluice::native_layout
