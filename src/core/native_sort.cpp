#include "core/native_sort.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <utility>

#include "core/native_block.hpp"
#include "core/native_gather.hpp"
#include "core/native_layout.hpp"
#include "core/native_merge.hpp"

namespace sluice {

using namespace native_layout;

namespace {

// How a key column's values compare, from its type.
enum class Order : std::uint8_t { unsigned_number, signed_number, floating, bytes, dictionary };

struct KeyType {
  Order order = Order::unsigned_number;
  bool nullable = false;
};

bool key_type(std::string_view type, KeyType& out) {
  if (type.starts_with("Nullable(") && type.ends_with(")")) {
    out.nullable = true;
    type = type.substr(9, type.size() - 10);
  }
  static constexpr std::string_view kUnsigned[] = {"UInt8", "UInt16", "UInt32", "UInt64", "Bool", "Date", "DateTime", "IPv4"};
  static constexpr std::string_view kSigned[] = {"Int8", "Int16", "Int32", "Int64", "Date32"};
  if (std::find(std::begin(kUnsigned), std::end(kUnsigned), type) != std::end(kUnsigned) ||
      type.starts_with("DateTime(")) {
    out.order = Order::unsigned_number;
  } else if (std::find(std::begin(kSigned), std::end(kSigned), type) != std::end(kSigned) ||
             type.starts_with("DateTime64(")) {
    out.order = Order::signed_number;  // DateTime64 is a signed count of ticks
  } else if (type == "Float32" || type == "Float64") {
    out.order = Order::floating;
  } else if (type == "String" || type.starts_with("FixedString(")) {
    out.order = Order::bytes;
  } else if (type == "LowCardinality(String)" && !out.nullable) {
    out.order = Order::dictionary;
  } else {
    return false;  // UUID, IPv6, 128-bit numbers: orders this does not reproduce
  }
  return true;
}

std::uint64_t load_le(const char* p, unsigned width) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, width);  // the machine is little-endian, as Native is
  return v;
}

// A fixed-width value as an unsigned number that orders as the value does.
std::uint64_t normalized(Order order, std::uint64_t v, unsigned width) {
  const std::uint64_t sign = std::uint64_t{1} << (width * 8 - 1);
  switch (order) {
    case Order::signed_number:
      return v ^ sign;
    case Order::floating: {
      const bool nan = width == 4 ? std::isnan(std::bit_cast<float>(static_cast<std::uint32_t>(v)))
                                  : std::isnan(std::bit_cast<double>(v));
      const std::uint64_t all = width == 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (width * 8)) - 1;
      if (nan) return all;  // NaN after every number, as the store sorts it
      return (v & sign) != 0 ? (~v & all) : (v | sign);
    }
    default:
      return v;
  }
}

// Puts the low `bits` of `v` at bit `pos` (from the most significant end) of a big-endian number
// spread over `words`.
void put_bits(std::uint64_t* words, unsigned& pos, std::uint64_t v, unsigned bits) {
  const unsigned i = pos / 64, offset = pos % 64, space = 64 - offset;
  if (bits <= space) {
    words[i] |= bits == 64 ? v : v << (space - bits);
  } else {
    words[i] |= v >> (bits - space);
    words[i + 1] |= v << (64 - (bits - space));
  }
  pos += bits;
}

}  // namespace

// One key column's values for every row, ready to compare.
struct NativeSorter::KeyColumn {
  bool text = false;                    // compared as bytes (`texts`), else as numbers (`numbers`)
  unsigned bytes = 0;                   // numbers: how many low bytes can be set
  std::vector<std::uint64_t> numbers;
  std::vector<std::string_view> texts;
  std::string nulls;  // Nullable: a byte a row, 1 for NULL (which sorts last); else empty
};

NativeSorter::NativeSorter() = default;
NativeSorter::~NativeSorter() = default;

