#include "pipeline/jobs/job_spec.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "core/metrics.hpp"
#include "transforms/rules/rules.hpp"

namespace sluice::pipeline::jobs {
namespace {

const std::vector<std::string> kSpanKinds = {"jaeger-proto", "jaeger-json", "otlp-proto", "otlp-json"};

SpanEncoding span_encoding(const std::string& kind) {
  if (kind == "jaeger-json") return SpanEncoding::jaeger_json;
  if (kind == "otlp-proto") return SpanEncoding::otlp_proto;
  if (kind == "otlp-json") return SpanEncoding::otlp_json;
  return SpanEncoding::jaeger_proto;
}

}  // namespace

bool valid_job_name(std::string_view name) {
  if (name.empty() || name.size() > 100) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                    c == '.';
    if (!ok) return false;
  }
  return name.front() != '.';
}

JobSpec read_job_spec(config::ConfigReader& r, std::optional<std::string> name) {
  JobSpec j;
  if (name) {
    j.name = *name;
    if (r.has("name") && r.string("name", "") != *name) {
      r.error("name", fmt::format("\"{}\" differs from the key's job name \"{}\"; remove it or make them equal",
                                  r.string("name", ""), *name));
    }
  } else {
    j.name = r.string("name", "");
  }
  if (!valid_job_name(j.name)) {
    r.error("name", fmt::format("\"{}\" is not a job name: use 1-100 letters, digits, '-', '_' or '.'", j.name));
  }
  for (auto& t : r.string_list("topic")) j.topics.push_back(std::move(t));
  for (auto& t : r.string_list("topics")) j.topics.push_back(std::move(t));
  if (j.topics.empty()) r.error("topics", "required: the Kafka topic(s) the job consumes (topic: or topics:)");
  j.group = r.string("group", "sluice-job-" + j.name);
  j.brokers = r.string("brokers", "");
  j.parallelism = static_cast<int>(r.integer("parallelism", j.parallelism, 1, 64));

  {
    auto d = r.child("decoder");
    const std::string kind = d.has("kind") ? d.string("kind", "") : "json";
    const bool spans = std::find(kSpanKinds.begin(), kSpanKinds.end(), kind) != kSpanKinds.end();
    if (spans) {
      j.output = JobOutput::spans;
      j.span_encoding = span_encoding(kind);
      d.finish();
    } else {
      auto again = r.child("decoder");
      j.decoder = decoders::records::read_decoder_spec(again);
    }
  }
  if (j.output == JobOutput::mapped_rows) {
    if (!r.has("mapping")) r.error("mapping", "required: the table and columns the records are written to");
    auto m = r.child("mapping");
    if (r.has("mapping")) j.mapping = read_mapping_spec(m);
  } else {
    auto s = r.child("spans");
    j.spans_table = s.string("table", j.spans_table);
    s.finish();
    if (r.has("mapping")) {
      r.error("mapping", "a spans job writes the spans tables; remove the mapping");
      r.child("mapping");
    }
  }
  if (r.has("rules")) {
    if (j.output == JobOutput::spans) {
      r.error("rules", "rules apply to records of mapped jobs, not to spans");
      static_cast<void>(r.list("rules"));
    } else {
      MetricsRegistry scratch;  // checked here so that errors carry key paths; built again at start
      static_cast<void>(transforms::rules::RuleSet::read(r, scratch, "rules"));
      j.rules = YAML::Clone(YAML::Node(r.node()["rules"]));
    }
  }
  {
    auto b = r.child("batch");
    j.batch.max_rows = static_cast<std::uint64_t>(b.integer("max_rows", static_cast<std::int64_t>(j.batch.max_rows), 1, 10'000'000));
    j.batch.max_bytes = b.size("max_bytes", j.batch.max_bytes);
    j.batch.max_delay = b.duration("max_delay", j.batch.max_delay);
    j.batch.coalesce = b.boolean("coalesce", j.batch.coalesce);
    if (j.batch.max_delay.count() <= 0) b.error("max_delay", "must be positive");
    b.finish();
  }
  {
    auto t = r.child("retry");
    j.retry.max_attempts = static_cast<int>(t.integer("max_attempts", j.retry.max_attempts, 1, 1'000'000));
    j.retry.initial = t.duration("initial", j.retry.initial);
    j.retry.max = t.duration("max", j.retry.max);
    j.retry.restart_initial = t.duration("restart_initial", j.retry.restart_initial);
    j.retry.restart_max = t.duration("restart_max", j.retry.restart_max);
    j.retry.restart_reset = t.duration("restart_reset", j.retry.restart_reset);
    if (j.retry.initial.count() <= 0 || j.retry.max < j.retry.initial) {
      t.error("initial", "retry.initial must be positive and at most retry.max");
    }
    if (j.retry.restart_initial.count() <= 0 || j.retry.restart_max < j.retry.restart_initial) {
      t.error("restart_initial", "retry.restart_initial must be positive and at most retry.restart_max");
    }
    t.finish();
  }
  j.dead_letter_dir = r.string("dead_letter_dir", "");
  r.finish();
  YAML::Emitter out;
  out.SetMapFormat(YAML::Flow);
  out.SetSeqFormat(YAML::Flow);
  out << r.node();
  j.canonical = out.c_str();
  return j;
}

JobSpec parse_job_definition(std::string_view text, const std::string& path_prefix, std::optional<std::string> name) {
  YAML::Node node;
  try {
    node = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    throw config::ConfigError({fmt::format("{}: not valid YAML or JSON ({})", path_prefix, e.what())});
  }
  if (!node.IsMap()) throw config::ConfigError({fmt::format("{}: expected a mapping (a job definition)", path_prefix)});
  auto errors = std::make_shared<std::vector<std::string>>();
  config::ConfigReader reader(node, path_prefix, errors);
  auto spec = read_job_spec(reader, std::move(name));
  reader.check();
  return spec;
}

}  // namespace sluice::pipeline::jobs
