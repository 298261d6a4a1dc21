// CheckpointStore: the acknowledged position of every known file, saved atomically in <data_dir>/files/.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sources/files/file_identity.hpp"

namespace sluice::sources {

struct Checkpoint {
  std::string source;      // the source that found the file
  std::string path;        // where the file was found: part of its lines' identity
  std::uint64_t file_id = 0;
  std::uint64_t dev = 0, ino = 0;
  Fingerprint fingerprint;
  std::uint64_t offset = 0;       // every line before it was acknowledged by the bus
  bool truncated = false;         // its inode was truncated under it: a copy may hold the rest
  std::int64_t last_seen_ms = 0;  // wall clock; files gone for long are forgotten
  bool finished = false;          // read to its end and closed: never looked for in compressed rotations
};

class CheckpointStore {
 public:
  explicit CheckpointStore(std::string dir);  // the directory, e.g. <data_dir>/files

  // Creates the directory and checks that it is writable; throws std::runtime_error saying what to do.
  void open();
  // The checkpoints of the last save; a missing file is an empty list, a damaged one is logged and ignored.
  std::vector<Checkpoint> load() const;
  // Writes a temporary file, fsyncs it, renames it over the checkpoint file and fsyncs the directory.
  // false (logged) on any failure; the previous file is then untouched.
  bool save(const std::vector<Checkpoint>& checkpoints) const;

  const std::string& file() const { return file_; }

 private:
  std::string dir_, file_;
};

}  // namespace sluice::sources
