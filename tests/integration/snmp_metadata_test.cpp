// The metadata directory against a real net-snmp agent (snmpd) on loopback.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fmt/format.h>

#include "core/metrics.hpp"
#include "fixtures/process.hpp"
#include "transforms/metadata/directory.hpp"

namespace sluice::transforms::metadata {
namespace {

using namespace std::chrono_literals;
using testing::eventually;

Ip6 ip(const char* text) { return *ip6_parse(text); }

constexpr const char* kSysName = "edge-test-1";
constexpr const char* kUser = "sluiceuser";
constexpr const char* kAuthPass = "authpass123";
constexpr const char* kPrivPass = "privpass123";

// snmpd answering on 127.0.0.1 and 127.0.0.2 with v2c (community "public") and a v3 authPriv user,
// its sysName set, and fixed ifAlias/speed for the loopback (ifIndex 1, whose ifName "lo" is real)
// plus a made-up interface 4242 that only has ifSpeed (bit/s), to exercise the fallback.
class SnmpAgent {
 public:
  SnmpAgent() : port_(testing::free_udp_port()) {
    testing::write_file(dir_ / "snmpd.conf", fmt::format(R"([snmp] persistentDir {}
rocommunity public 127.0.0.0/8
sysName {}
createUser {} SHA "{}" AES "{}"
rouser {} priv
override 1.3.6.1.2.1.31.1.1.1.18.1 octet_str "transit: ExampleNet"
override 1.3.6.1.2.1.31.1.1.1.15.1 unsigned 10000
override 1.3.6.1.2.1.31.1.1.1.1.4242 octet_str "Te0/0/7"
override 1.3.6.1.2.1.31.1.1.1.18.4242 octet_str "peer: AS64500"
override 1.3.6.1.2.1.2.2.1.5.4242 unsigned 1000000000
)",
                                                         dir_ / "persist", kSysName, kUser, kAuthPass, kPrivPass,
                                                         kUser));
    start();
  }
  void start() {
    const auto endpoints = fmt::format("udp:127.0.0.1:{},udp:127.0.0.2:{}", port_, port_);
    process_ = std::make_unique<testing::Process>(
        std::vector<std::string>{"snmpd", "-f", "-Lo", "-C", "-c", dir_ / "snmpd.conf", endpoints}, dir_.path(),
        std::map<std::string, std::string>{{"MIBS", ""}, {"MIBDIRS", dir_ / "no-mibs"}});
    ASSERT_TRUE(process_->wait_for_stdout_line("NET-SNMP version", 20s)) << process_->stdout_text();
  }
  void stop() { process_->stop(5s); }
  int port() const { return port_; }

 private:
  testing::TempDir dir_{"sluice-snmpd"};
  int port_;
  std::unique_ptr<testing::Process> process_;
};

MetadataConfig make_config(const std::string& yaml) {
  auto root = config::ConfigReader::root(YAML::Load(yaml));
  auto section = root.child("metadata");
  auto cfg = parse_metadata_config(section, "/nonexistent");
  root.finish();
  root.check();
  return cfg;
}

std::string base_yaml(int port, const std::string& cache_path, const std::string& extra_snmp = "") {
  return fmt::format(R"(
metadata:
  cache: {{ttl: 1h, refresh: 30m, path: {}}}
  snmp:
    port: {}
    timeout: 2s
    retries: 0
    retry_after: 200ms
{}
)",
                     cache_path, port, extra_snmp);
}

std::uint64_t fetches(const MetricsRegistry& m, const char* result) {
  return m.counter_value("metadata_snmp_fetches_total", {{"result", result}});
}

// A datagram to a closed port is either never answered or refused by ICMP: both are failures.
std::uint64_t failures(const MetricsRegistry& m) { return fetches(m, "timeout") + fetches(m, "error"); }

void expect_agent_values(MetadataDirectory& directory, const Ip6& exporter) {
  std::shared_ptr<const ExporterInfo> e;
  ASSERT_TRUE(eventually([&] { return (e = directory.exporter(exporter)) != nullptr; }, 10s));
  EXPECT_EQ(e->name, kSysName);

  std::shared_ptr<const InterfaceInfo> lo;
  ASSERT_TRUE(eventually([&] { return (lo = directory.interface(exporter, 1)) != nullptr; }, 10s));
  EXPECT_EQ(lo->name, "lo");
  EXPECT_EQ(lo->description, "transit: ExampleNet");
  EXPECT_EQ(lo->speed, 10000u);  // ifHighSpeed, Mbit/s

  std::shared_ptr<const InterfaceInfo> te;
  ASSERT_TRUE(eventually([&] { return (te = directory.interface(exporter, 4242)) != nullptr; }, 10s));
  EXPECT_EQ(te->name, "Te0/0/7");
  EXPECT_EQ(te->description, "peer: AS64500");
  EXPECT_EQ(te->speed, 1000u);  // no ifHighSpeed: ifSpeed 1e9 bit/s
}

