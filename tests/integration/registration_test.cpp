// InstanceRegistration against a real etcd 3.4: entries, their values, clean stop, death, lost leases, outages.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "coord/registration.hpp"
#include "fixtures/etcd_server.hpp"
#include "fixtures/process.hpp"

namespace sluice::coord {
namespace {

using namespace std::chrono_literals;
using sluice::testing::eventually;

EtcdClientConfig client_for(const std::string& endpoint) {
  EtcdClientConfig c;
  c.endpoints = {endpoint};
  c.dial_timeout = 300ms;
  c.request_timeout = 2s;
  return c;
}

RegistrationConfig instance(const std::string& id, const std::string& admin) {
  RegistrationConfig c;
  c.instance_id = id;
  c.admin_address = admin;
  c.lease_ttl = 2s;
  c.backoff_initial = 100ms;
  c.backoff_max = 400ms;
  return c;
}

// The value etcd holds for `key` as JSON; null when the key is absent.
nlohmann::json stored(const testing::EtcdServer& server, const std::string& key) {
  const auto out = server.ctl({"get", key, "--print-value-only"});
  if (out.empty()) return nullptr;
  return nlohmann::json::parse(out, nullptr, false);
}

std::vector<std::string> keys_under(const testing::EtcdServer& server, const std::string& prefix) {
  const auto out = server.ctl({"get", prefix, "--prefix", "--keys-only"});
  std::vector<std::string> keys;
  std::size_t start = 0;
  while (start < out.size()) {
    auto nl = out.find('\n', start);
    if (nl == std::string::npos) nl = out.size();
    if (nl > start) keys.push_back(out.substr(start, nl - start));
    start = nl + 1;
  }
  return keys;
}

TEST(InstanceRegistration, TwoInstancesAreListedWithTheirValues) {
  testing::EtcdServer server;
  MetricsRegistry metrics_a, metrics_b;
  InstanceRegistration a(instance("node-a:8080", "10.0.0.1:8080"), client_for(server.endpoint()), metrics_a);
  InstanceRegistration b(instance("node-b:8080", "10.0.0.2:8080"), client_for(server.endpoint()), metrics_b);
  a.set_jobs({"orders"});
  a.start();
  b.start();
  ASSERT_TRUE(eventually([&] { return a.status()["state"] == "registered" && b.status()["state"] == "registered"; }, 10s))
      << a.status().dump() << b.status().dump();
  EXPECT_EQ(keys_under(server, "/sluice/instances/"),
            (std::vector<std::string>{"/sluice/instances/node-a:8080", "/sluice/instances/node-b:8080"}));

  const auto list = a.list_instances();
  ASSERT_EQ(list.size(), 2u) << list.dump();
  EXPECT_EQ(list[0]["id"], "node-a:8080");
  EXPECT_EQ(list[0]["admin"], "10.0.0.1:8080");
  EXPECT_EQ(list[0]["jobs"], nlohmann::json({"orders"}));
  EXPECT_EQ(list[0]["version"], SLUICE_VERSION);
  EXPECT_EQ(list[0]["host"], local_hostname());
  ASSERT_TRUE(list[0]["started"].is_string());
  EXPECT_EQ(list[0]["started"].get<std::string>().size(), std::string("2026-11-21T19:26:00.123Z").size());
  EXPECT_EQ(list[1]["id"], "node-b:8080");
  EXPECT_EQ(list[1]["admin"], "10.0.0.2:8080");
  EXPECT_EQ(list[1]["jobs"], nlohmann::json::array());
  EXPECT_EQ(b.list_instances(), list);

  const auto cluster = b.cluster();
  EXPECT_EQ(cluster["instances"], list);
  EXPECT_TRUE(cluster["error"].is_null());
  EXPECT_EQ(cluster["self"]["id"], "node-b:8080");
  EXPECT_EQ(metrics_a.counter_total("coord_registration_leases_total"), 1u);
}

TEST(InstanceRegistration, SetJobsRewritesTheValue) {
  testing::EtcdServer server;
  MetricsRegistry metrics;
  InstanceRegistration a(instance("node-a:8080", "10.0.0.1:8080"), client_for(server.endpoint()), metrics);
  a.start();
  ASSERT_TRUE(eventually([&] { return stored(server, a.key()).is_object(); }, 10s));
  EXPECT_EQ(stored(server, a.key())["jobs"], nlohmann::json::array());
  a.set_jobs({"orders", "clicks"});
  EXPECT_TRUE(eventually([&] { return stored(server, a.key())["jobs"] == nlohmann::json({"orders", "clicks"}); }, 5s))
      << stored(server, a.key()).dump();
  a.set_jobs({});
  EXPECT_TRUE(eventually([&] { return stored(server, a.key())["jobs"] == nlohmann::json::array(); }, 5s));
  EXPECT_EQ(a.status()["lease_grants"], 1);
}

TEST(InstanceRegistration, StopRemovesTheEntryAtOnce) {
  testing::EtcdServer server;
  MetricsRegistry metrics;
  InstanceRegistration a(instance("node-a:8080", "10.0.0.1:8080"), client_for(server.endpoint()), metrics);
  a.start();
  ASSERT_TRUE(eventually([&] { return a.status()["state"] == "registered"; }, 10s));
  a.stop();
  // No waiting: the lease is revoked before stop() returns.
  EXPECT_EQ(keys_under(server, "/sluice/instances/"), std::vector<std::string>{});
  EXPECT_EQ(a.status()["state"], "stopped");
}

TEST(InstanceRegistration, AnAbandonedEntryDisappearsWhenItsLeaseExpires) {
  testing::EtcdServer server;
  MetricsRegistry metrics;
  InstanceRegistration a(instance("node-a:8080", "10.0.0.1:8080"), client_for(server.endpoint()), metrics);
  a.start();
  ASSERT_TRUE(eventually([&] { return a.status()["state"] == "registered"; }, 10s));
  const auto abandoned = std::chrono::steady_clock::now();
  a.abandon();  // as if the process died: no revoke, no more keep-alives
  EXPECT_EQ(keys_under(server, "/sluice/instances/"), std::vector<std::string>{"/sluice/instances/node-a:8080"});
  ASSERT_TRUE(eventually([&] { return keys_under(server, "/sluice/instances/").empty(); }, 10s));
  const auto gone_after = std::chrono::steady_clock::now() - abandoned;
  // Renewed at most TTL/3 before: gone between ~TTL*2/3 and TTL (plus etcd's expiry check granularity).
  EXPECT_GE(gone_after, 1s);
  EXPECT_LE(gone_after, 5s);
}

TEST(InstanceRegistration, ALostLeaseOrADeletedKeyIsRegisteredAgain) {
  testing::EtcdServer server;
  MetricsRegistry metrics;
  InstanceRegistration a(instance("node-a:8080", "10.0.0.1:8080"), client_for(server.endpoint()), metrics);
  a.start();
  ASSERT_TRUE(eventually([&] { return a.status()["state"] == "registered"; }, 10s));
  const auto first_lease = a.status()["lease"].get<std::string>();
  server.ctl({"lease", "revoke", first_lease});
  ASSERT_TRUE(eventually([&] { return a.status()["lease_grants"] == 2 && stored(server, a.key()).is_object(); }, 10s))
      << a.status().dump();
  EXPECT_NE(a.status()["lease"], first_lease);
  EXPECT_EQ(stored(server, a.key())["id"], "node-a:8080");
  EXPECT_EQ(metrics.counter_total("coord_registration_leases_total"), 2u);

  server.ctl({"del", a.key()});
  EXPECT_TRUE(eventually([&] { return stored(server, a.key()).is_object(); }, 10s));
  EXPECT_EQ(a.status()["lease_grants"], 2);  // the lease lived on: only the put was repeated
}

TEST(InstanceRegistration, EtcdRestartedAfterTheLeaseExpiredRegistersAgain) {
  testing::EtcdServer server;
  MetricsRegistry metrics;
  InstanceRegistration a(instance("node-a:8080", "10.0.0.1:8080"), client_for(server.endpoint()), metrics);
  a.start();
  ASSERT_TRUE(eventually([&] { return a.status()["state"] == "registered"; }, 10s));
  // etcd comes back where this instance cannot reach it, long enough for the lease to expire there.
  server.stop();
  server.start_on_other_port();
  ASSERT_TRUE(eventually([&] { return keys_under(server, "/sluice/instances/").empty(); }, 15s));
  EXPECT_EQ(a.status()["state"], "unreachable");
  EXPECT_GT(a.status()["errors"].get<int>(), 0);
  EXPECT_TRUE(a.status()["last_error"].is_string());
  server.stop();
  server.start();
  ASSERT_TRUE(eventually([&] { return a.status()["state"] == "registered" && stored(server, a.key()).is_object(); }, 15s))
      << a.status().dump();
  EXPECT_EQ(a.status()["lease_grants"], 2);
  EXPECT_GT(metrics.counter_total("coord_registration_errors_total"), 0u);
}

TEST(InstanceRegistration, UnreachableEtcdNeverBlocksTheCaller) {
  MetricsRegistry metrics;
  InstanceRegistration a(instance("node-a:8080", "10.0.0.1:8080"),
                         client_for("http://127.0.0.1:" + std::to_string(testing::free_port())), metrics);
  const auto t0 = std::chrono::steady_clock::now();
  a.start();
  a.set_jobs({"orders"});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 100ms);
  ASSERT_TRUE(eventually([&] { return a.status()["errors"].get<int>() >= 3; }, 10s)) << a.status().dump();
  EXPECT_EQ(a.status()["state"], "unreachable");
  EXPECT_EQ(a.status()["jobs"], nlohmann::json({"orders"}));
  const auto cluster = a.cluster();
  EXPECT_TRUE(cluster["error"].is_string());
  EXPECT_EQ(cluster["instances"], nlohmann::json::array());
}

TEST(InstanceRegistration, DefaultsFromTheCoordinationConfig) {
  CoordinationConfig c;
  const auto r = registration_config(c, "0.0.0.0:8181");
  EXPECT_EQ(r.instance_id, local_hostname() + ":8181");
  EXPECT_EQ(r.admin_address, local_hostname() + ":8181");
  EXPECT_EQ(r.prefix, "/sluice");
  EXPECT_EQ(r.lease_ttl, 10s);
  c.instance_id = "edge-1";
  EXPECT_EQ(registration_config(c, "10.1.2.3:8080").instance_id, "edge-1");
  EXPECT_EQ(registration_config(c, "10.1.2.3:8080").admin_address, "10.1.2.3:8080");
}

}  // namespace
}  // namespace sluice::coord
