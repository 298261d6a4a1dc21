#include "sinks/clickhouse_compression.hpp"

#include <lz4.h>
#include <zstd.h>

#include <bit>
#include <cstring>
#include <stdexcept>

namespace sluice::sinks {
namespace {

// CityHash 1.0.2 multipliers (primes between 2^63 and 2^64) and the 128→64 fold constant.
constexpr std::uint64_t kPrime0 = 0xc3a5c85c97cb3127ULL;
constexpr std::uint64_t kPrime1 = 0xb492b66fbe98f273ULL;
constexpr std::uint64_t kPrime2 = 0x9ae16a3b2f90404fULL;
constexpr std::uint64_t kPrime3 = 0xc949d7c7509e6557ULL;
constexpr std::uint64_t kFoldMul = 0x9ddfea08eb382d69ULL;

std::uint64_t load64(const char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);  // x86-64 is little-endian, as the algorithm reads words
  return v;
}

std::uint64_t load32(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::uint64_t shift_mix(std::uint64_t v) { return v ^ (v >> 47); }

// Folds a 128-bit value (low, high) into 64 bits, Murmur-style.
std::uint64_t fold(std::uint64_t low, std::uint64_t high) {
  std::uint64_t a = (low ^ high) * kFoldMul;
  a ^= a >> 47;
  std::uint64_t b = (high ^ a) * kFoldMul;
  b ^= b >> 47;
  return b * kFoldMul;
}

// 64-bit hash of 0..16 bytes.
std::uint64_t hash_upto16(const char* s, std::size_t len) {
  if (len > 8) {
    const std::uint64_t head = load64(s);
    const std::uint64_t tail = load64(s + len - 8);
    return fold(head, std::rotr(tail + len, static_cast<int>(len))) ^ tail;
  }
  if (len >= 4) {
    return fold(len + (load32(s) << 3), load32(s + len - 4));
  }
  if (len > 0) {
    const auto first = static_cast<std::uint8_t>(s[0]);
    const auto middle = static_cast<std::uint8_t>(s[len >> 1]);
    const auto last = static_cast<std::uint8_t>(s[len - 1]);
    const std::uint32_t y = static_cast<std::uint32_t>(first) + (static_cast<std::uint32_t>(middle) << 8);
    const std::uint32_t z = static_cast<std::uint32_t>(len) + (static_cast<std::uint32_t>(last) << 2);
    return shift_mix((y * kPrime2) ^ (z * kPrime3)) * kPrime2;
  }
  return kPrime2;
}

struct Lanes {
  std::uint64_t first, second;
};

// Mixes 32 bytes of input with two seeds into two lanes.
Lanes mix32(const char* s, std::uint64_t a, std::uint64_t b) {
  const std::uint64_t w = load64(s), x = load64(s + 8), y = load64(s + 16), z = load64(s + 24);
  a += w;
  b = std::rotr(b + a + z, 21);
  const std::uint64_t saved = a;
  a += x + y;
  b += std::rotr(a, 44);
  return {a + z, b + saved};
}

// The short-input path (under 128 bytes), walking 16 bytes at a time.
CityHash128Value hash_short(const char* s, std::size_t len, std::uint64_t a, std::uint64_t b) {
  std::uint64_t c, d;
  if (len <= 16) {
    a = shift_mix(a * kPrime1) * kPrime1;
    c = b * kPrime1 + hash_upto16(s, len);
    d = shift_mix(a + (len >= 8 ? load64(s) : c));
  } else {
    c = fold(load64(s + len - 8) + kPrime1, a);
    d = fold(b + len, c + load64(s + len - 16));
    a += d;
    // At least one round; the last round may reread bytes already consumed, as the algorithm does.
    for (std::ptrdiff_t left = static_cast<std::ptrdiff_t>(len) - 16; left > 0; left -= 16, s += 16) {
      a ^= shift_mix(load64(s) * kPrime1) * kPrime1;
      a *= kPrime1;
      b ^= a;
      c ^= shift_mix(load64(s + 8) * kPrime1) * kPrime1;
      c *= kPrime1;
      d ^= c;
    }
  }
  a = fold(a, c);
  b = fold(d, b);
  return {a ^ b, fold(b, a)};
}

CityHash128Value hash_seeded(const char* s, std::size_t len, std::uint64_t seed_low, std::uint64_t seed_high) {
  if (len < 128) return hash_short(s, len, seed_low, seed_high);

  std::uint64_t x = seed_low;
  std::uint64_t y = seed_high;
  std::uint64_t z = len * kPrime1;
  Lanes v, w;
  v.first = std::rotr(y ^ kPrime1, 49) * kPrime1 + load64(s);
  v.second = std::rotr(v.first, 42) * kPrime1 + load64(s + 8);
  w.first = std::rotr(y + z, 35) * kPrime1 + x;
  w.second = std::rotr(x + load64(s + 88), 53) * kPrime1;

  // 64 bytes per step; the reference processes whole 128-byte chunks, i.e. an even number of steps.
  const auto step = [&] {
    x = std::rotr(x + y + v.first + load64(s + 16), 37) * kPrime1;
    y = std::rotr(y + v.second + load64(s + 48), 42) * kPrime1;
    x ^= w.second;
    y ^= v.first;
    z = std::rotr(z ^ w.first, 33);
    v = mix32(s, v.second * kPrime1, x + w.first);
    w = mix32(s + 32, z + w.second, y);
    std::swap(z, x);
    s += 64;
  };
  do {
    step();
    step();
    len -= 128;
  } while (len >= 128);

  y += std::rotr(w.first, 37) * kPrime0 + z;
  x += std::rotr(v.first + z, 49) * kPrime0;
  // The 0..127 remaining bytes, in 32-byte pieces taken backwards from the end (overlapping what the
  // main loop consumed when the remainder is not a multiple of 32).
  for (std::size_t done = 0; done < len;) {
    done += 32;
    y = std::rotr(y - x, 42) * kPrime0 + v.second;
    w.first += load64(s + len - done + 16);
    x = std::rotr(x, 49) * kPrime0 + w.first;
    w.first += v.first;
    v = mix32(s + len - done, v.first, v.second);
  }
  x = fold(x, v.first);
  y = fold(y, w.first);
  return {fold(x + v.second, w.second) + y, fold(x + w.second, y + v.second)};
}

void store_u32(char* p, std::uint32_t v) { std::memcpy(p, &v, sizeof v); }
void store_u64(char* p, std::uint64_t v) { std::memcpy(p, &v, sizeof v); }

std::size_t bound_for(ClickHouseCodec codec, std::size_t n) {
  switch (codec) {
    case ClickHouseCodec::lz4:
      return static_cast<std::size_t>(LZ4_compressBound(static_cast<int>(n)));
    case ClickHouseCodec::zstd:
      return ZSTD_compressBound(n);
    case ClickHouseCodec::none:
      return n;
  }
  return n;
}

// ClickHouse refuses blocks declaring more than this (its DBMS_MAX_COMPRESSED_SIZE); so do we.
constexpr std::size_t kMaxDeclaredBlock = std::size_t{1} << 30;

}  // namespace

CityHash128Value city_hash128_v102(std::string_view data) {
  const char* s = data.data();
  const std::size_t len = data.size();
  if (len >= 16) return hash_seeded(s + 16, len - 16, load64(s) ^ kPrime3, load64(s + 8));
  if (len >= 8) return hash_seeded(nullptr, 0, load64(s) ^ (len * kPrime0), load64(s + len - 8) ^ kPrime1);
  return hash_seeded(s, len, kPrime0, kPrime1);
}

void ClickHouseCompressor::ZstdFree::operator()(ZSTD_CCtx_s* ctx) const { ZSTD_freeCCtx(ctx); }

ClickHouseCompressor::ClickHouseCompressor(ClickHouseCodec codec, int zstd_level)
    : codec_(codec), zstd_level_(zstd_level) {
  if (codec_ == ClickHouseCodec::zstd) {
    zstd_.reset(ZSTD_createCCtx());
    if (!zstd_) throw std::bad_alloc();
  }
}

std::size_t ClickHouseCompressor::compress_block(std::string_view block, char* dst, std::size_t capacity) {
  switch (codec_) {
    case ClickHouseCodec::lz4: {
      const int n = LZ4_compress_default(block.data(), dst, static_cast<int>(block.size()),
                                         static_cast<int>(capacity));
      if (n <= 0) throw std::runtime_error("LZ4 compression failed");
      return static_cast<std::size_t>(n);
    }
    case ClickHouseCodec::zstd: {
      const std::size_t n = ZSTD_compressCCtx(zstd_.get(), dst, capacity, block.data(), block.size(), zstd_level_);
      if (ZSTD_isError(n)) throw std::runtime_error(std::string("zstd compression failed: ") + ZSTD_getErrorName(n));
      return n;
    }
    case ClickHouseCodec::none:
      std::memcpy(dst, block.data(), block.size());
      return block.size();
  }
  return 0;
}

void ClickHouseCompressor::compress(std::string_view input, std::string& out) {
  out.clear();
  constexpr std::size_t kPrefix = kClickHouseChecksumSize + kClickHouseBlockHeaderSize;
  std::size_t worst = 0;
  for (std::size_t at = 0; at < input.size(); at += kClickHouseMaxBlockSize) {
    worst += kPrefix + bound_for(codec_, std::min(kClickHouseMaxBlockSize, input.size() - at));
  }
  // Grows the buffer once (it keeps its capacity across calls); the tail is trimmed at the end.
  out.resize(worst);
  std::size_t used = 0;
  for (std::size_t at = 0; at < input.size(); at += kClickHouseMaxBlockSize) {
    const auto block = input.substr(at, kClickHouseMaxBlockSize);
    char* base = out.data() + used;
    const std::size_t payload = compress_block(block, base + kPrefix, worst - used - kPrefix);
    char* header = base + kClickHouseChecksumSize;
    header[0] = static_cast<char>(codec_);
    store_u32(header + 1, static_cast<std::uint32_t>(kClickHouseBlockHeaderSize + payload));
    store_u32(header + 5, static_cast<std::uint32_t>(block.size()));
    const auto sum = city_hash128_v102({header, kClickHouseBlockHeaderSize + payload});
    store_u64(base, sum.low);
    store_u64(base + 8, sum.high);
    used += kPrefix + payload;
  }
  out.resize(used);
}

std::string_view to_string(FrameError e) {
  switch (e) {
    case FrameError::none: return "ok";
    case FrameError::truncated: return "truncated block";
    case FrameError::bad_checksum: return "checksum mismatch";
    case FrameError::unknown_method: return "unknown compression method";
    case FrameError::bad_size: return "implausible block size";
    case FrameError::corrupt_payload: return "payload does not decompress to the declared size";
  }
  return "unknown";
}

FrameError decompress_clickhouse_blocks(std::string_view framed, std::string& out) {
  constexpr std::size_t kPrefix = kClickHouseChecksumSize + kClickHouseBlockHeaderSize;
  while (!framed.empty()) {
    if (framed.size() < kPrefix) return FrameError::truncated;
    const char* header = framed.data() + kClickHouseChecksumSize;
    std::uint32_t stored_size, raw_size;
    std::memcpy(&stored_size, header + 1, 4);
    std::memcpy(&raw_size, header + 5, 4);
    if (stored_size < kClickHouseBlockHeaderSize || stored_size > kMaxDeclaredBlock || raw_size > kMaxDeclaredBlock) {
      return FrameError::bad_size;
    }
    if (framed.size() - kClickHouseChecksumSize < stored_size) return FrameError::truncated;
    const auto sum = city_hash128_v102({header, stored_size});
    std::uint64_t want_low, want_high;
    std::memcpy(&want_low, framed.data(), 8);
    std::memcpy(&want_high, framed.data() + 8, 8);
    if (sum.low != want_low || sum.high != want_high) return FrameError::bad_checksum;

    const char* payload = header + kClickHouseBlockHeaderSize;
    const std::size_t payload_size = stored_size - kClickHouseBlockHeaderSize;
    const std::size_t at = out.size();
    switch (static_cast<ClickHouseCodec>(static_cast<std::uint8_t>(header[0]))) {
      case ClickHouseCodec::lz4: {
        out.resize(at + raw_size);
        const int n = LZ4_decompress_safe(payload, out.data() + at, static_cast<int>(payload_size),
                                          static_cast<int>(raw_size));
        if (n < 0 || static_cast<std::uint32_t>(n) != raw_size) return FrameError::corrupt_payload;
        break;
      }
      case ClickHouseCodec::zstd: {
        out.resize(at + raw_size);
        const std::size_t n = ZSTD_decompress(out.data() + at, raw_size, payload, payload_size);
        if (ZSTD_isError(n) || n != raw_size) return FrameError::corrupt_payload;
        break;
      }
      case ClickHouseCodec::none:
        if (payload_size != raw_size) return FrameError::corrupt_payload;
        out.append(payload, payload_size);
        break;
      default:
        return FrameError::unknown_method;
    }
    framed.remove_prefix(kClickHouseChecksumSize + stored_size);
  }
  return FrameError::none;
}

}  // namespace sluice::sinks
