// Reading the etcd discovery config and the JSON values of discovery keys, with their exact errors.
#include <gtest/gtest.h>

#include <cstdlib>

#include "sources/files/etcd_discovery.hpp"

namespace sluice::sources {
namespace {

EtcdDiscoveryConfig read(const std::string& yaml) {
  auto reader = config::ConfigReader::root(YAML::Load(yaml));
  auto c = read_etcd_discovery_config(reader);
  reader.check();
  return c;
}

std::vector<std::string> errors_of(const std::string& yaml) {
  try {
    read(yaml);
  } catch (const config::ConfigError& e) {
    return e.errors();
  }
  return {};
}

TEST(EtcdDiscoveryConfig, DefaultsAndYamlList) {
  const auto c = read("endpoints: [http://10.0.0.1:2379, 'etcd-2:2379']\nhost: web-1\n");
  EXPECT_EQ(c.client.endpoints, (std::vector<std::string>{"http://10.0.0.1:2379", "etcd-2:2379"}));
  EXPECT_EQ(c.client.dial_timeout, std::chrono::milliseconds(2000));
  EXPECT_EQ(c.client.request_timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(c.prefix, "/sluice/logs/");
  EXPECT_EQ(c.host, "web-1");
  EXPECT_EQ(c.backoff_initial, std::chrono::milliseconds(500));
  EXPECT_EQ(c.backoff_max, std::chrono::milliseconds(30000));
}

TEST(EtcdDiscoveryConfig, CommaListFromEnvironment) {
  ::setenv("SLUICE_TEST_ETCD_ENDPOINTS", "http://127.0.0.1:2379, https://etcd.example:2379 ,127.0.0.1:22379", 1);
  const auto c = read(
      "endpoints: ${SLUICE_TEST_ETCD_ENDPOINTS}\nprefix: /agents/\nhost: db-7\ndial_timeout: 250ms\n"
      "request_timeout: 3s\nbackoff_initial: 100ms\nbackoff_max: 2s\nusername: sluice\npassword: secret\n");
  ::unsetenv("SLUICE_TEST_ETCD_ENDPOINTS");
  EXPECT_EQ(c.client.endpoints,
            (std::vector<std::string>{"http://127.0.0.1:2379", "https://etcd.example:2379", "127.0.0.1:22379"}));
  EXPECT_EQ(c.prefix, "/agents/");
  EXPECT_EQ(c.host, "db-7");
  EXPECT_EQ(c.client.dial_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(c.client.request_timeout, std::chrono::milliseconds(3000));
  EXPECT_EQ(c.backoff_initial, std::chrono::milliseconds(100));
  EXPECT_EQ(c.backoff_max, std::chrono::milliseconds(2000));
  EXPECT_EQ(c.client.username, "sluice");
  EXPECT_EQ(c.client.password, "secret");
}

TEST(EtcdDiscoveryConfig, HostDefaultsToHostname) {
  EXPECT_FALSE(read("endpoints: 127.0.0.1:2379\n").host.empty());
}

TEST(EtcdDiscoveryConfig, ErrorsNameTheirKeys) {
  EXPECT_EQ(errors_of("prefix: /x/\n"),
            (std::vector<std::string>{"endpoints: expected at least one etcd endpoint, such as http://127.0.0.1:2379 "
                                      "(a list, or comma-separated as in SLUICE_ETCD_ENDPOINTS)"}));
  EXPECT_EQ(errors_of("endpoints: ''\n").size(), 1u);  // an empty variable is no endpoint either
  EXPECT_EQ(errors_of("endpoints: [ftp://x:1, 'etcd:port', 'a:1/path']\n"),
            (std::vector<std::string>{
                "endpoints: expected http://host:port, https://host:port or host:port, got \"ftp://x:1\"",
                "endpoints: expected http://host:port, https://host:port or host:port, got \"etcd:port\"",
                "endpoints: expected http://host:port, https://host:port or host:port, got \"a:1/path\""}));
  EXPECT_EQ(errors_of("endpoints: a:1\nprefix: /no/slash\nhost: a/b\nbackoff_initial: 5s\nbackoff_max: 1s\nport: 3\n"),
            (std::vector<std::string>{
                "prefix: expected a key prefix ending in '/', such as /sluice/logs/, got \"/no/slash\"",
                "host: expected a host name without '/', got \"a/b\"",
                "backoff_max: expected at least backoff_initial (5000 ms), got 1000 ms",
                "port: unknown key (known keys here: backoff_initial, backoff_max, dial_timeout, endpoints, host, "
                "password, prefix, request_timeout, username, watch_idle_timeout)"}));
  EXPECT_EQ(errors_of("endpoints: a:1\ndial_timeout: soon\n"),
            (std::vector<std::string>{
                "dial_timeout: expected a duration such as 500ms, 10s, 5m or 1h, got 'soon'"}));
}

TEST(EtcdSourceValue, ValidJsonObject) {
  const auto parsed = parse_etcd_source(
      "nginx", R"({"include": ["/var/log/nginx/*.log"], "exclude": ["*.gz"], "topic": "web", "start_at": "end"})");
  ASSERT_TRUE(parsed.config) << ::testing::PrintToString(parsed.errors);
  EXPECT_EQ(parsed.config->name, "nginx");
  EXPECT_EQ(parsed.config->include, (std::vector<std::string>{"/var/log/nginx/*.log"}));
  EXPECT_EQ(parsed.config->exclude, (std::vector<std::string>{"*.gz"}));
  EXPECT_EQ(parsed.config->topic, "web");
  EXPECT_EQ(parsed.config->start_at, StartAt::end);
  EXPECT_TRUE(parsed.errors.empty());
}

TEST(EtcdSourceValue, EveryErrorReported) {
  auto parsed = parse_etcd_source("app", R"({"include": ["relative/*.log"], "start_at": "middle", "colour": 1})");
  EXPECT_FALSE(parsed.config);
  ASSERT_EQ(parsed.errors.size(), 3u) << ::testing::PrintToString(parsed.errors);
  EXPECT_EQ(parsed.errors[0], "include: expected absolute glob patterns, got \"relative/*.log\"");
  EXPECT_EQ(parsed.errors[1], "start_at: expected one of beginning, end, got 'middle'");
  EXPECT_EQ(parsed.errors[2].rfind("colour: unknown key", 0), 0u) << parsed.errors[2];

  parsed = parse_etcd_source("app", R"({"include": ["/a"],)");
  EXPECT_FALSE(parsed.config);
  ASSERT_EQ(parsed.errors.size(), 1u);
  EXPECT_EQ(parsed.errors[0].rfind("not valid JSON: ", 0), 0u) << parsed.errors[0];

  parsed = parse_etcd_source("app", R"(["/var/log/a.log"])");
  EXPECT_EQ(parsed.errors, (std::vector<std::string>{
                               "expected a JSON object such as {\"include\": [\"/var/log/app/*.log\"], \"topic\": \"logs\"}"}));
  parsed = parse_etcd_source("app", "{}");
  EXPECT_EQ(parsed.errors, (std::vector<std::string>{"include: expected a list of glob patterns (at least one)"}));
  parsed = parse_etcd_source("", R"({"include": ["/a"]})");
  EXPECT_EQ(parsed.errors, (std::vector<std::string>{"the key names no source: write <prefix><host>/<name>"}));
}

}  // namespace
}  // namespace sluice::sources
