// TemplateCache: persistence round trip, bounds on templates and held data, sharing across threads.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <thread>
#include <vector>

#include "core/metrics.hpp"
#include "decoders/netflow.hpp"
#include "fixtures/process.hpp"
#include "flow_packet_builder.hpp"

namespace sluice {
namespace {

using testing::CollectFlows;
using testing::envelope_of;
using testing::PacketBuilder;

constexpr std::uint32_t kSecs = 1'700'000'000;

FlowTemplate make_template(std::vector<TemplateField> fields, bool options = false, std::uint16_t scope = 0) {
  FlowTemplate t;
  t.fields = std::move(fields);
  t.options = options;
  t.scope_count = scope;
  EXPECT_TRUE(t.finalize());
  return t;
}

// A v9 datagram teaching template 256 (bytes, packets), a System-scoped sampling interval of 32,
// and an IPFIX message teaching a variable-length enterprise template plus a selector rate.
void teach(TemplateCache& cache) {
  FlowRecord scratch;
  CollectFlows out;
  PacketBuilder v9;
  v9.v9_header(1000, kSecs, 3).begin_set(0).v9_template(256, {{1, 4}, {2, 4}}).end_set();
  v9.begin_set(1).u16(257).u16(4).u16(4).u16(1).u16(4).u16(34).u16(4).end_set();
  v9.begin_set(257).u32(0).u32(32).end_set();
  ASSERT_EQ(decode_netflow(envelope_of(v9.bytes(), "192.0.2.1"), cache, scratch, out), DecodeStatus::ok);
  PacketBuilder ipfix;
  ipfix.ipfix_header(kSecs, 9).begin_set(2).u16(300).u16(3).u16(8).u16(4).u16(0x8000 | 7).u16(0xffff).u32(6871)
      .u16(302).u16(2).end_set();
  ipfix.begin_set(3).u16(301).u16(2).u16(1).u16(302).u16(2).u16(34).u16(4).end_set();
  ipfix.begin_set(301).u16(5).u32(1000).end_set();
  ipfix.begin_set(3).u16(302).u16(2).u16(1).u16(149).u16(4).u16(160).u16(8).end_set();
  ipfix.begin_set(302).u32(9).u64(std::uint64_t{kSecs - 50} * 1000).end_set().finish_ipfix();
  ASSERT_EQ(decode_netflow(envelope_of(ipfix.bytes(), "2001:db8::1"), cache, scratch, out), DecodeStatus::ok);
}

// Data that needs everything teach() taught; decodes into `out`.
void decode_data(TemplateCache& cache, CollectFlows& out) {
  FlowRecord scratch;
  PacketBuilder v9;
  v9.v9_header(1000, kSecs, 3).begin_set(256).u32(1500).u32(3).end_set();
  ASSERT_EQ(decode_netflow(envelope_of(v9.bytes(), "192.0.2.1"), cache, scratch, out), DecodeStatus::ok);
  PacketBuilder ipfix;
  ipfix.ipfix_header(kSecs, 9).begin_set(300).u32(1).u8(3).raw("abc").u16(5).end_set().finish_ipfix();
  ASSERT_EQ(decode_netflow(envelope_of(ipfix.bytes(), "2001:db8::1"), cache, scratch, out), DecodeStatus::ok);
}

TEST(TemplateCache, SerializedTemplatesAndRatesDecodeAtOnceAfterARestart) {
  testing::TempDir dir("sluice-templates");
  MetricsRegistry m1;
  {
    TemplateCache first(m1);
    teach(first);
    EXPECT_EQ(first.template_count(), 5u);
    first.save(dir.path());
  }
  MetricsRegistry m2;
  TemplateCache second(m2);
  ASSERT_TRUE(second.load(dir.path()));
  EXPECT_EQ(second.template_count(), 5u);
  CollectFlows out;
  decode_data(second, out);
  ASSERT_EQ(out.flows.size(), 2u);
  EXPECT_EQ(out.flows[0].bytes, 1500u);
  EXPECT_EQ(out.flows[0].packets, 3u);
  EXPECT_EQ(out.flows[0].sampling_rate, 32u);
  EXPECT_EQ(ip6_to_string(out.flows[1].src_addr), "0.0.0.1");
  EXPECT_EQ(out.flows[1].sampling_rate, 1000u);
  EXPECT_EQ(second.init_time_ms(*ip6_parse("2001:db8::1"), 10, 9), std::uint64_t{kSecs - 50} * 1000);
  EXPECT_EQ(second.pending_sets(), 0u);
  // Serializing the restored cache gives the same bytes' worth of state.
  EXPECT_EQ(second.serialize().size(), testing::read_file(dir / TemplateCache::kFileName).size());
}

TEST(TemplateCache, RestoreRefusesDamagedInputAndChangesNothing) {
  MetricsRegistry m;
  TemplateCache source(m);
  teach(source);
  const std::string good = source.serialize();
  MetricsRegistry m2;
  TemplateCache target(m2);
  for (std::size_t cut = 0; cut < 5; ++cut) EXPECT_FALSE(target.restore(good.substr(0, cut))) << cut;
  EXPECT_FALSE(target.restore(good.substr(0, good.size() - 1)));  // the last record cut short
  EXPECT_FALSE(target.restore("SLTC\x02"));     // unknown format version
  EXPECT_FALSE(target.restore(good + "\x09"));  // unknown record tag
  EXPECT_EQ(target.template_count(), 0u);
  EXPECT_FALSE(target.restore("nonsense"));
  EXPECT_TRUE(target.restore(good));
  EXPECT_EQ(target.template_count(), 5u);
  MetricsRegistry m3;
  TemplateCache empty(m3);
  EXPECT_FALSE(empty.load(std::filesystem::path("/nonexistent-sluice-dir")));
}

TEST(TemplateCache, TemplatesAreBoundedPerExporterAndOverall) {
  MetricsRegistry m;
  TemplateCacheLimits limits;
  limits.max_templates_per_exporter = 3;
  limits.max_templates = 5;
  TemplateCache cache(m, limits);
  const Ip6 a = *ip6_parse("192.0.2.1"), b = *ip6_parse("192.0.2.2");
  for (std::uint16_t id = 256; id < 260; ++id) cache.add_template(a, 9, 0, id, make_template({{1, 4, 0}}), 0);
  EXPECT_EQ(cache.template_count(), 3u);
  EXPECT_EQ(cache.find(a, 9, 0, 256), nullptr);  // the stalest went
  EXPECT_NE(cache.find(a, 9, 0, 259), nullptr);
  for (std::uint16_t id = 256; id < 259; ++id) cache.add_template(b, 10, 1, id, make_template({{2, 4, 0}}), 0);
  EXPECT_EQ(cache.template_count(), 5u);
  EXPECT_EQ(m.counter_total("flow_templates_evicted_total"), 2u);
  EXPECT_NE(cache.find(b, 10, 1, 258), nullptr);
  EXPECT_EQ(cache.find(b, 9, 1, 258), nullptr);  // versions do not share templates
}

TEST(TemplateCache, HeldDataIsBoundedAndTheOldestGoesFirst) {
  MetricsRegistry m;
  TemplateCacheLimits limits;
  limits.pending_sets_per_exporter = 2;
  limits.pending_bytes_per_exporter = 1000;
  TemplateCache cache(m, limits);
  ExportContext ctx;
  ctx.exporter = *ip6_parse("192.0.2.1");
  ctx.version = 9;
  ctx.received_ns = 1'000'000'000'000ULL;
  const std::vector<std::uint8_t> body(100, 1), big(2000, 1);
  for (std::uint16_t id = 256; id < 259; ++id) EXPECT_TRUE(cache.hold(ctx, id, body));
  EXPECT_EQ(cache.pending_sets(), 2u);
  EXPECT_FALSE(cache.hold(ctx, 300, big));  // larger than an exporter may hold at all
  const auto counted = [&] {
    return m.counter_value("decode_errors_total", {{"kind", "netflow"}, {"reason", "template_unknown"}});
  };
  EXPECT_EQ(counted(), 1u);
  // 256 was dropped; 257 and 258 are released by their templates.
  EXPECT_TRUE(cache.add_template(ctx.exporter, 9, 0, 256, make_template({{1, 4, 0}}), ctx.received_ns).empty());
  EXPECT_EQ(cache.add_template(ctx.exporter, 9, 0, 258, make_template({{1, 4, 0}}), ctx.received_ns).size(), 1u);
  EXPECT_EQ(cache.pending_sets(), 1u);
  EXPECT_EQ(m.counter_total("flow_template_pending_sets_total"), 3u);
}

TEST(TemplateCache, PartitionsShareOneCacheSafely) {
  MetricsRegistry m;
  TemplateCache cache(m);
  std::vector<std::thread> threads;
  std::vector<std::uint64_t> bytes(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      FlowRecord scratch;
      CollectFlows out;
      for (std::uint32_t i = 0; i < 500; ++i) {
        PacketBuilder p;
        // Every thread redefines the same templates of the same exporter while decoding data.
        p.v9_header(1000, kSecs, static_cast<std::uint32_t>(t % 2)).begin_set(0);
        p.v9_template(static_cast<std::uint16_t>(256 + i % 4), {{1, 4}, {2, 4}}).end_set();
        p.begin_set(static_cast<std::uint16_t>(256 + i % 4)).u32(1).u32(1).u32(1).u32(1).end_set();
        EXPECT_EQ(decode_netflow(envelope_of(p.bytes()), cache, scratch, out), DecodeStatus::ok);
      }
      for (const auto& f : out.flows) bytes[static_cast<std::size_t>(t)] += f.bytes;
    });
  }
  for (auto& th : threads) th.join();
  for (std::uint64_t b : bytes) EXPECT_EQ(b, 1000u);
  EXPECT_EQ(cache.template_count(), 8u);
}

}  // namespace
}  // namespace sluice
