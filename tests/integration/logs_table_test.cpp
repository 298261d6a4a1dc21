// The `logs` table on both stores: events arrive with their identity and fields queryable, and a line
// read twice (after a crash of the file source) counts once with FINAL.
#include <gtest/gtest.h>

#include "fixtures/clickhouse_server.hpp"
#include "fixtures/process.hpp"
#include "sinks/chdb_store.hpp"
#include "sinks/clickhouse_http_store.hpp"
#include "sinks/logs_table.hpp"

namespace sluice::sinks {
namespace {

transforms::LogEvent event(std::uint64_t offset, std::string_view message, std::int64_t ts_ms) {
  transforms::LogEvent e;
  e.host = "web-1";
  e.path = "/var/log/app.log";
  e.file_id = 42;
  e.offset = offset;
  e.timestamp_ms = ts_ms;
  e.message = message;
  return e;
}

void insert_known_rows(Store& store) {
  ensure_logs_table(store);
  LogsBlock block(store.dialect());
  auto a = event(0, "GET /index.html 200", 1'700'000'000'123);
  a.set("status", "200", transforms::FieldType::number);
  a.set("method", "GET");
  block.append(a);
  block.append(event(20, "second line", 1'700'000'001'000));
  store.insert({"logs", "Native", block.take(), 2, ""});
  // The file source read the second line again after a crash, at another time.
  block.append(event(20, "second line", 1'700'000'005'000));
  store.insert({"logs", "Native", block.take(), 1, ""});
}

TEST(LogsTable, ChdbStoresEventsWithFieldsAndCountsARereadLineOnce) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  ChdbStore store({dir / "chdb", "", "sluice"}, metrics);
  insert_known_rows(store);
  EXPECT_EQ(store.query("SELECT Host, Path, FileId, Offset, Message, Fields['status'], Fields['method'], "
                        "toUnixTimestamp64Milli(Timestamp) FROM sluice.logs FINAL ORDER BY Offset",
                        "TabSeparated")
                .data,
            "web-1\t/var/log/app.log\t42\t0\tGET /index.html 200\t200\tGET\t1700000000123\n"
            "web-1\t/var/log/app.log\t42\t20\tsecond line\t\t\t1700000005000\n");
}

TEST(LogsTable, LegacyServerStoresEventsWithNestedFields) {
  testing::ClickHouseServer server;
  MetricsRegistry metrics;
  ClickHouseHttpConfig config;
  config.url = server.url();
  ClickHouseHttpStore store(config, metrics);
  ASSERT_EQ(store.dialect(), ClickHouseDialect::legacy);
  insert_known_rows(store);
  EXPECT_EQ(store.query("SELECT Offset, Message, Fields.Value[indexOf(Fields.Key, 'status')], toUnixTimestamp(Timestamp) "
                        "FROM sluice.logs FINAL ORDER BY Offset",
                        "TabSeparated")
                .data,
            "0\tGET /index.html 200\t200\t1700000000\n"
            "20\tsecond line\t\t1700000005\n");
}

}  // namespace
}  // namespace sluice::sinks