bool NativeSorter::compact_order(std::span<const KeyColumn> columns, std::size_t rows, bool& moved) {
  // Each column's values less their least, NULL one past the greatest: the same order in fewer bits,
  // and when the key and the row number fit in 64 bits, one integer a row to sort.
  struct Span {
    std::uint64_t least = 0, null_code = 0;
    unsigned bits = 0;
  };
  std::array<Span, 8> spans{};
  if (columns.size() > spans.size()) return false;
  unsigned key_bits = 0;
  for (std::size_t k = 0; k < columns.size(); ++k) {
    const auto& c = columns[k];
    if (c.text) return false;
    std::uint64_t least = ~std::uint64_t{0}, most = 0;
    for (std::size_t row = 0; row < rows; ++row) {
      if (!c.nulls.empty() && c.nulls[row] != 0) continue;
      least = std::min(least, c.numbers[row]);
      most = std::max(most, c.numbers[row]);
    }
    if (least > most) least = most = 0;  // every row NULL
    std::uint64_t top = most - least;
    if (!c.nulls.empty()) {
      if (top == ~std::uint64_t{0}) return false;
      spans[k].null_code = ++top;
    }
    spans[k].least = least;
    spans[k].bits = static_cast<unsigned>(std::bit_width(top));
    key_bits += spans[k].bits;
  }
  const unsigned row_bits = static_cast<unsigned>(std::bit_width(rows - 1));
  if (key_bits + row_bits > 64) return false;
  records_.resize(rows);
  bool sorted = true;
  std::uint64_t previous_key = 0;
  for (std::size_t row = 0; row < rows; ++row) {
    std::uint64_t key = 0;
    for (std::size_t k = 0; k < columns.size(); ++k) {
      const auto& c = columns[k];
      const bool null = !c.nulls.empty() && c.nulls[row] != 0;
      const std::uint64_t code = null ? spans[k].null_code : c.numbers[row] - spans[k].least;
      key = (key << spans[k].bits) | code;  // (each fewer than 64 bits: they fit with the row's)
    }
    sorted = sorted && key >= previous_key;
    previous_key = key;
    records_[row] = row_bits == 0 ? key : (key << row_bits) | row;
  }
  moved = !sorted;
  if (sorted) return true;
  // Least significant digit first, eleven bits a digit, over the key's bits only.
  constexpr unsigned kDigitBits = 11;
  auto& counts = counts_;
  spare_.resize(rows);
  for (unsigned low = row_bits; low < row_bits + key_bits; low += kDigitBits) {
    const unsigned width = std::min(kDigitBits, row_bits + key_bits - low);
    const std::uint64_t mask = (std::uint64_t{1} << width) - 1;
    counts.assign(std::size_t{1} << width, 0);
    for (const std::uint64_t r : records_) ++counts[(r >> low) & mask];
    std::uint32_t sum = 0;
    for (auto& c : counts) sum += std::exchange(c, sum);
    for (const std::uint64_t r : records_) spare_[counts[(r >> low) & mask]++] = r;
    records_.swap(spare_);
  }
  const std::uint64_t row_mask = row_bits == 0 ? 0 : (std::uint64_t{1} << row_bits) - 1;
  order_.resize(rows);
  for (std::size_t row = 0; row < rows; ++row) order_[row] = static_cast<std::uint32_t>(records_[row] & row_mask);
  return true;
}

