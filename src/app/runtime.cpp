#include "app/runtime.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "admin/admin_server.hpp"
#include "app/log_pipeline.hpp"
#include "admin/flow_tail.hpp"
#include "coord/job_watcher.hpp"
#include "coord/registration.hpp"
#include "bus/kafka_bus.hpp"
#include "bus/memory_bus.hpp"
#include "pipeline/batch_sink.hpp"
#include "pipeline/consumer_job.hpp"
#include "pipeline/jobs/job_driver.hpp"
#include "pipeline/jobs/job_manager.hpp"
#include "pipeline/flow_batch_builder.hpp"
#include "pipeline/metric_batch_builder.hpp"
#include "pipeline/template_store.hpp"
#include "sinks/chdb_store.hpp"
#include "sinks/dead_letters.hpp"
#include "sinks/elasticsearch_sink.hpp"
#include "sinks/logs_table.hpp"
#include "sinks/clickhouse_http_store.hpp"
#include "app/flow_schema_config.hpp"
#include "sinks/flow_tables.hpp"
#include "sinks/metric_router.hpp"
#include "sources/falcon_receivers.hpp"
#include "sources/graphite_receiver.hpp"
#include "sources/otlp_http_receiver.hpp"
#include "pipeline/span_batch_builder.hpp"
#include "sinks/spans_table.hpp"
#include "sources/udp_source.hpp"
#include "transforms/enricher.hpp"
#include "transforms/metadata/directory.hpp"

namespace sluice::app {

struct Runtime::Parts {
  std::unique_ptr<admin::FlowTail> tail;
  std::unique_ptr<admin::AdminServer> admin;
  // Before the producers: a Kafka producer reports the deliveries it still holds when destroyed, and
  // the log inlet must outlive those reports.
  std::unique_ptr<LogInlet> log_inlet;
  std::unique_ptr<bus::MemoryBus> memory_bus;
  std::unique_ptr<bus::KafkaProducer> kafka_producer;
  bus::Producer* producer = nullptr;
  std::vector<std::unique_ptr<UdpSource>> sources;
  std::unique_ptr<FalconHttpReceiver> falcon_http;
  std::unique_ptr<FalconRpcReceiver> falcon_rpc;
  std::unique_ptr<FalconSocketReceiver> falcon_socket;
  std::unique_ptr<GraphiteReceiver> graphite;
  std::unique_ptr<OtlpHttpReceiver> otlp;

