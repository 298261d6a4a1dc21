// Gzip reading for the file source: streaming decompression (zlib inflate, bounded memory) of rotated, compressed
// log files, so that the unread tail of a file compressed while sluice was down can still be read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

namespace sluice::sources {

enum class GzipStatus {
  complete,   // every member decompressed and its trailer (CRC, length) checked
  truncated,  // the input ends inside a member: still being written (logrotate), or cut short
  corrupt,    // not gzip, or damaged data
  stopped,    // the sink asked to stop (enough read)
  io_error,
};

struct GzipResult {
  GzipStatus status = GzipStatus::corrupt;
  std::uint64_t size = 0;  // decompressed bytes handed to the sink
  std::string error;       // what went wrong, for the log
};

// Whether the file starts with the gzip magic bytes (1f 8b).
bool is_gzip(int fd);

// Decompresses the file from its start (all members, as gzip does), handing consecutive decompressed blocks
// to `sink` (decompressed offset, bytes); `sink` returns false to stop. Memory: two 64 KiB buffers.
GzipResult gunzip(int fd, const std::function<bool(std::uint64_t, std::span<const char>)>& sink);

// The first `limit` decompressed bytes (fewer when the stream is shorter, or truncated: see the status).
GzipResult gunzip_prefix(int fd, std::size_t limit, std::string& out);

}  // namespace sluice::sources