template <int Words>
bool NativeSorter::radix_order(std::span<const KeyColumn> columns, std::size_t rows) {
  constexpr std::size_t kStride = Words + 1;  // the key's words, then the row number
  records_.assign(rows * kStride, 0);
  std::uint64_t* rec = records_.data();
  for (std::size_t row = 0; row < rows; ++row, rec += kStride) {
    unsigned pos = 0;
    for (const auto& c : columns) {
      const bool null = !c.nulls.empty() && c.nulls[row] != 0;
      if (!c.nulls.empty()) put_bits(rec, pos, null ? 1 : 0, 8);
      put_bits(rec, pos, null ? 0 : c.numbers[row], c.bytes * 8);
    }
    rec[Words] = row;
  }
  const auto less = [](const std::uint64_t* a, const std::uint64_t* b) {
    for (int w = 0; w < Words; ++w) {
      if (a[w] != b[w]) return a[w] < b[w];
    }
    return false;
  };
  bool sorted = true;
  for (std::size_t row = 1; row < rows && sorted; ++row) {
    sorted = !less(records_.data() + row * kStride, records_.data() + (row - 1) * kStride);
  }
  if (sorted) return false;

  // Least significant byte first, skipping bytes that are the same in every key.
  std::array<std::uint64_t, Words> any{}, all{};
  all.fill(~std::uint64_t{0});
  for (std::size_t row = 0; row < rows; ++row) {
    for (int w = 0; w < Words; ++w) {
      any[w] |= records_[row * kStride + w];
      all[w] &= records_[row * kStride + w];
    }
  }
  spare_.resize(records_.size());
  std::array<std::uint32_t, 256> counts{};
  for (int w = Words - 1; w >= 0; --w) {
    for (unsigned shift = 0; shift < 64; shift += 8) {
      if ((((any[w] ^ all[w]) >> shift) & 0xff) == 0) continue;
      counts.fill(0);
      const std::uint64_t* src = records_.data();
      for (std::size_t row = 0; row < rows; ++row) ++counts[(src[row * kStride + w] >> shift) & 0xff];
      std::uint32_t sum = 0;
      for (auto& c : counts) sum += std::exchange(c, sum);
      std::uint64_t* dst = spare_.data();
      for (std::size_t row = 0; row < rows; ++row) {
        const std::uint64_t* from = src + row * kStride;
        std::memcpy(dst + std::size_t{counts[(from[w] >> shift) & 0xff]++} * kStride, from, kStride * 8);
      }
      records_.swap(spare_);
    }
  }
  order_.resize(rows);
  for (std::size_t row = 0; row < rows; ++row) order_[row] = static_cast<std::uint32_t>(records_[row * kStride + Words]);
  return true;
}

bool NativeSorter::compare_order(std::span<const KeyColumn> columns, std::size_t rows) {
  const auto compare = [&](std::uint32_t a, std::uint32_t b) {
    for (const auto& c : columns) {
      if (!c.nulls.empty()) {
        const bool na = c.nulls[a] != 0, nb = c.nulls[b] != 0;
        if (na != nb) return na ? 1 : -1;
        if (na) continue;
      }
      if (c.text) {
        if (const int r = c.texts[a].compare(c.texts[b]); r != 0) return r;
      } else if (c.numbers[a] != c.numbers[b]) {
        return c.numbers[a] < c.numbers[b] ? -1 : 1;
      }
    }
    return 0;
  };
  bool sorted = true;
  for (std::uint32_t row = 1; row < rows && sorted; ++row) sorted = compare(row - 1, row) <= 0;
  if (sorted) return false;
  order_.resize(rows);
  std::iota(order_.begin(), order_.end(), 0u);
  std::stable_sort(order_.begin(), order_.end(), [&](std::uint32_t a, std::uint32_t b) { return compare(a, b) < 0; });
  return true;
}

