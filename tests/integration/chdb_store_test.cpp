// Integration tests of the embedded chDB store: bulk Native inserts through flows_raw → view → flows,
// deduplication tokens, errors, persistence, threads, and the host's signal handlers.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/flow_batch.hpp"
#include "core/metrics.hpp"
#include "core/native_block.hpp"
#include "fixtures/process.hpp"
#include "sinks/chdb_store.hpp"

namespace sluice::sinks {
namespace {

using sluice::testing::TempDir;

constexpr std::uint32_t kT0 = 1700000000;  // 2023-11-14 22:13:20 UTC

// Whether `text` holds `needle`, printing both when not.
::testing::AssertionResult Contains(const std::string& text, const std::string& needle) {
  if (text.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << needle << "'";
}

// Insert bodies left in the store's spool directory.
int run_spool_count(const std::string& path) {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(path + "/insert-spool")) ++n;
  return n;
}

// The flow tables as the schema module will lay them out: a Null table on the wire types, a view,
// and a MergeTree on the table types that keeps a deduplication window.
void create_flow_tables(Store& store) {
  const auto schema = FlowSchema::make(ClickHouseDialect::modern, {});
  std::string raw, table;
  for (const auto* c : schema.columns) {
    if (!raw.empty()) raw += ", ", table += ", ";
    raw += std::string("`") + c->name + "` " + schema.wire_type(*c);
    table += std::string("`") + c->name + "` " + schema.table_type(*c);
  }
  store.query("CREATE TABLE sluice.flows_raw (" + raw + ") ENGINE = Null");
  store.query("CREATE TABLE sluice.flows (" + table +
              ") ENGINE = MergeTree PARTITION BY toYYYYMMDD(TimeReceived) "
              "ORDER BY (TimeReceived, ExporterAddress, InIf, OutIf) "
              "SETTINGS non_replicated_deduplication_window = 10000, allow_suspicious_low_cardinality_types = 1");
  store.query("CREATE MATERIALIZED VIEW sluice.flows_raw_consumer TO sluice.flows AS SELECT * FROM sluice.flows_raw");
}

// Row i of the test data; every value is a function of i so that sums and rows can be checked.
void fill_flow(FlowRecord& r, std::uint64_t i) {
  r.reset();
  r.time_received = kT0 + static_cast<std::uint32_t>(i / 100);
  r.time_flow_start = r.time_received - 10;
  r.time_flow_end = r.time_received - 1;
  r.sampling_rate = 1000;
  r.exporter_address = ip6_from_v4(0xC0000201);  // 192.0.2.1
  r.exporter_name = "edge-1";
  r.exporter_group = "paris";
  r.src_addr = ip6_from_v4(0x0A000001 + static_cast<std::uint32_t>(i % 200));  // 10.0.0.1 + i%200
  r.dst_addr = (i % 2 == 0) ? *ip6_parse("2001:db8::1") : ip6_from_v4(0x08080808);
  r.src_as = 64500 + static_cast<std::uint32_t>(i % 3);
  r.dst_as = 15169;
  r.src_country[0] = 'F', r.src_country[1] = 'R';
  r.dst_country[0] = 'U', r.dst_country[1] = 'S';
  r.in_if = 10 + static_cast<std::uint32_t>(i % 4);
  r.out_if = 20;
  r.in_if_name = "xe-0/0/1";
  r.in_if_description = "uplink\n\ntransit";  // a blank line inside a binary body must survive
  r.in_if_boundary = Boundary::external;
  r.out_if_boundary = Boundary::internal;
  r.etype = 0x0800;
  r.proto = (i % 2 == 0) ? 6 : 17;
  r.src_port = static_cast<std::uint16_t>(1024 + i % 1000);
  r.dst_port = 443;
  r.bytes = 1000 + i;
  r.packets = 1 + i % 7;
  r.flow_direction = FlowDirection::ingress;
}

struct Expected {
  std::uint64_t rows = 0, bytes = 0, packets = 0;
};

// Builds one Native block of rows [first, first + n).
std::string make_block(const FlowSchema& schema, std::uint64_t first, std::uint64_t n, Expected* expected = nullptr) {
  FlowBatch batch(schema);
  FlowRecord r;
  for (std::uint64_t i = first; i < first + n; ++i) {
    fill_flow(r, i);
    batch.append(r);
    if (expected != nullptr) {
      ++expected->rows;
      expected->bytes += r.bytes;
      expected->packets += r.packets;
    }
  }
  std::string body;
  batch.take_native(body);
  return body;
}

InsertRequest flows_insert(std::string body, std::uint64_t rows, std::string token) {
  return InsertRequest{"flows_raw", "Native", std::move(body), rows, std::move(token)};
}

std::string one_line(Store& store, const std::string& sql) {
  auto data = store.query(sql).data;
  while (!data.empty() && data.back() == '\n') data.pop_back();
  return data;
}

class ChdbStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<ChdbStore> open(const std::string& path) {
    return std::make_unique<ChdbStore>(ChdbConfig{path, "", "sluice"}, metrics_);
  }
  TempDir dir_{"sluice-chdb"};
  MetricsRegistry metrics_;
  FlowSchema schema_ = FlowSchema::make(ClickHouseDialect::modern, {});
};

TEST_F(ChdbStoreTest, ReportsEngineAndDialect) {
  auto store = open(dir_ / "db");
  EXPECT_EQ(store->server_version().substr(0, 3), "26.");
  EXPECT_EQ(store->dialect(), ClickHouseDialect::modern);
  EXPECT_TRUE(store->supports_dedup_token());
  EXPECT_EQ(store->describe(), "chdb " + (dir_ / "db"));
  EXPECT_EQ(store->database(), "sluice");
  EXPECT_EQ(one_line(*store, "SELECT count() FROM system.databases WHERE name = 'sluice'"), "1");
}

TEST_F(ChdbStoreTest, InsertsFlowBatchThroughNullTableAndView) {
  auto store = open(dir_ / "db");
  create_flow_tables(*store);
  Expected want;
  auto body = make_block(schema_, 0, 10'000, &want);
  store->insert(flows_insert(std::move(body), want.rows, "flows/0/0-9999"));

  EXPECT_EQ(one_line(*store, "SELECT count(), sum(Bytes), sum(Packets) FROM sluice.flows"),
            std::to_string(want.rows) + "\t" + std::to_string(want.bytes) + "\t" + std::to_string(want.packets));
  EXPECT_EQ(want.bytes, 10'000ull * 1000 + 9999ull * 10'000 / 2);

  const auto rows = store->query(
      "SELECT TimeReceived, TimeFlowEnd, ExporterAddress, ExporterName, SrcAddr, DstAddr, SrcAS, SrcCountry, InIf, "
      "InIfName, InIfDescription, InIfBoundary, OutIfBoundary, FlowDirection, Proto, SrcPort, Bytes, Packets, "
      "DstASPath FROM sluice.flows WHERE Bytes IN (1000, 1001, 1205) ORDER BY Bytes "
      "SETTINGS session_timezone = 'UTC', output_format_json_quote_64bit_integers = 0",
      "JSONEachRow");
  EXPECT_EQ(rows.data,
            R"({"TimeReceived":"2023-11-14 22:13:20","TimeFlowEnd":"2023-11-14 22:13:19","ExporterAddress":"::ffff:192.0.2.1","ExporterName":"edge-1","SrcAddr":"::ffff:10.0.0.1","DstAddr":"2001:db8::1","SrcAS":64500,"SrcCountry":"FR","InIf":10,"InIfName":"xe-0\/0\/1","InIfDescription":"uplink\n\ntransit","InIfBoundary":"external","OutIfBoundary":"internal","FlowDirection":"ingress","Proto":6,"SrcPort":1024,"Bytes":1000,"Packets":1,"DstASPath":[]}
{"TimeReceived":"2023-11-14 22:13:20","TimeFlowEnd":"2023-11-14 22:13:19","ExporterAddress":"::ffff:192.0.2.1","ExporterName":"edge-1","SrcAddr":"::ffff:10.0.0.2","DstAddr":"::ffff:8.8.8.8","SrcAS":64501,"SrcCountry":"FR","InIf":11,"InIfName":"xe-0\/0\/1","InIfDescription":"uplink\n\ntransit","InIfBoundary":"external","OutIfBoundary":"internal","FlowDirection":"ingress","Proto":17,"SrcPort":1025,"Bytes":1001,"Packets":2,"DstASPath":[]}
{"TimeReceived":"2023-11-14 22:13:22","TimeFlowEnd":"2023-11-14 22:13:21","ExporterAddress":"::ffff:192.0.2.1","ExporterName":"edge-1","SrcAddr":"::ffff:10.0.0.6","DstAddr":"::ffff:8.8.8.8","SrcAS":64501,"SrcCountry":"FR","InIf":11,"InIfName":"xe-0\/0\/1","InIfDescription":"uplink\n\ntransit","InIfBoundary":"external","OutIfBoundary":"internal","FlowDirection":"ingress","Proto":17,"SrcPort":1229,"Bytes":1205,"Packets":3,"DstASPath":[]}
)");
  EXPECT_EQ(metrics_.counter_total("chdb_insert_rows_total"), 10'000u);
  EXPECT_EQ(metrics_.counter_total("chdb_inserts_total"), 1u);
}

TEST_F(ChdbStoreTest, BodyColumnsAreMatchedByNameAndMissingOnesGetDefaults) {
  auto store = open(dir_ / "db");
  store->query(
      "CREATE TABLE sluice.t (a UInt8, b LowCardinality(String), c UInt32 DEFAULT 7, d IPv6) "
      "ENGINE = MergeTree ORDER BY a");
  // Another order than the table's, and without c: as a sink with optional columns off sends it.
  std::vector<NativeColumn> columns;
  columns.emplace_back("d", "IPv6");
  columns.emplace_back("b", "String");
  columns.emplace_back("a", "UInt8");
  for (std::uint8_t i = 1; i <= 3; ++i) {
    const auto ip = ip6_from_v4(0x0A000000 + i);
    columns[0].put_bytes(ip.data(), ip.size());
    const char name[3] = {'s', static_cast<char>('0' + i), 0};
    columns[1].put_string(name);
    columns[2].put<std::uint8_t>(i);
  }
  std::string body;
  encode_native_block(columns, 3, body);
  store->insert(InsertRequest{"t", "Native", body, 3, "t/1"});
  EXPECT_EQ(store->query("SELECT a, b, c, d FROM sluice.t ORDER BY a").data,
            "1\ts1\t7\t::ffff:10.0.0.1\n2\ts2\t7\t::ffff:10.0.0.2\n3\ts3\t7\t::ffff:10.0.0.3\n");
}

TEST_F(ChdbStoreTest, SameTokenStoresOnceAnotherTokenStoresAgain) {
  auto store = open(dir_ / "db");
  create_flow_tables(*store);
  // A rollup fed by its own view: every target of the views deduplicates on its own.
  store->query(
      "CREATE TABLE sluice.flows_1m (TimeReceived DateTime, Bytes UInt64, Packets UInt64) "
      "ENGINE = SummingMergeTree ORDER BY TimeReceived SETTINGS non_replicated_deduplication_window = 10000");
  store->query(
      "CREATE MATERIALIZED VIEW sluice.flows_1m_consumer TO sluice.flows_1m AS SELECT toStartOfMinute(TimeReceived) "
      "AS TimeReceived, sum(Bytes) AS Bytes, sum(Packets) AS Packets FROM sluice.flows_raw GROUP BY TimeReceived");
  Expected want;
  const auto body = make_block(schema_, 0, 5'000, &want);
  const auto totals = [&] {
    return one_line(*store, "SELECT count(), sum(Bytes) FROM sluice.flows") + " | " +
           one_line(*store, "SELECT sum(Bytes) FROM sluice.flows_1m");
  };
  const auto expect = [&](std::uint64_t copies) {
    return std::to_string(copies * want.rows) + "\t" + std::to_string(copies * want.bytes) + " | " +
           std::to_string(copies * want.bytes);
  };

  store->insert(flows_insert(body, want.rows, "flows/0/100-199"));
  EXPECT_EQ(totals(), expect(1));
  store->insert(flows_insert(body, want.rows, "flows/0/100-199"));  // a replay after a crash
  EXPECT_EQ(totals(), expect(1));
  store->insert(flows_insert(body, want.rows, "flows/0/200-299"));  // equal rows, another range
  EXPECT_EQ(totals(), expect(2));
  store->insert(flows_insert(body, want.rows, "flows/0/200-299"));
  EXPECT_EQ(totals(), expect(2));
}

TEST_F(ChdbStoreTest, InsertsWithoutTokenAreNeverDeduplicated) {
  auto store = open(dir_ / "db");
  create_flow_tables(*store);
  Expected want;
  const auto body = make_block(schema_, 0, 1'000, &want);
  for (int i = 0; i < 3; ++i) store->insert(flows_insert(body, want.rows, ""));
  EXPECT_EQ(one_line(*store, "SELECT count(), sum(Bytes) FROM sluice.flows"),
            std::to_string(3 * want.rows) + "\t" + std::to_string(3 * want.bytes));
}

// An insert into a missing table is retried (the rows are fine; the table may be on its way back); the
// error names the table. A query of it and bad SQL are permanent.
TEST_F(ChdbStoreTest, MissingTableIsRetriedForInsertsAndNamedWhileBadStatementsArePermanent) {
  auto store = open(dir_ / "db");
  const auto body = make_block(schema_, 0, 10);
  try {
    store->insert(InsertRequest{"missing", "Native", body, 10, "t"});
    FAIL() << "insert into a missing table succeeded";
  } catch (const StoreError& e) {
    EXPECT_TRUE(e.retryable());
    EXPECT_TRUE(Contains(e.what(), "sluice.missing"));
    EXPECT_TRUE(Contains(e.what(), "UNKNOWN_TABLE"));
  }
  try {
    store->query("SELECT count() FROM sluice.missing");
    FAIL() << "a query of a missing table succeeded";
  } catch (const StoreError& e) {
    EXPECT_FALSE(e.retryable());
    EXPECT_TRUE(Contains(e.what(), "UNKNOWN_TABLE"));
  }
  try {
    store->query("SELEC 1");
    FAIL() << "a syntax error succeeded";
  } catch (const StoreError& e) {
    EXPECT_FALSE(e.retryable());
    EXPECT_TRUE(Contains(e.what(), "SYNTAX_ERROR"));
  }
  EXPECT_EQ(metrics_.counter_value("chdb_errors_total", {{"path", dir_ / "db"}, {"retryable", "false"}}), 2u);
  // The spool keeps one file for reuse (one per insert that ran at once), nothing more.
  EXPECT_EQ(one_line(*store, "SELECT 1"), "1");
  EXPECT_EQ(run_spool_count(dir_ / "db"), 1);
  store.reset();
  EXPECT_EQ(run_spool_count(dir_ / "db"), 0);
}

TEST(ChdbErrorClassification, ByClickHouseCode) {
  EXPECT_EQ(clickhouse_error_code("Code: 241. DB::Exception: Memory limit (total) exceeded"), 241);
  EXPECT_EQ(clickhouse_error_code("no code here"), std::nullopt);
  for (int code : {241, 252, 159, 209, 243, 394}) EXPECT_TRUE(clickhouse_error_retryable(code)) << code;
  for (int code : {62, 47, 60, 81, 53, 6, 33, 16}) EXPECT_FALSE(clickhouse_error_retryable(code)) << code;
  EXPECT_TRUE(clickhouse_error_retryable(std::string_view("Code: 252. DB::Exception: Too many parts (300)")));
  EXPECT_FALSE(clickhouse_error_retryable(std::string_view("Code: 62. DB::Exception: Syntax error")));
  EXPECT_TRUE(clickhouse_error_retryable(std::string_view("Invalid or closed connection")));
}

TEST_F(ChdbStoreTest, DataPersistsAcrossReopen) {
  Expected want;
  {
    auto store = open(dir_ / "db");
    create_flow_tables(*store);
    store->insert(flows_insert(make_block(schema_, 0, 10'000, &want), want.rows, "flows/0/0-9999"));
  }
  auto store = open(dir_ / "db");
  EXPECT_EQ(one_line(*store, "SELECT count(), sum(Bytes), sum(Packets) FROM sluice.flows"),
            std::to_string(want.rows) + "\t" + std::to_string(want.bytes) + "\t" + std::to_string(want.packets));
  // The view and the dedup window came back too: a replay of the same range stores nothing.
  store->insert(flows_insert(make_block(schema_, 0, 10'000), 10'000, "flows/0/0-9999"));
  EXPECT_EQ(one_line(*store, "SELECT count() FROM sluice.flows"), std::to_string(want.rows));
  store->insert(flows_insert(make_block(schema_, 10'000, 10), 10, "flows/0/10000-10009"));
  EXPECT_EQ(one_line(*store, "SELECT count() FROM sluice.flows"), std::to_string(want.rows + 10));
}

TEST_F(ChdbStoreTest, QueryReportsRowsRead) {
  auto store = open(dir_ / "db");
  create_flow_tables(*store);
  store->insert(flows_insert(make_block(schema_, 0, 20'000), 20'000, "a"));
  const auto r = store->query("SELECT sum(Bytes) FROM sluice.flows");
  EXPECT_GE(r.rows_read, 20'000u);
  EXPECT_GE(r.bytes_read, 20'000u * 8);
  EXPECT_EQ(r.data, std::to_string(20'000ull * 1000 + 19'999ull * 20'000 / 2) + "\n");
}

TEST_F(ChdbStoreTest, FiftyMegabyteBodyInsertsExactly) {
  auto store = open(dir_ / "db");
  create_flow_tables(*store);
  Expected want;
  auto body = make_block(schema_, 0, 280'000, &want);
  ASSERT_GE(body.size(), 50u << 20);
  store->insert(flows_insert(std::move(body), want.rows, "big"));
  EXPECT_EQ(one_line(*store, "SELECT count(), sum(Bytes), sum(Packets), uniqExact(SrcAddr) FROM sluice.flows"),
            std::to_string(want.rows) + "\t" + std::to_string(want.bytes) + "\t" + std::to_string(want.packets) +
                "\t200");
}

// The spool file of one insert is rewritten by the next: bodies that shrink and grow again arrive whole,
// none reads a trace of an earlier, longer one.
TEST_F(ChdbStoreTest, BodiesOfChangingSizeReuseTheSpoolAndArriveExactly) {
  auto store = open(dir_ / "db");
  create_flow_tables(*store);
  std::uint64_t rows = 0, bytes = 0, first = 0;
  for (const std::uint64_t n : {20'000, 300, 7'000, 1, 40'000, 12}) {
    Expected want;
    store->insert(flows_insert(make_block(schema_, first, n, &want), want.rows, "s/" + std::to_string(first)));
    rows += want.rows;
    bytes += want.bytes;
    first += n;
    ASSERT_EQ(one_line(*store, "SELECT count(), sum(Bytes) FROM sluice.flows"),
              std::to_string(rows) + "\t" + std::to_string(bytes)) << "after a body of " << n << " rows";
  }
  EXPECT_EQ(run_spool_count(dir_ / "db"), 1);
}

TEST_F(ChdbStoreTest, ConcurrentInsertsAndQueriesFromThreads) {
  auto store = open(dir_ / "db");
  create_flow_tables(*store);
  constexpr int kThreads = 4, kInserts = 10, kRows = 1'000;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kInserts; ++i) {
        try {
          const std::uint64_t first = static_cast<std::uint64_t>(t * kInserts + i) * kRows;
          store->insert(flows_insert(make_block(schema_, first, kRows), kRows, "r/" + std::to_string(first)));
          store->query("SELECT count() FROM sluice.flows");
        } catch (const std::exception& e) {
          ADD_FAILURE() << e.what();
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  const std::uint64_t n = kThreads * kInserts * kRows;
  EXPECT_EQ(one_line(*store, "SELECT count(), uniqExact(Bytes), sum(Bytes) FROM sluice.flows"),
            std::to_string(n) + "\t" + std::to_string(n) + "\t" + std::to_string(n * 1000 + (n - 1) * n / 2));
}

TEST_F(ChdbStoreTest, SamePathSharesTheEngineAnotherPathIsRefused) {
  auto a = open(dir_ / "db");
  auto b = open(dir_ / "db");
  a->query("CREATE TABLE sluice.t (x UInt8) ENGINE = MergeTree ORDER BY x");
  a->query("INSERT INTO sluice.t VALUES (7)");
  EXPECT_EQ(one_line(*b, "SELECT sum(x) FROM sluice.t"), "7");
  try {
    open(dir_ / "other");
    FAIL() << "a second data path opened";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(Contains(e.what(), "one data path per process"));
    EXPECT_TRUE(Contains(e.what(), dir_ / "db"));
  }
  a.reset();
  EXPECT_EQ(one_line(*b, "SELECT sum(x) FROM sluice.t"), "7");  // b still holds the engine
  b.reset();
  auto other = open(dir_ / "other");  // nothing is open any more
  EXPECT_EQ(one_line(*other, "SELECT 40 + 2"), "42");
}

TEST_F(ChdbStoreTest, MissingLibrarySaysWhereItLookedAndWhatToDo) {
  try {
    ChdbStore store(ChdbConfig{dir_ / "db", dir_ / "nowhere/libchdb.so", "sluice"}, metrics_);
    FAIL() << "opened without a library";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(Contains(e.what(), dir_ / "nowhere/libchdb.so"));
    EXPECT_TRUE(Contains(e.what(), "scripts/setup.sh"));
  }
  EXPECT_EQ(ChdbStore::library_candidates("").back(),
            "/opt/sluice-deps/chdb/node_modules/@chdb/lib-linux-x64-gnu/libchdb.so");
}

// A signal handler can only reach a global; the test owns it.
std::atomic<int> g_signal_seen{0};
void record_signal(int sig) { g_signal_seen.store(sig); }

// The host's handlers (sluice's main installs its drain handlers before the store opens), put back
// as they were when the test ends. SIGTSTP is one of the signals chDB resets to SIG_DFL.
class HostHandlers {
 public:
  explicit HostHandlers(std::vector<int> signals) : signals_(std::move(signals)), old_(signals_.size()) {
    struct sigaction mine {};
    mine.sa_handler = record_signal;
    sigemptyset(&mine.sa_mask);
    for (std::size_t i = 0; i < signals_.size(); ++i) sigaction(signals_[i], &mine, &old_[i]);
  }
  ~HostHandlers() {
    for (std::size_t i = 0; i < signals_.size(); ++i) sigaction(signals_[i], &old_[i], nullptr);
  }
  HostHandlers(const HostHandlers&) = delete;
  HostHandlers& operator=(const HostHandlers&) = delete;

 private:
  std::vector<int> signals_;
  std::vector<struct sigaction> old_;
};

void (*handler_of(int sig))(int) {
  struct sigaction now {};
  sigaction(sig, nullptr, &now);
  return now.sa_handler;
}

TEST_F(ChdbStoreTest, HostSignalHandlersKeepWorking) {
  const HostHandlers host({SIGTERM, SIGINT, SIGTSTP});
  const auto abrt_before = handler_of(SIGABRT);
  const auto segv_before = handler_of(SIGSEGV);

  auto store = open(dir_ / "db");
  create_flow_tables(*store);
  store->insert(flows_insert(make_block(schema_, 0, 100), 100, "s"));
  EXPECT_EQ(one_line(*store, "SELECT count() FROM sluice.flows"), "100");

  // ASSERT: raising a signal whose handler is gone would stop or kill the test process.
  ASSERT_EQ(handler_of(SIGTERM), &record_signal);
  ASSERT_EQ(handler_of(SIGINT), &record_signal);
  ASSERT_EQ(handler_of(SIGTSTP), &record_signal);
  EXPECT_EQ(handler_of(SIGABRT), abrt_before);  // chDB's crash handlers stay out
  EXPECT_EQ(handler_of(SIGSEGV), segv_before);
  for (int sig : {SIGTERM, SIGINT, SIGTSTP}) {
    g_signal_seen = 0;
    ASSERT_EQ(::kill(::getpid(), sig), 0);  // delivered to any thread, chDB's included
    EXPECT_TRUE(sluice::testing::eventually([&] { return g_signal_seen.load() == sig; }, std::chrono::seconds(5)))
        << "signal " << sig << " did not reach the host's handler";
  }
  store.reset();
  EXPECT_EQ(handler_of(SIGTERM), &record_signal);
  EXPECT_EQ(handler_of(SIGABRT), abrt_before);
}

}  // namespace
}  // namespace sluice::sinks
