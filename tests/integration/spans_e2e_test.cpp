// Spans through the real binary: the OpenTelemetry JS SDK exports to `sluice run`'s OTLP/HTTP inlet
// (JSON and protobuf), Jaeger spans reach Kafka with kcat, and all are found by trace id in chDB.
#include <gtest/gtest.h>

#include <sstream>

#include "fixtures/mock_kafka.hpp"
#include "fixtures/process.hpp"
#include "fixtures/sluice_instance.hpp"

namespace sluice::testing {
namespace {

const std::string kFixtures = std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures";

std::vector<std::string> send_js_traces(int port, const std::string& protocol, int n) {
  const auto r = run_command({"node", kFixtures + "/otel/send_traces.mjs", "http://127.0.0.1:" + std::to_string(port),
                              protocol, std::to_string(n)},
                             std::chrono::seconds(60));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> ids;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (line != "done") ids.push_back(line);
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(n)) << r.out << r.err;
  return ids;
}

std::string jaeger_span(const TempDir& dir, const std::string& span_id_byte) {
  std::string text = read_file(kFixtures + "/proto/jaeger_span.txtpb");
  const std::string from = R"(span_id: "\x00\x00\x00\x00\x00\x00\x00\x07")";
  text.replace(text.find(from), from.size(), R"(span_id: "\x00\x00\x00\x00\x00\x00\x00)" + span_id_byte + "\"");
  write_file(dir / "span.txtpb", text);
  const auto out = dir / ("span-" + span_id_byte.substr(2) + ".pb");
  auto r = run_command({"sh", "-c",
                        "protoc -I'" + kFixtures + "/proto' --encode=jaeger.api_v2.Span '" + kFixtures +
                            "/proto/jaeger_model.proto' < '" + (dir / "span.txtpb") + "' > '" + out + "'"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return out;
}

TEST(SpansE2E, OtelSdkAndJaegerSpansAreFoundByTraceIdThroughTheBinary) {
  MockKafka kafka(1, {{"sluice-flows", 1}, {"sluice-flow-templates", 1}, {"sluice-spans", 2}, {"jaeger-spans", 2}});
  TempDir dir;
  const int otlp_port = free_port();
  SluiceInstance sluice(
      "run",
      "data_dir: " + (dir / "data") + "\n"
      "admin: {listen: '${SLUICE_ADMIN_LISTEN}'}\n"
      "inlet:\n  otlp: {listen: 127.0.0.1:" + std::to_string(otlp_port) + "}\n"
      "bus:\n  kafka: {brokers: " + kafka.bootstrap() + ", consumer_group: spans-e2e, session_timeout: 6s}\n"
      "outlet:\n"
      "  batch: {max_delay: 200ms}\n"
      "  commit_interval: 200ms\n"
      "  chdb: {path: " + (dir / "data") + "/chdb}\n"
      "  spans: {}\n"
      "jobs:\n"
      "  - {name: jaeger, topic: jaeger-spans, decoder: {kind: jaeger-proto}, batch: {max_delay: 200ms}}\n",
      dir);
  sluice.start();

  const auto json_ids = send_js_traces(otlp_port, "json", 2);
  const auto proto_ids = send_js_traces(otlp_port, "proto", 2);
  auto r = run_command({"kcat", "-P", "-b", kafka.bootstrap(), "-t", "jaeger-spans", jaeger_span(dir, "\\x07"),
                        jaeger_span(dir, "\\x08")});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  ASSERT_TRUE(eventually([&] { return sluice.query_u64("SELECT count() FROM sluice.spans FINAL") == 4 * 3 + 2; },
                         std::chrono::seconds(60)))
      << sluice.query("SELECT ServiceName, count() FROM sluice.spans GROUP BY ServiceName") << sluice.log();

  // Every JS trace through the trace-id index: three spans, parent links, attributes and events.
  for (const auto& [ids, protocol] : {std::pair{json_ids, std::string("json")}, std::pair{proto_ids, std::string("proto")}}) {
    for (const auto& id : ids) {
      const auto where = "TraceId = '" + id + "' AND Timestamp >= (SELECT min(Start) FROM sluice.spans_trace_id_ts "
                         "WHERE TraceId = '" + id + "') AND Timestamp <= (SELECT max(End) FROM sluice.spans_trace_id_ts "
                         "WHERE TraceId = '" + id + "')";
      EXPECT_EQ(sluice.query("SELECT ServiceName, SpanName, SpanKind, StatusCode, SpanAttributes['http.method'], "
                             "SpanAttributes['tags'], Events.Name FROM sluice.spans FINAL WHERE " + where +
                             " ORDER BY Timestamp LIMIT 1"),
                "shop-" + protocol + "\tGET /checkout\tServer\tError\tGET\t[\"a\",\"b\\\\\"c\"]\t['exception','annotation']\n")
          << id;
      EXPECT_EQ(sluice.query("SELECT countIf(ParentSpanId = ''), countIf(ParentSpanId IN (SELECT SpanId FROM "
                             "sluice.spans WHERE TraceId = '" + id + "')) FROM sluice.spans FINAL WHERE " + where),
                "1\t2\n")
          << id;
    }
  }
  // The Jaeger spans, by their trace id: service from the process, tags as attributes, logs as events.
  EXPECT_EQ(sluice.query("SELECT SpanId, ServiceName, SpanName, ParentSpanId, SpanAttributes['http.status_code'], "
                         "ResourceAttributes['hostname'], Events.Name FROM sluice.spans FINAL WHERE "
                         "TraceId = '4bf92f3577b34da6a3ce929d0e0e4736' ORDER BY SpanId"),
            "0000000000000007\tfrontend\tHTTP GET\t0000000000000005\t503\tweb-1\t['retry']\n"
            "0000000000000008\tfrontend\tHTTP GET\t0000000000000005\t503\tweb-1\t['retry']\n");
  EXPECT_EQ(sluice.stop(), 0) << sluice.log();
}

}  // namespace
}  // namespace sluice::testing
