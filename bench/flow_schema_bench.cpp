// What the rollups and the exporters table cost at insert time on the embedded store: flow blocks inserted
// through flows_raw into the full schema (flows + 3 rollups + exporters) versus flows alone.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <ctime>
#include <memory>
#include <string>

#include "core/flow_batch.hpp"
#include "core/metrics.hpp"
#include "fixtures/process.hpp"
#include "sinks/chdb_store.hpp"
#include "sinks/flow_tables.hpp"

namespace {

using sluice::FlowRecord;
using sluice::FlowSchema;

// A recent minute's worth of varied flows: 8 exporters, 16 interfaces, 50 source ASes, addresses and
// ports all over, so the rollups see a realistic number of combinations per block.
std::string build_block(const FlowSchema& schema, std::int64_t rows) {
  static const char* const kNames[] = {"xe-0/0/0", "xe-0/0/1", "xe-0/0/2", "xe-0/0/3", "et-1/0/0", "et-1/0/1", "et-1/0/2",
                                       "et-1/0/3", "xe-2/0/0", "xe-2/0/1", "xe-2/0/2", "xe-2/0/3", "et-3/0/0", "et-3/0/1",
                                       "et-3/0/2", "et-3/0/3"};
  sluice::FlowBatch batch(schema);
  FlowRecord r;
  std::uint64_t state = 42;
  const auto now = static_cast<std::uint32_t>(std::time(nullptr));
  for (std::int64_t i = 0; i < rows; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const std::uint64_t x = state ^ (state >> 29);
    r.reset();
    r.time_received = now - 60 + static_cast<std::uint32_t>(i % 60);
    r.sampling_rate = 1000;
    r.exporter_address = sluice::ip6_from_v4(0xC0000201 + static_cast<std::uint32_t>(x % 8));
    r.exporter_name = kNames[x % 8];
    r.src_addr = sluice::ip6_from_v4(0x0A000000 + static_cast<std::uint32_t>((x >> 8) % 65536));
    r.dst_addr = sluice::ip6_from_v4(0xC6336400 + static_cast<std::uint32_t>((x >> 24) % 256));
    r.src_as = 64500 + static_cast<std::uint32_t>((x >> 32) % 50);
    r.dst_as = 15169;
    r.in_if = 10 + static_cast<std::uint32_t>((x >> 40) % 16);
    r.out_if = 30 + static_cast<std::uint32_t>((x >> 44) % 4);
    r.in_if_name = kNames[(x >> 40) % 16];
    r.out_if_name = kNames[(x >> 44) % 4];
    r.in_if_boundary = sluice::Boundary::external;
    r.etype = 0x0800;
    r.proto = (x & 1) ? 6 : 17;
    r.src_port = static_cast<std::uint16_t>(1024 + (x >> 16) % 60000);
    r.dst_port = (x & 2) ? 443 : 53;
    r.bytes = 64 + (x >> 20) % 1400;
    r.packets = 1 + (x >> 50) % 10;
    batch.append(r);
  }
  std::string body;
  batch.take_native(body);
  return body;
}

struct Env {
  sluice::testing::TempDir dir{"sluice-schema-bench"};
  sluice::MetricsRegistry metrics;
  FlowSchema schema = FlowSchema::make(sluice::ClickHouseDialect::modern, {});
  std::unique_ptr<sluice::sinks::ChdbStore> full, bare, no_exporters;
  std::uint64_t token = 0;

  Env() {
    full = std::make_unique<sluice::sinks::ChdbStore>(sluice::sinks::ChdbConfig{dir / "db", "", "full"}, metrics);
    bare = std::make_unique<sluice::sinks::ChdbStore>(sluice::sinks::ChdbConfig{dir / "db", "", "bare"}, metrics);
    no_exporters = std::make_unique<sluice::sinks::ChdbStore>(sluice::sinks::ChdbConfig{dir / "db", "", "noexp"}, metrics);
    sluice::sinks::ensure_flow_tables(*full, schema, {});
    sluice::sinks::ensure_flow_tables(*bare, schema, {});
    sluice::sinks::ensure_flow_tables(*no_exporters, schema, {});
    for (const char* v : {"exporters_in_consumer", "exporters_out_consumer"}) no_exporters->query(std::string("DROP TABLE noexp.") + v);
    for (const char* v : {"flows_1m_consumer", "flows_5m_consumer", "flows_1h_consumer", "exporters_in_consumer",
                          "exporters_out_consumer"}) {
      bare->query(std::string("DROP TABLE bare.") + v);
    }
  }
};

void BM_InsertThroughSchema(benchmark::State& state, std::unique_ptr<Env>& env) {
  if (!env) env = std::make_unique<Env>();
  auto& e = *env;
  const std::int64_t rows = state.range(0);
  const auto variant = state.range(1);
  const bool with_rollups = variant != 0;
  state.SetLabel(variant == 0 ? "flows only" : variant == 1 ? "flows + rollups + exporters" : "flows + rollups");
  auto& store = variant == 0 ? *e.bare : variant == 1 ? *e.full : *e.no_exporters;
  const std::string body = build_block(e.schema, rows);
  for (const char* t : {"flows", "flows_1m", "flows_5m", "flows_1h", "exporters"}) {
    store.query("TRUNCATE TABLE " + store.database() + "." + t);
  }
  for (auto _ : state) {
    store.insert(sluice::sinks::InsertRequest{"flows_raw", "Native", body, static_cast<std::uint64_t>(rows),
                                              "bench/" + std::to_string(e.token++)});
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["rows/s"] = benchmark::Counter(n * static_cast<double>(rows), benchmark::Counter::kIsRate);
  state.counters["rollup_1m_rows_per_block"] =
      with_rollups ? std::stod(store.query("SELECT count() FROM " + store.database() + ".flows_1m").data) / n : 0.0;
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<Env> env;
  benchmark::RegisterBenchmark("BM_InsertThroughSchema", [&env](benchmark::State& s) { BM_InsertThroughSchema(s, env); })
      ->ArgNames({"rows", "rollups"})
      ->ArgsProduct({{10'000, 100'000}, {0, 1, 2}})
      ->UseRealTime()  // the work happens on chDB's threads
      ->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  env.reset();  // close the engine before exit: chDB cannot be torn down by static destructors
  benchmark::Shutdown();
  return 0;
}
