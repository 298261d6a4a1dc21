// Exporter and interface names end to end: `sluice run` with the shipped quickstart config polls a
// real snmpd for the exporter sending NetFlow, and its flows land with ExporterName, In/OutIfName,
// In/OutIfDescription and In/OutIfSpeed; with the agent stopped, flows keep landing, named from the cache.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "fixtures/process.hpp"
#include "fixtures/sluice_instance.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

// snmpd on 127.0.0.1 whose sysName and interface table are known: V5Stream flows come in on ifIndex
// 1-4 and leave on 10-12.
class NamedAgent {
 public:
  NamedAgent() : port_(free_udp_port()) {
    std::string conf = fmt::format("[snmp] persistentDir {}\nrocommunity public 127.0.0.0/8\nsysName edge-e2e-1\n",
                                   dir_ / "persist");
    for (int i : {1, 2, 3, 4, 10, 11, 12}) {
      conf += fmt::format("override 1.3.6.1.2.1.31.1.1.1.1.{} octet_str \"Gi0/0/{}\"\n", i, i);
      conf += fmt::format("override 1.3.6.1.2.1.31.1.1.1.18.{} octet_str \"{}: link {}\"\n", i,
                          i < 10 ? "transit" : "core", i);
      conf += fmt::format("override 1.3.6.1.2.1.31.1.1.1.15.{} unsigned {}\n", i, i * 1000);
    }
    write_file(dir_ / "snmpd.conf", conf);
    process_ = std::make_unique<Process>(
        std::vector<std::string>{"snmpd", "-f", "-Lo", "-C", "-c", dir_ / "snmpd.conf",
                                 "udp:127.0.0.1:" + std::to_string(port_)},
        dir_.path(), std::map<std::string, std::string>{{"MIBS", ""}, {"MIBDIRS", dir_ / "no-mibs"}});
    if (!process_->wait_for_stdout_line("NET-SNMP version", 20s)) {
      throw std::runtime_error("snmpd did not start: " + process_->stdout_text() + process_->stderr_text());
    }
  }
  void stop() { process_->stop(5s); }
  int port() const { return port_; }

 private:
  TempDir dir_{"sluice-snmpd-e2e"};
  int port_;
  std::unique_ptr<Process> process_;
};

// V5Stream flow i has source address 10.0.0.0 + i: the flows [first, last) of one send.
std::string src_between(std::uint32_t first, std::uint32_t last) {
  const std::string v4 = "IPv4StringToNum(replaceOne(IPv6NumToString(SrcAddr), '::ffff:', ''))";
  return fmt::format("{} >= {} AND {} < {}", v4, 0x0a000000u + first, v4, 0x0a000000u + last);
}

