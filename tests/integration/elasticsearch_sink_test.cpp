// The Elasticsearch sink against recorded `_bulk` exchanges written from the Elasticsearch reference
// (no Elasticsearch server can run here): each recording is served by a real HTTP server that fails
// on any request differing from it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/metrics.hpp"
#include "fixtures/process.hpp"
#include "fixtures/recorded_http.hpp"
#include "sinks/dead_letters.hpp"
#include "sinks/elasticsearch_body.hpp"
#include "sinks/elasticsearch_sink.hpp"

namespace sluice::sinks {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using testing::RecordedHttpServer;

std::string recording(const std::string& name) {
  return std::string(SLUICE_SOURCE_DIR) + "/tests/data/elasticsearch/" + name + ".http";
}

// Line n of /var/log/app.log on web-1: offset n*100, one second apart from 2026-11-21T15:23:26.123Z.
// `bad` gives its status field a string where the recorded index maps a long.
transforms::LogEvent line(int n, bool bad = false) {
  transforms::LogEvent e;
  e.host = "web-1";
  e.path = "/var/log/app.log";
  e.file_id = 7;
  e.offset = static_cast<std::uint64_t>(n) * 100;
  e.timestamp_ms = 1795274606123 + n * 1000;
  e.message = "GET /item/" + std::to_string(n);
  if (bad) e.set("status", "OK");
  else e.set("status", "200", transforms::FieldType::number);
  return e;
}

ElasticsearchConfig config(std::vector<std::string> urls) {
  ElasticsearchConfig c;
  c.urls = std::move(urls);
  c.index = "logs-%Y.%m.%d";
  c.parallel_requests = 1;  // recordings are a sequence
  c.retry_initial = 20ms;
  c.retry_max = 100ms;
  c.connect_timeout = 2s;
  c.request_timeout = 10s;
  return c;
}

InsertRequest batch(const ElasticsearchConfig& c, const std::vector<transforms::LogEvent>& events) {
  BulkBodyWriter writer(c);
  InsertRequest r;
  r.table = "logs";
  r.format = std::string(kBulkFormat);
  for (const auto& e : events) writer.append(e, r.body);
  r.rows = events.size();
  return r;
}

// The two NDJSON lines of one event, as a dead letter keeps them.
std::string item_lines(const ElasticsearchConfig& c, const transforms::LogEvent& e) {
  std::string body;
  BulkBodyWriter(c).append(e, body);
  body.pop_back();
  return body;
}

std::vector<nlohmann::json> dead_letter_records(const std::string& dir) {
  std::vector<nlohmann::json> out;
  const std::string file = dir + "/dead-letters-0000000001.ndjson";
  if (!std::filesystem::exists(file)) return out;
  std::istringstream in(testing::read_file(file));
  for (std::string l; std::getline(in, l);) out.push_back(nlohmann::json::parse(l));
  return out;
}

// One sink on one recording; run() submits a batch and waits for on_done.
struct Scenario {
  explicit Scenario(const std::string& name, std::vector<std::string> extra_urls_before = {})
      : server(recording(name)) {
    extra_urls_before.push_back(server.url());
    cfg = config(std::move(extra_urls_before));
  }
  void start() {
    dead = std::make_unique<DeadLetters>(dir / "dead", metrics, 1 << 20);
    sink = std::make_unique<ElasticsearchSink>(cfg, *dead, metrics);
  }
  // Submits, waits until on_done (or a mismatch), and records what the world looked like at on_done.
  void run(const std::vector<transforms::LogEvent>& events) {
    if (!sink) start();
    sink->submit(batch(cfg, events), [this] {
      consumed_at_done = server.consumed();
      dead_at_done = dead_letter_records(dir / "dead").size();
      ++done;
    });
    EXPECT_TRUE(eventually([&] { return done.load() > 0 || !server.mismatches().empty(); }, 20s))
        << server.report();
    sink->stop(std::chrono::steady_clock::now() + 2s);
    EXPECT_EQ(done.load(), 1) << "on_done must be called exactly once";
    EXPECT_EQ(server.report(), "");
    EXPECT_EQ(consumed_at_done, server.consumed()) << "on_done before the last exchange";
  }
  std::uint64_t items(const std::string& result) {
    return metrics.counter_value("elasticsearch_items_total", {{"result", result}});
  }
  std::uint64_t requests(const std::string& status) {
    return metrics.counter_value("elasticsearch_requests_total", {{"status", status}});
  }

