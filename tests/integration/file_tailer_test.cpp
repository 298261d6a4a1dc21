// The file tailer on real files: identity, rotation, truncation, restarts, acknowledgements, line limits.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "file_tailer_test_support.hpp"

namespace sluice::sources::test {
namespace {

using sluice::testing::eventually;
using sluice::testing::TempDir;

std::uint64_t counter(Harness& h, const std::string& name) { return h.metrics.counter_total(name); }

TEST(FileTailer, ReadsLinesWithIdentityAndKeyAndResumesAfterACleanStop) {
  TempDir dir("tailer");
  auto log = dir / "app.log";
  append(log, lines_from(1, 1000));
  Harness h(dir / "data");
  h.start({source({dir.path() + "/*.log"})});
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 1000); }, 10s));
  auto lines = h.pub.lines();
  EXPECT_EQ(lines[0].host, "testhost");
  EXPECT_EQ(lines[0].path, log);
  EXPECT_EQ(lines[0].offset, 0u);
  EXPECT_EQ(lines[1].offset, 100u);
  EXPECT_EQ(lines[999].offset, 99900u);
  EXPECT_EQ(lines[0].text, numbered(1).substr(0, 99));
  EXPECT_EQ(h.pub.keys(), std::set<std::string>{"testhost:" + log});
  EXPECT_EQ(h.pub.topics(), std::set<std::string>{"logs"});
  // The tailer's loop publishes its counters after the read that produced the lines, and the publisher records
  // a chunk's lines before it acknowledges the chunk, so both may trail the last arrival by a moment.
  auto file_status = [&] { return h.tailer->status()["sources"][0]["files"][0]; };
  EXPECT_TRUE(eventually(
      [&] { return counter(h, "files_lines_read_total") == 1000u && file_status()["acked_offset"] == 100000; }, 10s))
      << file_status().dump();
  EXPECT_EQ(counter(h, "files_lines_read_total"), 1000u);
  EXPECT_EQ(counter(h, "files_bytes_read_total"), 100000u);
  auto f = file_status();
  EXPECT_EQ(f["path"], log);
  EXPECT_EQ(f["acked_offset"], 100000);
  EXPECT_EQ(f["lag_bytes"], 0);
  std::uint64_t id = lines[0].file_id;
  h.stop();

  append(log, lines_from(1001, 1500));
  h.start({source({dir.path() + "/*.log"})});
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 1500); }, 10s));
  auto t = tally(h.pub.lines());
  expect_exactly_once(t, 1500, true);  // a clean stop: no line is read twice
  for (auto& l : h.pub.lines()) EXPECT_EQ(l.file_id, id);
}

