// NetFlow v9 / IPFIX conformance: softflowd -v 9 and -v 10 exports of scapy pcaps (IPv4 with VLANs,
// IPv6), received by UdpSource, decoded by decode_netflow with a TemplateCache, and checked flow by
// flow against tshark's reading of the same datagrams, plus totals against the pcap's ground truth.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "decoders/netflow.hpp"
#include "fixtures/capture.hpp"
#include "fixtures/pcap_writer.hpp"
#include "fixtures/process.hpp"
#include "sources/udp_source.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using Json = nlohmann::ordered_json;  // sets and records must keep their order

using testing::CapturingProducer;
using Collect = testing::CollectingFlowOutput;

std::uint64_t stat_of(const std::string& text, const std::string& pattern) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(pattern))) return ~0ULL;
  return std::stoull(m[1].str());
}

struct Export {
  std::vector<std::vector<std::byte>> envelopes;
  std::uint16_t port = 0;
  std::uint64_t records = 0;
};

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
  std::vector<std::string> argv = {"/usr/sbin/softflowd", "-r", pcap, "-n", "127.0.0.1:" + std::to_string(out.port),
                                   "-a", "-p", dir / "softflowd.pid"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  testing::Process softflowd(argv, dir.path());
  softflowd.close_stdin();
  EXPECT_EQ(softflowd.wait(60s), std::optional<int>(0)) << softflowd.stderr_text();
  const std::string stats = softflowd.stdout_text();
  const std::uint64_t datagrams = stat_of(stats, R"(Flows exported: \d+ \(\d+ records\) in (\d+) packets \(0 failures\))");
  out.records = stat_of(stats, R"(Flows exported: \d+ \((\d+) records\))");
  EXPECT_NE(datagrams, ~0ULL) << stats;
  EXPECT_TRUE(eventually([&] { return producer.size() >= datagrams; }, 10s))
      << producer.size() << " of " << datagrams << " datagrams arrived";
  source.stop();
  EXPECT_EQ(producer.size(), datagrams);
  out.envelopes = producer.values();
  return out;
}

// "Nov 14, 2023 22:13:20.129000000 UTC" → unix milliseconds.
std::int64_t tshark_date_ms(const std::string& s) {
  std::tm tm{};
  const char* rest = strptime(s.c_str(), "%b %d, %Y %H:%M:%S", &tm);
  EXPECT_NE(rest, nullptr) << s;
  if (!rest) return 0;
  std::int64_t ms = static_cast<std::int64_t>(timegm(&tm)) * 1000;
  if (*rest == '.') ms += std::stoll((std::string(rest + 1) + "000").substr(0, 3));
  return ms;
}

// "12.345000000" (seconds, as tshark prints uptimes) → milliseconds, exactly.
std::int64_t relative_ms(const std::string& s) {
  const auto dot = s.find('.');
  std::int64_t ms = std::stoll(s.substr(0, dot)) * 1000;
  if (dot != std::string::npos) ms += std::stoll((s.substr(dot + 1) + "000").substr(0, 3));
  return ms;
}

// A flow as tshark decoded it, with what its datagram and the exporter's options told.
struct TsharkFlow {
  Json fields;
  std::int64_t start_ms = 0, end_ms = 0;  // absolute unix milliseconds
  std::uint64_t sampling_rate = 0;        // from the latest options data, 0 before any
};

std::uint64_t num(const Json& flow, const char* key) {
  if (!flow.contains(key)) return 0;
  return std::stoull(flow[key].get<std::string>(), nullptr, 0);  // tshark prints flags and ToS as 0x..
}

