// sFlow v5 conformance: pmacctd's sfprobe plugin samples a scapy pcap and exports sFlow to a UdpSource;
// decode_sflow's reading of every received datagram is checked sample by sample against tshark's sFlow
// dissector (with its own Ethernet/IP/transport dissectors for the raw headers) and the pcap's ground truth.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "core/bytes.hpp"
#include "decoders/sflow.hpp"
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

// The largest sample pool (packets the agent had seen) of any flow sample in a datagram. Read here
// directly, not with decode_sflow, so the test knows when an export is complete without trusting the
// decoder under test.
std::uint32_t max_sample_pool(std::span<const std::byte> payload) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(payload.data());
  const std::size_t n = payload.size();
  if (n < 8) return 0;
  std::size_t off = load_be32(p + 4) == 2 ? 8 + 16 : 8 + 4;
  if (n < off + 16) return 0;
  const std::uint32_t samples = load_be32(p + off + 12);
  off += 16;
  std::uint32_t pool = 0;
  for (std::uint32_t i = 0; i < samples && off + 8 <= n; ++i) {
    const std::uint32_t format = load_be32(p + off), length = load_be32(p + off + 4);
    if (format == 1 && off + 8 + 16 <= n) pool = std::max(pool, load_be32(p + off + 8 + 12));
    off += 8 + std::size_t{length};
  }
  return pool;
}

struct Export {
  std::vector<std::vector<std::byte>> envelopes;
  std::uint16_t port = 0;
};

// pmacctd exports a sample only when its datagram fills or on the next packet after a wall-clock
// second has passed; with no further packet the last datagram of a pcap is never sent. So the pcap is
// played twice, 2 s apart: the second pass's first packet flushes the first pass's tail. Samples whose
// pool exceeds the pcap's packet count belong to the second pass (tests set them aside).
Export run_pmacctd(const testing::TempDir& dir, const std::string& pcap, std::uint64_t pcap_packets, int rate) {
  MetricsRegistry metrics;
  CapturingProducer producer;
  UdpSourceConfig config;
  config.name = "conformance";
  config.kind = SourceKind::sflow;
  config.listen = "127.0.0.1:0";
  config.workers = 1;  // one socket keeps arrival order, so samples line up with tshark's
  config.topic = "flows";
  UdpSource source(config, producer, metrics);
  source.start();
  Export out;
  out.port = source.bound_port();

  const std::string conf = dir / ("pmacctd-" + std::to_string(rate) + ".conf");
  testing::write_file(conf, "daemonize: false\n"
                            "pcap_savefile: " + pcap + "\n"
                            "pcap_savefile_replay: 2\n"
                            "pcap_savefile_delay: 2\n"
                            "plugins: sfprobe[sf]\n"
                            "sfprobe_receiver: 127.0.0.1:" + std::to_string(out.port) + "\n"
                            "sfprobe_agentip: 192.0.2.10\n"
                            "sfprobe_ifindex[sf]: 5\n"
                            "sfprobe_direction[sf]: in\n"
                            "sampling_rate: " + std::to_string(rate) + "\n");
  testing::Process pmacctd({"/usr/sbin/pmacctd", "-f", conf}, dir.path());
  const bool second_pass = eventually(
      [&] {
        for (const auto& v : producer.values()) {
          Envelope env;
          if (decode_envelope(v, env) == EnvelopeError::none && max_sample_pool(env.payload) > pcap_packets) return true;
        }
        return false;
      },
      30s);
  pmacctd.stop(5s);
  source.stop();
  EXPECT_TRUE(second_pass) << "pmacctd did not replay the pcap; stderr: " << pmacctd.stderr_text()
                           << " stdout: " << pmacctd.stdout_text();
  EXPECT_EQ(metrics.counter_total("inlet_udp_kernel_drops_total"), 0u);
  out.envelopes = producer.values();
  return out;
}

