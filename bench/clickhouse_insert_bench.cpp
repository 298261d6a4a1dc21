// Insert throughput into the real ClickHouse server (Debian 18.16) by batch size and body compression.
//
//   build/bench/clickhouse_insert_bench --benchmark_min_time=2 --benchmark_repetitions=3
//
// BM_Insert: one Native block of flows per iteration through ClickHouseHttpStore, wall-clock rates since
// most of the work is the server's. Third argument: 0 = into flows_raw (Null) → materialized view → flows
// (MergeTree), as the outlet writes them; 1 = into a Null table with no view, i.e. transfer, decompression
// and parsing only. BM_Compress: the client-side framing alone (CPU).
#include <benchmark/benchmark.h>

#include <array>
#include <map>
#include <memory>
#include <string>

#include "core/envelope.hpp"
#include "core/flow_batch.hpp"
#include "core/metrics.hpp"
#include "fixtures/clickhouse_server.hpp"
#include "sinks/clickhouse_compression.hpp"
#include "sinks/clickhouse_http_store.hpp"

namespace {

using sluice::sinks::ClickHouseHttpConfig;
using Compression = ClickHouseHttpConfig::Compression;

const std::array<std::string, 8> kNames = {"edge-1", "edge-2", "core-1", "core-2",
                                           "xe-0/0/0", "xe-0/0/1", "et-1/0/0", "transit-a"};

sluice::FlowRecord flow(std::uint32_t i) {
  sluice::FlowRecord r;
  r.time_received = 1'700'000'000 + i / 1000;
  r.time_flow_start = r.time_received - 10;
  r.time_flow_end = r.time_received;
  r.sampling_rate = 1000;
  r.exporter_address = sluice::ip6_from_v4(0x0A000001 + i % 16);
  r.exporter_name = kNames[i % 4];
  r.exporter_group = "lab";
  r.src_addr = sluice::ip6_from_v4(0xC0A80000 + i % 65536);
  r.dst_addr = sluice::ip6_from_v4(0x08080000 + (i * 7919) % 4096);
  r.src_as = 64500 + i % 17;
  r.dst_as = 15169 + i % 5;
  r.in_if = i % 48;
  r.out_if = 48 + i % 4;
  r.in_if_name = kNames[4 + i % 3];
  r.out_if_name = kNames[7];
  r.in_if_speed = r.out_if_speed = 100000;
  r.in_if_boundary = sluice::Boundary::external;
  r.out_if_boundary = sluice::Boundary::internal;
  r.etype = 0x0800;
  r.proto = i % 3 ? 6 : 17;
  r.src_port = static_cast<std::uint16_t>(1024 + i % 60000);
  r.dst_port = i % 2 ? 443 : 53;
  r.bytes = 64 + i % 1400;
  r.packets = 1 + i % 20;
  r.flow_direction = sluice::FlowDirection::ingress;
  return r;
}

const char* name_of(Compression c) {
  return c == Compression::none ? "none" : c == Compression::lz4 ? "lz4" : "zstd";
}

// One server for the whole run, with the flow tables; one store per compression; bodies built once.
class Env {
 public:
  static Env& get() {
    static Env env;
    return env;
  }
  sluice::sinks::ClickHouseHttpStore& store(Compression c) {
    auto& s = stores_[c];
    if (!s) {
      ClickHouseHttpConfig config;
      config.url = server_.url();
      config.compression = c;
      s = std::make_unique<sluice::sinks::ClickHouseHttpStore>(config, metrics_);
    }
    return *s;
  }
  // Each case starts from an empty table, so background merges of earlier cases do not weigh on it.
  void reset() { server_.query("TRUNCATE TABLE sluice.flows"); }
  const std::string& native(std::size_t rows) {
    auto& body = bodies_[rows];
    if (body.empty()) {
      sluice::FlowBatch batch(schema_);
      for (std::uint32_t i = 0; i < rows; ++i) batch.append(flow(i));
      batch.take_native(body);
    }
    return body;
  }

