#include "sinks/clickhouse_compression.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace sluice::sinks {
namespace {

std::string pattern(std::size_t len) {
  std::string s;
  for (std::size_t i = 0; i < len; ++i) s.push_back(static_cast<char>(i * 31 + 7));
  return s;
}

std::string random_bytes(std::size_t len, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(len, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Text-like data that compresses well, as Native blocks of flows do.
std::string compressible(std::size_t len) {
  std::string s;
  std::size_t i = 0;
  while (s.size() < len) s += "exporter-" + std::to_string(i++ % 97) + ";";
  s.resize(len);
  return s;
}

std::uint32_t u32_at(const std::string& s, std::size_t at) {
  std::uint32_t v;
  std::memcpy(&v, s.data() + at, 4);
  return v;
}

struct Vector {
  std::size_t len;
  std::uint64_t low, high;
};

// Reference values computed by ClickHouse 18.16's own CityHash_v1_0_2::CityHash128 (libclickhouse.so)
// over pattern(len): they cover every branch (0, 1..3, 4..8, 9..15, 16, 17..143 short path,
// 144+ main loop with 0..4 tail pieces).
const std::vector<Vector> kReference = {
    {0, 0x3df09dfc64c09a2bULL, 0x3cb540c392e51e29ULL},    {1, 0x8be55b379cce0e40ULL, 0x05ab4744478b1cbaULL},
    {3, 0xe407deda7bb0f294ULL, 0x0a3a0d146e27f1bdULL},    {4, 0x905dcb2063ae124fULL, 0x57fd5b5954a593c5ULL},
    {7, 0xd7ba2459ab7c2913ULL, 0x53dd430b513ca460ULL},    {8, 0xf5a4ca47208136a0ULL, 0x3dd4575b3d46e5abULL},
    {9, 0x338434c54a2565e1ULL, 0x1001bbb07bd33771ULL},    {15, 0xd956065c63d9ab15ULL, 0x9623caadd0037b73ULL},
    {16, 0x3f3a3275564b7f48ULL, 0xb48a2a7a16bac60bULL},   {17, 0xaee34bf68bb2e0a2ULL, 0xe0d6910555f00b87ULL},
    {31, 0x9b7f93e5ecfaed63ULL, 0xd646e40154fb0d6bULL},   {32, 0x250e8c8007bfad61ULL, 0xe42486b6776ae8dbULL},
    {33, 0x4e495b057af3b520ULL, 0xabae1d24f18410b5ULL},   {64, 0xe225cf33b373dc02ULL, 0x8d252ce5152d6d96ULL},
    {100, 0x49c189a397bdadeeULL, 0x0e8155bdfd58d3d3ULL},  {127, 0xc244dc8a06ce8c41ULL, 0xf30e2cf6b33629a6ULL},
    {128, 0xba863c0c70f32346ULL, 0x24b156fc6f3c170aULL},  {129, 0x238598064c8ee2f1ULL, 0x6c89b9263ef7410bULL},
    {143, 0x59abee69ce16e6a3ULL, 0x83e91d7a8903bfbeULL},  {144, 0x2ca82631884c46a7ULL, 0x71edb8d50338bb1fULL},
    {160, 0x5cb38c23f218820bULL, 0x28eec84c96793879ULL},  {200, 0x67b5c9a4f885f24bULL, 0xb4a0f54a58082487ULL},
    {255, 0xc87d0f456f6a514bULL, 0xf35b13ec94eb8a52ULL},  {256, 0xb1cfa883f958dcfaULL, 0x39f0dfb3be182292ULL},
    {257, 0xd4cb7b11f9ef2055ULL, 0xae5243f6dbcd4c28ULL},  {1000, 0x597ff4957972ad7eULL, 0x7f39a4abd7c010e1ULL},
    {2000, 0xf6d1674760d62b62ULL, 0x7296a2090bb62acaULL},
};

TEST(CityHash128v102, MatchesClickHouseReferenceOnEveryBranch) {
  const auto input = pattern(2000);
  for (const auto& v : kReference) {
    const auto h = city_hash128_v102(std::string_view(input).substr(0, v.len));
    EXPECT_EQ(h.low, v.low) << "len " << v.len;
    EXPECT_EQ(h.high, v.high) << "len " << v.len;
  }
  const auto hello = city_hash128_v102("hello world");
  EXPECT_EQ(hello.low, 0x7dfb52dd24b29c7bULL);
  EXPECT_EQ(hello.high, 0x0f6075c357e384d0ULL);
}

TEST(CityHash128v102, DependsOnEveryByte) {
  auto data = random_bytes(4096, 1);
  const auto base = city_hash128_v102(data);
  for (std::size_t i : {0u, 1u, 15u, 16u, 100u, 2047u, 4000u, 4095u}) {
    auto changed = data;
    changed[i] = static_cast<char>(changed[i] ^ 0x01);
    EXPECT_NE(city_hash128_v102(changed), base) << "byte " << i;
  }
}

TEST(ClickHouseCompression, BlockHeaderLayout) {
  const auto input = compressible(10'000);
  for (auto codec : {ClickHouseCodec::lz4, ClickHouseCodec::zstd, ClickHouseCodec::none}) {
    ClickHouseCompressor c(codec);
    std::string body;
    c.compress(input, body);
    ASSERT_GE(body.size(), 25u);
    EXPECT_EQ(static_cast<std::uint8_t>(body[16]), static_cast<std::uint8_t>(codec));
    EXPECT_EQ(u32_at(body, 17), body.size() - 16) << "stored size counts the 9-byte header and payload";
    EXPECT_EQ(u32_at(body, 21), input.size());
    const auto sum = city_hash128_v102(std::string_view(body).substr(16));
    std::uint64_t low, high;
    std::memcpy(&low, body.data(), 8);
    std::memcpy(&high, body.data() + 8, 8);
    EXPECT_EQ(low, sum.low);
    EXPECT_EQ(high, sum.high);
    if (codec != ClickHouseCodec::none) {
      EXPECT_LT(body.size(), input.size() / 4);
    }
  }
}

TEST(ClickHouseCompression, SplitsIntoOneMebibyteBlocks) {
  const std::size_t total = 2 * kClickHouseMaxBlockSize + kClickHouseMaxBlockSize / 2;
  const auto input = compressible(total);
  ClickHouseCompressor c(ClickHouseCodec::lz4);
  std::string body;
  c.compress(input, body);
  std::vector<std::uint32_t> raw_sizes;
  for (std::size_t at = 0; at < body.size();) {
    raw_sizes.push_back(u32_at(body, at + 21));
    at += 16 + u32_at(body, at + 17);
  }
  EXPECT_EQ(raw_sizes, (std::vector<std::uint32_t>{1 << 20, 1 << 20, 1 << 19}));
}

TEST(ClickHouseCompression, RoundTripsEveryCodec) {
  const std::vector<std::string> inputs = {std::string(), std::string(1, 'x'), compressible(100'000),
                                           random_bytes(3 * kClickHouseMaxBlockSize + 17, 7)};
  for (auto codec : {ClickHouseCodec::lz4, ClickHouseCodec::zstd, ClickHouseCodec::none}) {
    ClickHouseCompressor c(codec);
    for (const auto& input : inputs) {
      std::string body, back;
      c.compress(input, body);
      if (input.empty()) {
        EXPECT_TRUE(body.empty());
      }
      ASSERT_EQ(decompress_clickhouse_blocks(body, back), FrameError::none);
      EXPECT_EQ(back, input) << "codec " << static_cast<int>(codec) << " size " << input.size();
    }
  }
}

TEST(ClickHouseCompression, CompressorIsReusable) {
  ClickHouseCompressor c(ClickHouseCodec::zstd, 3);
  std::string body, back;
  c.compress(compressible(2'000'000), body);
  c.compress("second body", body);
  ASSERT_EQ(decompress_clickhouse_blocks(body, back), FrameError::none);
  EXPECT_EQ(back, "second body");
}

TEST(ClickHouseCompression, RejectsDamagedFrames) {
  ClickHouseCompressor c(ClickHouseCodec::lz4);
  std::string body, out;
  c.compress(compressible(50'000), body);

  auto flipped = body;
  flipped[body.size() / 2] = static_cast<char>(flipped[body.size() / 2] ^ 0x40);
  EXPECT_EQ(decompress_clickhouse_blocks(flipped, out), FrameError::bad_checksum);

  auto bad_sum = body;
  bad_sum[3] = static_cast<char>(bad_sum[3] ^ 0x01);
  EXPECT_EQ(decompress_clickhouse_blocks(bad_sum, out), FrameError::bad_checksum);

  EXPECT_EQ(decompress_clickhouse_blocks(std::string_view(body).substr(0, body.size() - 1), out),
            FrameError::truncated);
  EXPECT_EQ(decompress_clickhouse_blocks(std::string_view(body).substr(0, 20), out), FrameError::truncated);

  // A well-checksummed block with a method nobody knows.
  auto unknown = body;
  unknown[16] = static_cast<char>(0x77);
  const auto sum = city_hash128_v102(std::string_view(unknown).substr(16));
  std::memcpy(unknown.data(), &sum.low, 8);
  std::memcpy(unknown.data() + 8, &sum.high, 8);
  EXPECT_EQ(decompress_clickhouse_blocks(unknown, out), FrameError::unknown_method);

  // Declared sizes are checked before anything is allocated.
  auto huge = body;
  const std::uint32_t big = 0xFFFFFFF0u;
  std::memcpy(huge.data() + 21, &big, 4);
  EXPECT_EQ(decompress_clickhouse_blocks(huge, out), FrameError::bad_size);
  auto tiny = body;
  const std::uint32_t small = 3;
  std::memcpy(tiny.data() + 17, &small, 4);
  EXPECT_EQ(decompress_clickhouse_blocks(tiny, out), FrameError::bad_size);
}

}  // namespace
}  // namespace sluice::sinks