// One flow sample as tshark reads it.
struct TsharkSample {
  std::uint32_t time_s = 0;
  std::string agent;
  std::uint64_t rate = 0, pool = 0, in_if = 0, out_if_format = 0, out_if_value = 0, frame_length = 0;
  std::string eth_src, eth_dst, src, dst;
  long vlan_in = -1, vlan_out = -1, header_vlan = -1;
  std::uint64_t etype = 0, proto = 0, tos = 0, ttl = 0, flow_label = 0, sport = 0, dport = 0, tcp_flags = 0,
                icmp_type = 0, icmp_code = 0;
};

const nlohmann::ordered_json* child(const nlohmann::ordered_json& o, const std::string& key) {
  if (!o.is_object()) return nullptr;
  const auto it = o.find(key);
  if (it == o.end()) return nullptr;
  return it->is_array() && !it->empty() ? &it->front() : &*it;  // a repeated key (QinQ): the outer one
}
std::string str(const nlohmann::ordered_json& o, const std::string& key) {
  const auto* c = child(o, key);
  return c && c->is_string() ? c->get<std::string>() : std::string();
}
std::uint64_t num(const nlohmann::ordered_json& o, const std::string& key) {
  const std::string s = str(o, key);
  EXPECT_FALSE(s.empty()) << "tshark gave no " << key;
  return s.empty() ? 0 : std::stoull(s, nullptr, 0);  // tshark prints some fields as 0x..
}

std::vector<TsharkSample> tshark_samples(const std::string& pcap, std::uint16_t port) {
  const auto r = testing::run_command({"tshark", "-r", pcap, "-d", "udp.port==" + std::to_string(port) + ",sflow", "-T",
                                       "json", "--no-duplicate-keys", "-J", "frame sflow"},
                                      120s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<TsharkSample> out;
  for (const auto& frame : nlohmann::ordered_json::parse(r.out)) {
    const auto& layers = frame["_source"]["layers"];
    const std::string epoch = str(layers["frame"], "frame.time_epoch");
    const auto& sflow = layers["sflow"];
    for (const auto& [key, sample] : sflow.items()) {
      if (key.rfind("Flow sample", 0) != 0) continue;
      TsharkSample t;
      t.time_s = static_cast<std::uint32_t>(std::stoull(epoch.substr(0, epoch.find('.'))));
      t.agent = str(sflow, "sflow_245.agent");
      t.rate = num(sample, "sflow.flow_sample.sampling_rate");
      t.pool = num(sample, "sflow.flow_sample.sample_pool");
      t.in_if = num(sample, "sflow.flow_sample.input_interface");
      const auto* out_tree = child(sample, "sflow.flow_sample.output_interface_tree");
      EXPECT_NE(out_tree, nullptr);
      if (out_tree) {
        t.out_if_format = num(*out_tree, "sflow.flow_sample.output_interface_format");
        t.out_if_value = num(*out_tree, "sflow.flow_sample.output_interface_value");
      }
      if (const auto* sw = child(sample, "Extended switch data")) {
        t.vlan_in = static_cast<long>(num(*sw, "sflow_245.vlan.in"));
        t.vlan_out = static_cast<long>(num(*sw, "sflow_245.vlan.out"));
      }
      const auto* raw = child(sample, "Raw packet header");
      EXPECT_NE(raw, nullptr) << "pmacctd sends a raw header with every sample";
      if (!raw) continue;
      t.frame_length = num(*raw, "sflow_245.header.frame_length");
      const auto& h = (*raw)["sflow_245.header_tree"];
      if (const auto* eth = child(h, "eth")) {
        t.eth_src = str(*eth, "eth.src");
        t.eth_dst = str(*eth, "eth.dst");
      }
      if (const auto* vlan = child(h, "vlan")) t.header_vlan = static_cast<long>(num(*vlan, "vlan.id"));
      if (const auto* ip = child(h, "ip")) {
        t.etype = 0x0800;
        t.src = str(*ip, "ip.src");
        t.dst = str(*ip, "ip.dst");
        t.proto = num(*ip, "ip.proto");
        t.tos = num(*ip, "ip.dsfield");
        t.ttl = num(*ip, "ip.ttl");
      } else if (const auto* ip6 = child(h, "ipv6")) {
        t.etype = 0x86dd;
        t.src = str(*ip6, "ipv6.src");
        t.dst = str(*ip6, "ipv6.dst");
        t.proto = num(*ip6, "ipv6.nxt");
        t.tos = num(*ip6, "ipv6.tclass");
        t.ttl = num(*ip6, "ipv6.hlim");
        t.flow_label = num(*ip6, "ipv6.flow");
      }
      if (const auto* tcp = child(h, "tcp")) {
        t.sport = num(*tcp, "tcp.srcport");
        t.dport = num(*tcp, "tcp.dstport");
        t.tcp_flags = num(*tcp, "tcp.flags") & 0xff;
      } else if (const auto* udp = child(h, "udp")) {
        t.sport = num(*udp, "udp.srcport");
        t.dport = num(*udp, "udp.dstport");
      } else if (const auto* icmp = child(h, "icmp")) {
        t.icmp_type = num(*icmp, "icmp.type");
        t.icmp_code = num(*icmp, "icmp.code");
      } else if (const auto* icmp6 = child(h, "icmpv6")) {
        t.icmp_type = num(*icmp6, "icmpv6.type");
        t.icmp_code = num(*icmp6, "icmpv6.code");
      }
      out.push_back(t);
    }
  }
  return out;
}

std::string mac_string(std::uint64_t mac) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", static_cast<unsigned>(mac >> 40 & 0xff),
                static_cast<unsigned>(mac >> 32 & 0xff), static_cast<unsigned>(mac >> 24 & 0xff),
                static_cast<unsigned>(mac >> 16 & 0xff), static_cast<unsigned>(mac >> 8 & 0xff),
                static_cast<unsigned>(mac & 0xff));
  return buf;
}