namespace {

struct Column {
  std::string_view name, type;
  std::unique_ptr<TypeNode> node;
  Piece piece;
};

struct Block {
  std::uint64_t rows = 0;
  std::vector<Column> columns;
};

// Every block of every body, their columns located; false unless all have the same columns.
bool read_blocks(std::span<const std::string_view> bodies, std::vector<Block>& blocks) {
  for (const auto body : bodies) {
    Reader r(body);
    while (!r.at_end()) {
      Block& b = blocks.emplace_back();
      std::uint64_t column_count = 0;
      if (!r.varint(column_count) || !r.varint(b.rows) || column_count == 0 || column_count > r.left()) return false;
      if (blocks.size() > 1 && column_count != blocks.front().columns.size()) return false;
      b.columns.resize(column_count);
      for (std::size_t c = 0; c < column_count; ++c) {
        auto& col = b.columns[c];
        if (!r.string(col.name) || !r.string(col.type)) return false;
        if (blocks.size() > 1 && (col.name != blocks.front().columns[c].name || col.type != blocks.front().columns[c].type)) {
          return false;
        }
        col.node = parse_type(col.type);
        if (!col.node || !read_piece(*col.node, r, b.rows, col.piece)) return false;
      }
    }
  }
  return !blocks.empty();
}

// Whether rows of this type can be gathered from several blocks (arrays and maps are gathered from
// one block only).
bool flat(const TypeNode& t) {
  switch (t.kind) {
    case TypeNode::Kind::fixed:
    case TypeNode::Kind::string:
    case TypeNode::Kind::low_cardinality:
      return true;
    case TypeNode::Kind::nullable:
      return t.first->kind == TypeNode::Kind::fixed || t.first->kind == TypeNode::Kind::string;
    default:
      return false;
  }
}

}  // namespace

NativeSorter::Outcome NativeSorter::sort(std::string_view block, std::span<const std::string> key, std::string& out) {
  const std::string_view one[] = {block};
  return sort(std::span<const std::string_view>(one), key, out);
}

