// Benchmarks of the embedded store: flow rows inserted through flows_raw → view → flows (MergeTree),
// by batch size, and the building of those batches (FlowBatch::append + take_native) on their own;
// a job's rows (the job benchmark's 10 columns) inserted as one block or as many per-partition blocks,
// which is what merging coalesced batches saves.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/flow_batch.hpp"
#include "core/native_sort.hpp"
#include "core/metrics.hpp"
#include "fixtures/process.hpp"
#include "pipeline/jobs/column_mapping.hpp"
#include "sinks/chdb_store.hpp"

namespace {

using sluice::FlowBatch;
using sluice::FlowRecord;
using sluice::FlowSchema;

// Flows with the variety of a real exporter (addresses, ports, interfaces, sizes), so that sorting
// and compression in the store cost what they cost in production.
class FlowGenerator {
 public:
  void next(FlowRecord& r) {
    const std::uint64_t x = step();
    r.time_received = 1700000000 + static_cast<std::uint32_t>(n_ / 20000);
    r.time_flow_start = r.time_received - 30;
    r.time_flow_end = r.time_received - 1;
    r.sampling_rate = 1000;
    r.exporter_address = sluice::ip6_from_v4(0xC0000201 + static_cast<std::uint32_t>(x % 4));
    r.exporter_name = kExporters[x % 4];
    r.exporter_group = "paris";
    r.src_addr = sluice::ip6_from_v4(0x0A000000 + static_cast<std::uint32_t>((x >> 8) % 65536));
    r.dst_addr = sluice::ip6_from_v4(0xC6336400 + static_cast<std::uint32_t>((x >> 24) % 256));
    r.src_as = 64500 + static_cast<std::uint32_t>((x >> 32) % 50);
    r.dst_as = 15169;
    r.src_country[0] = 'F', r.src_country[1] = 'R';
    r.dst_country[0] = 'U', r.dst_country[1] = 'S';
    r.in_if = 10 + static_cast<std::uint32_t>((x >> 40) % 8);
    r.out_if = 20 + static_cast<std::uint32_t>((x >> 44) % 8);
    r.in_if_name = kInterfaces[(x >> 40) % 8];
    r.out_if_name = kInterfaces[(x >> 44) % 8];
    r.in_if_description = "transit: provider-a";
    r.in_if_boundary = sluice::Boundary::external;
    r.out_if_boundary = sluice::Boundary::internal;
    r.etype = 0x0800;
    r.proto = (x & 1) ? 6 : 17;
    r.src_port = static_cast<std::uint16_t>(1024 + (x >> 16) % 60000);
    r.dst_port = (x & 2) ? 443 : 53;
    r.bytes = 64 + (x >> 20) % 1400;
    r.packets = 1 + (x >> 50) % 10;
    r.flow_direction = sluice::FlowDirection::ingress;
    ++n_;
  }

 private:
  std::uint64_t step() {
    state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
    return state_ ^ (state_ >> 29);
  }
  static constexpr const char* kExporters[4] = {"edge-1", "edge-2", "edge-3", "edge-4"};
  static constexpr const char* kInterfaces[8] = {"xe-0/0/0", "xe-0/0/1", "xe-0/0/2", "xe-0/0/3",
                                                 "et-1/0/0", "et-1/0/1", "et-1/0/2", "et-1/0/3"};
  std::uint64_t state_ = 42;
  std::uint64_t n_ = 0;
};

long process_minor_faults() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

double process_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string build_block(const FlowSchema& schema, std::int64_t rows) {
  FlowBatch batch(schema);
  FlowGenerator gen;
  FlowRecord r;
  for (std::int64_t i = 0; i < rows; ++i) {
    gen.next(r);
    batch.append(r);
  }
  std::string body;
  batch.take_native(body);
  return body;
}

// One store for the whole run: chDB allows one data path per process.
struct StoreEnv {
  sluice::testing::TempDir dir{"sluice-chdb-bench"};
  sluice::MetricsRegistry metrics;
  FlowSchema schema = FlowSchema::make(sluice::ClickHouseDialect::modern, {});
  std::unique_ptr<sluice::sinks::ChdbStore> store;
  std::uint64_t token = 0;