  testing::TempDir dir;
  MetricsRegistry metrics;
  RecordedHttpServer server;
  ElasticsearchConfig cfg;
  std::unique_ptr<DeadLetters> dead;
  std::unique_ptr<ElasticsearchSink> sink;
  std::atomic<int> done{0};
  std::size_t consumed_at_done = 0;
  std::size_t dead_at_done = 0;
};

TEST(ElasticsearchSink, AllItemsIndexed) {
  Scenario s("all_success");
  s.run({line(0), line(1), line(2)});
  EXPECT_EQ(s.items("indexed"), 3u);
  EXPECT_EQ(s.items("duplicate"), 0u);
  EXPECT_EQ(s.items("retried"), 0u);
  EXPECT_EQ(s.items("dead_letter"), 0u);
  EXPECT_EQ(s.requests("200"), 1u);
  EXPECT_EQ(s.metrics.counter_total("elasticsearch_batches_total"), 1u);
  EXPECT_TRUE(dead_letter_records(s.dir / "dead").empty());
  const auto st = s.sink->status();
  EXPECT_EQ(st["indexed"], 3);
  EXPECT_EQ(st["last_error"], "");
}

TEST(ElasticsearchSink, MappingErrorGoesToDeadLettersWithItsReasonAndTheRestIsIndexed) {
  Scenario s("partial_failure");
  s.run({line(0), line(1, true), line(2)});
  EXPECT_EQ(s.items("indexed"), 2u);
  EXPECT_EQ(s.items("dead_letter"), 1u);
  EXPECT_EQ(s.items("retried"), 0u);
  EXPECT_EQ(s.requests("200"), 1u);
  EXPECT_EQ(s.metrics.counter_value("dead_letters_total", {{"sink", "elasticsearch"}, {"reason", "mapper_parsing_exception"}}), 1u);
  const auto records = dead_letter_records(s.dir / "dead");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(s.dead_at_done, 1u) << "the dead letter must be durable before on_done";
  EXPECT_EQ(records[0]["sink"], "elasticsearch");
  EXPECT_EQ(records[0]["reason"], "mapper_parsing_exception");
  EXPECT_EQ(records[0]["detail"],
            "400: mapper_parsing_exception: failed to parse field [status] of type [long] in document with id "
            "'058eaf109ff28f8750275da68c3a1674'. Preview of field's value: 'OK' (caused by "
            "illegal_argument_exception: For input string: \"OK\")");
  EXPECT_EQ(records[0]["record"], item_lines(s.cfg, line(1, true)));
}

TEST(ElasticsearchSink, ItemRejectedWith429IsRetriedAlone) {
  Scenario s("item_429");
  s.run({line(0), line(1), line(2)});
  EXPECT_EQ(s.items("indexed"), 3u);
  EXPECT_EQ(s.items("retried"), 1u);
  EXPECT_EQ(s.items("dead_letter"), 0u);
  EXPECT_EQ(s.requests("200"), 2u);
}

TEST(ElasticsearchSink, WholeRequest429IsRetried) {
  Scenario s("request_429");
  s.run({line(0), line(1), line(2)});
  EXPECT_EQ(s.items("indexed"), 3u);
  EXPECT_EQ(s.items("retried"), 3u);
  EXPECT_EQ(s.requests("429"), 1u);
  EXPECT_EQ(s.requests("200"), 1u);
  EXPECT_NE(s.sink->status()["last_error"].get<std::string>().find("es_rejected_execution_exception"),
            std::string::npos);
}

TEST(ElasticsearchSink, ServiceUnavailableIsRetried) {
  Scenario s("request_503");
  s.run({line(0), line(1), line(2)});
  EXPECT_EQ(s.items("indexed"), 3u);
  EXPECT_EQ(s.items("retried"), 3u);
  EXPECT_EQ(s.requests("503"), 1u);
  EXPECT_EQ(s.requests("200"), 1u);
}

TEST(ElasticsearchSink, ConflictsOnCreateAreDuplicatesNotErrors) {
  Scenario s("duplicates");
  s.run({line(0), line(1), line(2)});
  EXPECT_EQ(s.items("duplicate"), 2u);
  EXPECT_EQ(s.items("indexed"), 1u);
  EXPECT_EQ(s.items("retried"), 0u);
  EXPECT_EQ(s.items("dead_letter"), 0u);
  EXPECT_TRUE(dead_letter_records(s.dir / "dead").empty());
}

TEST(ElasticsearchSink, TooLargeBodiesAreSplitInHalves) {
  Scenario s("split_413");
  s.run({line(0), line(1), line(2), line(3)});
  EXPECT_EQ(s.items("indexed"), 4u);
  EXPECT_EQ(s.items("retried"), 0u);
  EXPECT_EQ(s.requests("413"), 1u);
  EXPECT_EQ(s.requests("200"), 2u);
}

TEST(ElasticsearchSink, RefusedCredentialsAreRetriedNotDropped) {
  Scenario s("auth_401");
  s.cfg.username = "sluice";
  s.cfg.password = "secret";
  s.run({line(0), line(1)});
  EXPECT_EQ(s.items("indexed"), 2u);
  EXPECT_EQ(s.items("retried"), 2u);
  EXPECT_EQ(s.items("dead_letter"), 0u);
  EXPECT_EQ(s.requests("401"), 1u);
}

TEST(ElasticsearchSink, BatchesLargerThanMaxBodyBytesGoAsSeveralRequests) {
  Scenario s("body_limit");
  s.cfg.max_body_bytes = 500;  // two items (478 bytes) fit, three do not
  s.run({line(0), line(1), line(2)});
  EXPECT_EQ(s.items("indexed"), 3u);
  EXPECT_EQ(s.requests("200"), 2u);
}

TEST(ElasticsearchSink, AnUnreachableUrlFailsOverToTheNext) {
  Scenario s("failover", {"http://127.0.0.1:" + std::to_string(testing::free_port())});
  s.run({line(0), line(1)});
  EXPECT_EQ(s.items("indexed"), 2u);
  EXPECT_EQ(s.items("retried"), 2u);
  EXPECT_EQ(s.requests("error"), 1u);
  EXPECT_EQ(s.requests("200"), 1u);
}

TEST(ElasticsearchSink, GzipBodiesAndApiKeys) {
  Scenario s("gzip_api_key");
  s.cfg.gzip = true;
  s.cfg.api_key = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==";
  s.run({line(0), line(1)});
  EXPECT_EQ(s.items("indexed"), 2u);
  EXPECT_EQ(s.requests("200"), 1u);
}

TEST(ElasticsearchSink, ARefusedItemIsNotAcknowledgedUntilItsDeadLetterIsDurable) {
  Scenario s("dead_letter_disk_failure");
  // A file where the dead-letter directory should be: every write fails until it is removed.
  testing::write_file(s.dir / "dead", "in the way");
  s.start();
  std::atomic<int> done{0};
  s.sink->submit(batch(s.cfg, {line(0), line(1, true), line(2)}), [&] { ++done; });
  ASSERT_TRUE(eventually([&] { return s.server.consumed() >= 3; }, 10s)) << s.server.report();
  EXPECT_EQ(done.load(), 0);
  EXPECT_EQ(s.items("dead_letter"), 0u);
  EXPECT_GE(s.metrics.counter_total("dead_letter_write_errors_total"), 2u);
  std::filesystem::remove(s.dir / "dead");
  ASSERT_TRUE(eventually([&] { return done.load() == 1; }, 10s)) << s.server.report();
  s.sink->stop(std::chrono::steady_clock::now() + 2s);
  EXPECT_EQ(done.load(), 1);
  EXPECT_TRUE(s.server.mismatches().empty()) << s.server.report();
  EXPECT_EQ(s.items("indexed"), 2u);
  EXPECT_EQ(s.items("dead_letter"), 1u);
  const auto records = dead_letter_records(s.dir / "dead");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["reason"], "mapper_parsing_exception");
  EXPECT_EQ(records[0]["record"], item_lines(s.cfg, line(1, true)));
}

