// AdminServer over real HTTP on a free port: metrics, health, version, status, query plumbing, live tail.
#include "admin/admin_server.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "app/version.hpp"
#include "fixtures/process.hpp"

namespace sluice::admin {
namespace {

using namespace std::chrono_literals;
using sluice::testing::eventually;

std::vector<std::string> split_lines(const std::string& body) {
  std::vector<std::string> lines;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

FlowRecord numbered_flow(std::uint32_t exporter_v4, std::uint16_t n) {
  FlowRecord f;
  f.exporter_address = ip6_from_v4(exporter_v4);
  f.time_received = 1700000000 + n;
  f.src_addr = ip6_from_v4(0x0a000001);  // 10.0.0.1
  f.dst_addr = ip6_from_v4(0x0a000002);  // 10.0.0.2
  f.etype = 0x0800;
  f.proto = 17;
  f.src_port = n;
  f.dst_port = 53;
  f.bytes = 1000ULL * n;
  f.packets = n;
  return f;
}

constexpr std::uint32_t kExporterA = 0xc0000201;  // 192.0.2.1
constexpr std::uint32_t kExporterB = 0xc0000202;  // 192.0.2.2

class AdminServerTest : public ::testing::Test {
 protected:
  void start(AdminConfig config = {}, bool with_store = true, bool with_flows = true) {
    config.listen = "127.0.0.1:0";
    AdminDeps deps{metrics,
                   [] {
                     return nlohmann::json{{"sources", {{{"name", "netflow"}, {"received", 7}}}}};
                   },
                   nullptr, with_flows ? &tail : nullptr, [this] { return healthy.load(); }};
    if (with_store) {
      deps.query = [this](std::string_view sql, std::string_view format) {
        std::lock_guard lock(mutex);
        queries.emplace_back(std::string(sql), std::string(format));
        if (fail_with) throw *fail_with;
        return sinks::QueryResult{"got " + std::string(format) + ": " + std::string(sql) + "\n", 3, 24};
      };
    }
    server = std::make_unique<AdminServer>(config, std::move(deps));
    server->start();
    ASSERT_GT(server->port(), 0);
  }

  httplib::Client client() {
    httplib::Client c("127.0.0.1", server->port());
    c.set_read_timeout(10s);
    return c;
  }

  void fail_next_queries_with(sinks::StoreError e) {
    std::lock_guard lock(mutex);
    fail_with = std::move(e);
  }

  std::vector<std::pair<std::string, std::string>> recorded() {
    std::lock_guard lock(mutex);
    return queries;
  }

  MetricsRegistry metrics;
  FlowTail tail{metrics};
  std::atomic<bool> healthy{true};
  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> queries;
  std::optional<sinks::StoreError> fail_with;
  std::unique_ptr<AdminServer> server;  // last: stops before what it serves goes away
};

TEST_F(AdminServerTest, MetricsShowRegisteredCountersAndOwnRequestCounts) {
  metrics.counter("test_events_total", "Events seen by the test", {{"source", "netflow"}, {"exporter", "a\"b"}})
      .inc(42);
  start();
  auto c = client();
  auto res = c.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4");
  EXPECT_NE(res->body.find("# TYPE sluice_test_events_total counter\n"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("sluice_test_events_total{source=\"netflow\",exporter=\"a\\\"b\"} 42\n"), std::string::npos)
      << res->body;

  const Labels metrics_ok{{"endpoint", "/metrics"}, {"code", "200"}};
  // Counted once the response is written, which may be just after the client has it.
  ASSERT_TRUE(eventually([&] { return metrics.counter_value("admin_http_requests_total", metrics_ok) == 1; }, 5s));
  auto missing = c.Get("/nope");
  ASSERT_TRUE(missing);
  ASSERT_TRUE(eventually(
      [&] {
        return metrics.counter_value("admin_http_requests_total", {{"endpoint", "other"}, {"code", "404"}}) == 1;
      },
      5s));
  res = c.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_NE(res->body.find("sluice_admin_http_requests_total{endpoint=\"/metrics\",code=\"200\"} 1\n"),
            std::string::npos)
      << res->body;
  EXPECT_NE(res->body.find("sluice_admin_http_requests_total{endpoint=\"other\",code=\"404\"} 1\n"), std::string::npos);
}

TEST_F(AdminServerTest, HealthcheckFollowsHealthy) {
  start();
  auto c = client();
  auto res = c.Get("/api/v0/healthcheck");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(nlohmann::json::parse(res->body), (nlohmann::json{{"status", "ok"}}));
  healthy = false;
  res = c.Get("/api/v0/healthcheck");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(nlohmann::json::parse(res->body), (nlohmann::json{{"status", "unhealthy"}}));
}

TEST_F(AdminServerTest, VersionListsSluiceAndLibraries) {
  start();
  auto res = client().Get("/api/v0/version");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  const auto j = nlohmann::json::parse(res->body);
  EXPECT_EQ(j["version"], SLUICE_VERSION);
  EXPECT_EQ(j["build_type"], SLUICE_BUILD_TYPE);
  EXPECT_EQ(j["librdkafka"], rd_kafka_version_str());
  EXPECT_EQ(j["cpp-httplib"], CPPHTTPLIB_VERSION);
  for (const char* lib : {"compiler", "spdlog", "fmt", "simdjson", "nlohmann-json", "zstd", "lz4", "zlib"}) {
    ASSERT_TRUE(j.contains(lib)) << lib;
    EXPECT_FALSE(j[lib].get<std::string>().empty()) << lib;
  }
  const std::string text = app::version_text();
  EXPECT_EQ(text.rfind("sluice " SLUICE_VERSION "\n", 0), 0u) << text;
  EXPECT_NE(text.find("\nlibrdkafka " + std::string(rd_kafka_version_str()) + "\n"), std::string::npos) << text;
}

TEST_F(AdminServerTest, StatusPassesThrough) {
  start();
  auto res = client().Get("/api/v0/status");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(nlohmann::json::parse(res->body),
            nlohmann::json::parse(R"({"sources":[{"name":"netflow","received":7}]})"));
}

TEST_F(AdminServerTest, UnknownPathIsJson404) {
  start();
  auto res = client().Get("/api/v0/nothing-here");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  const auto j = nlohmann::json::parse(res->body);
  EXPECT_EQ(j["error"], "no such endpoint: GET /api/v0/nothing-here");
}

TEST_F(AdminServerTest, QueryRoutesSqlAndFormat) {
  start();
  auto c = client();
  auto res =
      c.Get("/api/v0/query", {{"sql", "SELECT count() FROM flows WHERE SrcPort = 53"}, {"format", "JSONEachRow"}},
            httplib::Headers{});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "got JSONEachRow: SELECT count() FROM flows WHERE SrcPort = 53\n");
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/x-ndjson; charset=utf-8");
  EXPECT_EQ(res->get_header_value("X-Sluice-Rows-Read"), "3");
  EXPECT_EQ(res->get_header_value("X-Sluice-Bytes-Read"), "24");

  // Default format, SQL as the POST body.
  res = c.Post("/api/v0/query", "SELECT 1", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "got TabSeparated: SELECT 1\n");
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/tab-separated-values; charset=utf-8");

  // SQL as a form field.
  res = c.Post("/api/v0/query", httplib::Params{{"sql", "SELECT 'a&b'"}, {"format", "TabSeparated"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);

  const std::vector<std::pair<std::string, std::string>> expected{
      {"SELECT count() FROM flows WHERE SrcPort = 53", "JSONEachRow"},
      {"SELECT 1", "TabSeparated"},
      {"SELECT 'a&b'", "TabSeparated"}};
  EXPECT_EQ(recorded(), expected);
}

TEST_F(AdminServerTest, QueryRejectsBadRequestsWithoutCallingTheStore) {
  start();
  auto c = client();
  auto res = c.Get("/api/v0/query", {{"sql", "SELECT 1"}, {"format", "Parquet"}}, httplib::Headers{});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_NE(res->body.find("unsupported format 'Parquet'"), std::string::npos) << res->body;
  res = c.Get("/api/v0/query");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_TRUE(recorded().empty());
}

TEST_F(AdminServerTest, StoreErrorsMapToStatusCodes) {
  start();
  auto c = client();
  fail_next_queries_with(sinks::StoreError("Code: 62. Syntax error: failed at position 8", false));
  auto res = c.Get("/api/v0/query", {{"sql", "SELECT FROM"}}, httplib::Headers{});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(res->body, "Code: 62. Syntax error: failed at position 8\n");

  fail_next_queries_with(sinks::StoreError("connection refused by 127.0.0.1:8123", true));
  res = c.Get("/api/v0/query", {{"sql", "SELECT 1"}}, httplib::Headers{});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->body, "connection refused by 127.0.0.1:8123\n");
}

TEST_F(AdminServerTest, QueryWithoutStoreIs503) {
  start({}, /*with_store=*/false);
  auto res = client().Get("/api/v0/query", {{"sql", "SELECT 1"}}, httplib::Headers{});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
}

TEST_F(AdminServerTest, OversizedBodyIs413) {
  AdminConfig config;
  config.max_body_bytes = 1024;
  start(config);
  auto c = client();
  auto res = c.Post("/api/v0/query", std::string(4096, 'x'), "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(nlohmann::json::parse(res->body)["error"], "request body larger than 1024 bytes");
  // Just under the limit still goes through.
  res = c.Post("/api/v0/query", "SELECT '" + std::string(1000, 'y') + "'", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(recorded().size(), 1u);
}

TEST_F(AdminServerTest, FlowsStreamsExactlyLimitLinesFromTheChosenExporter) {
  start();
  std::atomic<bool> run{true};
  std::thread publisher([&] {
    std::uint16_t n = 1;
    while (run.load()) {
      if (tail.active()) {
        tail.publish(numbered_flow(kExporterB, n));
        tail.publish(numbered_flow(kExporterA, n));
        ++n;
      }
      std::this_thread::sleep_for(1ms);  // pacing, like a trickle of datagrams
    }
  });
  std::string body;
  auto res = client().Get("/api/v0/flows?limit=5&exporter=192.0.2.1", [&](const char* data, std::size_t len) {
    body.append(data, len);
    return true;
  });
  run = false;
  publisher.join();
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/x-ndjson");
  const auto lines = split_lines(body);
  ASSERT_EQ(lines.size(), 5u) << body;
  int first = -1;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto j = nlohmann::json::parse(lines[i]);
    const int n = j["SrcPort"].get<int>();
    if (i == 0) first = n;
    EXPECT_EQ(n, first + static_cast<int>(i)) << "no gaps, no duplicates";
    EXPECT_EQ(j["ExporterAddress"], "192.0.2.1");
    EXPECT_EQ(j["TimeReceived"], 1700000000 + n);
    EXPECT_EQ(j["SrcAddr"], "10.0.0.1");
    EXPECT_EQ(j["DstAddr"], "10.0.0.2");
    EXPECT_EQ(j["EType"], 0x0800);
    EXPECT_EQ(j["Proto"], 17);
    EXPECT_EQ(j["DstPort"], 53);
    EXPECT_EQ(j["Bytes"], 1000 * n);
    EXPECT_EQ(j["Packets"], n);
  }
  EXPECT_TRUE(eventually([&] { return !tail.active(); }, 5s));
}

TEST_F(AdminServerTest, FlowsRejectsBadParameters) {
  start();
  auto c = client();
  auto res = c.Get("/api/v0/flows?exporter=not-an-ip");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(nlohmann::json::parse(res->body)["error"], "exporter 'not-an-ip' is not an IP address");
  res = c.Get("/api/v0/flows?limit=0");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  res = c.Get("/api/v0/flows?limit=ten");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_FALSE(tail.active());
}

TEST_F(AdminServerTest, FlowsWithoutAFlowPipelineIs503) {
  start({}, true, /*with_flows=*/false);
  auto res = client().Get("/api/v0/flows");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
}

TEST_F(AdminServerTest, ClientDisconnectEndsTheTail) {
  start();
  std::atomic<bool> run{true};
  std::thread publisher([&] {
    std::uint16_t n = 1;
    while (run.load()) {
      if (tail.active()) tail.publish(numbered_flow(kExporterA, n++));
      std::this_thread::sleep_for(1ms);
    }
  });
  std::size_t received = 0;
  auto res = client().Get("/api/v0/flows?limit=10000", [&](const char*, std::size_t len) {
    received += len;
    return false;  // hang up after the first chunk
  });
  EXPECT_EQ(res.error(), httplib::Error::Canceled);
  EXPECT_GT(received, 0u);
  EXPECT_TRUE(eventually([&] { return !tail.active(); }, 5s)) << "the subscription outlived its client";
  run = false;
  publisher.join();
}

TEST_F(AdminServerTest, IdleClientDisconnectEndsTheTail) {
  start();
  auto c = client();
  c.set_read_timeout(300ms);  // no flows arrive, so the client gives up and closes
  auto res = c.Get("/api/v0/flows?limit=10");
  EXPECT_FALSE(res);
  EXPECT_TRUE(eventually([&] { return !tail.active(); }, 5s)) << "the subscription outlived its client";
}

TEST_F(AdminServerTest, StopIsPromptWithStreamingClients) {
  start();
  auto streaming = std::async(std::launch::async, [&] {
    std::string body;
    auto res = client().Get("/api/v0/flows?limit=10000", [&](const char* d, std::size_t n) {
      body.append(d, n);
      return true;
    });
    return std::make_pair(res ? res->status : -1, body);
  });
  ASSERT_TRUE(eventually([&] { return tail.active(); }, 5s));
  const auto t0 = std::chrono::steady_clock::now();
  server->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  ASSERT_EQ(streaming.wait_for(5s), std::future_status::ready);
  const auto [status, body] = streaming.get();
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, "");
  EXPECT_FALSE(tail.active());
  server->stop();  // idempotent
}

TEST_F(AdminServerTest, TooManyTailsAre503) {
  start();
  std::vector<std::future<int>> tails;
  for (int i = 0; i < AdminServer::kMaxFlowStreams; ++i) {
    tails.push_back(std::async(std::launch::async, [&] {
      auto res = client().Get("/api/v0/flows?limit=10000", [](const char*, std::size_t) { return true; });
      return res ? res->status : -1;
    }));
  }
  ASSERT_TRUE(eventually([&] { return tail.listeners() == AdminServer::kMaxFlowStreams; }, 5s));
  auto res = client().Get("/api/v0/flows");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  // Other endpoints still answer while every tail slot is taken.
  res = client().Get("/api/v0/healthcheck");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  server->stop();
  for (auto& t : tails) {
    ASSERT_EQ(t.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(t.get(), 200);
  }
}

TEST_F(AdminServerTest, StartFailsNamingTheAddressWhenThePortIsTaken) {
  start();
  const std::string taken = "127.0.0.1:" + std::to_string(server->port());
  AdminServer second({taken}, AdminDeps{metrics, nullptr, nullptr, nullptr, nullptr});
  try {
    second.start();
    FAIL() << "a second server bound " << taken;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(taken), std::string::npos) << e.what();
  }
  // The first one is unaffected.
  auto res = client().Get("/api/v0/healthcheck");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST(AdminServerConfig, InvalidListenAddressThrows) {
  MetricsRegistry metrics;
  AdminServer server({"localhost"}, AdminDeps{metrics, nullptr, nullptr, nullptr, nullptr});
  EXPECT_THROW(server.start(), std::runtime_error);
  AdminServer bad_port({"127.0.0.1:99999"}, AdminDeps{metrics, nullptr, nullptr, nullptr, nullptr});
  EXPECT_THROW(bad_port.start(), std::runtime_error);
}

}  // namespace
}  // namespace sluice::admin
