// EtcdDiscovery against a real etcd 3.4: keys added, changed, removed; invalid values; outages; compaction.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "fixtures/etcd_server.hpp"
#include "fixtures/process.hpp"
#include "sources/files/etcd_discovery.hpp"

namespace sluice::sources {
namespace {

using namespace std::chrono_literals;
using sluice::testing::eventually;

// Every list on_change got, each as "name topic include..." lines.
class Recorder {
 public:
  void operator()(const std::vector<FileSourceConfig>& list) {
    std::vector<std::string> lines;
    for (const auto& s : list) {
      std::string line = s.name + " " + s.topic;
      for (const auto& i : s.include) line += " " + i;
      lines.push_back(line);
    }
    std::lock_guard lock(mutex_);
    calls_.push_back(std::move(lines));
  }
  std::vector<std::vector<std::string>> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  bool latest_is(const std::vector<std::string>& expected) const {
    std::lock_guard lock(mutex_);
    return !calls_.empty() && calls_.back() == expected;
  }
  std::string latest() const {
    std::lock_guard lock(mutex_);
    return calls_.empty() ? "(no call)" : ::testing::PrintToString(calls_.back());
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::vector<std::string>> calls_;
};

EtcdDiscoveryConfig config_for(const testing::EtcdServer& server) {
  EtcdDiscoveryConfig c;
  c.client.endpoints = {server.endpoint()};
  c.client.dial_timeout = 300ms;
  c.client.request_timeout = 2s;
  c.host = "web-1";
  c.backoff_initial = 100ms;
  c.backoff_max = 400ms;
  return c;
}

std::string source(const std::string& include, const std::string& topic) {
  return R"({"include": [")" + include + R"("], "topic": ")" + topic + R"("})";
}

TEST(EtcdDiscovery, AddChangeRemoveReachOnChange) {
  testing::EtcdServer server;
  server.ctl({"put", "/sluice/logs/web-1/nginx", source("/var/log/nginx/*.log", "web")});
  server.ctl({"put", "/sluice/logs/web-2/nginx", source("/var/log/other/*.log", "web")});  // another host
  MetricsRegistry metrics;
  Recorder recorder;
  EtcdDiscovery discovery(config_for(server), metrics, std::ref(recorder));
  discovery.start();
  ASSERT_TRUE(eventually([&] { return recorder.latest_is({"nginx web /var/log/nginx/*.log"}); }, 10s))
      << recorder.latest();
  EXPECT_EQ(discovery.status()["state"], "connected");
  EXPECT_EQ(metrics.render_prometheus().find("sluice_etcd_state{state=\"connected\"} 1") != std::string::npos, true);

  server.ctl({"put", "/sluice/logs/web-1/app", source("/srv/app/*.log", "app")});
  EXPECT_TRUE(eventually([&] {
    return recorder.latest_is({"app app /srv/app/*.log", "nginx web /var/log/nginx/*.log"});
  }, 5s)) << recorder.latest();

  server.ctl({"put", "/sluice/logs/web-1/nginx", source("/var/log/nginx/access.log", "web-access")});
  EXPECT_TRUE(eventually([&] {
    return recorder.latest_is({"app app /srv/app/*.log", "nginx web-access /var/log/nginx/access.log"});
  }, 5s)) << recorder.latest();

  server.ctl({"del", "/sluice/logs/web-1/app"});
  EXPECT_TRUE(eventually([&] { return recorder.latest_is({"nginx web-access /var/log/nginx/access.log"}); }, 5s))
      << recorder.latest();
  server.ctl({"put", "/sluice/logs/web-2/db", source("/var/lib/db/*.log", "db")});  // not ours: no call

  const auto status = discovery.status();
  EXPECT_EQ(status["sources"], nlohmann::json::array({"nginx"}));
  EXPECT_EQ(status["prefix"], "/sluice/logs/web-1/");
  EXPECT_EQ(status["endpoint"], server.endpoint());
  EXPECT_EQ(status["revision"].get<std::int64_t>(), 6);  // the last change under our prefix
  EXPECT_TRUE(status["last_change_at"].is_string());
  EXPECT_TRUE(status["last_error"].is_null());
  discovery.stop();
  // One call per change, each list exact; the other host's keys never appeared.
  EXPECT_EQ(recorder.calls().size(), 4u);
}

TEST(EtcdDiscovery, InvalidValueSkippedCountedAndPreviousVersionKept) {
  testing::EtcdServer server;
  server.ctl({"put", "/sluice/logs/web-1/good", source("/var/log/good.log", "t")});
  server.ctl({"put", "/sluice/logs/web-1/typo", R"({"include": ["/var/log/x.log"], "topci": "t"})"});
  MetricsRegistry metrics;
  Recorder recorder;
  EtcdDiscovery discovery(config_for(server), metrics, std::ref(recorder));
  discovery.start();
  ASSERT_TRUE(eventually([&] { return recorder.latest_is({"good t /var/log/good.log"}); }, 10s)) << recorder.latest();
  EXPECT_EQ(metrics.counter_total("etcd_invalid_keys_total"), 1u);
  auto status = discovery.status();
  ASSERT_EQ(status["invalid_keys"].size(), 1u);
  EXPECT_EQ(status["invalid_keys"][0]["key"], "/sluice/logs/web-1/typo");
  EXPECT_EQ(status["invalid_keys"][0]["in_effect"], "none");
  EXPECT_EQ(status["invalid_keys"][0]["errors"][0].get<std::string>().rfind("topci: unknown key", 0), 0u);

  // A broken new version of a valid key: the old version keeps collecting.
  server.ctl({"put", "/sluice/logs/web-1/good", R"({"include": "/var/log/good.log", "start_at": "yesterday"})"});
  ASSERT_TRUE(eventually([&] { return metrics.counter_total("etcd_invalid_keys_total") == 2; }, 5s));
  status = discovery.status();
  EXPECT_EQ(status["sources"], nlohmann::json::array({"good"}));
  ASSERT_EQ(status["invalid_keys"].size(), 2u);
  EXPECT_EQ(status["invalid_keys"][0]["key"], "/sluice/logs/web-1/good");
  EXPECT_EQ(status["invalid_keys"][0]["in_effect"], "previous version");
  EXPECT_EQ(status["invalid_keys"][0]["errors"],
            nlohmann::json::array({"start_at: expected one of beginning, end, got 'yesterday'"}));
  EXPECT_EQ(recorder.calls().size(), 1u);  // nothing changed for the consumer

  // Fixed: both apply.
  server.ctl({"put", "/sluice/logs/web-1/typo", source("/var/log/x.log", "t")});
  server.ctl({"put", "/sluice/logs/web-1/good", source("/var/log/good2.log", "t")});
  EXPECT_TRUE(eventually([&] {
    return recorder.latest_is({"good t /var/log/good2.log", "typo t /var/log/x.log"});
  }, 5s)) << recorder.latest();
  EXPECT_TRUE(discovery.status()["invalid_keys"].empty());
  EXPECT_EQ(metrics.counter_total("etcd_invalid_keys_total"), 2u);
}

TEST(EtcdDiscovery, OutageKeepsTheListAndChangesMadeMeanwhileApply) {
  testing::EtcdServer server;
  server.ctl({"put", "/sluice/logs/web-1/a", source("/var/log/a.log", "t")});
  server.ctl({"put", "/sluice/logs/web-1/b", source("/var/log/b.log", "t")});
  MetricsRegistry metrics;
  Recorder recorder;
  EtcdDiscovery discovery(config_for(server), metrics, std::ref(recorder));
  discovery.start();
  ASSERT_TRUE(eventually([&] { return recorder.latest_is({"a t /var/log/a.log", "b t /var/log/b.log"}); }, 10s))
      << recorder.latest();

  server.stop();
  ASSERT_TRUE(eventually([&] { return discovery.status()["state"] == "unreachable"; }, 10s));
  auto status = discovery.status();
  EXPECT_EQ(status["sources"], nlohmann::json::array({"a", "b"}));
  EXPECT_TRUE(status["last_error"].is_string());
  EXPECT_TRUE(status["last_error_at"].is_string());
  EXPECT_EQ(discovery.sources().size(), 2u);
  EXPECT_NE(metrics.render_prometheus().find("sluice_etcd_state{state=\"unreachable\"} 1"), std::string::npos);

  // Changed while this agent cannot see etcd (it is up on another port meanwhile).
  server.start_on_other_port();
  server.ctl({"del", "/sluice/logs/web-1/a"});
  server.ctl({"put", "/sluice/logs/web-1/c", source("/var/log/c.log", "t")});
  EXPECT_EQ(discovery.status()["state"], "unreachable");
  server.stop();
  EXPECT_EQ(recorder.calls().size(), 1u);  // nothing published during the outage, and never an empty list

  server.start();
  EXPECT_TRUE(eventually([&] { return recorder.latest_is({"b t /var/log/b.log", "c t /var/log/c.log"}); }, 10s))
      << recorder.latest();
  EXPECT_TRUE(eventually([&] { return discovery.status()["state"] == "connected"; }, 5s));
  EXPECT_EQ(metrics.counter_total("etcd_reconnects_total"), 1u);

  // And the watch is live again after the restart.
  server.ctl({"put", "/sluice/logs/web-1/b", source("/var/log/b2.log", "t2")});
  EXPECT_TRUE(eventually([&] { return recorder.latest_is({"b t2 /var/log/b2.log", "c t /var/log/c.log"}); }, 5s))
      << recorder.latest();
  for (const auto& call : recorder.calls()) EXPECT_FALSE(call.empty());
}

TEST(EtcdDiscovery, HungEtcdIsUnreachableAndTheListKept) {
  testing::EtcdServer server({"--experimental-watch-progress-notify-interval=200ms"});
  server.ctl({"put", "/sluice/logs/web-1/a", source("/var/log/a.log", "t")});
  MetricsRegistry metrics;
  Recorder recorder;
  auto config = config_for(server);
  config.client.request_timeout = 1s;
  config.client.watch_idle_timeout = 1s;
  EtcdDiscovery discovery(config, metrics, std::ref(recorder));
  discovery.start();
  ASSERT_TRUE(eventually([&] { return recorder.latest_is({"a t /var/log/a.log"}); }, 10s)) << recorder.latest();
  server.freeze();
  EXPECT_TRUE(eventually([&] { return discovery.status()["state"] == "unreachable"; }, 10s));
  EXPECT_EQ(discovery.status()["sources"], nlohmann::json::array({"a"}));
  server.thaw();
  EXPECT_TRUE(eventually([&] { return discovery.status()["state"] == "connected"; }, 10s));
  server.ctl({"put", "/sluice/logs/web-1/b", source("/var/log/b.log", "t")});
  EXPECT_TRUE(eventually([&] { return recorder.latest_is({"a t /var/log/a.log", "b t /var/log/b.log"}); }, 10s))
      << recorder.latest();
  EXPECT_EQ(metrics.counter_total("etcd_reconnects_total"), 1u);
  EXPECT_EQ(recorder.calls().size(), 2u);
}

TEST(EtcdDiscovery, CompactedWatchRangesAgain) {
  testing::EtcdServer server;
  server.ctl({"put", "/sluice/logs/web-1/a", source("/var/log/a.log", "t")});
  MetricsRegistry metrics;
  Recorder recorder;
  // The first on_change holds the discovery thread between its range and its watch, so that etcd can
  // compact past the range's revision before the watch is created.
  std::mutex mutex;
  std::condition_variable cv;
  bool entered = false, released = false;
  EtcdDiscovery discovery(config_for(server), metrics, [&](std::vector<FileSourceConfig> list) {
    {
      std::unique_lock lock(mutex);
      if (!entered) {
        entered = true;
        cv.notify_all();
        cv.wait(lock, [&] { return released; });
      }
    }
    recorder(list);
  });
  discovery.start();
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return entered; }));
  }
  server.ctl({"put", "/sluice/logs/web-1/b", source("/var/log/b.log", "t")});
  server.ctl({"put", "/sluice/logs/web-1/c", source("/var/log/c.log", "t")});
  server.ctl({"put", "/unrelated", "x"});  // revision 5
  server.ctl({"compact", "5"});
  {
    std::lock_guard lock(mutex);
    released = true;
  }
  cv.notify_all();
  EXPECT_TRUE(eventually([&] {
    return recorder.latest_is({"a t /var/log/a.log", "b t /var/log/b.log", "c t /var/log/c.log"});
  }, 10s)) << recorder.latest();
  EXPECT_EQ(metrics.counter_total("etcd_watch_compacted_total"), 1u);
  EXPECT_EQ(discovery.status()["state"], "connected");
  EXPECT_EQ(recorder.calls().size(), 2u);
}

TEST(EtcdDiscovery, UnreachableFromTheStartCallsNothing) {
  MetricsRegistry metrics;
  Recorder recorder;
  EtcdDiscoveryConfig c;
  c.client.endpoints = {"http://127.0.0.1:" + std::to_string(sluice::testing::free_port())};
  c.client.dial_timeout = 200ms;
  c.host = "web-1";
  c.backoff_initial = 50ms;
  c.backoff_max = 100ms;
  EtcdDiscovery discovery(c, metrics, std::ref(recorder));
  EXPECT_EQ(discovery.status()["state"], "starting");
  discovery.start();
  ASSERT_TRUE(eventually([&] { return metrics.counter_value("etcd_requests_total", {{"result", "unreachable"}}) >= 3; },
                         10s));
  EXPECT_EQ(discovery.status()["state"], "unreachable");
  EXPECT_NE(discovery.status()["last_error"].get<std::string>().find("cannot read /sluice/logs/web-1/ from etcd"),
            std::string::npos);
  discovery.stop();
  EXPECT_TRUE(recorder.calls().empty());
}

}  // namespace
}  // namespace sluice::sources
