#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fixtures/process.hpp"
#include "sources/udp_source.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using testing::eventually;

struct Produced {
  std::string topic;
  std::vector<std::byte> key;
  std::vector<std::byte> value;
};

// Keeps what the source produced, so the test sees exactly what the bus would carry.
class CapturingProducer : public bus::Producer {
 public:
  bus::ProduceStatus produce(std::string_view topic, std::span<const std::byte> key,
                             std::span<const std::byte> value) override {
    std::unique_lock lock(mutex_);
    ++waiting_;
    gate_.wait(lock, [&] { return open_; });
    --waiting_;
    ++calls_;
    if (refuse_every_ != 0 && calls_ % refuse_every_ == 0) return refuse_with_;
    messages_.push_back({std::string(topic), {key.begin(), key.end()}, {value.begin(), value.end()}});
    return bus::ProduceStatus::ok;
  }
  std::size_t flush(std::chrono::milliseconds) override { return 0; }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return messages_.size();
  }
  std::size_t calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  std::vector<Produced> messages() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }
  bool waiting() const {
    std::lock_guard lock(mutex_);
    return waiting_ > 0;
  }
  // Makes produce() block until reopened: stands in for a receive thread that falls behind.
  void close_gate() {
    std::lock_guard lock(mutex_);
    open_ = false;
  }
  void open_gate() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    gate_.notify_all();
  }
  void refuse_every(std::size_t n, bus::ProduceStatus status) {
    std::lock_guard lock(mutex_);
    refuse_every_ = n;
    refuse_with_ = status;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable gate_;
  bool open_ = true;
  int waiting_ = 0;
  std::size_t calls_ = 0;
  std::size_t refuse_every_ = 0;
  bus::ProduceStatus refuse_with_ = bus::ProduceStatus::ok;
  std::vector<Produced> messages_;
};

// A UDP sender socket bound to 127.0.0.1 on an ephemeral port.
class Sender {
 public:
  Sender() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~Sender() { ::close(fd_); }
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;
  std::uint16_t port() const { return port_; }
  void send(std::uint16_t to, const std::string& payload) const {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(to);
    ASSERT_EQ(::sendto(fd_, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a),
              static_cast<ssize_t>(payload.size()));
  }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

UdpSourceConfig config(int workers) {
  UdpSourceConfig c;
  c.name = "test-netflow";
  c.listen = "127.0.0.1:0";
  c.kind = SourceKind::netflow;
  c.workers = workers;
  c.receive_buffer = 4 * 1024 * 1024;
  c.batch = 8;
  c.topic = "flows";
  return c;
}

std::string text_of(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// Lines of /proc/net/udp whose local port is `port`: one per bound socket.
int sockets_on_port(std::uint16_t port) {
  std::ifstream in("/proc/net/udp");
  std::string line;
  std::getline(in, line);
  int n = 0;
  char want[8];
  std::snprintf(want, sizeof want, ":%04X", port);
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string sl, local;
    f >> sl >> local;
    if (local.size() >= 5 && local.substr(local.size() - 5) == want) ++n;
  }
  return n;
}

TEST(UdpSource, EveryDatagramArrivesAsAnEnvelopeWithTwoWorkers) {
  MetricsRegistry metrics;
  CapturingProducer producer;
  UdpSource source(config(2), producer, metrics);
  source.start();
  ASSERT_NE(source.bound_port(), 0);
  EXPECT_EQ(sockets_on_port(source.bound_port()), 2);

  // Several sender sockets so SO_REUSEPORT spreads them over both workers.
  std::vector<std::unique_ptr<Sender>> senders;
  for (int i = 0; i < 8; ++i) senders.push_back(std::make_unique<Sender>());
  std::map<std::string, std::uint16_t> sent;  // payload → sender port
  std::uint64_t sent_bytes = 0;
  const auto before_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  for (int i = 0; i < 400; ++i) {
    const Sender& s = *senders[static_cast<std::size_t>(i) % senders.size()];
    // Varied sizes, up to a large datagram, and binary content with NULs.
    std::string payload = "datagram-" + std::to_string(i) + std::string(static_cast<std::size_t>(i % 7) * 50, '\0');
    if (i == 399) payload += std::string(60000, 'x');
    s.send(source.bound_port(), payload);
    sent.emplace(payload, s.port());
    sent_bytes += payload.size();
  }
  ASSERT_TRUE(eventually([&] { return producer.size() == sent.size(); }, 10s)) << producer.size();
  const auto after_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());

