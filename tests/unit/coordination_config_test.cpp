// Reading the top-level coordination: section, with its exact key-path errors.
#include <gtest/gtest.h>

#include <cstdlib>

#include "coord/coordination_config.hpp"

namespace sluice::coord {
namespace {

using namespace std::chrono_literals;

std::optional<CoordinationConfig> read(const std::string& yaml) {
  auto root = config::ConfigReader::root(YAML::Load(yaml));
  auto c = read_coordination_config(root);
  root.check();
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

TEST(CoordinationConfig, AbsentSectionIsNoCoordination) {
  EXPECT_FALSE(read("admin: {listen: 127.0.0.1:8080}\n").has_value());
}

TEST(CoordinationConfig, Defaults) {
  const auto c = read("coordination:\n  endpoints: [http://10.0.0.1:2379]\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->etcd.endpoints, std::vector<std::string>{"http://10.0.0.1:2379"});
  EXPECT_EQ(c->etcd.request_timeout, 5000ms);
  EXPECT_EQ(c->prefix, "/sluice");
  EXPECT_EQ(c->instance_id, "");
  EXPECT_EQ(c->lease_ttl, 10s);
  EXPECT_TRUE(c->register_instance);
  EXPECT_TRUE(c->watch_jobs);
  EXPECT_EQ(c->backoff_initial, 500ms);
  EXPECT_EQ(c->backoff_max, 30s);
}

TEST(CoordinationConfig, EveryKey) {
  const auto c = read(R"(
coordination:
  endpoints: "etcd-1:2379,etcd-2:2379"
  username: sluice
  password: secret
  prefix: /prod/sluice/
  instance_id: edge-7
  lease_ttl: 15s
  register_instance: false
  watch_jobs: false
  backoff_initial: 200ms
  backoff_max: 5s
)");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->etcd.endpoints, (std::vector<std::string>{"etcd-1:2379", "etcd-2:2379"}));
  EXPECT_EQ(c->etcd.username, "sluice");
  EXPECT_EQ(c->prefix, "/prod/sluice");
  EXPECT_EQ(c->instance_id, "edge-7");
  EXPECT_EQ(c->lease_ttl, 15s);
  EXPECT_FALSE(c->register_instance);
  EXPECT_FALSE(c->watch_jobs);
  EXPECT_EQ(c->backoff_initial, 200ms);
  EXPECT_EQ(c->backoff_max, 5s);
}

TEST(CoordinationConfig, AnEmptyEndpointVariableTurnsCoordinationOff) {
  ::unsetenv("SLUICE_TEST_COORD_ENDPOINTS");
  EXPECT_FALSE(read("coordination:\n  endpoints: ${SLUICE_TEST_COORD_ENDPOINTS:-}\n  lease_ttl: 5s\n").has_value());
}

TEST(CoordinationConfig, ErrorsCarryKeyPaths) {
  EXPECT_EQ(errors_of(R"(
coordination:
  endpoints: [http://127.0.0.1:2379]
  prefix: sluice
  instance_id: a/b
  lease_ttl: 1s
  backoff_initial: 2s
  backoff_max: 1s
  colour: blue
)"),
            (std::vector<std::string>{
                "coordination.prefix: expected a key prefix starting with '/', such as /sluice, got \"sluice\"",
                "coordination.instance_id: expected an id without '/', got \"a/b\"",
                "coordination.lease_ttl: expected a duration between 2s and 1h, got 1000 ms",
                "coordination.backoff_max: expected at least backoff_initial (2000 ms), got 1000 ms",
                "coordination.colour: unknown key (known keys here: backoff_initial, backoff_max, dial_timeout, "
                "endpoints, instance_id, lease_ttl, password, prefix, register_instance, request_timeout, username, "
                "watch_idle_timeout, watch_jobs)"}));
  const auto missing = errors_of("coordination:\n  prefix: /sluice\n");
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0].rfind("coordination.endpoints: expected at least one etcd endpoint", 0), 0u) << missing[0];
}

}  // namespace
}  // namespace sluice::coord
