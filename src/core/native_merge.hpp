// merge_native_blocks: the Native blocks of several batches of one table rewritten as one block.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace sluice {

// ClickHouse pays for every block of an insert (each is parsed and then squashed into the part): a
// coalesced insert of hundreds of small per-partition blocks costs the embedded store about a third
// more CPU than the same rows in one block. This lays the rows of every block of `bodies`, in order,
// into a single block in `out` (replacing its content): columns are concatenated, array and map offsets
// rebased, LowCardinality dictionaries united and their rows renumbered.
//
// Returns false, with `out` unspecified, when the blocks differ in their columns, hold a type this does
// not know, have no rows, or do not parse; the caller then sends the bodies as they are. Bounds are
// checked everywhere: a body is never read past its end.
bool merge_native_blocks(std::span<const std::string_view> bodies, std::string& out);

}  // namespace sluice
