// Which files the real binary tails comes from a real etcd: keys added, changed and removed start and
// stop collection within seconds, and an etcd outage keeps the last known list collecting.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "fixtures/etcd_server.hpp"
#include "fixtures/process.hpp"
#include "fixtures/sluice_instance.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

void append_lines(const std::string& path, const std::string& tag, int first, int count) {
  std::ofstream out(path, std::ios::app);
  for (int i = first; i < first + count; ++i) out << tag << ' ' << i << '\n';
}

TEST(LogDiscoveryE2E, EtcdKeysStartChangeAndStopCollectionAndAnOutageKeepsTheList) {
  EtcdServer etcd;
  TempDir dir("sluice-discovery");
  const std::string logs = dir / "logs";
  std::filesystem::create_directories(logs);
  const std::string config = "data_dir: " + (dir / "data") +
                             "\nadmin: {listen: '${SLUICE_ADMIN_LISTEN}'}\n"
                             "inlet:\n"
                             "  files:\n"
                             "    host: web-7\n"
                             "    rescan_interval: 500ms\n"
                             "    etcd:\n"
                             "      endpoints: " + etcd.endpoint() + "\n"
                             "      backoff_initial: 200ms\n"
                             "      backoff_max: 1s\n"
                             "outlet:\n"
                             "  batch: {max_delay: 200ms}\n"
                             "  commit_interval: 200ms\n"
                             "  chdb: {path: " + (dir / "data") + "/chdb}\n"
                             "  logs: {}\n";
  SluiceInstance sluice("run", config, dir);
  sluice.start();
  const auto count = [&](const std::string& tag) {
    return sluice.query_u64("SELECT count() FROM sluice.logs FINAL WHERE Message LIKE '" + tag + " %'");
  };
  append_lines(logs + "/api.log", "api", 0, 100);
  append_lines(logs + "/db.log", "db", 0, 50);

  // Added: the key for this host starts collection of its paths.
  etcd.ctl({"put", "/sluice/logs/web-7/api", R"({"include": [")" + logs + R"(/api.log"]})"});
  etcd.ctl({"put", "/sluice/logs/other-host/db", R"({"include": [")" + logs + R"(/db.log"]})"});
  ASSERT_TRUE(eventually([&] { return count("api") == 100; }, 15s)) << count("api") << sluice.log();
  // Changed: the same key now also names db.log.
  etcd.ctl({"put", "/sluice/logs/web-7/api", R"({"include": [")" + logs + R"(/api.log", ")" + logs + R"(/db.log"]})"});
  EXPECT_TRUE(eventually([&] { return count("db") == 50; }, 15s)) << count("db");
  EXPECT_EQ(sluice.status()["sources"].dump().find("\"state\":\"connected\"") != std::string::npos, true);

  // etcd stops: collection goes on from the last known list, and the status says etcd is unreachable.
  etcd.stop();
  append_lines(logs + "/api.log", "api", 100, 100);
  EXPECT_TRUE(eventually([&] { return count("api") == 200; }, 15s)) << count("api");
  EXPECT_TRUE(eventually([&] { return sluice.status()["sources"].dump().find("\"unreachable\"") != std::string::npos; },
                         15s));
  // etcd comes back: the watch resumes, and a removal applies.
  etcd.start();
  EXPECT_TRUE(eventually([&] { return sluice.status()["sources"].dump().find("\"connected\"") != std::string::npos; },
                         30s));
  etcd.ctl({"put", "/sluice/logs/web-7/api", R"({"include": [")" + logs + R"(/api.log"]})"});
  // Removed from the list: db.log is no longer followed once the discovery has seen that revision.
  const auto header = nlohmann::json::parse(etcd.ctl({"get", "/sluice/logs/web-7/api", "-w", "json"}));
  const auto revision = header["header"]["revision"].get<std::int64_t>();
  const auto discovered_revision = [&] {
    std::int64_t seen = 0;
    const auto status = sluice.status();
    for (const auto& source : status["sources"]) {
      if (source.contains("etcd")) seen = source["etcd"].value("revision", std::int64_t{0});
    }
    return seen;
  };
  EXPECT_TRUE(eventually([&] { return discovered_revision() >= revision; }, 30s))
      << "etcd at revision " << revision << ", discovery at " << discovered_revision();
  // Drained: what db.log held was read and acknowledged, and the file is closed.
  EXPECT_TRUE(eventually([&] { return sluice.status().dump().find("\"state\":\"closed\"") != std::string::npos; }, 15s))
      << sluice.status().dump();
  append_lines(logs + "/db.log", "db", 50, 50);
  append_lines(logs + "/api.log", "api", 200, 10);
  EXPECT_TRUE(eventually([&] { return count("api") == 210; }, 15s)) << count("api");
  // api.log's new lines arrived, so db.log's would have too had it still been followed.
  EXPECT_EQ(count("db"), 50u);
  EXPECT_EQ(sluice.query_u64("SELECT count() FROM sluice.logs FINAL WHERE Host != 'web-7'"), 0u);
  EXPECT_EQ(sluice.stop(), 0) << sluice.log();
}

}  // namespace
}  // namespace sluice::testing
