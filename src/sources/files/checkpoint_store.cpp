#include "sources/files/checkpoint_store.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace sluice::sources {
namespace {

bool write_all(int fd, const std::string& s) {
  std::size_t done = 0;
  while (done < s.size()) {
    ssize_t w = ::write(fd, s.data() + done, s.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    done += static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace

CheckpointStore::CheckpointStore(std::string dir) : dir_(std::move(dir)), file_(dir_ + "/checkpoints.json") {}

void CheckpointStore::open() {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    throw std::runtime_error("file source: cannot create the checkpoint directory " + dir_ + ": " + ec.message() +
                             "; set data_dir to a writable directory");
  }
  std::string probe = dir_ + "/.probe";
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error("file source: the checkpoint directory " + dir_ + " is not writable (" +
                             std::strerror(errno) + "); fix its permissions or set data_dir elsewhere");
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

std::vector<Checkpoint> CheckpointStore::load() const {
  std::vector<Checkpoint> out;
  std::ifstream in(file_);
  if (!in) return out;
  try {
    auto doc = nlohmann::json::parse(in);
    for (const auto& j : doc.at("files")) {
      Checkpoint c;
      c.source = j.at("source").get<std::string>();
      c.path = j.at("path").get<std::string>();
      c.file_id = j.at("file_id").get<std::uint64_t>();
      c.dev = j.at("dev").get<std::uint64_t>();
      c.ino = j.at("ino").get<std::uint64_t>();
      c.fingerprint.hash = j.at("fp_hash").get<std::uint64_t>();
      c.fingerprint.length = j.at("fp_len").get<std::uint32_t>();
      c.offset = j.at("offset").get<std::uint64_t>();
      c.truncated = j.value("truncated", false);
      c.finished = j.value("finished", false);
      c.last_seen_ms = j.value("last_seen_ms", std::int64_t{0});
      out.push_back(std::move(c));
    }
  } catch (const std::exception& e) {
    spdlog::error("file source: checkpoint file {} is damaged ({}); ignoring it, files are read as first seen "
                  "(start_at). Remove it to silence this message",
                  file_, e.what());
    out.clear();
  }
  return out;
}

bool CheckpointStore::save(const std::vector<Checkpoint>& checkpoints) const {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& c : checkpoints) {
    files.push_back({{"source", c.source},
                     {"path", c.path},
                     {"file_id", c.file_id},
                     {"dev", c.dev},
                     {"ino", c.ino},
                     {"fp_hash", c.fingerprint.hash},
                     {"fp_len", c.fingerprint.length},
                     {"offset", c.offset},
                     {"truncated", c.truncated},
                     {"finished", c.finished},
                     {"last_seen_ms", c.last_seen_ms}});
  }
  std::string body = nlohmann::json{{"version", 1}, {"files", files}}.dump();
  body.push_back('\n');
  std::string tmp = file_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    spdlog::error("file source: cannot write checkpoints to {}: {}; positions are kept in memory and retried",
                  tmp, std::strerror(errno));
    return false;
  }
  bool ok = write_all(fd, body) && ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), file_.c_str()) != 0) {
    if (ok) err = errno;
    spdlog::error("file source: cannot save checkpoints to {}: {}; a restart now would re-read from the previous "
                  "save (duplicates, no loss). Check the disk",
                  file_, std::strerror(err));
    ::unlink(tmp.c_str());
    return false;
  }
  int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

}  // namespace sluice::sources
