// Metadata directory: cost of the decode-path lookups (exporter name, interface name/alias/speed)
// with a warm cache, from the SNMP cache and from static configuration, on one and two threads.
#include <benchmark/benchmark.h>
#include <yaml-cpp/yaml.h>

#include <fmt/format.h>

#include "core/metrics.hpp"
#include "fixtures/process.hpp"
#include "transforms/metadata/directory.hpp"

namespace sluice::transforms::metadata {
namespace {

constexpr int kExporters = 64;
constexpr std::uint32_t kInterfaces = 64;

Ip6 exporter_address(int i) { return ip6_from_v4(0xC0000200u + static_cast<std::uint32_t>(i)); }  // 192.0.2.x

// A directory whose SNMP cache is warm: values written to a cache file that start() loads, with SNMP
// off so that nothing goes on the network while measuring.
struct Fixture {
  testing::TempDir dir{"sluice-metadata-bench"};
  MetricsRegistry metrics;
  std::unique_ptr<MetadataDirectory> directory;

  Fixture() {
    const auto path = dir / "cache.json";
    {
      MetadataCache cache(MetadataCache::Options{}, [](const Ip6&) { return ExporterPolicy{nullptr, true}; });
      const auto now = now_ms();
      for (int e = 0; e < kExporters; ++e) {
        FetchResult r;
        r.exporter = exporter_address(e);
        r.exporter_info = std::make_shared<const ExporterInfo>(ExporterInfo{fmt::format("edge-{}", e)});
        for (std::uint32_t i = 1; i <= kInterfaces; ++i) {
          cache.admit_interface(r.exporter, i, now);
          r.interfaces.emplace_back(i, std::make_shared<const InterfaceInfo>(
                                           InterfaceInfo{fmt::format("xe-0/0/{}", i), "transit: ExampleNet", 10000}));
        }
        cache.store(r, now);
      }
      if (!cache.save(path).empty()) throw std::runtime_error("cannot write the bench cache");
    }
    const auto yaml = fmt::format(R"(
metadata:
  cache: {{path: {}}}
  snmp: {{enabled: false}}
  static:
    - exporters: 198.51.100.0/24
      name: static-edge
      interfaces: {{10: {{name: Gi0/0/0/10, description: "transit: ExampleNet", speed: 10000}}}}
)",
                                  path);
    auto root = config::ConfigReader::root(YAML::Load(yaml));
    auto section = root.child("metadata");
    auto cfg = parse_metadata_config(section, "");
    root.check();
    directory = std::make_unique<MetadataDirectory>(std::move(cfg), metrics);
    directory->start();
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void BM_InterfaceLookupWarm(benchmark::State& state) {
  auto& d = *fixture().directory;
  std::uint32_t n = static_cast<std::uint32_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    const auto exporter = exporter_address(static_cast<int>(n % kExporters));
    auto info = d.interface(exporter, 1 + (n / kExporters) % kInterfaces);
    if (!info) state.SkipWithError("cache not warm");
    benchmark::DoNotOptimize(info->speed);
    ++n;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_InterfaceLookupWarm)->Threads(1)->Threads(2)->UseRealTime();

void BM_ExporterLookupWarm(benchmark::State& state) {
  auto& d = *fixture().directory;
  int n = state.thread_index() * 13;
  for (auto _ : state) {
    auto info = d.exporter(exporter_address(n % kExporters));
    if (!info) state.SkipWithError("cache not warm");
    benchmark::DoNotOptimize(info->name.size());
    ++n;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ExporterLookupWarm)->Threads(1)->Threads(2)->UseRealTime();

// What the enricher does per flow: exporter name plus input and output interfaces.
void BM_FlowLookupsWarm(benchmark::State& state) {
  auto& d = *fixture().directory;
  std::uint32_t n = 0;
  for (auto _ : state) {
    const auto exporter = exporter_address(static_cast<int>(n % kExporters));
    auto e = d.exporter(exporter);
    auto in = d.interface(exporter, 1 + n % kInterfaces);
    auto out = d.interface(exporter, 1 + (n + 1) % kInterfaces);
    benchmark::DoNotOptimize(e.get());
    benchmark::DoNotOptimize(in.get());
    benchmark::DoNotOptimize(out.get());
    ++n;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FlowLookupsWarm)->Threads(1)->Threads(2)->UseRealTime();

void BM_StaticInterfaceLookup(benchmark::State& state) {
  auto& d = *fixture().directory;
  const auto exporter = ip6_from_v4(0xC6336401u);  // 198.51.100.1
  for (auto _ : state) {
    auto info = d.interface(exporter, 10);
    if (!info) state.SkipWithError("no static answer");
    benchmark::DoNotOptimize(info->speed);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StaticInterfaceLookup);

// A known miss (an interface asked for before, still without a value): the cost while SNMP is down.
void BM_KnownMiss(benchmark::State& state) {
  auto& d = *fixture().directory;
  const auto exporter = exporter_address(0);
  d.interface(exporter, 100'000);
  for (auto _ : state) {
    auto info = d.interface(exporter, 100'000);
    benchmark::DoNotOptimize(info.get());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_KnownMiss);

}  // namespace
}  // namespace sluice::transforms::metadata

BENCHMARK_MAIN();