 private:
  Env() : schema_(sluice::FlowSchema::make(sluice::ClickHouseDialect::legacy, {})) {
    std::string columns;
    for (const auto* c : schema_.columns) {
      if (!columns.empty()) columns += ", ";
      columns += std::string(c->name) + " " + schema_.table_type(*c);
    }
    server_.query("CREATE DATABASE sluice");
    server_.query("CREATE TABLE sluice.flows (" + columns +
                  ") ENGINE = MergeTree PARTITION BY toYYYYMMDD(TimeReceived) "
                  "ORDER BY (toStartOfFiveMinute(TimeReceived), ExporterAddress, InIfName, OutIfName)");
    server_.query("CREATE TABLE sluice.flows_raw (" + columns + ") ENGINE = Null");
    server_.query("CREATE MATERIALIZED VIEW sluice.flows_raw_consumer TO sluice.flows AS SELECT * FROM sluice.flows_raw");
    server_.query("CREATE TABLE sluice.flows_discard (" + columns + ") ENGINE = Null");
  }

  sluice::testing::ClickHouseServer server_;
  sluice::MetricsRegistry metrics_;
  sluice::FlowSchema schema_;
  std::map<Compression, std::unique_ptr<sluice::sinks::ClickHouseHttpStore>> stores_;
  std::map<std::size_t, std::string> bodies_;
};

void BM_Insert(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0));
  const auto compression = static_cast<Compression>(state.range(1));
  auto& env = Env::get();
  auto& store = env.store(compression);
  sluice::sinks::InsertRequest req;
  req.table = state.range(2) == 0 ? "flows_raw" : "flows_discard";
  req.format = "Native";
  req.rows = rows;
  req.body = env.native(rows);
  env.reset();
  store.insert(req);  // warm-up: opens the connection, loads the table's metadata
  for (auto _ : state) {
    try {
      store.insert(req);
    } catch (const sluice::sinks::StoreError& e) {
      state.SkipWithError(e.what());
      break;
    }
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["rows_per_s"] = benchmark::Counter(n * static_cast<double>(rows), benchmark::Counter::kIsRate);
  state.counters["native_MB_per_s"] =
      benchmark::Counter(n * static_cast<double>(req.body.size()) / 1e6, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(name_of(compression)) + (state.range(2) == 0 ? " mergetree" : " null"));
}

void BM_Compress(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0));
  const auto codec = state.range(1) == 1 ? sluice::sinks::ClickHouseCodec::lz4 : sluice::sinks::ClickHouseCodec::zstd;
  const auto& native = Env::get().native(rows);
  sluice::sinks::ClickHouseCompressor compressor(codec);
  std::string out;
  for (auto _ : state) {
    compressor.compress(native, out);
    benchmark::DoNotOptimize(out.data());
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["rows_per_s"] = benchmark::Counter(n * static_cast<double>(rows), benchmark::Counter::kIsRate);
  state.counters["native_MB_per_s"] =
      benchmark::Counter(n * static_cast<double>(native.size()) / 1e6, benchmark::Counter::kIsRate);
  state.counters["ratio"] = static_cast<double>(native.size()) / static_cast<double>(out.size());
  state.SetLabel(codec == sluice::sinks::ClickHouseCodec::lz4 ? "lz4" : "zstd");
}

void insert_args(benchmark::internal::Benchmark* b) {
  for (long table : {0L, 1L}) {
    for (long rows : {10'000L, 100'000L}) {
      for (long c : {static_cast<long>(Compression::none), static_cast<long>(Compression::lz4),
                     static_cast<long>(Compression::zstd)}) {
        b->Args({rows, c, table});
      }
    }
  }
}

BENCHMARK(BM_Insert)->Apply(insert_args)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Compress)->Args({100'000, 1})->Args({100'000, 2})->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
