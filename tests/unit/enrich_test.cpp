// Enricher: directory names, classifiers, networks and GeoIP applied to flow records, and its config.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "config/config.hpp"
#include "config/reader.hpp"
#include "core/metrics.hpp"
#include "enrich_support.hpp"
#include "transforms/enricher.hpp"

namespace sluice::transforms {
namespace {

using testing::FixedDirectory;
using testing::TempDir;
using testing::write_mmdb;

Ip6 ip(const char* text) { return *ip6_parse(text); }

EnrichConfig parse(const std::string& enrich_yaml) {
  const std::string yaml = "outlet:\n  chdb: {path: /tmp/x}\n  flows:\n    enrich:\n" + enrich_yaml;
  return config::parse_config(yaml).outlet->flows.enrich;
}

std::string config_errors(const std::string& enrich_yaml) {
  try {
    parse(enrich_yaml);
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  return "(accepted)";
}

const char* kRules = R"(
      exporter_classifiers:
        - match: {name: '^(?<site>[a-z]+)\d-(?<role>edge|core)'}
          set: {site: '${site}', role: '${role}', group: backbone}
        - match: {address: 203.0.113.0/24}
          set: {group: lab, tenant: research}
      interface_classifiers:
        - match: {description: '(?i)^(transit|ix):\s*(\S+)'}
          set: {connectivity: '$1', provider: '$2', boundary: external}
        - match: {name: '^(ae|et-)'}
          set: {boundary: internal, connectivity: core}
      networks:
        10.0.0.0/8: {name: customers, role: clients, region: eu}
        10.1.0.0/16: {name: customers-par, site: par}
        "2001:db8::/32": {name: v6-lab, tenant: research}
      as_sources: [flow, geoip]
)";

FlowRecord flow(const char* exporter, const char* src, const char* dst, std::uint32_t in_if, std::uint32_t out_if) {
  FlowRecord r;
  r.time_received = 1'700'000'000;
  r.exporter_address = ip(exporter);
  r.src_addr = ip(src);
  r.dst_addr = ip(dst);
  r.in_if = in_if;
  r.out_if = out_if;
  return r;
}

TEST(EnrichConfig, ParsesEverySectionWithDefaults) {
  auto c = parse(std::string(kRules) + R"(
      geoip: {asn_database: /var/lib/asn.mmdb, check_interval: 2s}
      cache: {address_entries: 1024}
)");
  ASSERT_EQ(c.exporter_classifiers.size(), 2u);
  EXPECT_EQ(c.exporter_classifiers[0].path, "outlet.flows.enrich.exporter_classifiers[0]");
  EXPECT_EQ(c.exporter_classifiers[0].regexes[0].second, R"(^(?<site>[a-z]+)\d-(?<role>edge|core))");
  EXPECT_EQ(c.exporter_classifiers[0].set[0], (std::pair<std::string, std::string>{"site", "${site}"}));
  EXPECT_EQ(c.exporter_classifiers[1].exporter_addresses, std::vector<std::string>{"203.0.113.0/24"});
  ASSERT_EQ(c.interface_classifiers.size(), 2u);
  ASSERT_EQ(c.networks.size(), 3u);
  EXPECT_EQ(c.networks[1].prefix, "10.1.0.0/16");
  EXPECT_EQ(c.networks[1].site, "par");
  EXPECT_EQ(c.asn_database, "/var/lib/asn.mmdb");
  EXPECT_EQ(c.country_database, "");
  EXPECT_EQ(c.geoip_check_interval, std::chrono::milliseconds(2000));
  EXPECT_EQ(c.as_sources, (std::vector<AsSource>{AsSource::flow, AsSource::geoip}));
  EXPECT_EQ(c.address_cache_entries, 1024u);
  EXPECT_EQ(c.classifier_cache_entries, 10'000u);
  EXPECT_TRUE(c.any());
  EXPECT_FALSE(parse("      {}\n").any());
}

TEST(EnrichConfig, ErrorsCarryTheirKeyPaths) {
  const auto errors = config_errors(R"(
      exporter_classifiers:
        - match: {name: '([a-z'}
          set: {site: '$1'}
        - match: {name: '^(a)', colour: red}
          set: {site: '$2', altitude: high}
      interface_classifiers:
        - match: {index: [1, two]}
          set: {boundary: sideways}
      networks:
        192.0.2.1/24: {name: x}
        10.0.0.0/8: {name: a, colour: blue}
        "::ffff:10.0.0.0/104": {name: b}
      geoip: {check_interval: often}
      as_sources: [flow, bgp]
      cache: {address_entries: 0}
)");
  for (const char* expected : {
           "outlet.flows.enrich.exporter_classifiers[0].match.name: '([a-z' is not a valid regular expression",
           "outlet.flows.enrich.exporter_classifiers[1].match.colour: unknown key",
           "outlet.flows.enrich.exporter_classifiers[1].set.site: $2 refers to a group the regex does not have (it has 1)",
           "outlet.flows.enrich.exporter_classifiers[1].set.altitude: unknown field (known: group, role, site, region, tenant, name)",
           "outlet.flows.enrich.interface_classifiers[0].match.index: expected interface indexes (integers), got 'two'",
           "outlet.flows.enrich.interface_classifiers[0].set.boundary: expected external, internal or undefined, got 'sideways'",
           "outlet.flows.enrich.networks.192.0.2.1/24: '192.0.2.1/24' has bits set after the prefix length",
           "outlet.flows.enrich.networks.10.0.0.0/8.colour: unknown key",
           "outlet.flows.enrich.networks.::ffff:10.0.0.0/104: the same network as '10.0.0.0/8'",
           "outlet.flows.enrich.geoip.check_interval: expected a duration",
           "outlet.flows.enrich.as_sources: expected flow or geoip, got 'bgp'",
           "outlet.flows.enrich.cache.address_entries: expected an integer between 16 and",
       }) {
    EXPECT_NE(errors.find(expected), std::string::npos) << "missing: " << expected << "\nin:\n" << errors;
  }
  EXPECT_NE(config_errors("      exporter_classifiers: {a: b}\n").find("outlet.flows.enrich.exporter_classifiers: expected a list"),
            std::string::npos);
  EXPECT_NE(config_errors("      unknown_thing: 1\n").find("outlet.flows.enrich.unknown_thing: unknown key"), std::string::npos);
  // ${...} in rules is the rule's own syntax, not an environment variable.
  EXPECT_EQ(config_errors(kRules), "(accepted)");
}

TEST(Enricher, FillsNamesClassesNetworksAndKeepsFlowAs) {
  MetricsRegistry metrics;
  FixedDirectory dir;
  dir.add_exporter(ip("192.0.2.1"), "par1-edge");
  dir.add_interface(ip("192.0.2.1"), 10, "et-0/0/0", "Transit: Cogent", 100'000);
  dir.add_interface(ip("192.0.2.1"), 20, "ae1", "to fra1-core", 400'000);
  Enricher e(parse(kRules), &dir, metrics);
  auto session = e.session();

  auto r = flow("192.0.2.1", "10.1.2.3", "2001:db8::9", 10, 20);
  r.src_as = 64500;
  session->enrich(r);
  EXPECT_EQ(r.exporter_name, "par1-edge");
  EXPECT_EQ(r.exporter_site, "par");
  EXPECT_EQ(r.exporter_role, "edge");
  EXPECT_EQ(r.exporter_group, "backbone");
  EXPECT_EQ(r.exporter_tenant, "");
  EXPECT_EQ(r.in_if_name, "et-0/0/0");
  EXPECT_EQ(r.in_if_description, "Transit: Cogent");
  EXPECT_EQ(r.in_if_speed, 100'000u);
  EXPECT_EQ(r.in_if_connectivity, "Transit");
  EXPECT_EQ(r.in_if_provider, "Cogent");
  EXPECT_EQ(r.in_if_boundary, Boundary::external);
  EXPECT_EQ(r.out_if_name, "ae1");
  EXPECT_EQ(r.out_if_connectivity, "core");
  EXPECT_EQ(r.out_if_provider, "");
  EXPECT_EQ(r.out_if_boundary, Boundary::internal);
  EXPECT_EQ(r.src_net_name, "customers-par");
  EXPECT_EQ(r.src_net_role, "clients");
  EXPECT_EQ(r.src_net_site, "par");
  EXPECT_EQ(r.src_net_region, "eu");
  EXPECT_EQ(r.dst_net_name, "v6-lab");
  EXPECT_EQ(r.dst_net_tenant, "research");
  EXPECT_EQ(r.src_as, 64500u);
  EXPECT_EQ(r.dst_as, 0u);
  EXPECT_EQ(metrics.counter_total("enrich_unknown_exporter_total"), 0u);
  EXPECT_EQ(metrics.counter_total("enrich_unknown_interface_total"), 0u);

  // Same second: answered from the session without asking the directory again.
  const auto asked = dir.exporter_queries + dir.interface_queries;
  auto again = flow("192.0.2.1", "10.200.0.1", "8.8.8.8", 10, 20);
  session->enrich(again);
  EXPECT_EQ(dir.exporter_queries + dir.interface_queries, asked);
  EXPECT_EQ(again.in_if_provider, "Cogent");
  EXPECT_EQ(again.src_net_name, "customers");
  EXPECT_EQ(again.src_net_site, "");
  EXPECT_EQ(again.dst_net_name, "");
}

TEST(Enricher, UnknownExportersAndInterfacesAreKeptCountedAndPickedUpLater) {
  MetricsRegistry metrics;
  FixedDirectory dir;
  Enricher e(parse(kRules), &dir, metrics);
  auto session = e.session();

  auto r = flow("203.0.113.5", "192.0.2.1", "192.0.2.2", 3, 0);
  session->enrich(r);
  EXPECT_EQ(r.exporter_name, "");
  EXPECT_EQ(r.exporter_group, "lab");  // classified by address without a name
  EXPECT_EQ(r.exporter_tenant, "research");
  EXPECT_EQ(r.in_if_name, "");
  EXPECT_EQ(r.in_if_boundary, Boundary::undefined);
  r = flow("203.0.113.5", "192.0.2.1", "192.0.2.2", 3, 0);
  session->enrich(r);
  EXPECT_EQ(metrics.counter_total("enrich_unknown_exporter_total"), 2u);
  EXPECT_EQ(metrics.counter_total("enrich_unknown_interface_total"), 2u);

  // The directory learns the names; the next second's flows carry them.
  dir.add_exporter(ip("203.0.113.5"), "lab1-core");
  dir.add_interface(ip("203.0.113.5"), 3, "et-0/0/3", "IX: franceix", 10'000);
  r = flow("203.0.113.5", "192.0.2.1", "192.0.2.2", 3, 0);
  r.time_received += 1;
  session->enrich(r);
  EXPECT_EQ(r.exporter_name, "lab1-core");
  EXPECT_EQ(r.exporter_site, "lab");
  EXPECT_EQ(r.exporter_role, "core");
  EXPECT_EQ(r.exporter_group, "backbone");  // the name rule comes first
  EXPECT_EQ(r.exporter_tenant, "research");
  EXPECT_EQ(r.in_if_name, "et-0/0/3");
  EXPECT_EQ(r.in_if_connectivity, "IX");
  EXPECT_EQ(r.in_if_provider, "franceix");
  EXPECT_EQ(r.in_if_boundary, Boundary::external);
  EXPECT_EQ(metrics.counter_total("enrich_unknown_exporter_total"), 2u);
  EXPECT_EQ(metrics.counter_total("enrich_unknown_interface_total"), 2u);
}

TEST(Enricher, AsSourcesOrderAndCountriesFromGeoIp) {
  TempDir tmp("sluice-enrich-geo");
  write_mmdb(tmp, tmp / "asn.mmdb", {{"198.51.100.0/24", 64511, ""}, {"2001:db8::/32", 64512, ""}});
  write_mmdb(tmp, tmp / "country.mmdb", {{"198.51.100.0/24", 0, "FR"}, {"2001:db8::/32", 0, "DE"}});
  const std::string geo = "      geoip: {asn_database: " + tmp / "asn.mmdb" + ", country_database: " + tmp / "country.mmdb" +
                          ", check_interval: 0s}\n";
  MetricsRegistry metrics;
  Enricher flow_first(parse(geo), nullptr, metrics);
  Enricher geoip_first(parse(geo + "      as_sources: [geoip, flow]\n"), nullptr, metrics);
  Enricher geoip_only(parse(geo + "      as_sources: [geoip]\n"), nullptr, metrics);

  const auto run = [](Enricher& e, std::uint32_t src_as, std::uint32_t dst_as) {
    auto s = e.session();
    auto r = flow("192.0.2.1", "198.51.100.7", "2001:db8::1", 0, 0);
    r.src_as = src_as;
    r.dst_as = dst_as;
    s->enrich(r);
    return std::to_string(r.src_as) + "/" + std::to_string(r.dst_as) + " " + std::string(r.src_country, 2) + "/" +
           std::string(r.dst_country, 2);
  };
  EXPECT_EQ(run(flow_first, 65000, 0), "65000/64512 FR/DE");
  EXPECT_EQ(run(geoip_first, 65000, 0), "64511/64512 FR/DE");
  EXPECT_EQ(run(geoip_only, 65000, 65001), "64511/64512 FR/DE");

  auto s = geoip_only.session();
  auto r = flow("192.0.2.1", "203.0.113.1", "10.0.0.1", 0, 0);
  r.src_as = 65000;
  s->enrich(r);
  EXPECT_EQ(r.src_as, 0u);  // the flow's AS is not a source here
  EXPECT_EQ(std::string(r.src_country, 2), std::string(2, '\0'));
}

TEST(Enricher, ASessionSeesAReloadedDatabase) {
  TempDir tmp("sluice-enrich-reload");
  write_mmdb(tmp, tmp / "asn.mmdb", {{"198.51.100.0/24", 64511, ""}});
  MetricsRegistry metrics;
  Enricher e(parse("      geoip: {asn_database: " + tmp / "asn.mmdb" + ", check_interval: 50ms}\n"), nullptr, metrics);
  auto s = e.session();
  auto r = flow("192.0.2.1", "198.51.100.7", "198.51.100.8", 0, 0);
  s->enrich(r);
  EXPECT_EQ(r.src_as, 64511u);
  write_mmdb(tmp, tmp / "asn.mmdb", {{"198.51.100.0/24", 64999, ""}});
  EXPECT_TRUE(testing::eventually(
      [&] {
        auto again = flow("192.0.2.1", "198.51.100.7", "198.51.100.8", 0, 0);
        s->enrich(again);
        return again.src_as == 64999u && again.dst_as == 64999u;
      },
      std::chrono::seconds(10)));
}

TEST(Enricher, TwoDecodeThreadsShareOneEnricherWhileDatabasesAreReplaced) {
  TempDir tmp("sluice-enrich-threads");
  write_mmdb(tmp, tmp / "asn.mmdb", {{"198.51.100.0/24", 64500, ""}});
  MetricsRegistry metrics;
  FixedDirectory dir;
  dir.add_exporter(ip("192.0.2.1"), "par1-edge");
  for (std::uint32_t i = 1; i <= 64; ++i) dir.add_interface(ip("192.0.2.1"), i, "et-0/0/" + std::to_string(i), "Transit: Cogent", 10'000);
  Enricher e(parse(std::string(kRules) + "      geoip: {asn_database: " + tmp / "asn.mmdb" + ", check_interval: 20ms}\n"), &dir,
             metrics);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> wrong{0}, flows{0};
  const auto decode = [&](std::uint32_t seed) {
    auto session = e.session();
    std::uint32_t n = seed;
    while (!stop.load()) {
      n = n * 1664525u + 1013904223u;
      auto r = flow("192.0.2.1", "198.51.100.7", "10.1.0.1", 1 + n % 64, 1 + (n >> 8) % 64);
      r.time_received += (n >> 20) % 3;
      r.src_addr[15] = static_cast<std::uint8_t>(n >> 24);
      session->enrich(r);
      const bool ok = (r.src_as >= 64500 && r.src_as <= 64503) && r.exporter_site == "par" && r.in_if_provider == "Cogent" &&
                      r.in_if_name == "et-0/0/" + std::to_string(r.in_if) && r.dst_net_name == "customers-par";
      if (!ok) wrong.fetch_add(1);
      flows.fetch_add(1);
    }
  };
  std::thread a(decode, 1), b(decode, 2);
  for (std::uint32_t asn = 64501; asn <= 64503; ++asn) {
    write_mmdb(tmp, tmp / "asn.mmdb", {{"198.51.100.0/24", asn, ""}});
    EXPECT_TRUE(testing::eventually([&] { return metrics.counter_total("enrich_geoip_reloads_total") == asn - 64500; },
                                    std::chrono::seconds(10)));
  }
  stop = true;
  a.join();
  b.join();
  EXPECT_GT(flows.load(), 10'000u);
  EXPECT_EQ(wrong.load(), 0u);
  auto s = e.session();
  auto r = flow("192.0.2.1", "198.51.100.7", "10.1.0.1", 1, 2);
  s->enrich(r);
  EXPECT_EQ(r.src_as, 64503u);
}

}  // namespace
}  // namespace sluice::transforms
