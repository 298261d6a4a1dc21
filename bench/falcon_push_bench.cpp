// Open-Falcon HTTP /api/push ingest: keep-alive httplib clients post 1000-value bodies to the receiver,
// which validates every value and produces one record per value to the memory bus (drained by a
// consumer thread) or to a counting producer (the receiver's own cost). Reports metrics/s and process
// CPU seconds per million metrics (client, server and bus all in this process, on this machine).
#include <benchmark/benchmark.h>
#include <httplib.h>
#include <sys/resource.h>

#include <atomic>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "bus/memory_bus.hpp"
#include "core/metrics.hpp"
#include "sources/falcon_receivers.hpp"

namespace sluice {
namespace {

constexpr int kValuesPerPost = 1000;
constexpr int kPostsPerClientPerIteration = 10;

// What agents push: a few hundred hosts, the usual agent metric names, some tagged, numbers as JSON numbers.
std::string make_body(int seed) {
  static const char* const kMetrics[] = {"cpu.idle", "cpu.user", "mem.memfree.percent", "net.if.in.bytes",
                                         "net.if.out.bytes", "disk.io.util", "load.1min", "df.bytes.free.percent"};
  std::mt19937 rng(static_cast<unsigned>(seed));
  std::string body = "[";
  for (int i = 0; i < kValuesPerPost; ++i) {
    const int m = static_cast<int>(rng() % 8);
    const bool tagged = m >= 3;
    body += fmt::format(
        R"({}{{"endpoint":"host-{:04d}.example.com","metric":"{}","value":{:.3f},"step":60,"counterType":"{}","tags":"{}","timestamp":{}}})",
        i == 0 ? "" : ",", rng() % 500, kMetrics[m], static_cast<double>(rng() % 100000) / 7.0,
        m == 3 || m == 4 ? "COUNTER" : "GAUGE", tagged ? fmt::format("iface=eth{},dc=eu{}", rng() % 4, rng() % 3) : "",
        1'700'000'000 + i);
  }
  body += "]";
  return body;
}

class CountingProducer final : public bus::Producer {
 public:
  bus::ProduceStatus produce(std::string_view, std::span<const std::byte>, std::span<const std::byte> value) override {
    bytes_.fetch_add(value.size(), std::memory_order_relaxed);
    return bus::ProduceStatus::ok;
  }
  std::size_t flush(std::chrono::milliseconds) override { return 0; }

 private:
  std::atomic<std::uint64_t> bytes_{0};
};

class Drain final : public bus::ConsumerHandler {
 public:
  void on_assigned(const std::vector<bus::Assignment>&) override {}
  void on_revoked(const std::vector<bus::PartitionRef>&) override {}
  void on_message(const bus::Message&) override { messages.fetch_add(1, std::memory_order_relaxed); }
  void on_idle() override {}
  std::atomic<std::uint64_t> messages{0};
};

double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// range(0): keep-alive client connections; range(1): 1 = memory bus + consumer, 0 = counting producer.
void BM_FalconHttpPush(benchmark::State& state) {
  const int clients = static_cast<int>(state.range(0));
  const bool memory_bus = state.range(1) == 1;
  MetricsRegistry metrics;
  bus::MemoryBus bus({4, 512ull << 20}, metrics);
  CountingProducer counting;
  Drain drain;
  auto consumer = bus.make_consumer(0, 1);
  std::thread consumer_thread([&] { consumer->run(drain); });
  FalconHttpConfig config;
  config.listen = "127.0.0.1:0";
  config.threads = clients;
  config.topic = "sluice-metrics";
  FalconHttpReceiver http(config, memory_bus ? static_cast<bus::Producer&>(bus.producer()) : counting, metrics);
  http.start();
  std::vector<std::string> bodies;
  for (int i = 0; i < 8; ++i) bodies.push_back(make_body(i));
  std::vector<std::unique_ptr<httplib::Client>> conns;
  for (int c = 0; c < clients; ++c) {
    conns.push_back(std::make_unique<httplib::Client>("127.0.0.1", http.bound_port()));
    conns.back()->set_keep_alive(true);
  }
  std::atomic<std::uint64_t> failures{0};
  const double cpu_before = process_cpu_seconds();
  for (auto _ : state) {
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        for (int i = 0; i < kPostsPerClientPerIteration; ++i) {
          const auto res = conns[static_cast<std::size_t>(c)]->Post(
              "/api/push", bodies[static_cast<std::size_t>(c + i) % bodies.size()], "application/json");
          if (!res || res->status != 200) failures.fetch_add(1);
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  const double cpu = process_cpu_seconds() - cpu_before;
  const auto metrics_sent = static_cast<double>(state.iterations()) * clients * kPostsPerClientPerIteration * kValuesPerPost;
  state.SetItemsProcessed(static_cast<std::int64_t>(metrics_sent));
  state.counters["cpu_s_per_M"] = cpu / (metrics_sent / 1e6);
  state.counters["failed_posts"] = static_cast<double>(failures.load());
  state.counters["body_KiB"] = static_cast<double>(bodies[0].size()) / 1024.0;
  conns.clear();  // closing the keep-alive connections lets the server's threads finish at once
  http.stop();
  if (memory_bus) {
    const auto produced = static_cast<std::uint64_t>(metrics_sent);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (drain.messages.load() < produced && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    state.counters["bus_lost"] = static_cast<double>(produced - std::min(produced, drain.messages.load()));
  }
  consumer->stop();
  consumer_thread.join();
}

BENCHMARK(BM_FalconHttpPush)
    ->ArgsProduct({{1, 2, 4}, {0, 1}})
    ->ArgNames({"clients", "memory_bus"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(3.0);

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();
