// Template sharing through the compacted Kafka topic, on librdkafka's mock cluster: what one outlet's
// store learns reaches the others (tailing and at start), withdrawals travel as tombstones, and a
// record that is not a template entry is counted and skipped.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "bus/kafka_bus.hpp"
#include "core/metrics.hpp"
#include "decoders/template_cache.hpp"
#include "fixtures/mock_kafka.hpp"
#include "fixtures/process.hpp"
#include "pipeline/template_store.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using testing::MockKafka;

constexpr const char* kTopic = "sluice-flow-templates";

FlowTemplate fields(std::initializer_list<std::uint16_t> elements) {
  FlowTemplate t;
  for (auto e : elements) t.fields.push_back({e, 4, 0});
  EXPECT_TRUE(t.finalize());
  return t;
}

// One outlet's template cache with its store (own data directory, shared topic).
struct Outlet {
  Outlet(const MockKafka& kafka, const testing::TempDir& dir, const std::string& name) : cache(metrics) {
    pipeline::TemplateStoreConfig c;
    c.dir = std::filesystem::path(dir.path()) / name;
    c.kafka = bus::KafkaConfig{};
    c.kafka->brokers = kafka.bootstrap();
    c.kafka->client_id = "sluice-" + name;
    c.topic = kTopic;
    c.catch_up_timeout = 20s;
    store = std::make_unique<pipeline::TemplateStore>(cache, c, metrics);
    store->start();
  }
  MetricsRegistry metrics;
  TemplateCache cache;
  std::unique_ptr<pipeline::TemplateStore> store;
};

TEST(TemplateTopic, OutletsShareTemplatesRatesAndWithdrawals) {
  MockKafka kafka(3, {{kTopic, 1}, {"sluice-flows", 8}});
  testing::TempDir dir("sluice-template-topic");
  const Ip6 exporter = *ip6_parse("192.0.2.1");

  Outlet a(kafka, dir, "a");
  Outlet b(kafka, dir, "b");
  a.cache.add_template(exporter, 9, 3, 256, fields({1, 2}), 0);
  a.cache.learn_sampling(exporter, 9, 3, std::nullopt, 512);
  // B learns it while running, from A's records.
  ASSERT_TRUE(eventually([&] { return b.cache.find(exporter, 9, 3, 256) != nullptr; }, 20s));
  EXPECT_TRUE(b.cache.find(exporter, 9, 3, 256)->same_layout(fields({1, 2})));
  ASSERT_TRUE(eventually([&] { return b.cache.sampling_rate(exporter, 9, 3, std::nullopt) == 512; }, 20s));
  // Redefinition travels too.
  a.cache.add_template(exporter, 9, 3, 256, fields({1, 2, 8}), 0);
  ASSERT_TRUE(eventually([&] { return b.cache.find(exporter, 9, 3, 256)->same_layout(fields({1, 2, 8})); }, 20s));

  // A new outlet knows everything as soon as its store has started.
  a.cache.add_template(exporter, 10, 7, 300, fields({1}), 0);
  ASSERT_TRUE(eventually([&] { return b.cache.template_count() == 2; }, 20s));
  {
    Outlet c(kafka, dir, "c");
    EXPECT_EQ(c.cache.template_count(), 2u);
    EXPECT_TRUE(c.cache.find(exporter, 9, 3, 256)->same_layout(fields({1, 2, 8})));
    EXPECT_EQ(c.cache.sampling_rate(exporter, 9, 3, std::nullopt), 512u);
    c.store->stop();
    EXPECT_EQ(c.metrics.counter_total("flow_template_topic_published_total"), 0u) << "it had nothing new to say";
  }

  // A withdrawal is a tombstone: B forgets the template as well.
  a.cache.withdraw(exporter, 10, 7, 300);
  ASSERT_TRUE(eventually([&] { return b.cache.find(exporter, 10, 7, 300) == nullptr; }, 20s));
  EXPECT_EQ(b.cache.template_count(), 1u);

  // Something else writes garbage to the topic: counted, skipped, nothing breaks.
  {
    MetricsRegistry m;
    bus::KafkaConfig config;
    config.brokers = kafka.bootstrap();
    bus::KafkaProducer producer(config, m);
    const std::string key = "template/192.0.2.1/9/3/256", junk = "\x01garbage";
    producer.produce(kTopic, std::as_bytes(std::span(key)), std::as_bytes(std::span(junk)));
    producer.produce(kTopic, {}, std::as_bytes(std::span(junk)));
    ASSERT_EQ(producer.flush(20s), 0u);
  }
  ASSERT_TRUE(eventually([&] { return b.metrics.counter_total("flow_template_topic_malformed_total") == 2; }, 20s));
  ASSERT_TRUE(eventually([&] { return a.metrics.counter_total("flow_template_topic_malformed_total") == 2; }, 20s));
  EXPECT_TRUE(b.cache.find(exporter, 9, 3, 256)->same_layout(fields({1, 2, 8})));

  a.store->stop();
  b.store->stop();
  // A published each change once (template, the domain's and the exporter's rate, redefinition, second
  // template, tombstone); B, which only listened, published nothing and did not echo A's records back.
  EXPECT_EQ(a.metrics.counter_total("flow_template_topic_published_total"), 6u);
  EXPECT_EQ(b.metrics.counter_total("flow_template_topic_published_total"), 0u);
  EXPECT_EQ(a.metrics.counter_total("flow_template_topic_publish_errors_total"), 0u);
  // Each outlet also wrote what it knows to its own data directory.
  MetricsRegistry m;
  TemplateCache from_file(m);
  ASSERT_TRUE(from_file.load(std::filesystem::path(dir.path()) / "b"));
  EXPECT_EQ(from_file.template_count(), 1u);
  EXPECT_EQ(from_file.sampling_rate(exporter, 9, 3, std::nullopt), 512u);
}

