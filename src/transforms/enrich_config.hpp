// EnrichConfig: the `outlet.flows.enrich` section (classifiers, networks, GeoIP databases, AS sources).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice::config {
class ConfigReader;
}

namespace sluice::transforms {

// One classifier rule as written in YAML. Both kinds of rule share this form; which `match` and `set`
// keys are allowed depends on the kind (docs/enrichment.md).
struct ClassifierRuleConfig {
  std::string path;  // key path of the rule, for messages ("outlet.flows.enrich.interface_classifiers[2]")
  std::vector<std::pair<std::string, std::string>> regexes;  // match key (name, description, ...) → regex
  std::vector<std::string> exporter_addresses;                // CIDR prefixes, any of which matches
  std::vector<std::uint32_t> indexes;                         // interface indexes, any of which matches
  std::optional<std::uint32_t> speed, min_speed, max_speed;   // Mbit/s
  std::vector<std::pair<std::string, std::string>> set;       // output field → template ($1, ${name})
};

struct NetworkConfig {
  std::string prefix;  // "192.0.2.0/24", "2001:db8::/32"
  std::string name, role, site, region, tenant;
};

enum class AsSource { flow, geoip };

struct EnrichConfig {
  std::vector<ClassifierRuleConfig> exporter_classifiers;
  std::vector<ClassifierRuleConfig> interface_classifiers;
  std::vector<NetworkConfig> networks;
  std::string asn_database;      // MMDB with autonomous_system_number; empty: none
  std::string country_database;  // MMDB with country.iso_code; empty: none
  std::chrono::milliseconds geoip_check_interval{5000};
  std::vector<AsSource> as_sources{AsSource::flow, AsSource::geoip};
  std::size_t classifier_cache_entries = 10'000;  // per classifier, shared by every decode thread
  std::size_t address_cache_entries = 65'536;     // per decode session (rounded up to a power of two)
  std::size_t interface_cache_entries = 16'384;  // per decode session (rounded up to a power of two)

  // Anything to do beyond copying what the directory knows.
  bool any() const {
    return !exporter_classifiers.empty() || !interface_classifiers.empty() || !networks.empty() ||
           !asn_database.empty() || !country_database.empty();
  }
};

// Reads the mapping `r` (the `enrich` section). Problems are reported on `r` with their key paths,
// including regexes that do not compile, templates that name unknown groups and malformed prefixes.
EnrichConfig parse_enrich_config(config::ConfigReader& r);

}  // namespace sluice::transforms
