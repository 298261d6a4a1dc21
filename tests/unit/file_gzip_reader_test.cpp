// The gzip reader of the file source on files made by the real gzip: complete, concatenated, truncated
// (still being written) and damaged streams, and the decompressed prefix used to compare fingerprints.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "../fixtures/process.hpp"
#include "sources/files/gzip_reader.hpp"

namespace sluice::sources {
namespace {

using sluice::testing::read_file;
using sluice::testing::run_command;
using sluice::testing::TempDir;
using sluice::testing::write_file;

std::string lines(int first, int last) {
  std::string s;
  for (int n = first; n <= last; ++n) s += "line " + std::to_string(n) + " of a rotated log file\n";
  return s;
}

std::string gzip(const TempDir& dir, const std::string& name, const std::string& text) {
  write_file(dir / name, text);
  auto r = run_command({"gzip", "-f", dir / name});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return read_file(dir / (name + ".gz"));
}

struct Read {
  GzipResult result;
  std::string text;
};

Read gunzip_file(const std::string& path) {
  Read r;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  std::uint64_t expected_at = 0;
  r.result = gunzip(fd, [&](std::uint64_t at, std::span<const char> b) {
    EXPECT_EQ(at, expected_at);  // consecutive blocks, each at its decompressed offset
    expected_at += b.size();
    r.text.append(b.data(), b.size());
    return true;
  });
  ::close(fd);
  return r;
}

TEST(FileGzipReader, DecompressesACompleteFileAndConcatenatedMembers) {
  TempDir dir("gz-reader");
  const std::string text = lines(1, 200000);  // several MiB: many 64 KiB blocks
  auto first = gzip(dir, "a", text);
  auto r = gunzip_file(dir / "a.gz");
  EXPECT_EQ(r.result.status, GzipStatus::complete);
  EXPECT_EQ(r.result.size, text.size());
  EXPECT_EQ(r.text, text);

  auto second = gzip(dir, "b", lines(200001, 200010));
  write_file(dir / "ab.gz", first + second);
  r = gunzip_file(dir / "ab.gz");
  EXPECT_EQ(r.result.status, GzipStatus::complete);
  EXPECT_EQ(r.text, text + lines(200001, 200010));

  int fd = ::open((dir / "a.gz").c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_TRUE(is_gzip(fd));
  std::string prefix;
  auto p = gunzip_prefix(fd, 4096, prefix);
  EXPECT_EQ(p.status, GzipStatus::stopped);
  EXPECT_EQ(prefix, text.substr(0, 4096));
  ::close(fd);
  write_file(dir / "plain", text.substr(0, 100));
  fd = ::open((dir / "plain").c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_FALSE(is_gzip(fd));
  ::close(fd);
}

TEST(FileGzipReader, ATruncatedStreamIsNotFinalAndADamagedOneIsCorrupt) {
  TempDir dir("gz-reader");
  const std::string text = lines(1, 50000);
  auto gz = gzip(dir, "a", text);
  // Cut anywhere (even inside the 8-byte trailer): truncated, with the bytes decompressed so far being a prefix.
  for (std::size_t cut : {std::size_t{10}, gz.size() / 3, gz.size() / 2, gz.size() - 8, gz.size() - 1}) {
    write_file(dir / "cut.gz", gz.substr(0, cut));
    auto r = gunzip_file(dir / "cut.gz");
    EXPECT_EQ(r.result.status, GzipStatus::truncated) << cut;
    EXPECT_LE(r.text.size(), text.size()) << cut;
    EXPECT_EQ(r.text, text.substr(0, r.text.size())) << cut;
  }
  // The CRC of the trailer damaged: every byte decompresses, the check fails.
  std::string bad = gz;
  bad[bad.size() - 6] = static_cast<char>(bad[bad.size() - 6] ^ 0x01);
  write_file(dir / "crc.gz", bad);
  auto r = gunzip_file(dir / "crc.gz");
  EXPECT_EQ(r.result.status, GzipStatus::corrupt);
  EXPECT_FALSE(r.result.error.empty());
  // The magic bytes and junk: corrupt at once, no hang.
  write_file(dir / "junk.gz", std::string("\x1f\x8b", 2) + std::string(100000, '\xff'));
  r = gunzip_file(dir / "junk.gz");
  EXPECT_EQ(r.result.status, GzipStatus::corrupt);
  // Trailing zero padding after a complete member (as some tools leave) ends the stream.
  write_file(dir / "pad.gz", gz + std::string(512, '\0'));
  r = gunzip_file(dir / "pad.gz");
  EXPECT_EQ(r.result.status, GzipStatus::complete);
  EXPECT_EQ(r.text, text);
}

}  // namespace
}  // namespace sluice::sources
