// FileSourceConfig: which files one log source tails, where its lines go, and how lines are cut.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "config/reader.hpp"

namespace sluice::sources {

enum class StartAt { beginning, end };       // where a file seen for the first time is read from
enum class LongLines { split, truncate };    // what happens to a line longer than max_line_bytes

// Multiline grouping: a new event starts at a line matching `start`, or (continuation mode) every
// line matching `continuation` is appended to the event before it. An event still open after
// `timeout` without a new line is emitted as it is.
struct MultilineConfig {
  enum class Mode { start, continuation };
  Mode mode = Mode::start;
  std::string pattern;  // ECMAScript regular expression, searched anywhere in the line
  std::chrono::milliseconds timeout{1000};
  std::size_t max_lines = 500;  // an event is closed after this many lines
  bool operator==(const MultilineConfig&) const = default;
};

struct FileSourceConfig {
  std::string name;                  // names the source in logs, metrics and status ("static", an etcd key)
  std::vector<std::string> include;  // glob patterns (fnmatch, `*` stays within one directory)
  std::vector<std::string> exclude;  // glob patterns matched against the full path
  std::string topic;                 // bus topic; empty means "<topic_prefix>logs"
  StartAt start_at = StartAt::beginning;
  std::size_t max_line_bytes = 256 << 10;
  LongLines long_lines = LongLines::split;
  std::optional<MultilineConfig> multiline;
  std::size_t fingerprint_bytes = 256;  // file identity: device, inode and a hash of the first bytes
  bool operator==(const FileSourceConfig&) const = default;
};

// Reads one source from a mapping (YAML config, or the JSON value of an etcd key), reporting
// problems with their key paths through the reader:
//   include: [glob, ...]            (required; `paths` is accepted as an alias)
//   exclude: [glob, ...]
//   topic: name
//   start_at: beginning | end
//   max_line_bytes: 256KiB (at most the inlet's max_chunk_bytes less 4KiB)
//   long_lines: split | truncate
//   multiline: {start: regex} | {continuation: regex}, timeout: 1s, max_lines: 500
//   fingerprint_bytes: 256
FileSourceConfig read_file_source(config::ConfigReader& reader, std::string name);

}  // namespace sluice::sources
