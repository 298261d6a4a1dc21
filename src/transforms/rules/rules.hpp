// RuleSet: the outlet's ordered log rules (parse JSON / logfmt / regex, rename, remove, add, template,
// timestamps, conditions, drop and route), read from YAML and applied to LogEvents in place.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/reader.hpp"
#include "transforms/log_event.hpp"
#include "transforms/rules/parsers.hpp"

namespace sluice {
class MetricsRegistry;
}

namespace sluice::transforms::rules {

enum class Outcome { keep, drop };

namespace detail {
struct Rule;
}

class RuleSet {
 public:
  // Reads the list at `key` of `parent` (the outlet's `logs:` mapping), reporting every problem with
  // its key path through the reader; the caller's check() raises them. The schema is in docs/rules.md.
  static RuleSet read(config::ConfigReader& parent, MetricsRegistry& metrics, const std::string& key = "rules");

  // Per-thread state: parser buffers, regex match data, text buffers. Reused from event to event.
  struct Scratch {
    explicit Scratch(std::uint32_t max_captures) : match(max_captures) {}
    JsonFlattener json;
    LogfmtParser logfmt;
    MatchState match;
    std::string text;   // a copy of a field being parsed (parsing may move the fields around)
    std::string error;  // the reason of the last failure
    std::string buf;    // templates
  };
  std::unique_ptr<Scratch> make_scratch() const;

  // Runs every rule whose selector and condition match, in order. Const and thread-safe given a
  // scratch per thread; allocates nothing once the event and scratch have grown to the lines' sizes.
  Outcome apply(LogEvent& event, Scratch& scratch) const;

  bool empty() const { return rules_.empty(); }
  std::size_t size() const { return rules_.size(); }

  RuleSet();
  ~RuleSet();
  RuleSet(RuleSet&&) noexcept;
  RuleSet& operator=(RuleSet&&) noexcept;

 private:
  std::vector<std::unique_ptr<detail::Rule>> rules_;
  std::uint32_t max_captures_ = 0;
};

// `*` matches any run of bytes (slashes included), `?` one byte; everything else matches itself.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace sluice::transforms::rules
