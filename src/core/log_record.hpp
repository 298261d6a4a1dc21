// LogChunk: the bus record of the file source, consecutive lines of one file with their byte offsets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace sluice {

// Per-line flags, as they travel on the bus.
enum LogLineFlags : std::uint8_t {
  kLogLineTruncated = 1,    // bytes beyond max_line_bytes were dropped
  kLogLineSplit = 2,        // a piece of a longer line; the next line of the chunk (or file) continues it
  kLogLineInvalidUtf8 = 4,  // not valid UTF-8; kept as bytes
  kLogLineMultiline = 8,    // several physical lines grouped into one event
};

struct LogLine {
  std::uint64_t offset = 0;   // byte offset of the line's first byte in its file
  std::string_view text;      // without the line terminator
  std::uint8_t flags = 0;
};

// Wire format v1 (docs/envelope.md), integers big-endian, varints unsigned LEB128:
//   0 u8 version (1)   1 u8 reserved (0)   2 u16 host length   4 u16 path length   6 u32 line count
//  10 u64 file id     18 u64 offset of the first line
//  26 host, path, then per line: varint offset - previous line's offset (0 for the first),
//     varint length, u8 flags, the bytes
inline constexpr std::uint8_t kLogChunkVersion = 1;
inline constexpr std::size_t kLogChunkHeaderSize = 26;

// Builds one chunk in a reused buffer: begin(), add() lines in file order, then bytes().
class LogChunkWriter {
 public:
  void begin(std::string_view host, std::string_view path, std::uint64_t file_id);
  void add(std::uint64_t offset, std::string_view text, std::uint8_t flags);
  std::uint32_t lines() const { return lines_; }
  std::size_t size() const { return out_.size(); }
  // The encoded chunk (valid until the next begin()).
  std::span<const std::byte> bytes();

 private:
  std::vector<std::byte> out_;
  std::uint32_t lines_ = 0;
  std::uint64_t last_offset_ = 0;
};

enum class LogChunkError { none, truncated, bad_version, bad_line, trailing_bytes };
const char* to_string(LogChunkError e);

// Reads a chunk without copying: views point into the input.
class LogChunkReader {
 public:
  // Checks the header; next() then checks each line.
  LogChunkError open(std::span<const std::byte> bytes);
  std::string_view host() const { return host_; }
  std::string_view path() const { return path_; }
  std::uint64_t file_id() const { return file_id_; }
  std::uint32_t line_count() const { return count_; }
  // false at the end or on a malformed line (error() says which).
  bool next(LogLine& line);
  LogChunkError error() const { return error_; }

 private:
  std::span<const std::byte> data_;
  std::size_t at_ = 0;
  std::string_view host_, path_;
  std::uint64_t file_id_ = 0;
  std::uint64_t offset_ = 0;
  std::uint32_t count_ = 0, read_ = 0;
  LogChunkError error_ = LogChunkError::none;
};

}  // namespace sluice
