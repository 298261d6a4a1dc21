// Memory policy: how the process's allocator hands memory back to the kernel, set once at start-up.
#pragma once

#include <string>

namespace sluice {

// A pipeline frees and allocates the same large buffers every batch (Kafka's decompressed message
// sets, Native bodies, column buffers), each in one thread and freed in another. glibc's default
// returns such memory to the kernel as soon as it is free, so every batch would start on fresh pages
// the kernel must clear, at several microseconds a page on a VM. This keeps freed memory in the
// process for the next batch: peak memory is held rather than returned. An operator who sets glibc's
// malloc tunables (GLIBC_TUNABLES) keeps them instead. Returns what was decided, for the log.
std::string keep_freed_memory_for_reuse();

}  // namespace sluice
