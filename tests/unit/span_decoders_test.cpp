// The four span decoders on the same content: OTLP protobuf and Jaeger protobuf bodies made by the real
// `protoc --encode` from text format (tests/fixtures/proto), OTLP JSON and Jaeger JSON written by hand
// after the public JSON mappings; every field is checked exactly, and bad input is refused with its reason.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "decoders/spans/jaeger.hpp"
#include "decoders/spans/otlp_json.hpp"
#include "decoders/spans/otlp_proto.hpp"
#include "config/config.hpp"
#include "config/reader.hpp"
#include "core/envelope.hpp"
#include "fixtures/process.hpp"
#include "pipeline/span_batch_builder.hpp"

namespace sluice::spans {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

struct Collect final : SpanSink {
  std::vector<Span> spans;
  void on_span(const Span& s) override { spans.push_back(s); }
};

std::string hex(std::span<const std::uint8_t> id) {
  std::string out;
  append_hex(out, id);
  return out;
}
Pairs pairs(const Attributes& a) {
  Pairs out;
  for (const auto& kv : a) out.emplace_back(kv.key, kv.value);
  return out;
}
std::span<const std::byte> bytes(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

std::string protoc_encode(const std::string& proto, const std::string& type, const std::string& text_file) {
  const std::string dir = std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/proto";
  auto r = testing::run_command({"sh", "-c",
                                 "protoc -I'" + dir + "' -I/usr/include --encode=" + type + " '" + dir + "/" + proto +
                                     "' < '" + dir + "/" + text_file + "'"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

// The first span of otlp_request.txtpb, whatever the encoding it came in.
void expect_otlp_spans(const std::vector<Span>& spans) {
  ASSERT_EQ(spans.size(), 2u);
  const Span& s = spans[0];
  EXPECT_EQ(s.service_name, "checkout");
  EXPECT_EQ(pairs(s.resource_attributes), (Pairs{{"service.name", "checkout"}, {"host.cores", "8"}}));
  EXPECT_EQ(s.scope_name, "shop.tracer");
  EXPECT_EQ(s.scope_version, "1.2.3");
  EXPECT_EQ(hex(s.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(hex(s.span_id), "00f067aa0ba902b7");
  EXPECT_FALSE(s.has_parent);
  EXPECT_EQ(s.trace_state, "vendor=1");
  EXPECT_EQ(s.name, "GET /cart");
  EXPECT_EQ(s.kind, SpanKind::server);
  EXPECT_EQ(s.start_ns, 1700000000123456789u);
  EXPECT_EQ(s.end_ns, 1700000000223456789u);
  EXPECT_EQ(s.duration_ns(), 100000000u);
  EXPECT_EQ(s.status_code, StatusCode::error);
  EXPECT_EQ(s.status_message, "boom");
  EXPECT_EQ(pairs(s.attributes), (Pairs{{"http.method", "GET"},
                                        {"http.status_code", "200"},
                                        {"ratio", "0.25"},
                                        {"cached", "true"},
                                        {"blob", "AQL/"},
                                        {"tags", R"(["a\"b",-3,false])"},
                                        {"nested", R"({"k":1.5,"e":null})"},
                                        {"negative", "-9000000000"}}));
  ASSERT_EQ(s.events.size(), 1u);
  EXPECT_EQ(s.events[0].time_ns, 1700000000150000000u);
  EXPECT_EQ(s.events[0].name, "cache.miss");
  EXPECT_EQ(pairs(s.events[0].attributes), (Pairs{{"key", "cart:42"}}));
  ASSERT_EQ(s.links.size(), 1u);
  EXPECT_EQ(hex(s.links[0].trace_id), "0102030405060708090a0b0c0d0e0f10");
  EXPECT_EQ(hex(s.links[0].span_id), "1112131415161718");
  EXPECT_EQ(s.links[0].trace_state, "x=y");
  EXPECT_EQ(pairs(s.links[0].attributes), (Pairs{{"link.kind", "retry"}}));

  const Span& c = spans[1];
  EXPECT_EQ(c.service_name, "checkout");
  EXPECT_EQ(c.scope_name, "shop.tracer");
  EXPECT_EQ(hex(c.span_id), "0000000000000002");
  ASSERT_TRUE(c.has_parent);
  EXPECT_EQ(hex(c.parent_span_id), "00f067aa0ba902b7");
  EXPECT_EQ(c.name, "SELECT cart");
  EXPECT_EQ(c.kind, SpanKind::client);
  EXPECT_EQ(c.duration_ns(), 10000000u);
  EXPECT_EQ(c.status_code, StatusCode::unset);
  EXPECT_TRUE(c.attributes.size() == 0 && c.events.empty() && c.links.empty());
}

void expect_jaeger_span(const std::vector<Span>& spans) {
  ASSERT_EQ(spans.size(), 1u);
  const Span& s = spans[0];
  EXPECT_EQ(hex(s.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(hex(s.span_id), "0000000000000007");
  ASSERT_TRUE(s.has_parent);
  EXPECT_EQ(hex(s.parent_span_id), "0000000000000005");
  EXPECT_EQ(s.name, "HTTP GET");
  EXPECT_EQ(s.flags, 1u);
  EXPECT_EQ(s.start_ns, 1700000000500000000u);
  EXPECT_EQ(s.duration_ns(), 1500000u);
  EXPECT_EQ(s.kind, SpanKind::client);
  EXPECT_EQ(s.status_code, StatusCode::error);
  EXPECT_EQ(s.service_name, "frontend");
  EXPECT_EQ(pairs(s.resource_attributes), (Pairs{{"service.name", "frontend"}, {"hostname", "web-1"}}));
  EXPECT_EQ(pairs(s.attributes), (Pairs{{"http.status_code", "503"},
                                        {"ratio", "0.5"},
                                        {"payload", "AQL/"},
                                        {"jaeger.warnings", R"(["clock skew adjusted"])"}}));
  ASSERT_EQ(s.events.size(), 1u);
  EXPECT_EQ(s.events[0].time_ns, 1700000000501000000u);
  EXPECT_EQ(s.events[0].name, "retry");
  EXPECT_EQ(pairs(s.events[0].attributes), (Pairs{{"attempt", "2"}}));
  ASSERT_EQ(s.links.size(), 1u);
  EXPECT_EQ(hex(s.links[0].trace_id), "0102030405060708090a0b0c0d0e0f10");
  EXPECT_EQ(hex(s.links[0].span_id), "0000000000000009");
  EXPECT_EQ(pairs(s.links[0].attributes), (Pairs{{"opentracing.ref_type", "follows_from"}}));
}

const char* kOtlpJson = R"({"resourceSpans":[{
  "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}},
                            {"key":"host.cores","value":{"intValue":"8"}}]},
  "scopeSpans":[{"scope":{"name":"shop.tracer","version":"1.2.3"},"spans":[
    {"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","traceState":"vendor=1",
     "parentSpanId":"","name":"GET /cart","kind":2,
     "startTimeUnixNano":"1700000000123456789","endTimeUnixNano":"1700000000223456789",
     "attributes":[{"key":"http.method","value":{"stringValue":"GET"}},
                   {"key":"http.status_code","value":{"intValue":200}},
                   {"key":"ratio","value":{"doubleValue":0.25}},
                   {"key":"cached","value":{"boolValue":true}},
                   {"key":"blob","value":{"bytesValue":"AQL/"}},
                   {"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"a\"b"},{"intValue":"-3"},{"boolValue":false}]}}},
                   {"key":"nested","value":{"kvlistValue":{"values":[{"key":"k","value":{"doubleValue":1.5}},{"key":"e","value":{}}]}}},
                   {"key":"negative","value":{"intValue":"-9000000000"}}],
     "events":[{"timeUnixNano":"1700000000150000000","name":"cache.miss",
                "attributes":[{"key":"key","value":{"stringValue":"cart:42"}}]}],
     "links":[{"traceId":"0102030405060708090A0B0C0D0E0F10","spanId":"1112131415161718","traceState":"x=y",
               "attributes":[{"key":"link.kind","value":{"stringValue":"retry"}}]}],
     "status":{"code":2,"message":"boom"}},
    {"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"0000000000000002","parentSpanId":"00f067aa0ba902b7",
     "name":"SELECT cart","kind":"SPAN_KIND_CLIENT","startTimeUnixNano":1700000000130000000,
     "endTimeUnixNano":"1700000000140000000","status":{}}]}]}]})";

