// Template persistence: the cache's generation, per-entry round trip for the Kafka topic, the save
// debounce, the data-directory store, and the outlet.flows config keys that go with them.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>

#include "config/config.hpp"
#include "config/reader.hpp"
#include "core/metrics.hpp"
#include "decoders/netflow.hpp"
#include "fixtures/process.hpp"
#include "flow_packet_builder.hpp"
#include "pipeline/template_store.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using testing::CollectFlows;
using testing::envelope_of;
using testing::PacketBuilder;

constexpr std::uint32_t kSecs = 1'700'000'000;

// v9 from 192.0.2.1: template 256 (bytes, packets) and a sampling interval of 32 (options data);
// IPFIX from 2001:db8::1, domain 9: template 300 (bytes) and a selector's rate of 1000.
void teach(TemplateCache& cache) {
  FlowRecord scratch;
  CollectFlows out;
  PacketBuilder v9;
  v9.v9_header(1000, kSecs, 3).begin_set(0).v9_template(256, {{1, 4}, {2, 4}}).end_set();
  v9.begin_set(1).u16(257).u16(4).u16(4).u16(1).u16(4).u16(34).u16(4).end_set();
  v9.begin_set(257).u32(0).u32(32).end_set();
  ASSERT_EQ(decode_netflow(envelope_of(v9.bytes(), "192.0.2.1"), cache, scratch, out), DecodeStatus::ok);
  PacketBuilder ipfix;
  ipfix.ipfix_header(kSecs, 9).begin_set(2).u16(300).u16(2).u16(1).u16(8).u16(302).u16(2).end_set();
  ipfix.begin_set(3).u16(301).u16(2).u16(1).u16(302).u16(2).u16(34).u16(4).end_set();
  ipfix.begin_set(301).u16(5).u32(1000).end_set().finish_ipfix();
  ASSERT_EQ(decode_netflow(envelope_of(ipfix.bytes(), "2001:db8::1"), cache, scratch, out), DecodeStatus::ok);
}

// Data for teach()'s templates only: 1500 bytes / 3 packets at 1:32, then 777 bytes at 1:1000.
std::vector<FlowRecord> decode_data(TemplateCache& cache) {
  FlowRecord scratch;
  CollectFlows out;
  PacketBuilder v9;
  v9.v9_header(1000, kSecs, 3).begin_set(256).u32(1500).u32(3).end_set();
  EXPECT_EQ(decode_netflow(envelope_of(v9.bytes(), "192.0.2.1"), cache, scratch, out), DecodeStatus::ok);
  PacketBuilder ipfix;
  ipfix.ipfix_header(kSecs, 9).begin_set(300).u64(777).u16(5).end_set().finish_ipfix();
  EXPECT_EQ(decode_netflow(envelope_of(ipfix.bytes(), "2001:db8::1"), cache, scratch, out), DecodeStatus::ok);
  return out.flows;
}

void expect_taught_values(const std::vector<FlowRecord>& flows) {
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_EQ(flows[0].bytes, 1500u);
  EXPECT_EQ(flows[0].packets, 3u);
  EXPECT_EQ(flows[0].sampling_rate, 32u);
  EXPECT_EQ(flows[1].bytes, 777u);
  EXPECT_EQ(flows[1].sampling_rate, 1000u);
}

FlowTemplate one_field(std::uint16_t element) {
  FlowTemplate t;
  t.fields = {{element, 4, 0}};
  EXPECT_TRUE(t.finalize());
  return t;
}

TEST(TemplateGeneration, MovesOnlyWhenWhatIsSavedChanges) {
  MetricsRegistry m;
  TemplateCache cache(m);
  const Ip6 a = *ip6_parse("192.0.2.1");
  EXPECT_EQ(cache.generation(), 0u);
  cache.add_template(a, 9, 0, 256, one_field(1), 0);
  const auto learned = cache.generation();
  EXPECT_GT(learned, 0u);
  // Exporters resend their templates all the time: a refresh is no change.
  cache.add_template(a, 9, 0, 256, one_field(1), 0);
  EXPECT_EQ(cache.generation(), learned);
  cache.add_template(a, 9, 0, 256, one_field(2), 0);  // redefined
  const auto redefined = cache.generation();
  EXPECT_GT(redefined, learned);
  cache.learn_sampling(a, 9, 0, std::nullopt, 100);
  const auto sampled = cache.generation();
  EXPECT_GT(sampled, redefined);
  cache.learn_sampling(a, 9, 0, std::nullopt, 100);
  cache.learn_init_time(a, 10, 1, 5000);
  const auto init = cache.generation();
  EXPECT_GT(init, sampled);
  cache.learn_init_time(a, 10, 1, 5000);
  EXPECT_EQ(cache.generation(), init);
  cache.learn_sampling(a, 9, 0, 7, 64);
  EXPECT_GT(cache.generation(), init);
  const auto before_withdraw = cache.generation();
  cache.withdraw(a, 9, 0, 999);  // unknown: nothing changes
  EXPECT_EQ(cache.generation(), before_withdraw);
  cache.withdraw(a, 9, 0, 256);
  EXPECT_GT(cache.generation(), before_withdraw);
}

