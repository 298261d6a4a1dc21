// The file tailer finishing files from their compressed rotations: a file renamed and gzipped while the tailer was
// down (kill, no clean stop) is read on from its .gz with the same identity; corrupt and half-written gzip files.
#include <filesystem>

#include "file_tailer_test_support.hpp"

namespace sluice::sources::test {
namespace {

using sluice::testing::eventually;
using sluice::testing::read_file;
using sluice::testing::run_command;
using sluice::testing::TempDir;
using sluice::testing::write_file;

std::uint64_t compressed(Harness& h) {
  return h.metrics.counter_value("files_rotations_total", {{"kind", "compressed"}});
}
std::uint64_t gzip_errors(Harness& h) { return h.metrics.counter_total("files_gzip_errors_total"); }

// Tails lines 1..1000 of app.log until their checkpoint is written, then kills the tailer and, while it is down,
// appends `unread` (lines the tailer never saw), renames app.log to app.log.1 and creates app.log anew with
// lines 2001..2100. Returns the file id of the first app.log.
std::uint64_t tail_then_kill_then_rotate(Harness& h, const TempDir& dir, const std::string& unread) {
  auto log = dir / "app.log";
  append(log, lines_from(1, 1000));
  h.start({source({log + "*"}, {"*.gz"})});
  EXPECT_TRUE(eventually([&] { return all_arrived(h.pub, 1000); }, 10s));
  EXPECT_TRUE(eventually(
      [&] { return read_file(dir / "data/files/checkpoints.json").find("\"offset\":100000") != std::string::npos; },
      10s));
  std::uint64_t id = h.pub.lines().at(0).file_id;
  h.kill();
  append(log, unread);
  std::filesystem::rename(log, dir / "app.log.1");
  append(log, lines_from(2001, 2100));
  return id;
}

TEST(FileTailerGzip, FileRenamedAndGzippedWhileDownIsReadOnFromTheGzWithTheSameIdentity) {
  TempDir dir("tailer-gz");
  Harness h(dir / "data");
  // The last line of the rotated file has no newline: it is emitted when the file is finished.
  std::string last = numbered(2000);
  last.pop_back();
  auto id = tail_then_kill_then_rotate(h, dir, lines_from(1001, 1999) + last);
  auto r = run_command({"gzip", dir / "app.log.1"}, 30s);  // app.log.1.gz, app.log.1 deleted
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_FALSE(std::filesystem::exists(dir / "app.log.1"));
  // A gzip file nobody tails: never read, even though its name matches the include glob.
  write_file(dir / "other.log", lines_from(5001, 5100));
  ASSERT_EQ(run_command({"gzip", dir / "other.log"}, 30s).exit_code, 0);
  std::filesystem::rename(dir / "other.log.gz", dir / "app.log.old.gz");

  h.start({source({dir / "app.log*"}, {"*.gz"})});
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 2100); }, 10s));
  auto lines = h.pub.lines();
  expect_exactly_once(tally(lines), 2100, true);  // the checkpoint was current at the kill: no duplicate either
  EXPECT_EQ(tally(lines).other, 0u);
  for (const auto& l : lines) {
    long n = std::stol(l.text.substr(1, 9));
    if (n > 2000) continue;
    EXPECT_EQ(l.file_id, id) << n;
    EXPECT_EQ(l.path, dir / "app.log") << n;
    EXPECT_EQ(l.offset, static_cast<std::uint64_t>(n - 1) * 100) << n;
  }
  EXPECT_EQ(compressed(h), 1u);
  EXPECT_EQ(gzip_errors(h), 0u);
  // Read and acknowledged: closed, and remembered as finished.
  ASSERT_TRUE(eventually(
      [&] {
        auto status = h.tailer->status();
        for (const auto& f : status["sources"][0]["files"]) {
          if (f["file_id"] == id) return f["state"] == "closed" && f["acked_offset"] == 2000 * 100 - 1;
        }
        return false;
      },
      10s));
  h.stop();
  EXPECT_NE(read_file(dir / "data/files/checkpoints.json").find("\"finished\":true"), std::string::npos);

  // Restarted once more: the finished file's .gz is not read again.
  h.start({source({dir / "app.log*"}, {"*.gz"})});
  append(dir / "app.log", lines_from(2101, 2200));
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 2200); }, 10s));
  h.stop();
  expect_exactly_once(tally(h.pub.lines()), 2200, true);
  EXPECT_EQ(compressed(h), 1u);
}