  std::set<std::string> seen;
  for (const Produced& m : producer.messages()) {
    EXPECT_EQ(m.topic, "flows");
    Envelope env;
    ASSERT_EQ(decode_envelope(m.value, env), EnvelopeError::none);
    const std::string payload = text_of(env.payload);
    auto it = sent.find(payload);
    ASSERT_NE(it, sent.end()) << "unexpected payload of " << payload.size() << " bytes";
    EXPECT_TRUE(seen.insert(payload).second) << "duplicate";
    EXPECT_EQ(env.kind, SourceKind::netflow);
    EXPECT_EQ(ip6_to_string(env.source_address), "127.0.0.1");
    EXPECT_TRUE(ip6_is_v4_mapped(env.source_address));
    EXPECT_EQ(env.source_port, it->second);
    EXPECT_GE(env.received_ns, before_ns);
    EXPECT_LE(env.received_ns, after_ns);
    ASSERT_EQ(m.key.size(), 16u);
    EXPECT_EQ(std::memcmp(m.key.data(), env.source_address.data(), 16), 0);
  }
  EXPECT_EQ(seen.size(), sent.size());
  EXPECT_EQ(metrics.counter_value("inlet_udp_packets_total", {{"source", "test-netflow"}}), 400u);
  EXPECT_EQ(metrics.counter_value("inlet_udp_bytes_total", {{"source", "test-netflow"}}), sent_bytes);
  EXPECT_EQ(metrics.counter_total("inlet_udp_produce_drops_total"), 0u);
  EXPECT_EQ(metrics.counter_total("inlet_udp_kernel_drops_total"), 0u);
}

TEST(UdpSource, GarbageAndEmptyDatagramsPassThroughUntouched) {
  MetricsRegistry metrics;
  CapturingProducer producer;
  auto c = config(1);
  c.kind = SourceKind::sflow;
  UdpSource source(c, producer, metrics);
  source.start();
  Sender s;
  std::vector<std::string> payloads = {std::string("\x00\x05\xff\xff", 4), std::string(), "not a flow at all",
                                       std::string(3, '\xff')};
  for (const auto& p : payloads) s.send(source.bound_port(), p);
  ASSERT_TRUE(eventually([&] { return producer.size() == payloads.size(); }, 5s));
  const auto messages = producer.messages();
  for (std::size_t i = 0; i < payloads.size(); ++i) {  // one sender socket: order is kept
    Envelope env;
    ASSERT_EQ(decode_envelope(messages[i].value, env), EnvelopeError::none);
    EXPECT_EQ(text_of(env.payload), payloads[i]);
    EXPECT_EQ(env.kind, SourceKind::sflow);
    EXPECT_EQ(messages[i].value.size(), kEnvelopeHeaderSize + payloads[i].size());
  }
}

TEST(UdpSource, StopReturnsPromptlyWhenIdleAndIsIdempotent) {
  MetricsRegistry metrics;
  CapturingProducer producer;
  UdpSource source(config(2), producer, metrics);
  source.start();
  const auto t0 = std::chrono::steady_clock::now();
  source.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
  EXPECT_EQ(sockets_on_port(source.bound_port()), 0);
  source.stop();
}

TEST(UdpSource, ProduceRefusalsAreCountedByReason) {
  MetricsRegistry metrics;
  CapturingProducer producer;
  producer.refuse_every(4, bus::ProduceStatus::full);
  UdpSource source(config(1), producer, metrics);
  source.start();
  Sender s;
  for (int i = 0; i < 100; ++i) s.send(source.bound_port(), std::to_string(i) + "x");
  ASSERT_TRUE(eventually([&] { return producer.calls() == 100; }, 5s));
  EXPECT_EQ(producer.size(), 75u);
  EXPECT_EQ(metrics.counter_value("inlet_udp_produce_drops_total", {{"source", "test-netflow"}, {"reason", "full"}}),
            25u);
  EXPECT_EQ(metrics.counter_value("inlet_udp_produce_drops_total", {{"source", "test-netflow"}, {"reason", "error"}}),
            0u);
  EXPECT_EQ(metrics.counter_value("inlet_udp_packets_total", {{"source", "test-netflow"}}), 100u);
}