std::vector<TsharkFlow> tshark_flows(const std::string& pcap, std::uint16_t port, int version) {
  const auto r = testing::run_command(
      {"tshark", "-r", pcap, "-d", "udp.port==" + std::to_string(port) + ",cflow", "-T", "json", "-J", "cflow"}, 120s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const Json frames = Json::parse(r.out);
  std::vector<TsharkFlow> flows;
  std::uint64_t rate = 0;
  std::int64_t init_ms = 0;
  for (const Json& frame : frames) {
    const Json& c = frame["_source"]["layers"]["cflow"];
    std::int64_t export_ms = 0, uptime_ms = 0;
    if (version == 9) {
      export_ms = static_cast<std::int64_t>(num(c["cflow.timestamp_tree"], "cflow.unix_secs")) * 1000;
      uptime_ms = relative_ms(c["cflow.sysuptime"].get<std::string>());
    }
    for (auto set = c.begin(); set != c.end(); ++set) {
      if (!set->is_object() || set.key().find("flows)") == std::string::npos) continue;
      for (auto rec = set->begin(); rec != set->end(); ++rec) {
        if (rec.key().rfind("Flow ", 0) != 0) continue;
        const Json& f = *rec;
        if (f.contains("cflow.sampling_interval")) rate = num(f, "cflow.sampling_interval");
        if (f.contains("cflow.sampling_packet_interval")) {
          rate = (num(f, "cflow.sampling_packet_interval") + num(f, "cflow.sampling_packet_space")) /
                 num(f, "cflow.sampling_packet_interval");
        }
        if (f.contains("cflow.sys_init_time")) init_ms = tshark_date_ms(f["cflow.sys_init_time"].get<std::string>());
        if (!f.contains("cflow.srcaddr") && !f.contains("cflow.srcaddrv6")) continue;
        TsharkFlow t{f, 0, 0, rate};
        const Json& times = f["cflow.timedelta_tree"];
        // tshark shows an uptime of exactly 0 as the absolute date 1970-01-01; it is still uptime 0.
        const auto uptime = [&](const char* rel, const char* abs) -> std::int64_t {
          if (times.contains(rel)) return relative_ms(times[rel].get<std::string>());
          EXPECT_EQ(tshark_date_ms(times[abs].get<std::string>()), 0) << f.dump();
          return 0;
        };
        const std::int64_t start = uptime("cflow.timestart", "cflow.abstimestart");
        const std::int64_t end = uptime("cflow.timeend", "cflow.abstimeend");
        if (version == 9) {
          t.start_ms = export_ms - uptime_ms + start;
          t.end_ms = export_ms - uptime_ms + end;
        } else {
          t.start_ms = init_ms + start;
          t.end_ms = init_ms + end;
        }
        flows.push_back(std::move(t));
      }
    }
  }
  return flows;
}

struct Case {
  int version;
  bool ipv6;
  int sampling;  // softflowd -s; 0: none
};

class NetflowV9IpfixConformance : public ::testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<testing::TempDir>("sluice-nf9");
    for (bool ipv6 : {false, true}) {
      const std::string pcap = *dir_ / (ipv6 ? "traffic6.pcap" : "traffic4.pcap");
      // IPv4 frames are 802.1Q-tagged; IPv6 ones are not, so both layouts are exported.
      const auto r = testing::run_command({"/usr/bin/python3",
                                           std::string(SLUICE_SOURCE_DIR) + "/tests/tools/gen_traffic.py", pcap,
                                           "--flows", "2500", "--seed", ipv6 ? "20240606" : "20240604",
                                           ipv6 ? "--ipv6" : "--vlan"},
                                          180s);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      truth_[ipv6] = nlohmann::json::parse(r.out);
    }
  }
  static void TearDownTestSuite() { dir_.reset(); }
  static std::unique_ptr<testing::TempDir> dir_;
  static nlohmann::json truth_[2];
};
std::unique_ptr<testing::TempDir> NetflowV9IpfixConformance::dir_;
nlohmann::json NetflowV9IpfixConformance::truth_[2];

