// File identity: device, inode and a fingerprint of the first bytes, and the stable 64-bit file id made of them.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice::sources {

// The fingerprint covers the first `fingerprint_bytes` of the file, or less when the first line ends
// before: up to and including its newline. Either way it never changes as the file grows, so it can be
// taken as soon as the first line is complete (or fingerprint_bytes are there) and recomputed identically
// after a restart. A file with neither has no identity yet and is not read.
struct Fingerprint {
  std::uint64_t hash = 0;
  std::uint32_t length = 0;  // bytes covered
  bool operator==(const Fingerprint&) const = default;
};

// Reads the fingerprint of an open file; nullopt when it has no complete first line and fewer than
// fingerprint_bytes (or cannot be read). With `whole_if_short`, such a file (finished: rotated or deleted)
// is fingerprinted over all its bytes, if it has any.
std::optional<Fingerprint> read_fingerprint(int fd, std::size_t fingerprint_bytes, bool whole_if_short = false);

// The same for bytes already read (the decompressed start of a gzip file), which must hold the file's first
// min(size, fingerprint_bytes) bytes.
std::optional<Fingerprint> fingerprint_of(std::string_view first_bytes, std::size_t fingerprint_bytes,
                                          bool whole_if_short = false);

// Whether the file's first bytes still carry this fingerprint (false when shorter or different).
bool fingerprint_matches(int fd, const Fingerprint& fp);
// The same for bytes already read (the decompressed start of a gzip file).
bool fingerprint_matches(std::string_view first_bytes, const Fingerprint& fp);

// The id carried in chunks: one identity, one id. `salt` separates identities that would collide
// (the same inode truncated and refilled with the same first line).
std::uint64_t make_file_id(dev_t dev, ino_t ino, const Fingerprint& fp, std::uint32_t salt = 0);

}  // namespace sluice::sources
