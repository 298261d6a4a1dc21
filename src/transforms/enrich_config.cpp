#include "transforms/enrich_config.hpp"

#include <fmt/format.h>

#include <charconv>
#include <map>

#include "config/reader.hpp"
#include "transforms/classifier.hpp"
#include "transforms/networks.hpp"

namespace sluice::transforms {
namespace {

std::optional<std::uint32_t> read_u32(config::ConfigReader& r, const std::string& key) {
  if (!r.has(key)) {
    r.optional_string(key);  // marks the key as known
    return std::nullopt;
  }
  return static_cast<std::uint32_t>(r.integer(key, 0, 0, 0xffffffffll));
}

ClassifierRuleConfig read_rule(config::ConfigReader& rr, ClassifierKind kind) {
  ClassifierRuleConfig rule;
  rule.path = rr.path();
  {
    auto m = rr.child("match");
    const std::vector<std::string> regex_keys =
        kind == ClassifierKind::exporter ? std::vector<std::string>{"name"}
                                         : std::vector<std::string>{"exporter_name", "name", "description"};
    for (const auto& key : regex_keys) {
      if (auto v = m.literal_string(key)) rule.regexes.emplace_back(key, *v);
    }
    rule.exporter_addresses = m.string_list(kind == ClassifierKind::exporter ? "address" : "exporter_address");
    if (kind == ClassifierKind::interface) {
      for (const auto& text : m.string_list("index")) {
        std::uint32_t v = 0;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || ptr != text.data() + text.size()) {
          m.error("index", fmt::format("expected interface indexes (integers), got '{}'", text));
        } else {
          rule.indexes.push_back(v);
        }
      }
      rule.speed = read_u32(m, "speed");
      rule.min_speed = read_u32(m, "min_speed");
      rule.max_speed = read_u32(m, "max_speed");
    }
    m.finish();
  }
  {
    auto s = rr.child("set");
    for (const auto& key : s.keys()) {
      if (auto v = s.literal_string(key)) rule.set.emplace_back(key, *v);
    }
    s.finish();
  }
  rr.finish();
  Classifier::validate(kind, rule, [&](const std::string& key, const std::string& message) { rr.error(key, message); });
  return rule;
}

}  // namespace

EnrichConfig parse_enrich_config(config::ConfigReader& r) {
  EnrichConfig c;
  for (auto& rr : r.list("exporter_classifiers")) c.exporter_classifiers.push_back(read_rule(rr, ClassifierKind::exporter));
  for (auto& rr : r.list("interface_classifiers")) c.interface_classifiers.push_back(read_rule(rr, ClassifierKind::interface));

  {
    auto n = r.child("networks");
    std::map<std::pair<Ip6, int>, std::string> seen;
    for (const auto& key : n.keys()) {
      auto e = n.child(key);
      NetworkConfig net;
      net.prefix = key;
      net.name = e.string("name", "");
      net.role = e.string("role", "");
      net.site = e.string("site", "");
      net.region = e.string("region", "");
      net.tenant = e.string("tenant", "");
      e.finish();
      std::string error;
      auto prefix = parse_prefix(key, &error);
      if (!prefix) {
        n.error(key, error);
        continue;
      }
      auto [it, fresh] = seen.emplace(std::pair{prefix->address, prefix->length}, key);
      if (!fresh) {
        n.error(key, fmt::format("the same network as '{}'", it->second));
        continue;
      }
      c.networks.push_back(std::move(net));
    }
  }

  {
    auto g = r.child("geoip");
    c.asn_database = g.string("asn_database", "");
    c.country_database = g.string("country_database", "");
    c.geoip_check_interval = g.duration("check_interval", c.geoip_check_interval);
    g.finish();
  }

  if (r.has("as_sources")) {
    c.as_sources.clear();
    for (const auto& s : r.string_list("as_sources")) {
      AsSource source;
      if (s == "flow") source = AsSource::flow;
      else if (s == "geoip") source = AsSource::geoip;
      else {
        r.error("as_sources", fmt::format("expected flow or geoip, got '{}'", s));
        continue;
      }
      for (auto existing : c.as_sources) {
        if (existing == source) r.error("as_sources", fmt::format("'{}' is listed twice", s));
      }
      c.as_sources.push_back(source);
    }
  } else {
    r.string_list("as_sources");
  }

  {
    auto k = r.child("cache");
    c.classifier_cache_entries = static_cast<std::size_t>(
        k.integer("classifier_entries", static_cast<std::int64_t>(c.classifier_cache_entries), 1, 10'000'000));
    c.address_cache_entries = static_cast<std::size_t>(
        k.integer("address_entries", static_cast<std::int64_t>(c.address_cache_entries), 16, 16'777'216));
    c.interface_cache_entries = static_cast<std::size_t>(
        k.integer("interface_entries", static_cast<std::int64_t>(c.interface_cache_entries), 16, 16'777'216));
    k.finish();
  }
  r.finish();
  return c;
}

}  // namespace sluice::transforms
