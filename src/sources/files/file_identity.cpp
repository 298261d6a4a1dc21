#include "sources/files/file_identity.hpp"

#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <array>

namespace sluice::sources {
namespace {

// fingerprint_bytes is at most 4096 (config check); a stack buffer of that size is enough.
constexpr std::size_t kMaxFingerprint = 4096;

std::size_t read_prefix(int fd, char* buf, std::size_t want) {
  std::size_t got = 0;
  while (got < want) {
    ssize_t r = pread(fd, buf + got, want - got, static_cast<off_t>(got));
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
  }
  return got;
}

}  // namespace

std::optional<Fingerprint> read_fingerprint(int fd, std::size_t fingerprint_bytes, bool whole_if_short) {
  std::array<char, kMaxFingerprint> buf;
  std::size_t want = std::min(fingerprint_bytes, kMaxFingerprint);
  std::size_t got = read_prefix(fd, buf.data(), want);
  return fingerprint_of({buf.data(), got}, want, whole_if_short);
}

std::optional<Fingerprint> fingerprint_of(std::string_view first_bytes, std::size_t fingerprint_bytes,
                                          bool whole_if_short) {
  const std::size_t want = std::min(fingerprint_bytes, kMaxFingerprint);
  const std::string_view head = first_bytes.substr(0, want);
  std::size_t len = 0;
  if (auto nl = head.find('\n'); nl != std::string_view::npos) {
    len = nl + 1;
  } else if (head.size() == want || (whole_if_short && !head.empty())) {
    len = head.size();
  } else {
    return std::nullopt;
  }
  return Fingerprint{XXH3_64bits(head.data(), len), static_cast<std::uint32_t>(len)};
}

bool fingerprint_matches(int fd, const Fingerprint& fp) {
  std::array<char, kMaxFingerprint> buf;
  std::size_t want = std::min<std::size_t>(fp.length, kMaxFingerprint);
  if (want == 0) return false;
  std::size_t got = read_prefix(fd, buf.data(), want);
  return got == want && XXH3_64bits(buf.data(), got) == fp.hash;
}

bool fingerprint_matches(std::string_view first_bytes, const Fingerprint& fp) {
  return fp.length > 0 && first_bytes.size() >= fp.length && XXH3_64bits(first_bytes.data(), fp.length) == fp.hash;
}

std::uint64_t make_file_id(dev_t dev, ino_t ino, const Fingerprint& fp, std::uint32_t salt) {
  struct {
    std::uint64_t dev, ino, hash;
    std::uint32_t length, salt;
  } key{static_cast<std::uint64_t>(dev), static_cast<std::uint64_t>(ino), fp.hash, fp.length, salt};
  std::uint64_t id = XXH3_64bits(&key, sizeof key);
  return id == 0 ? 1 : id;  // 0 means "no identity yet" inside the tailer
}

}  // namespace sluice::sources