TEST(FileTailer, ReadsAnAppendedLineWithinMilliseconds) {
  TempDir dir("tailer");
  auto log = dir / "app.log";
  append(log, numbered(1));
  Harness h(dir / "data");
  h.start({source({log})});
  ASSERT_TRUE(eventually([&] { return h.pub.lines().size() == 1; }, 10s));
  std::vector<double> ms;
  for (long n = 2; n <= 21; ++n) {
    auto t0 = std::chrono::steady_clock::now();
    append(log, numbered(n));
    while (h.pub.lines().size() < static_cast<std::size_t>(n)) {
      ASSERT_LT(std::chrono::steady_clock::now() - t0, 10s) << "line " << n << " not read";
      std::this_thread::yield();
    }
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("append-to-publish latency: median %.2f ms, max %.2f ms\n", ms[ms.size() / 2], ms.back());
  EXPECT_LT(ms[ms.size() / 2], 50.0);  // inotify-driven, not the 200 ms rescan
}

TEST(FileTailer, StartAtEndSkipsWhatIsThereButReadsFilesCreatedLater) {
  TempDir dir("tailer");
  append(dir / "old.log", lines_from(1, 100) + "partial");
  Harness h(dir / "data");
  auto src = source({dir.path() + "/*.log"});
  src.start_at = StartAt::end;
  h.start({src});
  ASSERT_TRUE(eventually([&] { return h.tailer->status()["sources"][0]["files"].size() == 1; }, 5s));
  append(dir / "old.log", " line\n" + lines_from(101, 110));
  append(dir / "new.log", lines_from(111, 120));
  ASSERT_TRUE(eventually([&] { return h.pub.lines().size() >= 21; }, 10s));
  auto t = tally(h.pub.lines());
  EXPECT_EQ(t.raw.begin()->first, 101);
  EXPECT_EQ(t.raw_total, 20u);
  EXPECT_EQ(t.other, 1u);  // "partial line": the half line at start was not cut in two
}

TEST(FileTailer, RenameRotationReadsTheOldFileToItsEndThenTheNewFromItsStart) {
  TempDir dir("tailer");
  auto log = dir / "app.log";
  append(log, lines_from(1, 500));
  Harness h(dir / "data");
  h.start({source({log})});
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 500); }, 10s));
  // Keep writing to the renamed file (the application has not reopened yet), then delete it while open.
  int old_fd = ::open(log.c_str(), O_WRONLY | O_APPEND);
  std::filesystem::rename(log, dir / "app.log.1");
  append(log, lines_from(1001, 1100));
  std::string more = lines_from(501, 600);
  ASSERT_EQ(::write(old_fd, more.data(), more.size()), static_cast<ssize_t>(more.size()));
  std::filesystem::remove(dir / "app.log.1");
  more = lines_from(601, 1000) + "no newline at the end";
  ASSERT_EQ(::write(old_fd, more.data(), more.size()), static_cast<ssize_t>(more.size()));
  ::close(old_fd);
  ASSERT_TRUE(eventually([&] { return h.pub.lines().size() >= 1101; }, 10s));
  auto t = tally(h.pub.lines());
  expect_exactly_once(t, 1100, true);
  EXPECT_EQ(t.other, 1u);  // the unterminated last line of the deleted file was emitted when it was closed
  EXPECT_GE(counter(h, "files_rotations_total"), 1u);
  ASSERT_TRUE(eventually([&] { return h.metrics.render_prometheus().find("sluice_files_open 1") != std::string::npos; },
                         5s));
}

TEST(FileTailer, CopytruncateContinuesTheCopyWithTheSameIdentityAndReadsTheTruncatedFileAnew) {
  TempDir dir("tailer");
  auto log = dir / "app.log";
  append(log, lines_from(1, 300));
  Harness h(dir / "data");
  h.start({source({dir.path() + "/app.log*"}, {"*.gz"})});
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 300); }, 10s));
  std::uint64_t id = h.pub.lines()[0].file_id;
  // Lines the tailer cannot have read before the truncation: they exist only in the copy.
  h.tailer->stop(std::chrono::steady_clock::now() + 2s);
  h.pub.halt();
  h.tailer.reset();
  append(log, lines_from(301, 400));
  std::filesystem::copy_file(log, dir / "app.log.1");
  std::filesystem::resize_file(log, 0);
  append(log, lines_from(401, 450));
  h.start({source({dir.path() + "/app.log*"}, {"*.gz"})});
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 450); }, 10s));
  // And live: copy, truncate, write.
  append(log, lines_from(451, 500));
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 500); }, 10s));
  std::filesystem::copy_file(log, dir / "app.log.2");
  std::filesystem::resize_file(log, 0);
  append(log, lines_from(501, 600));
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 600); }, 10s));
  auto t = tally(h.pub.lines());
  expect_exactly_once(t, 600, true);
  for (auto& l : h.pub.lines()) {
    long n = std::stol(l.text.substr(1, 9));
    if (n <= 400) {
      EXPECT_EQ(l.file_id, id) << n;
      EXPECT_EQ(l.path, log);
      EXPECT_EQ(l.offset, static_cast<std::uint64_t>(n - 1) * 100) << n;
    }
    if (n > 400 && n <= 500) {
      EXPECT_EQ(l.offset, static_cast<std::uint64_t>(n - 401) * 100) << n;
    }
    if (n > 500) {
      EXPECT_EQ(l.offset, static_cast<std::uint64_t>(n - 501) * 100) << n;
    }
  }
  EXPECT_GE(counter(h, "files_rotations_total"), 2u);
  EXPECT_EQ(h.metrics.counter_value("files_rotations_total", {{"kind", "copy"}}), 2u);
}