const char* kJaegerJson = R"({"traceId":"S/kvNXezTaajzpKdDg5HNg==","spanId":"AAAAAAAAAAc=","operationName":"HTTP GET",
  "references":[{"traceId":"S/kvNXezTaajzpKdDg5HNg==","spanId":"AAAAAAAAAAU="},
                {"traceId":"AQIDBAUGBwgJCgsMDQ4PEA==","spanId":"AAAAAAAAAAk=","refType":"FOLLOWS_FROM"}],
  "flags":1,"startTime":"2023-11-14T22:13:20.500Z","duration":"0.001500s",
  "tags":[{"key":"span.kind","vStr":"client"},{"key":"http.status_code","vType":"INT64","vInt64":"503"},
          {"key":"error","vType":"BOOL","vBool":true},{"key":"ratio","vType":"FLOAT64","vFloat64":0.5},
          {"key":"payload","vType":"BINARY","vBinary":"AQL/"}],
  "logs":[{"timestamp":"2023-11-14T23:13:20.501+01:00","fields":[{"key":"event","vStr":"retry"},
          {"key":"attempt","vType":"INT64","vInt64":"2"}]}],
  "process":{"serviceName":"frontend","tags":[{"key":"hostname","vStr":"web-1"}]},
  "warnings":["clock skew adjusted"]})";

