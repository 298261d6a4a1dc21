// Memory bus + consumer job + null store: how many records per second the bus machinery carries.
#include <benchmark/benchmark.h>

#include <thread>

#include "bus/memory_bus.hpp"
#include "core/envelope.hpp"
#include "fixtures/process.hpp"
#include "pipeline/batch_sink.hpp"
#include "pipeline/consumer_job.hpp"
#include "sinks/null_store.hpp"

namespace sluice {
namespace {

class CountingBuilder final : public pipeline::BatchBuilder {
 public:
  void add(const bus::Message& m) override {
    ++rows_;
    bytes_ += m.value.size();
  }
  std::uint64_t rows() const override { return rows_; }
  std::uint64_t bytes() const override { return bytes_; }
  sinks::InsertRequest take() override {
    sinks::InsertRequest r;
    r.table = "null";
    r.rows = rows_;
    rows_ = bytes_ = 0;
    return r;
  }

 private:
  std::uint64_t rows_ = 0, bytes_ = 0;
};

// One producer thread (the inlet) and one consumer thread (the outlet), 100-byte envelopes.
void BM_MemoryBusEndToEnd(benchmark::State& state) {
  const auto records = static_cast<std::uint64_t>(state.range(0));
  std::string payload(100 - kEnvelopeHeaderSize, 'p');
  Envelope e;
  e.kind = SourceKind::netflow;
  e.payload = std::as_bytes(std::span(payload));
  std::vector<std::byte> value;
  encode_envelope(e, value);
  for (auto _ : state) {
    MetricsRegistry metrics;
    bus::MemoryBus bus({4, 256 << 20}, metrics);
    sinks::NullStore store;
    testing::TempDir dir("sluice-bench");
    pipeline::BatchSink sink("null", store, {1, 16, std::chrono::milliseconds(1), std::chrono::milliseconds(5), dir / "dead"}, metrics);
    auto consumer = bus.make_consumer(0, 1);
    pipeline::ConsumerJob job({"bench", 100'000, 64 << 20, std::chrono::milliseconds(100), std::chrono::milliseconds(100),
                               std::chrono::seconds(10)},
                              *consumer, [](const bus::PartitionRef&) { return std::make_unique<CountingBuilder>(); },
                              sink, metrics);
    std::thread outlet([&] { consumer->run(job); });
    std::uint64_t refused = 0;
    for (std::uint64_t i = 0; i < records; ++i) {
      const std::uint64_t key = i & 63;
      while (bus.producer().produce("flows", std::as_bytes(std::span(&key, 1)), value) != bus::ProduceStatus::ok) {
        ++refused;  // bus full: the consumer is behind; a real inlet would count a drop
        std::this_thread::yield();
      }
    }
    while (store.rows() + 0 < records && bus.queued_bytes() > 0) std::this_thread::yield();
    consumer->stop();
    outlet.join();
    sink.stop(std::chrono::steady_clock::now() + std::chrono::seconds(10));
    if (store.rows() != records) state.SkipWithError("records lost");
    state.counters["refused_while_full"] = static_cast<double>(refused);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * records));
}
BENCHMARK(BM_MemoryBusEndToEnd)->Arg(5'000'000)->Unit(benchmark::kMillisecond)->UseRealTime();

// Producer side alone: the cost the inlet pays per record.
void BM_MemoryBusProduce(benchmark::State& state) {
  MetricsRegistry metrics;
  bus::MemoryBus bus({4, 1ull << 34}, metrics);
  std::vector<std::byte> value(100);
  std::uint64_t i = 0;
  for (auto _ : state) {
    const std::uint64_t key = i++ & 63;
    benchmark::DoNotOptimize(bus.producer().produce("flows", std::as_bytes(std::span(&key, 1)), value));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MemoryBusProduce)->Iterations(5'000'000);

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();