TEST(SnmpEnrichE2E, FlowsLandWithNamesFromSnmpAndKeepThemWhenTheAgentStops) {
  NamedAgent agent;
  TempDir dir("sluice-snmp-e2e");
  const int port = free_udp_port();
  SluiceInstance sluice("run", read_file(std::string(SLUICE_SOURCE_DIR) + "/config/quickstart.yaml"), dir,
                        {{"SLUICE_DATA_DIR", dir / "data"},
                         {"SLUICE_NETFLOW_LISTEN", "127.0.0.1:" + std::to_string(port)},
                         {"SLUICE_SFLOW_LISTEN", "127.0.0.1:" + std::to_string(free_udp_port())},
                         {"SLUICE_SNMP_PORT", std::to_string(agent.port())}});
  sluice.start();
  V5Stream stream;
  // The first flows ask for the names; they land at once, without names, counted.
  send_v5_stream(port, stream, 300, 0);
  ASSERT_TRUE(eventually([&] { return sluice.query_u64("SELECT count() FROM sluice.flows") == 300; }, 30s));
  EXPECT_GT(sluice.metric("sluice_enrich_unknown_exporter_total") + sluice.metric("sluice_enrich_unknown_interface_total"), 0);
  // Once the answers are cached (every interface of the stream is asked for), new flows carry them.
  std::uint32_t sent = 300;
  ASSERT_TRUE(eventually(
      [&] {
        V5Stream next = stream;
        next.first_flow = sent;
        send_v5_stream(port, next, 30, 0);
        sent += 30;
        return sluice.query_u64("SELECT count() FROM sluice.flows WHERE InIfName != '' AND OutIfName != '' AND "
                                "ExporterName != ''") >= 30;
      },
      30s));
  ASSERT_TRUE(eventually([&] { return sluice.query_u64("SELECT count() FROM sluice.flows") == sent; }, 30s));
  V5Stream known = stream;
  known.first_flow = 100'000;
  send_v5_stream(port, known, 600, 0);
  ASSERT_TRUE(eventually([&] { return sluice.query_u64("SELECT count() FROM sluice.flows") == sent + 600; }, 30s));
  // Flow i comes in on ifIndex 1 + i % 4 and leaves on 10 + i % 3 (see V5Stream): 50 of each pair.
  EXPECT_EQ(sluice.query("SELECT ExporterName, InIfName, InIfDescription, InIfSpeed, OutIfName, OutIfDescription, "
                         "OutIfSpeed, count() FROM sluice.flows WHERE " + src_between(100'000, 100'600) +
                         " GROUP BY ExporterName, InIfName, InIfDescription, InIfSpeed, OutIfName, OutIfDescription, "
                         "OutIfSpeed ORDER BY InIfName, OutIfName"),
            "edge-e2e-1\tGi0/0/1\ttransit: link 1\t1000\tGi0/0/10\tcore: link 10\t10000\t50\n"
            "edge-e2e-1\tGi0/0/1\ttransit: link 1\t1000\tGi0/0/11\tcore: link 11\t11000\t50\n"
            "edge-e2e-1\tGi0/0/1\ttransit: link 1\t1000\tGi0/0/12\tcore: link 12\t12000\t50\n"
            "edge-e2e-1\tGi0/0/2\ttransit: link 2\t2000\tGi0/0/10\tcore: link 10\t10000\t50\n"
            "edge-e2e-1\tGi0/0/2\ttransit: link 2\t2000\tGi0/0/11\tcore: link 11\t11000\t50\n"
            "edge-e2e-1\tGi0/0/2\ttransit: link 2\t2000\tGi0/0/12\tcore: link 12\t12000\t50\n"
            "edge-e2e-1\tGi0/0/3\ttransit: link 3\t3000\tGi0/0/10\tcore: link 10\t10000\t50\n"
            "edge-e2e-1\tGi0/0/3\ttransit: link 3\t3000\tGi0/0/11\tcore: link 11\t11000\t50\n"
            "edge-e2e-1\tGi0/0/3\ttransit: link 3\t3000\tGi0/0/12\tcore: link 12\t12000\t50\n"
            "edge-e2e-1\tGi0/0/4\ttransit: link 4\t4000\tGi0/0/10\tcore: link 10\t10000\t50\n"
            "edge-e2e-1\tGi0/0/4\ttransit: link 4\t4000\tGi0/0/11\tcore: link 11\t11000\t50\n"
            "edge-e2e-1\tGi0/0/4\ttransit: link 4\t4000\tGi0/0/12\tcore: link 12\t12000\t50\n");
  // The agent stops: flows still land, named from the cache.
  agent.stop();
  V5Stream after = stream;
  after.first_flow = 200'000;
  send_v5_stream(port, after, 300, 0);
  ASSERT_TRUE(eventually([&] { return sluice.query_u64("SELECT count() FROM sluice.flows") == sent + 900; }, 30s));
  EXPECT_EQ(sluice.query_u64("SELECT count() FROM sluice.flows WHERE ExporterName = 'edge-e2e-1' AND InIfName != '' "
                             "AND OutIfSpeed > 0 AND " + src_between(200'000, 200'300)),
            300u);
  EXPECT_EQ(sluice.stop(), 0);
}

}  // namespace
}  // namespace sluice::testing
