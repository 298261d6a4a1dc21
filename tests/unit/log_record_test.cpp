// LogChunk: lines with their offsets and flags survive the bus byte for byte; damaged chunks are refused.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/log_record.hpp"

namespace sluice {
namespace {

struct Line {
  std::uint64_t offset;
  std::string text;
  std::uint8_t flags;
  bool operator==(const Line&) const = default;
};

std::vector<Line> read_all(std::span<const std::byte> bytes, LogChunkReader& reader) {
  std::vector<Line> out;
  if (reader.open(bytes) != LogChunkError::none) return out;
  LogLine l;
  while (reader.next(l)) out.push_back({l.offset, std::string(l.text), l.flags});
  return out;
}

TEST(LogChunk, RoundTripsLinesOffsetsAndFlags) {
  LogChunkWriter w;
  w.begin("web-1", "/var/log/app.log", 0x1122334455667788ull);
  w.add(1'000'000'000'000ull, "first line", 0);
  w.add(1'000'000'000'011ull, "", 0);
  w.add(1'000'000'000'012ull, std::string(300, 'x'), kLogLineSplit);
  w.add(1'000'000'000'312ull, std::string("bin\0\xff", 5), kLogLineInvalidUtf8 | kLogLineTruncated);
  const auto bytes = w.bytes();
  LogChunkReader r;
  const auto lines = read_all(bytes, r);
  EXPECT_EQ(r.error(), LogChunkError::none);
  EXPECT_EQ(r.host(), "web-1");
  EXPECT_EQ(r.path(), "/var/log/app.log");
  EXPECT_EQ(r.file_id(), 0x1122334455667788ull);
  EXPECT_EQ(r.line_count(), 4u);
  const std::vector<Line> expected{
      {1'000'000'000'000ull, "first line", 0},
      {1'000'000'000'011ull, "", 0},
      {1'000'000'000'012ull, std::string(300, 'x'), kLogLineSplit},
      {1'000'000'000'312ull, std::string("bin\0\xff", 5), kLogLineInvalidUtf8 | kLogLineTruncated},
  };
  EXPECT_EQ(lines, expected);

  // The writer is reused: a second chunk starts afresh.
  w.begin("h", "/p", 7);
  w.add(5, "again", 0);
  const auto again = read_all(w.bytes(), r);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0], (Line{5, "again", 0}));
}

TEST(LogChunk, RefusesDamagedChunksWithTheReason) {
  LogChunkWriter w;
  w.begin("host", "/var/log/x.log", 1);
  w.add(0, "abc", 0);
  w.add(4, "defgh", 0);
  const auto bytes = w.bytes();
  std::vector<std::byte> good(bytes.begin(), bytes.end());
  LogChunkReader r;

  EXPECT_EQ(r.open(std::span<const std::byte>(good).first(10)), LogChunkError::truncated);
  auto bad_version = good;
  bad_version[0] = std::byte{9};
  EXPECT_EQ(r.open(bad_version), LogChunkError::bad_version);

  // Cut inside the last line: the first line is read, the second is refused.
  auto cut = std::span<const std::byte>(good).first(good.size() - 2);
  ASSERT_EQ(r.open(cut), LogChunkError::none);
  LogLine l;
  ASSERT_TRUE(r.next(l));
  EXPECT_EQ(l.text, "abc");
  EXPECT_FALSE(r.next(l));
  EXPECT_EQ(r.error(), LogChunkError::bad_line);

  auto trailing = good;
  trailing.push_back(std::byte{0});
  EXPECT_EQ(read_all(trailing, r).size(), 2u);
  EXPECT_EQ(r.error(), LogChunkError::trailing_bytes);

  // A line count the body cannot hold is refused before any line is read.
  auto huge_count = good;
  huge_count[6] = std::byte{0x7f};
  EXPECT_EQ(r.open(huge_count), LogChunkError::truncated);
}

}  // namespace
}  // namespace sluice