TEST(SpanDecoders, OtlpProtobufFromProtocGivesEveryField) {
  const auto body = protoc_encode("otlp_trace.proto", "opentelemetry.proto.trace.v1.ExportTraceServiceRequest",
                                  "otlp_request.txtpb");
  OtlpProtoDecoder d;
  Collect sink;
  const auto r = d.decode(bytes(body), sink);
  EXPECT_EQ(r.error, SpanReject::none);
  EXPECT_EQ(r.spans, 2u);
  EXPECT_EQ(r.rejected_spans, 0u);
  expect_otlp_spans(sink.spans);
  // The decoder is reused: the same body gives the same spans again.
  Collect again;
  d.decode(bytes(body), again);
  expect_otlp_spans(again.spans);
}

TEST(SpanDecoders, OtlpJsonGivesTheSameSpans) {
  OtlpJsonDecoder d;
  Collect sink;
  const auto r = d.decode(bytes(kOtlpJson), sink);
  EXPECT_EQ(r.error, SpanReject::none);
  EXPECT_EQ(r.spans, 2u);
  expect_otlp_spans(sink.spans);
}

TEST(SpanDecoders, JaegerProtobufFromProtocGivesEveryField) {
  const auto body = protoc_encode("jaeger_model.proto", "jaeger.api_v2.Span", "jaeger_span.txtpb");
  JaegerProtoDecoder d;
  Collect sink;
  const auto r = d.decode(bytes(body), sink);
  EXPECT_EQ(r.error, SpanReject::none);
  EXPECT_EQ(r.spans, 1u);
  expect_jaeger_span(sink.spans);
}

TEST(SpanDecoders, JaegerJsonGivesTheSameSpan) {
  JaegerJsonDecoder d;
  Collect sink;
  const auto r = d.decode(bytes(kJaegerJson), sink);
  EXPECT_EQ(r.error, SpanReject::none);
  EXPECT_EQ(r.spans, 1u);
  expect_jaeger_span(sink.spans);
}

TEST(SpanDecoders, TruncatedProtobufIsMalformedAfterTheSpansBeforeIt) {
  const auto body = protoc_encode("otlp_trace.proto", "opentelemetry.proto.trace.v1.ExportTraceServiceRequest",
                                  "otlp_request.txtpb");
  OtlpProtoDecoder d;
  for (std::size_t cut : {std::size_t{1}, body.size() / 2, body.size() - 1}) {
    Collect sink;
    const auto r = d.decode(bytes(body.substr(0, cut)), sink);
    EXPECT_EQ(r.error, SpanReject::malformed) << cut;
    EXPECT_EQ(r.spans, 0u) << cut;  // the outer ResourceSpans is cut, so nothing inside it is trusted
  }
  JaegerProtoDecoder j;
  Collect sink;
  EXPECT_EQ(j.decode(bytes(std::string("\x0a\x10\x01", 3)), sink).error, SpanReject::malformed);
  EXPECT_TRUE(sink.spans.empty());
}

TEST(SpanDecoders, BadIdsRefuseThatSpanOnly) {
  std::string doc = kOtlpJson;
  doc.replace(doc.find("00f067aa0ba902b7"), 16, "00f067aa0ba9");  // first span: a 6-byte span id
  OtlpJsonDecoder d;
  Collect sink;
  const auto r = d.decode(bytes(doc), sink);
  EXPECT_EQ(r.error, SpanReject::none);
  EXPECT_EQ(r.spans, 1u);
  EXPECT_EQ(r.rejected_spans, 1u);
  EXPECT_EQ(r.span_error, SpanReject::bad_span_id);
  ASSERT_EQ(sink.spans.size(), 1u);
  EXPECT_EQ(sink.spans[0].name, "SELECT cart");

  std::string zero = kOtlpJson;
  zero.replace(zero.find("4bf92f3577b34da6a3ce929d0e0e4736"), 32, std::string(32, '0'));
  Collect sink2;
  const auto r2 = d.decode(bytes(zero), sink2);
  EXPECT_EQ(r2.span_error, SpanReject::bad_trace_id);
  EXPECT_EQ(r2.spans, 1u);
}

