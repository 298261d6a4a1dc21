#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "../fixtures/process.hpp"
#include "sources/files/ack_window.hpp"
#include "sources/files/checkpoint_store.hpp"
#include "sources/files/file_identity.hpp"

namespace sluice::sources {
namespace {

using sluice::testing::TempDir;
using sluice::testing::write_file;

std::optional<Fingerprint> file_fingerprint(const std::string& path, std::size_t bytes, bool whole = false) {
  int fd = ::open(path.c_str(), O_RDONLY);
  auto fp = read_fingerprint(fd, bytes, whole);
  ::close(fd);
  return fp;
}

TEST(FileIdentity, FingerprintCoversTheFirstLineOrTheFirstBytesAndNeverChangesAsTheFileGrows) {
  TempDir dir("file-identity");
  auto p = dir / "a.log";
  write_file(p, "short");
  EXPECT_FALSE(file_fingerprint(p, 256).has_value());  // no complete first line, fewer than 256 bytes
  EXPECT_EQ(file_fingerprint(p, 256, true)->length, 5u);
  write_file(p, "short line\n");
  auto first = file_fingerprint(p, 256);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->length, 11u);
  write_file(p, "short line\nand more lines after it\n");
  EXPECT_EQ(file_fingerprint(p, 256), first);
  write_file(p, std::string(300, 'x'));
  EXPECT_EQ(file_fingerprint(p, 256)->length, 256u);
  write_file(p, "other line\n");
  EXPECT_NE(file_fingerprint(p, 256)->hash, first->hash);
}

// The fingerprint of a never-seen compressed rotation is taken from its decompressed first bytes: it must be the
// one the plain file had, so that a later restart finds that .gz again for the same identity.
TEST(FileIdentity, FingerprintOfBytesEqualsTheFingerprintOfTheFileHoldingThem) {
  TempDir dir("file-identity");
  auto p = dir / "a.log";
  for (std::string content : {std::string("first line\nsecond line\n"), std::string(300, 'y'), std::string("short")}) {
    write_file(p, content);
    EXPECT_EQ(fingerprint_of(content, 256), file_fingerprint(p, 256)) << content;
    EXPECT_EQ(fingerprint_of(content, 256, true), file_fingerprint(p, 256, true)) << content;
  }
  EXPECT_FALSE(fingerprint_of("short", 256).has_value());
  EXPECT_EQ(fingerprint_of("short", 256, true)->length, 5u);
  EXPECT_EQ(fingerprint_of(std::string(5000, 'z'), 8192)->length, 4096u);  // at most 4096 bytes
  EXPECT_EQ(fingerprint_of("a\nb\n", 256)->length, 2u);
  EXPECT_FALSE(fingerprint_of("", 256, true).has_value());
}

TEST(FileIdentity, FileIdDependsOnInodeAndFingerprintAndIsStable) {
  Fingerprint a{42, 10}, b{43, 10};
  EXPECT_EQ(make_file_id(1, 2, a), make_file_id(1, 2, a));
  EXPECT_NE(make_file_id(1, 2, a), make_file_id(1, 3, a));
  EXPECT_NE(make_file_id(1, 2, a), make_file_id(1, 2, b));
  EXPECT_NE(make_file_id(1, 2, a, 0), make_file_id(1, 2, a, 1));
  EXPECT_NE(make_file_id(1, 2, a), 0u);
}

TEST(FileIdentity, FingerprintMatchesOnlyTheSameFirstBytes) {
  TempDir dir("file-identity");
  auto p = dir / "a.log";
  write_file(p, "hello\nworld\n");
  auto fp = *file_fingerprint(p, 256);
  int fd = ::open(p.c_str(), O_RDONLY);
  EXPECT_TRUE(fingerprint_matches(fd, fp));
  ::close(fd);
  write_file(p, "hell");
  fd = ::open(p.c_str(), O_RDONLY);
  EXPECT_FALSE(fingerprint_matches(fd, fp));
  ::close(fd);
}

TEST(FileCheckpointStore, SavesAtomicallyAndLoadsExactly) {
  TempDir dir("file-ckpt");
  CheckpointStore store(dir / "files");
  store.open();
  EXPECT_TRUE(store.load().empty());
  std::vector<Checkpoint> in{{"static", "/var/log/a.log", 0xfeedfacecafebeefULL, 2049, 77, {123456789, 40}, 1u << 31,
                              false, 1700000000000, true},
                             {"etcd/x", "/var/log/b.log", 7, 2049, 78, {5, 256}, 0, true, 1, false}};
  ASSERT_TRUE(store.save(in));
  auto out = store.load();
  ASSERT_EQ(out.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(out[i].source, in[i].source);
    EXPECT_EQ(out[i].path, in[i].path);
    EXPECT_EQ(out[i].file_id, in[i].file_id);
    EXPECT_EQ(out[i].dev, in[i].dev);
    EXPECT_EQ(out[i].ino, in[i].ino);
    EXPECT_EQ(out[i].fingerprint, in[i].fingerprint);
    EXPECT_EQ(out[i].offset, in[i].offset);
    EXPECT_EQ(out[i].truncated, in[i].truncated);
    EXPECT_EQ(out[i].last_seen_ms, in[i].last_seen_ms);
    EXPECT_EQ(out[i].finished, in[i].finished);
  }
  EXPECT_FALSE(std::filesystem::exists(store.file() + ".tmp"));
  // A damaged file is ignored (and reported), not fatal.
  write_file(store.file(), "{not json");
  EXPECT_TRUE(store.load().empty());
}

TEST(FileCheckpointStore, OpenFailsWithAnExplanationWhenTheDirectoryIsUnusable) {
  TempDir dir("file-ckpt");
  write_file(dir / "blocker", "a file where the directory should be");
  CheckpointStore store(dir / "blocker/files");
  try {
    store.open();
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("data_dir"), std::string::npos) << e.what();
  }
}

TEST(FileAckWindow, AdvancesOnlyOverContiguousDeliveries) {
  AckWindow w(100);
  w.add(1, 200, 10);
  w.add(2, 300, 20);
  w.add(3, 400, 30);
  EXPECT_EQ(w.in_flight_bytes(), 60u);
  EXPECT_EQ(w.delivered(3), 0u);  // out of order: held
  EXPECT_EQ(w.acked(), 100u);
  EXPECT_EQ(w.delivered(2), 0u);
  EXPECT_EQ(w.acked(), 100u);
  EXPECT_EQ(w.delivered(1), 60u);
  EXPECT_EQ(w.acked(), 400u);
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.delivered(99), 0u);  // unknown cookie
  w.add(4, 500, 5);
  w.add(5, 600, 5);
  EXPECT_TRUE(w.contains(5));
  EXPECT_EQ(w.clear(), 10u);  // a failed delivery: everything in flight is read again from acked()
  EXPECT_EQ(w.acked(), 400u);
  EXPECT_FALSE(w.contains(5));
}

}  // namespace
}  // namespace sluice::sources
