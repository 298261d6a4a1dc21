// Spans end to end: (a) the real OpenTelemetry JS SDK exports (OTLP/HTTP JSON and gzip'd protobuf) to the
// OTLP receiver, over the memory bus, through the span batch builder into embedded chDB, every field
// checked through the trace-id index; (b) Jaeger protobuf and JSON spans produced by kcat onto the
// librdkafka mock cluster, consumed and stored; (c) the legacy dialect on the ClickHouse 18.16 server, and
// a replayed batch counting once.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <set>
#include <sstream>
#include <thread>

#include "bus/kafka_bus.hpp"
#include "bus/memory_bus.hpp"
#include "core/envelope.hpp"
#include "fixtures/clickhouse_server.hpp"
#include "fixtures/mock_kafka.hpp"
#include "fixtures/process.hpp"
#include "pipeline/batch_sink.hpp"
#include "pipeline/consumer_job.hpp"
#include "pipeline/span_batch_builder.hpp"
#include "sinks/chdb_store.hpp"
#include "sinks/clickhouse_http_store.hpp"
#include "sinks/spans_table.hpp"
#include "sources/otlp_http_receiver.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using pipeline::SpanFormat;
using testing::run_command;

const std::string kFixtures = std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures";

// Consumer → span batch builder → batch sink → store, on the consumer's own thread.
struct SpanPipeline {
  SpanPipeline(bus::Consumer& consumer, sinks::Store& store, SpanFormat format, MetricsRegistry& metrics)
      : decoding(metrics),
        sink("spans", store, pipeline::BatchSinkPolicy{}, metrics),
        job(pipeline::ConsumerJobConfig{"spans", 1000, 8 << 20, 100ms, 100ms, 10s}, consumer,
            pipeline::span_builders(decoding, format, store.dialect(), "spans"), sink, metrics),
        consumer_(consumer) {
    thread = std::thread([this] { consumer_.run(job); });
  }
  ~SpanPipeline() {
    consumer_.stop();
    thread.join();
    sink.stop(std::chrono::steady_clock::now() + 5s);
  }
  pipeline::SpanDecoding decoding;
  pipeline::BatchSink sink;
  pipeline::ConsumerJob job;
  bus::Consumer& consumer_;
  std::thread thread;
};

std::uint64_t count(sinks::Store& store, const std::string& where = "1") {
  const auto r = store.query("SELECT count() FROM sluice.spans FINAL WHERE " + where, "TabSeparated");
  return std::stoull(r.data);
}