TEST(SaveDebounce, WritesTheFirstChangeAtOnceThenAtMostOncePerInterval) {
  using Clock = pipeline::SaveDebounce::Clock;
  pipeline::SaveDebounce d(2000ms);
  const auto t0 = Clock::now();
  d.reset(5);  // loaded from the file at generation 5
  EXPECT_FALSE(d.due(5, t0));
  EXPECT_TRUE(d.due(6, t0));
  d.written(6, t0);
  EXPECT_FALSE(d.due(6, t0 + 10s));
  EXPECT_FALSE(d.due(7, t0 + 1999ms));
  EXPECT_TRUE(d.due(9, t0 + 2000ms));
  d.attempted(t0 + 2000ms);  // the write failed: retried one interval later, still at generation 9
  EXPECT_EQ(d.written_generation(), 6u);
  EXPECT_FALSE(d.due(9, t0 + 3s));
  EXPECT_TRUE(d.due(9, t0 + 4s));
}

TEST(TemplateEntries, RoundTripEntryByEntryDecodesTheSameFlows) {
  MetricsRegistry m1, m2;
  TemplateCache source(m1);
  teach(source);
  const auto entries = source.entries();
  // Two templates and one options template per exporter, a domain-wide rate, an exporter rate, a
  // selector rate.
  ASSERT_EQ(entries.size(), 7u);
  std::set<std::string> keys;
  for (const auto& e : entries) keys.insert(e.key);
  EXPECT_TRUE(keys.contains("template/192.0.2.1/9/3/256"));
  EXPECT_TRUE(keys.contains("template/2001:db8::1/10/9/300"));
  EXPECT_TRUE(keys.contains("sampler/192.0.2.1/9/3/*"));
  EXPECT_TRUE(keys.contains("rate/192.0.2.1"));
  EXPECT_TRUE(keys.contains("sampler/2001:db8::1/10/9/5"));

  TemplateCache target(m2);
  for (const auto& e : entries) EXPECT_EQ(target.restore_entry(e.key, e.value), TemplateCache::EntryResult::applied) << e.key;
  EXPECT_EQ(target.template_count(), source.template_count());
  EXPECT_EQ(target.serialize().size(), source.serialize().size());
  expect_taught_values(decode_data(target));
  // Applying the same entries again changes nothing.
  const auto generation = target.generation();
  for (const auto& e : entries) target.restore_entry(e.key, e.value);
  EXPECT_EQ(target.generation(), generation);
  // A tombstone forgets the template: its data waits again.
  EXPECT_EQ(target.restore_entry("template/192.0.2.1/9/3/256", ""), TemplateCache::EntryResult::applied);
  EXPECT_EQ(target.find(*ip6_parse("192.0.2.1"), 9, 3, 256), nullptr);
  EXPECT_GT(target.generation(), generation);
  EXPECT_EQ(target.template_count(), source.template_count() - 1);
}

TEST(TemplateEntries, MalformedEntriesAreRefusedAndChangeNothing) {
  MetricsRegistry m1, m2;
  TemplateCache source(m1);
  teach(source);
  const auto entries = source.entries();
  const auto tpl = *std::find_if(entries.begin(), entries.end(),
                                 [](const auto& e) { return e.key == "template/192.0.2.1/9/3/256"; });
  TemplateCache target(m2);
  using R = TemplateCache::EntryResult;
  for (std::size_t cut = 1; cut < tpl.value.size(); ++cut) {
    EXPECT_EQ(target.restore_entry(tpl.key, tpl.value.substr(0, cut)), R::malformed) << cut;
  }
  EXPECT_EQ(target.restore_entry(tpl.key, tpl.value + "x"), R::malformed);           // trailing bytes
  std::string unknown_format = tpl.value;
  unknown_format[0] = 2;
  EXPECT_EQ(target.restore_entry(tpl.key, unknown_format), R::malformed);
  EXPECT_EQ(target.restore_entry("template/192.0.2.1/9/3/257", tpl.value), R::malformed);  // key of another entry
  EXPECT_EQ(target.restore_entry("template/192.0.2.2/9/3/256", tpl.value), R::malformed);
  EXPECT_EQ(target.restore_entry("", tpl.value), R::malformed);
  std::string lying = tpl.value;
  lying[lying.size() - 17] = 3;  // three fields announced, two present
  EXPECT_EQ(target.restore_entry(tpl.key, lying), R::malformed);
  // Tombstones need a well-formed key.
  for (const char* key : {"", "template", "template/not-an-ip/9/3/256", "template/192.0.2.1/9/3/65536",
                          "template/192.0.2.1/9/3", "template/192.0.2.1/9/3/256/1", "colour/192.0.2.1",
                          "sampler/192.0.2.1/9/3/x", "rate/192.0.2.1/9", "init/192.0.2.1/9/-1"}) {
    EXPECT_EQ(target.restore_entry(key, ""), R::malformed) << key;
  }
  EXPECT_EQ(target.template_count(), 0u);
  EXPECT_EQ(target.generation(), 0u);
  EXPECT_EQ(target.restore_entry(tpl.key, tpl.value), R::applied);
  EXPECT_EQ(target.template_count(), 1u);
}

