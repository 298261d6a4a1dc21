#include "config/config.hpp"

#include <fmt/format.h>

#include <cctype>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "config/reader.hpp"
#include "core/metrics.hpp"
#include "transforms/rules/rules.hpp"

namespace sluice::config {
namespace {

std::optional<UdpListener> read_udp(ConfigReader& parent, const std::string& key) {
  if (!parent.has(key)) {
    parent.child(key);
    return std::nullopt;
  }
  auto r = parent.child(key);
  UdpListener l;
  l.listen = r.listen_address("listen", "");
  if (l.listen.empty() && !r.has("listen")) r.error("listen", "required: the host:port to receive on");
  l.workers = static_cast<int>(r.integer("workers", l.workers, 1, 64));
  l.receive_buffer = r.size("receive_buffer", l.receive_buffer);
  l.batch = static_cast<int>(r.integer("batch", l.batch, 1, 1024));
  r.finish();
  return l;
}

std::optional<TcpMetricListener> read_tcp_metric(ConfigReader& parent, const std::string& key, const char* size_key,
                                                 std::uint64_t default_size) {
  if (!parent.has(key)) {
    parent.child(key);
    return std::nullopt;
  }
  auto r = parent.child(key);
  TcpMetricListener l;
  l.listen = r.listen_address("listen", "");
  if (l.listen.empty() && !r.has("listen")) r.error("listen", "required: the host:port to accept connections on");
  l.max_message = r.size(size_key, default_size);
  if (l.max_message < 64 || l.max_message > (1ull << 30)) r.error(size_key, "must be within 64 bytes..1GiB");
  l.idle_timeout = r.duration("idle_timeout", l.idle_timeout);
  if (l.idle_timeout.count() <= 0) r.error("idle_timeout", "must be positive");
  l.workers = static_cast<int>(r.integer("workers", l.workers, 1, 64));
  l.max_connections = static_cast<int>(r.integer("max_connections", l.max_connections, 1, 1'000'000));
  r.finish();
  return l;
}

std::optional<FalconInletConfig> read_falcon(ConfigReader& parent) {
  if (!parent.has("falcon")) {
    parent.child("falcon");
    return std::nullopt;
  }
  auto r = parent.child("falcon");
  FalconInletConfig f;
  if (r.has("http")) {
    auto h = r.child("http");
    FalconHttpListener l;
    l.listen = h.listen_address("listen", "");
    if (l.listen.empty() && !h.has("listen")) h.error("listen", "required: the host:port for POST /api/push");
    l.max_body = h.size("max_body", l.max_body);
    if (l.max_body < 64) h.error("max_body", "must be at least 64 bytes");
    l.idle_timeout = h.duration("idle_timeout", l.idle_timeout);
    if (l.idle_timeout.count() < 1000) h.error("idle_timeout", "must be at least 1s");
    l.threads = static_cast<int>(h.integer("threads", l.threads, 1, 1024));
    h.finish();
    f.http = l;
  } else {
    r.child("http");
  }
  f.rpc = read_tcp_metric(r, "rpc", "max_object", 16ull << 20);
  f.socket = read_tcp_metric(r, "socket", "max_line", 8 * 1024);
  r.finish();
  return f;
}

KafkaBusConfig read_kafka(ConfigReader r) {
  KafkaBusConfig k;
  k.brokers = r.string("brokers", "");
  if (k.brokers.empty()) r.error("brokers", "required: bootstrap servers such as 127.0.0.1:9092");
  k.topic_prefix = r.string("topic_prefix", k.topic_prefix);
  k.partitions = static_cast<int>(r.integer("partitions", k.partitions, 1, 10'000));
  k.replication = static_cast<int>(r.integer("replication", k.replication, 1, 16));
  k.consumer_group = r.string("consumer_group", k.consumer_group);
  k.session_timeout = r.duration("session_timeout", k.session_timeout);
  k.linger_ms = static_cast<int>(r.integer("linger_ms", k.linger_ms, 0, 60'000));
  k.producer_queue_bytes = r.size("producer_queue_bytes", k.producer_queue_bytes);
  k.producer_properties = r.string_map("producer_properties");
  k.consumer_properties = r.string_map("consumer_properties");
  r.finish();
  return k;
}

ClickHouseConfig read_clickhouse(ConfigReader r) {
  ClickHouseConfig c;
  c.url = r.string("url", "");
  if (c.url.rfind("http://", 0) != 0 && c.url.rfind("https://", 0) != 0) {
    r.error("url", fmt::format("expected the ClickHouse HTTP interface URL such as http://127.0.0.1:8123, got '{}'", c.url));
  }
  c.database = r.string("database", c.database);
  c.user = r.string("user", c.user);
  c.password = r.string("password", c.password);
  c.compression = r.one_of("compression", c.compression, {"none", "lz4", "zstd"});
  c.pool_size = static_cast<int>(r.integer("pool_size", c.pool_size, 1, 256));
  c.connect_timeout = r.duration("connect_timeout", c.connect_timeout);
  c.request_timeout = r.duration("request_timeout", c.request_timeout);
  c.cluster = r.string("cluster", "");
  if (!c.cluster.empty() && !std::regex_match(c.cluster, std::regex("[A-Za-z_][A-Za-z0-9_]*"))) {
    r.error("cluster", fmt::format("expected a cluster name from the server's remote_servers (letters, digits, _), got '{}'", c.cluster));
  }
  c.cluster_replicated = r.boolean("cluster_replicated", c.cluster_replicated);
  r.finish();
  return c;
}

// "<n> <UNIT>" as ClickHouse's INTERVAL takes it (normalized to upper case, singular); empty: forever.
std::string read_ttl(ConfigReader& r, const std::string& key, const std::string& fallback) {
  auto v = r.string(key, fallback);
  if (v.empty()) return v;
  std::smatch m;
  if (!std::regex_match(v, m, std::regex(R"(\s*([0-9]+)\s+(second|minute|hour|day|week|month|quarter|year)s?\s*)", std::regex::icase))) {
    r.error(key, fmt::format("expected a retention such as \"30 DAY\" (SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER, YEAR) or \"\" to keep rows forever, got '{}'", v));
    return fallback;
  }
  std::string unit = m[2];
  for (auto& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return std::string(m[1]) + " " + unit;
}

FlowTableConfig read_flow_table(ConfigReader r) {
  FlowTableConfig t;
  t.ttl = read_ttl(r, "ttl", t.ttl);
  t.order_by = r.string_list("order_by");
  t.partition_by = r.string("partition_by", t.partition_by);
  {
    auto ttl = r.child("rollup_ttl");
    t.ttl_1m = read_ttl(ttl, "1m", t.ttl_1m);
    t.ttl_5m = read_ttl(ttl, "5m", t.ttl_5m);
    t.ttl_1h = read_ttl(ttl, "1h", t.ttl_1h);
    ttl.finish();
  }
  r.finish();
  return t;
}

std::optional<FilesInletConfig> read_files(ConfigReader& parent) {
  if (!parent.has("files")) {
    parent.child("files");
    return std::nullopt;
  }
  auto r = parent.child("files");
  FilesInletConfig f;
  f.host = r.string("host", "");
  // `paths`: globs (a list, or comma-separated as in SLUICE_LOG_PATHS), one source with default options.
  sources::FileSourceConfig paths;
  paths.name = "paths";
  paths.include = r.string_list("paths");
  for (const auto& glob : paths.include) {
    if (glob.front() != '/') r.error("paths", "expected absolute glob patterns, got \"" + glob + "\"");
  }
  if (!paths.include.empty()) f.sources.push_back(std::move(paths));
  auto list = r.list("sources");
  for (std::size_t i = 0; i < list.size(); ++i) {
    auto name = list[i].string("name", "source-" + std::to_string(i));
    f.sources.push_back(sources::read_file_source(list[i], name));
  }
  if (r.has("etcd")) {
    auto e = r.child("etcd");
    // An empty endpoint string (SLUICE_ETCD_ENDPOINTS unset) turns discovery off; the other keys may stay.
    if (e.is_scalar("endpoints") && e.string_list("endpoints").empty()) {
      for (const auto& key : e.keys()) {
        if (e.is_scalar(key)) static_cast<void>(e.string(key, ""));
        else e.child(key);
      }
      e.finish();
    } else {
      const bool host_given = e.has("host");
      f.etcd = sources::read_etcd_discovery_config(e);
      // The inlet's host names this machine everywhere, etcd keys included, unless etcd says otherwise.
      if (!host_given && !f.host.empty()) f.etcd->host = f.host;
    }
  }
  if (f.sources.empty() && !f.etcd) {
    r.error("paths", "no file to collect: set paths (SLUICE_LOG_PATHS, comma-separated globs), sources, or "
                     "etcd.endpoints (SLUICE_ETCD_ENDPOINTS)");
  }
  f.rescan_interval = r.duration("rescan_interval", f.rescan_interval);
  f.checkpoint_interval = r.duration("checkpoint_interval", f.checkpoint_interval);
  f.max_chunk_bytes = r.size("max_chunk_bytes", f.max_chunk_bytes);
  if (f.max_chunk_bytes < (64ull << 10) || f.max_chunk_bytes > (16ull << 20)) {
    r.error("max_chunk_bytes", "expected a size between 64KiB and 16MiB (and below the Kafka producer's message.max.bytes)");
  }
  f.max_in_flight_bytes = r.size("max_in_flight_bytes", f.max_in_flight_bytes);
  r.finish();
  return f;
}

std::optional<OtlpListener> read_otlp(ConfigReader& parent) {
  if (!parent.has("otlp")) {
    parent.child("otlp");
    return std::nullopt;
  }
  auto r = parent.child("otlp");
  OtlpListener l;
  l.listen = r.listen_address("listen", "");
  if (l.listen.empty() && !r.has("listen")) r.error("listen", "required: the host:port for POST /v1/traces");
  l.max_body = r.size("max_body", l.max_body);
  if (l.max_body < 1024 || l.max_body > (1ull << 30)) r.error("max_body", "must be within 1KiB..1GiB");
  l.idle_timeout = r.duration("idle_timeout", l.idle_timeout);
  if (l.idle_timeout.count() < 1000) r.error("idle_timeout", "must be at least 1s");
  l.threads = static_cast<int>(r.integer("threads", l.threads, 1, 1024));
  r.finish();
  return l;
}

SpansOutletConfig read_spans(ConfigReader r) {
  SpansOutletConfig s;
  s.table = r.string("table", s.table);
  if (s.table.empty()) r.error("table", "must not be empty");
  s.ttl = read_ttl(r, "ttl", "");
  s.jaeger_proto_topics = r.string_list("jaeger_proto_topics");
  s.jaeger_json_topics = r.string_list("jaeger_json_topics");
  r.finish();
  return s;
}

LogsOutletConfig read_logs(ConfigReader r) {
  LogsOutletConfig l;
  l.store = r.boolean("store", l.store);
  l.table = r.string("table", l.table);
  l.ttl = read_ttl(r, "ttl", "");
  if (r.has("rules")) {
    // Checked here, so that `sluice check` reports rule errors with their key paths.
    MetricsRegistry scratch;
    static_cast<void>(transforms::rules::RuleSet::read(r, scratch, "rules"));
    l.rules = YAML::Clone(YAML::Node(r.node()["rules"]));
  }
  if (r.has("elasticsearch")) {
    auto e = r.child("elasticsearch");
    l.elasticsearch = sinks::read_elasticsearch_config(e);
  }
  if (!l.store && !l.elasticsearch) r.error("store", "logs go nowhere: keep store: true or configure elasticsearch");
  r.finish();
  return l;
}

OutletConfig read_outlet(ConfigReader r, const std::string& data_dir) {
  OutletConfig o;
  o.workers = static_cast<int>(r.integer("workers", o.workers, 1, 64));
  {
    auto b = r.child("batch");
    o.batch.max_rows = static_cast<std::uint64_t>(b.integer("max_rows", static_cast<std::int64_t>(o.batch.max_rows), 1, 100'000'000));
    o.batch.max_bytes = b.size("max_bytes", o.batch.max_bytes);
    o.batch.max_delay = b.duration("max_delay", o.batch.max_delay);
    b.finish();
  }
  o.commit_interval = r.duration("commit_interval", o.commit_interval);
  if (r.has("clickhouse")) o.clickhouse = read_clickhouse(r.child("clickhouse"));
  else r.child("clickhouse");
  if (r.has("chdb")) {
    auto c = r.child("chdb");
    ChdbConfig ch;
    ch.path = c.string("path", data_dir + "/chdb");
    ch.library = c.string("library", "");
    ch.database = c.string("database", ch.database);
    c.finish();
    o.chdb = ch;
  } else {
    r.child("chdb");
  }
  if (o.clickhouse && o.chdb) r.error("chdb", "choose one store: outlet.clickhouse or outlet.chdb, not both");
  if (!o.clickhouse && !o.chdb) r.error("clickhouse", "required: a store, either outlet.clickhouse (a server) or outlet.chdb (embedded)");
  {
    auto s = r.child("sink");
    o.sink.parallel_inserts = static_cast<int>(s.integer("parallel_inserts", o.sink.parallel_inserts, 1, 64));
    o.sink.max_pending_batches = static_cast<int>(s.integer("max_pending_batches", o.sink.max_pending_batches, 1, 1024));
    o.sink.max_pending_bytes = s.size("max_pending_bytes", o.sink.max_pending_bytes);
    o.sink.retry_initial = s.duration("retry_initial", o.sink.retry_initial);
    o.sink.retry_max = s.duration("retry_max", o.sink.retry_max);
    s.finish();
  }
  o.dead_letter_dir = r.string("dead_letter_dir", data_dir + "/dead-letters");
  {
    auto f = r.child("flows");
    o.flows.optional_columns = f.string_list("optional_columns");
    o.flows.default_sampling_rate = static_cast<std::uint64_t>(f.integer("default_sampling_rate", 0, 0, 1'000'000'000));
    o.flows.table = read_flow_table(f.child("table"));
    {
      auto sf = f.child("sflow");
      o.flows.sflow.decode_vxlan = sf.boolean("decode_vxlan", o.flows.sflow.decode_vxlan);
      o.flows.sflow.vxlan_port = static_cast<std::uint16_t>(sf.integer("vxlan_port", o.flows.sflow.vxlan_port, 1, 65535));
      sf.finish();
    }
    {
      auto t = f.child("templates");
      o.flows.templates.save_interval = t.duration("save_interval", o.flows.templates.save_interval);
      o.flows.templates.catch_up_timeout = t.duration("catch_up_timeout", o.flows.templates.catch_up_timeout);
      t.finish();
    }
    auto enrich = f.child("enrich");
    o.flows.enrich = transforms::parse_enrich_config(enrich);
    f.finish();
  }
  if (r.has("metrics")) {
    auto m = r.child("metrics");
    o.metrics = sinks::parse_metric_router_config(m);
  }
  if (r.has("logs")) o.logs = read_logs(r.child("logs"));
  else r.child("logs");
  if (r.has("spans")) o.spans = read_spans(r.child("spans"));
  else r.child("spans");
  r.finish();
  return o;
}

}  // namespace

std::string Config::topic_for(SourceKind kind) const {
  const std::string prefix = bus.kafka ? bus.kafka->topic_prefix : "sluice-";
  switch (kind) {
    case SourceKind::netflow:
    case SourceKind::sflow: return prefix + "flows";
    // One topic for both, so one outlet job routes every metric; the envelope kind tells them apart.
    case SourceKind::falcon:
    case SourceKind::graphite: return prefix + "metrics";
    case SourceKind::log: return prefix + "logs";
    case SourceKind::span: return prefix + "spans";
    default: return prefix + to_string(kind);
  }
}

Config parse_config(const std::string& yaml_text) {
  YAML::Node doc;
  try {
    doc = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError({fmt::format("(file): not valid YAML at line {}, column {}: {}", e.mark.line + 1,
                                   e.mark.column + 1, e.msg)});
  }
  auto root = ConfigReader::root(doc);
  Config c;
  c.data_dir = root.string("data_dir", c.data_dir);
  if (root.has("metadata")) {
    auto m = root.child("metadata");
    c.metadata = transforms::metadata::parse_metadata_config(m, c.data_dir);
  }
  c.shutdown_timeout = root.duration("shutdown_timeout", c.shutdown_timeout);
  c.log_level = root.one_of("log_level", c.log_level, {"trace", "debug", "info", "warn", "error"});
  {
    auto a = root.child("admin");
    c.admin_listen = a.listen_address("listen", c.admin_listen);
    a.finish();
  }
  {
    auto in = root.child("inlet");
    c.inlet.netflow = read_udp(in, "netflow");
    c.inlet.sflow = read_udp(in, "sflow");
    c.inlet.falcon = read_falcon(in);
    c.inlet.graphite = read_tcp_metric(in, "graphite", "max_line", 8 * 1024);
    c.inlet.files = read_files(in);
    c.inlet.otlp = read_otlp(in);
    in.finish();
  }
  {
    auto b = root.child("bus");
    auto m = b.child("memory");
    c.bus.memory.partitions = static_cast<int>(m.integer("partitions", c.bus.memory.partitions, 1, 1024));
    c.bus.memory.max_bytes = m.size("max_bytes", c.bus.memory.max_bytes);
    m.finish();
    if (b.has("kafka")) c.bus.kafka = read_kafka(b.child("kafka"));
    else b.child("kafka");
    b.finish();
  }
  if (root.has("outlet")) c.outlet = read_outlet(root.child("outlet"), c.data_dir);
  else root.child("outlet");
  {
    std::set<std::string> names;
    for (auto& j : root.list("jobs")) {
      c.jobs.push_back(pipeline::jobs::read_job_spec(j));
      if (!names.insert(c.jobs.back().name).second) {
        j.error("name", fmt::format("job {} is defined twice; job names are unique", c.jobs.back().name));
      }
    }
    if (!c.jobs.empty() && !c.outlet) root.error("jobs", "jobs run in the outlet: add an `outlet:` section with a store");
  }
  c.coordination = coord::read_coordination_config(root);
  root.finish();
  root.check();
  return c;
}

Config load_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError({fmt::format("{}: cannot open the configuration file", path)});
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str());
}

}  // namespace sluice::config
