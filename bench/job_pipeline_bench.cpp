// An ingestion job's per-record work on one core: decode a JSON message (10 fields), map it to 10 typed
// columns, and encode the Native block — what a processor does between Kafka and the store.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/metrics.hpp"
#include "fixtures/process.hpp"
#include "pipeline/jobs/job_spec.hpp"
#include "pipeline/jobs/record_batch_builder.hpp"

namespace {

using namespace sluice;
using namespace sluice::pipeline::jobs;

constexpr const char* kJob = R"(
name: events
topic: events
decoder: {kind: json}
mapping:
  table: events
  columns:
    - {name: id, type: UInt64}
    - {name: ts, type: DateTime64(3)}
    - {name: host, type: LowCardinality(String)}
    - {name: method, type: LowCardinality(String)}
    - {name: path, type: String}
    - {name: status, type: UInt16}
    - {name: bytes, type: UInt64}
    - {name: latency, type: Float64}
    - {name: user, type: String}
    - {name: ok, type: Bool}
)";

std::vector<std::string> messages(std::size_t n) {
  static const char* methods[] = {"GET", "POST", "PUT", "DELETE"};
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back("{\"id\":" + std::to_string(i) + ",\"ts\":" + std::to_string(1763700000000 + i) +
                  ",\"host\":\"edge-" + std::to_string(i % 40) + ".example.net\",\"method\":\"" + methods[i % 4] +
                  "\",\"path\":\"/api/v1/items/" + std::to_string(i % 977) + "\",\"status\":" +
                  std::to_string(200 + (i % 5) * 100) + ",\"bytes\":" + std::to_string(i * 7 % 100000) +
                  ",\"latency\":" + std::to_string(static_cast<double>(i % 1000) / 7) + ",\"user\":\"u" +
                  std::to_string(i % 5000) + "\",\"ok\":" + (i % 9 ? "true" : "false") + "}");
  }
  return out;
}

void BM_JsonJobRecords(benchmark::State& state) {
  MetricsRegistry metrics;
  sluice::testing::TempDir dir;
  const auto spec = parse_job_definition(kJob, "bench");
  auto job = std::make_shared<RecordJob>(spec.name, metrics);
  job->decoders = decoders::records::make_record_decoder_factory(spec.decoder);
  job->mapping = compile_mapping(spec.mapping, ClickHouseDialect::modern);
  job->dead_letters = std::make_unique<sinks::DeadLetters>(dir / "dead", metrics);
  ProcessorContext context(metrics, "events", 0);
  RecordBatchBuilder builder(*job, context);
  const auto input = messages(10'000);
  std::uint64_t bytes = 0;
  std::int64_t offset = 0;
  for (auto _ : state) {
    for (const auto& m : input) {
      bus::Message msg;
      msg.topic = "events";
      msg.offset = offset++;
      msg.value = std::as_bytes(std::span(m.data(), m.size()));
      builder.add(msg);
      bytes += m.size();
    }
    auto request = builder.take();
    benchmark::DoNotOptimize(request.body.data());
    if (request.rows != input.size()) state.SkipWithError("rows were lost");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * input.size()));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_JsonJobRecords)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
