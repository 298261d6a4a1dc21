#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "config/config.hpp"
#include "config/reader.hpp"

namespace sluice::config {
namespace {

std::vector<std::string> errors_of(const std::string& yaml) {
  try {
    parse_config(yaml);
  } catch (const ConfigError& e) {
    return e.errors();
  }
  return {};
}

bool any_starts_with(const std::vector<std::string>& errors, const std::string& prefix) {
  for (const auto& e : errors) {
    if (e.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

TEST(Config, EnvironmentSubstitutionWithDefaults) {
  setenv("SLUICE_TEST_SET", "from-env", 1);
  unsetenv("SLUICE_TEST_UNSET");
  std::string err;
  EXPECT_EQ(substitute_env("a-${SLUICE_TEST_SET}-b", &err), "a-from-env-b");
  EXPECT_EQ(substitute_env("${SLUICE_TEST_UNSET:-fallback}", &err), "fallback");
  EXPECT_EQ(substitute_env("${SLUICE_TEST_SET:-fallback}", &err), "from-env");
  EXPECT_TRUE(err.empty());
  substitute_env("${SLUICE_TEST_UNSET}", &err);
  EXPECT_NE(err.find("SLUICE_TEST_UNSET is not set"), std::string::npos);
}

TEST(Config, ShippedConfigurationsAreValid) {
  unsetenv("SLUICE_DATA_DIR");
  for (const char* name : {"quickstart.yaml", "inlet.yaml", "outlet.yaml", "transfer.yaml"}) {
    SCOPED_TRACE(name);
    const auto c = load_config_file(std::string(SLUICE_SOURCE_DIR) + "/config/" + name);
    EXPECT_EQ(c.admin_listen.substr(0, 10), "127.0.0.1:");
  }
  const auto q = load_config_file(std::string(SLUICE_SOURCE_DIR) + "/config/quickstart.yaml");
  ASSERT_TRUE(q.outlet && q.outlet->chdb);
  EXPECT_EQ(q.outlet->chdb->path, "./data/chdb");
  EXPECT_EQ(q.inlet.netflow->listen, "0.0.0.0:2055");
  EXPECT_EQ(q.inlet.sflow->listen, "0.0.0.0:6343");
  EXPECT_FALSE(q.bus.kafka);
  const auto o = load_config_file(std::string(SLUICE_SOURCE_DIR) + "/config/outlet.yaml");
  ASSERT_TRUE(o.outlet && o.outlet->clickhouse && o.bus.kafka);
  EXPECT_EQ(o.outlet->clickhouse->url, "http://127.0.0.1:8123");
  EXPECT_EQ(o.bus.kafka->brokers, "127.0.0.1:9092");
  EXPECT_EQ(o.topic_for(SourceKind::netflow), "sluice-flows");
}

TEST(Config, EnvironmentOverridesShippedDefaults) {
  setenv("SLUICE_CLICKHOUSE_URL", "http://10.1.2.3:8124", 1);
  setenv("SLUICE_KAFKA_BROKERS", "k1:9092,k2:9092", 1);
  const auto o = load_config_file(std::string(SLUICE_SOURCE_DIR) + "/config/outlet.yaml");
  EXPECT_EQ(o.outlet->clickhouse->url, "http://10.1.2.3:8124");
  EXPECT_EQ(o.bus.kafka->brokers, "k1:9092,k2:9092");
  unsetenv("SLUICE_CLICKHOUSE_URL");
  unsetenv("SLUICE_KAFKA_BROKERS");
}

TEST(Config, TransferReadsOpenFalconClusterNotationFromTheEnvironment) {
  for (const char* v : {"SLUICE_GRAPH_CLUSTER", "SLUICE_JUDGE_CLUSTER", "SLUICE_TSDB_ADDRESS", "SLUICE_GRAPHITE_CLUSTER"}) {
    unsetenv(v);
  }
  const auto path = std::string(SLUICE_SOURCE_DIR) + "/config/transfer.yaml";
  // Nothing set: every backend is off, the receivers listen on Open-Falcon's and Graphite's ports.
  const auto off = load_config_file(path);
  ASSERT_TRUE(off.outlet && off.outlet->metrics);
  EXPECT_FALSE(off.outlet->metrics->graph || off.outlet->metrics->judge || off.outlet->metrics->tsdb ||
               off.outlet->metrics->graphite);
  EXPECT_EQ(off.inlet.falcon->http->listen, "0.0.0.0:6060");
  EXPECT_EQ(off.inlet.falcon->rpc->listen, "0.0.0.0:8433");
  EXPECT_EQ(off.inlet.falcon->socket->listen, "0.0.0.0:4444");
  EXPECT_EQ(off.inlet.graphite->listen, "0.0.0.0:2003");
  EXPECT_EQ(off.topic_for(SourceKind::falcon), "sluice-metrics");

  setenv("SLUICE_GRAPH_CLUSTER", R"({"graph-00":"10.0.0.1:6070, 10.0.0.2:6070","graph-01":"10.0.0.3:6070"})", 1);
  setenv("SLUICE_JUDGE_CLUSTER", R"({"judge-00":"10.0.0.4:6080"})", 1);
  setenv("SLUICE_TSDB_ADDRESS", "10.0.0.5:4242", 1);
  setenv("SLUICE_GRAPHITE_CLUSTER", R"(["10.0.0.6:2003","10.0.0.7:2003"])", 1);
  const auto on = load_config_file(path);
  const auto& m = *on.outlet->metrics;
  ASSERT_TRUE(m.graph && m.judge && m.tsdb && m.graphite);
  EXPECT_EQ(m.graph->nodes.at("graph-00"), (std::vector<std::string>{"10.0.0.1:6070", "10.0.0.2:6070"}));
  EXPECT_EQ(m.graph->nodes.at("graph-01"), (std::vector<std::string>{"10.0.0.3:6070"}));
  EXPECT_EQ(m.graph->replicas, 500);
  EXPECT_EQ(m.judge->nodes.at("judge-00"), (std::vector<std::string>{"10.0.0.4:6080"}));
  EXPECT_EQ(m.tsdb->address, "10.0.0.5:4242");
  EXPECT_EQ(m.graphite->destinations, (std::vector<std::string>{"10.0.0.6:2003", "10.0.0.7:2003"}));
  setenv("SLUICE_GRAPHITE_CLUSTER", "10.0.0.6:2003,10.0.0.7:2003=b", 1);
  EXPECT_EQ(load_config_file(path).outlet->metrics->graphite->destinations,
            (std::vector<std::string>{"10.0.0.6:2003", "10.0.0.7:2003=b"}));
  for (const char* v : {"SLUICE_GRAPH_CLUSTER", "SLUICE_JUDGE_CLUSTER", "SLUICE_TSDB_ADDRESS", "SLUICE_GRAPHITE_CLUSTER"}) {
    unsetenv(v);
  }
  // An old transfer's cluster map pasted as YAML, and a JSON default inside ${...}.
  const auto pasted = parse_config(R"(
outlet:
  chdb: {path: /tmp/x}
  metrics:
    graph:
      cluster: {"graph-00": "127.0.0.1:6070", "graph-01": "127.0.0.1:6071"}
    judge:
      cluster: ${SLUICE_TEST_UNSET_CLUSTER:-{"judge-00":"127.0.0.1:6080"}}
)");
  EXPECT_EQ(pasted.outlet->metrics->graph->nodes.size(), 2u);
  EXPECT_EQ(pasted.outlet->metrics->judge->nodes.at("judge-00"), (std::vector<std::string>{"127.0.0.1:6080"}));
  const auto errors = errors_of(R"(
outlet:
  chdb: {path: /tmp/x}
  metrics:
    graph:
      cluster: '{"graph-00": "no-port"}'
    judge:
      cluster: 'not json'
    graphite:
      destinations: [a:1]
      hash: md5
)");
  EXPECT_TRUE(any_starts_with(errors, "outlet.metrics.graph.cluster.graph-00: \"no-port\" is not host:port"));
  EXPECT_TRUE(any_starts_with(errors, "outlet.metrics.judge.cluster: expected a mapping, or a JSON object"));
  EXPECT_TRUE(any_starts_with(errors, "outlet.metrics.graphite.hash:"));
}

TEST(Config, ErrorsNameTheKeyPathAndWhatWasExpected) {
  const auto errors = errors_of(R"(
outlet:
  clickhouse:
    url: localhost:8123
  batch:
    max_rows: many
    max_delay: soon
inlet:
  netflow:
    listen: 2055
    colour: blue
bus:
  memory:
    max_bytes: lots
)");
  EXPECT_TRUE(any_starts_with(errors, "outlet.clickhouse.url: expected the ClickHouse HTTP interface URL"));
  EXPECT_TRUE(any_starts_with(errors, "outlet.batch.max_rows: expected an integer, got 'many'"));
  EXPECT_TRUE(any_starts_with(errors, "outlet.batch.max_delay: expected a duration"));
  EXPECT_TRUE(any_starts_with(errors, "inlet.netflow.listen: expected host:port"));
  EXPECT_TRUE(any_starts_with(errors, "inlet.netflow.colour: unknown key"));
  EXPECT_TRUE(any_starts_with(errors, "bus.memory.max_bytes: expected a size"));
  EXPECT_EQ(errors.size(), 6u) << ::testing::PrintToString(errors);
}

TEST(Config, UnknownTopLevelKeysAndMissingStoreAreErrors) {
  auto errors = errors_of("outlet: {}\nsluice_mode: turbo\n");
  EXPECT_TRUE(any_starts_with(errors, "sluice_mode: unknown key"));
  EXPECT_TRUE(any_starts_with(errors, "outlet.clickhouse: required: a store"));
  errors = errors_of("outlet:\n  chdb: {}\n  clickhouse: {url: 'http://x:1'}\n");
  EXPECT_TRUE(any_starts_with(errors, "outlet.chdb: choose one store"));
}

TEST(Config, BrokenYamlReportsTheLine) {
  const auto errors = errors_of("outlet:\n  batch: [1, 2\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("not valid YAML at line"), std::string::npos);
}

TEST(Config, DurationsAndSizes) {
  EXPECT_EQ(parse_duration("500ms")->count(), 500);
  EXPECT_EQ(parse_duration("2s")->count(), 2000);
  EXPECT_EQ(parse_duration("1.5m")->count(), 90'000);
  EXPECT_EQ(parse_duration("3")->count(), 3000);
  EXPECT_FALSE(parse_duration("3 fortnights"));
  EXPECT_EQ(*parse_size("64MiB"), 64ull << 20);
  EXPECT_EQ(*parse_size("1GB"), 1'000'000'000ull);
  EXPECT_EQ(*parse_size("4096"), 4096ull);
  EXPECT_FALSE(parse_size("-1"));
}

}  // namespace
}  // namespace sluice::config
