// Ingestion jobs end to end with the real binary: jobs defined in etcd and in the config, topics filled by
// kcat with JSON, Avro (Apache Avro's Python library) and Protobuf (protoc), stores chDB and ClickHouse.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "fixtures/clickhouse_server.hpp"
#include "integration/jobs_e2e_support.hpp"

namespace sluice::testing {
namespace {

using namespace jobs_e2e;

std::string base_config(const TempDir& dir, const MockKafka& kafka, const std::string& store,
                        const std::string& extra = "") {
  return "data_dir: " + (dir / "data") + "\n" +
         "shutdown_timeout: 20s\n"
         "admin: {listen: '${SLUICE_ADMIN_LISTEN}'}\n"
         "bus:\n  kafka:\n    brokers: " + kafka.bootstrap() +
         "\n    consumer_group: jobs-e2e\n    session_timeout: 6s\n"
         "outlet:\n"
         "  commit_interval: 200ms\n" +
         store + extra;
}

std::string etcd_section(const EtcdServer& etcd, const std::string& instance = "") {
  return "coordination:\n  endpoints: [" + etcd.endpoint() + "]\n  lease_ttl: 3s\n" +
         (instance.empty() ? "" : "  instance_id: " + instance + "\n");
}

nlohmann::json find_job(SluiceInstance& sluice, const std::string& name) {
  const auto status = sluice.status();  // kept: a range-for over status()["jobs"] would outlive it
  for (const auto& j : status["jobs"]) {
    if (j["name"] == name) return j;
  }
  return nullptr;
}

bool job_runs_definition(SluiceInstance& sluice, const std::string& name, const std::string& needle) {
  auto j = find_job(sluice, name);
  return !j.is_null() && j.value("state", "") == "running" && j.value("definition", "").find(needle) != std::string::npos;
}

std::uint64_t processor_sum(const nlohmann::json& job, const char* key) {
  std::uint64_t n = 0;
  if (!job.is_object() || !job.contains("processors")) return 0;
  for (const auto& p : job["processors"]) n += p.value(key, std::uint64_t{0});
  return n;
}

std::string json_job(const std::string& topic, const std::string& table, const std::string& host_from) {
  return "topic: " + topic + "\n"
         "decoder: {kind: json}\n"
         "batch: {max_rows: 1000, max_delay: 200ms}\n"
         "mapping:\n"
         "    table: " + table + "\n" +
         event_columns(host_from) + "    order_by: [id]\n";
}

// Rows in a job's table; 0 until the job, started by a watch, has created it.
std::uint64_t rows_in(SluiceInstance& s, const std::string& table) {
  if (s.query_u64("SELECT count() FROM system.tables WHERE database = 'sluice' AND name = '" + table + "'") == 0) return 0;
  return s.query_u64("SELECT count() FROM sluice." + table);
}

TEST(JobsE2E, EtcdJobsOfJsonAvroAndProtobufApplyLiveWithExactTotals) {
  MockKafka kafka(1, {{"sluice-flows", 1}, {"sluice-flow-templates", 1}, {"events-json", 3}, {"events-avro", 2},
                      {"events-proto", 2}});
  EtcdServer etcd;
  TempDir dir;
  SluiceInstance sluice("run", base_config(dir, kafka, "  chdb: {path: " + (dir / "data") + "/chdb}\n", etcd_section(etcd)),
                        dir);
  sluice.start();

  // JSON: a job put in etcd on the running instance.
  etcd.ctl({"put", "/sluice/jobs/json-events", json_job("events-json", "events_json", "host")});
  produce_lines(kafka, "events-json", json_events(0, 3000), dir);
  ASSERT_TRUE(eventually([&] { return rows_in(sluice, "events_json") == 3000; },
                         std::chrono::seconds(60)))
      << sluice.query("SELECT count() FROM sluice.events_json") << sluice.log();
  EXPECT_EQ(sluice.query("SELECT id, host, bytes, ratio, region, topic, toTypeName(host) FROM sluice.events_json "
                         "WHERE id = 10"),
            "10\th3\t30\t2.5\tr1\tevents-json\tLowCardinality(String)\n");
  // The inserts went in sorted by the table's key (ids from three partitions interleave): chDB counts
  // each block it finds in order, and does not sort it again.
  const double sorted_inserts = sluice.metric("sluice_sink_sorted_inserts_total", "sink=\"job-json-events-");
  EXPECT_GT(sorted_inserts, 0) << sluice.metrics_text();
  EXPECT_EQ(sluice.metric("sluice_sink_unsortable_inserts_total", "sink=\"job-json-events-"), 0);
  EXPECT_GE(static_cast<double>(sluice.query_u64(
                "SELECT value FROM system.events WHERE event = 'MergeTreeDataWriterBlocksAlreadySorted'")),
            sorted_inserts);

  // Avro in the Confluent wire format, and Protobuf with a descriptor set.
  const auto avro_files = avro_events(dir, 0, 150, 7);
  const auto proto_files = protobuf_events(dir, 0, 150);
  etcd.ctl({"put", "/sluice/jobs/avro-events",
            "topic: events-avro\n"
            "decoder: {kind: avro, confluent_wire_format: true, schemas: {7: " + (dir / "event.avsc") + "}}\n"
            "batch: {max_rows: 100, max_delay: 200ms}\n"
            "mapping:\n    table: events_avro\n" + event_columns() + "    order_by: [id]\n"});
  etcd.ctl({"put", "/sluice/jobs/proto-events",
            "topic: events-proto\n"
            "decoder: {kind: protobuf, descriptor_set: " + (dir / "event.desc") + ", message: demo.Event}\n"
            "batch: {max_rows: 100, max_delay: 200ms}\n"
            "mapping:\n    table: events_proto\n" + event_columns() + "    order_by: [id]\n"});
  produce_files(kafka, "events-avro", avro_files);
  produce_files(kafka, "events-proto", proto_files);
  for (const std::string table : {"events_avro", "events_proto"}) {
    ASSERT_TRUE(eventually([&] {
      return rows_in(sluice, table) == 150;
    }, std::chrono::seconds(60))) << table << "\n" << sluice.log() << find_job(sluice, "avro-events").dump();
    EXPECT_EQ(sluice.query("SELECT count(), uniqExact(id), sum(bytes), sum(ratio), countIf(host = concat('h', "
                           "toString(id % 7))), countIf(region = concat('r', toString(id % 3))) FROM sluice." + table),
              "150\t150\t33525\t2793.75\t150\t150\n") << table;
  }

  // Changing the mapping: `host` now comes from meta.region. Records consumed before the switch keep
  // the old mapping, later ones get the new one, none is lost or doubled.
  etcd.ctl({"put", "/sluice/jobs/json-events", json_job("events-json", "events_json", "meta.region")});
  // The needle names the host column: region comes from meta.region in both definitions.
  ASSERT_TRUE(eventually([&] {
    return job_runs_definition(sluice, "json-events", "name: host, type: LowCardinality(String), from: meta.region");
  }, std::chrono::seconds(30))) << sluice.status().dump();
  produce_lines(kafka, "events-json", json_events(3000, 2000), dir);
  ASSERT_TRUE(eventually([&] { return sluice.query_u64("SELECT count() FROM sluice.events_json") == 5000; },
                         std::chrono::seconds(60)))
      << sluice.query("SELECT count() FROM sluice.events_json");
  EXPECT_EQ(sluice.query("SELECT uniqExact(id), countIf(id < 3000 AND host LIKE 'h%'), "
                         "countIf(id >= 3000 AND host = region) FROM sluice.events_json"),
            "5000\t3000\t2000\n")
      << sluice.log();
  // The new definition's processor has its own series in /metrics (the drained one's are gone, not its).
  EXPECT_TRUE(eventually([&] {
    return sluice.metric("sluice_job_processor_consumed", "job=\"json-events\",processor=\"0\"") >= 2000;
  }, std::chrono::seconds(5))) << sluice.metrics_text();

  // Removing the job: it drains and commits; records produced meanwhile wait on the topic, and a job
  // with the same group resumes exactly where it stopped.
  etcd.ctl({"del", "/sluice/jobs/json-events"});
  ASSERT_TRUE(eventually([&] { return find_job(sluice, "json-events").is_null(); }, std::chrono::seconds(30)));
  produce_lines(kafka, "events-json", json_events(5000, 700), dir);
  EXPECT_EQ(sluice.query_u64("SELECT count() FROM sluice.events_json"), 5000u);
  etcd.ctl({"put", "/sluice/jobs/json-events", json_job("events-json", "events_json", "meta.region")});
  ASSERT_TRUE(eventually([&] { return sluice.query_u64("SELECT count() FROM sluice.events_json") == 5700; },
                         std::chrono::seconds(60)));
  EXPECT_EQ(sluice.query_u64("SELECT uniqExact(id) FROM sluice.events_json"), 5700u);
  EXPECT_EQ(sluice.stop(), 0) << sluice.log();
}

TEST(JobsE2E, ARefusingStoreRestartsTheProcessorAndPoisonRecordsGoToDeadLetters) {
  MockKafka kafka(1, {{"sluice-flows", 1}, {"sluice-flow-templates", 1}, {"orders", 2}});
  ClickHouseServer server;
  TempDir dir;
  const std::string job =
      "jobs:\n"
      "  - name: orders\n"
      "    topic: orders\n"
      "    decoder: {kind: json-lines}\n"
      "    batch: {max_rows: 500, max_delay: 200ms}\n"
      "    retry: {max_attempts: 2, initial: 100ms, max: 200ms, restart_initial: 300ms, restart_max: 1s}\n"
      "    mapping:\n"
      "      table: orders\n"
      "      columns:\n"
      "        - {name: id, type: UInt64, required: true}\n"
      "        - {name: host, type: String}\n"
      "        - {name: bytes, type: UInt64, required: true}\n"
      "      order_by: [id]\n";
  SluiceInstance sluice("outlet", base_config(dir, kafka, "  clickhouse: {url: '" + server.url() + "'}\n") + job, dir);
  sluice.start();
  // A configured job has made its table by the time the instance answers as started.
  EXPECT_EQ(server.query("EXISTS TABLE sluice.orders"), "1\n");

  // 1000 good records, and 10 poison ones among them: 5 that are not JSON, 5 whose bytes is no number.
  std::string lines;
  for (int chunk = 0; chunk < 5; ++chunk) {
    lines += json_events(static_cast<std::uint64_t>(chunk) * 200, 200);
    lines += "{oops this is not json " + std::to_string(chunk) + "\n";
    lines += "{\"id\": " + std::to_string(900000 + chunk) + ", \"bytes\": \"lots\"}\n";
  }
  produce_lines(kafka, "orders", lines, dir);
  ASSERT_TRUE(eventually([&] { return server.query("SELECT count() FROM sluice.orders") == "1000\n"; },
                         std::chrono::seconds(60))) << sluice.log();
  ASSERT_TRUE(eventually([&] { return processor_sum(find_job(sluice, "orders"), "failed") == 10; }, std::chrono::seconds(30)))
      << sluice.status()["jobs"].dump();
  // A record is counted as failed when it is rejected; its letter is written (fsynced) when its batch
  // closes, before the batch's offsets can be committed.
  std::string letters;
  const auto read_letters = [&] {
    letters.clear();
    for (const auto& f : std::filesystem::recursive_directory_iterator(dir / "data")) {
      if (f.path().extension() == ".ndjson") letters += read_file(f.path().string());
    }
    return std::count(letters.begin(), letters.end(), '\n');
  };
  EXPECT_TRUE(eventually([&] { return read_letters() >= 10; }, std::chrono::seconds(10))) << letters;
  EXPECT_EQ(read_letters(), 10) << letters;
  EXPECT_NE(letters.find("oops this is not json 3"), std::string::npos) << letters;
  EXPECT_NE(letters.find("bytes"), std::string::npos) << letters;
  EXPECT_NE(letters.find("is \\\"lots\\\", not an integer"), std::string::npos) << letters;

  // The store goes away: the processor gives up on its batch, restarts with backoff, and says why.
  server.stop();
  produce_lines(kafka, "orders", json_events(1000, 500), dir);
  ASSERT_TRUE(eventually([&] {
    auto j = find_job(sluice, "orders");
    return processor_sum(j, "restarts") >= 2;
  }, std::chrono::seconds(60))) << find_job(sluice, "orders").dump();
  const auto failing = find_job(sluice, "orders");
  bool has_error = false;
  for (const auto& p : failing["processors"]) has_error = has_error || p["last_error"].is_string();
  EXPECT_TRUE(has_error) << failing.dump();
  EXPECT_GE(sluice.metric("sluice_job_restarts_total", "job=\"orders\""), 2);
  // The same per processor in /metrics, refreshed by the driver's supervisor.
  EXPECT_TRUE(eventually([&] {
    return sluice.metric("sluice_job_processor_restarts", "job=\"orders\",processor=\"0\"") >= 2 &&
           sluice.metric("sluice_job_processor_last_error_timestamp_seconds", "job=\"orders\"") > 1.7e9 &&
           sluice.metric("sluice_job_processor_consumed", "job=\"orders\"") >= 1000;
  }, std::chrono::seconds(5)));

  // The store comes back: everything arrives once, the lag drains.
  server.start();
  ASSERT_TRUE(eventually([&] { return server.query("SELECT count() FROM sluice.orders") == "1500\n"; },
                         std::chrono::seconds(90))) << sluice.log();
  EXPECT_EQ(server.query("SELECT uniqExact(id), sum(bytes) FROM sluice.orders"), "1500\t3372750\n");
  EXPECT_EQ(sluice.stop(), 0) << sluice.log();
}

TEST(JobsE2E, TwoInstancesInOneGroupSurviveTheDeathOfOne) {
  MockKafka kafka(1, {{"sluice-flows", 1}, {"sluice-flow-templates", 1}, {"shared", 6}});
  EtcdServer etcd;
  ClickHouseServer server;
  TempDir dir_a, dir_b;
  const std::string store = "  clickhouse: {url: '" + server.url() + "'}\n";
  SluiceInstance a("outlet", base_config(dir_a, kafka, store, etcd_section(etcd, "instance-a")), dir_a, {}, "a");
  SluiceInstance b("outlet", base_config(dir_b, kafka, store, etcd_section(etcd, "instance-b")), dir_b, {}, "b");
  a.start();
  b.start();
  // ReplacingMergeTree by id: a batch stored by the dying instance but not yet committed is stored
  // again by the survivor (ClickHouse 18.16 has no insert deduplication tokens); FINAL counts it once.
  etcd.ctl({"put", "/sluice/jobs/shared",
            "topic: shared\ndecoder: {kind: json}\nbatch: {max_rows: 500, max_delay: 200ms}\n"
            "mapping:\n    table: shared\n" + event_columns() +
            "    engine: ReplacingMergeTree\n    order_by: [id]\n"});
  const auto cluster_size = [&](SluiceInstance& s) {
    auto r = run_command({"curl", "-sf", "http://127.0.0.1:" + std::to_string(s.admin_port()) + "/api/v0/cluster"});
    if (r.exit_code != 0) return std::size_t{0};
    return nlohmann::json::parse(r.out)["instances"].size();
  };
  ASSERT_TRUE(eventually([&] { return cluster_size(a) == 2; }, std::chrono::seconds(30)));
  ASSERT_TRUE(eventually([&] {
    auto ja = find_job(a, "shared"), jb = find_job(b, "shared");
    return !ja.is_null() && !jb.is_null() && ja["processors"][0]["partitions"].size() +
                                                     jb["processors"][0]["partitions"].size() == 6 &&
           !ja["processors"][0]["partitions"].empty() && !jb["processors"][0]["partitions"].empty();
  }, std::chrono::seconds(60))) << a.status().dump() << b.status().dump();

  produce_lines(kafka, "shared", json_events(0, 20000), dir_a);
  ASSERT_TRUE(eventually([&] { return std::stoull(server.query("SELECT count() FROM sluice.shared")) > 0; },
                         std::chrono::seconds(60)));
  b.kill9();
  produce_lines(kafka, "shared", json_events(20000, 10000), dir_a);
  // Its registration goes with its lease; its partitions go to the survivor.
  ASSERT_TRUE(eventually([&] { return cluster_size(a) == 1; }, std::chrono::seconds(30)));
  ASSERT_TRUE(eventually([&] {
    return server.query("SELECT count(), uniqExact(id) FROM sluice.shared FINAL") == "30000\t30000\n";
  }, std::chrono::seconds(90))) << server.query("SELECT count(), uniqExact(id) FROM sluice.shared FINAL") << a.log();
  EXPECT_EQ(server.query("SELECT sum(bytes) FROM sluice.shared FINAL"), std::to_string(3ull * 29999 * 30000 / 2) + "\n");
  EXPECT_EQ(a.stop(), 0) << a.log();
}

}  // namespace
}  // namespace sluice::testing