  StoreEnv() {
    store = std::make_unique<sluice::sinks::ChdbStore>(sluice::sinks::ChdbConfig{dir / "db", "", "sluice"}, metrics);
    std::string raw, table;
    for (const auto* c : schema.columns) {
      if (!raw.empty()) raw += ", ", table += ", ";
      raw += std::string("`") + c->name + "` " + schema.wire_type(*c);
      table += std::string("`") + c->name + "` " + schema.table_type(*c);
    }
    // Two layouts of flows: ClickHouse's defaults (an insert of more than 10 MB writes a wide part,
    // two files per column), and one where fresh parts are compact (one file) until merges widen them.
    const std::string engine =
        " ENGINE = MergeTree PARTITION BY toYYYYMMDD(TimeReceived) "
        "ORDER BY (TimeReceived, ExporterAddress, InIf, OutIf) "
        "SETTINGS non_replicated_deduplication_window = 10000, allow_suspicious_low_cardinality_types = 1";
    for (const std::string suffix : {"", "_compact"}) {
      const std::string parts =
          suffix.empty() ? "" : ", min_bytes_for_wide_part = 268435456, min_rows_for_wide_part = 0";
      store->query("CREATE TABLE sluice.flows_raw" + suffix + " (" + raw + ") ENGINE = Null");
      store->query("CREATE TABLE sluice.flows" + suffix + " (" + table + ")" + engine + parts);
      store->query("CREATE MATERIALIZED VIEW sluice.flows_raw" + suffix + "_consumer TO sluice.flows" + suffix +
                   " AS SELECT * FROM sluice.flows_raw" + suffix);
    }
  }
};

void BM_ChdbInsertFlows(benchmark::State& state, std::unique_ptr<StoreEnv>& env) {
  if (!env) env = std::make_unique<StoreEnv>();  // opened only when an insert benchmark runs
  auto& e = *env;
  const std::int64_t rows = state.range(0);
  const bool compact = state.range(1) != 0;
  state.SetLabel(compact ? "compact parts" : "wide parts");
  const std::string body = build_block(e.schema, rows);
  const std::string table = compact ? "flows_raw_compact" : "flows_raw";
  // Each case starts empty, so that merges left by the previous case do not bill this one; the
  // merges its own inserts cause are part of its cost.
  e.store->query("TRUNCATE TABLE sluice.flows");
  e.store->query("TRUNCATE TABLE sluice.flows_compact");
  const double cpu_before = process_cpu_seconds();
  const long faults_before = process_minor_faults();
  for (auto _ : state) {
    e.store->insert(sluice::sinks::InsertRequest{table, "Native", body, static_cast<std::uint64_t>(rows),
                                                 "bench/" + std::to_string(e.token++)});
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["rows/s"] = benchmark::Counter(n * static_cast<double>(rows), benchmark::Counter::kIsRate);
  state.counters["MB/s"] =
      benchmark::Counter(n * static_cast<double>(body.size()) / 1e6, benchmark::Counter::kIsRate);
  state.counters["body_MB"] = static_cast<double>(body.size()) / 1e6;
  // Every thread of the process (insert pipeline and the background merges it caused meanwhile): what
  // an outlet with the embedded store pays per million flows, whatever the wall-clock rate.
  state.counters["cpu_s_per_M_rows"] = (process_cpu_seconds() - cpu_before) / (n * static_cast<double>(rows) / 1e6);
  // Pages the engine touched fresh (the kernel clears each one): memory it did not reuse between inserts.
  state.counters["faults_per_M_rows"] =
      static_cast<double>(process_minor_faults() - faults_before) / (n * static_cast<double>(rows) / 1e6);
}

// The job benchmark's mapping (bench/job-throughput.sh).
constexpr std::pair<const char*, const char*> kJobColumns[] = {
    {"id", "UInt64"},  {"ts", "DateTime64(3)"}, {"host", "LowCardinality(String)"},
    {"method", "LowCardinality(String)"}, {"path", "String"}, {"status", "UInt16"},
    {"bytes", "UInt64"}, {"latency", "Float64"}, {"user", "String"}, {"ok", "Bool"}};

// 300 000 rows of the job benchmark's mapping in `blocks` blocks, one after another in one body (what a
// sink sent for coalesced batches before it merged them into one block).
std::string job_body(const sluice::pipeline::jobs::MappingSpec& mapping, int rows, int blocks, bool sorted = false,
                     int first = 0) {
  using sluice::transforms::FieldType;
  static const char* kMethods[] = {"GET", "POST", "PUT", "DELETE"};
  static const int kHostsAsText[40] = {0,  1,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 2,  20, 21, 22, 23, 24, 25, 26,
                                       27, 28, 29, 3,  30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 4,  5,  6,  7,  8,  9};
  std::string body;
  const auto compiled = sluice::pipeline::jobs::compile_mapping(mapping, sluice::ClickHouseDialect::modern);
  for (int b = 0; b < blocks; ++b) {
    auto writer = compiled->make_writer();
    for (int k = b; k < rows; k += blocks) {
      // Sorted: the rows in the table's order (host, ts), host being "edge-<i % 40>...", compared as text.
      const int per_host = rows / 40;
      const int i = first + (sorted ? kHostsAsText[k / per_host] + 40 * (k % per_host) : k);
      sluice::transforms::LogEvent e;
      e.set("id", std::to_string(i), FieldType::number);
      e.set("ts", std::to_string(1763700000000 + i), FieldType::number);
      e.set("host", "edge-" + std::to_string(i % 40) + ".example.net");
      e.set("method", kMethods[i % 4]);
      e.set("path", "/api/v1/items/" + std::to_string(i % 977));
      e.set("status", std::to_string(200 + (i % 5) * 100), FieldType::number);
      e.set("bytes", std::to_string(i * 7 % 100000), FieldType::number);
      e.set("latency", std::to_string((i % 1000) / 7.0), FieldType::number);
      e.set("user", "u" + std::to_string(i % 5000));
      e.set("ok", i % 9 ? "true" : "false", FieldType::boolean);
      if (writer->append(e, {})) std::abort();
    }
    body += writer->take().body;
  }
  return body;
}

void BM_ChdbInsertJobRows(benchmark::State& state, std::unique_ptr<StoreEnv>& env) {
  if (!env) env = std::make_unique<StoreEnv>();
  auto& e = *env;
  const int blocks = static_cast<int>(state.range(0));
  // 0: rows as the partitions' batches interleave them; 1: written in the table's order; 2: put in that
  // order by NativeSorter before each insert (its work counted), as a job's sink does for chDB.
  const auto order = state.range(1);
  constexpr int kRows = 300'000;
  sluice::pipeline::jobs::MappingSpec mapping;
  mapping.table = "events";
  mapping.order_by = {"host", "ts"};
  std::string ddl;
  for (const auto& [name, type] : kJobColumns) {
    mapping.columns.push_back({name, type, "", std::nullopt, false});
    ddl += std::string(ddl.empty() ? "" : ", ") + name + " " + type;
  }
  e.store->query("CREATE TABLE IF NOT EXISTS sluice.events (" + ddl + ") ENGINE = MergeTree ORDER BY (host, ts)");
  e.store->query("TRUNCATE TABLE sluice.events");
  const std::string body = job_body(mapping, kRows, blocks, order == 1);
  state.SetLabel((blocks == 1 ? "one block" : std::to_string(blocks) + " blocks") +
                 (order == 1 ? ", written sorted" : order == 2 ? ", sorted before each insert" : ""));
  sluice::NativeSorter sorter;
  std::string sorted_body;
  const std::vector<std::string> key = {"host", "ts"};
  const double cpu_before = process_cpu_seconds();
  const long faults_before = process_minor_faults();
  for (auto _ : state) {
    if (order == 2 && sorter.sort(body, key, sorted_body) != sluice::NativeSorter::Outcome::sorted) {
      state.SkipWithError("the block could not be sorted");
      break;
    }
    e.store->insert(sluice::sinks::InsertRequest{"events", "Native", order == 2 ? sorted_body : body, kRows, ""});
  }
  const auto n = static_cast<double>(state.iterations()) * kRows;
  state.counters["rows/s"] = benchmark::Counter(n, benchmark::Counter::kIsRate);
  state.counters["cpu_s_per_M_rows"] = (process_cpu_seconds() - cpu_before) / (n / 1e6);
  state.counters["faults_per_M_rows"] = static_cast<double>(process_minor_faults() - faults_before) / (n / 1e6);
}

// NativeSorter alone on the rows of BM_ChdbInsertJobRows (one block, in the order partitions'
// batches interleave them), by (host, ts): the work a job's sink adds to spare the store its sort.
void BM_NativeSortJobRows(benchmark::State& state) {
  sluice::pipeline::jobs::MappingSpec mapping;
  mapping.table = "events";
  for (const auto& [name, type] : kJobColumns) mapping.columns.push_back({name, type, "", std::nullopt, false});
  const int rows = static_cast<int>(state.range(0));
  const int blocks = static_cast<int>(state.range(1));
  // Several blocks: as a sink gets them from a round of per-partition batches, merged as they are sorted.
  std::vector<std::string> bodies;
  for (int b = 0; b < blocks; ++b) bodies.push_back(job_body(mapping, rows / blocks, 1, false, b * (rows / blocks)));
  sluice::NativeSorter sorter;
  std::string sorted;
  const std::vector<std::string> key = {"host", "ts"};
  if (state.range(2) != 0) {  // each block sorted first, as a job's batches are when taken
    for (auto& body : bodies) {
      if (sorter.sort(body, key, sorted) == sluice::NativeSorter::Outcome::sorted) body.swap(sorted);
    }
  }
  const std::vector<std::string_view> views(bodies.begin(), bodies.end());
  for (auto _ : state) {
    if (sorter.sort(views, key, sorted) != sluice::NativeSorter::Outcome::sorted) state.SkipWithError("not sorted");
    benchmark::DoNotOptimize(sorted.data());
  }
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * rows, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_NativeSortJobRows)
    ->ArgNames({"rows", "blocks", "sorted_blocks"})
    ->Args({2'000, 1, 0})
    ->Args({300'000, 1, 0})
    ->Args({300'000, 300, 0})
    ->Args({300'000, 300, 1})
    ->Unit(benchmark::kMillisecond);

void BM_FlowBatchBuild(benchmark::State& state) {
  const auto schema = FlowSchema::make(sluice::ClickHouseDialect::modern, {});
  const std::int64_t rows = state.range(0);
  FlowBatch batch(schema);
  FlowGenerator gen;
  FlowRecord r;
  std::string body;
  for (auto _ : state) {
    for (std::int64_t i = 0; i < rows; ++i) {
      gen.next(r);
      batch.append(r);
    }
    body.clear();
    batch.take_native(body);
    benchmark::DoNotOptimize(body.data());
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["rows/s"] = benchmark::Counter(n * static_cast<double>(rows), benchmark::Counter::kIsRate);
  state.counters["bytes/row"] = static_cast<double>(body.size()) / static_cast<double>(rows);
}
BENCHMARK(BM_FlowBatchBuild)->Arg(10'000)->Arg(100'000)->Arg(500'000)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<StoreEnv> env;
  benchmark::RegisterBenchmark("BM_ChdbInsertFlows",
                               [&env](benchmark::State& state) { BM_ChdbInsertFlows(state, env); })
      ->ArgNames({"rows", "compact"})
      ->ArgsProduct({{10'000, 100'000, 250'000, 500'000}, {0, 1}})
      ->UseRealTime()  // the work happens on chDB's threads
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_ChdbInsertJobRows",
                               [&env](benchmark::State& state) { BM_ChdbInsertJobRows(state, env); })
      ->ArgNames({"blocks", "sorted"})
      ->Args({1, 0})
      ->Args({1, 1})
      ->Args({1, 2})
      ->Args({300, 0})
      ->Iterations(10)  // each case starts on an empty table: the same number of parts and merges
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  env.reset();  // close the engine before exit: chDB cannot be torn down by static destructors
  benchmark::Shutdown();
  return 0;
}
