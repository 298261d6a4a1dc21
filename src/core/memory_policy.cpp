#include "core/memory_policy.hpp"

#include <malloc.h>

#include <cstdlib>
#include <string_view>

namespace sluice {

std::string keep_freed_memory_for_reuse() {
  if (const char* tunables = std::getenv("GLIBC_TUNABLES");
      tunables != nullptr && std::string_view(tunables).find("glibc.malloc.") != std::string_view::npos) {
    return "malloc: GLIBC_TUNABLES sets the allocator's policy";
  }
  constexpr int kMiB = 1 << 20;
  // Blocks up to 32 MiB come from the heap, where a freed one is reused, rather than from mmap, where
  // each is fresh memory (glibc would otherwise raise this threshold only as such blocks are freed).
  const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 * kMiB) == 1;
  // Free memory at the top of a heap stays (no trim below 1 GiB of it); the pad also keeps a thread's
  // extra heap mapped when it empties between batches, where glibc would unmap it.
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, 1024 * kMiB) == 1;
  const bool pad_ok = mallopt(M_TOP_PAD, 128 * kMiB) == 1;
  if (mmap_ok && trim_ok && pad_ok) return "malloc: freed memory is kept for reuse (mmap threshold 32 MiB, trim threshold 1 GiB)";
  return "malloc: the allocator refused the reuse policy; running with its defaults";
}

}  // namespace sluice
