// Column mapping throughput: rows per second per core through MappedRowWriter::append() for a 10-column
// mapping (String, UInt64, Float64, DateTime64(3), LowCardinality(String)), blocks taken every 64 Ki
// rows as a batch would, and heap allocations per row once warm (operator new counted here).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "pipeline/jobs/column_mapping.hpp"

namespace {
std::atomic<std::uint64_t> allocations{0};
}

// The replacements below pair malloc with free themselves; GCC cannot see that through inlining.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

using namespace sluice::pipeline::jobs;
using sluice::transforms::FieldType;
using sluice::transforms::LogEvent;

MappingSpec ten_columns() {
  MappingSpec m;
  m.table = "requests";
  auto col = [](const char* name, const char* type) { return ColumnSpec{name, type, "", std::nullopt, false}; };
  m.columns = {col("ts", "DateTime64(3)"),       col("host", "LowCardinality(String)"),
               col("service", "LowCardinality(String)"), col("path", "String"),
               col("user_agent", "String"),      col("trace_id", "String"),
               col("bytes", "UInt64"),           col("status", "UInt64"),
               col("duration", "Float64"),       col("ratio", "Float64")};
  return m;
}

// Records as the JSON decoder leaves them: typed fields in the order the producer wrote them.
std::vector<LogEvent> records(bool rfc3339_time) {
  std::vector<LogEvent> out(1024);
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto& e = out[i];
    const std::int64_t ms = 1'704'164'645'000 + static_cast<std::int64_t>(i) * 7;
    if (rfc3339_time) {
      e.set("ts", "2024-01-02T03:04:" + std::to_string(10 + i % 50) + "." + std::to_string(100 + i % 900) + "Z");
    } else {
      e.set("ts", std::to_string(ms), FieldType::number);
    }
    e.set("host", "web-" + std::to_string(i % 16));
    e.set("service", i % 3 ? "checkout" : "search");
    e.set("path", "/api/v1/orders/" + std::to_string(i * 31));
    e.set("user_agent", "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/" + std::to_string(100 + i % 20));
    e.set("trace_id", "4bf92f3577b34da6a3ce929d0e0e" + std::to_string(1000 + i));
    e.set("bytes", std::to_string(1000 + i * 13), FieldType::number);
    e.set("status", i % 10 ? "200" : "503", FieldType::number);
    e.set("duration", std::to_string(0.001 * static_cast<double>(i)), FieldType::number);
    e.set("ratio", "0.25", FieldType::number);
  }
  return out;
}

void run(benchmark::State& state, bool rfc3339_time) {
  const auto mapping = compile_mapping(ten_columns(), sluice::ClickHouseDialect::modern);
  auto writer = mapping->make_writer();
  const auto input = records(rfc3339_time);
  const MessageMeta meta{"requests", 0, 0, "", 0};
  constexpr std::uint64_t kBlockRows = 65536;
  // Warm up: buffers reach their block size once.
  for (std::uint64_t i = 0; i < kBlockRows; ++i) (void)writer->append(input[i % input.size()], meta);
  (void)writer->take();
  std::uint64_t rows = 0, bytes = 0, rejected = 0;
  const auto allocs_before = allocations.load();
  for (auto _ : state) {
    for (std::size_t i = 0; i < input.size(); ++i) {
      if (writer->append(input[i], meta)) ++rejected;
    }
    rows += input.size();
    if (writer->rows() >= kBlockRows) {
      bytes += writer->take().body.size();
    }
  }
  const auto allocs = allocations.load() - allocs_before;
  state.SetItemsProcessed(static_cast<std::int64_t>(rows));
  state.counters["rejected"] = static_cast<double>(rejected);
  state.counters["allocs_per_row"] = rows ? static_cast<double>(allocs) / static_cast<double>(rows) : 0;
  state.counters["block_bytes_per_row"] = rows ? static_cast<double>(bytes) / static_cast<double>(rows) : 0;
}

void BM_ColumnMappingTenColumnsUnixMs(benchmark::State& state) { run(state, false); }
void BM_ColumnMappingTenColumnsRfc3339(benchmark::State& state) { run(state, true); }
BENCHMARK(BM_ColumnMappingTenColumnsUnixMs);
BENCHMARK(BM_ColumnMappingTenColumnsRfc3339);

}  // namespace

BENCHMARK_MAIN();
