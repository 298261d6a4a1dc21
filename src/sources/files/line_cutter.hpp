// LineCutter: cuts a file's bytes into lines (or multiline events) with their offsets and flags, without copying.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <regex>
#include <span>
#include <string>
#include <string_view>

#include "sources/files/file_source_config.hpp"

namespace sluice::sources {

struct CutLine {
  std::uint64_t offset = 0;  // the first byte of the line (of the event's first line) in the file
  std::uint64_t end = 0;     // just after what the line consumed (its terminator, skipped bytes)
  std::string_view text;     // without the terminator; valid until the next cut()
  std::uint8_t flags = 0;
};

// Receives lines in file order. false: not taken now (backpressure); cutting stops before that line.
class LineSink {
 public:
  virtual ~LineSink() = default;
  virtual bool line(const CutLine& line) = 0;
};

// What a file carries between two reads: a truncated line whose rest is being skipped, and how long
// a multiline event has been waiting. Reset (rewind) by assigning a fresh value.
struct CutterState {
  bool skipping = false;       // truncate mode: the line at held_offset is over max_line_bytes
  std::uint64_t held_offset = 0;
  std::string held;            // its first max_line_bytes
  std::optional<std::uint64_t> pending_event;  // multiline: offset of an event not emitted yet
  std::chrono::steady_clock::time_point pending_since{};
};

struct CutCounts {
  std::uint64_t lines = 0, split = 0, truncated = 0, invalid_utf8 = 0;
};

class LineCutter {
 public:
  explicit LineCutter(const FileSourceConfig& config);

  enum class Flush {
    none,    // complete lines only; an incomplete last line (and an open multiline event) is kept for later
    events,  // also emit the open multiline event (its timeout passed)
    all,     // the file is finished (rotated away, deleted): emit everything, an incomplete last line too
  };
  // Cuts `data`, whose first byte is at file offset `base` and is where the previous call stopped.
  // Returns how many bytes were consumed: the next call starts at base + the result.
  std::size_t cut(std::span<const char> data, std::uint64_t base, CutterState& state, LineSink& sink, Flush flush);

  const CutCounts& counts() const { return counts_; }
  bool multiline() const { return multiline_.has_value(); }
  std::chrono::milliseconds multiline_timeout() const { return timeout_; }
  std::size_t max_line_bytes() const { return max_; }

 private:
  bool emit(LineSink& sink, std::uint64_t offset, std::uint64_t end, std::string_view text, std::uint8_t flags,
            bool known_valid);
  // Handles a line with no terminator in reach that is over the maximum. Returns false on backpressure.
  bool long_line(const char* p, std::size_t avail, std::uint64_t offset, CutterState& state, LineSink& sink,
                 std::size_t& used, bool known_valid);

  std::size_t max_;
  LongLines long_lines_;
  std::optional<std::regex> multiline_;
  MultilineConfig::Mode mode_ = MultilineConfig::Mode::start;
  std::size_t max_event_lines_ = 0;
  std::chrono::milliseconds timeout_{0};
  CutCounts counts_;
};

bool valid_utf8(std::string_view text);

}  // namespace sluice::sources
