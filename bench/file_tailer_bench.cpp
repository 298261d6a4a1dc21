// File tailer throughput: 200-byte lines from a file (written before, or growing while tailed) into a publisher
// that acknowledges at once. Reports bytes/s and lines/s of acknowledged lines.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>
#include <vector>

#include "../tests/fixtures/process.hpp"
#include "core/log_record.hpp"
#include "core/metrics.hpp"
#include "sources/files/file_tailer.hpp"

namespace {

using namespace std::chrono_literals;
using sluice::sources::FileTailer;

constexpr std::size_t kLineBytes = 200;
constexpr std::size_t kFileBytes = std::size_t{256} << 20;

class AckingPublisher : public sluice::sources::ChunkPublisher {
 public:
  bool publish(std::string_view, std::string_view, std::span<const std::byte> chunk, std::uint64_t cookie) override {
    std::uint32_t lines = 0;
    for (int i = 6; i < 10; ++i) lines = (lines << 8) | static_cast<std::uint8_t>(chunk[i]);
    lines_ += lines;
    tailer->on_delivery(cookie, true);
    return true;
  }
  FileTailer* tailer = nullptr;
  std::atomic<std::uint64_t> lines_{0};
};

// One 1 MiB block of numbered 200-byte lines.
std::string block(std::size_t& n) {
  std::string out;
  out.reserve(1 << 20);
  while (out.size() + kLineBytes <= (1u << 20)) {
    char head[32];
    int len = std::snprintf(head, sizeof head, "%012zu level=info msg=", n++);
    out.append(head, static_cast<std::size_t>(len));
    out.append(kLineBytes - 1 - static_cast<std::size_t>(len), 'a' + static_cast<char>(n % 26));
    out.push_back('\n');
  }
  return out;
}

// The writer only appends prepared blocks, so that the growing-file figure measures the tailer, not snprintf.
void write_blocks(int fd, std::size_t bytes) {
  static const std::vector<std::string> blocks = [] {
    std::vector<std::string> out;
    std::size_t n = 0;
    for (int i = 0; i < 16; ++i) out.push_back(block(n));
    return out;
  }();
  std::size_t written = 0;
  for (std::size_t i = 0; written < bytes; ++i) {
    const auto& b = blocks[i % blocks.size()];
    if (::write(fd, b.data(), b.size()) != static_cast<ssize_t>(b.size())) std::abort();
    written += b.size();
  }
}

void run(benchmark::State& state, bool growing) {
  sluice::testing::TempDir dir("tailer-bench");
  auto log = dir / "bench.log";
  std::size_t total_bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::filesystem::remove_all(dir / "data");
    std::filesystem::remove(log);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (!growing) write_blocks(fd, kFileBytes);
    sluice::MetricsRegistry metrics;
    AckingPublisher pub;
    sluice::sources::FileTailerConfig cfg;
    cfg.host = "bench";
    cfg.data_dir = dir / "data";
    cfg.default_topic = "logs";
    FileTailer tailer(cfg, pub, metrics);
    pub.tailer = &tailer;
    sluice::sources::FileSourceConfig src;
    src.name = "bench";
    src.include = {log};
    tailer.set_sources({src});
    state.ResumeTiming();

    tailer.start();
    std::thread writer;
    if (growing) writer = std::thread([&] { write_blocks(fd, kFileBytes); });
    const std::uint64_t want = (kFileBytes >> 20) * ((1u << 20) / kLineBytes);
    while (pub.lines_ < want) std::this_thread::sleep_for(100us);
    if (writer.joinable()) writer.join();

    state.PauseTiming();
    tailer.stop(std::chrono::steady_clock::now() + 1s);
    ::close(fd);
    total_bytes += want * kLineBytes;
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(total_bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(total_bytes / kLineBytes));
  state.counters["lines/s"] = benchmark::Counter(static_cast<double>(total_bytes / kLineBytes),
                                                 benchmark::Counter::kIsRate);
}

void BM_TailWrittenFile(benchmark::State& state) { run(state, false); }
void BM_TailGrowingFile(benchmark::State& state) { run(state, true); }

BENCHMARK(BM_TailWrittenFile)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_TailGrowingFile)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