TEST(FileTailerGzip, CopytruncatedAndCompressedWhileDownIsReadOnFromTheGzWithTheSameIdentity) {
  TempDir dir("tailer-gz");
  auto log = dir / "app.log";
  Harness h(dir / "data");
  append(log, lines_from(1, 1000));
  h.start({source({log + "*"}, {"*.gz"})});
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 1000); }, 10s));
  ASSERT_TRUE(eventually(
      [&] { return read_file(dir / "data/files/checkpoints.json").find("\"offset\":100000") != std::string::npos; },
      10s));
  std::uint64_t id = h.pub.lines().at(0).file_id;
  h.kill();
  // While down: lines never read, then logrotate's copytruncate + compress (copy, truncate, gzip the copy).
  append(log, lines_from(1001, 2000));
  std::filesystem::copy_file(log, dir / "app.log.1");
  std::filesystem::resize_file(log, 0);
  append(log, lines_from(2001, 2100));
  ASSERT_EQ(run_command({"gzip", dir / "app.log.1"}, 30s).exit_code, 0);

  h.start({source({log + "*"}, {"*.gz"})});
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 2100); }, 10s));
  auto lines = h.pub.lines();
  expect_exactly_once(tally(lines), 2100, true);
  for (const auto& l : lines) {
    long n = std::stol(l.text.substr(1, 9));
    EXPECT_EQ(l.path, log);
    if (n <= 2000) {
      EXPECT_EQ(l.file_id, id) << n;
      EXPECT_EQ(l.offset, static_cast<std::uint64_t>(n - 1) * 100) << n;
    } else {
      EXPECT_NE(l.file_id, id) << n;  // the truncated file's new content: a new identity
    }
  }
  EXPECT_EQ(compressed(h), 1u);
  EXPECT_EQ(gzip_errors(h), 0u);
}

TEST(FileTailerGzip, CorruptGzipIsCountedAndNeverStopsTheTailer) {
  TempDir dir("tailer-gz");
  Harness h(dir / "data");
  tail_then_kill_then_rotate(h, dir, lines_from(1001, 2000));
  ASSERT_EQ(run_command({"gzip", dir / "app.log.1"}, 30s).exit_code, 0);
  // Damage its CRC: the data (and so the fingerprint) decompresses, the check at the end fails. (Damage inside
  // the deflate data may as well read as a stream cut short: that is reported once it has not changed for 30 s.)
  std::string gz = read_file(dir / "app.log.1.gz");
  ASSERT_GT(gz.size(), 8u);
  for (std::size_t i = gz.size() - 8; i < gz.size() - 4; ++i) gz[i] = static_cast<char>(gz[i] ^ 0x5a);
  write_file(dir / "app.log.1.gz", gz);
  // Gzip magic followed by junk, with a name the source matches.
  write_file(dir / "app.log.2.gz", std::string("\x1f\x8b", 2) + std::string(3000, 'j'));

  h.start({source({dir / "app.log*"}, {"*.gz"})});
  ASSERT_TRUE(eventually([&] { return gzip_errors(h) == 2; }, 10s)) << gzip_errors(h);
  // The tailer goes on: the current file arrives, and later lines too.
  append(dir / "app.log", lines_from(2101, 2200));
  ASSERT_TRUE(eventually(
      [&] {
        auto t = tally(h.pub.lines());
        return t.unique.count(2200) && t.unique.count(2001);
      },
      10s));
  auto t = tally(h.pub.lines());
  // Nothing of the damaged file's unread lines (1001..2000) is read from the damaged .gz.
  for (long n = 1001; n <= 2000; ++n) EXPECT_EQ(t.unique.count(n), 0u) << n;
  EXPECT_EQ(compressed(h), 0u);
  EXPECT_EQ(gzip_errors(h), 2u);  // counted once per file, not once per scan
}

TEST(FileTailerGzip, HalfWrittenGzipIsRetriedUntilItIsComplete) {
  TempDir dir("tailer-gz");
  Harness h(dir / "data");
  auto id = tail_then_kill_then_rotate(h, dir, lines_from(1001, 2000));
  auto r = run_command({"gzip", "-c", dir / "app.log.1"}, 30s);
  ASSERT_EQ(r.exit_code, 0);
  std::string gz = r.out;
  ASSERT_GT(gz.size(), 4000u);
  std::filesystem::remove(dir / "app.log.1");
  // logrotate (gzip) is still writing it: the stream stops before its trailer.
  write_file(dir / "app.log.1.gz", gz.substr(0, gz.size() / 2));

  h.start({source({dir / "app.log*"}, {"*.gz"})});
  // The scan that finds the new app.log looks at the .gz too, before app.log is read: once line 2100 is there,
  // the half-written file has been tried (and is tried again only when it changes).
  ASSERT_TRUE(eventually([&] { return tally(h.pub.lines()).unique.count(2100) == 1; }, 10s));
  auto t = tally(h.pub.lines());
  for (long n = 1001; n <= 2000; ++n) ASSERT_EQ(t.unique.count(n), 0u) << n;
  EXPECT_EQ(gzip_errors(h), 0u);  // not final yet: no error

  append(dir / "app.log.1.gz", gz.substr(gz.size() / 2));
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 2100); }, 10s));
  auto lines = h.pub.lines();
  expect_exactly_once(tally(lines), 2100, true);
  for (const auto& l : lines) {
    if (std::stol(l.text.substr(1, 9)) <= 2000) {
      EXPECT_EQ(l.file_id, id);
    }
  }
  EXPECT_EQ(compressed(h), 1u);
  EXPECT_EQ(gzip_errors(h), 0u);
}

