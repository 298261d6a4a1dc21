// Record decoders of ingestion jobs: records/s and bytes/s per core of json (a flat 10-field object,
// the hot path), json-lines, csv, avro and protobuf, and heap allocations per record once warm
// (counted by replacing operator new here).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "decoders/records/record_decoder.hpp"
#include "fixtures/process.hpp"

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

using namespace sluice::decoders::records;
using sluice::transforms::LogEvent;

struct CountingSink : RecordSink {
  std::uint64_t records = 0;
  std::uint64_t rejects = 0;
  void record(LogEvent& e) override { records += e.field_count() > 0; }
  void reject(std::string_view, std::span<const std::byte>) override { ++rejects; }
};

const std::string kFlat =
    R"({"id":12345,"host":"web-01.example.com","status":200,"bytes":51234,"method":"GET","path":"/api/v1/items",)"
    R"("latency_ms":12.5,"ok":true,"user":"alice","region":"eu-west-1"})";

void run(benchmark::State& state, const DecoderSpec& spec, const std::string& payload, std::size_t records_per_payload) {
  auto decoder = make_record_decoder_factory(spec)->make();
  LogEvent event;
  CountingSink sink;
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(payload.data()), payload.size());
  for (int i = 0; i < 100; ++i) decoder->decode(bytes, event, sink);  // warm: buffers reach their size
  if (sink.rejects != 0 || sink.records == 0) {
    state.SkipWithError("the payload does not decode");
    return;
  }
  const auto before = allocations.load();
  std::uint64_t payloads = 0;
  for (auto _ : state) {
    decoder->decode(bytes, event, sink);
    benchmark::DoNotOptimize(event.field_count());
    ++payloads;
  }
  const auto allocs = allocations.load() - before;
  state.SetItemsProcessed(static_cast<std::int64_t>(payloads * records_per_payload));
  state.SetBytesProcessed(static_cast<std::int64_t>(payloads * payload.size()));
  state.counters["allocs_per_record"] =
      static_cast<double>(allocs) / static_cast<double>(std::max<std::uint64_t>(1, payloads * records_per_payload));
  state.counters["fields"] = static_cast<double>(event.field_count());
}

void BM_JsonFlat10(benchmark::State& state) {
  DecoderSpec spec;
  spec.kind = "json";
  run(state, spec, kFlat, 1);
}
BENCHMARK(BM_JsonFlat10);

void BM_JsonNested(benchmark::State& state) {
  DecoderSpec spec;
  spec.kind = "json";
  run(state, spec,
      R"({"ts":"2024-05-01T10:00:00Z","http":{"method":"POST","status":503,"path":"/v1/orders"},)"
      R"("client":{"ip":"10.1.2.3","geo":{"country":"FR","city":"Paris"}},"tags":["a","b","c"],"dur":0.25})",
      1);
}
BENCHMARK(BM_JsonNested);

void BM_JsonLines100(benchmark::State& state) {
  DecoderSpec spec;
  spec.kind = "json-lines";
  std::string payload;
  for (int i = 0; i < 100; ++i) payload += kFlat + "\n";
  run(state, spec, payload, 100);
}
BENCHMARK(BM_JsonLines100);

void BM_Csv100(benchmark::State& state) {
  DecoderSpec spec;
  spec.kind = "csv";
  spec.csv_header = true;
  std::string payload = "id,host,status,bytes,method,path,latency_ms,ok,user,region\n";
  for (int i = 0; i < 100; ++i) payload += "12345,web-01.example.com,200,51234,GET,\"/api/v1/items,x\",12.5,true,alice,eu-west-1\n";
  run(state, spec, payload, 100);
}
BENCHMARK(BM_Csv100);

// The flat record again, as an Avro datum: long, string, int, long, enum, string, double, boolean, string, string.
void BM_AvroFlat10(benchmark::State& state) {
  sluice::testing::TempDir dir;
  sluice::testing::write_file(dir.path() + "/flat.avsc", R"({"type":"record","name":"Flat","fields":[
    {"name":"id","type":"long"},{"name":"host","type":"string"},{"name":"status","type":"int"},
    {"name":"bytes","type":"long"},{"name":"method","type":{"type":"enum","name":"M","symbols":["GET","POST"]}},
    {"name":"path","type":"string"},{"name":"latency_ms","type":"double"},{"name":"ok","type":"boolean"},
    {"name":"user","type":["null","string"]},{"name":"region","type":"string"}]})");
  DecoderSpec spec;
  spec.kind = "avro";
  spec.avro_schema_file = dir.path() + "/flat.avsc";
  std::string d;
  const auto str = [&](std::string_view s) {
    d += static_cast<char>(s.size() * 2);
    d += s;
  };
  d += "\xf2\xc0\x01";  // 12345
  str("web-01.example.com");
  d += "\x90\x03";  // 200
  d += "\xc4\xa0\x06";  // 51234
  d += '\0';  // GET
  str("/api/v1/items");
  const double latency = 12.5;
  d.append(reinterpret_cast<const char*>(&latency), 8);
  d += '\x01';
  d += '\x02';  // union branch 1: string
  str("alice");
  str("eu-west-1");
  run(state, spec, d, 1);
}
BENCHMARK(BM_AvroFlat10);

void BM_ProtobufFlat10(benchmark::State& state) {
  sluice::testing::TempDir dir;
  sluice::testing::write_file(dir.path() + "/flat.proto", R"(syntax = "proto3";
package bench;
message Flat {
  int64 id = 1; string host = 2; int32 status = 3; int64 bytes = 4; string method = 5;
  string path = 6; double latency_ms = 7; bool ok = 8; string user = 9; string region = 10;
})");
  sluice::testing::write_file(dir.path() + "/flat.txtpb",
                              "id: 12345 host: \"web-01.example.com\" status: 200 bytes: 51234 method: \"GET\" "
                              "path: \"/api/v1/items\" latency_ms: 12.5 ok: true user: \"alice\" region: \"eu-west-1\"");
  const auto set = sluice::testing::run_command({"/bin/sh", "-c", "cd " + dir.path() +
                                                 " && protoc --descriptor_set_out=flat.pb flat.proto"});
  const auto encoded = sluice::testing::run_command(
      {"/bin/sh", "-c", "cd " + dir.path() + " && protoc --encode=bench.Flat flat.proto < flat.txtpb"});
  if (set.exit_code != 0 || encoded.exit_code != 0) {
    state.SkipWithError("protoc failed");
    return;
  }
  DecoderSpec spec;
  spec.kind = "protobuf";
  spec.descriptor_set_file = dir.path() + "/flat.pb";
  spec.message_type = "bench.Flat";
  run(state, spec, encoded.out, 1);
}
BENCHMARK(BM_ProtobufFlat10);

}  // namespace

BENCHMARK_MAIN();