TEST(SnmpMetadata, V2cNamesAliasesAndSpeeds) {
  SnmpAgent agent;
  testing::TempDir dir("sluice-metadata");
  MetricsRegistry metrics;
  MetadataDirectory directory(make_config(base_yaml(agent.port(), dir / "cache.json")), metrics);
  directory.start();
  // Unknown at first: null at once, counted, fetched in the background.
  EXPECT_FALSE(directory.exporter(ip("127.0.0.1")));
  EXPECT_EQ(metrics.counter_value("metadata_lookups_total", {{"kind", "exporter"}, {"result", "miss"}}), 1u);
  expect_agent_values(directory, ip("127.0.0.1"));

  // An ifIndex the agent does not have stays unknown, and is asked once, not per lookup.
  const auto before = fetches(metrics, "ok");
  EXPECT_FALSE(directory.interface(ip("127.0.0.1"), 99));
  ASSERT_TRUE(eventually([&] { return fetches(metrics, "ok") == before + 1; }, 10s));
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(directory.interface(ip("127.0.0.1"), 99));
  EXPECT_EQ(fetches(metrics, "ok"), before + 1);
  EXPECT_EQ(fetches(metrics, "timeout"), 0u);
  EXPECT_EQ(fetches(metrics, "error"), 0u);
  const auto status = directory.status();
  EXPECT_EQ(status["cache"]["exporters"], 1);
  EXPECT_EQ(status["cache"]["interfaces"], 3);
}

TEST(SnmpMetadata, V3AuthPriv) {
  SnmpAgent agent;
  testing::TempDir dir("sluice-metadata");
  MetricsRegistry metrics;
  // v2c with a community the agent refuses everywhere, so that only the v3 user can succeed.
  const auto extra = fmt::format(R"(    community: not-this-one
    v3:
      "127.0.0.2/32": {{user: {}, security_level: authPriv, auth_protocol: SHA, auth_passphrase: {},
                       priv_protocol: AES, priv_passphrase: {}}})",
                                 kUser, kAuthPass, kPrivPass);
  MetadataDirectory directory(make_config(base_yaml(agent.port(), dir / "cache.json", extra)), metrics);
  directory.start();
  expect_agent_values(directory, ip("127.0.0.2"));
  EXPECT_EQ(fetches(metrics, "error"), 0u);
}

TEST(SnmpMetadata, CachedValuesSurviveAgentStopAndRestart) {
  SnmpAgent agent;
  testing::TempDir dir("sluice-metadata");
  const auto cache_path = dir / "cache.json";
  // Refresh every second so that refreshes run (and fail) while the agent is down.
  auto yaml = fmt::format(R"(
metadata:
  cache: {{ttl: 1h, refresh: 1s, path: {}}}
  snmp: {{port: {}, timeout: 200ms, retries: 0, retry_after: 200ms, breaker: {{failures: 100}}}}
)",
                          cache_path, agent.port());
  {
    MetricsRegistry metrics;
    MetadataDirectory directory(make_config(yaml), metrics);
    directory.start();
    expect_agent_values(directory, ip("127.0.0.1"));
    agent.stop();
    // The refresh fails, the names stay.
    ASSERT_TRUE(eventually(
        [&] {
          EXPECT_TRUE(directory.exporter(ip("127.0.0.1")));
          EXPECT_TRUE(directory.interface(ip("127.0.0.1"), 1));
          return failures(metrics) >= 2;
        },
        15s));
    auto lo = directory.interface(ip("127.0.0.1"), 1);
    ASSERT_TRUE(lo);
    EXPECT_EQ(lo->name, "lo");
    EXPECT_EQ(lo->description, "transit: ExampleNet");
    EXPECT_EQ(directory.exporter(ip("127.0.0.1"))->name, kSysName);
    directory.stop();  // saves the cache
  }
  // A restart with the agent still down answers from the saved cache, at the first lookup.
  MetricsRegistry metrics;
  MetadataDirectory restarted(make_config(yaml), metrics);
  restarted.start();
  auto e = restarted.exporter(ip("127.0.0.1"));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->name, kSysName);
  auto te = restarted.interface(ip("127.0.0.1"), 4242);
  ASSERT_TRUE(te);
  EXPECT_EQ(te->name, "Te0/0/7");
  EXPECT_EQ(te->description, "peer: AS64500");
  EXPECT_EQ(te->speed, 1000u);
  EXPECT_EQ(fetches(metrics, "ok"), 0u);
}

TEST(SnmpMetadata, UnreachableExporterIsCountedAndItsBreakerOpens) {
  SnmpAgent agent;  // listening on .1 and .2 only: 127.0.0.3 never answers
  testing::TempDir dir("sluice-metadata");
  MetricsRegistry metrics;
  auto yaml = fmt::format(R"(
metadata:
  cache: {{persist: false}}
  snmp:
    port: {}
    timeout: 500ms
    retries: 0
    concurrency: 1
    retry_after: 100ms
    breaker: {{failures: 3, open_for: 1h}}
)",
                          agent.port());
  MetadataDirectory directory(make_config(yaml), metrics);
  directory.start();
  const auto dead = ip("127.0.0.3");
  // Never seen: null without waiting for the agent (the query is not even answered yet).
  EXPECT_FALSE(directory.exporter(dead));
  EXPECT_EQ(failures(metrics), 0u);
  for (std::uint32_t i = 1; i <= 5; ++i) EXPECT_FALSE(directory.interface(dead, i));
  ASSERT_TRUE(eventually([&] { return metrics.counter_total("metadata_snmp_breaker_opened_total") == 1; }, 10s));
  // Once open, queries to that exporter stop: retries are skipped and counted, no more timeouts.
  ASSERT_TRUE(eventually([&] { return metrics.counter_total("metadata_snmp_breaker_skipped_total") >= 3; }, 10s));
  EXPECT_EQ(failures(metrics), 3u);
  EXPECT_EQ(directory.status()["snmp"]["breakers_open"], 1);
  EXPECT_FALSE(directory.exporter(dead));
  EXPECT_FALSE(directory.interface(dead, 1));
  // Other exporters are not affected.
  expect_agent_values(directory, ip("127.0.0.1"));
  EXPECT_EQ(failures(metrics), 3u);
}

}  // namespace
}  // namespace sluice::transforms::metadata