std::vector<json> rows(sinks::Store& store, const std::string& sql) {
  std::vector<json> out;
  std::istringstream in(store.query(sql, "JSONEachRow").data);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

const char* kModernSelect =
    "toString(toUnixTimestamp64Nano(Timestamp)) AS ts, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, "
    "ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, toString(Duration) AS duration, "
    "StatusCode, StatusMessage, arrayMap(t -> toString(toUnixTimestamp64Nano(t)), Events.Timestamp) AS event_ts, "
    "Events.Name AS event_names, Events.Attributes AS event_attrs, Links.TraceId AS link_traces, "
    "Links.SpanId AS link_spans, Links.TraceState AS link_states, Links.Attributes AS link_attrs";

// The three spans send_traces.mjs makes for trace `i` of a run, in start order.
void expect_js_trace(sinks::Store& store, const std::string& trace, int i, const std::string& protocol) {
  const auto got = rows(store, sinks::spans_by_trace_sql("sluice", "spans", ClickHouseDialect::modern, trace, kModernSelect));
  ASSERT_EQ(got.size(), 3u) << trace;
  const std::uint64_t base = (1700000000ull + static_cast<std::uint64_t>(i)) * 1'000'000'000ull;
  const std::string service = "shop-" + protocol;
  for (const auto& r : got) {
    EXPECT_EQ(r["ServiceName"], service);
    EXPECT_EQ(r["ResourceAttributes"]["service.name"], service);
    EXPECT_EQ(r["ResourceAttributes"]["deployment.environment"], "test");
    EXPECT_EQ(r["ResourceAttributes"]["host.cpus"], "4");
    EXPECT_EQ(r["ScopeName"], "sluice-test-tracer");
    EXPECT_EQ(r["ScopeVersion"], "0.9.1");
    EXPECT_EQ(r["TraceState"], "");
    EXPECT_EQ(r["SpanId"].get<std::string>().size(), 16u);
  }
  const json& root = got[0];
  EXPECT_EQ(root["ts"], std::to_string(base + 100));
  EXPECT_EQ(root["ParentSpanId"], "");
  EXPECT_EQ(root["SpanName"], "GET /checkout");
  EXPECT_EQ(root["SpanKind"], "Server");
  EXPECT_EQ(root["duration"], "8900");
  EXPECT_EQ(root["StatusCode"], "Error");
  EXPECT_EQ(root["StatusMessage"], "upstream timed out");
  EXPECT_EQ(root["SpanAttributes"], (json{{"http.method", "GET"},
                                          {"http.status_code", "500"},
                                          {"retry.ratio", "0.75"},
                                          {"cache.hit", "false"},
                                          {"tags", R"(["a","b\"c"])"},
                                          {"ports", "[80,443]"},
                                          {"flags", "[true,false]"},
                                          {"weights", "[1.5,2.25]"},
                                          {"index", std::to_string(i)}}));
  EXPECT_EQ(root["event_ts"], (json{std::to_string(base + 5000), std::to_string(base + 6000)}));
  EXPECT_EQ(root["event_names"], (json{"exception", "annotation"}));
  EXPECT_EQ(root["event_attrs"],
            (json{json{{"exception.type", "TimeoutError"}, {"exception.escaped", "true"}}, json::object()}));
  EXPECT_EQ(root["link_traces"], (json{"0af7651916cd43dd8448eb211c80319c"}));
  EXPECT_EQ(root["link_spans"], (json{"b7ad6b7169203331"}));
  EXPECT_EQ(root["link_states"], (json{"congo=t61rcWkgMzE"}));
  EXPECT_EQ(root["link_attrs"], (json{json{{"link.reason", "retry-of"}, {"link.n", "2"}}}));

  const json& child = got[1];
  EXPECT_EQ(child["ts"], std::to_string(base + 1000));
  EXPECT_EQ(child["ParentSpanId"], root["SpanId"]);
  EXPECT_EQ(child["SpanName"], "SELECT orders");
  EXPECT_EQ(child["SpanKind"], "Client");
  EXPECT_EQ(child["duration"], "3000");
  EXPECT_EQ(child["StatusCode"], "Ok");
  EXPECT_EQ(child["StatusMessage"], "");
  EXPECT_EQ(child["SpanAttributes"], (json{{"db.system", "postgresql"}}));
  EXPECT_EQ(child["event_names"], json::array());
  EXPECT_EQ(child["link_traces"], json::array());

  const json& grandchild = got[2];
  EXPECT_EQ(grandchild["ts"], std::to_string(base + 2000));
  EXPECT_EQ(grandchild["ParentSpanId"], child["SpanId"]);
  EXPECT_EQ(grandchild["SpanName"], "decode rows");
  EXPECT_EQ(grandchild["SpanKind"], "Internal");
  EXPECT_EQ(grandchild["duration"], "1000");
  EXPECT_EQ(grandchild["StatusCode"], "Unset");
  EXPECT_EQ(grandchild["SpanAttributes"], json::object());
}

std::vector<std::string> send_js_traces(std::uint16_t port, const std::string& protocol, int n) {
  const auto r = run_command({"node", kFixtures + "/otel/send_traces.mjs", "http://127.0.0.1:" + std::to_string(port),
                              protocol, std::to_string(n)},
                             60s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> ids;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (line != "done") ids.push_back(line);
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(n)) << r.out << r.err;
  return ids;
}