TEST_P(NetflowV9IpfixConformance, EveryFlowMatchesTshark) {
  const Case c = GetParam();
  const std::string pcap = *dir_ / (c.ipv6 ? "traffic6.pcap" : "traffic4.pcap");
  const nlohmann::json& truth = truth_[c.ipv6];
  std::vector<std::string> extra = {"-v", std::to_string(c.version), "-T", c.ipv6 ? "full" : "vlan"};
  if (c.ipv6) extra.push_back("-6");
  if (c.sampling) extra.insert(extra.end(), {"-s", std::to_string(c.sampling)});
  const Export exp = run_softflowd(*dir_, pcap, extra);

  MetricsRegistry metrics;
  TemplateCache cache(metrics);
  FlowRecord scratch;
  Collect out;
  std::vector<Envelope> envelopes;
  for (const auto& value : exp.envelopes) {
    Envelope env;
    ASSERT_EQ(decode_envelope(value, env), EnvelopeError::none);
    envelopes.push_back(env);
    ASSERT_EQ(decode_netflow(env, cache, scratch, out), DecodeStatus::ok);
  }
  EXPECT_EQ(cache.pending_sets(), 0u);
  const auto& flows = out.flows;
  ASSERT_EQ(flows.size(), exp.records);
  if (!c.sampling) {
    ASSERT_EQ(flows.size(), truth["flows"].get<std::size_t>());
  }

  const std::string nf_pcap = *dir_ / ("export-v" + std::to_string(c.version) + (c.ipv6 ? "-6" : "-4") + ".pcap");
  // softflowd's v9 header count leaves out its options records, and tshark stops dissecting a
  // datagram once that many records were seen, dropping the datagram's last flowset. The count is only
  // informational (sluice ignores it), so tshark gets the datagrams with the count at its maximum.
  std::vector<std::vector<std::byte>> for_tshark;
  std::vector<Envelope> tshark_envelopes = envelopes;
  for (auto& env : tshark_envelopes) {
    for_tshark.emplace_back(env.payload.begin(), env.payload.end());
    if (c.version == 9) for_tshark.back()[2] = for_tshark.back()[3] = std::byte{0xff};
  }
  for (std::size_t i = 0; i < tshark_envelopes.size(); ++i) tshark_envelopes[i].payload = for_tshark[i];
  testing::write_udp_pcap(nf_pcap, tshark_envelopes, exp.port);
  const auto theirs = tshark_flows(nf_pcap, exp.port, c.version);
  ASSERT_EQ(flows.size(), theirs.size());

  std::uint64_t bytes = 0, packets = 0, their_bytes = 0, their_packets = 0, vlans = 0;
  for (std::size_t i = 0; i < flows.size(); ++i) {
    const FlowRecord& f = flows[i];
    const Json& t = theirs[i].fields;
    SCOPED_TRACE("flow " + std::to_string(i) + ": " + t.dump());
    const char* src = c.ipv6 ? "cflow.srcaddrv6" : "cflow.srcaddr";
    const char* dst = c.ipv6 ? "cflow.dstaddrv6" : "cflow.dstaddr";
    EXPECT_EQ(ip6_to_string(f.src_addr), t[src].get<std::string>());
    EXPECT_EQ(ip6_to_string(f.dst_addr), t[dst].get<std::string>());
    EXPECT_EQ(f.src_port, num(t, "cflow.srcport"));
    EXPECT_EQ(f.dst_port, num(t, "cflow.dstport"));
    EXPECT_EQ(f.proto, num(t, "cflow.protocol"));
    EXPECT_EQ(f.bytes, num(t, "cflow.octets"));
    EXPECT_EQ(f.packets, num(t, "cflow.packets"));
    EXPECT_EQ(f.in_if, num(t, "cflow.inputint"));
    EXPECT_EQ(f.out_if, num(t, "cflow.outputint"));
    EXPECT_EQ(f.tcp_flags, num(t, "cflow.tcpflags"));
    EXPECT_EQ(f.ip_tos, num(t, "cflow.tos"));
    EXPECT_EQ(f.flow_direction, num(t, "cflow.direction") == 0 ? FlowDirection::ingress : FlowDirection::egress);
    EXPECT_EQ(f.etype, num(t, "cflow.ip_version") == 6 ? 0x86ddu : 0x0800u);
    if (t.contains("cflow.icmp_type_code_ipv4")) {
      EXPECT_EQ(f.icmp_type * 256u + f.icmp_code, num(t, "cflow.icmp_type_code_ipv4"));
    }
    if (t.contains("cflow.icmp_ipv6_type")) {
      EXPECT_EQ(f.icmp_type, num(t, "cflow.icmp_ipv6_type"));
      EXPECT_EQ(f.icmp_code, num(t, "cflow.icmp_ipv6_code"));
    }
    EXPECT_EQ(f.src_vlan, num(t, "cflow.vlanid"));
    EXPECT_EQ(f.dst_vlan, num(t, "cflow.post_vlanid"));
    EXPECT_EQ(f.time_flow_start, static_cast<std::uint32_t>(theirs[i].start_ms / 1000));
    EXPECT_EQ(f.time_flow_end, static_cast<std::uint32_t>(theirs[i].end_ms / 1000));
    EXPECT_EQ(f.sampling_rate, theirs[i].sampling_rate);
    EXPECT_EQ(f.sampling_rate, c.sampling ? std::uint64_t(c.sampling) : 1u);
    EXPECT_EQ(ip6_to_string(f.exporter_address), "127.0.0.1");
    // The generator tags IPv4 frames with VLAN 100 + source port % 50.
    if (!c.ipv6) {
      EXPECT_EQ(f.src_vlan, 100 + f.src_port % 50);
    }
    vlans += f.src_vlan != 0;
    bytes += f.bytes;
    packets += f.packets;
    their_bytes += num(t, "cflow.octets");
    their_packets += num(t, "cflow.packets");
  }
  EXPECT_EQ(bytes, their_bytes);
  EXPECT_EQ(packets, their_packets);
  EXPECT_EQ(vlans, c.ipv6 ? 0u : flows.size());
  if (!c.sampling) {
    EXPECT_EQ(bytes, truth["bytes"].get<std::uint64_t>());
    EXPECT_EQ(packets, truth["packets"].get<std::uint64_t>());
  } else {
    EXPECT_LT(packets, truth["packets"].get<std::uint64_t>());
  }
}

INSTANTIATE_TEST_SUITE_P(Softflowd, NetflowV9IpfixConformance,
                         ::testing::Values(Case{9, false, 0}, Case{9, true, 0}, Case{9, false, 4},
                                           Case{10, false, 0}, Case{10, true, 0}, Case{10, true, 8}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.version == 9 ? "V9" : "Ipfix") +
                                  (info.param.ipv6 ? "Ipv6" : "Ipv4Vlan") +
                                  (info.param.sampling ? "Sampled" + std::to_string(info.param.sampling) : "");
                         });

}  // namespace
}  // namespace sluice
