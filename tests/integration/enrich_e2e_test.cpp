// Enrichment end to end: `sluice run` with classifiers, networks and MMDB databases built in the test;
// NetFlow v5 from two exporters; exact enrichment columns per flow in chDB, then a database reload.
#include <gtest/gtest.h>

#include "fixtures/process.hpp"
#include "fixtures/sluice_instance.hpp"
#include "unit/enrich_support.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

std::string enrich_yaml(const TempDir& dir, int netflow_port) {
  return R"(data_dir: )" + dir / "data" + R"(
admin:
  listen: ${SLUICE_ADMIN_LISTEN}
inlet:
  netflow:
    listen: 127.0.0.1:)" + std::to_string(netflow_port) + R"(
bus:
  memory:
    partitions: 2
outlet:
  batch:
    max_delay: 500ms
  chdb:
    path: )" + dir / "data/chdb" + R"(
  flows:
    enrich:
      exporter_classifiers:
        - match: {address: 127.0.0.1/32}
          set: {group: lab, role: edge, site: par, region: eu, tenant: acme}
        - match: {address: 127.0.0.0/8}
          set: {group: backbone, role: core}
      interface_classifiers:
        - match: {index: [1, 2]}
          set: {connectivity: transit, provider: cogent, boundary: external}
        - match: {index: 3}
          set: {connectivity: core, boundary: internal}
      networks:
        10.0.0.0/8: {name: clients, role: customers}
        10.0.1.0/24: {name: lab-clients}
        192.168.0.0/16: {name: servers, site: par}
      geoip:
        asn_database: )" + dir / "asn.mmdb" + R"(
        country_database: )" + dir / "country.mmdb" + R"(
        check_interval: 200ms
      as_sources: [geoip, flow]
)";
}

