// Cost of full flow enrichment per flow: directory names (warm), exporter and interface classifiers,
// a 1,000-prefix network table, and ASN + country MMDB databases, through one Enricher::Session.
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/metrics.hpp"
#include "transforms/enricher.hpp"
#include "unit/enrich_support.hpp"

namespace sluice {
namespace {

constexpr int kExporters = 50;
constexpr int kInterfaces = 64;
constexpr std::size_t kPool = 1 << 16;

Ip6 v4(std::uint32_t a) { return ip6_from_v4(a); }

Ip6 v6(std::uint32_t n) {
  Ip6 a = *ip6_parse("2001:db8::");
  a[4] = static_cast<std::uint8_t>(n >> 24);
  a[5] = static_cast<std::uint8_t>(n >> 16);
  a[14] = static_cast<std::uint8_t>(n >> 8);
  a[15] = static_cast<std::uint8_t>(n);
  return a;
}

struct Setup {
  testing::TempDir dir{"sluice-enrich-bench"};
  MetricsRegistry metrics;
  testing::FixedDirectory directory;
  std::unique_ptr<transforms::Enricher> enricher;

  Setup() {
    spdlog::set_level(spdlog::level::warn);
    // 1,000 IPv4 /24s under 10.0.0.0/14 and 200 IPv6 /48s, half in each database.
    std::vector<testing::MmdbNetwork> asn, country;
    const char* countries[] = {"FR", "DE", "NL", "US", "JP"};
    for (std::uint32_t i = 0; i < 1000; ++i) {
      const auto prefix = ip6_to_string(v4(0x0a000000u + (i << 8))) + "/24";
      asn.push_back({prefix, 64512 + i, ""});
      country.push_back({prefix, 0, countries[i % 5]});
    }
    for (std::uint32_t i = 0; i < 200; ++i) {
      const auto prefix = ip6_to_string(v6(i << 16)) + "/48";
      asn.push_back({prefix, 4200000000u + i, ""});
      country.push_back({prefix, 0, countries[i % 5]});
    }
    testing::write_mmdb(dir, dir / "asn.mmdb", asn);
    testing::write_mmdb(dir, dir / "country.mmdb", country);

    std::string yaml = R"(outlet:
  chdb: {path: /tmp/unused}
  flows:
    enrich:
      exporter_classifiers:
        - match: {name: '^(?<site>[a-z]+)\d+-(?<role>edge|core)-\d+'}
          set: {site: '${site}', role: '${role}'}
        - match: {address: 192.0.2.0/26}
          set: {group: west, region: eu}
        - match: {}
          set: {group: east, region: us, tenant: acme}
      interface_classifiers:
        - match: {description: '(?i)^(transit|ix|pni):\s*(\S+)'}
          set: {connectivity: '$1', provider: '$2', boundary: external}
        - match: {name: '^ae\d+$'}
          set: {connectivity: core, boundary: internal}
        - match: {min_speed: 100000}
          set: {connectivity: backbone}
        - match: {}
          set: {boundary: internal}
      geoip:
        asn_database: )" + dir / "asn.mmdb" + R"(
        country_database: )" + dir / "country.mmdb" + R"(
        check_interval: 0s
      as_sources: [flow, geoip]
      networks:
)";
    for (std::uint32_t i = 0; i < 1000; ++i) {
      const auto len = 16 + i % 13;  // /16 to /28, overlapping
      std::uint32_t a = 0x0a000000u + (i * 0x00013100u);
      a &= len == 32 ? ~0u : ~((1u << (32 - len)) - 1);
      const auto prefix = ip6_to_string(v4(a)) + "/" + std::to_string(len);
      if (yaml.find("        " + prefix + ":") != std::string::npos) continue;
      yaml += "        " + prefix + ": {name: net" + std::to_string(i) + ", role: r" + std::to_string(i % 7) +
              ", site: s" + std::to_string(i % 11) + "}\n";
    }
    const auto config = config::parse_config(yaml);