TEST(ElasticsearchSink, StopAtTheDeadlineLeavesAFailingBatchUnacknowledged) {
  Scenario s("unavailable");
  s.start();
  std::atomic<int> done{0};
  s.sink->submit(batch(s.cfg, {line(0), line(1)}), [&] { ++done; });
  ASSERT_TRUE(eventually([&] { return s.server.consumed() >= 3; }, 10s)) << s.server.report();
  const auto t0 = std::chrono::steady_clock::now();
  s.sink->stop(t0 + 200ms);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 700ms);
  EXPECT_EQ(done.load(), 0);
  EXPECT_TRUE(s.server.mismatches().empty()) << s.server.report();
  EXPECT_EQ(s.items("indexed"), 0u);
  EXPECT_EQ(s.metrics.counter_total("elasticsearch_abandoned_batches_total"), 1u);
  EXPECT_GE(s.requests("503"), 3u);
}

TEST(ElasticsearchSink, StopCutsARequestTheServerNeverAnswers) {
  // A listening socket that never accepts: the kernel completes the handshake, nobody answers.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  testing::TempDir dir;
  MetricsRegistry metrics;
  DeadLetters dead(dir / "dead", metrics);
  auto cfg = config({"http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port))});
  cfg.request_timeout = 60s;
  std::atomic<int> done{0};
  {
    ElasticsearchSink sink(cfg, dead, metrics);
    sink.submit(batch(cfg, {line(0)}), [&] { ++done; });
    // A listening socket is readable once a connection waits in its queue: the request is on its way.
    ASSERT_TRUE(eventually([&] {
      pollfd p{fd, POLLIN, 0};
      return ::poll(&p, 1, 0) > 0;
    }, 5s));
    const auto t0 = std::chrono::steady_clock::now();
    sink.stop(t0 + 200ms);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
  }
  ::close(fd);
  EXPECT_EQ(done.load(), 0);
  EXPECT_EQ(metrics.counter_total("elasticsearch_abandoned_batches_total"), 1u);
}

TEST(ElasticsearchSink, RefusesBatchesInAnotherFormat) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  DeadLetters dead(dir / "dead", metrics);
  ElasticsearchSink sink(config({"http://127.0.0.1:9"}), dead, metrics);
  InsertRequest r;
  r.format = "Native";
  EXPECT_THROW(sink.submit(std::move(r), [] {}), std::invalid_argument);
}

}  // namespace
}  // namespace sluice::sinks
