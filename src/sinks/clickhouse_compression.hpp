// ClickHouse compressed-block framing (HTTP `decompress=1` bodies) and the CityHash128 v1.0.2 it checksums with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct ZSTD_CCtx_s;

namespace sluice::sinks {

// CityHash128 as ClickHouse uses it: the frozen 1.0.2 revision of the algorithm (later revisions hash
// differently, and the server rejects blocks whose checksum does not match its own 1.0.2 result).
struct CityHash128Value {
  std::uint64_t low = 0;
  std::uint64_t high = 0;
  bool operator==(const CityHash128Value&) const = default;
};
CityHash128Value city_hash128_v102(std::string_view data);

// Method bytes of ClickHouse's compressed block header.
enum class ClickHouseCodec : std::uint8_t { none = 0x02, lz4 = 0x82, zstd = 0x90 };

// Block layout: 16-byte checksum (low then high half, little-endian) over the rest of the block,
// 1-byte method, u32 LE size of header+payload (9 + payload), u32 LE uncompressed size, payload.
inline constexpr std::size_t kClickHouseChecksumSize = 16;
inline constexpr std::size_t kClickHouseBlockHeaderSize = 9;
// The server allocates per block from the declared sizes; it refuses blocks above 1 GiB, and smaller
// blocks keep its memory per insert low. ClickHouse's own clients use 1 MiB.
inline constexpr std::size_t kClickHouseMaxBlockSize = 1 << 20;

// Frames bodies as compressed blocks. Keeps its zstd context and reuses it across calls; one
// compressor per thread (it is not thread-safe).
class ClickHouseCompressor {
 public:
  explicit ClickHouseCompressor(ClickHouseCodec codec, int zstd_level = 1);

  ClickHouseCodec codec() const { return codec_; }
  // Replaces `out` with `input` split into blocks of at most kClickHouseMaxBlockSize uncompressed bytes.
  // An empty input yields an empty body.
  void compress(std::string_view input, std::string& out);

 private:
  std::size_t compress_block(std::string_view block, char* dst, std::size_t capacity);

  struct ZstdFree {
    void operator()(ZSTD_CCtx_s* ctx) const;
  };
  ClickHouseCodec codec_;
  int zstd_level_;
  std::unique_ptr<ZSTD_CCtx_s, ZstdFree> zstd_;
};

enum class FrameError { none, truncated, bad_checksum, unknown_method, bad_size, corrupt_payload };
std::string_view to_string(FrameError e);

// Appends the decompressed content of a framed body to `out`; verifies every checksum.
// Inputs are untrusted: declared sizes are bounded before anything is allocated.
FrameError decompress_clickhouse_blocks(std::string_view framed, std::string& out);

}  // namespace sluice::sinks
