#include "pipeline/jobs/job_spec.hpp"

#include <gtest/gtest.h>

#include "config/config.hpp"

namespace sluice::pipeline::jobs {
namespace {

std::string errors_of(const std::string& text, const std::string& prefix = "job") {
  try {
    parse_job_definition(text, prefix);
  } catch (const config::ConfigError& e) {
    std::string out;
    for (const auto& l : e.errors()) out += l + "\n";
    return out;
  }
  return "";
}

TEST(JobSpec, ReadsEveryPartWithDefaults) {
  const auto spec = parse_job_definition(
      "name: orders\n"
      "topics: [orders, orders-eu]\n"
      "decoder: {kind: json-lines}\n"
      "parallelism: 3\n"
      "rules:\n  - remove: [secret]\n"
      "mapping:\n  table: orders\n  columns:\n    - {name: id, type: UInt64}\n"
      "batch: {max_rows: 500, max_delay: 250ms}\n"
      "retry: {max_attempts: 3, restart_initial: 2s}\n",
      "job");
  EXPECT_EQ(spec.name, "orders");
  EXPECT_EQ(spec.topics, (std::vector<std::string>{"orders", "orders-eu"}));
  EXPECT_EQ(spec.group, "sluice-job-orders");
  EXPECT_EQ(spec.output, JobOutput::mapped_rows);
  EXPECT_EQ(spec.decoder.kind, "json-lines");
  EXPECT_EQ(spec.parallelism, 3);
  EXPECT_TRUE(spec.rules.IsSequence());
  EXPECT_EQ(spec.mapping.table, "orders");
  ASSERT_EQ(spec.mapping.columns.size(), 1u);
  EXPECT_EQ(spec.batch.max_rows, 500u);
  EXPECT_EQ(spec.batch.max_delay, std::chrono::milliseconds(250));
  EXPECT_EQ(spec.retry.max_attempts, 3);
  EXPECT_EQ(spec.retry.restart_initial, std::chrono::seconds(2));
  EXPECT_EQ(spec.retry.restart_max, std::chrono::seconds(60));
}

TEST(JobSpec, SpanJobsNeedNoMapping) {
  const auto spec = parse_job_definition("topic: jaeger-spans\ndecoder: {kind: jaeger-proto}\n", "etcd", "jaeger");
  EXPECT_EQ(spec.name, "jaeger");
  EXPECT_EQ(spec.output, JobOutput::spans);
  EXPECT_EQ(spec.span_encoding, SpanEncoding::jaeger_proto);
  EXPECT_EQ(spec.spans_table, "spans");
  EXPECT_EQ(errors_of("name: s\ntopic: t\ndecoder: {kind: otlp-json}\nmapping: {table: x}\n"),
            "job.mapping: a spans job writes the spans tables; remove the mapping\n");
}

TEST(JobSpec, ErrorsNameTheirKeyPaths) {
  EXPECT_EQ(errors_of("name: 'bad name'\ndecoder: {kind: json}\nmapping: {table: t, columns: [{name: a, type: String}]}\n"),
            "job.name: \"bad name\" is not a job name: use 1-100 letters, digits, '-', '_' or '.'\n"
            "job.topics: required: the Kafka topic(s) the job consumes (topic: or topics:)\n");
  EXPECT_EQ(errors_of("name: a\ntopic: t\ndecoder: {kind: json}\n"),
            "job.mapping: required: the table and columns the records are written to\n");
  const auto unknown = errors_of("name: a\ntopic: t\ncolour: blue\ndecoder: {kind: json}\n"
                                 "mapping: {table: t, columns: [{name: a, type: String}]}\n");
  EXPECT_NE(unknown.find("job.colour"), std::string::npos) << unknown;
  const auto retry = errors_of("name: a\ntopic: t\ndecoder: {kind: json}\nretry: {initial: 5s, max: 1s}\n"
                               "mapping: {table: t, columns: [{name: a, type: String}]}\n");
  EXPECT_EQ(retry, "job.retry.initial: retry.initial must be positive and at most retry.max\n");
  EXPECT_EQ(errors_of("[1, 2]"), "job: expected a mapping (a job definition)\n");
}

TEST(JobSpec, AKeyNameWinsAndMustAgreeWithTheText) {
  EXPECT_EQ(errors_of("name: other\ntopic: t\ndecoder: {kind: jaeger-json}\n", "etcd"), "");
  try {
    parse_job_definition("name: other\ntopic: t\ndecoder: {kind: jaeger-json}\n", "etcd", "mine");
    FAIL() << "a differing name is an error";
  } catch (const config::ConfigError& e) {
    ASSERT_EQ(e.errors().size(), 1u);
    EXPECT_EQ(e.errors()[0], "etcd.name: \"other\" differs from the key's job name \"mine\"; remove it or make them equal");
  }
}

TEST(JobSpec, TheCanonicalTextTellsChangedDefinitionsApart) {
  const auto a = parse_job_definition("name: a\ntopic: t\ndecoder: {kind: jaeger-json}\n", "j");
  const auto same = parse_job_definition("{\"name\": \"a\", \"topic\": \"t\", \"decoder\": {\"kind\": \"jaeger-json\"}}", "j");
  const auto changed = parse_job_definition("name: a\ntopic: t\ndecoder: {kind: jaeger-proto}\n", "j");
  EXPECT_EQ(a.canonical, same.canonical);
  EXPECT_NE(a.canonical, changed.canonical);
}

TEST(JobSpec, TheConfigFileTakesAJobsList) {
  const auto c = config::parse_config(
      "outlet: {chdb: {path: /tmp/x}}\n"
      "jobs:\n"
      "  - {name: a, topic: t, decoder: {kind: jaeger-json}}\n"
      "  - {name: b, topic: u, decoder: {kind: otlp-proto}}\n");
  ASSERT_EQ(c.jobs.size(), 2u);
  EXPECT_EQ(c.jobs[1].name, "b");
  try {
    config::parse_config("outlet: {chdb: {path: /tmp/x}}\njobs:\n  - {name: a, topic: t, decoder: {kind: jaeger-json}}\n"
                         "  - {name: a, topic: u, decoder: {kind: jaeger-json}}\n");
    FAIL() << "duplicate names are an error";
  } catch (const config::ConfigError& e) {
    ASSERT_EQ(e.errors().size(), 1u);
    EXPECT_EQ(e.errors()[0], "jobs[1].name: job a is defined twice; job names are unique");
  }
}

}  // namespace
}  // namespace sluice::pipeline::jobs
