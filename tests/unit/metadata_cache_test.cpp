#include <gtest/gtest.h>

#include "core/metrics.hpp"
#include "fixtures/process.hpp"
#include "transforms/metadata/breaker.hpp"
#include "transforms/metadata/cache.hpp"

namespace sluice::transforms::metadata {
namespace {

Ip6 ip(const char* text) { return *ip6_parse(text); }

constexpr TimeMs kTtl = 10'000;
constexpr TimeMs kRefresh = 4'000;
constexpr TimeMs kRetry = 1'000;
constexpr TimeMs kT0 = 1'700'000'000'000;  // a plausible wall-clock time

MetadataCache::Options options(std::size_t max_exporters = 16, std::size_t max_interfaces = 64) {
  MetadataCache::Options o;
  o.ttl = kTtl;
  o.refresh = kRefresh;
  o.retry_after = kRetry;
  o.max_exporters = max_exporters;
  o.max_interfaces = max_interfaces;
  return o;
}

ExporterPolicy fetchable(const Ip6&) { return ExporterPolicy{nullptr, true}; }

FetchResult result(const Ip6& exporter, const std::string& sys_name,
                   std::vector<std::pair<std::uint32_t, std::string>> names) {
  FetchResult r;
  r.exporter = exporter;
  r.exporter_info = std::make_shared<const ExporterInfo>(ExporterInfo{sys_name});
  for (auto& [index, name] : names) {
    r.interfaces.emplace_back(index, name.empty() ? nullptr
                                                  : std::make_shared<const InterfaceInfo>(
                                                        InterfaceInfo{name, "alias of " + name, index * 100}));
  }
  return r;
}

std::string name_of(const MetadataCache& cache, const Ip6& exporter, std::uint32_t index, Found* found = nullptr) {
  Found f = Found::miss;
  auto info = cache.interface(exporter, index, f);
  if (found) *found = f;
  return info ? info->name : "<null>";
}

TEST(MetadataCache, UnseenThenAdmittedOnceThenHit) {
  MetadataCache cache(options(), fetchable);
  const auto a = ip("192.0.2.1");
  Found found = Found::hit;
  EXPECT_FALSE(cache.interface(a, 3, found));
  EXPECT_EQ(found, Found::unseen);
  auto request = cache.admit_interface(a, 3, kT0);
  ASSERT_TRUE(request);
  EXPECT_EQ(request->exporter, a);
  EXPECT_EQ(request->interfaces, std::vector<std::uint32_t>{3});
  EXPECT_FALSE(cache.admit_interface(a, 3, kT0));  // deduplicated: one fetch per key
  EXPECT_EQ(name_of(cache, a, 3, &found), "<null>");
  EXPECT_EQ(found, Found::miss);
  cache.store(result(a, "edge-1", {{3, "xe-0/0/3"}}), kT0 + 5);
  EXPECT_EQ(name_of(cache, a, 3, &found), "xe-0/0/3");
  EXPECT_EQ(found, Found::hit);
  auto exporter = cache.exporter(a, found);
  ASSERT_TRUE(exporter);
  EXPECT_EQ(exporter->name, "edge-1");  // sysName rides along with interface queries
}

TEST(MetadataCache, RefreshAheadServesOldValueUntilNewOneArrives) {
  MetadataCache cache(options(), fetchable);
  const auto a = ip("192.0.2.1");
  ASSERT_TRUE(cache.admit_interface(a, 1, kT0));
  cache.store(result(a, "edge-1", {{1, "old"}}), kT0);
  EXPECT_EQ(name_of(cache, a, 1), "old");  // used since the fetch
  EXPECT_TRUE(cache.maintain(kT0 + kRefresh - 1).due.empty());
  auto m = cache.maintain(kT0 + kRefresh);
  ASSERT_EQ(m.due.size(), 1u);
  EXPECT_EQ(m.due[0].interfaces, std::vector<std::uint32_t>{1});
  EXPECT_EQ(name_of(cache, a, 1), "old");  // still served while the refresh is out
  EXPECT_TRUE(cache.maintain(kT0 + kRefresh + 1).due.empty());  // pending: not asked twice
  cache.store(result(a, "edge-1", {{1, "new"}}), kT0 + kRefresh + 10);
  EXPECT_EQ(name_of(cache, a, 1), "new");
}

TEST(MetadataCache, UnusedValuesAreNotRefreshedAndAreForgottenAfterTtl) {
  MetadataCache cache(options(), fetchable);
  const auto a = ip("192.0.2.1");
  ASSERT_TRUE(cache.admit_interface(a, 1, kT0));
  cache.store(result(a, "edge-1", {{1, "if1"}}), kT0);
  EXPECT_TRUE(cache.maintain(kT0 + kRefresh).due.empty());  // nobody looked it up since
  auto m = cache.maintain(kT0 + kTtl);
  EXPECT_EQ(m.forgotten, 2u);  // the interface, then the exporter
  Found found = Found::hit;
  EXPECT_FALSE(cache.interface(a, 1, found));
  EXPECT_EQ(found, Found::unseen);
  EXPECT_EQ(cache.sizes().exporters, 0u);
}

TEST(MetadataCache, FailingRefreshKeepsValueUntilTtlThenRetries) {
  MetadataCache cache(options(), fetchable);
  const auto a = ip("192.0.2.1");
  ASSERT_TRUE(cache.admit_interface(a, 1, kT0));
  cache.store(result(a, "edge-1", {{1, "if1"}}), kT0);
  EXPECT_EQ(name_of(cache, a, 1), "if1");
  auto m = cache.maintain(kT0 + kRefresh);
  ASSERT_EQ(m.due.size(), 1u);
  cache.fetch_failed(m.due[0]);
  EXPECT_EQ(name_of(cache, a, 1), "if1");  // the device is down: the cached name still comes back
  EXPECT_TRUE(cache.maintain(kT0 + kRefresh + kRetry - 1).due.empty());  // paced by retry_after
  m = cache.maintain(kT0 + kRefresh + kRetry);
  ASSERT_EQ(m.due.size(), 1u);
  cache.fetch_failed(m.due[0]);
  EXPECT_EQ(name_of(cache, a, 1), "if1");
  m = cache.maintain(kT0 + kTtl);  // used, never refreshed: the value is too old now
  EXPECT_EQ(m.expired, 2u);         // ifName and the sysName fetched with it
  ASSERT_EQ(m.due.size(), 1u);
  Found found = Found::hit;
  EXPECT_EQ(name_of(cache, a, 1, &found), "<null>");
  EXPECT_EQ(found, Found::miss);
}

TEST(MetadataCache, AbsentInterfaceIsRememberedNotAskedAgain) {
  MetadataCache cache(options(), fetchable);
  const auto a = ip("192.0.2.1");
  ASSERT_TRUE(cache.admit_interface(a, 99, kT0));
  cache.store(result(a, "edge-1", {{99, ""}}), kT0);
  Found found = Found::hit;
  EXPECT_EQ(name_of(cache, a, 99, &found), "<null>");
  EXPECT_EQ(found, Found::miss);
  EXPECT_TRUE(cache.maintain(kT0 + kRetry).due.empty());
  EXPECT_EQ(cache.maintain(kT0 + kRefresh).due.size(), 1u);
}

TEST(MetadataCache, EvictsLeastRecentlyRefreshedExporter) {
  Counter evictions;
  auto o = options(2);
  o.evictions = &evictions;
  MetadataCache cache(o, fetchable);
  const auto a = ip("192.0.2.1"), b = ip("192.0.2.2"), c = ip("192.0.2.3");
  ASSERT_TRUE(cache.admit_interface(b, 1, kT0));
  cache.store(result(b, "b", {{1, "b1"}}), kT0 + 20);
  ASSERT_TRUE(cache.admit_interface(a, 1, kT0));
  cache.store(result(a, "a", {{1, "a1"}}), kT0 + 10);
  ASSERT_TRUE(cache.admit_interface(c, 1, kT0 + 30));
  EXPECT_EQ(evictions.value(), 1u);
  EXPECT_EQ(cache.sizes().exporters, 2u);
  Found found = Found::hit;
  EXPECT_EQ(name_of(cache, a, 1, &found), "<null>");
  EXPECT_EQ(found, Found::unseen);
  EXPECT_EQ(name_of(cache, b, 1), "b1");
  cache.store(result(a, "a", {{1, "a1"}}), kT0 + 40);  // late answer for an evicted exporter: dropped
  EXPECT_EQ(cache.sizes().exporters, 2u);
}

TEST(MetadataCache, InterfacesPerExporterAreBounded) {
  MetadataCache cache(options(16, 2), fetchable);
  const auto a = ip("192.0.2.1");
  ASSERT_TRUE(cache.admit_interface(a, 1, kT0));
  ASSERT_TRUE(cache.admit_interface(a, 2, kT0));
  EXPECT_FALSE(cache.admit_interface(a, 3, kT0));
  Found found = Found::hit;
  EXPECT_EQ(name_of(cache, a, 3, &found), "<null>");
  EXPECT_EQ(found, Found::miss);  // a plain miss: no more admissions for this exporter
  EXPECT_EQ(cache.sizes().interfaces, 2u);
}

TEST(MetadataCache, DueInterfacesAreGroupedPerQuery) {
  MetadataCache cache(options(), fetchable);
  const auto a = ip("192.0.2.1");
  for (std::uint32_t i = 1; i <= 14; ++i) {
    auto request = cache.admit_interface(a, i, kT0);
    ASSERT_TRUE(request);
    cache.fetch_failed(*request);
    name_of(cache, a, i);
  }
  auto m = cache.maintain(kT0 + kRetry);
  ASSERT_EQ(m.due.size(), 3u);
  EXPECT_EQ(m.due[0].interfaces, (std::vector<std::uint32_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(m.due[1].interfaces, (std::vector<std::uint32_t>{7, 8, 9, 10, 11, 12}));
  EXPECT_EQ(m.due[2].interfaces, (std::vector<std::uint32_t>{13, 14}));
}

TEST(MetadataCache, NotFetchableExportersAreNeverQueried) {
  MetadataCache cache(options(), [](const Ip6&) { return ExporterPolicy{nullptr, false}; });
  const auto a = ip("192.0.2.1");
  EXPECT_FALSE(cache.admit_exporter(a, kT0));
  EXPECT_FALSE(cache.admit_interface(a, 1, kT0));
  Found found = Found::hit;
  EXPECT_FALSE(cache.interface(a, 1, found));
  EXPECT_EQ(found, Found::miss);
  EXPECT_TRUE(cache.maintain(kT0 + kTtl).due.empty());
}

TEST(MetadataCache, PersistenceRoundTrip) {
  testing::TempDir dir("sluice-metadata-cache");
  const auto path = dir / "state/metadata-cache.json";
  const auto a = ip("192.0.2.1"), v6 = ip("2001:db8::7");
  {
    MetadataCache cache(options(), fetchable);
    ASSERT_TRUE(cache.admit_interface(a, 1, kT0));
    ASSERT_TRUE(cache.admit_interface(a, 99, kT0));
    cache.store(result(a, "edge-1", {{1, "Gi0/1"}, {99, ""}}), kT0);
    ASSERT_TRUE(cache.admit_exporter(v6, kT0));
    cache.store(result(v6, "edge-v6", {}), kT0 - kTtl + 500);  // about to expire
    ASSERT_TRUE(cache.admit_interface(a, 5, kT0));  // pending, never answered: not saved
    EXPECT_EQ(cache.save(path), "");
  }
  MetadataCache loaded(options(), fetchable);
  std::string error;
  EXPECT_EQ(loaded.load(path, kT0 + 100, &error), 4u);  // edge-1, Gi0/1, absent 99, edge-v6
  EXPECT_EQ(error, "");
  Found found = Found::miss;
  auto if1 = loaded.interface(a, 1, found);
  ASSERT_TRUE(if1);
  EXPECT_EQ(if1->name, "Gi0/1");
  EXPECT_EQ(if1->description, "alias of Gi0/1");
  EXPECT_EQ(if1->speed, 100u);
  EXPECT_FALSE(loaded.interface(a, 99, found));
  EXPECT_EQ(found, Found::miss);  // known absent, not unseen
  EXPECT_FALSE(loaded.interface(a, 5, found));
  EXPECT_EQ(found, Found::unseen);
  auto e = loaded.exporter(a, found);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->name, "edge-1");
  ASSERT_TRUE(loaded.exporter(v6, found));

  MetadataCache later(options(), fetchable);
  EXPECT_EQ(later.load(path, kT0 + 1000, &error), 3u);  // edge-v6 is past its ttl by then
  EXPECT_FALSE(later.exporter(v6, found));
  EXPECT_EQ(found, Found::unseen);

  testing::write_file(path, "{\"version\": 1, \"exporters\": [tru");
  MetadataCache damaged(options(), fetchable);
  EXPECT_EQ(damaged.load(path, kT0, &error), 0u);
  EXPECT_NE(error, "");
  EXPECT_EQ(damaged.load(dir / "missing.json", kT0, &error), 0u);
}

TEST(MetadataBreaker, OpensAfterConsecutiveFailuresAndProbes) {
  CircuitBreaker breaker(3, 1000);
  const auto a = ip("192.0.2.1"), b = ip("192.0.2.2");
  EXPECT_TRUE(breaker.allow(a, 0));
  EXPECT_FALSE(breaker.failure(a, 0));
  EXPECT_FALSE(breaker.failure(a, 10));
  breaker.success(a);  // a success resets the count
  EXPECT_FALSE(breaker.failure(a, 20));
  EXPECT_FALSE(breaker.failure(a, 30));
  EXPECT_TRUE(breaker.failure(a, 40));  // third in a row: open
  EXPECT_TRUE(breaker.is_open(a, 41));
  EXPECT_FALSE(breaker.allow(a, 41));
  EXPECT_FALSE(breaker.allow(a, 1039));
  EXPECT_TRUE(breaker.allow(b, 41));  // per exporter
  EXPECT_EQ(breaker.open_count(41), 1u);
  EXPECT_TRUE(breaker.allow(a, 1040));   // one probe once open_for has passed
  EXPECT_FALSE(breaker.allow(a, 1041));  // and only one
  EXPECT_TRUE(breaker.failure(a, 1100)); // the probe failed: open again
  EXPECT_FALSE(breaker.allow(a, 2099));
  EXPECT_TRUE(breaker.allow(a, 2100));
  breaker.success(a);  // the probe answered: closed
  EXPECT_FALSE(breaker.is_open(a, 2101));
  EXPECT_TRUE(breaker.allow(a, 2101));
  EXPECT_EQ(breaker.open_count(2101), 0u);
}

}  // namespace
}  // namespace sluice::transforms::metadata
