#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/log_record.hpp"
#include "sources/files/line_cutter.hpp"

namespace sluice::sources {
namespace {

struct Got {
  std::uint64_t offset, end;
  std::string text;
  std::uint8_t flags;
  bool operator==(const Got&) const = default;
};

class Collect : public LineSink {
 public:
  bool line(const CutLine& l) override {
    if (refuse_after >= 0 && static_cast<int>(got.size()) >= refuse_after) return false;
    got.push_back({l.offset, l.end, std::string(l.text), l.flags});
    return true;
  }
  std::vector<Got> got;
  int refuse_after = -1;
};

FileSourceConfig config(std::size_t max = 16, LongLines mode = LongLines::split) {
  FileSourceConfig c;
  c.name = "t";
  c.max_line_bytes = max;
  c.long_lines = mode;
  return c;
}

TEST(FileLineCutter, CutsLfLinesStripsCrAndKeepsTheIncompleteLastLine) {
  LineCutter cutter(config());
  CutterState st;
  Collect sink;
  std::string data = "one\ntwo\r\n\nthr";
  auto used = cutter.cut(data, 100, st, sink, LineCutter::Flush::none);
  EXPECT_EQ(used, 10u);
  ASSERT_EQ(sink.got.size(), 3u);
  EXPECT_EQ(sink.got[0], (Got{100, 104, "one", 0}));
  EXPECT_EQ(sink.got[1], (Got{104, 109, "two", 0}));
  EXPECT_EQ(sink.got[2], (Got{109, 110, "", 0}));
  // The rest comes back with more bytes; when the file is finished the last line goes out without newline.
  std::string rest = "thr" "ee";
  EXPECT_EQ(cutter.cut(rest, 110, st, sink, LineCutter::Flush::none), 0u);
  EXPECT_EQ(cutter.cut(rest, 110, st, sink, LineCutter::Flush::all), 5u);
  EXPECT_EQ(sink.got.back(), (Got{110, 115, "three", 0}));
}

TEST(FileLineCutter, SplitsLongLinesIntoPiecesFlaggedButTheLast) {
  LineCutter cutter(config(16));
  CutterState st;
  Collect sink;
  std::string line(40, 'x');
  std::string data = line + "\nok\n";
  EXPECT_EQ(cutter.cut(data, 0, st, sink, LineCutter::Flush::none), data.size());
  ASSERT_EQ(sink.got.size(), 4u);
  EXPECT_EQ(sink.got[0], (Got{0, 16, std::string(16, 'x'), kLogLineSplit}));
  EXPECT_EQ(sink.got[1], (Got{16, 32, std::string(16, 'x'), kLogLineSplit}));
  EXPECT_EQ(sink.got[2], (Got{32, 41, std::string(8, 'x'), 0}));
  EXPECT_EQ(sink.got[3], (Got{41, 44, "ok", 0}));
  EXPECT_EQ(cutter.counts().split, 2u);
  // A line of exactly the maximum (with CRLF) is not split.
  Collect exact;
  std::string max_line = std::string(16, 'y') + "\r\n";
  EXPECT_EQ(cutter.cut(max_line, 0, st, exact, LineCutter::Flush::none), 18u);
  ASSERT_EQ(exact.got.size(), 1u);
  EXPECT_EQ(exact.got[0].text, std::string(16, 'y'));
}

TEST(FileLineCutter, SplitPiecesDoNotCutUtf8Sequences) {
  LineCutter cutter(config(16));
  CutterState st;
  Collect sink;
  std::string data = std::string(15, 'a') + "\xc3\xa9" + "bbbb\n";  // é straddles byte 16
  cutter.cut(data, 0, st, sink, LineCutter::Flush::none);
  ASSERT_EQ(sink.got.size(), 2u);
  EXPECT_EQ(sink.got[0].text, std::string(15, 'a'));
  EXPECT_EQ(sink.got[1].text, "\xc3\xa9" "bbbb");
  EXPECT_EQ(sink.got[0].flags | sink.got[1].flags, kLogLineSplit);
}

TEST(FileLineCutter, TruncatesLongLinesAndSkipsTheirRestAcrossReads) {
  LineCutter cutter(config(16, LongLines::truncate));
  CutterState st;
  Collect sink;
  std::string first = std::string(30, 'z');  // no end yet
  EXPECT_EQ(cutter.cut(first, 0, st, sink, LineCutter::Flush::none), 30u);
  EXPECT_TRUE(sink.got.empty());
  EXPECT_TRUE(st.skipping);
  std::string more = std::string(10, 'z') + "\nnext\n";
  EXPECT_EQ(cutter.cut(more, 30, st, sink, LineCutter::Flush::none), more.size());
  ASSERT_EQ(sink.got.size(), 2u);
  EXPECT_EQ(sink.got[0], (Got{0, 41, std::string(16, 'z'), kLogLineTruncated}));
  EXPECT_EQ(sink.got[1], (Got{41, 46, "next", 0}));
  EXPECT_EQ(cutter.counts().truncated, 1u);
}

TEST(FileLineCutter, FlagsInvalidUtf8AndKeepsTheBytes) {
  LineCutter cutter(config(64));
  CutterState st;
  Collect sink;
  std::string data = std::string("good \xc3\xa9\nbad \xff\xfe\n", 15) + std::string("\0nul\n", 5);
  cutter.cut(data, 0, st, sink, LineCutter::Flush::none);
  ASSERT_EQ(sink.got.size(), 3u);
  EXPECT_EQ(sink.got[0].flags, 0);
  EXPECT_EQ(sink.got[1].flags, kLogLineInvalidUtf8);
  EXPECT_EQ(sink.got[1].text, "bad \xff\xfe");
  EXPECT_EQ(sink.got[2].text, std::string("\0nul", 4));
  EXPECT_EQ(cutter.counts().invalid_utf8, 1u);
}

TEST(FileLineCutter, BackpressureStopsBeforeTheRefusedLine) {
  LineCutter cutter(config());
  CutterState st;
  Collect sink;
  sink.refuse_after = 2;
  std::string data = "a\nbb\nccc\n";
  EXPECT_EQ(cutter.cut(data, 0, st, sink, LineCutter::Flush::none), 5u);
  sink.refuse_after = -1;
  EXPECT_EQ(cutter.cut(std::string_view(data).substr(5), 5, st, sink, LineCutter::Flush::none), 4u);
  ASSERT_EQ(sink.got.size(), 3u);
  EXPECT_EQ(sink.got[2], (Got{5, 9, "ccc", 0}));
}

TEST(FileLineCutter, GroupsMultilineEventsByStartPattern) {
  auto c = config(1024);
  c.multiline = MultilineConfig{MultilineConfig::Mode::start, "^\\d{4}-", std::chrono::milliseconds(1000), 3};
  LineCutter cutter(c);
  CutterState st;
  Collect sink;
  std::string data =
      "2024-01 boom\n  at a\n  at b\n2024-02 ok\n2024-03 x\n y1\n y2\n y3\n2024-04 open\n more\n";
  // The last event stays open (its next line is not there yet): the next read starts at its first line.
  auto used = cutter.cut(data, 0, st, sink, LineCutter::Flush::none);
  std::size_t open_at = data.find("2024-04");
  EXPECT_EQ(used, open_at);
  ASSERT_EQ(sink.got.size(), 4u);
  EXPECT_EQ(sink.got[0], (Got{0, 27, "2024-01 boom\n  at a\n  at b", kLogLineMultiline}));
  EXPECT_EQ(sink.got[1], (Got{27, 38, "2024-02 ok", 0}));
  // max_lines 3 closes the third event; the fourth line starts one of its own.
  EXPECT_EQ(sink.got[2].text, "2024-03 x\n y1\n y2");
  EXPECT_EQ(sink.got[3].text, " y3");
  ASSERT_TRUE(st.pending_event.has_value());
  EXPECT_EQ(*st.pending_event, open_at);
  // Timeout: the open event is emitted as it is.
  auto rest = std::string_view(data).substr(open_at);
  EXPECT_EQ(cutter.cut(rest, open_at, st, sink, LineCutter::Flush::events), rest.size());
  EXPECT_EQ(sink.got.back(), (Got{open_at, data.size(), "2024-04 open\n more", kLogLineMultiline}));
  EXPECT_FALSE(st.pending_event.has_value());
}

TEST(FileLineCutter, GroupsContinuationLines) {
  auto c = config(1024);
  c.multiline = MultilineConfig{MultilineConfig::Mode::continuation, "^\\s", std::chrono::milliseconds(1000), 100};
  LineCutter cutter(c);
  CutterState st;
  Collect sink;
  std::string data = "a\n b\n c\nd\ne\n";
  cutter.cut(data, 0, st, sink, LineCutter::Flush::all);
  ASSERT_EQ(sink.got.size(), 3u);
  EXPECT_EQ(sink.got[0].text, "a\n b\n c");
  EXPECT_EQ(sink.got[1].text, "d");
  EXPECT_EQ(sink.got[2], (Got{10, 12, "e", 0}));
}

TEST(FileLineCutter, BinaryJunkNeverHangsAndConsumesEverything) {
  LineCutter cutter(config(16));
  CutterState st;
  Collect sink;
  std::string junk;
  for (int i = 0; i < 5000; ++i) junk.push_back(static_cast<char>((i * 7919) % 256));
  std::size_t at = 0;
  while (at < junk.size()) {
    auto used = cutter.cut(std::string_view(junk).substr(at), at, st, sink, LineCutter::Flush::all);
    ASSERT_GT(used, 0u);
    at += used;
  }
  std::uint64_t next = 0;
  for (auto& g : sink.got) {
    EXPECT_EQ(g.offset, next);  // every byte is accounted for, in order
    EXPECT_LE(g.text.size(), 16u);
    next = g.end;
  }
  EXPECT_EQ(next, junk.size());
}

}  // namespace
}  // namespace sluice::sources
