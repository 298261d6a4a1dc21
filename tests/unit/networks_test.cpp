// NetworkTable: longest prefix match over IPv4 (mapped) and IPv6, checked against a linear scan.
#include <gtest/gtest.h>

#include <random>

#include "transforms/networks.hpp"

namespace sluice::transforms {
namespace {

Ip6 ip(const char* text) {
  auto a = ip6_parse(text);
  EXPECT_TRUE(a) << text;
  return a.value_or(Ip6{});
}

NetworkTable::Entry entry(const char* prefix, NetworkAttributes attrs) {
  std::string error;
  auto p = parse_prefix(prefix, &error);
  EXPECT_TRUE(p) << prefix << ": " << error;
  return {p.value_or(Prefix{}), std::move(attrs)};
}

std::string name_of(const NetworkTable& t, const char* address) {
  const auto* n = t.lookup(ip(address));
  return n ? n->name : "(none)";
}

TEST(Networks, ParsesPrefixesAndRejectsMalformedOnes) {
  std::string error;
  auto p = parse_prefix("192.0.2.0/24", &error);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->length, 120);
  EXPECT_EQ(ip6_to_string(p->address), "192.0.2.0");
  p = parse_prefix("2001:db8::/32", &error);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->length, 32);
  p = parse_prefix("198.51.100.7", &error);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->length, 128);

  EXPECT_FALSE(parse_prefix("192.0.2.1/24", &error));
  EXPECT_EQ(error, "'192.0.2.1/24' has bits set after the prefix length; write the network address");
  EXPECT_FALSE(parse_prefix("192.0.2.0/33", &error));
  EXPECT_EQ(error, "'192.0.2.0/33' has a bad prefix length (IPv4: 0-32, IPv6: 0-128)");
  EXPECT_FALSE(parse_prefix("2001:db8::/129", &error));
  EXPECT_FALSE(parse_prefix("office", &error));
  EXPECT_EQ(error, "'office' is not an IPv4 or IPv6 prefix such as 192.0.2.0/24 or 2001:db8::/32");
  EXPECT_FALSE(parse_prefix("10.0.0.0/8x", &error));
}

TEST(Networks, LongestPrefixWinsAcrossOverlappingPrefixes) {
  NetworkTable t({entry("10.0.0.0/8", {"ten", "core", "par", "eu", "acme"}),
                  entry("10.1.0.0/16", {"ten-one", "", "", "", ""}),
                  entry("10.1.2.0/24", {"ten-one-two", "lab", "", "", ""}),
                  entry("10.1.2.128/25", {"upper-half", "", "", "", ""}),
                  entry("10.1.2.255/32", {"last-host", "", "", "", ""}),
                  entry("10.200.0.0/16", {"other", "", "", "", ""})});
  EXPECT_EQ(name_of(t, "9.255.255.255"), "(none)");
  EXPECT_EQ(name_of(t, "10.0.0.0"), "ten");
  EXPECT_EQ(name_of(t, "10.0.255.255"), "ten");
  EXPECT_EQ(name_of(t, "10.1.0.0"), "ten-one");
  EXPECT_EQ(name_of(t, "10.1.1.255"), "ten-one");
  EXPECT_EQ(name_of(t, "10.1.2.0"), "ten-one-two");
  EXPECT_EQ(name_of(t, "10.1.2.127"), "ten-one-two");
  EXPECT_EQ(name_of(t, "10.1.2.128"), "upper-half");
  EXPECT_EQ(name_of(t, "10.1.2.254"), "upper-half");
  EXPECT_EQ(name_of(t, "10.1.2.255"), "last-host");
  EXPECT_EQ(name_of(t, "10.1.3.0"), "ten-one");
  EXPECT_EQ(name_of(t, "10.2.0.0"), "ten");
  EXPECT_EQ(name_of(t, "10.200.3.4"), "other");
  EXPECT_EQ(name_of(t, "10.255.255.255"), "ten");
  EXPECT_EQ(name_of(t, "11.0.0.0"), "(none)");
  EXPECT_EQ(name_of(t, "2001:db8::1"), "(none)");

  // Inheritance: a more specific prefix keeps what it leaves empty from its enclosing prefix.
  const auto* n = t.lookup(ip("10.1.2.200"));
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(*n, (NetworkAttributes{"upper-half", "lab", "par", "eu", "acme"}));
  n = t.lookup(ip("10.200.0.1"));
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(*n, (NetworkAttributes{"other", "core", "par", "eu", "acme"}));
}