TEST(FileTailer, PlainTruncationReadsTheNewContentFromZeroAsANewFile) {
  TempDir dir("tailer");
  auto log = dir / "app.log";
  append(log, lines_from(1, 200));
  Harness h(dir / "data");
  h.start({source({log})});
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 200); }, 10s));
  std::filesystem::resize_file(log, 0);
  append(log, lines_from(201, 210));
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 210); }, 10s));
  auto lines = h.pub.lines();
  expect_exactly_once(tally(lines), 210, true);
  EXPECT_EQ(lines.back().offset, 900u);
  EXPECT_NE(lines.back().file_id, lines.front().file_id);
  EXPECT_EQ(h.metrics.counter_value("files_rotations_total", {{"kind", "truncate"}}), 1u);
}

// Lines 1-50 tailed and checkpointed, then the same inode rewritten with lines 51-150 while the tailer is
// stopped (other content, longer than the checkpointed offset), and the tailer started again until all 150
// arrived.
void tail_rewrite_in_place_and_restart(Harness& h, const std::string& log) {
  append(log, lines_from(1, 50));
  h.start({source({log})});
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 50); }, 10s));
  h.stop();
  std::string other;
  for (long n = 51; n <= 150; ++n) other += numbered(n);
  int fd = ::open(log.c_str(), O_WRONLY | O_TRUNC);
  ASSERT_EQ(::write(fd, other.data(), other.size()), static_cast<ssize_t>(other.size()));
  ::close(fd);
  h.start({source({log})});
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 150); }, 10s));
}

TEST(FileTailer, InodeReusedWithOtherFirstBytesIsANewFile) {
  TempDir dir("tailer");
  auto log = dir / "app.log";
  Harness h(dir / "data");
  // Same inode, other content longer than the checkpointed offset: not a continuation.
  ASSERT_NO_FATAL_FAILURE(tail_rewrite_in_place_and_restart(h, log));
  auto lines = h.pub.lines();
  expect_exactly_once(tally(lines), 150, true);
  EXPECT_EQ(lines[50].offset, 0u);
  EXPECT_NE(lines[50].file_id, lines[0].file_id);
}

// logrotate's `create` can hand a deleted file's inode to the new app.log: the tailer then remembers two
// files on one inode, the old one (other first bytes) and the current one. A restart resumes the one whose
// first bytes match, whichever was remembered first.
TEST(FileTailer, AnInodeHeldByTwoRememberedFilesResumesTheOneWhoseFirstBytesMatch) {
  TempDir dir("tailer");
  auto log = dir / "app.log";
  Harness h(dir / "data");
  ASSERT_NO_FATAL_FAILURE(tail_rewrite_in_place_and_restart(h, log));
  // The old file's wait for a copy of its content ends (copy_window); both stay remembered.
  ASSERT_TRUE(eventually([&] {
    const auto files = h.tailer->status()["sources"][0]["files"];
    return files.size() == 2 && std::none_of(files.begin(), files.end(), [](const auto& f) {
      return f["state"] == "awaiting_copy";
    });
  }, 10s)) << h.tailer->status().dump();
  h.stop();
  append(log, lines_from(151, 200));
  h.start({source({log})});
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 200); }, 10s));
  expect_exactly_once(tally(h.pub.lines()), 200, true);
}

TEST(FileTailer, RotatedWhileDownIsFoundByIdentityUnderItsNewName) {
  TempDir dir("tailer");
  auto log = dir / "app.log";
  append(log, lines_from(1, 100));
  Harness h(dir / "data");
  auto src = source({dir.path() + "/app.log*"});
  src.start_at = StartAt::end;  // resuming ignores start_at
  h.start({source({dir.path() + "/app.log*"})});
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 100); }, 10s));
  h.stop();
  append(log, lines_from(101, 150));
  std::filesystem::rename(log, dir / "app.log.1");
  append(log, lines_from(151, 200));
  h.start({src});
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 200); }, 10s));
  auto lines = h.pub.lines();
  expect_exactly_once(tally(lines), 200, true);
  for (auto& l : lines) EXPECT_EQ(l.path, log);  // the identity keeps the path it was found at
}