// Many exporters: a new outlet still reads the whole topic before consuming flows. Prints the time.
TEST(TemplateTopic, ANewOutletReadsTwentyThousandTemplatesAtStart) {
  MockKafka kafka(3, {{kTopic, 1}});
  testing::TempDir dir("sluice-template-topic-many");
  constexpr std::uint32_t kExporters = 4000, kPerExporter = 5;
  constexpr std::uint64_t kTemplates = std::uint64_t{kExporters} * kPerExporter;
  {
    Outlet a(kafka, dir, "a");
    for (std::uint32_t e = 0; e < kExporters; ++e) {
      for (std::uint16_t id = 256; id < 256 + kPerExporter; ++id) {
        a.cache.add_template(ip6_from_v4(0x0a000000 + e), 10, e, id, fields({1, 2, 8, 12, id}), 0);
      }
    }
    ASSERT_TRUE(eventually([&] { return a.metrics.counter_total("flow_template_topic_published_total") == kTemplates; }, 60s));
    a.store->stop();
    EXPECT_EQ(a.metrics.counter_total("flow_template_topic_publish_errors_total"), 0u);
    EXPECT_EQ(a.metrics.counter_total("kafka_produced_total"), kTemplates);
  }
  const auto started = std::chrono::steady_clock::now();
  Outlet c(kafka, dir, "c");
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  EXPECT_EQ(c.cache.template_count(), kTemplates);
  EXPECT_EQ(c.metrics.counter_total("flow_template_topic_received_total"), kTemplates);
  std::printf("template topic: a new outlet read %llu templates in %lld ms before consuming flows\n",
              static_cast<unsigned long long>(kTemplates), static_cast<long long>(took.count()));
  const auto saved = std::chrono::steady_clock::now();
  c.store->stop();  // writes them all to its data directory
  std::printf("template file: %llu templates saved in %lld ms (%ju bytes)\n", static_cast<unsigned long long>(kTemplates),
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - saved)
                                         .count()),
              static_cast<std::uintmax_t>(std::filesystem::file_size(std::filesystem::path(dir.path()) / "c" /
                                                                      TemplateCache::kFileName)));
  EXPECT_LT(took, 20s);
}

TEST(TemplateTopic, ATopicThatCannotBeCreatedLeavesTheDataDirectoryStoreWorking) {
  MockKafka kafka(3, {{"sluice-flows", 8}});  // no template topic, and the mock refuses CreateTopics
  testing::TempDir dir("sluice-template-topic-missing");
  MetricsRegistry metrics;
  TemplateCache cache(metrics);
  pipeline::TemplateStoreConfig c;
  c.dir = std::filesystem::path(dir.path()) / "flows";
  c.kafka = bus::KafkaConfig{};
  c.kafka->brokers = kafka.bootstrap();
  c.topic = kTopic;
  pipeline::TemplateStore store(cache, c, metrics);
  const auto started = std::chrono::steady_clock::now();
  store.start();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s) << "creating the topic is bounded apart";
  EXPECT_EQ(metrics.counter_total("flow_template_topic_unavailable_total"), 1u);
  cache.add_template(*ip6_parse("192.0.2.1"), 9, 0, 256, fields({1, 2}), 0);
  store.stop();
  MetricsRegistry m;
  TemplateCache from_file(m);
  ASSERT_TRUE(from_file.load(c.dir));
  EXPECT_EQ(from_file.template_count(), 1u);
}

}  // namespace
}  // namespace sluice