NativeSorter::Outcome NativeSorter::sort(std::span<const std::string_view> bodies, std::span<const std::string> key,
                                         std::string& out) {
  if (key.empty()) return Outcome::unsupported;
  std::vector<Block> blocks;
  if (!read_blocks(bodies, blocks)) return Outcome::unsupported;
  std::uint64_t total = 0;
  for (const auto& b : blocks) total += b.rows;
  if (total >= std::numeric_limits<std::uint32_t>::max()) return Outcome::unsupported;
  const std::size_t rows = total;
  const auto& header = blocks.front().columns;
  if (blocks.size() > 1 && !std::all_of(header.begin(), header.end(), [](const Column& c) { return flat(*c.node); })) {
    // Arrays and maps are gathered from one block: merged first, then sorted as one.
    if (!merge_native_blocks(bodies, merged_)) return Outcome::unsupported;
    const auto outcome = sort(std::string_view(merged_), key, out);
    if (outcome != Outcome::already_sorted) return outcome;
    out.swap(merged_);  // the merge is the block in key order
    return Outcome::sorted;
  }
  if (rows < 2) return Outcome::already_sorted;

  keys_.resize(key.size());
  const std::span<KeyColumn> columns(keys_.data(), key.size());
  unsigned key_bytes = 0;
  bool numbers_only = true;
  for (std::size_t k = 0; k < key.size(); ++k) {
    const auto at = std::find_if(header.begin(), header.end(), [&](const Column& c) { return c.name == key[k]; });
    KeyType kt;
    if (at == header.end() || !key_type(at->type, kt)) return Outcome::unsupported;
    const auto index = static_cast<std::size_t>(at - header.begin());
    const TypeNode& node = kt.nullable ? *at->node->first : *at->node;
    auto& c = columns[k];
    c.text = kt.order == Order::bytes;
    c.bytes = 0;
    c.nulls.clear();
    if (kt.nullable) {
      for (const auto& b : blocks) c.nulls += b.columns[index].piece.head;
    }
    const auto values = [&](const Block& b) -> const Piece& {
      return kt.nullable ? *b.columns[index].piece.first : b.columns[index].piece;
    };
    if (c.text) {
      numbers_only = false;
      c.texts.resize(rows);
      std::size_t row = 0;
      for (const auto& b : blocks) {
        const Piece& v = values(b);
        if (node.kind == TypeNode::Kind::string) {
          Reader values_reader(v.head);
          for (std::size_t i = 0; i < b.rows; ++i) {
            if (!values_reader.string(c.texts[row++])) return Outcome::unsupported;
          }
        } else {
          for (std::size_t i = 0; i < b.rows; ++i) c.texts[row++] = v.head.substr(i * node.width, node.width);
        }
      }
    } else if (kt.order == Order::dictionary) {
      // Each key's rank among the keys of every block's dictionary, in byte order.
      std::vector<std::string_view> distinct;
      for (const auto& b : blocks) distinct.insert(distinct.end(), values(b).keys.begin(), values(b).keys.end());
      std::sort(distinct.begin(), distinct.end());
      distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
      c.bytes = distinct.size() <= 0x100 ? 1 : distinct.size() <= 0x10000 ? 2 : 4;
      c.numbers.resize(rows);
      std::size_t row = 0;
      std::vector<std::uint32_t> rank;
      for (const auto& b : blocks) {
        const Piece& v = values(b);
        rank.clear();
        for (const auto k : v.keys) {
          rank.push_back(static_cast<std::uint32_t>(std::lower_bound(distinct.begin(), distinct.end(), k) - distinct.begin()));
        }
        for (std::size_t i = 0; i < b.rows; ++i) {
          const std::uint32_t n = number_at(v.head, i, v.width);
          if (n >= rank.size()) return Outcome::unsupported;
          c.numbers[row++] = rank[n];
        }
      }
    } else {
      if (node.kind != TypeNode::Kind::fixed || node.width > 8) return Outcome::unsupported;
      c.bytes = static_cast<unsigned>(node.width);
      c.numbers.resize(rows);
      std::size_t row = 0;
      for (const auto& b : blocks) {
        const Piece& v = values(b);
        for (std::size_t i = 0; i < b.rows; ++i) {
          c.numbers[row++] = normalized(kt.order, load_le(v.head.data() + i * node.width, c.bytes), c.bytes);
        }
      }
    }
    key_bytes += c.bytes + (kt.nullable ? 1 : 0);
  }

  bool moved = false;
  if (!numbers_only || !compact_order(columns, rows, moved)) {
    if (numbers_only && key_bytes <= 8) moved = radix_order<1>(columns, rows);
    else if (numbers_only && key_bytes <= 16) moved = radix_order<2>(columns, rows);
    else if (numbers_only && key_bytes <= 32) moved = radix_order<4>(columns, rows);
    else moved = compare_order(columns, rows);
  }
  if (!moved) return Outcome::already_sorted;

  out.clear();
  std::size_t body_bytes = 0;
  for (const auto body : bodies) body_bytes += body.size();
  out.reserve(body_bytes);
  put_varint(out, header.size());
  put_varint(out, rows);
  if (blocks.size() == 1) {
    Gather gather(starts_);
    for (const auto& c : header) {
      put_native_column_header(out, c.name, c.type);
      if (!gather.column(*c.node, c.piece, order_, out)) return Outcome::unsupported;
    }
    return Outcome::sorted;
  }
  // Where each row of the output comes from: its block, and its row there.
  std::vector<std::uint64_t> first_rows;
  for (std::uint64_t first = 0; const auto& b : blocks) {
    first_rows.push_back(first);
    first += b.rows;
  }
  from_block_.resize(rows);
  from_row_.resize(rows);
  for (std::size_t k = 0; k < rows; ++k) {
    const std::uint32_t row = order_[k];
    const auto b = static_cast<std::uint32_t>(std::upper_bound(first_rows.begin(), first_rows.end(), row) - first_rows.begin() - 1);
    from_block_[k] = b;
    from_row_[k] = static_cast<std::uint32_t>(row - first_rows[b]);
  }
  BlockGather gather(first_rows, order_, from_block_, from_row_, starts_, counts_);
  std::vector<const Piece*> pieces(blocks.size());
  for (std::size_t c = 0; c < header.size(); ++c) {
    put_native_column_header(out, header[c].name, header[c].type);
    for (std::size_t b = 0; b < blocks.size(); ++b) pieces[b] = &blocks[b].columns[c].piece;
    if (!gather.column(*header[c].node, pieces, out)) return Outcome::unsupported;
  }
  return Outcome::sorted;
}

}  // namespace sluice
