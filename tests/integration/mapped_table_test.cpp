// Job tables on real stores (embedded chDB, the ClickHouse 18.16 server): a mapping creates its table,
// the writer's Native block goes in through Store::insert and reads back with exact values for every
// type; the column check names a wrong type and a missing column and accepts a compatible table.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <string>

#include "core/metrics.hpp"
#include "core/native_merge.hpp"
#include "core/native_sort.hpp"
#include "fixtures/clickhouse_server.hpp"
#include "fixtures/native_rows.hpp"
#include "fixtures/process.hpp"
#include "pipeline/jobs/column_mapping.hpp"
#include "sinks/chdb_store.hpp"
#include "sinks/clickhouse_http_store.hpp"

namespace sluice::pipeline::jobs {
namespace {

using transforms::FieldType;
using transforms::LogEvent;

ColumnSpec col(std::string name, std::string type, std::string from = "") {
  return {std::move(name), std::move(type), std::move(from), std::nullopt, false};
}

MappingSpec every_type() {
  MappingSpec m;
  m.table = "events";
  m.order_by = {"off"};
  m.columns = {
      col("off", "UInt64", "_offset"),
      col("topic", "LowCardinality(String)", "_topic"),
      col("ts", "DateTime64(3)", "time"),
      col("dt", "DateTime", "time"),
      col("day", "Date", "time"),
      col("host", "LowCardinality(String)"),
      col("bytes", "UInt64"),
      col("delta", "Int32"),
      col("ratio", "Float64"),
      col("f32", "Float32"),
      col("ok", "Bool"),
      col("small", "UInt8"),
      col("code", "FixedString(3)"),
      col("id", "UUID"),
      col("src", "IPv4"),
      col("dst", "IPv6"),
      col("tags", "Array(String)"),
      col("ns", "Array(Int64)"),
      col("xs", "Array(Float64)"),
      col("attrs", "Map(String, String)"),
      col("maybe", "Nullable(Int64)"),
      col("rest", "Map(String, String)", "*"),
  };
  m.columns[6].default_value = "7";  // bytes
  return m;
}

// Two rows: one with every field, one with only its time and host (defaults, zeros, NULL). In one block
// from one writer, or (`merged`) each from its own writer, merged as a sink merges coalesced batches.
void insert_two_rows(sinks::Store& store, const MappingSpec& mapping, bool merged = false) {
  ensure_mapped_table(store, mapping);
  auto writer = compile_mapping(mapping, store.dialect())->make_writer();
  auto second = merged ? compile_mapping(mapping, store.dialect())->make_writer() : nullptr;
  LogEvent e;
  e.set("time", "2024-01-02T03:04:05.123Z");
  e.set("host", "web-1");
  e.set("bytes", "18446744073709551615", FieldType::number);
  e.set("delta", "-2147483648", FieldType::number);
  e.set("ratio", "0.125", FieldType::number);
  e.set("f32", "2.5", FieldType::number);
  e.set("ok", "true", FieldType::boolean);
  e.set("small", "255", FieldType::number);
  e.set("code", "ab");
  e.set("id", "61f0c404-5cb3-11e7-907b-a6006ad3dba0");
  e.set("src", "192.0.2.1");
  e.set("dst", "2001:db8::1");
  e.set("tags", R"(["a","b c"])", FieldType::json);
  e.set("ns", "[1,-2]", FieldType::json);
  e.set("xs", "[0.5]", FieldType::json);
  e.set("attrs", R"({"k":"v","n":3})", FieldType::json);
  e.set("maybe", "-5", FieldType::number);
  e.set("extra", "x");
  ASSERT_FALSE(writer->append(e, {"orders", 0, 100, "", 0}));
  e.clear();
  e.set("time", "1704164646000", FieldType::number);  // milliseconds: 03:04:06 the same day
  e.set("host", "web-2");
  ASSERT_FALSE((merged ? second : writer)->append(e, {"orders", 0, 101, "", 0}));
  auto request = writer->take();
  if (merged) {
    const auto other = second->take();
    const std::vector<std::string_view> bodies{request.body, other.body};
    std::string one;
    ASSERT_TRUE(merge_native_blocks(bodies, one));
    request.body = std::move(one);
    request.rows += other.rows;
  }
  EXPECT_EQ(request.rows, 2u);
  store.insert(request);
}

TEST(MappedTable, ChdbCreatesTheTableAndReadsBackEveryType) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  sinks::ChdbStore store({dir / "chdb", "", "sluice"}, metrics);
  ASSERT_EQ(store.dialect(), ClickHouseDialect::modern);
  const auto mapping = every_type();
  insert_two_rows(store, mapping);
  EXPECT_EQ(store.query("SELECT type FROM system.columns WHERE database = 'sluice' AND table = 'events' "
                        "AND name IN ('ts', 'ok', 'attrs', 'topic')")
                .data,
            "LowCardinality(String)\nDateTime64(3)\nBool\nMap(String, String)\n");
  for (const bool merged : {false, true}) {
    SCOPED_TRACE(merged ? "two blocks merged into one" : "one block");
    if (merged) {
      store.query("TRUNCATE TABLE sluice.events");
      insert_two_rows(store, mapping, true);
    }
    EXPECT_EQ(store.query("SELECT off, topic, toUnixTimestamp64Milli(ts), toUnixTimestamp(dt), toString(day), host, "
                          "bytes, delta, ratio, f32, ok, small, hex(code), toString(id), toString(src), toString(dst), "
                          "tags, ns, xs, attrs, maybe, rest FROM sluice.events ORDER BY off")
                  .data,
              "100\torders\t1704164645123\t1704164645\t2024-01-02\tweb-1\t18446744073709551615\t-2147483648\t0.125\t2.5\t"
              "true\t255\t616200\t61f0c404-5cb3-11e7-907b-a6006ad3dba0\t192.0.2.1\t2001:db8::1\t['a','b c']\t[1,-2]\t"
              "[0.5]\t{'k':'v','n':'3'}\t-5\t{'extra':'x'}\n"
              "101\torders\t1704164646000\t1704164646\t2024-01-02\tweb-2\t7\t0\t0\t0\tfalse\t0\t000000\t"
              "00000000-0000-0000-0000-000000000000\t0.0.0.0\t::\t[]\t[]\t[]\t{}\t\\N\t{}\n");
  }
}

TEST(MappedTable, LegacyServerCreatesTheTableAndReadsBackEveryType) {
  testing::ClickHouseServer server;
  MetricsRegistry metrics;
  sinks::ClickHouseHttpConfig config;
  config.url = server.url();
  sinks::ClickHouseHttpStore store(config, metrics);
  ASSERT_EQ(store.dialect(), ClickHouseDialect::legacy);
  const auto mapping = every_type();
  insert_two_rows(store, mapping);
  EXPECT_EQ(store.query("SELECT name, type FROM system.columns WHERE database = 'sluice' AND table = 'events' "
                        "AND name IN ('ts', 'ok', 'topic', 'src', 'dst', 'attrs.Key', 'attrs.Value')")
                .data,
            "topic\tString\nts\tDateTime\nok\tUInt8\nsrc\tUInt32\ndst\tFixedString(16)\nattrs.Key\tArray(String)\n"
            "attrs.Value\tArray(String)\n");
  for (const bool merged : {false, true}) {
    SCOPED_TRACE(merged ? "two blocks merged into one" : "one block");
    if (merged) {
      store.query("DROP TABLE sluice.events");  // 18.16 has no TRUNCATE for MergeTree
      insert_two_rows(store, mapping, true);
    }
    EXPECT_EQ(store.query("SELECT off, topic, toUnixTimestamp(ts), toUnixTimestamp(dt), toString(day), host, bytes, "
                          "delta, ratio, f32, ok, small, hex(code), toString(id), IPv4NumToString(src), "
                          "IPv6NumToString(dst), tags, ns, xs, attrs.Key, attrs.Value, maybe, rest.Key, rest.Value "
                          "FROM sluice.events ORDER BY off")
                  .data,
              "100\torders\t1704164645\t1704164645\t2024-01-02\tweb-1\t18446744073709551615\t-2147483648\t0.125\t2.5\t"
              "1\t255\t616200\t61f0c404-5cb3-11e7-907b-a6006ad3dba0\t192.0.2.1\t2001:db8::1\t['a','b c']\t[1,-2]\t"
              "[0.5]\t['k','n']\t['v','3']\t-5\t['extra']\t['x']\n"
              "101\torders\t1704164646\t1704164646\t2024-01-02\tweb-2\t7\t0\t0\t0\t0\t0\t000000\t"
              "00000000-0000-0000-0000-000000000000\t0.0.0.0\t::\t[]\t[]\t[]\t[]\t[]\t\\N\t[]\t[]\n");
  }
}

MappingSpec checked_mapping(bool create) {
  MappingSpec m;
  m.table = "checked";
  m.create = create;
  m.columns = {col("bytes", "UInt64"), col("host", "String"), col("ts", "DateTime")};
  return m;
}

// Runs the column check on tables made by hand: a mismatching one, and a compatible one with an extra
// column that takes its default when the writer's block leaves it out.
void check_existing_tables(sinks::Store& store) {
  store.query("CREATE DATABASE IF NOT EXISTS sluice");
  store.query("CREATE TABLE sluice.checked (bytes Int32, ts DateTime) ENGINE = MergeTree ORDER BY ts");
  for (bool create : {false, true}) {
    try {
      ensure_mapped_table(store, checked_mapping(create));
      ADD_FAILURE() << "a table with a wrong type and a missing column was accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()),
                "table sluice.checked: column bytes is Int32 in the table, the mapping says UInt64; column host is "
                "missing (alter the table or the mapping; extra table columns are fine)");
    }
  }
  try {
    auto missing = checked_mapping(false);
    missing.table = "absent";
    ensure_mapped_table(store, missing);
    ADD_FAILURE() << "a missing table was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "table sluice.absent does not exist in " + store.describe() +
                                         " and the mapping does not create it (mapping.create is false): create "
                                         "it, or set create: true");
  }

  store.query("CREATE TABLE sluice.compatible (ts DateTime, host String, bytes UInt64, note String DEFAULT 'none') "
              "ENGINE = MergeTree ORDER BY ts");
  auto mapping = checked_mapping(false);
  mapping.table = "compatible";
  ensure_mapped_table(store, mapping);
  auto writer = compile_mapping(mapping, store.dialect())->make_writer();
  LogEvent e;
  e.set("bytes", "42", FieldType::number);
  e.set("host", "h");
  e.set("ts", "1704164645", FieldType::number);
  ASSERT_FALSE(writer->append(e, {}));
  store.insert(writer->take());
  EXPECT_EQ(store.query("SELECT toUnixTimestamp(ts), host, bytes, note FROM sluice.compatible").data,
            "1704164645\th\t42\tnone\n");

  // A fresh table without order_by (ORDER BY tuple()) and with a partition key.
  auto fresh = checked_mapping(true);
  fresh.table = "fresh";
  fresh.partition_by = "toYYYYMM(ts)";
  // 50 years: far enough that the row does not expire, within DateTime's range (to 2106). 100 years
  // wrapped past it into the past, and a background TTL merge could delete the row before the check.
  fresh.ttl = "ts + INTERVAL 50 YEAR";
  if (store.dialect() == ClickHouseDialect::legacy) {
    try {
      ensure_mapped_table(store, fresh);
      ADD_FAILURE() << "a TTL was accepted by ClickHouse 18.16";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()), "table sluice.fresh: mapping.ttl needs ClickHouse 19.6 or later; " +
                                           store.describe() + " is older (remove ttl, or create the table yourself)");
    }
    fresh.ttl.clear();
  }
  ensure_mapped_table(store, fresh);
  ensure_mapped_table(store, fresh);  // a second start finds it as it made it
  writer = compile_mapping(fresh, store.dialect())->make_writer();
  ASSERT_FALSE(writer->append(e, {}));
  store.insert(writer->take());
  EXPECT_EQ(store.query("SELECT toUnixTimestamp(ts), host, bytes FROM sluice.fresh").data, "1704164645\th\t42\n");
}