TEST(UdpSource, KernelDropsAreCountedFromRxqOverflowAndProc) {
  MetricsRegistry metrics;
  CapturingProducer producer;
  auto c = config(1);
  c.receive_buffer = 4096;  // room for a handful of datagrams
  c.batch = 1;
  UdpSource source(c, producer, metrics);
  source.start();
  Sender s;
  // Hold the receive thread inside produce() so the socket buffer overflows behind it.
  producer.close_gate();
  s.send(source.bound_port(), "first");
  ASSERT_TRUE(eventually([&] { return producer.waiting(); }, 5s));
  const std::string payload(1000, 'p');
  constexpr std::uint64_t kFlood = 500;
  for (std::uint64_t i = 0; i < kFlood; ++i) s.send(source.bound_port(), payload);
  producer.open_gate();
  // Everything sent is either produced or counted as dropped by the kernel, nothing else.
  ASSERT_TRUE(eventually([&] { return producer.size() + source.proc_drops() == 1 + kFlood; }, 5s))
      << producer.size() << " produced, " << source.proc_drops() << " dropped";
  const std::uint64_t dropped = source.proc_drops();
  EXPECT_GT(dropped, kFlood / 2);
  // The overflow count rides on the next datagram queued after the drops.
  s.send(source.bound_port(), "last");
  ASSERT_TRUE(eventually([&] { return producer.size() == 2 + kFlood - dropped; }, 5s));
  EXPECT_EQ(metrics.counter_value("inlet_udp_kernel_drops_total", {{"source", "test-netflow"}}), dropped);
  EXPECT_EQ(metrics.counter_value("inlet_udp_packets_total", {{"source", "test-netflow"}}), 2 + kFlood - dropped);
  const std::string rendered = metrics.render_prometheus();
  EXPECT_NE(rendered.find("sluice_inlet_udp_proc_drops{source=\"test-netflow\"} " + std::to_string(dropped)),
            std::string::npos)
      << rendered;
}

TEST(UdpSource, BindErrorsNameTheAddress) {
  MetricsRegistry metrics;
  CapturingProducer producer;
  // A plain socket without SO_REUSEPORT holds the port, so the source cannot share it.
  const int holder = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(holder, reinterpret_cast<sockaddr*>(&a), &len);
  auto c = config(1);
  c.listen = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  UdpSource source(c, producer, metrics);
  try {
    source.start();
    ADD_FAILURE() << "bind to a taken port succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(c.listen), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Address already in use"), std::string::npos) << e.what();
  }
  ::close(holder);

  for (const char* bad : {"127.0.0.1", "127.0.0.1:99999", "[::1:0", "::1:0"}) {
    auto b = config(1);
    b.listen = bad;
    UdpSource s(b, producer, metrics);
    EXPECT_THROW(s.start(), std::runtime_error) << bad;
  }
}

TEST(UdpSource, ReceivesOverIpv6) {
  MetricsRegistry metrics;
  CapturingProducer producer;
  auto c = config(1);
  c.listen = "[::1]:0";
  UdpSource source(c, producer, metrics);
  source.start();
  const int fd = ::socket(AF_INET6, SOCK_DGRAM, 0);
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_addr = in6addr_loopback;
  to.sin6_port = htons(source.bound_port());
  const std::string payload = "v6 datagram";
  ASSERT_EQ(::sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
            static_cast<ssize_t>(payload.size()));
  sockaddr_in6 from{};
  socklen_t len = sizeof from;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&from), &len);
  ASSERT_TRUE(eventually([&] { return producer.size() == 1; }, 5s));
  const auto messages = producer.messages();  // the envelope's payload is a view into these
  Envelope env;
  ASSERT_EQ(decode_envelope(messages[0].value, env), EnvelopeError::none);
  EXPECT_EQ(ip6_to_string(env.source_address), "::1");
  EXPECT_EQ(env.source_port, ntohs(from.sin6_port));
  EXPECT_EQ(text_of(env.payload), payload);
  ::close(fd);
}

}  // namespace
}  // namespace sluice