TEST(FileTailer, KilledWithoutStopResumesFromTheLastWrittenCheckpoint) {
  TempDir dir("tailer");
  auto log = dir / "app.log";
  Harness h(dir / "data");
  h.pub.defer = true;
  h.pub.fail_every = 97;
  auto cfg = h.config();
  cfg.max_chunk_bytes = 8 << 10;
  long total = 0;
  for (int round = 0; round < 5; ++round) {
    h.start({source({log})}, cfg);
    append(log, lines_from(total + 1, total + 3000));
    total += 3000;
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + 40 * round));  // kill at an arbitrary moment
    h.kill();
  }
  h.start({source({log})}, cfg);
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, total); }, 20s));
  auto t = tally(h.pub.lines());
  expect_exactly_once(t, total, false);  // duplicates are possible after a kill, never loss
  EXPECT_GT(h.pub.failed(), 0u);
  EXPECT_GT(counter(h, "files_rewinds_total"), 0u);
  EXPECT_GT(counter(h, "files_checkpoint_writes_total"), 0u);
  ASSERT_TRUE(eventually([&] { return h.tailer->status()["sources"][0]["files"][0]["acked_offset"] == total * 100; },
                         10s));
  h.stop();
  auto ckpt = sluice::testing::read_file(dir / "data/files/checkpoints.json");
  EXPECT_NE(ckpt.find("\"offset\":" + std::to_string(total * 100)), std::string::npos) << ckpt;
}

TEST(FileTailer, RefusedChunksAreKeptAndRetried) {
  TempDir dir("tailer");
  auto log = dir / "app.log";
  Harness h(dir / "data");
  h.pub.refuse = true;
  h.start({source({log})});
  append(log, lines_from(1, 2000));
  ASSERT_TRUE(eventually([&] { return h.pub.refused() >= 3; }, 10s));
  h.pub.refuse = false;
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 2000); }, 10s));
  expect_exactly_once(tally(h.pub.lines()), 2000, true);
  EXPECT_GE(counter(h, "files_publish_refused_total"), 3u);
}

TEST(FileTailer, InFlightBytesAreBoundedAndOutOfOrderAcksAreHeld) {
  TempDir dir("tailer");
  auto log = dir / "app.log";
  append(log, lines_from(1, 50000));
  Harness h(dir / "data");
  auto cfg = h.config();
  cfg.max_chunk_bytes = 8 << 10;
  cfg.max_in_flight_bytes = 64 << 10;
  h.pub.defer = true;
  h.start({source({log})}, cfg);
  std::size_t peak = 0;
  ASSERT_TRUE(eventually(
      [&] {
        peak = std::max<std::size_t>(peak, h.tailer->status()["in_flight_bytes"].get<std::size_t>());
        return all_arrived(h.pub, 50000);
      },
      20s));
  EXPECT_LE(peak, (64u << 10) + (8u << 10) + 512);  // the limit plus at most one chunk
  expect_exactly_once(tally(h.pub.lines()), 50000, true);
}

TEST(FileTailer, LongLinesInvalidUtf8AndMultilineAreCutAndCounted) {
  TempDir dir("tailer");
  Harness h(dir / "data");
  auto split = source({dir / "split.log"});
  split.name = "split";
  split.max_line_bytes = 100;
  auto trunc = source({dir / "trunc.log"});
  trunc.name = "trunc";
  trunc.max_line_bytes = 100;
  trunc.long_lines = LongLines::truncate;
  auto multi = source({dir / "multi.log"});
  multi.name = "multi";
  multi.multiline = MultilineConfig{MultilineConfig::Mode::start, "^\\[", 300ms, 100};
  append(dir / "split.log", std::string(250, 's') + "\nshort\n");
  append(dir / "trunc.log", std::string(250, 't') + "\nbad \xff\n");
  append(dir / "multi.log", "[1] boom\n  at x\n  at y\n[2] fine\n[3] last\n  tail\n");
  h.start({split, trunc, multi});
  ASSERT_TRUE(eventually([&] { return h.pub.lines().size() >= 9; }, 10s));  // the last event after its timeout
  std::map<std::string, std::vector<StoredLine>> by_file;
  for (auto& l : h.pub.lines()) by_file[l.path].push_back(l);
  auto& s = by_file[dir / "split.log"];
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].flags, kLogLineSplit);
  EXPECT_EQ(s[1].offset, 100u);
  EXPECT_EQ(s[2].text, std::string(50, 's'));
  EXPECT_EQ(s[2].flags, 0);
  auto& t = by_file[dir / "trunc.log"];
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].text, std::string(100, 't'));
  EXPECT_EQ(t[0].flags, kLogLineTruncated);
  EXPECT_EQ(t[1].offset, 251u);
  EXPECT_EQ(t[1].flags, kLogLineInvalidUtf8);
  auto& m = by_file[dir / "multi.log"];
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].text, "[1] boom\n  at x\n  at y");
  EXPECT_EQ(m[0].flags, kLogLineMultiline);
  EXPECT_EQ(m[1].offset, 23u);
  EXPECT_EQ(m[2].text, "[3] last\n  tail");
  EXPECT_EQ(counter(h, "files_lines_split_total"), 2u);
  EXPECT_EQ(counter(h, "files_lines_truncated_total"), 1u);
  EXPECT_EQ(counter(h, "files_lines_invalid_utf8_total"), 1u);
}

