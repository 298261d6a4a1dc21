// inlet.falcon and inlet.graphite: the shipped configs open the four metric receivers on the DESIGN §3
// variables, both kinds share one topic, and mistakes are reported with their key paths.
#include <gtest/gtest.h>

#include <algorithm>

#include "config/config.hpp"
#include "config/reader.hpp"

namespace sluice::config {
namespace {

bool any_starts_with(const std::vector<std::string>& v, const std::string& prefix) {
  return std::any_of(v.begin(), v.end(), [&](const std::string& s) { return s.rfind(prefix, 0) == 0; });
}

TEST(MetricReceiversConfig, ShippedConfigsUseTheDesignVariables) {
  for (const char* var : {"SLUICE_FALCON_HTTP_LISTEN", "SLUICE_FALCON_RPC_LISTEN", "SLUICE_FALCON_SOCKET_LISTEN",
                          "SLUICE_GRAPHITE_LISTEN"}) {
    unsetenv(var);
  }
  {
    const auto c = load_config_file(std::string(SLUICE_SOURCE_DIR) + "/config/inlet.yaml");
    ASSERT_TRUE(c.inlet.falcon && c.inlet.falcon->http && c.inlet.falcon->rpc && c.inlet.falcon->socket);
    EXPECT_EQ(c.inlet.falcon->http->listen, "0.0.0.0:6060");
    EXPECT_EQ(c.inlet.falcon->rpc->listen, "0.0.0.0:8433");
    EXPECT_EQ(c.inlet.falcon->socket->listen, "0.0.0.0:4444");
    ASSERT_TRUE(c.inlet.graphite);
    EXPECT_EQ(c.inlet.graphite->listen, "0.0.0.0:2003");
    EXPECT_EQ(c.topic_for(SourceKind::falcon), "sluice-metrics");
    EXPECT_EQ(c.topic_for(SourceKind::graphite), "sluice-metrics");
  }
  setenv("SLUICE_GRAPHITE_LISTEN", "127.0.0.1:12003", 1);
  const auto c = load_config_file(std::string(SLUICE_SOURCE_DIR) + "/config/inlet.yaml");
  EXPECT_EQ(c.inlet.graphite->listen, "127.0.0.1:12003");
  EXPECT_EQ(c.inlet.falcon->rpc->max_message, 16u << 20);
  unsetenv("SLUICE_GRAPHITE_LISTEN");
}

TEST(MetricReceiversConfig, ValuesAndDefaults) {
  const auto c = parse_config(R"(
inlet:
  falcon:
    http: {listen: "127.0.0.1:6060", max_body: 1MiB, threads: 4}
    rpc: {listen: "127.0.0.1:8433", max_object: 2MiB, idle_timeout: 30s, workers: 2}
  graphite: {listen: "[::1]:2003", max_line: 1KiB, max_connections: 10}
bus:
  kafka: {brokers: "127.0.0.1:9092", topic_prefix: "t-"}
)");
  ASSERT_TRUE(c.inlet.falcon);
  EXPECT_EQ(c.inlet.falcon->http->max_body, 1u << 20);
  EXPECT_EQ(c.inlet.falcon->http->threads, 4);
  EXPECT_EQ(c.inlet.falcon->http->idle_timeout, std::chrono::seconds(5));
  EXPECT_EQ(c.inlet.falcon->rpc->max_message, 2u << 20);
  EXPECT_EQ(c.inlet.falcon->rpc->idle_timeout, std::chrono::seconds(30));
  EXPECT_EQ(c.inlet.falcon->rpc->workers, 2);
  EXPECT_FALSE(c.inlet.falcon->socket);
  EXPECT_EQ(c.inlet.graphite->listen, "[::1]:2003");
  EXPECT_EQ(c.inlet.graphite->max_message, 1024u);
  EXPECT_EQ(c.inlet.graphite->max_connections, 10);
  EXPECT_EQ(c.inlet.graphite->idle_timeout, std::chrono::minutes(5));
  EXPECT_EQ(c.topic_for(SourceKind::graphite), "t-metrics");
  EXPECT_FALSE(c.inlet.empty());
}

TEST(MetricReceiversConfig, MistakesNameTheirKeyPaths) {
  try {
    parse_config(R"(
inlet:
  falcon:
    rpc: {listen: "nowhere", max_object: 10}
    socket: {max_line: 1KiB, colour: red}
    smtp: {}
  graphite: {listen: "127.0.0.1:2003", idle_timeout: 0s}
)");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    const auto& errors = e.errors();
    EXPECT_TRUE(any_starts_with(errors, "inlet.falcon.rpc.listen: ")) << e.what();
    EXPECT_TRUE(any_starts_with(errors, "inlet.falcon.rpc.max_object: ")) << e.what();
    EXPECT_TRUE(any_starts_with(errors, "inlet.falcon.socket.listen: required")) << e.what();
    EXPECT_TRUE(any_starts_with(errors, "inlet.falcon.socket.colour: unknown key")) << e.what();
    EXPECT_TRUE(any_starts_with(errors, "inlet.falcon.smtp: unknown key")) << e.what();
    EXPECT_TRUE(any_starts_with(errors, "inlet.graphite.idle_timeout: must be positive")) << e.what();
  }
}

}  // namespace
}  // namespace sluice::config
