#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>

#include "core/metrics.hpp"
#include "transforms/metadata/config.hpp"
#include "transforms/metadata/directory.hpp"

namespace sluice::transforms::metadata {
namespace {

MetadataConfig parse(const std::string& yaml, std::vector<std::string>* errors = nullptr) {
  auto root = config::ConfigReader::root(YAML::Load(yaml));
  auto section = root.child("metadata");
  auto cfg = parse_metadata_config(section, "/var/lib/sluice");
  root.finish();
  try {
    root.check();
  } catch (const config::ConfigError& e) {
    if (errors) *errors = e.errors();
    else ADD_FAILURE() << e.what();
  }
  return cfg;
}

bool has_error(const std::vector<std::string>& errors, const std::string& prefix) {
  for (const auto& e : errors) {
    if (e.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

Ip6 ip(const char* text) { return *ip6_parse(text); }

TEST(MetadataPrefix, ParsesAndMatches) {
  auto v4 = parse_prefix("192.0.2.0/24");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->length, 120);
  EXPECT_TRUE(v4->contains(ip("192.0.2.255")));
  EXPECT_FALSE(v4->contains(ip("192.0.3.0")));
  EXPECT_EQ(prefix_to_string(*v4), "192.0.2.0/24");
  auto host = parse_prefix("198.51.100.7");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->length, 128);
  EXPECT_TRUE(host->contains(ip("198.51.100.7")));
  EXPECT_FALSE(host->contains(ip("198.51.100.6")));
  auto v6 = parse_prefix("2001:db8:8000::/33");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains(ip("2001:db8:ffff::1")));
  EXPECT_FALSE(v6->contains(ip("2001:db8:7fff::1")));
  auto all = parse_prefix("::/0");
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->contains(ip("203.0.113.9")));
  EXPECT_FALSE(parse_prefix("192.0.2.1/24"));  // host bits set
  EXPECT_FALSE(parse_prefix("192.0.2.0/33"));
  EXPECT_FALSE(parse_prefix("edge-1"));
  EXPECT_FALSE(parse_prefix("192.0.2.0/"));
}

TEST(MetadataConfig, DefaultsPollEveryExporterWithPublic) {
  const auto cfg = parse("{}");
  EXPECT_TRUE(cfg.static_entries.empty());
  EXPECT_TRUE(cfg.snmp.enabled);
  EXPECT_EQ(cfg.snmp.port, 161);
  const auto* creds = cfg.snmp.credentials.find(ip("203.0.113.1"));
  ASSERT_NE(creds, nullptr);
  EXPECT_EQ(std::get<SnmpV2cCredentials>(*creds).community, "public");
  EXPECT_EQ(cfg.cache.path, "/var/lib/sluice/metadata-cache.json");
  EXPECT_EQ(cfg.cache.ttl, std::chrono::hours(24));
  EXPECT_EQ(cfg.cache.refresh, std::chrono::minutes(30));
  EXPECT_EQ(cfg.cache.max_exporters, 4096u);
}

TEST(MetadataConfig, ShippedEnvironmentVariables) {
  setenv("SLUICE_SNMP_COMMUNITY", "s3cret", 1);
  setenv("SLUICE_SNMP_PORT", "1161", 1);
  const auto cfg = parse(R"(
metadata:
  snmp:
    port: ${SLUICE_SNMP_PORT:-161}
    community: ${SLUICE_SNMP_COMMUNITY:-public}
)");
  unsetenv("SLUICE_SNMP_COMMUNITY");
  unsetenv("SLUICE_SNMP_PORT");
  EXPECT_EQ(cfg.snmp.port, 1161);
  EXPECT_EQ(std::get<SnmpV2cCredentials>(*cfg.snmp.credentials.find(ip("192.0.2.1"))).community, "s3cret");
}

TEST(MetadataConfig, FullExample) {
  const auto cfg = parse(R"(
metadata:
  cache: {ttl: 12h, refresh: 20m, max_exporters: 100, max_interfaces: 50, path: /tmp/m.json, save_every: 1m}
  static:
    - exporters: 192.0.2.0/24
      name: edge-any
      interfaces:
        10: {name: Gi0/0/0/10, description: "transit: ExampleNet", speed: 10000}
        11: {name: Gi0/0/0/11}
      default_interface: {name: unknown, speed: 1000}
    - exporters: 2001:db8::1
  snmp:
    enabled: true
    port: 1161
    community: fallback
    communities: {"198.51.100.0/24": lab}
    v3:
      "203.0.113.0/24": {user: sluice, auth_protocol: MD5, auth_passphrase: authpass1, priv_protocol: DES, priv_passphrase: privpass1}
      "203.0.113.128/25": {user: monitor, security_level: authNoPriv, auth_protocol: SHA256, auth_passphrase: authpass2}
    timeout: 500ms
    retries: 2
    concurrency: 4
    queue: 100
    retry_after: 10s
    breaker: {failures: 5, open_for: 1m}
)");
  EXPECT_EQ(cfg.cache.ttl, std::chrono::hours(12));
  EXPECT_EQ(cfg.cache.refresh, std::chrono::minutes(20));
  EXPECT_EQ(cfg.cache.max_exporters, 100u);
  EXPECT_EQ(cfg.cache.max_interfaces, 50u);
  EXPECT_EQ(cfg.cache.path, "/tmp/m.json");
  EXPECT_EQ(cfg.cache.save_every, std::chrono::minutes(1));
  ASSERT_EQ(cfg.static_entries.size(), 2u);
  const auto& s = cfg.static_entries[0];
  EXPECT_EQ(prefix_to_string(s.exporters), "192.0.2.0/24");
  ASSERT_TRUE(s.exporter);
  EXPECT_EQ(s.exporter->name, "edge-any");
  ASSERT_EQ(s.interfaces.size(), 2u);
  EXPECT_EQ(s.interfaces.at(10)->name, "Gi0/0/0/10");
  EXPECT_EQ(s.interfaces.at(10)->description, "transit: ExampleNet");
  EXPECT_EQ(s.interfaces.at(10)->speed, 10000u);
  EXPECT_EQ(s.interfaces.at(11)->description, "");
  ASSERT_TRUE(s.default_interface);
  EXPECT_EQ(s.default_interface->name, "unknown");
  EXPECT_FALSE(cfg.static_entries[1].exporter);
  EXPECT_EQ(cfg.static_entries[1].exporters.length, 128);
  EXPECT_EQ(cfg.snmp.port, 1161);
  EXPECT_EQ(cfg.snmp.timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(cfg.snmp.retries, 2);
  EXPECT_EQ(cfg.snmp.concurrency, 4);
  EXPECT_EQ(cfg.snmp.queue, 100u);
  EXPECT_EQ(cfg.snmp.retry_after, std::chrono::seconds(10));
  EXPECT_EQ(cfg.snmp.breaker_failures, 5);
  EXPECT_EQ(cfg.snmp.breaker_open_for, std::chrono::minutes(1));
  // Longest prefix wins across communities and v3 users.
  EXPECT_EQ(std::get<SnmpV2cCredentials>(*cfg.snmp.credentials.find(ip("198.51.100.3"))).community, "lab");
  EXPECT_EQ(std::get<SnmpV2cCredentials>(*cfg.snmp.credentials.find(ip("2001:db8::5"))).community, "fallback");
  const auto& v3 = std::get<SnmpV3Credentials>(*cfg.snmp.credentials.find(ip("203.0.113.5")));
  EXPECT_EQ(v3.user, "sluice");
  EXPECT_EQ(v3.level, SecurityLevel::auth_priv);
  EXPECT_EQ(v3.auth, AuthProtocol::md5);
  EXPECT_EQ(v3.priv, PrivProtocol::des);
  EXPECT_EQ(v3.priv_passphrase, "privpass1");
  const auto& monitor = std::get<SnmpV3Credentials>(*cfg.snmp.credentials.find(ip("203.0.113.200")));
  EXPECT_EQ(monitor.user, "monitor");
  EXPECT_EQ(monitor.level, SecurityLevel::auth_no_priv);
  EXPECT_EQ(monitor.auth, AuthProtocol::sha256);
  EXPECT_EQ(monitor.priv, PrivProtocol::none);
}

TEST(MetadataConfig, ErrorsCarryKeyPaths) {
  std::vector<std::string> errors;
  parse(R"(
metadata:
  cache: {ttl: 10m, refresh: 1h, max_exporters: 0}
  static:
    - exporters: 192.0.2.1/24
    - name: no-prefix
      interfaces: {ten: {name: x}, 3: {speed: fast, colour: red}}
  snmp:
    port: 70000
    comunity: typo
    communities: {"not-a-prefix": x}
    v3:
      "203.0.113.0/24": {user: u, auth_passphrase: short, security_level: everything}
    breaker: {failures: 0}
)",
        &errors);
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  EXPECT_TRUE(has_error(errors, "metadata.cache.refresh: must be shorter than cache.ttl")) << all;
  EXPECT_TRUE(has_error(errors, "metadata.cache.max_exporters: expected an integer between 1")) << all;
  EXPECT_TRUE(has_error(errors, "metadata.static[0].exporters: expected an address or a prefix")) << all;
  EXPECT_TRUE(has_error(errors, "metadata.static[1].exporters: required")) << all;
  EXPECT_TRUE(has_error(errors, "metadata.static[1].interfaces.ten: expected an ifIndex")) << all;
  EXPECT_TRUE(has_error(errors, "metadata.static[1].interfaces.3.speed: expected an integer")) << all;
  EXPECT_TRUE(has_error(errors, "metadata.static[1].interfaces.3.colour: unknown key")) << all;
  EXPECT_TRUE(has_error(errors, "metadata.snmp.port: expected an integer between 1 and 65535")) << all;
  EXPECT_TRUE(has_error(errors, "metadata.snmp.comunity: unknown key")) << all;
  EXPECT_TRUE(has_error(errors, "metadata.snmp.communities.not-a-prefix: expected a prefix")) << all;
  EXPECT_TRUE(has_error(errors, "metadata.snmp.v3.203.0.113.0/24.auth_passphrase: required")) << all;
  EXPECT_TRUE(has_error(errors, "metadata.snmp.v3.203.0.113.0/24.security_level: expected one of")) << all;
  EXPECT_TRUE(has_error(errors, "metadata.snmp.breaker.failures: expected an integer between 1")) << all;
}

// Static entries answer at once, the longest prefix first, with no SNMP involved.
TEST(MetadataStatic, LongestPrefixWins) {
  auto cfg = parse(R"(
metadata:
  cache: {persist: false}
  snmp: {enabled: false}
  static:
    - exporters: 192.0.2.0/24
      name: edge-any
      default_interface: {name: any-if, description: "not configured", speed: 1}
    - exporters: 192.0.2.7
      name: edge-7
      interfaces: {10: {name: Gi0/0/0/10, description: "transit: ExampleNet", speed: 10000}}
    - exporters: ::/0
      interfaces: {1: {name: everywhere-1}}
)");
  MetricsRegistry metrics;
  MetadataDirectory directory(std::move(cfg), metrics);

  auto e7 = directory.exporter(ip("192.0.2.7"));
  ASSERT_TRUE(e7);
  EXPECT_EQ(e7->name, "edge-7");
  auto e8 = directory.exporter(ip("192.0.2.8"));
  ASSERT_TRUE(e8);
  EXPECT_EQ(e8->name, "edge-any");

  auto if10 = directory.interface(ip("192.0.2.7"), 10);
  ASSERT_TRUE(if10);
  EXPECT_EQ(if10->name, "Gi0/0/0/10");
  EXPECT_EQ(if10->description, "transit: ExampleNet");
  EXPECT_EQ(if10->speed, 10000u);
  // The /32 entry has no default: other interfaces of .7 are unknown (SNMP is off), not the /24's default.
  EXPECT_FALSE(directory.interface(ip("192.0.2.7"), 11));
  auto any = directory.interface(ip("192.0.2.9"), 42);
  ASSERT_TRUE(any);
  EXPECT_EQ(any->name, "any-if");
  EXPECT_EQ(any->speed, 1u);

  // Outside the /24: the ::/0 entry gives interface 1 and no exporter name.
  EXPECT_FALSE(directory.exporter(ip("198.51.100.1")));
  auto everywhere = directory.interface(ip("198.51.100.1"), 1);
  ASSERT_TRUE(everywhere);
  EXPECT_EQ(everywhere->name, "everywhere-1");
  EXPECT_FALSE(directory.interface(ip("198.51.100.1"), 2));
  EXPECT_FALSE(directory.interface(ip("198.51.100.1"), 2));  // asked twice, still counted

  EXPECT_EQ(metrics.counter_value("metadata_lookups_total", {{"kind", "exporter"}, {"result", "hit"}}), 2u);
  EXPECT_EQ(metrics.counter_value("metadata_lookups_total", {{"kind", "exporter"}, {"result", "miss"}}), 1u);
  EXPECT_EQ(metrics.counter_value("metadata_lookups_total", {{"kind", "interface"}, {"result", "hit"}}), 3u);
  EXPECT_EQ(metrics.counter_value("metadata_lookups_total", {{"kind", "interface"}, {"result", "miss"}}), 3u);
  EXPECT_EQ(metrics.counter_total("metadata_snmp_fetches_total"), 0u);
  const auto status = directory.status();
  EXPECT_EQ(status["static_entries"], 3);
  EXPECT_EQ(status["snmp"]["enabled"], false);
}

// Misses are fetched in the background, once per key, through a bounded queue: when it is full the
// fetch is counted and left to a later retry, and the lookup still returns at once.
TEST(MetadataDirectory, FetchesAreDeduplicatedAndQueueOverflowIsCounted) {
  auto cfg = parse(R"(
metadata:
  cache: {persist: false}
  snmp: {queue: 2}
)");
  MetricsRegistry metrics;
  MetadataDirectory directory(std::move(cfg), metrics);  // not started: nothing drains the queue
  const auto a = ip("192.0.2.1");
  for (int round = 0; round < 3; ++round) {
    for (std::uint32_t index = 1; index <= 4; ++index) EXPECT_FALSE(directory.interface(a, index));
  }
  EXPECT_EQ(directory.status()["snmp"]["queued"], 2);
  EXPECT_EQ(metrics.counter_total("metadata_snmp_queue_full_total"), 2u);  // indexes 3 and 4, once each
  EXPECT_EQ(metrics.counter_value("metadata_lookups_total", {{"kind", "interface"}, {"result", "miss"}}), 12u);
  EXPECT_EQ(directory.status()["cache"]["interfaces"], 4);
}

}  // namespace
}  // namespace sluice::transforms::metadata
