// Log shipping end to end with the real binary and real logrotate: a writer appends numbered lines at
// 20 000 lines/s while logrotate rotates the file every two seconds (create or copytruncate, with
// compression); every line number must be in the store exactly once — also when sluice is killed with
// SIGKILL at random moments, and when the Kafka cluster refuses writes for 10 s.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <thread>

#include "fixtures/clickhouse_server.hpp"
#include "fixtures/mock_kafka.hpp"
#include "fixtures/process.hpp"
#include "fixtures/sluice_instance.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

// Appends "line <n> ..." lines, `rate` a second, in batches of one write() every 5 ms, like a logging
// library. In create mode it reopens the path when logrotate moved the file away (as programs do on
// their reopen signal); in copytruncate mode it keeps its O_APPEND descriptor.
class NumberedLineWriter {
 public:
  NumberedLineWriter(std::string path, std::uint64_t total, std::uint64_t rate, bool reopen)
      : path_(std::move(path)), total_(total), rate_(rate), reopen_(reopen) {
    thread_ = std::thread([this] { run(); });
  }
  ~NumberedLineWriter() { join(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t written() const { return written_.load(); }

 private:
  void run() {
    int fd = open_file();
    const auto per_batch = std::max<std::uint64_t>(1, rate_ / 200);
    auto next = std::chrono::steady_clock::now();
    std::string batch;
    char line[160];
    while (written_.load() < total_) {
      if (reopen_) {
        struct stat by_path{}, by_fd{};
        if (::stat(path_.c_str(), &by_path) != 0 || (::fstat(fd, &by_fd) == 0 && by_fd.st_ino != by_path.st_ino)) {
          ::close(fd);
          fd = open_file();
        }
      }
      batch.clear();
      for (std::uint64_t i = 0; i < per_batch && written_.load() + i < total_; ++i) {
        const auto n = written_.load() + i;
        const int len = std::snprintf(line, sizeof line,
                                      "line %09llu level=info msg=\"request served\" path=/api/v1/items/%llu took=%llums\n",
                                      static_cast<unsigned long long>(n), static_cast<unsigned long long>(n % 977),
                                      static_cast<unsigned long long>(n % 250));
        batch.append(line, static_cast<std::size_t>(len));
      }
      const auto lines = static_cast<std::uint64_t>(std::count(batch.begin(), batch.end(), '\n'));
      std::size_t done = 0;
      while (done < batch.size()) {
        const auto n = ::write(fd, batch.data() + done, batch.size() - done);
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
      }
      written_.fetch_add(lines);
      next += 5ms;
      std::this_thread::sleep_until(next);
    }
    ::close(fd);
  }
  int open_file() { return ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644); }

  std::string path_;
  std::uint64_t total_, rate_;
  bool reopen_;
  std::atomic<std::uint64_t> written_{0};
  std::thread thread_;
};

// Runs the real logrotate on the file every `every` until stopped, and counts the rotations it made.
class Rotator {
 public:
  Rotator(const TempDir& dir, const std::string& log, bool copytruncate, std::chrono::milliseconds every)
      : conf_(dir / "logrotate.conf"), state_(dir / "logrotate.state") {
    // Every rotation is kept, so that the test knows which lines are on disk at the end.
    write_file(conf_, log + " {\n  rotate 1000\n  " + (copytruncate ? "copytruncate" : "create 0644") +
                          "\n  compress\n  delaycompress\n  missingok\n}\n");
    thread_ = std::thread([this, every] {
      while (!stop_.load()) {
        std::this_thread::sleep_for(every);
        const auto r = run_command({"/usr/sbin/logrotate", "-f", "-s", state_, conf_});
        if (r.exit_code == 0) ++rotations_;
        else failures_ += r.err + r.out;
      }
    });
  }
  ~Rotator() { stop(); }
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  int rotations() const { return rotations_.load(); }
  const std::string& failures() const { return failures_; }