TEST(SpanDecoders, JsonRejectionsNameTheirReason) {
  OtlpJsonDecoder otlp;
  JaegerJsonDecoder jaeger;
  Collect sink;
  EXPECT_EQ(otlp.decode(bytes(std::string("{\"resourceSpans\":[")), sink).error, SpanReject::malformed);
  EXPECT_EQ(otlp.decode(bytes(std::string("[]")), sink).error, SpanReject::malformed);
  EXPECT_EQ(otlp.decode(bytes(std::string("{\"resourceSpans\":{}}")), sink).error, SpanReject::malformed);
  EXPECT_EQ(otlp.decode(bytes(std::string("{}")), sink).spans, 0u);

  std::string late = kJaegerJson;
  late.replace(late.find("2023-11-14T22:13:20.500Z"), 24, "yesterday at noon");
  auto r = jaeger.decode(bytes(late), sink);
  EXPECT_EQ(r.rejected_spans, 1u);
  EXPECT_EQ(r.span_error, SpanReject::bad_time);
  std::string negative = kJaegerJson;
  negative.replace(negative.find("0.001500s"), 9, "-1s");
  EXPECT_EQ(jaeger.decode(bytes(negative), sink).span_error, SpanReject::bad_time);
  std::string short_id = kJaegerJson;
  short_id.replace(short_id.find("AAAAAAAAAAc="), 12, "AAAA");
  EXPECT_EQ(jaeger.decode(bytes(short_id), sink).span_error, SpanReject::bad_span_id);
  EXPECT_TRUE(sink.spans.empty());
}

TEST(SpanDecoders, LimitsBoundDepthAndCounts) {
  SpanLimits limits;
  limits.max_depth = 4;
  limits.max_attributes = 3;
  OtlpJsonDecoder d(limits);
  auto doc = [](const std::string& attributes) {
    return std::string(R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736",)"
                       R"("spanId":"00f067aa0ba902b7","attributes":[)") +
           attributes + "]}]}]}]}";
  };
  std::string deep = R"({"stringValue":"x"})";
  for (int i = 0; i < 6; ++i) deep = R"({"arrayValue":{"values":[)" + deep + "]}}";
  Collect sink;
  auto r = d.decode(bytes(doc(R"({"key":"d","value":)" + deep + "}")), sink);
  EXPECT_EQ(r.span_error, SpanReject::too_deep);
  // Deeper than the JSON parser's own bound: the whole message is refused.
  r = d.decode(bytes(std::string(200, '[') + std::string(200, ']')), sink);
  EXPECT_EQ(r.error, SpanReject::too_deep);
  r = d.decode(bytes(doc(R"({"key":"a"},{"key":"b"},{"key":"c"},{"key":"d"})")), sink);
  EXPECT_EQ(r.span_error, SpanReject::too_many);
  r = d.decode(bytes(doc(R"({"key":"a","value":{"intValue":"1"}},{"key":"b"})")), sink);
  EXPECT_EQ(r.spans, 1u);
  ASSERT_EQ(sink.spans.size(), 1u);
  EXPECT_EQ(pairs(sink.spans[0].attributes), (Pairs{{"a", "1"}, {"b", ""}}));
}