TEST(FileTailer, BinaryJunkAndAGiantLineNeverHangOrGrowMemory) {
  TempDir dir("tailer");
  auto junk = dir / "junk.log";
  std::string bytes(24 << 20, '\0');
  std::mt19937 rng(7);
  for (std::size_t i = 0; i < bytes.size(); i += 4096) bytes[i] = static_cast<char>(rng());  // NULs, few newlines
  bytes.back() = '\n';  // a last line without its newline would wait for it
  append(junk, bytes);
  Harness h(dir / "data");
  auto src = source({junk});
  src.max_line_bytes = 4096;
  h.start({src});
  ASSERT_TRUE(eventually(
      [&] { return h.tailer->status()["sources"][0]["files"][0]["acked_offset"] == bytes.size(); }, 30s));
  std::uint64_t sum = 0;
  for (auto& l : h.pub.lines()) {
    EXPECT_LE(l.text.size(), 4096u);
    sum += l.text.size();
  }
  EXPECT_GT(sum, bytes.size() * 9 / 10);
}

TEST(FileTailer, CheckpointsForgetFilesGoneAndFullyRead) {
  TempDir dir("tailer");
  Harness h(dir / "data");
  auto cfg = h.config();
  cfg.forget_after = 300ms;
  append(dir / "a.log", lines_from(1, 10));
  append(dir / "b.log", lines_from(11, 20));
  h.start({source({dir.path() + "/*.log"})}, cfg);
  ASSERT_TRUE(eventually([&] { return h.pub.lines().size() == 20; }, 10s));
  auto ckpt = dir / "data/files/checkpoints.json";
  ASSERT_TRUE(eventually([&] { return sluice::testing::read_file(ckpt).find("a.log") != std::string::npos; }, 5s));
  std::filesystem::remove(dir / "a.log");
  // Closed after rotated_grace, forgotten forget_after later; b.log, still there, stays.
  ASSERT_TRUE(eventually([&] { return sluice::testing::read_file(ckpt).find("a.log") == std::string::npos; }, 10s));
  EXPECT_NE(sluice::testing::read_file(ckpt).find("b.log"), std::string::npos);
  EXPECT_EQ(h.tailer->status()["sources"][0]["files"].size(), 1u);
}

TEST(FileTailer, SetSourcesAddsAndRemovesLive) {
  TempDir dir("tailer");
  Harness h(dir / "data");
  auto a = source({dir / "a.log"});
  a.name = "a";
  auto b = source({dir / "b.log"});
  b.name = "b";
  b.topic = "other";
  append(dir / "a.log", lines_from(1, 10));
  append(dir / "b.log", lines_from(11, 20));
  h.start({a});
  ASSERT_TRUE(eventually([&] { return h.pub.lines().size() == 10; }, 10s));
  h.tailer->set_sources({a, b});
  ASSERT_TRUE(eventually([&] { return h.pub.lines().size() == 20; }, 10s));
  EXPECT_EQ(h.pub.topics(), (std::set<std::string>{"logs", "other"}));
  h.tailer->set_sources({b});
  ASSERT_TRUE(eventually([&] { return h.metrics.render_prometheus().find("sluice_files_open 1") != std::string::npos; },
                         10s));
  append(dir / "a.log", lines_from(21, 30));  // no longer collected
  append(dir / "b.log", lines_from(31, 40));
  ASSERT_TRUE(eventually([&] { return h.pub.lines().size() == 30; }, 10s));
  EXPECT_EQ(h.pub.lines().size(), 30u);
  EXPECT_EQ(tally(h.pub.lines()).raw.count(21), 0u);
}

}  // namespace
}  // namespace sluice::sources::test
