// GeoIp: AS numbers and countries from MMDB files written by MaxMind's own writer, and their reload.
#include <gtest/gtest.h>
#include <unistd.h>

#include "core/metrics.hpp"
#include "enrich_support.hpp"
#include "transforms/geoip.hpp"

namespace sluice::transforms {
namespace {

using namespace std::chrono_literals;
using testing::MmdbNetwork;
using testing::TempDir;
using testing::write_mmdb;

Ip6 ip(const char* text) { return *ip6_parse(text); }

std::string country_of(const MmdbFile& db, const char* address) {
  char c[2] = {'?', '?'};
  return db.country(ip(address), c) ? std::string(c, 2) : "(none)";
}

TEST(GeoIp, AsNumbersAndCountriesPerAddressFromRealMmdbFiles) {
  TempDir dir("sluice-geoip");
  write_mmdb(dir, dir / "asn.mmdb",
             {{"192.0.2.0/24", 64496, ""}, {"192.0.2.128/25", 64497, ""}, {"2001:db8::/32", 64498, ""},
              {"2001:db8:ff::/48", 4200000001u, ""}});
  write_mmdb(dir, dir / "country.mmdb", {{"198.51.100.0/24", 0, "FR"}, {"2001:db8::/32", 0, "DE"}, {"10.0.0.0/8", 0, "NL"}});

  std::string error;
  auto asn = MmdbFile::open(dir / "asn.mmdb", &error);
  ASSERT_TRUE(asn) << error;
  EXPECT_EQ(asn->asn(ip("192.0.2.1")), 64496u);
  EXPECT_EQ(asn->asn(ip("192.0.2.127")), 64496u);
  EXPECT_EQ(asn->asn(ip("192.0.2.128")), 64497u);
  EXPECT_EQ(asn->asn(ip("192.0.2.255")), 64497u);
  EXPECT_EQ(asn->asn(ip("192.0.3.0")), 0u);
  EXPECT_EQ(asn->asn(ip("2001:db8::1")), 64498u);
  EXPECT_EQ(asn->asn(ip("2001:db8:ff::1")), 4200000001u);
  EXPECT_EQ(asn->asn(ip("2001:db9::1")), 0u);
  EXPECT_EQ(country_of(*asn, "192.0.2.1"), "(none)");

  auto country = MmdbFile::open(dir / "country.mmdb", &error);
  ASSERT_TRUE(country) << error;
  EXPECT_EQ(country_of(*country, "198.51.100.77"), "FR");
  EXPECT_EQ(country_of(*country, "2001:db8:1::1"), "DE");
  EXPECT_EQ(country_of(*country, "10.20.30.40"), "NL");
  EXPECT_EQ(country_of(*country, "11.0.0.1"), "(none)");
  EXPECT_EQ(country->asn(ip("10.20.30.40")), 0u);
}

TEST(GeoIp, MissingOrBrokenFilesAreReportedAtStart) {
  TempDir dir("sluice-geoip-missing");
  MetricsRegistry metrics;
  std::string error;
  EXPECT_FALSE(MmdbFile::open(dir / "nope.mmdb", &error));
  EXPECT_NE(error.find("No such file or directory"), std::string::npos) << error;
  try {
    GeoIp g({dir / "nope.mmdb", "", 0ms}, metrics);
    FAIL() << "a missing database was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("outlet.flows.enrich.geoip.asn_database: cannot open '" + dir / "nope.mmdb" + "'"),
              std::string::npos)
        << e.what();
  }
  testing::write_file(dir / "junk.mmdb", std::string(4096, 'x'));
  EXPECT_THROW(GeoIp({"", dir / "junk.mmdb", 0ms}, metrics), std::runtime_error);
}

TEST(GeoIp, ReplacedFilesAreReloadedAndABrokenReplacementKeepsTheOldDatabase) {
  TempDir dir("sluice-geoip-reload");
  MetricsRegistry metrics;
  write_mmdb(dir, dir / "asn.mmdb", {{"192.0.2.0/24", 64496, ""}});
  write_mmdb(dir, dir / "country.mmdb", {{"192.0.2.0/24", 0, "FR"}});
  GeoIp geo({dir / "asn.mmdb", dir / "country.mmdb", 0ms}, metrics);
  const auto gen0 = geo.generation();
  char c[2];
  EXPECT_EQ(geo.snapshot()->asn->asn(ip("192.0.2.1")), 64496u);
  EXPECT_FALSE(geo.check_now());  // nothing changed

  write_mmdb(dir, dir / "asn.mmdb", {{"192.0.2.0/24", 65550, ""}});
  EXPECT_TRUE(geo.check_now());
  EXPECT_EQ(geo.generation(), gen0 + 1);
  EXPECT_EQ(geo.snapshot()->asn->asn(ip("192.0.2.1")), 65550u);
  ASSERT_TRUE(geo.snapshot()->country->country(ip("192.0.2.1"), c));
  EXPECT_EQ(std::string(c, 2), "FR");
  EXPECT_EQ(metrics.counter_value("enrich_geoip_reloads_total", {{"database", "asn"}}), 1u);

  // A truncated file renamed in: counted once, the previous database stays.
  testing::write_file(dir / "broken.tmp", "not an mmdb file");
  ASSERT_EQ(::rename((dir / "broken.tmp").c_str(), (dir / "country.mmdb").c_str()), 0);
  EXPECT_FALSE(geo.check_now());
  EXPECT_FALSE(geo.check_now());
  EXPECT_EQ(metrics.counter_value("enrich_geoip_reload_errors_total", {{"database", "country"}}), 1u);
  ASSERT_TRUE(geo.snapshot()->country->country(ip("192.0.2.1"), c));
  EXPECT_EQ(std::string(c, 2), "FR");

  // Then a good one.
  write_mmdb(dir, dir / "country.mmdb", {{"192.0.2.0/24", 0, "JP"}});
  EXPECT_TRUE(geo.check_now());
  ASSERT_TRUE(geo.snapshot()->country->country(ip("192.0.2.1"), c));
  EXPECT_EQ(std::string(c, 2), "JP");
  EXPECT_EQ(geo.snapshot()->asn->asn(ip("192.0.2.1")), 65550u);
}

TEST(GeoIp, TheBackgroundCheckPicksUpANewFile) {
  TempDir dir("sluice-geoip-thread");
  MetricsRegistry metrics;
  write_mmdb(dir, dir / "asn.mmdb", {{"2001:db8::/32", 64496, ""}});
  GeoIp geo({dir / "asn.mmdb", "", 50ms}, metrics);
  write_mmdb(dir, dir / "asn.mmdb", {{"2001:db8::/32", 64499, ""}});
  EXPECT_TRUE(testing::eventually([&] { return geo.snapshot()->asn->asn(ip("2001:db8::5")) == 64499u; }, 10s));
  EXPECT_EQ(metrics.counter_value("enrich_geoip_reloads_total", {{"database", "asn"}}), 1u);
}

}  // namespace
}  // namespace sluice::transforms