struct Decoded {
  std::vector<Envelope> envelopes;
  Collect out;
  std::vector<TsharkSample> theirs;
};

// Decodes every received datagram (each must be ok), has tshark read the same datagrams, and
// requires every sample's fields and the totals to be equal.
void decode_and_compare(const testing::TempDir& dir, const Export& exp, const std::string& name, Decoded& d) {
  FlowRecord scratch;
  std::uint32_t counted = 0;
  for (const auto& value : exp.envelopes) {
    Envelope env;
    ASSERT_EQ(decode_envelope(value, env), EnvelopeError::none);
    ASSERT_EQ(env.kind, SourceKind::sflow);
    d.envelopes.push_back(env);
    SflowCounts counts;
    ASSERT_EQ(decode_sflow(env, scratch, d.out, SflowOptions{}, &counts), DecodeStatus::ok);
    counted += counts.flow_samples;
  }
  const std::string pcap = dir / (name + "-sflow.pcap");
  testing::write_udp_pcap(pcap, d.envelopes, exp.port);
  d.theirs = tshark_samples(pcap, exp.port);
  const auto& ours = d.out.flows;
  ASSERT_EQ(ours.size(), d.theirs.size());
  ASSERT_EQ(ours.size(), counted);
  std::uint64_t our_bytes = 0, their_bytes = 0;
  for (std::size_t i = 0; i < ours.size(); ++i) {
    const FlowRecord& f = ours[i];
    const TsharkSample& t = d.theirs[i];
    SCOPED_TRACE("sample " + std::to_string(i) + " " + t.src + " -> " + t.dst);
    EXPECT_EQ(ip6_to_string(f.exporter_address), t.agent);
    EXPECT_EQ(f.time_received, t.time_s);
    EXPECT_EQ(f.time_flow_start, t.time_s);
    EXPECT_EQ(f.time_flow_end, t.time_s);
    EXPECT_EQ(f.sampling_rate, t.rate);
    EXPECT_EQ(f.in_if, t.in_if);
    // 0x3fffffff is sFlow's "unknown interface"; sluice stores unknown as 0.
    EXPECT_EQ(t.out_if_format, 0u);
    EXPECT_EQ(f.out_if, t.out_if_value == 0x3fffffff ? 0 : t.out_if_value);
    EXPECT_EQ(f.bytes, t.frame_length);
    EXPECT_EQ(f.packets, 1u);
    EXPECT_EQ(mac_string(f.src_mac), t.eth_src);
    EXPECT_EQ(mac_string(f.dst_mac), t.eth_dst);
    EXPECT_EQ(f.src_vlan, t.vlan_in >= 0 ? t.vlan_in : (t.header_vlan >= 0 ? t.header_vlan : 0));
    EXPECT_EQ(f.dst_vlan, t.vlan_out >= 0 ? t.vlan_out : 0);
    if (t.vlan_in >= 0 && t.header_vlan >= 0) {
      EXPECT_EQ(t.vlan_in, t.header_vlan);
    }
    EXPECT_EQ(f.etype, t.etype);
    EXPECT_EQ(ip6_to_string(f.src_addr), t.src);
    EXPECT_EQ(ip6_to_string(f.dst_addr), t.dst);
    EXPECT_EQ(f.proto, t.proto);
    EXPECT_EQ(f.ip_tos, t.tos);
    EXPECT_EQ(f.ip_ttl, t.ttl);
    EXPECT_EQ(f.ipv6_flow_label, t.flow_label);
    EXPECT_EQ(f.src_port, t.sport);
    EXPECT_EQ(f.dst_port, t.dport);
    EXPECT_EQ(f.tcp_flags, t.tcp_flags);
    EXPECT_EQ(f.icmp_type, t.icmp_type);
    EXPECT_EQ(f.icmp_code, t.icmp_code);
    our_bytes += f.bytes;
    their_bytes += t.frame_length;
  }
  EXPECT_EQ(our_bytes, their_bytes);
}

