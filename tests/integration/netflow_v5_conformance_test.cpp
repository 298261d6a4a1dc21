// NetFlow v5 conformance: real softflowd exports from a scapy pcap, received by UdpSource, decoded by
// decode_netflow, and checked field by field against tshark's cflow dissector and the pcap's ground truth.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "core/bytes.hpp"
#include "decoders/netflow.hpp"
#include "decoders/netflow_v5.hpp"
#include "fixtures/capture.hpp"
#include "fixtures/pcap_writer.hpp"
#include "fixtures/process.hpp"
#include "sources/udp_source.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using testing::eventually;

using testing::CapturingProducer;
using Collect = testing::CollectingFlowOutput;

struct Export {
  std::vector<std::vector<std::byte>> envelopes;  // as produced onto the bus, in arrival order
  std::uint16_t port = 0;
  std::uint64_t records = 0;    // softflowd's own count of exported records
  std::uint64_t processed = 0;  // packets softflowd accounted into flows (after its sampling)
};

std::uint64_t stat_of(const std::string& text, const std::string& pattern) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(pattern))) return ~0ULL;
  return std::stoull(m[1].str());
}

// Runs softflowd over the pcap into a fresh UdpSource and returns what arrived once it has all come.
Export run_softflowd(const testing::TempDir& dir, const std::string& pcap, const std::vector<std::string>& extra) {
  MetricsRegistry metrics;
  CapturingProducer producer;
  UdpSourceConfig config;
  config.name = "conformance";
  config.listen = "127.0.0.1:0";
  config.workers = 1;  // one socket keeps arrival order, so records line up with tshark's frames
  config.topic = "flows";
  UdpSource source(config, producer, metrics);
  source.start();

  Export out;
  out.port = source.bound_port();
  // -r implies foreground and no control socket; at end of file softflowd flushes every flow and exits,
  // so no timeout tuning is needed. -a takes flow times from the pcap instead of the wall clock.
  std::vector<std::string> argv = {"/usr/sbin/softflowd", "-r", pcap, "-n", "127.0.0.1:" + std::to_string(out.port),
                                   "-v", "5", "-a", "-p", dir / "softflowd.pid"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  testing::Process softflowd(argv, dir.path());
  softflowd.close_stdin();
  const auto code = softflowd.wait(60s);
  EXPECT_EQ(code, std::optional<int>(0)) << softflowd.stderr_text();
  const std::string stats = softflowd.stdout_text();
  const std::uint64_t datagrams = stat_of(stats, R"(Flows exported: \d+ \(\d+ records\) in (\d+) packets \(0 failures\))");
  out.records = stat_of(stats, R"(Flows exported: \d+ \((\d+) records\))");
  out.processed = stat_of(stats, R"(Packets processed: (\d+))");
  EXPECT_NE(datagrams, ~0ULL) << stats;
  EXPECT_TRUE(eventually([&] { return producer.size() >= datagrams; }, 10s))
      << producer.size() << " of " << datagrams << " datagrams arrived";
  source.stop();
  EXPECT_EQ(producer.size(), datagrams);
  EXPECT_EQ(metrics.counter_total("inlet_udp_kernel_drops_total"), 0u);
  out.envelopes = producer.values();
  return out;
}

// One flow record as tshark's cflow dissector reads it, with its header's fields.
struct TsharkFlow {
  std::uint64_t unix_secs, unix_nsecs, sysuptime_ms, sampling_mode, sampling_interval;
  std::string src, dst, nexthop;
  std::uint64_t in_if, out_if, packets, octets, start_ms, end_ms, src_port, dst_port, tcp_flags, proto, tos,
      src_as, dst_as, src_mask, dst_mask;
};

// "12.345000000" (tshark's relative time) → milliseconds, exactly.
std::uint64_t relative_ms(const std::string& s) {
  const auto dot = s.find('.');
  std::uint64_t ms = std::stoull(s.substr(0, dot)) * 1000;
  if (dot != std::string::npos) ms += std::stoull((s.substr(dot + 1) + "000").substr(0, 3));
  return ms;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.emplace_back();
  return out;
}

std::vector<TsharkFlow> tshark_flows(const std::string& pcap, std::uint16_t port) {
  const std::vector<std::string> fields = {
      "cflow.count",     "cflow.unix_secs", "cflow.unix_nsecs", "cflow.sysuptime", "cflow.samplingmode",
      "cflow.samplerate", "cflow.srcaddr",  "cflow.dstaddr",    "cflow.nexthop",   "cflow.inputint",
      "cflow.outputint", "cflow.packets",   "cflow.octets",     "cflow.timestart", "cflow.timeend",
      "cflow.srcport",   "cflow.dstport",   "cflow.tcpflags",   "cflow.protocol",  "cflow.tos",
      "cflow.srcas",     "cflow.dstas",     "cflow.srcmask",    "cflow.dstmask"};
  std::vector<std::string> argv = {"tshark", "-r", pcap, "-d", "udp.port==" + std::to_string(port) + ",cflow",
                                   "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,"};
  for (const auto& f : fields) {
    argv.push_back("-e");
    argv.push_back(f);
  }
  const auto r = testing::run_command(argv, 120s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<TsharkFlow> flows;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    const auto cols = split(line, '|');
    EXPECT_EQ(cols.size(), fields.size()) << line;
    if (cols.size() != fields.size()) continue;
    const std::size_t count = std::stoul(cols[0]);
    std::vector<std::vector<std::string>> per(fields.size());
    for (std::size_t i = 6; i < fields.size(); ++i) {
      per[i] = split(cols[i], ',');
      EXPECT_EQ(per[i].size(), count) << fields[i] << " in " << line.substr(0, 200);
      if (per[i].size() != count) return flows;
    }
    auto num = [](const std::string& s) { return std::stoull(s, nullptr, 0); };  // tshark prints flags as 0x..
    for (std::size_t k = 0; k < count; ++k) {
      flows.push_back(TsharkFlow{
          num(cols[1]), num(cols[2]), relative_ms(cols[3]), num(cols[4]), num(cols[5]), per[6][k], per[7][k],
          per[8][k], num(per[9][k]), num(per[10][k]), num(per[11][k]), num(per[12][k]), relative_ms(per[13][k]),
          relative_ms(per[14][k]), num(per[15][k]), num(per[16][k]), num(per[17][k]), num(per[18][k]),
          num(per[19][k]), num(per[20][k]), num(per[21][k]), num(per[22][k]), num(per[23][k])});
    }
  }
  return flows;
}

// Absolute unix seconds of a switched time, from tshark's header and record fields.
std::uint32_t tshark_abs_seconds(const TsharkFlow& t, std::uint64_t switched_ms) {
  const auto export_ms = static_cast<std::int64_t>(t.unix_secs * 1000 + t.unix_nsecs / 1'000'000);
  return static_cast<std::uint32_t>((export_ms - static_cast<std::int64_t>(t.sysuptime_ms) +
                                     static_cast<std::int64_t>(switched_ms)) / 1000);
}

struct Decoded {
  std::vector<Envelope> envelopes;
  Collect out;
};

// Every envelope must decode; the flows come out in datagram order.
void decode_all(const Export& exp, Decoded& d) {
  MetricsRegistry metrics;
  TemplateCache cache(metrics);
  FlowRecord scratch;
  for (const auto& value : exp.envelopes) {
    Envelope env;
    ASSERT_EQ(decode_envelope(value, env), EnvelopeError::none);
    EXPECT_EQ(env.kind, SourceKind::netflow);
    d.envelopes.push_back(env);
    ASSERT_EQ(decode_netflow(env, cache, scratch, d.out), DecodeStatus::ok);
  }
}

// Field-by-field equality of our decoded flows and tshark's reading of the same datagrams.
void expect_same_as_tshark(const std::vector<FlowRecord>& ours, const std::vector<TsharkFlow>& theirs) {
  ASSERT_EQ(ours.size(), theirs.size());
  std::uint64_t our_bytes = 0, our_packets = 0, their_bytes = 0, their_packets = 0;
  for (std::size_t i = 0; i < ours.size(); ++i) {
    const FlowRecord& f = ours[i];
    const TsharkFlow& t = theirs[i];
    SCOPED_TRACE("flow " + std::to_string(i) + " " + t.src + " -> " + t.dst);
    EXPECT_EQ(ip6_to_string(f.src_addr), t.src);
    EXPECT_EQ(ip6_to_string(f.dst_addr), t.dst);
    EXPECT_EQ(ip6_to_string(f.next_hop), t.nexthop);
    EXPECT_EQ(f.src_port, t.src_port);
    EXPECT_EQ(f.dst_port, t.dst_port);
    EXPECT_EQ(f.proto, t.proto);
    EXPECT_EQ(f.bytes, t.octets);
    EXPECT_EQ(f.packets, t.packets);
    EXPECT_EQ(f.in_if, t.in_if);
    EXPECT_EQ(f.out_if, t.out_if);
    EXPECT_EQ(f.time_flow_start, tshark_abs_seconds(t, t.start_ms));
    EXPECT_EQ(f.time_flow_end, tshark_abs_seconds(t, t.end_ms));
    EXPECT_EQ(f.tcp_flags, t.tcp_flags);
    EXPECT_EQ(f.ip_tos, t.tos);
    EXPECT_EQ(f.src_as, t.src_as);
    EXPECT_EQ(f.dst_as, t.dst_as);
    EXPECT_EQ(f.src_net_mask, t.src_mask);
    EXPECT_EQ(f.dst_net_mask, t.dst_mask);
    EXPECT_EQ(f.sampling_rate, t.sampling_interval == 0 ? 1 : t.sampling_interval);
    EXPECT_EQ(f.etype, 0x0800u);
    EXPECT_EQ(ip6_to_string(f.exporter_address), "127.0.0.1");
    our_bytes += f.bytes;
    our_packets += f.packets;
    their_bytes += t.octets;
    their_packets += t.packets;
  }
  EXPECT_EQ(our_bytes, their_bytes);
  EXPECT_EQ(our_packets, their_packets);
}

class NetflowV5Conformance : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<testing::TempDir>("sluice-nf5");
    pcap_ = *dir_ / "traffic.pcap";
    const auto r = testing::run_command({"/usr/bin/python3", std::string(SLUICE_SOURCE_DIR) + "/tests/tools/gen_traffic.py",
                                         pcap_, "--flows", "2000", "--seed", "20240601"},
                                        120s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    truth_ = nlohmann::json::parse(r.out);
  }
  static void TearDownTestSuite() { dir_.reset(); }
  static std::unique_ptr<testing::TempDir> dir_;
  static std::string pcap_;
  static nlohmann::json truth_;
};
std::unique_ptr<testing::TempDir> NetflowV5Conformance::dir_;
std::string NetflowV5Conformance::pcap_;
nlohmann::json NetflowV5Conformance::truth_;