 private:
  std::string conf_, state_;
  std::atomic<bool> stop_{false};
  std::atomic<int> rotations_{0};
  std::string failures_;
  std::thread thread_;
};

std::string agent_config(const TempDir& dir, const std::string& bus,
                         const std::string& store = "") {
  return "data_dir: " + (dir / "data") + "\n" +
         "shutdown_timeout: 20s\n"
         "admin: {listen: '${SLUICE_ADMIN_LISTEN}'}\n"
         "inlet:\n"
         "  files:\n"
         "    host: test-host\n"
         "    rescan_interval: 500ms\n"
         "    checkpoint_interval: 200ms\n"
         "    sources:\n"
         "      - name: app\n"
         "        include: [" + (dir / "logs") + "/app.log*]\n"
         "        exclude: ['*.gz']\n" +
         bus +
         "outlet:\n"
         "  batch: {max_rows: 50000, max_delay: 300ms}\n"
         "  commit_interval: 200ms\n" +
         (store.empty() ? "  chdb: {path: " + (dir / "data") + "/chdb}\n" : store) +
         "  logs: {}\n";
}

std::string kafka_bus(const MockKafka& kafka) {
  // lz4: the mock cluster keeps only about 5 MB per partition, counted compressed, and one file's lines
  // all go to one partition; a restarted outlet must find what it has not read yet.
  return "bus:\n  kafka:\n    brokers: " + kafka.bootstrap() +
         "\n    partitions: 4\n    consumer_group: logs-e2e\n    session_timeout: 6s\n"
         "    producer_properties: {compression.type: lz4}\n";
}

struct Totals {
  std::uint64_t rows = 0, lines = 0, distinct = 0, low = 0, high = 0;
};

Totals totals(SluiceInstance& sluice) {
  const auto text = sluice.query(
      "SELECT count(), uniqExact(Message), min(toUInt64(substring(Message, 6, 9))), "
      "max(toUInt64(substring(Message, 6, 9))) FROM sluice.logs FINAL");
  Totals t;
  std::sscanf(text.c_str(), "%lu\t%lu\t%lu\t%lu", &t.lines, &t.distinct, &t.low, &t.high);
  t.rows = sluice.query_u64("SELECT count() FROM sluice.logs");
  return t;
}

// Waits until the store holds `expected` lines (FINAL), then checks each number is there once.
void expect_every_line_once(SluiceInstance& sluice, std::uint64_t expected) {
  Totals t;
  const bool arrived = eventually(
      [&] {
        t = totals(sluice);
        return t.lines >= expected;
      },
      120s);
  EXPECT_TRUE(arrived) << "stored " << t.lines << " of " << expected << " lines";
  EXPECT_EQ(t.lines, expected);
  EXPECT_EQ(t.distinct, expected) << "a line is in the store twice under different identities";
  EXPECT_EQ(t.low, 0u);
  EXPECT_EQ(t.high, expected - 1);
  // Physical copies (a line read again after a crash) are allowed, and merged away by FINAL.
  EXPECT_GE(t.rows, t.lines);
  std::printf("stored %lu lines (%lu rows before merging duplicates)\n", t.lines, t.rows);
}

// The line numbers found in the log directory: the file, its rotations and their compressed forms.
std::vector<bool> lines_on_disk(const std::string& logs, std::uint64_t total) {
  const auto r = run_command({"/bin/sh", "-c",
                              "cd '" + logs + "' && { cat app.log app.log.[0-9] app.log.[0-9][0-9] 2>/dev/null; "
                              "zcat app.log.*.gz 2>/dev/null; } | cut -c6-14"});
  std::vector<bool> seen(total);
  std::size_t at = 0;
  while (at < r.out.size()) {
    auto end = r.out.find('\n', at);
    if (end == std::string::npos) end = r.out.size();
    const auto n = std::strtoull(r.out.c_str() + at, nullptr, 10);
    if (n < total) seen[n] = true;
    at = end + 1;
  }
  return seen;
}

// copytruncate has a window that no reader can close: lines written between the end of logrotate's
// copy and its truncation are in no file (logrotate's manual says so). Every line that is on disk, or
// that sluice read before the truncation, must be in the store exactly once, and nothing else.
void expect_every_line_on_disk_once(SluiceInstance& sluice, const std::string& logs, std::uint64_t total) {
  const auto on_disk = lines_on_disk(logs, total);
  const auto disk_count = static_cast<std::uint64_t>(std::count(on_disk.begin(), on_disk.end(), true));
  std::vector<std::uint32_t> stored(total);
  std::uint64_t foreign = 0;
  const bool arrived = eventually(
      [&] {
        std::fill(stored.begin(), stored.end(), 0);
        foreign = 0;
        const auto text = sluice.query("SELECT substring(Message, 6, 9) FROM sluice.logs FINAL");
        std::size_t at = 0;
        while (at < text.size()) {
          auto end = text.find('\n', at);
          if (end == std::string::npos) end = text.size();
          const auto n = std::strtoull(text.c_str() + at, nullptr, 10);
          if (n < total) ++stored[n];
          else ++foreign;
          at = end + 1;
        }
        for (std::uint64_t n = 0; n < total; ++n) {
          if (on_disk[n] && stored[n] == 0) return false;
        }
        return true;
      },
      120s);
  std::uint64_t missing = 0, twice = 0, read_before_truncation = 0;
  for (std::uint64_t n = 0; n < total; ++n) {
    if (on_disk[n] && stored[n] == 0) ++missing;
    if (stored[n] > 1) ++twice;
    if (!on_disk[n] && stored[n] == 1) ++read_before_truncation;
  }
  EXPECT_TRUE(arrived);
  EXPECT_EQ(missing, 0u) << "lines on disk that never reached the store";
  EXPECT_EQ(twice, 0u) << "lines stored under two identities";
  EXPECT_EQ(foreign, 0u);
  std::printf("%lu of %lu lines on disk after the rotations; all stored once; %lu more lost from disk by "
              "copytruncate were read before the truncation and stored; %lu lost by logrotate\n",
              disk_count, total, read_before_truncation, total - disk_count - read_before_truncation);
}

void rotations_deliver_every_line_once(bool copytruncate) {
  TempDir dir("sluice-logs-e2e");
  std::filesystem::create_directories(dir / "logs");
  const std::string log = dir / "logs/app.log";
  SluiceInstance sluice("run", agent_config(dir, ""), dir);
  sluice.start();
  constexpr std::uint64_t kLines = 300'000;
  {
    NumberedLineWriter writer(log, kLines, 20'000, !copytruncate);
    Rotator rotator(dir, log, copytruncate, 2s);
    writer.join();
    rotator.stop();
    EXPECT_GE(rotator.rotations(), 5) << rotator.failures();
  }
  if (copytruncate) expect_every_line_on_disk_once(sluice, dir / "logs", kLines);
  else expect_every_line_once(sluice, kLines);
  EXPECT_EQ(sluice.metric("sluice_files_lines_read_total"), sluice.metric("sluice_logs_lines_total"));
  EXPECT_EQ(sluice.stop(), 0) << sluice.log();
}

TEST(LogShippingE2E, CreateRotationWithCompressionDeliversEveryLineOnce) { rotations_deliver_every_line_once(false); }

// The same into a ClickHouse server (18.16: DateTime, Fields as nested arrays), through Kafka; this
// variant also runs under AddressSanitizer, where the embedded store cannot be loaded.
TEST(LogShippingE2E, RotationsIntoAClickHouseServerThroughKafkaDeliverEveryLineOnce) {
  ClickHouseServer server;
  MockKafka kafka(1, {{"sluice-flows", 4}, {"sluice-logs", 4}, {"sluice-flow-templates", 1}});
  TempDir dir("sluice-logs-server");
  std::filesystem::create_directories(dir / "logs");
  const std::string log = dir / "logs/app.log";
  SluiceInstance sluice("run", agent_config(dir, kafka_bus(kafka), "  clickhouse: {url: '" + server.url() + "'}\n"),
                        dir);
  sluice.start();
  constexpr std::uint64_t kLines = 100'000;
  {
    NumberedLineWriter writer(log, kLines, 20'000, true);
    Rotator rotator(dir, log, false, 1500ms);
    writer.join();
    rotator.stop();
    EXPECT_GE(rotator.rotations(), 2) << rotator.failures();
  }
  expect_every_line_once(sluice, kLines);
  EXPECT_EQ(sluice.stop(), 0) << sluice.log();
}

TEST(LogShippingE2E, CopytruncateRotationWithCompressionDeliversEveryLineOnce) {
  rotations_deliver_every_line_once(true);
}

void kill_nine_at_random_moments_loses_no_line(const std::string& bus) {
  TempDir dir("sluice-logs-kill");
  std::filesystem::create_directories(dir / "logs");
  const std::string log = dir / "logs/app.log";
  SluiceInstance sluice("run", agent_config(dir, bus), dir);
  sluice.start();
  constexpr std::uint64_t kLines = 300'000;
  std::mt19937 rng(20261121);
  int kills = 0;
  {
    NumberedLineWriter writer(log, kLines, 20'000, true);
    Rotator rotator(dir, log, false, 2500ms);
    while (writer.written() < kLines * 8 / 10) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500 + rng() % 2500));
      sluice.kill9();
      ++kills;
      sluice.start();
    }
    writer.join();
    rotator.stop();
  }
  EXPECT_GE(kills, 3);
  expect_every_line_once(sluice, kLines);
  EXPECT_EQ(sluice.stop(), 0) << sluice.log();
}

TEST(LogShippingE2E, KillNineAtRandomMomentsLosesNoLineThroughKafka) {
  MockKafka kafka(1, {{"sluice-flows", 4}, {"sluice-logs", 4}, {"sluice-flow-templates", 1}});
  kill_nine_at_random_moments_loses_no_line(kafka_bus(kafka));
}

// The memory bus loses what it holds when killed; the checkpoints only moved for what was stored.
TEST(LogShippingE2E, KillNineAtRandomMomentsLosesNoLineWithTheMemoryBus) { kill_nine_at_random_moments_loses_no_line(""); }

TEST(LogShippingE2E, ShippedAgentConfigTailsThePathsFromTheEnvironmentAndParsesJsonLines) {
  TempDir dir("sluice-agent");
  std::filesystem::create_directories(dir / "logs");
  SluiceInstance sluice("run", read_file(std::string(SLUICE_SOURCE_DIR) + "/config/agent.yaml"), dir,
                        {{"SLUICE_DATA_DIR", dir / "data"}, {"SLUICE_LOG_PATHS", dir / "logs/*.log"}});
  sluice.start();
  std::string text;
  for (int i = 0; i < 1000; ++i) {
    text += "{\"level\":\"" + std::string(i % 10 == 0 ? "error" : "info") + "\",\"n\":" + std::to_string(i) +
            ",\"msg\":\"request " + std::to_string(i) + "\"}\n";
  }
  text += "plain text line\n";
  write_file(dir / "logs/service.log", text);
  EXPECT_TRUE(eventually([&] { return sluice.query_u64("SELECT count() FROM sluice.logs FINAL") == 1001; }, 60s))
      << sluice.log();
  EXPECT_EQ(sluice.query("SELECT countIf(Fields['level'] = 'error'), countIf(Fields['n'] != ''), uniqExact(Fields['n']), "
                         "countIf(Message = 'plain text line' AND Fields['error'] = '') FROM sluice.logs FINAL"),
            "100\t1000\t1001\t1\n");
  EXPECT_EQ(sluice.stop(), 0) << sluice.log();
}

TEST(LogShippingE2E, KafkaRefusingWritesForTenSecondsLosesNoLine) {
  MockKafka kafka(1, {{"sluice-flows", 4}, {"sluice-logs", 4}, {"sluice-flow-templates", 1}});
  TempDir dir("sluice-logs-outage");
  std::filesystem::create_directories(dir / "logs");
  const std::string log = dir / "logs/app.log";
  SluiceInstance sluice("run", agent_config(dir, kafka_bus(kafka)), dir);
  sluice.start();
  constexpr std::uint64_t kLines = 400'000;
  {
    NumberedLineWriter writer(log, kLines, 20'000, true);
    Rotator rotator(dir, log, false, 2s);
    std::this_thread::sleep_for(4s);
    ASSERT_EQ(kafka.command("broker_down 1"), "OK");
    const auto before = sluice.metric("sluice_files_lines_read_total");
    std::this_thread::sleep_for(10s);
    ASSERT_EQ(kafka.command("broker_up 1"), "OK");
    // Reading went on while Kafka refused: lines waited in the producer queue, not in the file.
    EXPECT_GT(sluice.metric("sluice_files_lines_read_total"), before);
    writer.join();
    rotator.stop();
  }
  expect_every_line_once(sluice, kLines);
  EXPECT_EQ(sluice.stop(), 0) << sluice.log();
}

}  // namespace
}  // namespace sluice::testing
