// Classifier: ordered match/set rules that derive exporter and interface attributes from names,
// descriptions, addresses and speeds, with a bounded cache of results per input.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/envelope.hpp"
#include "core/flow.hpp"
#include "transforms/enrich_config.hpp"

namespace sluice {
class Counter;
class MetricsRegistry;
}  // namespace sluice

namespace sluice::transforms {

enum class ClassifierKind { exporter, interface };

// Output slots of each kind.
enum class ExporterField : std::uint8_t { group, role, site, region, tenant, name };
enum class InterfaceField : std::uint8_t { connectivity, provider, boundary, name, description };
inline constexpr std::size_t kMaxClassifierFields = 6;

// What a rule may look at. Exporter rules read only the exporter fields.
struct ClassifierInput {
  Ip6 exporter_address{};
  std::string_view exporter_name;
  std::string_view name;         // interface name
  std::string_view description;  // interface description
  std::uint32_t index = 0;       // interface index
  std::uint32_t speed = 0;       // interface speed, Mbit/s
};

// The outcome for one input: for each output slot whether a rule set it, and the value.
struct Classification {
  std::array<std::string, kMaxClassifierFields> values;
  std::uint8_t set_mask = 0;
  Boundary boundary = Boundary::undefined;  // interface rules: the `boundary` slot, parsed

  bool has(std::uint8_t slot) const { return set_mask & (1u << slot); }
  std::string_view get(ExporterField f) const { return values[static_cast<std::size_t>(f)]; }
  std::string_view get(InterfaceField f) const { return values[static_cast<std::size_t>(f)]; }
  bool has(ExporterField f) const { return has(static_cast<std::uint8_t>(f)); }
  bool has(InterfaceField f) const { return has(static_cast<std::uint8_t>(f)); }
};

// Reports a problem with a rule: the key inside the rule ("match.name", "set.site") and the message.
using RuleErrorSink = std::function<void(const std::string& key, const std::string& message)>;

class Classifier {
 public:
  struct Rule;

  // Compiles `rules`; throws std::invalid_argument naming the rule's key path on the first problem
  // (parse_enrich_config reports them all earlier, so this only fires for hand-built configs).
  Classifier(ClassifierKind kind, const std::vector<ClassifierRuleConfig>& rules, std::size_t cache_entries,
             MetricsRegistry& metrics);
  ~Classifier();

  // Checks one rule; every problem goes to `sink`. Returns true when the rule is usable.
  static bool validate(ClassifierKind kind, const ClassifierRuleConfig& rule, const RuleErrorSink& sink);

  // Rules apply in order; for each output field the first matching rule that sets it to a non-empty
  // value wins. Thread-safe; cached per input (the cache is cleared when it reaches its size).
  std::shared_ptr<const Classification> classify(const ClassifierInput& input);
  // The same without the cache (tests, tools).
  Classification evaluate(const ClassifierInput& input) const;

  bool empty() const { return rules_.empty(); }
  ClassifierKind kind() const { return kind_; }

 private:
  ClassifierKind kind_;
  std::vector<std::unique_ptr<Rule>> rules_;
  std::size_t cache_entries_;
  Counter& evaluations_;
  Counter& invalid_values_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const Classification>> cache_;
};

}  // namespace sluice::transforms