pipeline::TemplateStoreConfig file_store(const std::filesystem::path& dir, std::chrono::milliseconds interval) {
  pipeline::TemplateStoreConfig c;
  c.dir = dir;
  c.save_interval = interval;
  return c;
}

TEST(TemplateStore, SavesChangesDebouncedAndOnStopThenLoadsThemAtStart) {
  testing::TempDir dir("sluice-template-store");
  const auto flows_dir = std::filesystem::path(dir.path()) / "flows";
  const auto file = flows_dir / TemplateCache::kFileName;
  {
    MetricsRegistry m;
    TemplateCache cache(m);
    pipeline::TemplateStore store(cache, file_store(flows_dir, 60s), m);
    store.start();  // nothing to load yet
    EXPECT_EQ(cache.template_count(), 0u);
    teach(cache);
    // The first change is written at once...
    ASSERT_TRUE(testing::eventually([&] { return std::filesystem::exists(file); }, 10s));
    EXPECT_EQ(m.counter_total("flow_template_saves_total"), 1u);
    // ...the next ones wait for the interval (60 s here), or for stop.
    cache.add_template(*ip6_parse("192.0.2.7"), 9, 0, 400, one_field(1), 0);
    EXPECT_EQ(m.counter_total("flow_template_saves_total"), 1u);
    store.stop();
    EXPECT_EQ(m.counter_total("flow_template_saves_total"), 2u);
    EXPECT_EQ(m.counter_total("flow_template_save_errors_total"), 0u);
  }
  MetricsRegistry m;
  TemplateCache cache(m);
  pipeline::TemplateStore store(cache, file_store(flows_dir, 60s), m);
  store.start();
  EXPECT_EQ(cache.template_count(), 5u);
  EXPECT_NE(cache.find(*ip6_parse("192.0.2.7"), 9, 0, 400), nullptr);
  expect_taught_values(decode_data(cache));
  store.stop();
  EXPECT_EQ(m.counter_total("flow_template_saves_total"), 0u) << "nothing changed since the load";
}

TEST(TemplateStore, AFailingSaveIsCountedAndNeverThrows) {
  testing::TempDir dir("sluice-template-store-fail");
  testing::write_file(dir / "flows", "a file where the directory should be");
  MetricsRegistry m;
  TemplateCache cache(m);
  pipeline::TemplateStore store(cache, file_store(std::filesystem::path(dir.path()) / "flows", 100ms), m);
  store.start();
  teach(cache);
  ASSERT_TRUE(testing::eventually([&] { return m.counter_total("flow_template_save_errors_total") >= 2; }, 10s));
  store.stop();
  EXPECT_EQ(m.counter_total("flow_template_saves_total"), 0u);
}

std::vector<std::string> errors_of(const std::string& yaml) {
  try {
    config::parse_config(yaml);
  } catch (const config::ConfigError& e) {
    return e.errors();
  }
  return {};
}

constexpr const char* kOutletHead = "outlet:\n  chdb: {path: /tmp/x}\n  flows:\n";

TEST(FlowsConfig, SflowVxlanAndTemplateKeys) {
  const auto defaults = config::parse_config(std::string(kOutletHead) + "    optional_columns: []\n");
  EXPECT_FALSE(defaults.outlet->flows.sflow.decode_vxlan);
  EXPECT_EQ(defaults.outlet->flows.sflow.vxlan_port, 4789);
  EXPECT_EQ(defaults.outlet->flows.templates.save_interval, 2000ms);
  EXPECT_EQ(defaults.outlet->flows.templates.catch_up_timeout, 10'000ms);
  const auto set = config::parse_config(std::string(kOutletHead) +
                                        "    sflow: {decode_vxlan: true, vxlan_port: 8472}\n"
                                        "    templates: {save_interval: 500ms, catch_up_timeout: 30s}\n");
  EXPECT_TRUE(set.outlet->flows.sflow.decode_vxlan);
  EXPECT_EQ(set.outlet->flows.sflow.vxlan_port, 8472);
  EXPECT_EQ(set.outlet->flows.templates.save_interval, 500ms);
  EXPECT_EQ(set.outlet->flows.templates.catch_up_timeout, 30'000ms);
  const auto errors = errors_of(std::string(kOutletHead) +
                                "    sflow: {decode_vxlan: maybe, vxlan_port: 70000, vxlan: true}\n"
                                "    templates: {save_interval: soon}\n");
  ASSERT_EQ(errors.size(), 4u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "outlet.flows.sflow.decode_vxlan: expected true or false, got 'maybe'");
  EXPECT_EQ(errors[1], "outlet.flows.sflow.vxlan_port: expected an integer between 1 and 65535, got 70000");
  EXPECT_EQ(errors[2].rfind("outlet.flows.sflow.vxlan: unknown key", 0), 0u) << errors[2];
  EXPECT_EQ(errors[3].rfind("outlet.flows.templates.save_interval: expected a duration", 0), 0u) << errors[3];
}

}  // namespace
}  // namespace sluice