TEST(SpanDecoders, TimeFormats) {
  std::uint64_t ns = 0;
  EXPECT_TRUE(parse_rfc3339_ns("1970-01-01T00:00:01.5Z", ns));
  EXPECT_EQ(ns, 1'500'000'000u);
  EXPECT_TRUE(parse_rfc3339_ns("2024-02-29T23:59:59.123456789-01:00", ns));
  EXPECT_EQ(ns, 1709254799123456789u);
  EXPECT_FALSE(parse_rfc3339_ns("2024-02-29 23:59", ns));
  EXPECT_FALSE(parse_rfc3339_ns("2024-02-29T23:59:59", ns));
  EXPECT_TRUE(parse_duration_ns("12s", ns));
  EXPECT_EQ(ns, 12'000'000'000u);
  EXPECT_TRUE(parse_duration_ns("0.000000001s", ns));
  EXPECT_EQ(ns, 1u);
  EXPECT_FALSE(parse_duration_ns("1.0000000001s", ns));
  EXPECT_FALSE(parse_duration_ns("1.5", ns));
}

TEST(SpanBatchBuilder, ReadsTheInletsEnvelopeByItsBodyMarker) {
  MetricsRegistry metrics;
  pipeline::SpanDecoding decoding(metrics);
  pipeline::SpanBatchBuilder builder(decoding, pipeline::SpanFormat::otlp_envelope, ClickHouseDialect::modern, "spans");
  auto envelope = [](std::uint8_t marker, std::string_view body, SourceKind kind = SourceKind::span) {
    std::string payload(1, static_cast<char>(marker));
    payload += body;
    Envelope e;
    e.kind = kind;
    e.payload = std::as_bytes(std::span(payload.data(), payload.size()));
    std::vector<std::byte> out;
    encode_envelope(e, out);
    return out;
  };
  auto add = [&](const std::vector<std::byte>& value) {
    bus::Message m;
    m.topic = "sluice-spans";
    m.value = value;
    builder.add(m);
  };
  add(envelope(2, kOtlpJson));
  const auto proto = protoc_encode("otlp_trace.proto", "opentelemetry.proto.trace.v1.ExportTraceServiceRequest",
                                   "otlp_request.txtpb");
  add(envelope(1, proto));
  EXPECT_EQ(builder.rows(), 4u);
  add(envelope(9, kOtlpJson));                    // unknown marker
  add(envelope(2, kOtlpJson, SourceKind::log));   // not a span envelope
  add(envelope(1, kOtlpJson));                    // JSON claimed as protobuf
  EXPECT_EQ(builder.rows(), 4u);
  EXPECT_EQ(decoding.messages.value(), 5u);
  EXPECT_EQ(decoding.spans.value(), 4u);
  EXPECT_EQ(decoding.rejected_messages[static_cast<std::size_t>(SpanReject::unknown_format)]->value(), 2u);
  EXPECT_EQ(decoding.rejected_messages[static_cast<std::size_t>(SpanReject::malformed)]->value(), 1u);
  const auto batch = builder.take();
  EXPECT_EQ(batch.rows, 4u);
  EXPECT_EQ(batch.table, "spans");
  EXPECT_EQ(batch.format, "Native");
  EXPECT_EQ(builder.rows(), 0u);
}

TEST(SpansConfig, ReadsInletOtlpAndOutletSpans) {
  const auto c = config::parse_config(R"(
inlet:
  otlp:
    listen: 127.0.0.1:4318
    max_body: 2MiB
    threads: 4
outlet:
  chdb: {path: /tmp/sluice-spans-config}
  spans:
    ttl: 7 days
    jaeger_proto_topics: [jaeger-spans]
    jaeger_json_topics: [jaeger-json-a, jaeger-json-b]
)");
  ASSERT_TRUE(c.inlet.otlp.has_value());
  EXPECT_EQ(c.inlet.otlp->listen, "127.0.0.1:4318");
  EXPECT_EQ(c.inlet.otlp->max_body, 2u << 20);
  EXPECT_EQ(c.inlet.otlp->threads, 4);
  ASSERT_TRUE(c.outlet && c.outlet->spans);
  EXPECT_EQ(c.outlet->spans->table, "spans");
  EXPECT_EQ(c.outlet->spans->ttl, "7 DAY");
  EXPECT_EQ(c.outlet->spans->jaeger_proto_topics, std::vector<std::string>{"jaeger-spans"});
  EXPECT_EQ(c.outlet->spans->jaeger_json_topics, (std::vector<std::string>{"jaeger-json-a", "jaeger-json-b"}));
  EXPECT_EQ(c.topic_for(SourceKind::span), "sluice-spans");

  try {
    config::parse_config("inlet:\n  otlp:\n    listen: 127.0.0.1:4318\n    max_body: 10\n    colour: red\n");
    FAIL() << "accepted a bad inlet.otlp";
  } catch (const config::ConfigError& e) {
    const std::string all = e.what();
    EXPECT_NE(all.find("inlet.otlp.max_body"), std::string::npos) << all;
    EXPECT_NE(all.find("inlet.otlp.colour"), std::string::npos) << all;
  }
}

}  // namespace
}  // namespace sluice::spans
