// JobSpec: one ingestion job as its definition says (topics, group, decoder, rules, mapping, policies).
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/reader.hpp"
#include "decoders/records/record_decoder.hpp"
#include "pipeline/jobs/column_mapping.hpp"

namespace sluice::pipeline::jobs {

// What a job writes: typed rows through its column mapping, or spans into the spans tables.
enum class JobOutput { mapped_rows, spans };

// Span encodings a job can consume from Kafka (what Jaeger's collector and OpenTelemetry exporters write).
enum class SpanEncoding { jaeger_proto, jaeger_json, otlp_proto, otlp_json };

struct JobBatchPolicy {
  std::uint64_t max_rows = 100'000;
  std::uint64_t max_bytes = 64ull << 20;
  std::chrono::milliseconds max_delay{1000};
  // Insert the batches of several partitions together (BatchSinkPolicy::coalesce): far fewer parts,
  // at-least-once instead of token-deduplicated inserts.
  bool coalesce = false;
};

struct JobRetryPolicy {
  // A batch the store refuses with a retryable error is tried this many times before its processor
  // is declared failed and restarted; a permanent refusal goes to dead letters at once.
  int max_attempts = 5;
  std::chrono::milliseconds initial{200};
  std::chrono::milliseconds max{10'000};
  // Backoff between restarts of a failed processor: doubles from `restart_initial` to `restart_max`,
  // and starts again once a processor has run `restart_reset` without failing.
  std::chrono::milliseconds restart_initial{1000};
  std::chrono::milliseconds restart_max{60'000};
  std::chrono::milliseconds restart_reset{60'000};
};

struct JobSpec {
  std::string name;
  std::vector<std::string> topics;
  std::string group;          // Kafka consumer group; default "sluice-job-<name>"
  std::string brokers;        // empty: bus.kafka.brokers
  JobOutput output = JobOutput::mapped_rows;
  decoders::records::DecoderSpec decoder;  // mapped_rows
  SpanEncoding span_encoding = SpanEncoding::jaeger_proto;  // spans
  std::string spans_table = "spans";
  MappingSpec mapping;        // mapped_rows
  YAML::Node rules;           // the same rules as log shipping (docs/rules.md); null: none
  int parallelism = 1;        // processors, each a consumer of the group
  JobBatchPolicy batch;
  JobRetryPolicy retry;
  std::string dead_letter_dir;  // empty: <outlet.dead_letter_dir>/jobs/<name>
  // The definition as written, in a canonical form: two specs with equal text are the same job, and a
  // changed text means the job is drained and restarted with the new definition.
  std::string canonical;
};

// Reads one job mapping (a `jobs:` element of the config, or a value under the etcd jobs prefix),
// reporting problems with key paths through `reader`; `name` overrides the `name:` key (etcd keys).
JobSpec read_job_spec(config::ConfigReader& reader, std::optional<std::string> name = std::nullopt);

// Parses a definition text (YAML or JSON). Throws config::ConfigError whose lines start with
// `<path_prefix>.`; a name from `name` wins over the text's own.
JobSpec parse_job_definition(std::string_view text, const std::string& path_prefix,
                             std::optional<std::string> name = std::nullopt);

// Job names become consumer groups, metric labels, directory names and etcd keys.
bool valid_job_name(std::string_view name);

}  // namespace sluice::pipeline::jobs