  std::unique_ptr<sinks::Store> store;
  FlowSchema schema;
  std::unique_ptr<transforms::metadata::MetadataDirectory> metadata;
  std::unique_ptr<transforms::Enricher> enricher;
  std::unique_ptr<pipeline::FlowDecoding> flow_decoding;
  std::unique_ptr<pipeline::TemplateStore> template_store;  // after flow_decoding: it holds its cache
  std::unique_ptr<pipeline::BatchSink> sink;
  // The built-in pipelines, run by the same drivers as configured jobs; started last, stopped first.
  std::vector<std::unique_ptr<pipeline::jobs::JobDriver>> builtin_jobs;
  std::unique_ptr<pipeline::jobs::JobManager> job_manager;
  std::unique_ptr<coord::JobWatcher> job_watcher;
  std::unique_ptr<coord::InstanceRegistration> registration;
  std::unique_ptr<pipeline::MetricDecoding> metric_decoding;
  std::unique_ptr<sinks::MetricRouter> metric_router;
  std::unique_ptr<LogOutlet> log_outlet;
  std::unique_ptr<sinks::DeadLetters> dead_letters;
  std::unique_ptr<sinks::ElasticsearchSink> elasticsearch;
  std::unique_ptr<pipeline::BatchSink> log_sink;
  std::unique_ptr<pipeline::SpanDecoding> span_decoding;  // shared by the spans pipeline and spans jobs
  std::unique_ptr<pipeline::BatchSink> span_sink;
  std::atomic<bool> started{false};
};

Runtime::Runtime(config::Config config, Role role)
    : config_(std::move(config)), role_(role), parts_(std::make_unique<Parts>()) {}

Runtime::~Runtime() {
  if (parts_ && parts_->started.load()) stop();
}

static bus::KafkaConfig kafka_config(const config::KafkaBusConfig& k) {
  bus::KafkaConfig c;
  c.brokers = k.brokers;
  c.topic_partitions = k.partitions;
  c.topic_replication = k.replication;
  c.consumer_group = k.consumer_group;
  c.session_timeout_ms = static_cast<int>(k.session_timeout.count());
  c.linger_ms = k.linger_ms;
  c.producer_queue_bytes = k.producer_queue_bytes;
  c.producer_properties = k.producer_properties;
  c.consumer_properties = k.consumer_properties;
  return c;
}

void Runtime::start_store() {
  const auto& out = *config_.outlet;
  auto backoff = std::chrono::milliseconds(500);
  for (;;) {
    try {
      if (out.chdb) {
        sinks::ChdbConfig c;
        c.path = out.chdb->path;
        c.library = out.chdb->library;
        c.database = out.chdb->database;
        parts_->store = std::make_unique<sinks::ChdbStore>(c, metrics_);
      } else {
        sinks::ClickHouseHttpConfig c;
        c.url = out.clickhouse->url;
        c.database = out.clickhouse->database;
        c.user = out.clickhouse->user;
        c.password = out.clickhouse->password;
        c.compression = out.clickhouse->compression == "none"  ? sinks::ClickHouseHttpConfig::Compression::none
                        : out.clickhouse->compression == "zstd" ? sinks::ClickHouseHttpConfig::Compression::zstd
                                                                : sinks::ClickHouseHttpConfig::Compression::lz4;
        c.pool_size = out.clickhouse->pool_size;
        c.connect_timeout_ms = static_cast<int>(out.clickhouse->connect_timeout.count());
        c.request_timeout_ms = static_cast<int>(out.clickhouse->request_timeout.count());
        parts_->store = std::make_unique<sinks::ClickHouseHttpStore>(c, metrics_);
      }
      parts_->schema = FlowSchema::make(parts_->store->dialect(), out.flows.optional_columns);
      sinks::ensure_flow_tables(*parts_->store, parts_->schema, flow_tables_config(out));
      spdlog::info("store: {} ready (database {}, {} dialect)", parts_->store->describe(), parts_->store->database(),
                   parts_->store->dialect() == ClickHouseDialect::modern ? "modern" : "legacy");
      return;
    } catch (const sinks::StoreError& e) {
      if (!e.retryable() || stop_requested()) throw std::runtime_error(std::string("store: ") + e.what());
      spdlog::warn("store: not reachable yet ({}); retrying in {} ms", e.what(), backoff.count());
      parts_->store.reset();
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(10'000));
    }
  }
}

void Runtime::start_outlet() {
  const auto& out = *config_.outlet;
  // Before the store, whose start may wait for a server: a missing database file fails at once.
  if (out.flows.enrich.any() || config_.metadata) {
    // Names come from the metadata directory (static entries, then SNMP), never waited for.
    if (config_.metadata) {
      parts_->metadata = std::make_unique<transforms::metadata::MetadataDirectory>(*config_.metadata, metrics_);
      parts_->metadata->start();
    }
    parts_->enricher = std::make_unique<transforms::Enricher>(out.flows.enrich, parts_->metadata.get(), metrics_);
  }
  start_store();
  parts_->flow_decoding = std::make_unique<pipeline::FlowDecoding>(metrics_, parts_->schema, out.flows.default_sampling_rate,
                                                                   parts_->tail.get(), parts_->enricher.get());
  parts_->flow_decoding->sflow_options = SflowOptions{out.flows.sflow.decode_vxlan, out.flows.sflow.vxlan_port};
  // Templates are known before the first flow is consumed: a restarted or new outlet decodes at once.
  pipeline::TemplateStoreConfig templates;
  templates.dir = std::filesystem::path(config_.data_dir) / "flows";
  templates.save_interval = out.flows.templates.save_interval;
  templates.catch_up_timeout = out.flows.templates.catch_up_timeout;
  if (config_.bus.kafka) {
    templates.kafka = kafka_config(*config_.bus.kafka);
    templates.topic = config_.bus.kafka->topic_prefix + "flow-templates";
  }
  parts_->template_store =
      std::make_unique<pipeline::TemplateStore>(parts_->flow_decoding->templates, std::move(templates), metrics_);
  parts_->template_store->start();
  pipeline::BatchSinkPolicy policy;
  policy.parallel_inserts = out.sink.parallel_inserts;
  policy.max_pending_batches = out.sink.max_pending_batches;
  policy.max_pending_bytes = out.sink.max_pending_bytes;
  policy.retry_initial = out.sink.retry_initial;
  policy.retry_max = out.sink.retry_max;
  policy.dead_letter_dir = out.dead_letter_dir;
  parts_->sink = std::make_unique<pipeline::BatchSink>("flows", *parts_->store, policy, metrics_);

  auto* decoding = parts_->flow_decoding.get();
  add_builtin_job("flows", "", {config_.topic_for(SourceKind::netflow)}, out.workers,
                  [decoding](const bus::PartitionRef&) { return std::make_unique<pipeline::FlowBatchBuilder>(*decoding); },
                  *parts_->sink);
  if (out.metrics) start_metrics(policy);
  if (out.logs) start_logs(policy);
  parts_->span_decoding = std::make_unique<pipeline::SpanDecoding>(metrics_);
  if (out.spans) start_spans(policy);
  start_jobs();
  for (auto& job : parts_->builtin_jobs) job->start();
}

void Runtime::start_spans(const pipeline::BatchSinkPolicy& policy) {
  const auto& spans = *config_.outlet->spans;
  sinks::ensure_spans_tables(*parts_->store, spans.table, spans.ttl);
  parts_->span_sink = std::make_unique<pipeline::BatchSink>("spans", *parts_->store, policy, metrics_);
  // One built-in job reads the inlet's OTLP topic and the Jaeger topics, each partition in its topic's format.
  std::map<std::string, pipeline::SpanFormat> formats{{config_.topic_for(SourceKind::span), pipeline::SpanFormat::otlp_envelope}};
  for (const auto& t : spans.jaeger_proto_topics) formats[t] = pipeline::SpanFormat::jaeger_proto;
  for (const auto& t : spans.jaeger_json_topics) formats[t] = pipeline::SpanFormat::jaeger_json;
  std::vector<std::string> topics;
  for (const auto& [topic, format] : formats) topics.push_back(topic);
  if (!config_.bus.kafka && topics.size() > 1) {
    throw std::runtime_error("outlet.spans: Jaeger topics are Kafka topics; configure bus.kafka, or remove "
                             "jaeger_proto_topics and jaeger_json_topics");
  }
  add_builtin_job("spans", "-spans", topics, 1,
                  pipeline::span_builders(*parts_->span_decoding, std::move(formats), pipeline::SpanFormat::otlp_envelope,
                                          parts_->store->dialect(), spans.table),
                  *parts_->span_sink);
}

void Runtime::start_jobs() {
  const auto& out = *config_.outlet;
  pipeline::jobs::JobEnvironment env;
  env.store = parts_->store.get();
  if (config_.bus.kafka) env.kafka = kafka_config(*config_.bus.kafka);
  env.dead_letter_root = out.dead_letter_dir + "/jobs";
  env.commit_interval = out.commit_interval;
  env.drain_timeout = config_.shutdown_timeout / 2;
  env.parallel_inserts = out.sink.parallel_inserts;
  auto* decoding = parts_->span_decoding.get();
  const auto dialect = parts_->store->dialect();
  env.span_builders = [decoding, dialect](pipeline::jobs::SpanEncoding encoding, const std::string& table,
                                          pipeline::jobs::ProcessorContext&) {
    using pipeline::jobs::SpanEncoding;
    const auto format = encoding == SpanEncoding::jaeger_proto  ? pipeline::SpanFormat::jaeger_proto
                        : encoding == SpanEncoding::jaeger_json ? pipeline::SpanFormat::jaeger_json
                        : encoding == SpanEncoding::otlp_proto  ? pipeline::SpanFormat::otlp_proto
                                                                : pipeline::SpanFormat::otlp_json;
    return pipeline::span_builders(*decoding, format, dialect, table);
  };
  auto* store = parts_->store.get();
  env.ensure_spans_tables = [store](const std::string& table) { sinks::ensure_spans_tables(*store, table); };
  parts_->job_manager = std::make_unique<pipeline::jobs::JobManager>(std::move(env), metrics_);
  parts_->job_manager->set_config_jobs(config_.jobs);
  parts_->job_manager->start();
  // The configured jobs run (their tables exist), or are listed with why they cannot start, before the
  // instance says it has started.
  constexpr auto kJobsStartWait = std::chrono::seconds(30);
  if (!config_.jobs.empty() && !parts_->job_manager->wait_applied(kJobsStartWait)) {
    spdlog::warn("jobs: the configured jobs are not all started after {} s (is the store slow to answer?); "
                 "starting goes on and /api/v0/jobs shows each job's state",
                 kJobsStartWait.count());
  }
}

void Runtime::start_coordination() {
  const auto& c = *config_.coordination;
  if (c.register_instance) {
    // The bound port, in case the configured one was 0.
    auto listen = config_.admin_listen;
    if (const auto colon = listen.rfind(':'); colon != std::string::npos) {
      listen = listen.substr(0, colon + 1) + std::to_string(parts_->admin->port());
    }
    parts_->registration =
        std::make_unique<coord::InstanceRegistration>(coord::registration_config(c, listen), c.etcd, metrics_);
    parts_->registration->set_jobs(running_job_names());
    parts_->registration->start();
  }
  if (c.watch_jobs && parts_->job_manager) {
    auto* manager = parts_->job_manager.get();
    parts_->job_watcher = std::make_unique<coord::JobWatcher>(
        coord::job_watcher_config(c), c.etcd, metrics_,
        [manager](const coord::JobDefinitions& definitions) { manager->set_etcd_jobs(definitions); });
    parts_->job_watcher->start();
  }
  if (parts_->job_manager && parts_->registration) {
    auto* registration = parts_->registration.get();
    parts_->job_manager->on_change([this, registration](std::vector<std::string>) {
      registration->set_jobs(running_job_names());
    });
  }
}

std::vector<std::string> Runtime::running_job_names() const {
  std::vector<std::string> names;
  for (const auto& job : parts_->builtin_jobs) names.push_back(job->name());
  if (parts_->job_manager) {
    for (auto& n : parts_->job_manager->names()) names.push_back(std::move(n));
  }
  return names;
}

void Runtime::add_builtin_job(const std::string& name, const std::string& group_suffix,
                              const std::vector<std::string>& topics, int processors,
                              pipeline::BatchBuilderFactory builders, pipeline::BatchTarget& target) {
  pipeline::jobs::JobPlan plan;
  plan.name = name;
  plan.kind = "built-in";
  plan.topics = topics;
  plan.processors = processors;
  plan.consumer_job = job_config(name);
  if (config_.bus.kafka) {
    // Its own group per pipeline and destination: a rebalance of one never pauses another, and each
    // acknowledges only what it stored.
    auto kc = kafka_config(*config_.bus.kafka);
    kc.consumer_group += group_suffix;
    plan.group = kc.consumer_group;
    plan.make_consumer = [this, kc, topics](int, int) -> std::unique_ptr<bus::Consumer> {
      return std::make_unique<bus::KafkaConsumer>(kc, topics, metrics_);
    };
  } else {
    plan.group = "memory";
    plan.make_consumer = [this, topics](int index, int count) {
      return parts_->memory_bus->make_consumer(index, count, topics);
    };
  }
  plan.make_parts = [builders = std::move(builders), &target](int, pipeline::jobs::ProcessorContext&) {
    pipeline::jobs::ProcessorParts parts;
    parts.builders = builders;
    parts.shared_target = &target;
    return parts;
  };
  parts_->builtin_jobs.push_back(std::make_unique<pipeline::jobs::JobDriver>(std::move(plan), metrics_));
}

pipeline::ConsumerJobConfig Runtime::job_config(const std::string& name) const {
  const auto& out = *config_.outlet;
  pipeline::ConsumerJobConfig jc;
  jc.name = name;
  jc.max_rows = out.batch.max_rows;
  jc.max_bytes = out.batch.max_bytes;
  jc.max_delay = out.batch.max_delay;
  jc.commit_interval = out.commit_interval;
  jc.revoke_timeout = config_.shutdown_timeout / 2;
  return jc;
}

void Runtime::start_metrics(const pipeline::BatchSinkPolicy& policy) {
  const auto& out = *config_.outlet;
  parts_->metric_decoding = std::make_unique<pipeline::MetricDecoding>(metrics_);
  parts_->metric_router = std::make_unique<sinks::MetricRouter>(
      *out.metrics, std::filesystem::path(config_.data_dir) / "spool", parts_->store.get(), policy, metrics_);
  parts_->metric_router->start();
  auto* decoding = parts_->metric_decoding.get();
  add_builtin_job("metrics", "-metrics", {config_.topic_for(SourceKind::falcon)}, 1,
                  [decoding](const bus::PartitionRef&) { return std::make_unique<pipeline::MetricBatchBuilder>(*decoding); },
                  *parts_->metric_router);
}

void Runtime::start_logs(const pipeline::BatchSinkPolicy& policy) {
  const auto& logs = *config_.outlet->logs;
  if (!config_.bus.kafka && logs.store && logs.elasticsearch) {
    throw std::runtime_error(
        "outlet.logs: the memory bus feeds one log destination; set outlet.logs.store: false to index into "
        "Elasticsearch only, or use bus.kafka, where each destination consumes the logs topic on its own");
  }
  parts_->log_outlet = std::make_unique<LogOutlet>(logs, metrics_);
  const std::string topic = config_.topic_for(SourceKind::log);
  const auto add_job = [&](const std::string& name, const std::string& group_suffix,
                           pipeline::BatchBuilderFactory builders, pipeline::BatchTarget& target) {
    add_builtin_job(name, group_suffix, {topic}, 1, std::move(builders), target);
  };
  if (logs.store) {
    sinks::ensure_logs_table(*parts_->store, logs.table, logs.ttl);
    parts_->log_sink = std::make_unique<pipeline::BatchSink>("logs", *parts_->store, policy, metrics_);
    add_job("logs", "-logs", parts_->log_outlet->table_builders(parts_->store->dialect()), *parts_->log_sink);
  }
  if (logs.elasticsearch) {
    const auto& es = *logs.elasticsearch;
    parts_->dead_letters = std::make_unique<sinks::DeadLetters>(
        es.dead_letter_dir.empty() ? config_.outlet->dead_letter_dir + "/elasticsearch" : es.dead_letter_dir, metrics_,
        es.dead_letter_max_bytes);
    parts_->elasticsearch =
        std::make_unique<sinks::ElasticsearchSink>(*logs.elasticsearch, *parts_->dead_letters, metrics_);
    add_job("logs-elasticsearch", "-logs-elasticsearch", parts_->log_outlet->elasticsearch_builders(),
            *parts_->elasticsearch);
  }
}

void Runtime::start_inlet() {
  const auto add = [&](const std::optional<config::UdpListener>& l, const char* name, SourceKind kind) {
    if (!l) return;
    UdpSourceConfig c;
    c.name = name;
    c.listen = l->listen;
    c.kind = kind;
    c.workers = l->workers;
    c.receive_buffer = static_cast<int>(std::min<std::uint64_t>(l->receive_buffer, 1u << 30));
    c.batch = l->batch;
    c.topic = config_.topic_for(kind);
    parts_->sources.push_back(std::make_unique<UdpSource>(c, *parts_->producer, metrics_));
    parts_->sources.back()->start();
  };
  add(config_.inlet.netflow, "netflow", SourceKind::netflow);
  add(config_.inlet.sflow, "sflow", SourceKind::sflow);

  const auto tcp = [&](const config::TcpMetricListener& l, SourceKind kind) {
    TcpReceiverConfig c;
    c.listen = l.listen;
    c.max_message = l.max_message;
    c.idle_timeout = l.idle_timeout;
    c.workers = l.workers;
    c.max_connections = l.max_connections;
    c.topic = config_.topic_for(kind);
    return c;
  };
  if (const auto& f = config_.inlet.falcon) {
    if (f->http) {
      FalconHttpConfig c;
      c.listen = f->http->listen;
      c.max_body = f->http->max_body;
      c.idle_timeout = f->http->idle_timeout;
      c.threads = f->http->threads;
      c.topic = config_.topic_for(SourceKind::falcon);
      parts_->falcon_http = std::make_unique<FalconHttpReceiver>(c, *parts_->producer, metrics_);
      parts_->falcon_http->start();
    }
    if (f->rpc) {
      parts_->falcon_rpc = std::make_unique<FalconRpcReceiver>(tcp(*f->rpc, SourceKind::falcon), *parts_->producer, metrics_);
      parts_->falcon_rpc->start();
    }
    if (f->socket) {
      parts_->falcon_socket =
          std::make_unique<FalconSocketReceiver>(tcp(*f->socket, SourceKind::falcon), *parts_->producer, metrics_);
      parts_->falcon_socket->start();
    }
  }
  if (const auto& g = config_.inlet.graphite) {
    parts_->graphite = std::make_unique<GraphiteReceiver>(tcp(*g, SourceKind::graphite), *parts_->producer, metrics_);
    parts_->graphite->start();
  }
  if (const auto& o = config_.inlet.otlp) {
    parts_->otlp = std::make_unique<OtlpHttpReceiver>(
        OtlpHttpConfig{o->listen, o->max_body, o->idle_timeout, o->threads, config_.topic_for(SourceKind::span)},
        *parts_->producer, metrics_);
    parts_->otlp->start();
  }
  if (const auto& f = config_.inlet.files) {
    parts_->log_inlet = std::make_unique<LogInlet>(*f, config_.data_dir, config_.topic_for(SourceKind::log),
                                                   *parts_->producer, metrics_);
    parts_->log_inlet->start();
  }
}

void Runtime::start() {
  std::filesystem::create_directories(config_.data_dir);
  parts_->tail = std::make_unique<admin::FlowTail>(metrics_);
  const bool with_inlet = role_ != Role::outlet;
  const bool with_outlet = role_ != Role::inlet;
  if (with_outlet && !config_.outlet) throw std::runtime_error("outlet: this role needs an `outlet:` section with a store");
  if (role_ != Role::all_in_one && !config_.bus.kafka) {
    throw std::runtime_error("bus.kafka: `sluice inlet` and `sluice outlet` talk through Kafka; configure bus.kafka.brokers");
  }

  if (config_.bus.kafka) {
    std::vector<std::string> topics;
    if (config_.inlet.netflow || config_.inlet.sflow || (config_.outlet && role_ != Role::inlet)) {
      topics.push_back(config_.topic_for(SourceKind::netflow));
    }
    if (config_.inlet.falcon || config_.inlet.graphite || (config_.outlet && config_.outlet->metrics)) {
      topics.push_back(config_.topic_for(SourceKind::falcon));
    }
    if (config_.inlet.files || (config_.outlet && config_.outlet->logs)) {
      topics.push_back(config_.topic_for(SourceKind::log));
    }
    if (config_.inlet.otlp || (config_.outlet && config_.outlet->spans)) {
      topics.push_back(config_.topic_for(SourceKind::span));
    }
    bus::ensure_topics(kafka_config(*config_.bus.kafka), topics, metrics_);
  } else {
    parts_->memory_bus = std::make_unique<bus::MemoryBus>(
        bus::MemoryBusConfig{config_.bus.memory.partitions, config_.bus.memory.max_bytes,
                             std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count()},
        metrics_);
  }
  if (with_inlet) {
    if (config_.bus.kafka) {
      parts_->kafka_producer = std::make_unique<bus::KafkaProducer>(kafka_config(*config_.bus.kafka), metrics_);
      parts_->producer = parts_->kafka_producer.get();
    } else {
      parts_->producer = &parts_->memory_bus->producer();
    }
  }

  admin::AdminDeps deps{metrics_, [this] { return status(); }, nullptr, parts_->tail.get(),
                        [this] { return parts_->started.load() && !stop_requested(); }};
  deps.query = [this](std::string_view sql, std::string_view format) -> sinks::QueryResult {
    if (!parts_->store) throw sinks::StoreError("this instance has no store (it is an inlet)", true);
    return parts_->store->query(sql, format);
  };
  deps.jobs = [this] { return jobs_status(); };
  deps.job = [this](std::string_view name) -> std::optional<nlohmann::json> {
    for (auto& j : jobs_status()) {
      if (j.value("name", "") == name) return j;
    }
    return std::nullopt;
  };
  deps.validate_job = [this](std::string_view body) -> nlohmann::json {
    if (!parts_->job_manager) {
      return {{"ok", false}, {"errors", {"this instance runs no jobs (it is an inlet); ask an outlet or `sluice run`"}}};
    }
    return parts_->job_manager->validate(body);
  };
  deps.cluster = [this]() -> nlohmann::json {
    if (!parts_->registration) {
      return {{"self", nullptr}, {"instances", nlohmann::json::array()},
              {"error", "this instance does not register itself: configure coordination.etcd"}};
    }
    return parts_->registration->cluster();
  };
  parts_->admin = std::make_unique<admin::AdminServer>(admin::AdminConfig{config_.admin_listen}, std::move(deps));
  parts_->admin->start();

  if (with_outlet) start_outlet();
  if (with_inlet) start_inlet();
  if (config_.coordination) start_coordination();
  parts_->started.store(true);
  spdlog::info("sluice {} started: admin on {}", SLUICE_VERSION, config_.admin_listen);
}

bool Runtime::stop() {
  if (!parts_->started.exchange(false)) return true;
  const auto deadline = std::chrono::steady_clock::now() + config_.shutdown_timeout;
  bool clean = true;
  spdlog::info("shutting down: stopping sources, then draining the bus and the sinks (up to {} s)",
               config_.shutdown_timeout.count() / 1000);
  for (auto& s : parts_->sources) s->stop();
  if (parts_->falcon_http) parts_->falcon_http->stop();
  if (parts_->otlp) parts_->otlp->stop();
  if (parts_->falcon_rpc) parts_->falcon_rpc->stop();
  if (parts_->falcon_socket) parts_->falcon_socket->stop();
  if (parts_->graphite) parts_->graphite->stop();
  // While the consumers still run: on the memory bus, a log chunk is delivered when they commit it.
  if (parts_->log_inlet) parts_->log_inlet->stop(deadline);
  if (parts_->kafka_producer) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (auto undelivered = parts_->kafka_producer->flush(std::max(left, std::chrono::milliseconds(0)))) {
      spdlog::error("shutdown: {} messages were not delivered to Kafka before the deadline", undelivered);
      clean = false;
    }
  }
  // Configured jobs drain (stored and committed) while the built-in pipelines drain the bus.
  // No new job definitions while draining.
  if (parts_->job_watcher) parts_->job_watcher->stop();
  for (auto& job : parts_->builtin_jobs) job->begin_stop();
  if (parts_->job_manager) clean = parts_->job_manager->stop(deadline) && clean;
  for (auto& job : parts_->builtin_jobs) job->stop(deadline);
  if (parts_->template_store) parts_->template_store->stop();  // after the consumers: the last templates are saved
  if (parts_->sink) {
    const auto before = parts_->sink->pending();
    parts_->sink->stop(deadline);
    clean = clean && before == 0;
  }
  if (parts_->metric_router) parts_->metric_router->stop(deadline);
  if (parts_->log_sink) {
    const auto before = parts_->log_sink->pending();
    parts_->log_sink->stop(deadline);
    clean = clean && before == 0;
  }
  if (parts_->elasticsearch) parts_->elasticsearch->stop(deadline);
  if (parts_->span_sink) {
    const auto before = parts_->span_sink->pending();
    parts_->span_sink->stop(deadline);
    clean = clean && before == 0;
  }
  if (parts_->metadata) parts_->metadata->stop();  // after the decoders: saves the name cache
  // Last: the entry disappears once this instance has handed everything over.
  if (parts_->registration) parts_->registration->stop();
  if (parts_->admin) parts_->admin->stop();
  spdlog::info("shutdown complete{}", clean ? "" : " (some data stays on the bus for the next start)");
  return clean;
}

nlohmann::json Runtime::jobs_status() const {
  nlohmann::json jobs = nlohmann::json::array();
  for (const auto& job : parts_->builtin_jobs) jobs.push_back(job->status());
  if (parts_->job_manager) {
    for (auto& j : parts_->job_manager->list()) jobs.push_back(std::move(j));
  }
  return jobs;
}

nlohmann::json Runtime::status() const {
  nlohmann::json j;
  j["version"] = SLUICE_VERSION;
  j["role"] = role_ == Role::all_in_one ? "run" : role_ == Role::inlet ? "inlet" : "outlet";
  nlohmann::json sources = nlohmann::json::array();
  for (const auto& s : parts_->sources) sources.push_back(s->status());
  if (parts_->falcon_http) sources.push_back(parts_->falcon_http->status());
  if (parts_->otlp) sources.push_back(parts_->otlp->status());
  if (parts_->falcon_rpc) sources.push_back(parts_->falcon_rpc->status());
  if (parts_->falcon_socket) sources.push_back(parts_->falcon_socket->status());
  if (parts_->graphite) sources.push_back(parts_->graphite->status());
  if (parts_->log_inlet) sources.push_back(parts_->log_inlet->status());
  j["sources"] = std::move(sources);
  j["jobs"] = jobs_status();
  nlohmann::json sinks = nlohmann::json::array();
  if (parts_->sink) sinks.push_back(parts_->sink->status());
  if (parts_->log_sink) sinks.push_back(parts_->log_sink->status());
  if (parts_->span_sink) sinks.push_back(parts_->span_sink->status());
  if (parts_->elasticsearch) sinks.push_back(parts_->elasticsearch->status());
  j["sinks"] = std::move(sinks);
  if (parts_->metric_router) j["destinations"] = parts_->metric_router->status();
  if (parts_->metadata) j["metadata"] = parts_->metadata->status();
  if (parts_->registration) j["registration"] = parts_->registration->status();
  if (parts_->job_watcher) j["job_watcher"] = parts_->job_watcher->status();
  if (parts_->memory_bus) j["bus"] = {{"kind", "memory"}, {"queued_bytes", parts_->memory_bus->queued_bytes()}};
  else if (config_.bus.kafka) j["bus"] = {{"kind", "kafka"}, {"brokers", config_.bus.kafka->brokers}};
  return j;
}

}  // namespace sluice::app
