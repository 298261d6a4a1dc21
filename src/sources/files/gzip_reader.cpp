#include "sources/files/gzip_reader.hpp"

#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>

namespace sluice::sources {
namespace {

constexpr std::size_t kBlock = 64 << 10;

struct Inflater {
  z_stream z{};
  bool ok = false;
  Inflater() { ok = inflateInit2(&z, 16 + MAX_WBITS) == Z_OK; }  // 16: gzip header and trailer only
  ~Inflater() {
    if (ok) inflateEnd(&z);
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
};

}  // namespace

bool is_gzip(int fd) {
  unsigned char magic[2] = {};
  return ::pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

GzipResult gunzip(int fd, const std::function<bool(std::uint64_t, std::span<const char>)>& sink) {
  GzipResult r;
  auto in = std::make_unique<std::array<unsigned char, kBlock>>();
  auto out = std::make_unique<std::array<char, kBlock>>();
  Inflater inf;
  if (!inf.ok) {
    r.error = "zlib could not be initialized";
    return r;
  }
  std::uint64_t in_pos = 0;
  bool in_member = true;  // between members only gzip magic may follow; anything else ends the stream
  for (;;) {
    if (inf.z.avail_in == 0) {
      ssize_t n = ::pread(fd, in->data(), in->size(), static_cast<off_t>(in_pos));
      if (n < 0) {
        if (errno == EINTR) continue;
        r.status = GzipStatus::io_error;
        r.error = std::strerror(errno);
        return r;
      }
      if (n == 0) {
        r.status = in_member ? GzipStatus::truncated : GzipStatus::complete;
        if (in_member) r.error = "the stream ends before its gzip trailer";
        return r;
      }
      in_pos += static_cast<std::uint64_t>(n);
      inf.z.next_in = in->data();
      inf.z.avail_in = static_cast<uInt>(n);
    }
    if (!in_member) {
      // Another member (concatenated gzip) or trailing bytes (zero padding): the latter end the stream as gzip does.
      if (inf.z.next_in[0] != 0x1f) {
        r.status = GzipStatus::complete;
        return r;
      }
      if (inflateReset(&inf.z) != Z_OK) {
        r.error = "zlib reset failed";
        return r;
      }
      in_member = true;
    }
    inf.z.next_out = reinterpret_cast<Bytef*>(out->data());
    inf.z.avail_out = static_cast<uInt>(out->size());
    int rc = inflate(&inf.z, Z_NO_FLUSH);
    std::size_t produced = out->size() - inf.z.avail_out;
    if (rc == Z_NEED_DICT || rc == Z_DATA_ERROR || rc == Z_MEM_ERROR || rc == Z_STREAM_ERROR) {
      r.status = GzipStatus::corrupt;
      r.error = inf.z.msg ? inf.z.msg : "invalid gzip data";
      return r;
    }
    if (produced > 0) {
      if (!sink(r.size, {out->data(), produced})) {
        r.size += produced;
        r.status = GzipStatus::stopped;
        return r;
      }
      r.size += produced;
    }
    if (rc == Z_STREAM_END) in_member = false;
  }
}

GzipResult gunzip_prefix(int fd, std::size_t limit, std::string& out) {
  out.clear();
  if (limit == 0) return GzipResult{GzipStatus::stopped, 0, {}};
  return gunzip(fd, [&](std::uint64_t, std::span<const char> b) {
    out.append(b.data(), std::min(b.size(), limit - out.size()));
    return out.size() < limit;
  });
}

}  // namespace sluice::sources
