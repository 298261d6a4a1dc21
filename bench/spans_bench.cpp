// Span decoding and row building on one core: OTLP protobuf (and JSON, for comparison) requests of
// typical spans (10 attributes, 1 event with 2 attributes, a 5-attribute resource) decoded, and decoded
// and appended to a spans-table Native block. Figures are spans per second (items_per_second).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "decoders/spans/otlp_json.hpp"
#include "decoders/spans/otlp_proto.hpp"
#include "sinks/spans_table.hpp"

namespace {

using namespace sluice;

// A minimal protobuf writer for building the request.
void varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>(v | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void tag(std::string& out, int field, int wire) { varint(out, static_cast<std::uint64_t>(field << 3 | wire)); }
void bytes_field(std::string& out, int field, std::string_view b) {
  tag(out, field, 2);
  varint(out, b.size());
  out += b;
}
void fixed64(std::string& out, int field, std::uint64_t v) {
  tag(out, field, 1);
  char b[8];
  std::memcpy(b, &v, 8);
  out.append(b, 8);
}
std::string string_kv(std::string_view key, std::string_view value) {
  std::string any, kv;
  bytes_field(any, 1, value);
  bytes_field(kv, 1, key);
  bytes_field(kv, 2, any);
  return kv;
}
std::string int_kv(std::string_view key, std::uint64_t value) {
  std::string any, kv;
  tag(any, 3, 0);
  varint(any, value);
  bytes_field(kv, 1, key);
  bytes_field(kv, 2, any);
  return kv;
}

std::string otlp_request(int spans) {
  std::string resource, scope, scope_spans, rs, req;
  for (const auto& [k, v] : {std::pair{"service.name", "checkout"}, {"service.version", "1.4.2"},
                             {"host.name", "web-17.prod"}, {"k8s.pod.name", "checkout-7f9c4d-x2x9z"},
                             {"deployment.environment", "production"}}) {
    bytes_field(resource, 1, string_kv(k, v));
  }
  bytes_field(scope, 1, "io.opentelemetry.http");
  bytes_field(scope, 2, "1.32.0");
  bytes_field(scope_spans, 1, scope);
  for (int i = 0; i < spans; ++i) {
    std::string s, ev;
    char trace[16], id[8];
    for (int b = 0; b < 16; ++b) trace[b] = static_cast<char>(i * 7 + b + 1);
    for (int b = 0; b < 8; ++b) id[b] = static_cast<char>(i * 3 + b + 1);
    bytes_field(s, 1, {trace, 16});
    bytes_field(s, 2, {id, 8});
    bytes_field(s, 4, {id, 8});
    bytes_field(s, 5, i % 2 ? "GET /api/v1/cart/{id}" : "SELECT orders");
    tag(s, 6, 0);
    varint(s, 2);
    fixed64(s, 7, 1700000000000000000ull + static_cast<std::uint64_t>(i) * 1000);
    fixed64(s, 8, 1700000000002500000ull + static_cast<std::uint64_t>(i) * 1000);
    bytes_field(s, 9, string_kv("http.request.method", "GET"));
    bytes_field(s, 9, string_kv("url.path", "/api/v1/cart/" + std::to_string(i)));
    bytes_field(s, 9, int_kv("http.response.status_code", 200));
    bytes_field(s, 9, string_kv("server.address", "checkout.internal"));
    bytes_field(s, 9, int_kv("server.port", 8080));
    bytes_field(s, 9, string_kv("network.protocol.version", "1.1"));
    bytes_field(s, 9, string_kv("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"));
    bytes_field(s, 9, string_kv("client.address", "10.1.2.3"));
    bytes_field(s, 9, int_kv("http.request.body.size", 512 + i));
    bytes_field(s, 9, string_kv("thread.name", "http-nio-8080-exec-4"));
    fixed64(ev, 1, 1700000000001000000ull);
    bytes_field(ev, 2, "cache.miss");
    bytes_field(ev, 3, string_kv("cache.key", "cart:" + std::to_string(i)));
    bytes_field(ev, 3, int_kv("cache.shard", 3));
    bytes_field(s, 11, ev);
    std::string status;
    tag(status, 3, 0);
    varint(status, 1);
    bytes_field(s, 15, status);
    bytes_field(scope_spans, 2, s);
  }
  bytes_field(rs, 1, resource);
  bytes_field(rs, 2, scope_spans);
  bytes_field(req, 1, rs);
  return req;
}

struct Discard final : spans::SpanSink {
  std::uint64_t n = 0;
  void on_span(const spans::Span& s) override { n += s.attributes.size(); }
};

struct ToBlock final : spans::SpanSink {
  sinks::SpansBlock block{ClickHouseDialect::modern};
  void on_span(const spans::Span& s) override { block.append(s); }
};

constexpr int kSpansPerRequest = 100;

void BM_OtlpProtoDecode(benchmark::State& state) {
  const std::string req = otlp_request(kSpansPerRequest);
  spans::OtlpProtoDecoder decoder;
  Discard sink;
  for (auto _ : state) {
    const auto r = decoder.decode(std::as_bytes(std::span(req.data(), req.size())), sink);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * kSpansPerRequest);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(req.size()));
}
BENCHMARK(BM_OtlpProtoDecode);

// Decode + append to the spans table's Native block; the block is taken every 10,000 spans, as a batch.
void BM_OtlpProtoDecodeToNative(benchmark::State& state) {
  const std::string req = otlp_request(kSpansPerRequest);
  spans::OtlpProtoDecoder decoder;
  ToBlock sink;
  std::size_t body = 0;
  for (auto _ : state) {
    decoder.decode(std::as_bytes(std::span(req.data(), req.size())), sink);
    if (sink.block.rows() >= 10'000) body += sink.block.take().size();
  }
  benchmark::DoNotOptimize(body);
  state.SetItemsProcessed(state.iterations() * kSpansPerRequest);
}
BENCHMARK(BM_OtlpProtoDecodeToNative);

std::string as_json(const std::string& proto) {
  // The same content in OTLP JSON, through the decoder's own view of it.
  spans::OtlpProtoDecoder d;
  struct Json final : spans::SpanSink {
    std::string spans_json;
    std::string resource;
    void on_span(const spans::Span& s) override {
      auto attrs = [](const spans::Attributes& a) {
        std::string out = "[";
        for (const auto& kv : a) {
          if (out.size() > 1) out += ',';
          out += "{\"key\":";
          spans::append_json_string(out, kv.key);
          out += ",\"value\":{\"stringValue\":";
          spans::append_json_string(out, kv.value);
          out += "}}";
        }
        return out + "]";
      };
      if (resource.empty()) resource = attrs(s.resource_attributes);
      std::string t, id;
      spans::append_hex(t, s.trace_id);
      spans::append_hex(id, s.span_id);
      if (!spans_json.empty()) spans_json += ',';
      spans_json += "{\"traceId\":\"" + t + "\",\"spanId\":\"" + id + "\",\"parentSpanId\":\"" + id +
                    "\",\"name\":\"" + s.name + "\",\"kind\":2,\"startTimeUnixNano\":\"" + std::to_string(s.start_ns) +
                    "\",\"endTimeUnixNano\":\"" + std::to_string(s.end_ns) + "\",\"attributes\":" + attrs(s.attributes) +
                    ",\"events\":[{\"timeUnixNano\":\"" + std::to_string(s.events[0].time_ns) +
                    "\",\"name\":\"cache.miss\",\"attributes\":" + attrs(s.events[0].attributes) +
                    "}],\"status\":{\"code\":1}}";
    }
  } j;
  d.decode(std::as_bytes(std::span(proto.data(), proto.size())), j);
  return "{\"resourceSpans\":[{\"resource\":{\"attributes\":" + j.resource +
         "},\"scopeSpans\":[{\"scope\":{\"name\":\"io.opentelemetry.http\",\"version\":\"1.32.0\"},\"spans\":[" +
         j.spans_json + "]}]}]}";
}

void BM_OtlpJsonDecodeToNative(benchmark::State& state) {
  const std::string req = as_json(otlp_request(kSpansPerRequest));
  spans::OtlpJsonDecoder decoder;
  ToBlock sink;
  std::size_t body = 0;
  for (auto _ : state) {
    const auto r = decoder.decode(std::as_bytes(std::span(req.data(), req.size())), sink);
    if (r.spans != kSpansPerRequest) state.SkipWithError("JSON request did not decode");
    if (sink.block.rows() >= 10'000) body += sink.block.take().size();
  }
  benchmark::DoNotOptimize(body);
  state.SetItemsProcessed(state.iterations() * kSpansPerRequest);
}
BENCHMARK(BM_OtlpJsonDecodeToNative);

}  // namespace

BENCHMARK_MAIN();