TEST_F(NetflowV5Conformance, UnsampledExportMatchesTsharkAndGroundTruth) {
  const Export exp = run_softflowd(*dir_, pcap_, {});
  Decoded d;
  decode_all(exp, d);
  const auto& flows = d.out.flows;
  ASSERT_EQ(flows.size(), exp.records);
  ASSERT_EQ(flows.size(), truth_["flows"].get<std::size_t>());

  const std::string nf_pcap = *dir_ / "netflow-unsampled.pcap";
  testing::write_udp_pcap(nf_pcap, d.envelopes, exp.port);
  const auto theirs = tshark_flows(nf_pcap, exp.port);
  expect_same_as_tshark(flows, theirs);

  // Ground truth: softflowd counts IP bytes (total length), so every 5-tuple's packets and bytes match
  // the pcap exactly; ICMP type/code travel in the destination port as type*256+code.
  using Key = std::tuple<std::string, std::string, std::uint32_t, std::uint16_t, std::uint16_t>;
  std::map<Key, const nlohmann::json*> truth;
  for (const auto& t : truth_["by_5tuple"]) {
    truth[{t["src"], t["dst"], t["proto"], t["sport"], t["dport"]}] = &t;
  }
  std::uint64_t bytes = 0, packets = 0;
  std::map<Key, int> seen;
  for (const FlowRecord& f : flows) {
    const Key key{ip6_to_string(f.src_addr), ip6_to_string(f.dst_addr), f.proto, f.src_port, f.dst_port};
    SCOPED_TRACE(std::get<0>(key) + " -> " + std::get<1>(key) + " proto " + std::to_string(f.proto) + " ports " +
                 std::to_string(f.src_port) + "/" + std::to_string(f.dst_port));
    const auto it = truth.find(key);
    ASSERT_NE(it, truth.end());
    EXPECT_EQ(++seen[key], 1);
    const nlohmann::json& t = *it->second;
    EXPECT_EQ(f.packets, t["packets"].get<std::uint64_t>());
    EXPECT_EQ(f.bytes, t["bytes"].get<std::uint64_t>());
    EXPECT_EQ(f.ip_tos, t["tos"].get<std::uint32_t>());
    EXPECT_EQ(f.sampling_rate, 1u);
    // softflowd keeps milliseconds, so allow the few that straddle a second boundary by a millisecond.
    const double first = t["first"].get<double>(), last = t["last"].get<double>();
    EXPECT_GE(f.time_flow_start, static_cast<std::uint32_t>(std::floor(first - 0.002)));
    EXPECT_LE(f.time_flow_start, static_cast<std::uint32_t>(std::floor(first + 0.002)));
    EXPECT_GE(f.time_flow_end, static_cast<std::uint32_t>(std::floor(last - 0.002)));
    EXPECT_LE(f.time_flow_end, static_cast<std::uint32_t>(std::floor(last + 0.002)));
    bytes += f.bytes;
    packets += f.packets;
  }
  EXPECT_EQ(seen.size(), truth.size());
  EXPECT_EQ(bytes, truth_["bytes"].get<std::uint64_t>());
  EXPECT_EQ(packets, truth_["packets"].get<std::uint64_t>());
  EXPECT_EQ(packets, exp.processed);
}

