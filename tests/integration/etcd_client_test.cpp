// EtcdClient against a real etcd 3.4: key ranges, deletes, leases (revoke and expiry), watches, compaction, failover.
#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "coord/etcd_client.hpp"
#include "fixtures/etcd_server.hpp"
#include "fixtures/process.hpp"

namespace sluice::coord {
namespace {

using namespace std::chrono_literals;
using sluice::testing::eventually;

EtcdClientConfig config_for(std::vector<std::string> endpoints) {
  EtcdClientConfig c;
  c.endpoints = std::move(endpoints);
  c.dial_timeout = 500ms;
  c.request_timeout = 2s;
  return c;
}

std::vector<std::string> keys_of(const EtcdClient::RangeResult& r) {
  std::vector<std::string> out;
  for (const auto& kv : r.kvs) out.push_back(kv.key);
  return out;
}

TEST(EtcdClient, PutRangeAndRemove) {
  testing::EtcdServer server;
  MetricsRegistry metrics;
  EtcdClient client(config_for({server.endpoint()}), metrics);
  std::string binary;
  for (int i = 0; i < 256; ++i) binary += char(i);
  client.put("/t/a/2", "two");
  client.put("/t/a/1", binary);
  client.put("/t/a0", "outside the prefix");
  client.put("/t/b", "other");

  const auto range = client.get_prefix("/t/a/");
  EXPECT_EQ(keys_of(range), (std::vector<std::string>{"/t/a/1", "/t/a/2"}));
  EXPECT_EQ(range.kvs[0].value, binary);
  EXPECT_EQ(range.kvs[1].value, "two");
  EXPECT_EQ(range.revision, 5);  // four puts after the empty store's revision 1
  EXPECT_EQ(range.kvs[1].mod_revision, 2);
  EXPECT_EQ(client.get("/t/b")->value, "other");
  EXPECT_EQ(client.get("/t/none"), std::nullopt);
  // etcdctl sees what the gateway wrote.
  EXPECT_EQ(server.ctl({"get", "/t/a/2", "--print-value-only"}), "two\n");

  client.remove("/t/a/2");
  EXPECT_EQ(keys_of(client.get_prefix("/t/a/")), (std::vector<std::string>{"/t/a/1"}));
  client.remove_prefix("/t/");
  EXPECT_TRUE(client.get_prefix("/t/").kvs.empty());
  EXPECT_EQ(client.get_prefix("").kvs.size(), 0u);
  EXPECT_EQ(metrics.counter_value("etcd_requests_total", {{"result", "ok"}}), 12u);
}

TEST(EtcdClient, LeaseRevokeDeletesItsKeys) {
  testing::EtcdServer server;
  MetricsRegistry metrics;
  EtcdClient client(config_for({server.endpoint()}), metrics);
  const auto lease = client.grant_lease(30s);
  client.put("/instances/a", R"({"admin":"127.0.0.1:8080"})", lease);
  EXPECT_EQ(client.get("/instances/a")->lease, lease);
  EXPECT_EQ(client.keep_alive(lease), 30s);
  client.revoke(lease);
  EXPECT_EQ(client.get("/instances/a"), std::nullopt);
  try {
    client.keep_alive(lease);
    FAIL() << "keep_alive of a revoked lease must throw";
  } catch (const EtcdError& e) {
    EXPECT_EQ(e.code(), kEtcdNotFound);
    EXPECT_EQ(e.endpoint(), server.endpoint());
  }
  try {
    client.revoke(lease);
    FAIL() << "revoking twice must throw";
  } catch (const EtcdError& e) {
    EXPECT_EQ(e.code(), kEtcdNotFound);
    EXPECT_NE(std::string(e.what()).find("requested lease not found"), std::string::npos) << e.what();
  }
  EXPECT_EQ(metrics.counter_value("etcd_requests_total", {{"result", "error"}}), 1u);  // the second revoke
}

TEST(EtcdClient, LeaseKeptAliveThenExpires) {
  testing::EtcdServer server;
  MetricsRegistry metrics;
  EtcdClient client(config_for({server.endpoint()}), metrics);
  const auto lease = client.grant_lease(2s);
  client.put("/instances/b", "alive", lease);
  // Kept alive for three TTLs: still there.
  const auto until = std::chrono::steady_clock::now() + 6s;
  while (std::chrono::steady_clock::now() < until) {
    EXPECT_EQ(client.keep_alive(lease), 2s);
    ASSERT_TRUE(client.get("/instances/b")) << "the key expired although its lease was kept alive";
    std::this_thread::sleep_for(500ms);  // a heartbeat period, not a wait for an outcome
  }
  // No more keepalives: etcd deletes the key once the TTL runs out.
  EXPECT_TRUE(eventually([&] { return !client.get("/instances/b"); }, 10s));
  EXPECT_THROW(client.keep_alive(lease), EtcdError);
}

TEST(EtcdClient, WatchDeliversPutsAndDeletesInOrderAndCancels) {
  testing::EtcdServer server;
  MetricsRegistry metrics;
  EtcdClient client(config_for({server.endpoint()}), metrics);
  client.put("/w/before", "x");  // revision 2, before the watch's start
  const auto start = client.get_prefix("/w/").revision + 1;

  std::mutex mutex;
  std::vector<std::string> seen;
  std::atomic<bool> cancel{false};
  EtcdClient::WatchEnd end;
  std::thread watcher([&] {
    end = client.watch_prefix("/w/", start, [&](const EtcdClient::WatchEvent& e) {
      std::lock_guard lock(mutex);
      seen.push_back((e.type == EtcdClient::WatchEvent::Type::put ? "put " : "del ") + e.kv.key + "=" + e.kv.value + "@" +
                     std::to_string(e.kv.mod_revision));
      return true;
    }, cancel);
  });
  client.put("/w/a", "1");
  client.put("/other", "not watched");
  client.put("/w/a", "2");
  client.remove("/w/a");
  client.put("/w/b", std::string("\0\n", 2));
  const std::vector<std::string> expected{"put /w/a=1@3", "put /w/a=2@5", "del /w/a=@6",
                                          std::string("put /w/b=\0\n@7", 13)};
  EXPECT_TRUE(eventually([&] { std::lock_guard lock(mutex); return seen.size() >= expected.size(); }, 10s));
  const auto cancelled_at = std::chrono::steady_clock::now();
  cancel = true;
  watcher.join();
  EXPECT_LT(std::chrono::steady_clock::now() - cancelled_at, 1s);
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(end.reason, EtcdClient::WatchEnd::Reason::cancelled);
  EXPECT_EQ(end.next_revision, 8);
}

TEST(EtcdClient, WatchFromCompactedRevisionSaysCompacted) {
  testing::EtcdServer server;
  MetricsRegistry metrics;
  EtcdClient client(config_for({server.endpoint()}), metrics);
  for (int i = 0; i < 5; ++i) client.put("/c/k", std::to_string(i));  // revisions 2..6
  server.ctl({"compact", "5"});
  std::atomic<bool> cancel{false};
  int events = 0;
  const auto end = client.watch_prefix("/c/", 3, [&](const EtcdClient::WatchEvent&) { return ++events > 0; }, cancel);
  EXPECT_EQ(end.reason, EtcdClient::WatchEnd::Reason::compacted);
  EXPECT_EQ(end.compact_revision, 5);
  EXPECT_EQ(events, 0);
  // From the compacted revision on, the watch works and replays history.
  std::vector<std::string> values;
  const auto end2 = client.watch_prefix("/c/", 5, [&](const EtcdClient::WatchEvent& e) {
    values.push_back(e.kv.value);
    return values.size() < 2;
  }, cancel);
  EXPECT_EQ(end2.reason, EtcdClient::WatchEnd::Reason::callback);
  EXPECT_EQ(values, (std::vector<std::string>{"3", "4"}));
  EXPECT_EQ(end2.next_revision, 7);
}

TEST(EtcdClient, WatchEndsWithErrorWhenServerStops) {
  testing::EtcdServer server;
  MetricsRegistry metrics;
  EtcdClient client(config_for({server.endpoint()}), metrics);
  std::atomic<bool> cancel{false}, watching{false};
  EtcdClient::WatchEnd end;
  std::thread watcher([&] {
    end = client.watch_prefix("/s/", 0, [&](const EtcdClient::WatchEvent&) { watching = true; return true; }, cancel);
  });
  // Watching from "now": puts made before the watch exists are not seen, so put until one is.
  ASSERT_TRUE(eventually([&] { client.put("/s/x", "1"); return watching.load(); }, 10s));
  server.stop();
  watcher.join();
  EXPECT_EQ(end.reason, EtcdClient::WatchEnd::Reason::error);
  EXPECT_GE(end.next_revision, 3);
  EXPECT_FALSE(end.error.empty());
}

TEST(EtcdClient, FailsOverToTheEndpointThatAnswers) {
  testing::EtcdServer server;
  MetricsRegistry metrics;
  const std::string dead = "http://127.0.0.1:" + std::to_string(sluice::testing::free_port());
  EtcdClient client(config_for({dead, server.endpoint()}), metrics);
  client.put("/f/a", "1");
  EXPECT_EQ(client.endpoint(), server.endpoint());
  EXPECT_EQ(client.get("/f/a")->value, "1");
  EXPECT_EQ(metrics.counter_value("etcd_requests_total", {{"result", "ok"}}), 2u);

  EtcdClient nobody(config_for({dead}), metrics);
  try {
    nobody.get_prefix("/f/");
    FAIL() << "no endpoint answers";
  } catch (const EtcdError& e) {
    EXPECT_TRUE(e.unreachable());
    EXPECT_EQ(e.endpoint(), dead);
    EXPECT_NE(std::string(e.what()).find("cannot reach etcd at " + dead), std::string::npos) << e.what();
  }
  std::atomic<bool> cancel{false};
  const auto end = nobody.watch_prefix("/f/", 0, [](const EtcdClient::WatchEvent&) { return true; }, cancel);
  EXPECT_EQ(end.reason, EtcdClient::WatchEnd::Reason::error);
  EXPECT_EQ(metrics.counter_value("etcd_requests_total", {{"result", "unreachable"}}), 2u);
}

TEST(EtcdClient, QuietWatchKeptByProgressNotificationsHungServerDetected) {
  testing::EtcdServer server({"--experimental-watch-progress-notify-interval=200ms"});
  MetricsRegistry metrics;
  auto config = config_for({server.endpoint()});
  config.watch_idle_timeout = 1s;
  EtcdClient client(config, metrics);
  client.put("/elsewhere", "1");  // revision 2
  std::atomic<bool> cancel{false}, ended{false};
  std::atomic<int> events{0};
  EtcdClient::WatchEnd end;
  std::thread watcher([&] {
    end = client.watch_prefix("/quiet/", 3, [&](const EtcdClient::WatchEvent&) { ++events; return true; }, cancel);
    ended = true;
  });
  // Three idle timeouts without an event on /quiet/: etcd's progress notifications keep the watch up.
  const auto quiet_until = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < quiet_until) {
    ASSERT_FALSE(ended.load()) << end.error;
    std::this_thread::sleep_for(100ms);
  }
  client.put("/quiet/a", "x");  // revision 3
  EXPECT_TRUE(eventually([&] { return events.load() == 1; }, 5s));
  // A hung server keeps its sockets open and says nothing: the watch ends after the idle timeout.
  server.freeze();
  const auto frozen_at = std::chrono::steady_clock::now();
  EXPECT_TRUE(eventually([&] { return ended.load(); }, 10s));
  EXPECT_LT(std::chrono::steady_clock::now() - frozen_at, 3s);
  watcher.join();
  server.thaw();
  EXPECT_EQ(end.reason, EtcdClient::WatchEnd::Reason::error);
  EXPECT_EQ(end.next_revision, 4);
  EXPECT_EQ(client.get("/quiet/a")->value, "x");  // the thawed server answers again
}

TEST(EtcdClient, AuthenticatesWithUserAndPassword) {
  testing::EtcdServer server;
  server.ctl({"user", "add", "root", "--new-user-password=s3cret"});
  server.ctl({"auth", "enable"});
  MetricsRegistry metrics;
  auto config = config_for({server.endpoint()});
  config.username = "root";
  config.password = "s3cret";
  EtcdClient client(config, metrics);
  client.put("/a/k", "v");
  EXPECT_EQ(client.get_prefix("/a/").kvs.at(0).value, "v");
  const auto lease = client.grant_lease(10s);
  EXPECT_EQ(client.keep_alive(lease), 10s);
  std::atomic<bool> cancel{false};
  std::string seen;
  const auto end = client.watch_prefix("/a/", 1, [&](const EtcdClient::WatchEvent& e) {
    seen = e.kv.key + "=" + e.kv.value;
    return false;
  }, cancel);
  EXPECT_EQ(end.reason, EtcdClient::WatchEnd::Reason::callback);
  EXPECT_EQ(seen, "/a/k=v");
  EXPECT_EQ(server.ctl({"--user", "root:s3cret", "get", "/a/k", "--print-value-only"}), "v\n");

  // Without credentials etcd refuses; with a wrong password too, and the error says so.
  EtcdClient anonymous(config_for({server.endpoint()}), metrics);
  try {
    anonymous.put("/a/k", "w");
    FAIL() << "etcd with auth enabled accepted an anonymous put";
  } catch (const EtcdError& e) {
    EXPECT_FALSE(e.unreachable()) << e.what();
  }
  config.password = "wrong";
  EtcdClient wrong(config, metrics);
  try {
    wrong.get_prefix("/a/");
    FAIL() << "etcd accepted a wrong password";
  } catch (const EtcdError& e) {
    EXPECT_FALSE(e.unreachable()) << e.what();
    EXPECT_NE(std::string(e.what()).find("refused user \"root\""), std::string::npos) << e.what();
  }
  EXPECT_EQ(server.ctl({"--user", "root:s3cret", "get", "/a/k", "--print-value-only"}), "v\n");
}

}  // namespace
}  // namespace sluice::coord
