// JobWatcher against a real etcd 3.4: the handler sees exact job sets as keys come and go, and through outages.
#include <gtest/gtest.h>

#include <mutex>

#include "coord/job_watcher.hpp"
#include "fixtures/etcd_server.hpp"
#include "fixtures/process.hpp"

namespace sluice::coord {
namespace {

using namespace std::chrono_literals;
using sluice::testing::eventually;

// Every set on_jobs got, in order.
class Recorder {
 public:
  void operator()(const JobDefinitions& jobs) {
    std::lock_guard lock(mutex_);
    calls_.push_back(jobs);
  }
  std::vector<JobDefinitions> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  bool latest_is(const JobDefinitions& expected) const {
    std::lock_guard lock(mutex_);
    return !calls_.empty() && calls_.back() == expected;
  }
  std::string latest() const {
    std::lock_guard lock(mutex_);
    return calls_.empty() ? "(no call)" : ::testing::PrintToString(calls_.back());
  }

 private:
  mutable std::mutex mutex_;
  std::vector<JobDefinitions> calls_;
};

JobWatcherConfig watcher_config() {
  JobWatcherConfig c;
  c.backoff_initial = 100ms;
  c.backoff_max = 400ms;
  return c;
}

EtcdClientConfig client_for(const testing::EtcdServer& server) {
  EtcdClientConfig c;
  c.endpoints = {server.endpoint()};
  c.dial_timeout = 300ms;
  c.request_timeout = 2s;
  return c;
}

const std::string kOrders = "topics: [orders]\nsink: {table: orders}\n";
const std::string kOrders2 = "topics: [orders, orders-eu]\nsink: {table: orders}\n";
const std::string kClicks = R"({"topics": ["clicks"], "sink": {"table": "clicks"}})";

TEST(JobWatcher, AddChangeRemoveGiveTheExactSets) {
  testing::EtcdServer server;
  server.ctl({"put", "/sluice/jobs/orders", kOrders});
  server.ctl({"put", "/other/jobs/ignored", kClicks});  // another prefix
  MetricsRegistry metrics;
  Recorder recorder;
  JobWatcher watcher(watcher_config(), client_for(server), metrics, std::ref(recorder));
  watcher.start();
  ASSERT_TRUE(eventually([&] { return recorder.latest_is({{"orders", kOrders}}); }, 10s)) << recorder.latest();
  EXPECT_EQ(watcher.status()["connected"], true);

  server.ctl({"put", "/sluice/jobs/clicks", kClicks});
  ASSERT_TRUE(eventually([&] { return recorder.latest_is({{"clicks", kClicks}, {"orders", kOrders}}); }, 5s))
      << recorder.latest();
  server.ctl({"put", "/sluice/jobs/orders", kOrders2});
  ASSERT_TRUE(eventually([&] { return recorder.latest_is({{"clicks", kClicks}, {"orders", kOrders2}}); }, 5s))
      << recorder.latest();
  server.ctl({"put", "/sluice/jobs/nested/name", kOrders});  // names no job: ignored, no call
  server.ctl({"del", "/sluice/jobs/clicks"});
  ASSERT_TRUE(eventually([&] { return recorder.latest_is({{"orders", kOrders2}}); }, 5s)) << recorder.latest();
  server.ctl({"del", "/sluice/jobs/orders"});
  ASSERT_TRUE(eventually([&] { return recorder.latest_is({}); }, 5s)) << recorder.latest();

  const std::vector<JobDefinitions> expected{{{"orders", kOrders}},
                                             {{"clicks", kClicks}, {"orders", kOrders}},
                                             {{"clicks", kClicks}, {"orders", kOrders2}},
                                             {{"orders", kOrders2}},
                                             {}};
  EXPECT_EQ(recorder.calls(), expected);
  EXPECT_EQ(metrics.counter_total("coord_job_keys_ignored_total"), 1u);
  const auto status = watcher.status();
  EXPECT_EQ(status["jobs"], 0);
  EXPECT_EQ(status["prefix"], "/sluice/jobs/");
  EXPECT_GT(status["revision"].get<std::int64_t>(), 0);
  EXPECT_EQ(status["errors"], 0);
}

TEST(JobWatcher, AnEmptyPrefixIsReportedOnceAtStart) {
  testing::EtcdServer server;
  MetricsRegistry metrics;
  Recorder recorder;
  JobWatcherConfig config = watcher_config();
  config.prefix = "/team-a/";  // a trailing '/' is tolerated
  JobWatcher watcher(config, client_for(server), metrics, std::ref(recorder));
  watcher.start();
  ASSERT_TRUE(eventually([&] { return !recorder.calls().empty(); }, 10s));
  EXPECT_EQ(recorder.calls(), std::vector<JobDefinitions>{{}});
  server.ctl({"put", "/team-a/jobs/orders", kOrders});
  ASSERT_TRUE(eventually([&] { return recorder.latest_is({{"orders", kOrders}}); }, 5s)) << recorder.latest();
  EXPECT_EQ(watcher.jobs(), (JobDefinitions{{"orders", kOrders}}));
}

TEST(JobWatcher, AnOutageKeepsTheLastSetAndChangesMadeMeanwhileArrive) {
  testing::EtcdServer server;
  server.ctl({"put", "/sluice/jobs/orders", kOrders});
  server.ctl({"put", "/sluice/jobs/clicks", kClicks});
  MetricsRegistry metrics;
  Recorder recorder;
  JobWatcher watcher(watcher_config(), client_for(server), metrics, std::ref(recorder));
  watcher.start();
  ASSERT_TRUE(eventually([&] { return recorder.latest_is({{"clicks", kClicks}, {"orders", kOrders}}); }, 10s))
      << recorder.latest();

  server.stop();
  ASSERT_TRUE(eventually([&] { return watcher.status()["state"] == "unreachable"; }, 10s)) << watcher.status().dump();
  // Changes made while this watcher cannot see etcd: one deletion, one change, one addition.
  server.start_on_other_port();
  server.ctl({"del", "/sluice/jobs/clicks"});
  server.ctl({"put", "/sluice/jobs/orders", kOrders2});
  server.ctl({"put", "/sluice/jobs/views", kClicks});
  ASSERT_TRUE(eventually([&] { return watcher.status()["errors"].get<int>() >= 3; }, 10s));
  EXPECT_EQ(watcher.jobs(), (JobDefinitions{{"clicks", kClicks}, {"orders", kOrders}}));
  EXPECT_EQ(watcher.status()["jobs"], 2);
  EXPECT_EQ(watcher.status()["connected"], false);
  EXPECT_TRUE(watcher.status()["last_error"].is_string());
  server.stop();
  server.start();
  ASSERT_TRUE(eventually([&] { return recorder.latest_is({{"orders", kOrders2}, {"views", kClicks}}); }, 15s))
      << recorder.latest();

  // Exactly two sets: before and after; never an empty one because of the outage.
  const std::vector<JobDefinitions> expected{{{"clicks", kClicks}, {"orders", kOrders}},
                                             {{"orders", kOrders2}, {"views", kClicks}}};
  EXPECT_EQ(recorder.calls(), expected);
  EXPECT_EQ(watcher.status()["state"], "connected");
  EXPECT_EQ(watcher.status()["reconnects"], 1);
  EXPECT_EQ(metrics.counter_total("coord_job_watch_reconnects_total"), 1u);
  EXPECT_GT(metrics.counter_total("coord_job_watch_errors_total"), 0u);

  // And the watch goes on after the reconnect.
  server.ctl({"del", "/sluice/jobs/views"});
  ASSERT_TRUE(eventually([&] { return recorder.latest_is({{"orders", kOrders2}}); }, 5s)) << recorder.latest();
}

TEST(JobWatcher, AHandlerThatThrowsDoesNotStopTheWatcher) {
  testing::EtcdServer server;
  MetricsRegistry metrics;
  Recorder recorder;
  int calls = 0;
  JobWatcher watcher(watcher_config(), client_for(server), metrics, [&](const JobDefinitions& jobs) {
    recorder(jobs);
    if (++calls == 1) throw std::runtime_error("manager not ready");
  });
  watcher.start();
  ASSERT_TRUE(eventually([&] { return !recorder.calls().empty(); }, 10s));
  server.ctl({"put", "/sluice/jobs/orders", kOrders});
  ASSERT_TRUE(eventually([&] { return recorder.latest_is({{"orders", kOrders}}); }, 5s)) << recorder.latest();
  EXPECT_EQ(metrics.counter_total("coord_job_handler_errors_total"), 1u);
}

}  // namespace
}  // namespace sluice::coord