    for (int e = 0; e < kExporters; ++e) {
      const auto ex = v4(0xc0000200u + static_cast<std::uint32_t>(e));  // 192.0.2.x
      directory.add_exporter(ex, (e % 2 ? "par" : "fra") + std::to_string(e) + (e % 3 ? "-edge-" : "-core-") + "01");
      for (int i = 1; i <= kInterfaces; ++i) {
        const auto idx = static_cast<std::uint32_t>(i);
        if (i % 4 == 0) directory.add_interface(ex, idx, "et-0/0/" + std::to_string(i), "Transit: provider" + std::to_string(i % 5), 100'000);
        else if (i % 4 == 1) directory.add_interface(ex, idx, "ae" + std::to_string(i), "to core", 400'000);
        else directory.add_interface(ex, idx, "xe-1/0/" + std::to_string(i), "customer " + std::to_string(i), 10'000);
      }
    }
    enricher = std::make_unique<transforms::Enricher>(config.outlet->flows.enrich, &directory, metrics);
  }
};

Setup& setup() {
  static Setup s;
  return s;
}

// What a decoder puts in the fields enrichment reads. Decoders fill one scratch record per datagram
// record, so the record itself is hot in cache when enrichment runs; the benchmark does the same.
struct FlowKey {
  Ip6 exporter, src, dst;
  std::uint32_t in_if, out_if, src_as;
};

// Flows over `distinct` source and destination addresses (a third IPv6), in datagrams of 30 flows
// from a random exporter, with random interfaces.
std::vector<FlowKey> make_pool(std::size_t distinct) {
  std::mt19937 rng(7);
  std::vector<FlowKey> pool(kPool);
  const auto address = [&](std::uint32_t n) { return n % 3 == 0 ? v6((n % 200) << 16 | (n & 0xffff)) : v4(0x0a000000u + (n % (1000 << 8))); };
  Ip6 exporter{};
  for (std::size_t i = 0; i < pool.size(); ++i) {
    auto& k = pool[i];
    if (i % 30 == 0) exporter = v4(0xc0000200u + rng() % kExporters);  // a datagram of 30 flows per exporter
    k.exporter = exporter;
    k.in_if = 1 + rng() % kInterfaces;
    k.out_if = 1 + rng() % kInterfaces;
    k.src = address(static_cast<std::uint32_t>(rng() % distinct) * 2654435761u >> 8);
    k.dst = address(static_cast<std::uint32_t>(rng() % distinct) * 2246822519u >> 8);
    k.src_as = rng() % 2 ? 65000 : 0;
  }
  return pool;
}

void fill(FlowRecord& r, const FlowKey& k, std::uint32_t second) {
  r.time_received = second;
  r.exporter_address = k.exporter;
  r.src_addr = k.src;
  r.dst_addr = k.dst;
  r.in_if = k.in_if;
  r.out_if = k.out_if;
  r.src_as = k.src_as;
  r.dst_as = 0;
}

// One iteration enriches one flow: the reported time is the cost per flow. Every pass over the pool
// is a new receive second, so sessions also ask the directory again once per exporter and interface.
void BM_EnrichFullWarm(benchmark::State& state) {
  auto& s = setup();
  const auto pool = make_pool(static_cast<std::size_t>(state.range(0)));
  auto session = s.enricher->session();
  FlowRecord r;
  for (const auto& k : pool) {  // warm the caches
    fill(r, k, 1'700'000'000);
    session->enrich(r);
  }
  if (s.metrics.counter_total("enrich_unknown_interface_total") != 0 || r.exporter_name.empty() || r.in_if_name.empty() ||
      r.exporter_site.empty() || r.in_if_boundary == Boundary::undefined) {
    state.SkipWithError("enrichment did not find the directory entries");
  }
  std::size_t i = 0;
  std::uint32_t second = 1'700'000'001;
  for (auto _ : state) {
    fill(r, pool[i], second);
    session->enrich(r);
    benchmark::DoNotOptimize(r);
    if (++i == kPool) {
      i = 0;
      ++second;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["address_misses"] = static_cast<double>(s.metrics.counter_value("enrich_cache_misses_total", {{"cache", "address"}}));
  state.counters["interface_misses"] = static_cast<double>(s.metrics.counter_value("enrich_cache_misses_total", {{"cache", "interface"}}));
}
// The same loop without enrichment: what the benchmark itself costs per flow, to subtract.
void BM_FillOnly(benchmark::State& state) {
  const auto pool = make_pool(static_cast<std::size_t>(state.range(0)));
  FlowRecord r;
  std::size_t i = 0;
  std::uint32_t second = 1'700'000'001;
  for (auto _ : state) {
    fill(r, pool[i], second);
    benchmark::DoNotOptimize(r);
    if (++i == kPool) {
      i = 0;
      ++second;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_FillOnly)->Arg(2'000);

BENCHMARK(BM_EnrichFullWarm)->Arg(2'000)->Arg(10'000)->Arg(200'000);

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();