TEST_F(NetflowV5Conformance, SampledExportKeepsRawCountsAndTheRate) {
  const Export exp = run_softflowd(*dir_, pcap_, {"-s", "4"});
  Decoded d;
  decode_all(exp, d);
  const auto& flows = d.out.flows;
  ASSERT_EQ(flows.size(), exp.records);
  ASSERT_GT(flows.size(), 0u);

  const std::string nf_pcap = *dir_ / "netflow-sampled.pcap";
  testing::write_udp_pcap(nf_pcap, d.envelopes, exp.port);
  const auto theirs = tshark_flows(nf_pcap, exp.port);
  expect_same_as_tshark(flows, theirs);
  for (const TsharkFlow& t : theirs) {
    EXPECT_EQ(t.sampling_mode, 1u);  // softflowd marks deterministic (1 in N) sampling
    EXPECT_EQ(t.sampling_interval, 4u);
  }
  std::uint64_t packets = 0;
  for (const FlowRecord& f : flows) {
    EXPECT_EQ(f.sampling_rate, 4u);
    packets += f.packets;
  }
  // Packets stay as exported (what softflowd sampled), not multiplied by the rate.
  EXPECT_EQ(packets, exp.processed);
  EXPECT_LT(packets, truth_["packets"].get<std::uint64_t>());
}

}  // namespace
}  // namespace sluice