using Key = std::tuple<std::string, std::string, std::uint32_t, std::uint16_t, std::uint16_t>;

// The flow of the pcap's ground truth a sample belongs to; ICMP type/code are keyed the way
// gen_traffic.py reports them (destination port type*256+code).
Key key_of(const FlowRecord& f) {
  const bool icmp = f.proto == 1 || f.proto == 58;
  return {ip6_to_string(f.src_addr), ip6_to_string(f.dst_addr), f.proto, f.src_port,
          icmp ? static_cast<std::uint16_t>(f.icmp_type * 256 + f.icmp_code) : f.dst_port};
}

struct Pcap {
  std::string path;
  nlohmann::json truth;
};

Pcap make_pcap(const testing::TempDir& dir, const std::string& name, std::vector<std::string> extra) {
  Pcap p{dir / (name + ".pcap"), {}};
  std::vector<std::string> argv = {"/usr/bin/python3", std::string(SLUICE_SOURCE_DIR) + "/tests/tools/gen_traffic.py", p.path,
                                   "--flows", "400", "--seed", "20240611"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const auto r = testing::run_command(argv, 120s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  p.truth = nlohmann::json::parse(r.out);
  return p;
}

// Unsampled: the first pass's samples are exactly the pcap's packets; each flow's samples and frame
// bytes (pmacctd adds the 4-byte FCS to every frame length, as the sFlow specification asks) match.
void expect_ground_truth(const Decoded& d, const nlohmann::json& truth, bool vlan) {
  std::map<Key, const nlohmann::json*> flows;
  for (const auto& t : truth["by_5tuple"]) flows[{t["src"], t["dst"], t["proto"], t["sport"], t["dport"]}] = &t;
  const auto pcap_packets = truth["packets"].get<std::uint64_t>();
  std::map<Key, std::uint64_t> packets, bytes;
  std::uint64_t total_packets = 0, total_bytes = 0;
  for (std::size_t i = 0; i < d.out.flows.size(); ++i) {
    if (d.theirs[i].pool > pcap_packets) continue;  // the second pass
    const FlowRecord& f = d.out.flows[i];
    const Key key = key_of(f);
    SCOPED_TRACE(std::get<0>(key) + " -> " + std::get<1>(key) + " proto " + std::to_string(f.proto));
    const auto it = flows.find(key);
    ASSERT_NE(it, flows.end());
    EXPECT_EQ(f.ip_tos, (*it->second)["tos"].get<std::uint32_t>());
    EXPECT_EQ(f.sampling_rate, 1u);
    EXPECT_EQ(f.in_if, 5u);
    EXPECT_EQ(ip6_to_string(f.exporter_address), "192.0.2.10");
    if (vlan) {
      EXPECT_EQ(f.src_vlan, 100 + std::get<3>(key) % 50);
    }
    ++packets[key];
    bytes[key] += f.bytes;
    ++total_packets;
    total_bytes += f.bytes;
  }
  for (const auto& [key, t] : flows) {
    EXPECT_EQ(packets[key], (*t)["packets"].get<std::uint64_t>()) << std::get<0>(key) << " -> " << std::get<1>(key);
    EXPECT_EQ(bytes[key], (*t)["frame_bytes"].get<std::uint64_t>() + 4 * (*t)["packets"].get<std::uint64_t>());
  }
  EXPECT_EQ(total_packets, pcap_packets);
  EXPECT_EQ(total_bytes, truth["frame_bytes"].get<std::uint64_t>() + 4 * pcap_packets);
}

class SflowConformance : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = std::make_unique<testing::TempDir>("sluice-sflow"); }
  std::unique_ptr<testing::TempDir> dir_;
};