TEST(MappedTable, ChdbColumnCheckNamesEveryDifferenceAndAcceptsACompatibleTable) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  sinks::ChdbStore store({dir / "chdb", "", "sluice"}, metrics);
  check_existing_tables(store);
}

TEST(MappedTable, LegacyServerColumnCheckNamesEveryDifferenceAndAcceptsACompatibleTable) {
  testing::ClickHouseServer server;
  MetricsRegistry metrics;
  sinks::ClickHouseHttpConfig config;
  config.url = server.url();
  sinks::ClickHouseHttpStore store(config, metrics);
  check_existing_tables(store);
}

// A block NativeSorter put in the table's order is one chDB finds sorted (ClickHouse counts each such
// block in MergeTreeDataWriterBlocksAlreadySorted and skips its own sort), for keys of every kind it
// compares; the same rows unsorted are not; and the table holds exactly the rows either way.
TEST(MappedTable, ChdbFindsBlocksSortedByTheTableKeyInOrder) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  sinks::ChdbStore store({dir / "chdb", "", "sluice"}, metrics);
  const auto already_sorted = [&] {
    return store.query("SELECT value FROM system.events WHERE event = 'MergeTreeDataWriterBlocksAlreadySorted'").data;
  };
  std::vector<int> rows(2000);
  for (int i = 0; i < 2000; ++i) rows[i] = i * 7919 % 2000;  // a permutation: 7919 is prime
  const std::vector<std::vector<std::string>> keys = {
      {"lc", "dt64"}, {"i64"}, {"f64", "u16"}, {"s", "fs"}, {"u8", "f32", "lc", "u64"}, {"b", "d", "dt", "ip4"}};
  int table = 0;
  for (const auto& key : keys) {
    SCOPED_TRACE(fmt::format("ORDER BY ({})", fmt::join(key, ", ")));
    MappingSpec mapping = testing::every_type_mapping();
    mapping.table = fmt::format("sorted_{}", ++table);
    mapping.order_by = key;
    ensure_mapped_table(store, mapping);
    EXPECT_EQ(table_sorting_columns(store, mapping.table), key);
    const std::string block = testing::every_type_block(mapping, store.dialect(), rows);
    NativeSorter sorter;
    std::string sorted;
    ASSERT_EQ(sorter.sort(block, key, sorted), NativeSorter::Outcome::sorted);
    const auto before = already_sorted();
    store.insert({mapping.table, "Native", block, rows.size(), ""});
    EXPECT_EQ(already_sorted(), before) << "the unsorted block was taken as sorted";
    store.insert({mapping.table, "Native", sorted, rows.size(), ""});
    const auto after = already_sorted();
    EXPECT_EQ(std::stoull(after.empty() ? "0" : after), std::stoull(before.empty() ? "0" : before) + 1);
    EXPECT_EQ(store.query(fmt::format("SELECT count(), uniqExact(u32), sum(u16), countIf(nu IS NULL) FROM sluice.{}",
                                      mapping.table))
                  .data,
              store.query(fmt::format("SELECT 2 * 2000, 2000, 2 * sum(number * 13 % 65536), 2 * countIf(number % 3 = 2) "
                                      "FROM numbers(2000)"))
                  .data);
  }
  MappingSpec by_expression = testing::every_type_mapping();
  by_expression.table = "by_expression";
  by_expression.order_by = {"lc", "toStartOfHour(dt)"};
  ensure_mapped_table(store, by_expression);
  EXPECT_TRUE(table_sorting_columns(store, by_expression.table).empty());  // rows cannot be put in that order here
}

}  // namespace
}  // namespace sluice::pipeline::jobs