TEST(Spans, OpenTelemetryJsSdkOverOtlpHttpLandsInChdbWithEveryField) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  sinks::ChdbStore store({dir / "chdb", "", "sluice"}, metrics);
  sinks::ensure_spans_tables(store);
  bus::MemoryBus bus({4, 64 << 20}, metrics);
  OtlpHttpReceiver receiver({"127.0.0.1:0", 1 << 20, 5s, 4, "sluice-spans"}, bus.producer(), metrics);
  receiver.start();
  auto consumer = bus.make_consumer(0, 1, {"sluice-spans"});
  SpanPipeline pipeline(*consumer, store, SpanFormat::otlp_envelope, metrics);

  constexpr int kTraces = 4;
  const auto json_ids = send_js_traces(receiver.bound_port(), "json", kTraces);
  const auto proto_ids = send_js_traces(receiver.bound_port(), "proto", kTraces);
  ASSERT_TRUE(testing::eventually([&] { return count(store) == 2 * 3 * kTraces; }, 30s)) << count(store);
  EXPECT_EQ(pipeline.decoding.spans.value(), 2u * 3 * kTraces);
  const auto status = receiver.status();
  EXPECT_GE(status["requests"]["json"].get<std::uint64_t>(), 1u);
  EXPECT_GE(status["requests"]["protobuf"].get<std::uint64_t>(), 1u);
  for (int i = 0; i < kTraces; ++i) {
    SCOPED_TRACE(i);
    expect_js_trace(store, json_ids[static_cast<std::size_t>(i)], i, "json");
    expect_js_trace(store, proto_ids[static_cast<std::size_t>(i)], i, "proto");
  }
  // The index holds each trace's time range.
  EXPECT_EQ(store.query("SELECT toUnixTimestamp64Nano(min(Start)), toUnixTimestamp64Nano(max(End)) FROM "
                        "sluice.spans_trace_id_ts WHERE TraceId = '" + json_ids[1] + "'",
                        "TabSeparated")
                .data,
            "1700000001000000100\t1700000001000002000\n");
  receiver.stop();
}