// The loss of the logrotate case "create + compress + delaycompress, down across two rotations": the tailer was
// killed right after a rotation, before it saw the file that rotation created (app.log had been replaced, but its
// checkpoint still named the previous file there). Two more rotations while down renamed that never-seen file to
// app.log.1, then compressed it to app.log.2.gz: its lines were in a .gz matching no known file and were not read.
// A never-seen numbered rotation is read in full when a known file of the same log has a higher number (it was
// rotated after a file sluice knows, so sluice can not have read it); older unknown history is not read.
TEST(FileTailerGzip, NeverSeenRotationCompressedWhileDownIsReadInFullWhenNewerThanAKnownOne) {
  TempDir dir("tailer-gz");
  auto log = dir / "app.log";
  Harness h(dir / "data");
  append(log, lines_from(1, 1000));
  h.start({source({log + "*"}, {"*.gz"})});
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 1000); }, 10s));
  ASSERT_TRUE(eventually(
      [&] { return read_file(dir / "data/files/checkpoints.json").find("\"offset\":100000") != std::string::npos; },
      10s));
  const std::uint64_t id_a = h.pub.lines().at(0).file_id;
  h.kill();
  // Compressed history of files sluice never knew, older than the known file: never read.
  write_file(dir / "old.log", lines_from(9001, 9100));
  ASSERT_EQ(run_command({"gzip", dir / "old.log"}, 30s).exit_code, 0);
  std::filesystem::rename(dir / "old.log.gz", dir / "app.log.9.gz");
  auto rotate = [&](long first, long last) {  // logrotate create + compress + delaycompress, numbered
    namespace fs = std::filesystem;
    if (fs::exists(dir / "app.log.2.gz")) fs::rename(dir / "app.log.2.gz", dir / "app.log.3.gz");
    if (fs::exists(dir / "app.log.1")) fs::rename(dir / "app.log.1", dir / "app.log.2");
    std::filesystem::rename(log, dir / "app.log.1");
    append(log, lines_from(first, last));
    if (std::filesystem::exists(dir / "app.log.2")) {
      ASSERT_EQ(run_command({"gzip", dir / "app.log.2"}, 30s).exit_code, 0);
    }
  };
  append(log, lines_from(1001, 1100));  // the known file's unread tail
  rotate(1101, 1200);                   // the file created just before the kill: never seen
  rotate(1201, 1300);                   // the known file -> app.log.2.gz
  rotate(1301, 1400);                   // the never-seen file -> app.log.2.gz, the known one -> app.log.3.gz
  ASSERT_TRUE(std::filesystem::exists(dir / "app.log.3.gz"));
  ASSERT_TRUE(std::filesystem::exists(dir / "app.log.2.gz"));
  ASSERT_FALSE(std::filesystem::exists(dir / "app.log.2"));

  h.start({source({log + "*"}, {"*.gz"})});
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 1400); }, 10s))
      << tally(h.pub.lines()).unique.size() << " of 1400 arrived";
  // Time for anything more (the history .gz) to be read, were it read.
  ASSERT_TRUE(eventually([&] { return compressed(h) == 2u; }, 10s));
  auto lines = h.pub.lines();
  expect_exactly_once(tally(lines), 1400, true);
  std::set<std::uint64_t> ids_b;
  for (const auto& l : lines) {
    long n = std::stol(l.text.substr(1, 9));
    // The never-seen .gz carries the path it was rotated from; the never-seen app.log.1 (1201..1300) is a plain
    // file found under that name, and keeps it, as any file found after its rotation.
    EXPECT_EQ(l.path, n > 1200 && n <= 1300 ? dir / "app.log.1" : log) << n;
    if (n <= 1100) {
      EXPECT_EQ(l.file_id, id_a) << n;
      EXPECT_EQ(l.offset, static_cast<std::uint64_t>(n - 1) * 100) << n;
    } else if (n <= 1200) {
      ids_b.insert(l.file_id);
      EXPECT_EQ(l.offset, static_cast<std::uint64_t>(n - 1101) * 100) << n;  // read from its start
    }
  }
  ASSERT_EQ(ids_b.size(), 1u);
  EXPECT_NE(*ids_b.begin(), id_a);
  EXPECT_EQ(compressed(h), 2u);
  EXPECT_EQ(gzip_errors(h), 0u);
  ASSERT_TRUE(eventually(
      [&] {
        auto status = h.tailer->status();
        for (const auto& f : status["sources"][0]["files"]) {
          if (f["file_id"] == *ids_b.begin()) return f["state"] == "closed" && f["acked_offset"] == 100 * 100;
        }
        return false;
      },
      10s));
  h.stop();

  // Restarted: both .gz are finished identities now, neither is read again.
  h.start({source({log + "*"}, {"*.gz"})});
  append(log, lines_from(1401, 1500));
  ASSERT_TRUE(eventually([&] { return all_arrived(h.pub, 1500); }, 10s));
  h.stop();
  expect_exactly_once(tally(h.pub.lines()), 1500, true);
  EXPECT_EQ(compressed(h), 2u);
}

}  // namespace
}  // namespace sluice::sources::test
