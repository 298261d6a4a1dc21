// Classifier rules: regex conditions, capture groups in results, first match per field, caching.
#include <gtest/gtest.h>

#include "core/metrics.hpp"
#include "transforms/classifier.hpp"

namespace sluice::transforms {
namespace {

ClassifierRuleConfig rule(std::vector<std::pair<std::string, std::string>> regexes,
                          std::vector<std::pair<std::string, std::string>> set) {
  ClassifierRuleConfig r;
  r.path = "test";
  r.regexes = std::move(regexes);
  r.set = std::move(set);
  return r;
}

ClassifierInput exporter(const char* address, std::string_view name) {
  ClassifierInput in;
  in.exporter_address = *ip6_parse(address);
  in.exporter_name = name;
  return in;
}

ClassifierInput iface(std::string_view name, std::string_view description, std::uint32_t index = 1, std::uint32_t speed = 0) {
  ClassifierInput in;
  in.exporter_address = *ip6_parse("192.0.2.1");
  in.exporter_name = "par1-edge-01";
  in.name = name;
  in.description = description;
  in.index = index;
  in.speed = speed;
  return in;
}

std::vector<std::string> errors_of(ClassifierKind kind, const ClassifierRuleConfig& r) {
  std::vector<std::string> out;
  Classifier::validate(kind, r, [&](const std::string& key, const std::string& msg) { out.push_back(key + ": " + msg); });
  return out;
}

TEST(Classifier, ExporterNamesSplitIntoSiteRoleAndRegionWithNumberedAndNamedGroups) {
  MetricsRegistry metrics;
  Classifier c(ClassifierKind::exporter,
               {rule({{"name", R"(^(?<site>[a-z]+)\d+-(edge|core)-\d+\.(?P<region>eu|us)\.)"}},
                     {{"site", "${site}"}, {"role", "$2"}, {"region", "${region}"}, {"group", "${2}-${site}"}}),
                rule({}, {{"group", "unclassified"}, {"tenant", "acme"}})},
               100, metrics);
  auto r = c.evaluate(exporter("192.0.2.1", "par1-edge-01.eu.example.net"));
  EXPECT_EQ(r.get(ExporterField::site), "par");
  EXPECT_EQ(r.get(ExporterField::role), "edge");
  EXPECT_EQ(r.get(ExporterField::region), "eu");
  EXPECT_EQ(r.get(ExporterField::group), "edge-par");
  EXPECT_EQ(r.get(ExporterField::tenant), "acme");  // the catch-all fills what the first rule left
  EXPECT_FALSE(r.has(ExporterField::name));

  r = c.evaluate(exporter("192.0.2.1", "switch.lab"));
  EXPECT_EQ(r.get(ExporterField::site), "");
  EXPECT_EQ(r.get(ExporterField::group), "unclassified");
  EXPECT_EQ(r.get(ExporterField::tenant), "acme");
}

TEST(Classifier, ExporterAddressesMatchByPrefixAndNameCanBeRewritten) {
  MetricsRegistry metrics;
  auto by_address = rule({}, {{"site", "lab"}, {"name", "lab-router"}});
  by_address.exporter_addresses = {"198.51.100.0/24", "2001:db8::/32"};
  Classifier c(ClassifierKind::exporter,
               {by_address, rule({{"name", R"(^([^.]+)\.example\.net$)"}}, {{"name", "$1"}, {"site", "dc"}})}, 100, metrics);
  auto r = c.evaluate(exporter("198.51.100.9", "r1.example.net"));
  EXPECT_EQ(r.get(ExporterField::site), "lab");
  EXPECT_EQ(r.get(ExporterField::name), "lab-router");
  r = c.evaluate(exporter("2001:db8::7", ""));
  EXPECT_EQ(r.get(ExporterField::site), "lab");
  r = c.evaluate(exporter("203.0.113.1", "r1.example.net"));
  EXPECT_EQ(r.get(ExporterField::site), "dc");
  EXPECT_EQ(r.get(ExporterField::name), "r1");
}

TEST(Classifier, InterfaceDescriptionsGiveConnectivityProviderAndBoundary) {
  MetricsRegistry metrics;
  auto core = rule({}, {{"connectivity", "core"}, {"boundary", "internal"}});
  core.min_speed = 100'000;
  auto mgmt = rule({}, {{"connectivity", "management"}, {"boundary", "internal"}});
  mgmt.indexes = {1000, 1001};
  Classifier c(ClassifierKind::interface,
               {rule({{"description", R"((?i)^(transit|ix|pni):\s*(\S+))"}},
                     {{"connectivity", "$1"}, {"provider", "$2"}, {"boundary", "external"}}),
                rule({{"name", R"(^(et|xe)-(\d+/\d+/\d+))"}, {"description", R"(^\[(\w+)\] (.*)$)"}},
                     {{"provider", "${description.1}"}, {"description", "${description.2} (${name.2})"}, {"boundary", "external"}}),
                core, mgmt, rule({{"name", "^lo"}}, {{"boundary", "undefined"}, {"connectivity", "loopback"}})},
               100, metrics);

  auto r = c.evaluate(iface("et-0/0/1", "Transit: Cogent 10G"));
  EXPECT_EQ(r.get(InterfaceField::connectivity), "Transit");
  EXPECT_EQ(r.get(InterfaceField::provider), "Cogent");
  EXPECT_EQ(r.boundary, Boundary::external);
  EXPECT_FALSE(r.has(InterfaceField::name));

  r = c.evaluate(iface("xe-1/2/3", "[Zayo] wave to fra1"));
  EXPECT_EQ(r.get(InterfaceField::provider), "Zayo");
  EXPECT_EQ(r.get(InterfaceField::description), "wave to fra1 (1/2/3)");
  EXPECT_EQ(r.boundary, Boundary::external);
  EXPECT_EQ(r.get(InterfaceField::connectivity), "");

  r = c.evaluate(iface("ae0", "to core", 7, 400'000));
  EXPECT_EQ(r.get(InterfaceField::connectivity), "core");
  EXPECT_EQ(r.boundary, Boundary::internal);
  r = c.evaluate(iface("ae1", "to core", 7, 10'000));
  EXPECT_EQ(r.set_mask, 0);
  EXPECT_EQ(r.boundary, Boundary::undefined);

  r = c.evaluate(iface("fxp0", "", 1001));
  EXPECT_EQ(r.get(InterfaceField::connectivity), "management");
  r = c.evaluate(iface("lo0", ""));
  EXPECT_EQ(r.get(InterfaceField::connectivity), "loopback");
  EXPECT_TRUE(r.has(InterfaceField::boundary));
  EXPECT_EQ(r.boundary, Boundary::undefined);
}

TEST(Classifier, AnEmptyResultLeavesTheFieldToLaterRulesAndABadBoundaryIsCounted) {
  MetricsRegistry metrics;
  Classifier c(ClassifierKind::interface,
               {rule({{"description", R"(^(?:peer (\w+) ?)?(?:kind=(\w+))?)"}}, {{"provider", "$1"}, {"boundary", "$2"}}),
                rule({}, {{"provider", "unknown"}})},
               100, metrics);
  auto r = c.evaluate(iface("x", "kind=external"));
  EXPECT_EQ(r.get(InterfaceField::provider), "unknown");
  EXPECT_EQ(r.boundary, Boundary::external);
  r = c.evaluate(iface("x", "peer acme kind=sideways"));
  EXPECT_EQ(r.get(InterfaceField::provider), "acme");
  EXPECT_FALSE(r.has(InterfaceField::boundary));
  EXPECT_EQ(metrics.counter_total("enrich_classifier_invalid_values_total"), 1u);
}

TEST(Classifier, ResultsAreCachedPerInput) {
  MetricsRegistry metrics;
  Classifier c(ClassifierKind::interface, {rule({{"name", "^(.*)$"}}, {{"provider", "p-$1"}})}, 2, metrics);
  auto a = c.classify(iface("a", ""));
  auto again = c.classify(iface("a", ""));
  EXPECT_EQ(a.get(), again.get());
  EXPECT_EQ(a->get(InterfaceField::provider), "p-a");
  EXPECT_EQ(metrics.counter_total("enrich_classifier_evaluations_total"), 1u);
  EXPECT_EQ(c.classify(iface("a", "other description"))->get(InterfaceField::provider), "p-a");
  EXPECT_EQ(metrics.counter_total("enrich_classifier_evaluations_total"), 2u);
  // The cache holds 2: a third input clears it, and results already handed out stay valid.
  EXPECT_EQ(c.classify(iface("b", ""))->get(InterfaceField::provider), "p-b");
  EXPECT_EQ(a->get(InterfaceField::provider), "p-a");
  c.classify(iface("a", ""));
  EXPECT_EQ(metrics.counter_total("enrich_classifier_evaluations_total"), 4u);
}

TEST(Classifier, RuleErrorsNameTheKeyAndSayWhatIsWrong) {
  using V = std::vector<std::string>;
  EXPECT_EQ(errors_of(ClassifierKind::exporter, rule({{"name", "(unclosed"}}, {{"site", "x"}})).size(), 1u);
  EXPECT_EQ(errors_of(ClassifierKind::exporter, rule({{"name", "^(a)"}}, {{"site", "$2"}})),
            V{"set.site: $2 refers to a group the regex does not have (it has 1)"});
  EXPECT_EQ(errors_of(ClassifierKind::interface, rule({{"name", "(a)"}, {"description", "(b)"}}, {{"provider", "$1"}})),
            V{"set.provider: $1 needs exactly one regex under match (this rule has 2); use ${key.1} or a named group"});
  EXPECT_EQ(errors_of(ClassifierKind::interface, rule({{"name", "(a)"}}, {{"provider", "${nope}"}})),
            V{"set.provider: ${nope} names no group of this rule's regexes"});
  EXPECT_EQ(errors_of(ClassifierKind::interface, rule({{"name", "(a)"}}, {{"provider", "${description.1}"}})),
            V{"set.provider: ${description.1}: there is no regex under match.description"});
  EXPECT_EQ(errors_of(ClassifierKind::interface, rule({}, {{"boundary", "outside"}})),
            V{"set.boundary: expected external, internal or undefined, got 'outside'"});
  EXPECT_EQ(errors_of(ClassifierKind::interface, rule({}, {{"colour", "red"}})),
            V{"set.colour: unknown field (known: connectivity, provider, boundary, name, description)"});
  EXPECT_EQ(errors_of(ClassifierKind::exporter, rule({}, {})),
            V{"set: required: what the rule sets, among group, role, site, region, tenant, name"});
  EXPECT_EQ(errors_of(ClassifierKind::exporter, rule({{"description", "x"}}, {{"site", "x"}})),
            V{"match.description: not a regex field of this kind of rule"});
  EXPECT_EQ(errors_of(ClassifierKind::exporter, rule({}, {{"site", "cost $5"}})).size(), 1u);
  EXPECT_TRUE(errors_of(ClassifierKind::exporter, rule({}, {{"site", "cost $$5"}})).empty());
  EXPECT_EQ(errors_of(ClassifierKind::interface, rule({{"name", "(?<a>x)"}, {"description", "(?<a>y)"}}, {{"provider", "${a}"}})),
            V{"match.description: the group name 'a' is also used in match.name"});

  MetricsRegistry metrics;
  auto bad = rule({{"name", "^(a)"}}, {{"site", "$3"}});
  bad.path = "outlet.flows.enrich.exporter_classifiers[4]";
  try {
    Classifier c(ClassifierKind::exporter, {bad}, 10, metrics);
    FAIL() << "a bad rule was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "outlet.flows.enrich.exporter_classifiers[4].set.site: $3 refers to a group the regex does not have (it has 1)");
  }
}

TEST(Classifier, DollarDollarAndBracketsInsideCharacterClassesAreLiterals) {
  MetricsRegistry metrics;
  Classifier c(ClassifierKind::interface, {rule({{"description", R"(^[(]([^)]+)[)] (\$\w+))"}}, {{"provider", "$1:$2:$$"}})}, 10, metrics);
  EXPECT_EQ(c.evaluate(iface("x", "(acme) $cost")).get(InterfaceField::provider), "acme:$cost:$");
}

}  // namespace
}  // namespace sluice::transforms
