// Benchmarks of the first flow slice: NetFlow v5 decoding into a FlowBatch, and the UDP inlet's
// receive rate on loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <span>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/bytes.hpp"
#include "core/flow_batch.hpp"
#include "core/metrics.hpp"
#include "decoders/netflow.hpp"
#include "decoders/netflow_v5.hpp"
#include "sources/udp_source.hpp"

namespace sluice {
namespace {

// A v5 datagram of `count` records with varied addresses, ports, counters and times.
std::vector<std::uint8_t> make_v5(std::mt19937& rng, std::uint16_t count, std::uint32_t sequence) {
  std::vector<std::uint8_t> b(kNetflowV5HeaderSize + std::size_t{count} * kNetflowV5RecordSize, 0);
  std::uint8_t* p = b.data();
  store_be16(p, 5);
  store_be16(p + 2, count);
  store_be32(p + 4, 86'400'000);
  store_be32(p + 8, 1'700'000'000);
  store_be32(p + 12, 250'000'000);
  store_be32(p + 16, sequence);
  store_be16(p + 22, 0x4000 | 64);
  for (std::uint16_t i = 0; i < count; ++i) {
    std::uint8_t* r = p + kNetflowV5HeaderSize + std::size_t{i} * kNetflowV5RecordSize;
    store_be32(r, 0x0a000000 | (rng() & 0xffffff));
    store_be32(r + 4, 0xc0a80000 | (rng() & 0xffff));
    store_be32(r + 8, 0x0a0000fe);
    store_be16(r + 12, static_cast<std::uint16_t>(rng() % 48));
    store_be16(r + 14, static_cast<std::uint16_t>(rng() % 48));
    store_be32(r + 16, 1 + rng() % 1000);
    store_be32(r + 20, 40 + rng() % 1'500'000);
    const std::uint32_t last = 86'400'000 - rng() % 60'000;
    store_be32(r + 24, last - rng() % 120'000);
    store_be32(r + 28, last);
    store_be16(r + 32, static_cast<std::uint16_t>(rng()));
    store_be16(r + 34, static_cast<std::uint16_t>(rng() % 2 ? 443 : 53));
    r[37] = static_cast<std::uint8_t>(rng());
    r[38] = rng() % 2 ? 6 : 17;
    store_be16(r + 40, static_cast<std::uint16_t>(rng()));
    store_be16(r + 42, static_cast<std::uint16_t>(rng()));
    r[44] = 24;
    r[45] = 16;
  }
  return b;
}

class AppendToBatch : public FlowOutput {
 public:
  explicit AppendToBatch(FlowBatch& batch) : batch_(batch) {}
  void emit(FlowRecord& record) override { batch_.append(record); }

 private:
  FlowBatch& batch_;
};

void BM_DecodeV5IntoFlowBatch(benchmark::State& state) {
  std::mt19937 rng(42);
  std::vector<std::vector<std::uint8_t>> packets;
  for (std::uint32_t i = 0; i < 256; ++i) packets.push_back(make_v5(rng, kNetflowV5MaxCount, i * 30));
  const FlowSchema schema = FlowSchema::make(ClickHouseDialect::modern, {});
  FlowBatch batch(schema);
  AppendToBatch out(batch);
  FlowRecord scratch;
  Envelope env;
  env.received_ns = 1'700'000'001'000'000'000ULL;
  env.source_address = ip6_from_v4(0xc0000201);
  MetricsRegistry metrics;
  TemplateCache cache(metrics);
  std::size_t next = 0;
  std::uint64_t records = 0;
  for (auto _ : state) {
    env.payload = std::as_bytes(std::span(packets[next]));
    next = (next + 1) % packets.size();
    if (decode_netflow(env, cache, scratch, out) != DecodeStatus::ok) state.SkipWithError("decode failed");
    records += kNetflowV5MaxCount;
    // A batch of ~64k rows, then reuse: the outlet ships batches of this order.
    if (batch.rows() >= 65'520) batch.clear();
  }
  state.counters["records/s"] = benchmark::Counter(static_cast<double>(records), benchmark::Counter::kIsRate);
  state.SetItemsProcessed(static_cast<std::int64_t>(records));
}
BENCHMARK(BM_DecodeV5IntoFlowBatch);

class Discard : public FlowOutput {
 public:
  void emit(FlowRecord& record) override { benchmark::DoNotOptimize(record.bytes); }
};

// The decoder alone, without column appends, to split the cost.
void BM_DecodeV5Only(benchmark::State& state) {
  std::mt19937 rng(42);
  std::vector<std::vector<std::uint8_t>> packets;
  for (std::uint32_t i = 0; i < 256; ++i) packets.push_back(make_v5(rng, kNetflowV5MaxCount, i * 30));
  Discard out;
  FlowRecord scratch;
  Envelope env;
  MetricsRegistry metrics;
  TemplateCache cache(metrics);
  std::size_t next = 0;
  std::uint64_t records = 0;
  for (auto _ : state) {
    env.payload = std::as_bytes(std::span(packets[next]));
    next = (next + 1) % packets.size();
    benchmark::DoNotOptimize(decode_netflow(env, cache, scratch, out));
    records += kNetflowV5MaxCount;
  }
  state.counters["records/s"] = benchmark::Counter(static_cast<double>(records), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecodeV5Only);

// Counts what the inlet produces; stands in for the bus so only the receive path is measured.
class CountingProducer : public bus::Producer {
 public:
  bus::ProduceStatus produce(std::string_view, std::span<const std::byte>, std::span<const std::byte> value) override {
    count_.fetch_add(1, std::memory_order_relaxed);
    bytes_.fetch_add(value.size(), std::memory_order_relaxed);
    return bus::ProduceStatus::ok;
  }
  std::size_t flush(std::chrono::milliseconds) override { return 0; }
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> count_{0}, bytes_{0};
};

// Datagrams/s through UdpSource at zero loss: the benchmark thread sends full v5 datagrams with
// sendmmsg, keeping at most `kWindow` in flight so the socket buffer never overflows, while the
// source's worker thread(s) receive and produce. Arg: workers.
void BM_UdpSourceLoopback(benchmark::State& state) {
  spdlog::set_level(spdlog::level::warn);
  const int workers = static_cast<int>(state.range(0));
  MetricsRegistry metrics;
  CountingProducer producer;
  UdpSourceConfig config;
  config.name = "bench";
  config.listen = "127.0.0.1:0";
  config.workers = workers;
  config.topic = "flows";
  UdpSource source(config, producer, metrics);
  source.start();

  std::mt19937 rng(7);
  const auto datagram = make_v5(rng, kNetflowV5MaxCount, 0);
  constexpr int kBatch = 64;
  constexpr std::uint64_t kWindow = 2048;
  // One sending socket per worker so SO_REUSEPORT spreads the load over every worker.
  std::vector<int> fds;
  for (int i = 0; i < workers; ++i) fds.push_back(::socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(source.bound_port());
  std::vector<iovec> iov(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  for (int i = 0; i < kBatch; ++i) {
    iov[i].iov_base = const_cast<std::uint8_t*>(datagram.data());
    iov[i].iov_len = datagram.size();
    msgs[i].msg_hdr = {};
    msgs[i].msg_hdr.msg_name = &to;
    msgs[i].msg_hdr.msg_namelen = sizeof to;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }

  std::uint64_t sent = 0;
  std::size_t next_fd = 0;
  for (auto _ : state) {
    while (sent - producer.count() > kWindow) std::this_thread::yield();
    const int n = ::sendmmsg(fds[next_fd], msgs.data(), kBatch, 0);
    if (n != kBatch) {
      state.SkipWithError("sendmmsg sent a short batch");
      break;
    }
    next_fd = (next_fd + 1) % fds.size();
    sent += kBatch;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (producer.count() < sent && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  source.stop();
  for (int fd : fds) ::close(fd);
  const auto received = producer.count();
  state.counters["datagrams/s"] = benchmark::Counter(static_cast<double>(received), benchmark::Counter::kIsRate);
  state.counters["records/s"] =
      benchmark::Counter(static_cast<double>(received * kNetflowV5MaxCount), benchmark::Counter::kIsRate);
  state.counters["lost"] = static_cast<double>(sent - received);
  state.counters["kernel_drops"] = static_cast<double>(metrics.counter_total("inlet_udp_kernel_drops_total"));
  state.SetBytesProcessed(static_cast<std::int64_t>(received * datagram.size()));
}
BENCHMARK(BM_UdpSourceLoopback)->Arg(1)->Arg(2)->UseRealTime()->MinTime(2.0);

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();
