// udp_replay: replays the UDP payloads of a classic pcap to 127.0.0.1 at a set rate with sendmmsg,
// looping over them; can also synthesize a pcap of NetFlow v5 export datagrams to replay.
//
//   udp_replay synth-v5 --out FILE [--datagrams N] [--port P]
//       N datagrams of 30 flows each (varied addresses, ports, counters), to UDP port P (2055).
//   udp_replay send --pcap FILE --port P --rate PPS (--count N | --duration S) [--filter-port Q] [--v5-now]
//                   [--sources K]
//       sends the payloads of datagrams to port Q (all if not given) to 127.0.0.1:P, PPS datagrams a
//       second; --v5-now rewrites NetFlow v5 headers so the export time is now and sequence numbers
//       keep increasing across loops; --sources K sends from K loopback addresses (127.0.1.1 …), each
//       batch from the next one, as K exporters would. Prints one line: `sent=<datagrams> flows=<v5 records> seconds=<s>`.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Payload = std::vector<std::uint8_t>;

void put_be16(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
void put_be32(std::uint8_t* p, std::uint32_t v) {
  put_be16(p, v >> 16);
  put_be16(p + 2, v & 0xffff);
}
std::uint32_t get_be16(const std::uint8_t* p) { return std::uint32_t{p[0]} << 8 | p[1]; }

constexpr std::size_t kV5Header = 24, kV5Record = 48, kV5MaxCount = 30;

bool is_v5(const Payload& p) {
  return p.size() >= kV5Header && get_be16(p.data()) == 5 &&
         p.size() == kV5Header + get_be16(p.data() + 2) * kV5Record;
}

Payload make_v5(std::mt19937& rng) {
  Payload b(kV5Header + kV5MaxCount * kV5Record, 0);
  std::uint8_t* p = b.data();
  put_be16(p, 5);
  put_be16(p + 2, kV5MaxCount);
  put_be32(p + 4, 86'400'000);  // sysUptime, ms
  put_be32(p + 8, 1'700'000'000);
  put_be16(p + 22, 0x4000 | 100);  // sampling: 1 in 100
  for (std::size_t i = 0; i < kV5MaxCount; ++i) {
    std::uint8_t* r = p + kV5Header + i * kV5Record;
    put_be32(r, 0x0a000000 | (rng() & 0xffffff));
    put_be32(r + 4, 0xc6336400 | (rng() & 0xff));
    put_be32(r + 8, 0x0a0000fe);
    put_be16(r + 12, 1 + rng() % 48);
    put_be16(r + 14, 1 + rng() % 48);
    put_be32(r + 16, 1 + rng() % 1000);
    put_be32(r + 20, 40 + rng() % 1'500'000);
    const std::uint32_t last = 86'400'000 - rng() % 60'000;
    put_be32(r + 24, last - rng() % 120'000);
    put_be32(r + 28, last);
    put_be16(r + 32, 1024 + rng() % 60000);
    put_be16(r + 34, rng() % 2 ? 443 : 53);
    r[37] = static_cast<std::uint8_t>(rng() & 0x3f);
    r[38] = rng() % 2 ? 6 : 17;
    put_be16(r + 40, 64500 + rng() % 50);
    put_be16(r + 42, 15169);
    r[44] = 24;
    r[45] = 16;
  }
  return b;
}

// Classic pcap, Ethernet link type, IPv4/UDP frames from 192.0.2.1:50000.
void write_pcap(const std::string& path, const std::vector<Payload>& payloads, std::uint16_t port) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot write " + path);
  auto le32 = [&f](std::uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };  // x86: little-endian
  auto le16 = [&f](std::uint16_t v) { f.write(reinterpret_cast<const char*>(&v), 2); };
  le32(0xa1b2c3d4), le16(2), le16(4), le32(0), le32(0), le32(65535), le32(1);
  std::uint32_t ts = 1'700'000'000;
  for (const auto& payload : payloads) {
    std::vector<std::uint8_t> frame(14 + 20 + 8 + payload.size(), 0);
    frame[12] = 0x08;  // IPv4
    std::uint8_t* ip = frame.data() + 14;
    ip[0] = 0x45;
    put_be16(ip + 2, static_cast<std::uint32_t>(20 + 8 + payload.size()));
    ip[8] = 64;
    ip[9] = 17;
    put_be32(ip + 12, 0xc0000201);
    put_be32(ip + 16, 0x7f000001);
    std::uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2) sum += get_be16(ip + i);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    put_be16(ip + 10, ~sum & 0xffff);
    std::uint8_t* udp = ip + 20;
    put_be16(udp, 50000);
    put_be16(udp + 2, port);
    put_be16(udp + 4, static_cast<std::uint32_t>(8 + payload.size()));
    std::copy(payload.begin(), payload.end(), udp + 8);
    le32(ts++), le32(0), le32(static_cast<std::uint32_t>(frame.size())), le32(static_cast<std::uint32_t>(frame.size()));
    f.write(reinterpret_cast<const char*>(frame.data()), static_cast<std::streamsize>(frame.size()));
  }
}

// UDP payloads of a classic pcap (Ethernet, Linux cooked or raw IP links; IPv4 and IPv6; optional
// 802.1Q), keeping those sent to `port` (0: all).
std::vector<Payload> read_pcap(const std::string& path, std::uint16_t port) {
  std::ifstream f(path, std::ios::binary);
  const std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (data.size() < 24) throw std::runtime_error(path + " is not a classic pcap file");
  const auto* d = reinterpret_cast<const std::uint8_t*>(data.data());
  std::uint32_t magic;
  std::memcpy(&magic, d, 4);
  const bool swapped = magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1;
  if (!swapped && magic != 0xa1b2c3d4 && magic != 0xa1b23c4d) {
    throw std::runtime_error(path + ": not a classic pcap (pcapng is not supported; convert with editcap -F pcap)");
  }
  auto u32 = [&](std::size_t at) {
    std::uint32_t v;
    std::memcpy(&v, d + at, 4);
    return swapped ? __builtin_bswap32(v) : v;
  };
  const std::uint32_t link = u32(20);
  std::vector<Payload> out;
  for (std::size_t at = 24; at + 16 <= data.size();) {
    const std::uint32_t caplen = u32(at + 8);
    const std::size_t start = at + 16;
    at = start + caplen;
    if (at > data.size()) break;
    const std::uint8_t* p = d + start;
    std::size_t n = caplen, l3 = 0;
    std::uint32_t ethertype = 0;
    if (link == 1) {
      l3 = 14, ethertype = n >= 14 ? get_be16(p + 12) : 0;
      if (ethertype == 0x8100 && n >= 18) l3 = 18, ethertype = get_be16(p + 16);
    } else if (link == 113) {
      l3 = 16, ethertype = n >= 16 ? get_be16(p + 14) : 0;
    } else if (link == 101 || link == 12) {
      ethertype = n && (p[0] >> 4) == 6 ? 0x86dd : 0x0800;
    } else {
      throw std::runtime_error(path + ": unsupported link type " + std::to_string(link));
    }
    if (n < l3 + 1) continue;
    p += l3, n -= l3;
    std::size_t l4;
    if (ethertype == 0x0800 && n >= 20 && p[9] == 17) {
      l4 = std::size_t{p[0] & 0x0fu} * 4;
    } else if (ethertype == 0x86dd && n >= 40 && p[6] == 17) {
      l4 = 40;
    } else {
      continue;
    }
    if (n < l4 + 8) continue;
    const std::uint8_t* udp = p + l4;
    if (port && get_be16(udp + 2) != port) continue;
    const std::size_t len = std::min<std::size_t>(get_be16(udp + 4), n - l4);
    if (len < 8) continue;
    out.emplace_back(udp + 8, udp + len);
  }
  return out;
}

std::string arg(int argc, char** argv, std::string_view name, const char* fallback = nullptr) {
  for (int i = 2; i + 1 < argc; ++i) {
    if (argv[i] == name) return argv[i + 1];
  }
  if (!fallback) throw std::invalid_argument("missing " + std::string(name));
  return fallback;
}
bool flag(int argc, char** argv, std::string_view name) {
  for (int i = 2; i < argc; ++i) {
    if (argv[i] == name) return true;
  }
  return false;
}

int send(int argc, char** argv) {
  auto payloads = read_pcap(arg(argc, argv, "--pcap"), static_cast<std::uint16_t>(std::stoul(arg(argc, argv, "--filter-port", "0"))));
  if (payloads.empty()) throw std::runtime_error("no UDP payloads to replay in the pcap");
  const auto port = static_cast<std::uint16_t>(std::stoul(arg(argc, argv, "--port")));
  const double rate = std::stod(arg(argc, argv, "--rate"));
  const std::uint64_t count = std::stoull(arg(argc, argv, "--count", "0"));
  const double duration = std::stod(arg(argc, argv, "--duration", "0"));
  if (rate <= 0 || (count == 0 && duration <= 0)) throw std::invalid_argument("need --rate and --count or --duration");
  const std::uint64_t total = count ? count : static_cast<std::uint64_t>(rate * duration);
  const bool v5_now = flag(argc, argv, "--v5-now");
  const int sources = std::stoi(arg(argc, argv, "--sources", "1"));
  if (sources < 1 || sources > 250) throw std::invalid_argument("--sources is 1 to 250");

  std::vector<int> fds;
  for (int s = 0; s < sources; ++s) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) throw std::runtime_error("socket failed");
    int sndbuf = 8 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (sources > 1) {
      sockaddr_in from{};
      from.sin_family = AF_INET;
      from.sin_addr.s_addr = htonl((127u << 24) | (1u << 8) | static_cast<std::uint32_t>(s + 1));
      if (::bind(fd, reinterpret_cast<const sockaddr*>(&from), sizeof from) != 0) {
        throw std::runtime_error("cannot bind a source socket to 127.0.1." + std::to_string(s + 1));
      }
    }
    fds.push_back(fd);
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(port);

  constexpr std::size_t kBatch = 64;
  std::vector<iovec> iov(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  std::uint64_t sent = 0, flows = 0, failed = 0;
  std::vector<std::uint32_t> sequences(fds.size(), 0);
  std::size_t next = 0, source = 0;
  const auto start = std::chrono::steady_clock::now();
  while (sent < total) {
    // Pacing: as many as the elapsed time allows, at most one batch, so bursts stay short.
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto due = std::min<std::uint64_t>(total, static_cast<std::uint64_t>(elapsed * rate) + 1);
    if (due <= sent) {
      const timespec pause{0, 50'000};
      ::nanosleep(&pause, nullptr);
      continue;
    }
    const std::size_t n = std::min<std::uint64_t>(kBatch, due - sent);
    const auto now = static_cast<std::uint32_t>(::time(nullptr));
    for (std::size_t i = 0; i < n; ++i) {
      Payload& p = payloads[(next + i) % payloads.size()];
      if (is_v5(p)) {
        const std::uint32_t records = get_be16(p.data() + 2);
        if (v5_now) {
          put_be32(p.data() + 8, now);
          put_be32(p.data() + 16, sequences[source]);
          sequences[source] += records;
        }
        flows += records;
      }
      iov[i].iov_base = p.data();
      iov[i].iov_len = p.size();
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_name = &to;
      msgs[i].msg_hdr.msg_namelen = sizeof to;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int done = ::sendmmsg(fds[source], msgs.data(), static_cast<unsigned>(n), 0);
    source = (source + 1) % fds.size();
    // On loopback a full receiver drops (and counts) instead of failing the send; a failure here
    // is the sender's own, counted apart so drops are never blamed on the receiver.
    if (done < static_cast<int>(n)) failed += n - static_cast<std::size_t>(std::max(done, 0));
    sent += n;
    next = (next + n) % payloads.size();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (int fd : fds) ::close(fd);
  std::printf("sent=%llu flows=%llu seconds=%.3f send_failures=%llu\n", static_cast<unsigned long long>(sent - failed),
              static_cast<unsigned long long>(flows), seconds, static_cast<unsigned long long>(failed));
  return failed ? 2 : 0;
}

int synth_v5(int argc, char** argv) {
  const auto n = std::stoul(arg(argc, argv, "--datagrams", "4096"));
  const auto port = static_cast<std::uint16_t>(std::stoul(arg(argc, argv, "--port", "2055")));
  std::mt19937 rng(2055);
  std::vector<Payload> payloads;
  for (std::size_t i = 0; i < n; ++i) payloads.push_back(make_v5(rng));
  write_pcap(arg(argc, argv, "--out"), payloads, port);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "send") return send(argc, argv);
    if (mode == "synth-v5") return synth_v5(argc, argv);
    std::fprintf(stderr, "usage: udp_replay send|synth-v5 ... (see the top of bench/tools/udp_replay.cpp)\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "udp_replay: %s\n", e.what());
  }
  return 1;
}