TEST(EnrichE2E, EveryFlowLandsWithExactEnrichmentColumnsAndReloadedDatabasesApply) {
  TempDir dir("sluice-e2e-enrich");
  write_mmdb(dir, dir / "asn.mmdb", {{"10.0.0.0/24", 65001, ""}});
  write_mmdb(dir, dir / "country.mmdb", {{"10.0.0.0/24", 0, "FR"}, {"192.168.0.0/16", 0, "DE"}});
  const int port = free_udp_port();
  SluiceInstance sluice("run", enrich_yaml(dir, port), dir);
  sluice.start();

  // Flow i: SrcAddr 10.0.0.0+i, DstAddr 192.168.0.0+i, InIf 1+i%4, OutIf 10+i%3, SrcAS 64500, DstAS 64501.
  V5Stream lab;
  send_v5_stream(port, lab, 600, 2000, "127.0.0.1");
  V5Stream core;
  core.first_flow = 1000;
  send_v5_stream(port, core, 60, 2000, "127.0.0.2");
  ASSERT_TRUE(eventually([&] { return sluice.query_u64("SELECT count() FROM sluice.flows") >= 660; }, 60s)) << sluice.log();
  EXPECT_EQ(sluice.query_u64("SELECT uniqExact(SrcAddr) FROM sluice.flows"), 660u);

  EXPECT_EQ(sluice.query("SELECT toString(ExporterAddress), ExporterGroup, ExporterRole, ExporterSite, ExporterRegion, "
                         "ExporterTenant, count() FROM sluice.flows GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1"),
            "::ffff:127.0.0.1\tlab\tedge\tpar\teu\tacme\t600\n"
            "::ffff:127.0.0.2\tbackbone\tcore\t\t\t\t60\n");

  // Sources: 10.0.0.0/24 has its AS and country from the databases; the others keep the flow's AS and no country.
  EXPECT_EQ(sluice.query("SELECT SrcNetName, SrcNetRole, SrcAS, toString(SrcCountry), count() "
                         "FROM sluice.flows WHERE ExporterGroup = 'lab' GROUP BY 1, 2, 3, 4 ORDER BY 1, 3"),
            "clients\tcustomers\t64500\t\t88\n"
            "clients\tcustomers\t65001\tFR\t256\n"
            "lab-clients\tcustomers\t64500\t\t256\n");
  EXPECT_EQ(sluice.query("SELECT DstNetName, DstNetRole, DstNetSite, DstAS, DstCountry, count() FROM sluice.flows "
                         "GROUP BY 1, 2, 3, 4, 5"),
            "servers\t\tpar\t64501\tDE\t660\n");

  EXPECT_EQ(sluice.query("SELECT InIfBoundary, InIfConnectivity, InIfProvider, count() FROM sluice.flows "
                         "WHERE ExporterGroup = 'lab' GROUP BY 1, 2, 3 ORDER BY 1"),
            "undefined\t\t\t150\n"
            "external\ttransit\tcogent\t300\n"
            "internal\tcore\t\t150\n");
  EXPECT_EQ(sluice.query("SELECT OutIfBoundary, OutIfConnectivity, count() FROM sluice.flows GROUP BY 1, 2"),
            "undefined\t\t660\n");
  // No metadata directory is configured: names stay empty and nothing counts as unknown.
  EXPECT_EQ(sluice.query("SELECT ExporterName, InIfName, count() FROM sluice.flows GROUP BY 1, 2"), "\t\t660\n");
  EXPECT_EQ(sluice.metric("sluice_enrich_unknown_exporter_total"), 0.0);
  EXPECT_EQ(sluice.metric("sluice_flows_decoded_total"), 660.0);

  // A new ASN database renamed over the old one applies to the next flows.
  write_mmdb(dir, dir / "asn.mmdb", {{"10.0.0.0/24", 65002, ""}});
  ASSERT_TRUE(eventually([&] { return sluice.metric("sluice_enrich_geoip_reloads_total", "asn") >= 1.0; }, 30s))
      << sluice.log();
  V5Stream again;
  send_v5_stream(port, again, 30, 2000, "127.0.0.1");
  ASSERT_TRUE(eventually([&] { return sluice.query_u64("SELECT count() FROM sluice.flows") >= 690; }, 60s)) << sluice.log();
  EXPECT_EQ(sluice.query("SELECT SrcAS, count() FROM sluice.flows WHERE SrcCountry = 'FR' GROUP BY 1 ORDER BY 1"),
            "65001\t256\n65002\t30\n");
  EXPECT_EQ(sluice.metric("sluice_enrich_geoip_reload_errors_total"), 0.0);
  EXPECT_EQ(sluice.stop(), 0) << sluice.log();
}

TEST(EnrichE2E, AMissingDatabaseOrABadRuleStopsTheStartWithTheKeyPath) {
  TempDir dir("sluice-e2e-enrich-bad");
  const int port = free_udp_port();
  write_file(dir / "missing.yaml", enrich_yaml(dir, port));  // the .mmdb files were never written
  auto run = run_command({SLUICE_BINARY, "run", "-c", dir / "missing.yaml"}, 60s,
                         {{"SLUICE_ADMIN_LISTEN", "127.0.0.1:" + std::to_string(free_port())}});
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.err.find("outlet.flows.enrich.geoip.asn_database: cannot open '" + dir / "asn.mmdb" + "'"),
            std::string::npos)
      << run.err;

  auto yaml = enrich_yaml(dir, port);
  const std::string from = "set: {connectivity: core, boundary: internal}";
  yaml.replace(yaml.find(from), from.size(), "set: {connectivity: '$1', boundary: inside}");
  write_file(dir / "bad.yaml", yaml);
  auto check = run_command({SLUICE_BINARY, "check", "-c", dir / "bad.yaml"}, 60s,
                           {{"SLUICE_ADMIN_LISTEN", "127.0.0.1:8080"}});
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_NE(check.err.find("outlet.flows.enrich.interface_classifiers[1].set.connectivity: $1 needs exactly one regex"),
            std::string::npos)
      << check.err;
  EXPECT_NE(check.err.find("outlet.flows.enrich.interface_classifiers[1].set.boundary: expected external, internal or "
                           "undefined, got 'inside'"),
            std::string::npos)
      << check.err;
}

}  // namespace
}  // namespace sluice::testing
