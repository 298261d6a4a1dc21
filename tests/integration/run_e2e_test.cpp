// End to end through the real binary in all-in-one mode: UDP → memory bus → decode → chDB.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>
#include <thread>

#include "fixtures/exporters.hpp"
#include "fixtures/process.hpp"
#include "fixtures/sluice_instance.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

std::map<std::string, std::string> quickstart_env(const TempDir& dir, int netflow_port) {
  return {{"SLUICE_DATA_DIR", dir / "data"},
          {"SLUICE_NETFLOW_LISTEN", "127.0.0.1:" + std::to_string(netflow_port)},
          {"SLUICE_SFLOW_LISTEN", "127.0.0.1:" + std::to_string(free_udp_port())}};
}

std::string quickstart_yaml() { return read_file(std::string(SLUICE_SOURCE_DIR) + "/config/quickstart.yaml"); }

// A quickstart-shaped config whose batches wait long, so that rows sit in the pipeline at shutdown.
std::string slow_batches_yaml() {
  auto y = quickstart_yaml();
  const auto at = y.find("max_delay: 1s");
  y.replace(at, std::string("max_delay: 1s").size(), "max_delay: 60s");
  return y;
}

TEST(RunE2E, SoftflowdV5IntoQuickstartMatchesTsharkExactly) {
  TempDir dir("sluice-e2e-run");
  const int port = free_udp_port();
  SluiceInstance sluice("run", quickstart_yaml(), dir, quickstart_env(dir, port));
  sluice.start();

  const auto pcap = generate_traffic_pcap(dir, 2000, 7);
  const auto truth = softflowd_export(dir, pcap, port, 5);
  ASSERT_GT(truth.flows, 1000u);
  ASSERT_GT(truth.datagrams, 30u);

  const bool all = eventually([&] { return sluice.query_u64("SELECT count() FROM sluice.flows") >= truth.flows; }, 60s);
  ASSERT_TRUE(all) << sluice.log();
  EXPECT_EQ(sluice.query("SELECT count(), sum(Bytes), sum(Packets) FROM sluice.flows"),
            std::to_string(truth.flows) + "\t" + std::to_string(truth.bytes) + "\t" + std::to_string(truth.packets) + "\n");
  EXPECT_EQ(sluice.metric("sluice_flows_decoded_total"), static_cast<double>(truth.flows));
  EXPECT_EQ(sluice.metric("sluice_flow_packets_decoded_total"), static_cast<double>(truth.datagrams));
  EXPECT_EQ(sluice.metric("sluice_decode_errors_total"), 0.0);
  // Every exported flow was IPv4 from this exporter and carries a sampling rate.
  EXPECT_EQ(sluice.query("SELECT uniqExact(ExporterAddress), min(SamplingRate), any(EType) FROM sluice.flows"),
            "1\t1\t2048\n");
  EXPECT_EQ(sluice.stop(), 0) << sluice.log();
}

TEST(RunE2E, SigtermUnderLoadDrainsEveryAcceptedFlowAndExitsZero) {
  TempDir dir("sluice-e2e-drain");
  const int port = free_udp_port();
  auto env = quickstart_env(dir, port);
  {
    SluiceInstance sluice("run", slow_batches_yaml(), dir, env);
    sluice.start();
    V5Stream stream;
    constexpr std::uint32_t kFlows = 150'000;
    send_v5_stream(port, stream, kFlows, 20'000);
    // Wait until the inlet has every datagram, then stop while the rows are still in open batches.
    ASSERT_TRUE(eventually([&] { return sluice.metric("sluice_flows_decoded_total") >= kFlows; }, 60s)) << sluice.log();
    EXPECT_EQ(sluice.query_u64("SELECT count() FROM sluice.flows"), 0u) << "batches should still be open";
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(sluice.stop(60s), 0) << sluice.log();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s);
  }
  SluiceInstance again("run", quickstart_yaml(), dir, env, "again");
  again.start();
  EXPECT_EQ(again.query("SELECT count(), uniqExact(SrcAddr), sum(Bytes), sum(Packets) FROM sluice.flows"),
            "150000\t150000\t" + std::to_string(V5Stream::total_bytes(0, 150'000)) + "\t" +
                std::to_string(V5Stream::total_packets(0, 150'000)) + "\n");
  EXPECT_EQ(again.stop(), 0);
}

TEST(RunE2E, RandomDatagramsAreCountedAsDecodeErrorsAndValidFlowsStillLand) {
  TempDir dir("sluice-e2e-garbage");
  const int port = free_udp_port();
  SluiceInstance sluice("run", quickstart_yaml(), dir, quickstart_env(dir, port));
  sluice.start();

  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::mt19937 rng(20261121);
  constexpr int kGarbage = 2000;
  for (int i = 0; i < kGarbage; ++i) {
    std::string junk(24 + rng() % 1477, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    if (junk.size() >= 2 && junk[0] == 0 && (junk[1] == 5 || junk[1] == 9 || junk[1] == 10)) junk[0] = 1;
    sendto(fd, junk.data(), junk.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    if (i % 200 == 0) std::this_thread::sleep_for(1ms);
  }
  // Truncated and lying v5 headers, then real flows.
  V5Stream stream;
  auto lying = stream.packet(0, 30, 1'700'000'000);
  lying.resize(24 + 48 * 10);
  sendto(fd, lying.data(), lying.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  close(fd);
  send_v5_stream(port, stream, 3000, 2000);

  ASSERT_TRUE(eventually([&] { return sluice.query_u64("SELECT count() FROM sluice.flows") >= 3000; }, 60s)) << sluice.log();
  EXPECT_EQ(sluice.query_u64("SELECT count() FROM sluice.flows"), 3000u);
  EXPECT_EQ(sluice.metric("sluice_decode_errors_total"), kGarbage + 1.0);
  EXPECT_EQ(sluice.metric("sluice_decode_errors_total", "reason=\"truncated\""), 1.0);
  EXPECT_TRUE(sluice.process().running());
  EXPECT_EQ(sluice.stop(), 0);
}

TEST(RunE2E, BrokenConfigurationsExitOneAndNameTheKeyPath) {
  TempDir dir("sluice-e2e-config");
  write_file(dir / "bad.yaml", "outlet:\n  clickhouse:\n    url: 127.0.0.1:8123\n  batch:\n    max_rows: -5\n");
  auto check = run_command({SLUICE_BINARY, "check", "-c", dir / "bad.yaml"});
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_NE(check.err.find("outlet.clickhouse.url: expected the ClickHouse HTTP interface URL"), std::string::npos) << check.err;
  EXPECT_NE(check.err.find("outlet.batch.max_rows: expected an integer between 1 and"), std::string::npos) << check.err;

  auto run = run_command({SLUICE_BINARY, "run", "-c", dir / "bad.yaml"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("outlet.clickhouse.url"), std::string::npos);

  write_file(dir / "yaml.yaml", "inlet: [unclosed\n");
  auto yaml = run_command({SLUICE_BINARY, "check", "-c", dir / "yaml.yaml"});
  EXPECT_EQ(yaml.exit_code, 1);
  EXPECT_NE(yaml.err.find("not valid YAML at line"), std::string::npos);

  auto missing = run_command({SLUICE_BINARY, "check", "-c", dir / "nope.yaml"});
  EXPECT_EQ(missing.exit_code, 1);

  auto good = run_command({SLUICE_BINARY, "check", "-c", std::string(SLUICE_SOURCE_DIR) + "/config/quickstart.yaml"});
  EXPECT_EQ(good.exit_code, 0) << good.err;
}

}  // namespace
}  // namespace sluice::testing