TEST(Spans, OtlpReceiverAnswersLikeACollector) {
  MetricsRegistry metrics;
  bus::MemoryBus bus({1, 4096}, metrics);
  OtlpHttpReceiver receiver({"127.0.0.1:0", 2048, 5s, 2, "sluice-spans"}, bus.producer(), metrics);
  receiver.start();
  const std::string url = "http://127.0.0.1:" + std::to_string(receiver.bound_port()) + "/v1/traces";
  auto curl = [&](const std::string& type, const std::string& body_file) {
    return run_command({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: " + type,
                        "--data-binary", "@" + body_file, url});
  };
  testing::TempDir dir;
  testing::write_file(dir / "small.json", "{}");
  testing::write_file(dir / "big.json", std::string(3000, ' ') + "{}");
  EXPECT_EQ(curl("application/json", dir / "small.json").out, "200");
  // Node's HTTP client (the JS SDK's exporter) sends bodies chunked.
  EXPECT_EQ(run_command({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json",
                         "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + (dir / "small.json"), url},
                        10s)
                .out,
            "200");
  EXPECT_EQ(curl("text/plain", dir / "small.json").out, "400");
  EXPECT_EQ(curl("application/json", dir / "big.json").out, "413");
  // A gzip body that inflates beyond max_body is refused too.
  ASSERT_EQ(run_command({"sh", "-c", "head -c 100000 /dev/zero | gzip > '" + (dir / "bomb.gz") + "'"}).exit_code, 0);
  EXPECT_EQ(run_command({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/x-protobuf",
                         "-H", "Content-Encoding: gzip", "--data-binary", "@" + (dir / "bomb.gz"), url})
                .out,
            "413");
  // The bus holds 4096 bytes: the second 1.5 KiB body still fits, the third does not.
  testing::write_file(dir / "mid.json", std::string(1500, ' ') + "{}");
  EXPECT_EQ(curl("application/json", dir / "mid.json").out, "200");
  EXPECT_EQ(curl("application/json", dir / "mid.json").out, "200");
  EXPECT_EQ(curl("application/json", dir / "mid.json").out, "503");
  const auto s = receiver.status();
  EXPECT_EQ(s["requests"]["json"], 4);
  EXPECT_EQ(s["bad_requests"]["content_type"], 1);
  EXPECT_EQ(s["bad_requests"]["body_too_large"], 2);
  EXPECT_EQ(s["produce_drops"]["full"], 1);
  receiver.stop();
}

std::string protoc_encode(const std::string& proto, const std::string& type, const std::string& text) {
  const std::string dir = kFixtures + "/proto";
  testing::TempDir tmp;
  testing::write_file(tmp / "in.txtpb", text);
  auto r = run_command({"sh", "-c",
                        "protoc -I'" + dir + "' -I/usr/include --encode=" + type + " '" + dir + "/" + proto + "' < '" +
                            (tmp / "in.txtpb") + "'"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

const char* kJaegerJson = R"({"traceId":"S/kvNXezTaajzpKdDg5HNg==","spanId":"AAAAAAAAABE=","operationName":"GET /json",
  "references":[{"traceId":"S/kvNXezTaajzpKdDg5HNg==","spanId":"AAAAAAAAAAc="}],
  "startTime":"2023-11-14T22:13:21.25Z","duration":"0.25s",
  "tags":[{"key":"span.kind","vStr":"server"},{"key":"otel.status_code","vStr":"OK"},
          {"key":"attempt","vType":"INT64","vInt64":"3"}],
  "process":{"serviceName":"gateway","tags":[{"key":"ip","vStr":"10.0.0.1"}]}})";

TEST(Spans, JaegerKafkaSpansFromKcatLandInChdb) {
  testing::MockKafka kafka(1, {{"jaeger-proto", 2}, {"jaeger-json", 1}});
  testing::TempDir dir;
  MetricsRegistry metrics;
  sinks::ChdbStore store({dir / "chdb", "", "sluice"}, metrics);
  sinks::ensure_spans_tables(store);

  const std::string text = testing::read_file(kFixtures + "/proto/jaeger_span.txtpb");
  testing::write_file(dir / "a.pb", protoc_encode("jaeger_model.proto", "jaeger.api_v2.Span", text));
  testing::write_file(dir / "b.pb", protoc_encode("jaeger_model.proto", "jaeger.api_v2.Span",
                                                  replace_all(replace_all(text, "HTTP GET", "HTTP POST"),
                                                              R"(span_id: "\x00\x00\x00\x00\x00\x00\x00\x07")",
                                                              R"(span_id: "\x00\x00\x00\x00\x00\x00\x00\x08")")));
  testing::write_file(dir / "junk.pb", "\x0a\x10 not a span");
  testing::write_file(dir / "c.json", kJaegerJson);
  // kcat -P with file arguments sends each file whole as one message.
  for (const auto& [topic, files] :
       std::vector<std::pair<std::string, std::vector<std::string>>>{{"jaeger-proto", {"a.pb", "b.pb", "junk.pb"}},
                                                                     {"jaeger-json", {"c.json"}}}) {
    std::vector<std::string> argv{"kcat", "-P", "-b", kafka.bootstrap(), "-t", topic};
    for (const auto& f : files) argv.push_back(dir / f);
    const auto r = run_command(argv, 30s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  bus::KafkaConfig config;
  config.brokers = kafka.bootstrap();
  config.session_timeout_ms = 4000;
  config.consumer_properties = {{"heartbeat.interval.ms", "200"}};
  config.consumer_group = "sluice-spans";
  // One job for both topics: each partition's format comes from its topic.
  bus::KafkaConsumer consumer(config, {"jaeger-proto", "jaeger-json"}, metrics);
  pipeline::SpanDecoding decoding(metrics);
  pipeline::BatchSink sink("spans", store, pipeline::BatchSinkPolicy{}, metrics);
  pipeline::ConsumerJob job(
      pipeline::ConsumerJobConfig{"spans", 1000, 8 << 20, 100ms, 100ms, 10s}, consumer,
      pipeline::span_builders(decoding, {{"jaeger-proto", SpanFormat::jaeger_proto}, {"jaeger-json", SpanFormat::jaeger_json}},
                              SpanFormat::otlp_envelope, store.dialect(), "spans"),
      sink, metrics);
  std::thread thread([&] { consumer.run(job); });
  ASSERT_TRUE(testing::eventually([&] { return count(store) == 3; }, 30s)) << count(store);
  ASSERT_TRUE(testing::eventually([&] { return decoding.messages.value() == 4; }, 10s));
  consumer.stop();
  thread.join();
  sink.stop(std::chrono::steady_clock::now() + 5s);
  EXPECT_EQ(decoding.spans.value(), 3u);
  EXPECT_EQ(decoding.rejected_messages[static_cast<std::size_t>(spans::SpanReject::malformed)]->value(), 1u);

  const auto got = rows(store, sinks::spans_by_trace_sql("sluice", "spans", ClickHouseDialect::modern, "4bf92f3577b34da6a3ce929d0e0e4736",
                                                         kModernSelect));
  ASSERT_EQ(got.size(), 3u);
  for (std::size_t k = 0; k < 2; ++k) {
    const json& r = got[k];
    EXPECT_EQ(r["ts"], "1700000000500000000");
    EXPECT_EQ(r["ParentSpanId"], "0000000000000005");
    EXPECT_EQ(r["SpanKind"], "Client");
    EXPECT_EQ(r["ServiceName"], "frontend");
    EXPECT_EQ(r["ResourceAttributes"], (json{{"service.name", "frontend"}, {"hostname", "web-1"}}));
    EXPECT_EQ(r["duration"], "1500000");
    EXPECT_EQ(r["StatusCode"], "Error");
    EXPECT_EQ(r["SpanAttributes"], (json{{"http.status_code", "503"},
                                         {"ratio", "0.5"},
                                         {"payload", "AQL/"},
                                         {"jaeger.warnings", R"(["clock skew adjusted"])"}}));
    EXPECT_EQ(r["event_ts"], (json{"1700000000501000000"}));
    EXPECT_EQ(r["event_names"], (json{"retry"}));
    EXPECT_EQ(r["event_attrs"], (json{json{{"attempt", "2"}}}));
    EXPECT_EQ(r["link_traces"], (json{"0102030405060708090a0b0c0d0e0f10"}));
    EXPECT_EQ(r["link_spans"], (json{"0000000000000009"}));
    EXPECT_EQ(r["link_attrs"], (json{json{{"opentracing.ref_type", "follows_from"}}}));
  }
  std::set<std::string> names{got[0]["SpanName"], got[1]["SpanName"]};
  EXPECT_EQ(names, (std::set<std::string>{"HTTP GET", "HTTP POST"}));
  std::set<std::string> ids{got[0]["SpanId"], got[1]["SpanId"]};
  EXPECT_EQ(ids, (std::set<std::string>{"0000000000000007", "0000000000000008"}));
  const json& j = got[2];
  EXPECT_EQ(j["ts"], "1700000001250000000");
  EXPECT_EQ(j["SpanId"], "0000000000000011");
  EXPECT_EQ(j["ParentSpanId"], "0000000000000007");
  EXPECT_EQ(j["SpanName"], "GET /json");
  EXPECT_EQ(j["SpanKind"], "Server");
  EXPECT_EQ(j["ServiceName"], "gateway");
  EXPECT_EQ(j["ResourceAttributes"], (json{{"service.name", "gateway"}, {"ip", "10.0.0.1"}}));
  EXPECT_EQ(j["duration"], "250000000");
  EXPECT_EQ(j["StatusCode"], "Ok");
  EXPECT_EQ(j["SpanAttributes"], (json{{"attempt", "3"}}));
  EXPECT_EQ(j["event_names"], json::array());
  EXPECT_EQ(j["link_traces"], json::array());
}

// One batch of the decoder fixture (OTLP protobuf, two spans) as the outlet builds it.
sinks::InsertRequest fixture_batch(ClickHouseDialect dialect, MetricsRegistry& metrics, pipeline::SpanDecoding& d) {
  (void)metrics;
  const auto body = protoc_encode("otlp_trace.proto", "opentelemetry.proto.trace.v1.ExportTraceServiceRequest",
                                  testing::read_file(kFixtures + "/proto/otlp_request.txtpb"));
  pipeline::SpanBatchBuilder builder(d, SpanFormat::otlp_proto, dialect, "spans");
  bus::Message m;
  m.topic = "otlp";
  m.value = std::as_bytes(std::span(body.data(), body.size()));
  builder.add(m);
  EXPECT_EQ(builder.rows(), 2u);
  return builder.take();
}

TEST(Spans, ChdbCountsAReplayedBatchOnce) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  pipeline::SpanDecoding decoding(metrics);
  sinks::ChdbStore store({dir / "chdb", "", "sluice"}, metrics);
  sinks::ensure_spans_tables(store);
  sinks::ensure_spans_tables(store);  // idempotent
  // A TTL applies to both tables (the rows here are from 2023: they would expire at once).
  sinks::ensure_spans_tables(store, "spans_ttl", "30 DAY");
  EXPECT_NE(store.query("SHOW CREATE TABLE sluice.spans_ttl", "TSVRaw").data.find("TTL toDateTime(Timestamp) + toIntervalDay(30)"),
            std::string::npos);
  EXPECT_NE(store.query("SHOW CREATE TABLE sluice.spans_ttl_trace_id_ts", "TSVRaw").data.find("TTL toDateTime(Start) + toIntervalDay(30)"),
            std::string::npos);
  auto batch = fixture_batch(store.dialect(), metrics, decoding);
  store.insert(batch);
  store.insert(batch);  // replayed after a crash, without a token
  EXPECT_EQ(count(store), 2u);
  EXPECT_EQ(store.query("SELECT SpanName, SpanAttributes['tags'], SpanAttributes['nested'], Links.TraceState[1] FROM "
                        "sluice.spans FINAL ORDER BY Timestamp",
                        "TabSeparated")
                .data,
            "GET /cart\t[\"a\\\\\"b\",-3,false]\t{\"k\":1.5,\"e\":null}\tx=y\nSELECT cart\t\t\t\n");
}

TEST(Spans, LegacyServerStoresSpansWithNestedArrays) {
  testing::ClickHouseServer server;
  MetricsRegistry metrics;
  pipeline::SpanDecoding decoding(metrics);
  sinks::ClickHouseHttpConfig config;
  config.url = server.url();
  sinks::ClickHouseHttpStore store(config, metrics);
  ASSERT_EQ(store.dialect(), ClickHouseDialect::legacy);
  sinks::ensure_spans_tables(store, "spans", "30 DAY");
  sinks::ensure_spans_tables(store);
  auto batch = fixture_batch(store.dialect(), metrics, decoding);
  store.insert(batch);
  store.insert(batch);
  store.query("OPTIMIZE TABLE sluice.spans FINAL", "TabSeparated");
  EXPECT_EQ(count(store), 2u);
  EXPECT_EQ(store.query(sinks::spans_by_trace_sql(
                            "sluice", "spans", ClickHouseDialect::legacy, "4bf92f3577b34da6a3ce929d0e0e4736",
                            "toUnixTimestamp(Timestamp), TimestampNs, SpanId, ParentSpanId, SpanName, SpanKind, "
                            "ServiceName, ResourceAttributes.Value[indexOf(ResourceAttributes.Key, 'host.cores')], "
                            "ScopeName, ScopeVersion, SpanAttributes.Value[indexOf(SpanAttributes.Key, 'ratio')], "
                            "length(SpanAttributes.Key), Duration, StatusCode, StatusMessage, Events.Timestamp, "
                            "Events.Name, Events.AttributeKeys, Events.AttributeValues, Links.TraceId, Links.SpanId, "
                            "Links.TraceState, Links.AttributeKeys, Links.AttributeValues"),
                        "TabSeparated")
                .data,
            "1700000000\t1700000000123456789\t00f067aa0ba902b7\t\tGET /cart\tServer\tcheckout\t8\tshop.tracer\t1.2.3\t"
            "0.25\t8\t100000000\tError\tboom\t[1700000000150000000]\t['cache.miss']\t[['key']]\t[['cart:42']]\t"
            "['0102030405060708090a0b0c0d0e0f10']\t['1112131415161718']\t['x=y']\t[['link.kind']]\t[['retry']]\n"
            "1700000000\t1700000000130000000\t0000000000000002\t00f067aa0ba902b7\tSELECT cart\tClient\tcheckout\t8\t"
            "shop.tracer\t1.2.3\t\t0\t10000000\tUnset\t\t[]\t[]\t[]\t[]\t[]\t[]\t[]\t[]\t[]\n");
}

}  // namespace
}  // namespace sluice