TEST_F(SflowConformance, Ipv4VlanTaggedUnsampledMatchesTsharkAndGroundTruth) {
  const Pcap pcap = make_pcap(*dir_, "v4-vlan", {"--vlan"});
  const Export exp = run_pmacctd(*dir_, pcap.path, pcap.truth["packets"].get<std::uint64_t>(), 1);
  Decoded d;
  decode_and_compare(*dir_, exp, "v4-vlan", d);
  expect_ground_truth(d, pcap.truth, true);
}

TEST_F(SflowConformance, Ipv6UnsampledMatchesTsharkAndGroundTruth) {
  const Pcap pcap = make_pcap(*dir_, "v6", {"--ipv6"});
  const Export exp = run_pmacctd(*dir_, pcap.path, pcap.truth["packets"].get<std::uint64_t>(), 1);
  Decoded d;
  decode_and_compare(*dir_, exp, "v6", d);
  expect_ground_truth(d, pcap.truth, false);
}

TEST_F(SflowConformance, SampledExportCarriesTheRateAndOnlyTrueFlows) {
  const Pcap pcap = make_pcap(*dir_, "v4-sampled", {});
  const auto pcap_packets = pcap.truth["packets"].get<std::uint64_t>();
  const Export exp = run_pmacctd(*dir_, pcap.path, pcap_packets, 4);
  Decoded d;
  decode_and_compare(*dir_, exp, "v4-sampled", d);
  std::map<Key, std::uint64_t> truth_packets;
  for (const auto& t : pcap.truth["by_5tuple"]) truth_packets[{t["src"], t["dst"], t["proto"], t["sport"], t["dport"]}] = t["packets"];
  std::map<Key, std::uint64_t> sampled;
  std::uint64_t first_pass = 0;
  for (std::size_t i = 0; i < d.out.flows.size(); ++i) {
    EXPECT_EQ(d.out.flows[i].sampling_rate, 4u);
    if (d.theirs[i].pool > pcap_packets) continue;
    ++first_pass;
    const Key key = key_of(d.out.flows[i]);
    ASSERT_TRUE(truth_packets.count(key)) << std::get<0>(key) << " -> " << std::get<1>(key);
    EXPECT_LE(++sampled[key], truth_packets[key]);
  }
  // pmacctd samples at random 1 in 4: far fewer samples than packets, but not none.
  EXPECT_GT(first_pass, pcap_packets / 8);
  EXPECT_LT(first_pass, pcap_packets / 2);
}

}  // namespace
}  // namespace sluice