TEST(Networks, IPv6AndDefaultRoutesAndTheEndsOfTheAddressSpace) {
  NetworkTable t({entry("::/0", {"v6-default", "", "", "", ""}), entry("0.0.0.0/0", {"v4-default", "", "", "", ""}),
                  entry("2001:db8::/32", {"doc", "", "", "", ""}), entry("2001:db8:1::/48", {"doc-one", "", "", "", ""}),
                  entry("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120", {"top", "", "", "", ""}),
                  entry("::/128", {"unspecified", "", "", "", ""})});
  EXPECT_EQ(name_of(t, "::"), "unspecified");
  EXPECT_EQ(name_of(t, "::1"), "v6-default");
  EXPECT_EQ(name_of(t, "0.0.0.0"), "v4-default");
  EXPECT_EQ(name_of(t, "255.255.255.255"), "v4-default");
  EXPECT_EQ(name_of(t, "2001:db8::"), "doc");
  EXPECT_EQ(name_of(t, "2001:db8:1:ffff::5"), "doc-one");
  EXPECT_EQ(name_of(t, "2001:db8:2::"), "doc");
  EXPECT_EQ(name_of(t, "2001:db9::"), "v6-default");
  EXPECT_EQ(name_of(t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:feff"), "v6-default");
  EXPECT_EQ(name_of(t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00"), "top");
  EXPECT_EQ(name_of(t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), "top");
}

TEST(Networks, DuplicatePrefixesAreRefused) {
  EXPECT_THROW(NetworkTable({entry("192.0.2.0/24", {"a", "", "", "", ""}), entry("::ffff:192.0.2.0/120", {"b", "", "", "", ""})}),
               std::invalid_argument);
}

TEST(Networks, AgreesWithALinearScanOnRandomPrefixes) {
  std::mt19937_64 rng(4242);
  std::vector<NetworkTable::Entry> entries;
  std::vector<Prefix> prefixes;
  // Prefixes clustered under a few roots so that they nest often.
  const Ip6 roots[] = {ip("10.0.0.0"), ip("2001:db8::"), ip("::")};
  while (entries.size() < 400) {
    Ip6 a = roots[rng() % 3];
    for (int i = 0; i < 16; ++i) {
      if (a == roots[2] || i >= 12 || (i >= 4 && a != roots[0])) a[i] ^= static_cast<std::uint8_t>(rng() & (rng() % 4 ? 0x01 : 0xff));
    }
    const auto len = static_cast<std::uint8_t>(a == roots[0] ? 96 + rng() % 33 : rng() % 129);
    Prefix p{a, len};
    for (unsigned bit = len; bit < 128; ++bit) p.address[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
    bool dup = false;
    for (const auto& q : prefixes) dup = dup || (q.length == p.length && q.address == p.address);
    if (dup) continue;
    prefixes.push_back(p);
    entries.push_back({p, {std::to_string(entries.size()), "", "", "", ""}});
  }
  NetworkTable t(entries);
  for (int probe = 0; probe < 20000; ++probe) {
    // Probe addresses near prefix starts, where range boundaries are.
    Ip6 a = prefixes[rng() % prefixes.size()].address;
    a[15] ^= static_cast<std::uint8_t>(rng() % 3);
    if (rng() % 2) a[rng() % 16] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
    int best = -1;
    for (std::size_t i = 0; i < prefixes.size(); ++i) {
      if (prefixes[i].contains(a) && (best < 0 || prefixes[i].length > prefixes[static_cast<std::size_t>(best)].length))
        best = static_cast<int>(i);
    }
    const auto* n = t.lookup(a);
    ASSERT_EQ(n ? n->name : "(none)", best < 0 ? "(none)" : std::to_string(best)) << ip6_to_string(a);
  }
}

}  // namespace
}  // namespace sluice::transforms
