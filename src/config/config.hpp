// Config: the typed form of a sluice YAML file, validated with key paths (see config/*.yaml).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "coord/coordination_config.hpp"
#include "core/envelope.hpp"
#include "pipeline/jobs/job_spec.hpp"
#include "sinks/elasticsearch_config.hpp"
#include "sinks/metric_router_config.hpp"
#include "sources/files/etcd_discovery.hpp"
#include "sources/files/file_source_config.hpp"
#include "transforms/enrich_config.hpp"
#include "transforms/metadata/config.hpp"

namespace sluice::config {

using std::chrono::milliseconds;

struct UdpListener {
  std::string listen;
  int workers = 1;
  std::uint64_t receive_buffer = 32ull << 20;
  int batch = 64;
};

// A TCP metric receiver (Graphite plaintext, Open-Falcon line socket or JSON-RPC).
struct TcpMetricListener {
  std::string listen;
  std::uint64_t max_message = 8 * 1024;  // graphite/socket: max_line; rpc: max_object
  milliseconds idle_timeout{5 * 60'000};
  int workers = 1;
  int max_connections = 4096;
};

struct FalconHttpListener {
  std::string listen;
  std::uint64_t max_body = 32ull << 20;
  milliseconds idle_timeout{5'000};  // keep-alive idle and body read timeout; shutdown waits up to this
  int threads = 8;
};

struct FalconInletConfig {
  std::optional<FalconHttpListener> http;
  std::optional<TcpMetricListener> rpc;
  std::optional<TcpMetricListener> socket;
};

// OTLP/HTTP traces (POST /v1/traces).
struct OtlpListener {
  std::string listen;
  std::uint64_t max_body = 16ull << 20;  // after decompression
  milliseconds idle_timeout{5'000};
  int threads = 8;
};

// The log file source: static sources, and sources listed in etcd for this host.
struct FilesInletConfig {
  std::string host;  // empty: the machine's host name
  std::vector<sources::FileSourceConfig> sources;
  std::optional<sources::EtcdDiscoveryConfig> etcd;
  milliseconds rescan_interval{2000};
  milliseconds checkpoint_interval{1000};
  // Below librdkafka's message.max.bytes (1000000) with the envelope, so a chunk always fits a Kafka message.
  std::uint64_t max_chunk_bytes = 512ull << 10;
  std::uint64_t max_in_flight_bytes = 64ull << 20;
};

struct InletConfig {
  std::optional<UdpListener> netflow;
  std::optional<UdpListener> sflow;
  std::optional<FalconInletConfig> falcon;
  std::optional<TcpMetricListener> graphite;
  std::optional<FilesInletConfig> files;
  std::optional<OtlpListener> otlp;
  bool empty() const { return !netflow && !sflow && !falcon && !graphite && !files && !otlp; }
};

struct MemoryBusConfig {
  int partitions = 8;
  std::uint64_t max_bytes = 256ull << 20;
};

struct KafkaBusConfig {
  std::string brokers;
  std::string topic_prefix = "sluice-";
  int partitions = 8;
  int replication = 1;
  std::string consumer_group = "sluice-outlet";
  milliseconds session_timeout{10'000};
  int linger_ms = 5;
  std::uint64_t producer_queue_bytes = 256ull << 20;
  std::map<std::string, std::string> producer_properties;
  std::map<std::string, std::string> consumer_properties;
};

struct BusConfig {
  MemoryBusConfig memory;
  std::optional<KafkaBusConfig> kafka;  // set: Kafka; unset: the in-process memory bus
};

struct BatchConfig {
  std::uint64_t max_rows = 100'000;
  std::uint64_t max_bytes = 64ull << 20;
  milliseconds max_delay{1000};
};

struct ClickHouseConfig {
  std::string url;
  std::string database = "sluice";
  std::string user = "default";
  std::string password;
  std::string compression = "lz4";  // none | lz4 | zstd
  int pool_size = 4;
  milliseconds connect_timeout{2000};
  milliseconds request_timeout{60'000};
  std::string cluster;              // set: Replicated local tables + Distributed tables on this cluster
  bool cluster_replicated = true;   // false: plain local engines, DDL without ON CLUSTER (no Keeper)
};

struct ChdbConfig {
  std::string path;
  std::string library;
  std::string database = "sluice";
};

struct SinkConfig {
  int parallel_inserts = 2;
  int max_pending_batches = 16;
  std::uint64_t max_pending_bytes = 512ull << 20;  // batches waiting for the store, in bytes
  milliseconds retry_initial{200};
  milliseconds retry_max{30'000};
};

struct SflowDecodeConfig {
  bool decode_vxlan = false;  // describe the packet inside VXLAN rather than the tunnel
  std::uint16_t vxlan_port = 4789;
};

struct FlowTemplatesConfig {
  // The template file (<data_dir>/flows/flow-templates.bin) is written at most this often.
  milliseconds save_interval{2000};
  // Distributed mode: how long a starting outlet reads the template topic before consuming flows.
  milliseconds catch_up_timeout{10'000};
};

// Layout and retention of the flow tables; TTLs are "<n> <UNIT>", empty keeps rows forever.
struct FlowTableConfig {
  std::string ttl;
  std::vector<std::string> order_by;  // empty: 5-minute bucket, exporter, interfaces
  std::string partition_by;           // empty: one partition a day
  std::string ttl_1m = "7 DAY", ttl_5m = "90 DAY", ttl_1h;
};

struct FlowsConfig {
  std::vector<std::string> optional_columns;
  FlowTableConfig table;
  std::uint64_t default_sampling_rate = 0;  // used when an exporter sends none; 0 = count them as unknown
  SflowDecodeConfig sflow;
  FlowTemplatesConfig templates;
  transforms::EnrichConfig enrich;
};

// The log pipeline of the outlet: rules, then the store's `logs` table and/or Elasticsearch.
struct LogsOutletConfig {
  bool store = true;  // write to the store's table
  std::string table = "logs";
  std::string ttl;    // "<n> <UNIT>"; empty keeps lines forever
  YAML::Node rules;   // checked when the config is read; built again with the process's metrics
  std::optional<sinks::ElasticsearchConfig> elasticsearch;
};

// The span pipeline of the outlet: the inlet's spans topic, plus topics Jaeger collectors write to.
struct SpansOutletConfig {
  std::string table = "spans";
  std::string ttl;  // "<n> <UNIT>"; empty keeps spans forever
  std::vector<std::string> jaeger_proto_topics;  // --kafka.producer.encoding=protobuf
  std::vector<std::string> jaeger_json_topics;   // --kafka.producer.encoding=json
};

struct OutletConfig {
  int workers = 1;
  BatchConfig batch;
  milliseconds commit_interval{1000};
  std::optional<ClickHouseConfig> clickhouse;
  std::optional<ChdbConfig> chdb;
  SinkConfig sink;
  std::string dead_letter_dir;
  FlowsConfig flows;
  std::optional<sinks::MetricRouterConfig> metrics;  // set: the outlet routes the metrics topic
  std::optional<LogsOutletConfig> logs;              // set: the outlet consumes the logs topic
  std::optional<SpansOutletConfig> spans;            // set: the outlet consumes the spans topics
};

struct Config {
  std::string data_dir = "./data";
  milliseconds shutdown_timeout{30'000};
  std::string log_level = "info";
  std::string admin_listen = "127.0.0.1:8080";
  InletConfig inlet;
  BusConfig bus;
  std::optional<OutletConfig> outlet;
  // Exporter and interface names for enrichment (static entries, then SNMP); absent: no names.
  std::optional<transforms::metadata::MetadataConfig> metadata;
  // Ingestion jobs of the config file (docs/jobs.md); more can come from etcd at run time.
  std::vector<pipeline::jobs::JobSpec> jobs;
  // etcd: instance registration and job definitions (docs/cluster.md); absent: neither.
  std::optional<coord::CoordinationConfig> coordination;

  // Kafka topic carrying a kind of envelope ("sluice-flows"; Open-Falcon and Graphite share "sluice-metrics").
  std::string topic_for(SourceKind kind) const;
};

// Parses YAML text; throws ConfigError listing every problem with its key path.
Config parse_config(const std::string& yaml_text);
Config load_config_file(const std::string& path);

}  // namespace sluice::config
