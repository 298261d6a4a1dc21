// ClickHouseHttpStore and the compressed-body framing against the real ClickHouse server (Debian 18.16).
#include <gtest/gtest.h>
#include <httplib.h>

#include <array>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "core/envelope.hpp"
#include "core/flow_batch.hpp"
#include "core/metrics.hpp"
#include "fixtures/clickhouse_server.hpp"
#include "sinks/clickhouse_compression.hpp"
#include "sinks/clickhouse_http_store.hpp"

namespace sluice::sinks {
namespace {

using testing::ClickHouseServer;
using Compression = ClickHouseHttpConfig::Compression;

const std::array<std::string, 4> kExporterNames = {"edge-1", "edge-2", "core-1", "core-2"};
const std::array<std::string, 3> kIfNames = {"xe-0/0/0", "xe-0/0/1", "et-1/0/0"};

// Flow number i of a data set: every field is a function of i, so the test knows what the server holds.
FlowRecord make_flow(std::uint32_t i) {
  FlowRecord r;
  r.time_received = 1'700'000'000 + i;
  r.time_flow_start = r.time_received - 10;
  r.time_flow_end = r.time_received - 1;
  r.sampling_rate = 1000;
  r.exporter_address = ip6_from_v4(0x0A000001 + i % 4);  // 10.0.0.1 .. 10.0.0.4
  r.exporter_name = kExporterNames[i % 4];
  r.src_addr = ip6_from_v4(0xC0A80000 + i);  // 192.168.x.y
  r.dst_addr = i % 10 == 0 ? *ip6_parse("2001:db8::" + std::to_string(i % 10000)) : ip6_from_v4(0x08080808);
  r.src_as = 64500 + i % 7;
  r.dst_as = 15169;
  r.src_country[0] = 'F', r.src_country[1] = 'R';
  r.dst_country[0] = 'U', r.dst_country[1] = 'S';
  r.in_if = 10 + i % 3;
  r.out_if = 20;
  r.in_if_name = kIfNames[i % 3];
  r.in_if_speed = 10000;
  r.in_if_boundary = static_cast<Boundary>(i % 3);
  r.flow_direction = i % 2 ? FlowDirection::ingress : FlowDirection::egress;
  r.etype = 0x0800;
  r.proto = i % 2 ? 6 : 17;
  r.src_port = static_cast<std::uint16_t>(1024 + i % 50000);
  r.dst_port = 443;
  r.bytes = 1000 + i;
  r.packets = 1 + i % 10;
  return r;
}

// flows_raw (Null) → materialized view → flows (MergeTree), as the schema module will build them.
void create_flow_tables(ClickHouseServer& server, const std::string& db, const FlowSchema& schema) {
  std::string columns;
  for (const auto* c : schema.columns) {
    if (!columns.empty()) columns += ", ";
    columns += std::string(c->name) + " " + schema.table_type(*c);
  }
  server.query("CREATE DATABASE IF NOT EXISTS " + db);
  server.query("CREATE TABLE " + db + ".flows (" + columns +
               ") ENGINE = MergeTree PARTITION BY toYYYYMMDD(TimeReceived) ORDER BY (TimeReceived, ExporterAddress)");
  server.query("CREATE TABLE " + db + ".flows_raw (" + columns + ") ENGINE = Null");
  server.query("CREATE MATERIALIZED VIEW " + db + ".flows_raw_consumer TO " + db + ".flows AS SELECT * FROM " + db +
               ".flows_raw");
}

ClickHouseHttpConfig config_for(const ClickHouseServer& server, const std::string& db, Compression compression) {
  ClickHouseHttpConfig c;
  c.url = server.url();
  c.database = db;
  c.compression = compression;
  return c;
}

InsertRequest flows_request(FlowBatch& batch) {
  InsertRequest req;
  req.table = "flows_raw";
  req.format = "Native";
  req.rows = batch.rows();
  batch.take_native(req.body);
  return req;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

TEST(ClickHouseHttpStore, DetectsLegacyServerAndCreatesDatabase) {
  ClickHouseServer server;
  MetricsRegistry metrics;
  ClickHouseHttpStore store(config_for(server, "sluice", Compression::lz4), metrics);
  EXPECT_EQ(store.server_version().rfind("18.16.", 0), 0u) << store.server_version();
  EXPECT_EQ(store.dialect(), ClickHouseDialect::legacy);
  EXPECT_FALSE(store.supports_dedup_token());
  EXPECT_EQ(store.database(), "sluice");
  EXPECT_EQ(store.describe(), "clickhouse " + server.url());
  EXPECT_EQ(server.query("SELECT count() FROM system.databases WHERE name = 'sluice'"), "1\n");

  // What this server lacks, which is why the legacy dialect exists.
  EXPECT_THROW(server.query("SELECT CAST('::1' AS IPv6)"), std::runtime_error);
  EXPECT_THROW(server.query("CREATE TABLE sluice.u (a UInt128) ENGINE = Memory"), std::runtime_error);
  EXPECT_THROW(server.query("CREATE TABLE sluice.l (a LowCardinality(String)) ENGINE = Memory"), std::runtime_error);

  // Queries go to the store's database; 18.16 sends no X-ClickHouse-Summary, so nothing is read back.
  const auto r = store.query("SELECT currentDatabase() AS db, 1 + 1 AS two", "JSONEachRow");
  EXPECT_EQ(r.data, "{\"db\":\"sluice\",\"two\":2}\n");
  EXPECT_EQ(r.rows_read, 0u);
  EXPECT_EQ(store.query("SELECT 42").data, "42\n");
}

TEST(ClickHouseHttpStore, InsertsFlowsWithEveryCompression) {
  ClickHouseServer server;
  MetricsRegistry metrics;
  const auto schema = FlowSchema::make(ClickHouseDialect::legacy, {});
  constexpr std::uint32_t kRows = 10'000;
  std::uint64_t want_bytes = 0, want_packets = 0;
  for (std::uint32_t i = 0; i < kRows; ++i) {
    want_bytes += make_flow(i).bytes;
    want_packets += make_flow(i).packets;
  }

  const std::vector<std::pair<Compression, std::string>> cases = {
      {Compression::none, "sluice_none"}, {Compression::lz4, "sluice_lz4"}, {Compression::zstd, "sluice_zstd"}};
  for (const auto& [compression, db] : cases) {
    SCOPED_TRACE(db);
    create_flow_tables(server, db, schema);
    ClickHouseHttpStore store(config_for(server, db, compression), metrics);
    FlowBatch batch(schema);
    for (std::uint32_t i = 0; i < kRows; ++i) batch.append(make_flow(i));
    ASSERT_EQ(batch.total_bytes(), want_bytes);
    auto req = flows_request(batch);
    ASSERT_GT(req.body.size(), kClickHouseMaxBlockSize) << "the body should span several compressed blocks";
    store.insert(req);

    EXPECT_EQ(store.query("SELECT count(), sum(Bytes), sum(Packets) FROM flows").data,
              std::to_string(kRows) + "\t" + std::to_string(want_bytes) + "\t" + std::to_string(want_packets) + "\n");
    const auto row = [&](std::uint32_t i) {
      return store
          .query("SELECT IPv6NumToString(ExporterAddress), ExporterName, IPv6NumToString(SrcAddr), "
                 "IPv6NumToString(DstAddr), SrcAS, SrcCountry, InIfName, InIfBoundary, FlowDirection, Proto, "
                 "SrcPort, Bytes, Packets, toUnixTimestamp(TimeReceived) FROM flows WHERE TimeReceived = " +
                 std::to_string(1'700'000'000 + i))
          .data;
    };
    EXPECT_EQ(row(0), "::ffff:10.0.0.1\tedge-1\t::ffff:192.168.0.0\t2001:db8::\t64500\tFR\txe-0/0/0\tundefined\t"
                      "egress\t17\t1024\t1000\t1\t1700000000\n");
    EXPECT_EQ(row(1234), "::ffff:10.0.0.3\tcore-1\t::ffff:192.168.4.210\t::ffff:8.8.8.8\t64502\tFR\txe-0/0/1\t"
                         "external\tegress\t17\t2258\t2234\t5\t1700001234\n");
    EXPECT_EQ(row(9999), "::ffff:10.0.0.4\tcore-2\t::ffff:192.168.39.15\t::ffff:8.8.8.8\t64503\tFR\txe-0/0/0\t"
                         "undefined\tingress\t6\t11023\t10999\t10\t1700009999\n");
    EXPECT_EQ(store.query("SELECT IPv6NumToString(DstAddr) FROM flows WHERE TimeReceived = 1700001230").data,
              "2001:db8::1230\n");
    EXPECT_EQ(store.query("SELECT InIfBoundary, count() FROM flows GROUP BY InIfBoundary ORDER BY InIfBoundary").data,
              "undefined\t3334\nexternal\t3333\ninternal\t3333\n");
  }
  EXPECT_EQ(metrics.counter_total("clickhouse_insert_rows_total"), 3 * kRows);
  EXPECT_EQ(metrics.counter_total("clickhouse_inserts_total"), 3u);
  EXPECT_EQ(metrics.counter_total("clickhouse_errors_total"), 0u);
}

// An insert into a missing table is retried (the rows are fine; the table may be on its way back), while a
// statement that names a missing table, bad SQL and a damaged body are refused for good.
TEST(ClickHouseHttpStore, MissingTableIsRetriedForInsertsWhileBadStatementsAndBodiesArePermanent) {
  ClickHouseServer server;
  MetricsRegistry metrics;
  const auto schema = FlowSchema::make(ClickHouseDialect::legacy, {});
  ClickHouseHttpStore store(config_for(server, "sluice", Compression::lz4), metrics);
  FlowBatch batch(schema);
  for (std::uint32_t i = 0; i < 10; ++i) batch.append(make_flow(i));
  auto req = flows_request(batch);
  req.table = "no_such_table";
  try {
    store.insert(req);
    FAIL() << "insert into a missing table succeeded";
  } catch (const StoreError& e) {
    EXPECT_TRUE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("no_such_table"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Code: 60"), std::string::npos) << e.what();
  }
  EXPECT_EQ(metrics.counter_value("clickhouse_errors_total", {{"url", server.url()}, {"kind", "retryable"}}), 1u);
  try {
    store.query("SELECT count() FROM sluice.no_such_table");
    FAIL() << "a query of a missing table succeeded";
  } catch (const StoreError& e) {
    EXPECT_FALSE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("Code: 60"), std::string::npos) << e.what();
  }

  // A syntax error in a query is permanent too.
  try {
    store.query("SELEC 1");
    FAIL() << "bad SQL succeeded";
  } catch (const StoreError& e) {
    EXPECT_FALSE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("Code: 62"), std::string::npos) << e.what();
  }
  // A damaged body (here: cut short) is refused the same way on every retry.
  create_flow_tables(server, "sluice", schema);
  FlowBatch again(schema);
  for (std::uint32_t i = 0; i < 100; ++i) again.append(make_flow(i));
  auto cut = flows_request(again);
  cut.body.resize(cut.body.size() - 100);
  try {
    store.insert(cut);
    FAIL() << "truncated block accepted";
  } catch (const StoreError& e) {
    EXPECT_FALSE(e.retryable()) << e.what();
    EXPECT_NE(std::string(e.what()).find("Code: 33"), std::string::npos) << e.what();
  }
  EXPECT_EQ(store.query("SELECT count() FROM flows").data, "0\n");
  // The missing table's query, the bad SQL and the damaged body; the insert into the missing table.
  EXPECT_EQ(metrics.counter_value("clickhouse_errors_total", {{"url", server.url()}, {"kind", "permanent"}}), 3u);
  EXPECT_EQ(metrics.counter_value("clickhouse_errors_total", {{"url", server.url()}, {"kind", "retryable"}}), 1u);
}

TEST(ClickHouseHttpStore, UnreachableServerAtStartIsRetryable) {
  const int port = testing::free_port();
  MetricsRegistry metrics;
  ClickHouseHttpConfig config;
  config.url = "http://127.0.0.1:" + std::to_string(port);
  try {
    ClickHouseHttpStore store(config, metrics);
    FAIL() << "connected to nothing";
  } catch (const StoreError& e) {
    EXPECT_TRUE(e.retryable());
    EXPECT_NE(std::string(e.what()).find(config.url), std::string::npos) << e.what();
  }
  config.url = "ftp://127.0.0.1:1";
  try {
    ClickHouseHttpStore store(config, metrics);
    FAIL() << "accepted an ftp url";
  } catch (const StoreError& e) {
    EXPECT_FALSE(e.retryable());
  }
}

TEST(ClickHouseHttpStore, RecoversAfterServerKill) {
  ClickHouseServer server;
  MetricsRegistry metrics;
  const auto schema = FlowSchema::make(ClickHouseDialect::legacy, {});
  create_flow_tables(server, "sluice", schema);
  auto config = config_for(server, "sluice", Compression::lz4);
  config.connect_timeout_ms = 1000;
  config.pool_size = 2;
  ClickHouseHttpStore store(config, metrics);
  FlowBatch batch(schema);
  const auto insert_range = [&](std::uint32_t from, std::uint32_t to) {
    for (std::uint32_t i = from; i < to; ++i) batch.append(make_flow(i));
    store.insert(flows_request(batch));
  };
  insert_range(0, 1000);

  server.kill9();
  // The first attempt meets the pooled connection to the dead server, the next ones a refused connect.
  for (int attempt = 0; attempt < 3; ++attempt) {
    for (std::uint32_t i = 1000; i < 2000; ++i) batch.append(make_flow(i));
    const auto req = flows_request(batch);
    const auto t0 = std::chrono::steady_clock::now();
    try {
      store.insert(req);
      FAIL() << "insert into a killed server succeeded";
    } catch (const StoreError& e) {
      EXPECT_TRUE(e.retryable()) << e.what();
      EXPECT_NE(std::string(e.what()).find(server.url()), std::string::npos) << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(config.connect_timeout_ms));
  }
  EXPECT_GE(metrics.counter_total("clickhouse_connections_discarded_total"), 3u);

  server.start();
  insert_range(1000, 2000);
  insert_range(2000, 3000);
  std::uint64_t want_bytes = 0;
  for (std::uint32_t i = 0; i < 3000; ++i) want_bytes += make_flow(i).bytes;
  EXPECT_EQ(store.query("SELECT count(), sum(Bytes), uniqExact(TimeReceived) FROM flows").data,
            "3000\t" + std::to_string(want_bytes) + "\t3000\n");
}

TEST(ClickHouseHttpStore, RestartedServerCostsNoFailedInsert) {
  ClickHouseServer server;
  MetricsRegistry metrics;
  const auto schema = FlowSchema::make(ClickHouseDialect::legacy, {});
  create_flow_tables(server, "sluice", schema);
  ClickHouseHttpStore store(config_for(server, "sluice", Compression::lz4), metrics);
  FlowBatch batch(schema);
  for (std::uint32_t i = 0; i < 100; ++i) batch.append(make_flow(i));
  store.insert(flows_request(batch));
  // The pooled keep-alive connection now points at a dead process; it must be noticed before the
  // insert is written into it, not reported as a failure.
  server.kill9();
  server.start();
  for (std::uint32_t i = 100; i < 200; ++i) batch.append(make_flow(i));
  store.insert(flows_request(batch));
  EXPECT_EQ(store.query("SELECT count() FROM flows").data, "200\n");
  EXPECT_EQ(metrics.counter_total("clickhouse_errors_total"), 0u);
}

TEST(ClickHouseHttpStore, ParallelInsertsLoseNothing) {
  ClickHouseServer server;
  MetricsRegistry metrics;
  const auto schema = FlowSchema::make(ClickHouseDialect::legacy, {});
  create_flow_tables(server, "sluice", schema);
  ClickHouseHttpStore store(config_for(server, "sluice", Compression::zstd), metrics);
  constexpr std::uint32_t kThreads = 4, kBatches = 20, kRows = 500;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (std::uint32_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      FlowBatch batch(schema);
      for (std::uint32_t b = 0; b < kBatches; ++b) {
        for (std::uint32_t r = 0; r < kRows; ++r) batch.append(make_flow((t * kBatches + b) * kRows + r));
        try {
          store.insert(flows_request(batch));
        } catch (const StoreError& e) {
          ADD_FAILURE() << e.what();
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  constexpr std::uint32_t kTotal = kThreads * kBatches * kRows;
  std::uint64_t want_bytes = 0, want_packets = 0;
  for (std::uint32_t i = 0; i < kTotal; ++i) {
    want_bytes += make_flow(i).bytes;
    want_packets += make_flow(i).packets;
  }
  EXPECT_EQ(store.query("SELECT count(), uniqExact(TimeReceived), sum(Bytes), sum(Packets) FROM flows").data,
            std::to_string(kTotal) + "\t" + std::to_string(kTotal) + "\t" + std::to_string(want_bytes) + "\t" +
                std::to_string(want_packets) + "\n");
  EXPECT_EQ(metrics.counter_total("clickhouse_inserts_total"), kThreads * kBatches);
  EXPECT_EQ(metrics.counter_total("clickhouse_connections_discarded_total"), 0u);
}

TEST(ClickHouseHttpStore, DedupTokenIsNotSentToServersWithoutIt) {
  ClickHouseServer server;
  MetricsRegistry metrics;
  const auto schema = FlowSchema::make(ClickHouseDialect::legacy, {});
  create_flow_tables(server, "sluice", schema);
  ClickHouseHttpStore store(config_for(server, "sluice", Compression::lz4), metrics);
  FlowBatch batch(schema);
  for (int round = 0; round < 2; ++round) {
    for (std::uint32_t i = 0; i < 100; ++i) batch.append(make_flow(i));
    auto req = flows_request(batch);
    req.dedup_token = "flows/0/0-99";
    store.insert(req);  // 18.16 rejects unknown settings, so this passes only if the token stays home
  }
  EXPECT_EQ(store.query("SELECT count() FROM flows").data, "200\n") << "18.16 gives at-least-once";
}

// The framing, without the store: what the server itself accepts and refuses.
class CompressedBodyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.query("CREATE TABLE default.t (n UInt64, s String) ENGINE = MergeTree ORDER BY n");
    NativeColumn n("n", "UInt64"), s("s", "String");
    for (std::uint64_t i = 0; i < kRows; ++i) {
      n.put<std::uint64_t>(i);
      s.put_string("row-" + std::to_string(i));
    }
    encode_native_block({n, s}, kRows, native_);
  }
  httplib::Result post(const std::string& body) {
    httplib::Client client("127.0.0.1", server_.http_port());
    return client.Post("/?query=INSERT%20INTO%20default.t%20FORMAT%20Native&decompress=1", body,
                       "application/octet-stream");
  }
  std::string count() { return trim(server_.query("SELECT count(), sum(n) FROM default.t")); }

  static constexpr std::uint64_t kRows = 300'000;  // ~5 MB of Native: several 1 MiB blocks
  ClickHouseServer server_;
  std::string native_;
};

TEST_F(CompressedBodyTest, ServerAcceptsLz4AndZstdBlocks) {
  ASSERT_GT(native_.size(), 4 * kClickHouseMaxBlockSize);
  const std::uint64_t sum = kRows * (kRows - 1) / 2;
  std::uint64_t inserted = 0;
  for (auto codec : {ClickHouseCodec::lz4, ClickHouseCodec::zstd}) {
    ClickHouseCompressor c(codec);
    std::string body;
    c.compress(native_, body);
    auto res = post(body);
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200) << res->body;
    inserted += kRows;
    EXPECT_EQ(count(), std::to_string(inserted) + "\t" + std::to_string(sum * (inserted / kRows)));
  }
}

TEST_F(CompressedBodyTest, ServerRejectsCorruptedChecksum) {
  ClickHouseCompressor c(ClickHouseCodec::lz4);
  std::string body;
  c.compress(native_, body);
  body[5] = static_cast<char>(body[5] ^ 0x10);
  auto res = post(body);
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_NE(res->status, 200);
  EXPECT_NE(res->body.find("Checksum doesn't match"), std::string::npos) << res->body;
  EXPECT_EQ(count(), "0\t0");
}

TEST(ClickHouseErrors, CodesAndVersionsParse) {
  EXPECT_EQ(parse_clickhouse_error_code("Code: 60, e.displayText() = DB::Exception: Table x doesn't exist."), 60);
  EXPECT_EQ(parse_clickhouse_error_code("Code: 241. DB::Exception: Memory limit (total) exceeded"), 241);
  EXPECT_EQ(parse_clickhouse_error_code("Bad Gateway"), std::nullopt);
  for (int code : {202, 241, 252, 159, 209, 210}) EXPECT_TRUE(clickhouse_code_is_retryable(code)) << code;
  for (int code : {60, 81, 62, 27, 53, 70, 117}) EXPECT_FALSE(clickhouse_code_is_retryable(code)) << code;
  const auto v = parse_clickhouse_version("18.16.1");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->major, 18);
  EXPECT_EQ(v->minor, 16);
  EXPECT_FALSE(v->at_least(22, 2));
  EXPECT_TRUE(parse_clickhouse_version("24.3.2.23")->at_least(22, 2));
  EXPECT_TRUE(parse_clickhouse_version("22.2")->at_least(22, 2));
  EXPECT_FALSE(parse_clickhouse_version("devel"));
}

}  // namespace
}  // namespace sluice::sinks
