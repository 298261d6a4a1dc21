// Benchmarks of sFlow v5 decoding: datagrams of 8 flow samples, each with a 128-byte raw
// Ethernet/802.1Q/IPv4/TCP header and an extended switch record (what switches commonly send),
// decoded into a FlowBatch and decoded alone.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "core/bytes.hpp"
#include "core/flow_batch.hpp"
#include "decoders/sflow.hpp"

namespace sluice {
namespace {

constexpr std::uint32_t kSamplesPerDatagram = 8;
constexpr std::uint32_t kHeaderBytes = 128;

void put32(std::vector<std::uint8_t>& b, std::uint32_t v) {
  b.resize(b.size() + 4);
  store_be32(b.data() + b.size() - 4, v);
}

std::vector<std::uint8_t> make_datagram(std::mt19937& rng, std::uint32_t sequence) {
  std::vector<std::uint8_t> b;
  put32(b, 5);
  put32(b, 1);
  put32(b, 0xc0000201);
  put32(b, 0);
  put32(b, sequence);
  put32(b, 86'400'000);
  put32(b, kSamplesPerDatagram);
  for (std::uint32_t s = 0; s < kSamplesPerDatagram; ++s) {
    put32(b, 1);  // flow sample
    const std::size_t length_at = b.size();
    put32(b, 0);
    put32(b, sequence * kSamplesPerDatagram + s);
    put32(b, 3);
    put32(b, 1024);
    put32(b, 1024 * (sequence + 1));
    put32(b, 0);
    put32(b, rng() % 48);
    put32(b, rng() % 48);
    put32(b, 2);  // records
    put32(b, 1001);
    put32(b, 16);
    put32(b, 100);
    put32(b, 0);
    put32(b, 200);
    put32(b, 0);
    put32(b, 1);  // raw header
    put32(b, 16 + kHeaderBytes);
    put32(b, 1);
    put32(b, 64 + rng() % 1450);
    put32(b, 4);
    put32(b, kHeaderBytes);
    std::vector<std::uint8_t> h(kHeaderBytes, 0x5a);
    const std::uint8_t eth[] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0x00, 100, 0x08, 0x00};
    std::copy(std::begin(eth), std::end(eth), h.begin());
    std::uint8_t* ip = h.data() + sizeof eth;
    ip[0] = 0x45;
    ip[1] = 0x28;
    store_be16(ip + 2, 1400);
    ip[8] = 64;
    ip[9] = 6;
    store_be32(ip + 12, 0x0a000000 | (rng() & 0xffffff));
    store_be32(ip + 16, 0xc0a80000 | (rng() & 0xffff));
    std::uint8_t* tcp = ip + 20;
    store_be16(tcp, static_cast<std::uint16_t>(rng()));
    store_be16(tcp + 2, rng() % 2 ? 443 : 80);
    tcp[12] = 0x50;
    tcp[13] = 0x18;
    b.insert(b.end(), h.begin(), h.end());
    store_be32(b.data() + length_at, static_cast<std::uint32_t>(b.size() - length_at - 4));
  }
  return b;
}

std::vector<std::vector<std::uint8_t>> make_datagrams() {
  std::mt19937 rng(42);
  std::vector<std::vector<std::uint8_t>> out;
  for (std::uint32_t i = 0; i < 256; ++i) out.push_back(make_datagram(rng, i));
  return out;
}

class AppendToBatch : public FlowOutput {
 public:
  explicit AppendToBatch(FlowBatch& batch) : batch_(batch) {}
  void emit(FlowRecord& record) override { batch_.append(record); }

 private:
  FlowBatch& batch_;
};

class Discard : public FlowOutput {
 public:
  void emit(FlowRecord& record) override { benchmark::DoNotOptimize(record.bytes); }
};

void BM_DecodeSflowIntoFlowBatch(benchmark::State& state) {
  const auto datagrams = make_datagrams();
  const FlowSchema schema = FlowSchema::make(ClickHouseDialect::modern, {});
  FlowBatch batch(schema);
  AppendToBatch out(batch);
  FlowRecord scratch;
  Envelope env;
  env.received_ns = 1'700'000'001'000'000'000ULL;
  env.kind = SourceKind::sflow;
  env.source_address = ip6_from_v4(0xc0000201);
  std::size_t next = 0;
  std::uint64_t records = 0;
  for (auto _ : state) {
    env.payload = std::as_bytes(std::span(datagrams[next]));
    next = (next + 1) % datagrams.size();
    if (decode_sflow(env, scratch, out) != DecodeStatus::ok) state.SkipWithError("decode failed");
    records += kSamplesPerDatagram;
    if (batch.rows() >= 65'520) batch.clear();  // batches of the order the outlet ships
  }
  state.counters["records/s"] = benchmark::Counter(static_cast<double>(records), benchmark::Counter::kIsRate);
  state.SetItemsProcessed(static_cast<std::int64_t>(records));
}
BENCHMARK(BM_DecodeSflowIntoFlowBatch);

void BM_DecodeSflowOnly(benchmark::State& state) {
  const auto datagrams = make_datagrams();
  Discard out;
  FlowRecord scratch;
  Envelope env;
  env.kind = SourceKind::sflow;
  std::size_t next = 0;
  std::uint64_t records = 0;
  for (auto _ : state) {
    env.payload = std::as_bytes(std::span(datagrams[next]));
    next = (next + 1) % datagrams.size();
    benchmark::DoNotOptimize(decode_sflow(env, scratch, out));
    records += kSamplesPerDatagram;
  }
  state.counters["records/s"] = benchmark::Counter(static_cast<double>(records), benchmark::Counter::kIsRate);
  state.SetItemsProcessed(static_cast<std::int64_t>(records));
}
BENCHMARK(BM_DecodeSflowOnly);

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();
