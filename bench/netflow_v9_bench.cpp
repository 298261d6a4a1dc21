// Benchmarks of NetFlow v9 and IPFIX decoding with templates cached: softflowd-style datagrams
// (its IPv4 template of 18 fields, 42-byte records, ~1.4 kB datagrams) into a FlowBatch and
// decode-only, in flow records per second on one core.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "core/bytes.hpp"
#include "core/flow_batch.hpp"
#include "core/metrics.hpp"
#include "decoders/netflow.hpp"

namespace sluice {
namespace {

constexpr std::uint16_t kTemplateId = 1024;
constexpr std::size_t kRecordsPerDatagram = 32;
// softflowd's IPv4 template (-T vlan): element id and length.
constexpr std::uint16_t kFields[][2] = {{8, 4},  {12, 4}, {22, 4}, {21, 4}, {1, 4},  {2, 4},
                                        {10, 4}, {14, 4}, {61, 1}, {136, 1}, {7, 2}, {11, 2},
                                        {4, 1},  {6, 1},  {60, 1}, {5, 1},  {58, 2}, {59, 2}};

class Writer {
 public:
  void u8(std::uint64_t v) { b.push_back(static_cast<std::uint8_t>(v)); }
  void u16(std::uint64_t v) { u8(v >> 8), u8(v); }
  void u32(std::uint64_t v) { u16(v >> 16), u16(v); }
  std::vector<std::uint8_t> b;
};

void header(Writer& w, int version) {
  if (version == 9) {
    w.u16(9), w.u16(kRecordsPerDatagram), w.u32(86'400'000), w.u32(1'700'000'000), w.u32(1), w.u32(0);
  } else {
    w.u16(10), w.u16(0), w.u32(1'700'000'000), w.u32(1), w.u32(0);
  }
}

void finish(Writer& w, int version) {
  if (version == 10) store_be16(w.b.data() + 2, static_cast<std::uint16_t>(w.b.size()));
}

std::vector<std::uint8_t> template_datagram(int version) {
  Writer w;
  header(w, version);
  w.u16(version == 9 ? 0 : 2), w.u16(4 + 4 + 4 * std::size(kFields));
  w.u16(kTemplateId), w.u16(std::size(kFields));
  for (const auto& f : kFields) w.u16(f[0]), w.u16(f[1]);
  finish(w, version);
  return w.b;
}

std::vector<std::uint8_t> data_datagram(std::mt19937& rng, int version) {
  Writer w;
  header(w, version);
  const std::size_t set_start = w.b.size();
  w.u16(kTemplateId), w.u16(0);
  for (std::size_t i = 0; i < kRecordsPerDatagram; ++i) {
    w.u32(0x0a000000 | (rng() & 0xffffff)), w.u32(0xc0a80000 | (rng() & 0xffff));
    const std::uint32_t last = 86'400'000 - rng() % 60'000;
    w.u32(last - rng() % 120'000), w.u32(last);
    w.u32(40 + rng() % 1'500'000), w.u32(1 + rng() % 1000);
    w.u32(0), w.u32(0), w.u8(rng() % 2), w.u8(1);
    w.u16(rng()), w.u16(rng() % 2 ? 443 : 53), w.u8(rng() % 2 ? 6 : 17), w.u8(rng()), w.u8(4), w.u8(0);
    w.u16(100 + rng() % 50), w.u16(0);
  }
  while ((w.b.size() - set_start) % 4) w.u8(0);
  store_be16(w.b.data() + set_start + 2, static_cast<std::uint16_t>(w.b.size() - set_start));
  finish(w, version);
  return w.b;
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

template <bool kIntoBatch>
void run(benchmark::State& state, int version) {
  std::mt19937 rng(42);
  MetricsRegistry metrics;
  TemplateCache cache(metrics);
  FlowRecord scratch;
  Discard discard;
  Envelope env;
  env.received_ns = 1'700'000'001'000'000'000ULL;
  env.source_address = ip6_from_v4(0xc0000201);
  const auto tpl = template_datagram(version);
  env.payload = std::as_bytes(std::span(tpl));
  if (decode_netflow(env, cache, scratch, discard) != DecodeStatus::ok) state.SkipWithError("template refused");
  std::vector<std::vector<std::uint8_t>> packets;
  for (int i = 0; i < 256; ++i) packets.push_back(data_datagram(rng, version));

  const FlowSchema schema = FlowSchema::make(ClickHouseDialect::modern, {});
  FlowBatch batch(schema);
  AppendToBatch append(batch);
  FlowOutput& out = kIntoBatch ? static_cast<FlowOutput&>(append) : discard;
  std::size_t next = 0;
  std::uint64_t records = 0;
  for (auto _ : state) {
    env.payload = std::as_bytes(std::span(packets[next]));
    next = (next + 1) % packets.size();
    if (decode_netflow(env, cache, scratch, out) != DecodeStatus::ok) state.SkipWithError("decode failed");
    records += kRecordsPerDatagram;
    if (kIntoBatch && batch.rows() >= 65'520) batch.clear();  // outlet-sized batches, reused
  }
  state.counters["records/s"] = benchmark::Counter(static_cast<double>(records), benchmark::Counter::kIsRate);
  state.SetItemsProcessed(static_cast<std::int64_t>(records));
}

void BM_DecodeV9IntoFlowBatch(benchmark::State& state) { run<true>(state, 9); }
void BM_DecodeV9Only(benchmark::State& state) { run<false>(state, 9); }
void BM_DecodeIpfixIntoFlowBatch(benchmark::State& state) { run<true>(state, 10); }
void BM_DecodeIpfixOnly(benchmark::State& state) { run<false>(state, 10); }
BENCHMARK(BM_DecodeV9IntoFlowBatch);
BENCHMARK(BM_DecodeV9Only);
BENCHMARK(BM_DecodeIpfixIntoFlowBatch);
BENCHMARK(BM_DecodeIpfixOnly);

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();
