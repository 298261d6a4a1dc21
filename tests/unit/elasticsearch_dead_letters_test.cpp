#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/metrics.hpp"
#include "fixtures/process.hpp"
#include "sinks/dead_letters.hpp"

namespace sluice::sinks {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<nlohmann::json> records(const std::string& file) {
  std::vector<nlohmann::json> out;
  std::istringstream in(testing::read_file(file));
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(DeadLetters, WritesOneJsonLinePerRecordAndCountsBySinkAndReason) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  DeadLetters dl(dir / "dead", metrics, 1 << 20);
  ASSERT_TRUE(dl.write("elasticsearch", "mapper_parsing_exception",
                       "{\"create\":{\"_index\":\"logs\"}}\n{\"n\":\"x\"}", "400: failed to parse field [n]"));
  const std::vector<DeadLetter> two = {{"status_404", "bad\xff", ""}, {"mapper_parsing_exception", "r2", "d2"}};
  ASSERT_TRUE(dl.write("elasticsearch", two));
  ASSERT_TRUE(dl.write("clickhouse", "too_large", "row", ""));

  EXPECT_EQ(files_in(dir / "dead"), (std::vector<std::string>{"dead-letters-0000000001.ndjson"}));
  const auto r = records(dir / "dead/dead-letters-0000000001.ndjson");
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0]["sink"], "elasticsearch");
  EXPECT_EQ(r[0]["reason"], "mapper_parsing_exception");
  EXPECT_EQ(r[0]["detail"], "400: failed to parse field [n]");
  EXPECT_EQ(r[0]["record"], "{\"create\":{\"_index\":\"logs\"}}\n{\"n\":\"x\"}");
  EXPECT_EQ(r[0]["time"].get<std::string>().size(), 24u);  // 2026-11-21T15:23:26.123Z
  EXPECT_EQ(r[1]["record"], "bad\xEF\xBF\xBD");
  EXPECT_EQ(r[2]["detail"], "d2");
  EXPECT_EQ(r[3]["sink"], "clickhouse");
  EXPECT_EQ(metrics.counter_value("dead_letters_total", {{"sink", "elasticsearch"}, {"reason", "mapper_parsing_exception"}}), 2u);
  EXPECT_EQ(metrics.counter_value("dead_letters_total", {{"sink", "elasticsearch"}, {"reason", "status_404"}}), 1u);
  EXPECT_EQ(metrics.counter_value("dead_letters_total", {{"sink", "clickhouse"}, {"reason", "too_large"}}), 1u);
  EXPECT_EQ(dl.bytes(), fs::file_size(dir / "dead/dead-letters-0000000001.ndjson"));
}

TEST(DeadLetters, RotatesAndRemovesTheOldestFilesBeyondTheBound) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  const std::string record(1000, 'x');  // each line ~1.1 KB; files close past 2 KB (a quarter of 8 KB)
  {
    DeadLetters dl(dir / "dead", metrics, 8192);
    for (int i = 0; i < 40; ++i) ASSERT_TRUE(dl.write("es", "r", record + std::to_string(i)));
    EXPECT_LE(dl.bytes(), 8192u);
  }
  const auto names = files_in(dir / "dead");
  ASSERT_FALSE(names.empty());
  // 40 records in files of 2 lines (the second line passes 2 KB): 20 files made, the oldest removed.
  EXPECT_EQ(names.back(), "dead-letters-0000000020.ndjson");
  EXPECT_GT(metrics.counter_total("dead_letter_files_removed_total"), 10u);
  EXPECT_EQ(metrics.counter_total("dead_letter_files_removed_total"), 20u - names.size());
  std::uint64_t total = 0;
  for (const auto& n : names) total += fs::file_size(dir / ("dead/" + n));
  EXPECT_LE(total, 8192u);
  // The newest records are the ones kept.
  const auto last = records(dir / ("dead/" + names.back()));
  EXPECT_EQ(last.back()["record"], record + "39");

  // A new instance continues the sequence and counts the bytes already there.
  DeadLetters again(dir / "dead", metrics, 8192);
  EXPECT_EQ(again.bytes(), total);
  ASSERT_TRUE(again.write("es", "r", "after restart"));
  EXPECT_EQ(files_in(dir / "dead").back(), "dead-letters-0000000021.ndjson");
}

TEST(DeadLetters, AnUnwritableDirectoryIsReportedNotLost) {
  testing::TempDir dir;
  MetricsRegistry metrics;
  testing::write_file(dir / "file", "not a directory");
  DeadLetters dl(dir / "file/dead", metrics, 1 << 20);
  EXPECT_FALSE(dl.write("es", "r", "x"));
  EXPECT_EQ(metrics.counter_total("dead_letter_write_errors_total"), 1u);
  EXPECT_EQ(metrics.counter_total("dead_letters_total"), 0u);
}

TEST(DeadLetters, EscapesAsJson) {
  std::string out;
  EXPECT_EQ(append_json_escaped(out, "q\"b\\n\n\x01\xC3\xA9\xC3"), 1u);
  EXPECT_EQ(out, "q\\\"b\\\\n\\n\\u0001\xC3\xA9\xEF\xBF\xBD");
}

}  // namespace
}  // namespace sluice::sinks
