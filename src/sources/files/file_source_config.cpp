#include "sources/files/file_source_config.hpp"

#include <regex>

namespace sluice::sources {

FileSourceConfig read_file_source(config::ConfigReader& reader, std::string name) {
  FileSourceConfig c;
  c.name = std::move(name);
  c.include = reader.string_list("include");
  if (c.include.empty() && reader.has("paths")) c.include = reader.string_list("paths");
  if (c.include.empty()) reader.error("include", "expected a list of glob patterns (at least one)");
  for (const auto& p : c.include) {
    if (p.empty() || p.front() != '/') reader.error("include", "expected absolute glob patterns, got \"" + p + "\"");
  }
  c.exclude = reader.string_list("exclude");
  c.topic = reader.string("topic", "");
  c.start_at = reader.one_of("start_at", "beginning", {"beginning", "end"}) == "end" ? StartAt::end : StartAt::beginning;
  c.max_line_bytes = static_cast<std::size_t>(reader.size("max_line_bytes", c.max_line_bytes));
  if (c.max_line_bytes < 16 || c.max_line_bytes > (std::size_t{64} << 20)) {
    reader.error("max_line_bytes", "expected a size between 16 bytes and 64MiB");
  }
  c.long_lines = reader.one_of("long_lines", "split", {"split", "truncate"}) == "truncate" ? LongLines::truncate
                                                                                         : LongLines::split;
  c.fingerprint_bytes = static_cast<std::size_t>(reader.integer("fingerprint_bytes", 256, 16, 4096));
  if (reader.has("multiline")) {
    auto m = reader.child("multiline");
    MultilineConfig ml;
    auto start = m.optional_string("start");
    auto continuation = m.optional_string("continuation");
    if (start.has_value() == continuation.has_value()) {
      m.error("start", "expected exactly one of `start` or `continuation` (a regular expression)");
    } else {
      ml.mode = start ? MultilineConfig::Mode::start : MultilineConfig::Mode::continuation;
      ml.pattern = start ? *start : *continuation;
      try {
        std::regex check(ml.pattern, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        m.error(start ? "start" : "continuation", std::string("invalid regular expression: ") + e.what());
      }
    }
    ml.timeout = m.duration("timeout", ml.timeout);
    ml.max_lines = static_cast<std::size_t>(m.integer("max_lines", 500, 1, 100000));
    m.finish();
    c.multiline = ml;
  }
  reader.finish();
  return c;
}

}  // namespace sluice::sources
