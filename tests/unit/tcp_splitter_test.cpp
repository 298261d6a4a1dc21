// The JSON object splitter finds exactly the objects of a stream, whatever the chunk boundaries.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "sources/tcp_server.hpp"

namespace sluice {
namespace {

// Feeds `stream` in chunks the way TcpServer does (buffer grows, consumed objects leave the front).
std::vector<std::string> split(const std::string& stream, const std::vector<std::size_t>& cuts, bool* garbage) {
  JsonObjectSplitter s;
  std::string buffer;
  std::vector<std::string> out;
  std::size_t at = 0;
  *garbage = false;
  auto feed_to = [&](std::size_t upto) {
    buffer.append(stream, at, upto - at);
    at = upto;
    while (true) {
      std::size_t end = 0;
      const auto r = s.next(buffer, end);
      if (r == JsonObjectSplitter::Result::need_more) return;
      if (r == JsonObjectSplitter::Result::garbage) {
        *garbage = true;
        return;
      }
      out.push_back(buffer.substr(0, end));
      buffer.erase(0, end);
    }
  };
  for (std::size_t c : cuts) {
    if (*garbage) break;
    feed_to(c);
  }
  if (!*garbage) feed_to(stream.size());
  return out;
}

const std::string kA = R"({"method":"Transfer.Update","params":[[{"endpoint":"h","tags":"a={b}","metric":"x\"}{"}]],"id":1})";
const std::string kB = R"({"method":"Transfer.Ping","params":[{}],"id":2})";
const std::string kC = R"( {"s":"\\","n":[1,{"k":"]"}]} )";

TEST(JsonObjectSplitter, FindsObjectsWithoutNewlinesAndIgnoresBracesInStrings) {
  bool garbage = false;
  std::string stream = kA;
  stream.append(kB).append("\n").append(kC);
  const auto got = split(stream, {}, &garbage);
  EXPECT_FALSE(garbage);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], kA);
  EXPECT_EQ(got[1], kB);
  std::string third = "\n";
  third.append(kC, 0, kC.size() - 1);
  EXPECT_EQ(got[2], third);  // leading whitespace stays with the object
}

TEST(JsonObjectSplitter, EveryChunkBoundaryGivesTheSameObjects) {
  const std::string stream = kA + kB + kC + kA;
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    bool garbage = false;
    const auto got = split(stream, {cut}, &garbage);
    ASSERT_FALSE(garbage) << cut;
    ASSERT_EQ(got.size(), 4u) << cut;
    EXPECT_EQ(got[0], kA);
    EXPECT_EQ(got[3], " " + kA);  // the space that followed kC leads the next object
  }
  std::mt19937 rng(11);
  for (int round = 0; round < 500; ++round) {
    std::vector<std::size_t> cuts;
    std::size_t at = 0;
    while (true) {
      at += 1 + rng() % 7;
      if (at >= stream.size()) break;
      cuts.push_back(at);
    }
    bool garbage = false;
    const auto got = split(stream, cuts, &garbage);
    ASSERT_FALSE(garbage);
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[1], kB);
  }
}

TEST(JsonObjectSplitter, AnythingButAnObjectIsGarbage) {
  bool garbage = false;
  EXPECT_TRUE(split("hello", {}, &garbage).empty());
  EXPECT_TRUE(garbage);
  EXPECT_EQ(split(kB + "[1,2]", {}, &garbage).size(), 1u);
  EXPECT_TRUE(garbage);
  std::string two = kB;
  two.append("  \r\n\t").append(kB);
  EXPECT_EQ(split(two, {3}, &garbage).size(), 2u);
  EXPECT_FALSE(garbage);
  // Mismatched or too deeply nested brackets are garbage, not a wait for more.
  EXPECT_TRUE(split(R"({"a":[1}})", {}, &garbage).empty());
  EXPECT_TRUE(garbage);
  EXPECT_TRUE(split("{\"a\":" + std::string(JsonObjectSplitter::kMaxDepth, '['), {}, &garbage).empty());
  EXPECT_TRUE(garbage);
  // An unfinished object is never reported.
  EXPECT_TRUE(split(R"({"a":"}")", {}, &garbage).empty());
  EXPECT_FALSE(garbage);
}

}  // namespace
}  // namespace sluice
