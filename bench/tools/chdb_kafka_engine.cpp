// chdb_kafka_engine: the peer of bench/job-throughput.sh, what users reach for today to put a Kafka topic
// into ClickHouse: the engine's own Kafka table and a materialized view into a MergeTree table, here in
// embedded chDB (the same library and version sluice embeds), as a process of its own so that its CPU
// can be measured beside sluice's.
//   chdb_kafka_engine --path DIR --brokers HOST:PORT --topic T --group G --records N [--flush-ms MS]
// Prints "READY" once the tables exist and "REACHED" once the table holds N rows; then, after a line on
// stdin (the caller has read the process's CPU), stops consuming and prints "DONE <rows> <distinct ids>".
#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <string>
#include <thread>

#include "core/metrics.hpp"
#include "sinks/chdb_store.hpp"

namespace {

std::string arg(const std::map<std::string, std::string>& args, const std::string& name, const char* fallback = nullptr) {
  if (const auto it = args.find(name); it != args.end()) return it->second;
  if (fallback != nullptr) return fallback;
  throw std::runtime_error("missing --" + name);
}

std::uint64_t count_rows(sluice::sinks::ChdbStore& store, const std::string& sql) {
  const auto r = store.query(sql);
  return std::strtoull(r.data.c_str(), nullptr, 10);
}

}  // namespace

int main(int argc, char** argv) try {
  std::map<std::string, std::string> args;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string key = argv[i];
    if (key.rfind("--", 0) != 0) throw std::runtime_error("unexpected argument " + key);
    args[key.substr(2)] = argv[i + 1];
  }
  const auto records = std::stoull(arg(args, "records"));
  sluice::MetricsRegistry metrics;
  sluice::sinks::ChdbStore store({.path = arg(args, "path"), .library = "", .database = "sluice"}, metrics);
  store.query("CREATE DATABASE IF NOT EXISTS sluice");
  // The same table as the sluice job's mapping creates.
  store.query(
      "CREATE TABLE sluice.events (id UInt64, ts DateTime64(3), host LowCardinality(String), "
      "method LowCardinality(String), path String, status UInt16, bytes UInt64, latency Float64, user String, "
      "ok Bool) ENGINE = MergeTree ORDER BY (host, ts)");
  // One consumer (one core), at-least-once: the engine commits a block's offsets once the view wrote it.
  store.query(fmt::format(
      "CREATE TABLE sluice.events_queue (id UInt64, ts UInt64, host String, method String, path String, "
      "status UInt16, bytes UInt64, latency Float64, user String, ok Bool) ENGINE = Kafka SETTINGS "
      "kafka_broker_list = '{}', kafka_topic_list = '{}', kafka_group_name = '{}', kafka_format = 'JSONEachRow', "
      "kafka_num_consumers = 1, kafka_flush_interval_ms = {}",
      arg(args, "brokers"), arg(args, "topic"), arg(args, "group"), arg(args, "flush-ms", "1000")));
  store.query(
      "CREATE MATERIALIZED VIEW sluice.events_mv TO sluice.events AS SELECT id, fromUnixTimestamp64Milli(ts) AS ts, "
      "host, method, path, status, bytes, latency, user, ok FROM sluice.events_queue");
  std::printf("READY\n");
  std::fflush(stdout);
  while (count_rows(store, "SELECT count() FROM sluice.events") < records) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::printf("REACHED\n");
  std::fflush(stdout);
  for (int c = std::getchar(); c != '\n' && c != EOF; c = std::getchar()) {
  }
  // Stop consuming before the check, so that the check is all that runs.
  store.query("DETACH TABLE sluice.events_mv");
  std::printf("DONE %llu %llu\n",
              static_cast<unsigned long long>(count_rows(store, "SELECT count() FROM sluice.events")),
              static_cast<unsigned long long>(count_rows(store, "SELECT uniqExact(id) FROM sluice.events")));
  std::fflush(stdout);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "chdb_kafka_engine: %s\n", e.what());
  return 1;
}
