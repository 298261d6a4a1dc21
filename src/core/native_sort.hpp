// NativeSorter: a Native block's rows put in a table's sorting-key order before the store sees them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// A MergeTree insert sorts every block by the table's sorting key, then copies each column in that
// order; a block that arrives sorted skips both (ClickHouse checks first). For the embedded store that
// work is on this process's cores, and doing it here is cheaper: a radix sort of compact keys instead
// of comparisons through columns, and no fresh copy of every column for the permutation (the store's
// copies are memory the kernel must hand out and clear, page by page).
//
// Keys are compared as ClickHouse compares them: numbers by value (signed, unsigned, floating, with
// NaN and NULL last), String, FixedString and LowCardinality(String) by their bytes. An order that
// differed would cost only speed: the store then sorts the block itself.
//
// One sorter keeps its working memory from one block to the next; it is not shared between threads.
class NativeSorter {
 public:
  enum class Outcome : std::uint8_t {
    sorted,          // `out` holds the block with its rows in key order
    already_sorted,  // the block is in key order as it is; `out` is untouched
    unsupported,     // not one block of known types, a key column missing or of a type not compared
                     // here; `out` is unspecified
  };

  NativeSorter();
  ~NativeSorter();
  NativeSorter(const NativeSorter&) = delete;
  NativeSorter& operator=(const NativeSorter&) = delete;

  // `key` names the block's columns of the sorting key, most significant first.
  Outcome sort(std::string_view block, std::span<const std::string> key, std::string& out);
  // The blocks of every body (each a stream of blocks with the same columns) sorted as one block:
  // what merge_native_blocks then sorting gives, in one pass (two when a column is an array or a map).
  // `already_sorted` means their rows, one block after another, are in key order.
  Outcome sort(std::span<const std::string_view> bodies, std::span<const std::string> key, std::string& out);

 private:
  struct KeyColumn;
  // Each order_ function puts the rows' numbers in key order in order_ and says whether that moved any.
  // compact_order returns false when the key does not fit (moved is then meaningless).
  bool compact_order(std::span<const KeyColumn> columns, std::size_t rows, bool& moved);
  template <int Words>
  bool radix_order(std::span<const KeyColumn> columns, std::size_t rows);
  bool compare_order(std::span<const KeyColumn> columns, std::size_t rows);

  std::vector<KeyColumn> keys_;         // the key's columns, decoded for comparison
  std::vector<std::uint32_t> order_;    // row numbers in key order
  std::vector<std::uint64_t> records_;  // radix sort: packed keys and row numbers, and their copy
  std::vector<std::uint64_t> spare_;
  std::vector<std::uint32_t> counts_;   // radix sort: rows a digit; LowCardinality rows renumbered
  std::vector<std::uint32_t> from_block_, from_row_;  // several blocks: where each sorted row comes from
  std::string merged_;  // several blocks with arrays or maps: their merge, sorted next
  std::vector<std::uint32_t> starts_;   // String values' offsets, one column at a time
};

}  // namespace sluice
