// Log rules throughput: MB/s per core of regex, JSON and logfmt parsing of ~200-byte lines through a
// RuleSet, and heap allocations per event once warm (counted by replacing operator new here).
#include <benchmark/benchmark.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "core/metrics.hpp"
#include "transforms/rules/rules.hpp"

namespace {
std::atomic<std::uint64_t> allocations{0};
}

// The replacements below pair malloc with free themselves; GCC cannot see that through inlining.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

using sluice::transforms::LogEvent;
using namespace sluice::transforms::rules;

constexpr const char* kCombinedRules = R"re(
rules:
  - name: combined
    parse:
      format: regex
      pattern: '^(?<client>\S+) \S+ (?<user>\S+) \[(?<time>[^\]]+)\] "(?<method>[A-Z]+) (?<path>[^ "]+) (?<protocol>[^"]+)" (?<status>\d{3}) (?<bytes>\d+|-) "(?<referrer>[^"]*)" "(?<agent>[^"]*)"'
)re";

constexpr const char* kNginxPipeline = R"re(
rules:
  - name: nginx
    when: {source: "nginx*"}
    steps:
      - parse:
          format: regex
          pattern: '^(?<client>\S+) \S+ (?<user>\S+) \[(?<time>[^\]]+)\] "(?<method>[A-Z]+) (?<path>[^ "]+) (?<protocol>[^"]+)" (?<status>\d{3}) (?<bytes>\d+|-) "(?<referrer>[^"]*)" "(?<agent>[^"]*)"'
      - timestamp: {field: time, format: common_log, remove: true}
      - convert: {status: integer, bytes: integer}
      - if: {field: status, gte: 500}
        route: errors
      - add: {service: edge}
)re";

constexpr const char* kJsonRules = R"(
rules:
  - name: json
    parse: {format: json}
)";

constexpr const char* kLogfmtRules = R"(
rules:
  - name: logfmt
    parse: {format: logfmt}
)";

std::string pad_to(std::string line, std::size_t size, std::size_t at) {
  if (line.size() < size) line.insert(at, size - line.size(), 'x');
  return line;
}

// ~200-byte lines that differ from one another, as a real access log does.
std::vector<std::string> combined_lines() {
  std::vector<std::string> out;
  static const char* kMethods[] = {"GET", "POST", "PUT", "GET"};
  for (int i = 0; i < 1024; ++i) {
    std::string line = "10.1." + std::to_string(i % 250) + "." + std::to_string(i * 7 % 250) +
                       " - user" + std::to_string(i % 13) + " [10/Oct/2023:13:" + std::to_string(10 + i % 50) +
                       ":36 -0700] \"" + kMethods[i % 4] + " /api/v1/items/" + std::to_string(i * 7919) +
                       "?page=2 HTTP/1.1\" " + std::to_string(i % 17 ? 200 : 503) + " " + std::to_string(i * 31 % 90000) +
                       " \"https://example.com/\" \"Mozilla/5.0 (X11; Linux x86_64) Firefox/118.0\"";
    out.push_back(pad_to(line, 200, line.find("?page")));
  }
  return out;
}

std::vector<std::string> json_lines() {
  std::vector<std::string> out;
  for (int i = 0; i < 1024; ++i) {
    std::string line = R"({"ts":"2023-10-10T13:55:36.123Z","level":")" + std::string(i % 5 ? "info" : "error") +
                       R"(","msg":"request done","req":{"method":"GET","path":"/api/v1/items/)" + std::to_string(i) +
                       R"(","status":200},"took_ms":)" + std::to_string(i % 100) + R"(.5,"ok":true,"tags":["a","b"]})";
    out.push_back(pad_to(line, 200, line.find("request") + 7));
  }
  return out;
}

std::vector<std::string> logfmt_lines() {
  std::vector<std::string> out;
  for (int i = 0; i < 1024; ++i) {
    std::string line = "ts=2023-10-10T13:55:36.123Z level=" + std::string(i % 5 ? "info" : "error") +
                       " msg=\"request done\" method=GET path=/api/v1/items/" + std::to_string(i) +
                       " status=200 took=" + std::to_string(i % 100) + "ms user=u" + std::to_string(i % 13) +
                       " ok region=eu-west-1";
    out.push_back(pad_to(line, 200, line.find("request") + 7));
  }
  return out;
}

void run(benchmark::State& state, const char* yaml, const std::vector<std::string>& lines, const char* source) {
  sluice::MetricsRegistry metrics;
  auto root = sluice::config::ConfigReader::root(YAML::Load(yaml));
  const auto set = RuleSet::read(root, metrics);
  root.check();
  auto scratch = set.make_scratch();
  LogEvent event;
  const auto one = [&](const std::string& line) {
    event.clear();
    event.source.assign(source);
    event.message.assign(line);
    event.timestamp_ms = 1696946136000;
    benchmark::DoNotOptimize(set.apply(event, *scratch));
  };
  for (int warm = 0; warm < 2; ++warm) {
    for (const auto& line : lines) one(line);
  }
  std::size_t bytes = 0, events = 0, failures_before = metrics.counter_total("rules_parse_failures_total");
  const std::uint64_t allocs_before = allocations.load();
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& line = lines[i++ & 1023];
    one(line);
    bytes += line.size();
    ++events;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(events));
  state.counters["allocs_per_event"] =
      events ? static_cast<double>(allocations.load() - allocs_before) / static_cast<double>(events) : 0;
  state.counters["failures"] = static_cast<double>(metrics.counter_total("rules_parse_failures_total") - failures_before);
  state.counters["fields"] = static_cast<double>(event.field_count());
}

void BM_RegexCombined200B(benchmark::State& state) { run(state, kCombinedRules, combined_lines(), "nginx"); }
void BM_NginxPipeline200B(benchmark::State& state) { run(state, kNginxPipeline, combined_lines(), "nginx"); }
void BM_Json200B(benchmark::State& state) { run(state, kJsonRules, json_lines(), "app"); }
void BM_Logfmt200B(benchmark::State& state) { run(state, kLogfmtRules, logfmt_lines(), "app"); }

BENCHMARK(BM_RegexCombined200B);
BENCHMARK(BM_NginxPipeline200B);
BENCHMARK(BM_Json200B);
BENCHMARK(BM_Logfmt200B);

}  // namespace

BENCHMARK_MAIN();
