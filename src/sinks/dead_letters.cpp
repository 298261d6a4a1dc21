#include "sinks/dead_letters.hpp"

#include <fcntl.h>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>

namespace sluice::sinks {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kPrefix = "dead-letters-";
constexpr std::string_view kSuffix = ".ndjson";

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not one (overlong forms,
// surrogates and code points past U+10FFFF are invalid).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  const auto cont = [&](std::size_t k) {
    return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
  };
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    const auto b1 = static_cast<unsigned char>(s[i + 1]);
    if (b0 == 0xE0 && b1 < 0xA0) return 0;  // overlong
    if (b0 == 0xED && b1 > 0x9F) return 0;  // surrogate
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const auto b1 = static_cast<unsigned char>(s[i + 1]);
    if (b0 == 0xF0 && b1 < 0x90) return 0;  // overlong
    if (b0 == 0xF4 && b1 > 0x8F) return 0;  // past U+10FFFF
    return 4;
  }
  return 0;
}

bool parse_sequence(const fs::path& p, std::uint64_t& seq) {
  const std::string name = p.filename().string();
  if (name.size() <= kPrefix.size() + kSuffix.size() || !name.starts_with(kPrefix) || !name.ends_with(kSuffix)) {
    return false;
  }
  const auto digits = std::string_view(name).substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  std::uint64_t v = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  seq = v;
  return true;
}

std::map<std::uint64_t, fs::path> list_files(const std::string& dir) {
  std::map<std::uint64_t, fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::uint64_t seq = 0;
    if (entry.is_regular_file(ec) && parse_sequence(entry.path(), seq)) files.emplace(seq, entry.path());
  }
  return files;
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

std::size_t append_json_escaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::size_t replaced = 0;
  std::size_t run = 0;  // start of the bytes not yet copied
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      if (const std::size_t n = utf8_sequence(text, i); n > 0) {
        i += n;
        continue;
      }
    }
    out.append(text.data() + run, i - run);
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (c < 0x20) {
          out.append("\\u00");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.append("\xEF\xBF\xBD");  // U+FFFD for one byte of an invalid sequence
          ++replaced;
        }
    }
    ++i;
    run = i;
  }
  out.append(text.data() + run, text.size() - run);
  return replaced;
}

DeadLetters::DeadLetters(std::string dir, MetricsRegistry& metrics, std::uint64_t max_bytes)
    : dir_(std::move(dir)),
      max_bytes_(std::max<std::uint64_t>(max_bytes, 4096)),
      file_limit_(std::max<std::uint64_t>(max_bytes_ / 4, 1024)),
      metrics_(metrics),
      write_errors_(metrics.counter("dead_letter_write_errors_total",
                                    "Dead-letter writes that failed (the items stay pending and are retried)")),
      removed_files_(metrics.counter("dead_letter_files_removed_total",
                                     "Oldest dead-letter files removed to keep the directory under its size bound")),
      removed_bytes_(metrics.counter("dead_letter_bytes_removed_total", "Bytes of dead-letter files removed by rotation")) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    // Not fatal here: writes report it, and items stay pending until the directory works.
    spdlog::error("dead letters: cannot create directory {}: {}; refused items will be retried until it can be written",
                  dir_, ec.message());
  }
  for (const auto& [seq, path] : list_files(dir_)) {
    sequence_ = std::max(sequence_, seq);
    total_bytes_ += fs::file_size(path, ec);
  }
  metrics_.gauge_callback("dead_letter_bytes", "Bytes held in dead-letter files", {{"dir", dir_}},
                          [this] { return static_cast<double>(bytes()); });
}

DeadLetters::~DeadLetters() {
  metrics_.remove_callbacks("dead_letter_bytes", {{"dir", dir_}});
  if (fd_ >= 0) ::close(fd_);
}

std::uint64_t DeadLetters::bytes() const {
  std::lock_guard lock(mutex_);
  return total_bytes_;
}

bool DeadLetters::open_next() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  const auto path = fmt::format("{}/{}{:010}{}", dir_, kPrefix, sequence_ + 1, kSuffix);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    spdlog::error("dead letters: cannot open {}: {}; refused items stay pending and are retried", path,
                  std::strerror(errno));
    return false;
  }
  fsync_dir(dir_);  // the new name must survive a crash along with its records
  ++sequence_;
  fd_ = fd;
  file_bytes_ = 0;
  return true;
}

void DeadLetters::enforce_bound() {
  if (total_bytes_ <= max_bytes_) return;
  const auto files = list_files(dir_);
  for (const auto& [seq, path] : files) {
    if (total_bytes_ <= max_bytes_ || seq == sequence_) break;  // never the file being written
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec || !fs::remove(path, ec)) continue;
    total_bytes_ -= std::min(total_bytes_, size);
    removed_files_.inc();
    removed_bytes_.inc(size);
    spdlog::warn("dead letters: removed {} ({} bytes), the oldest file, to keep {} under {} bytes; raise the bound "
                 "or reprocess dead letters sooner to keep them",
                 path.string(), size, dir_, max_bytes_);
  }
}

bool DeadLetters::write(std::string_view sink, std::string_view reason, std::string_view record,
                        std::string_view detail) {
  const DeadLetter one{reason, record, detail};
  return write(sink, std::span<const DeadLetter>(&one, 1));
}

bool DeadLetters::write(std::string_view sink, std::span<const DeadLetter> letters) {
  if (letters.empty()) return true;
  const auto now = std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
  const auto secs = std::chrono::floor<std::chrono::seconds>(now);
  const auto time = fmt::format("{:%FT%T}.{:03}Z", secs, (now - secs).count());
  std::lock_guard lock(mutex_);
  line_.clear();
  for (const auto& l : letters) {
    line_.append("{\"time\":\"").append(time).append("\",\"sink\":\"");
    append_json_escaped(line_, sink);
    line_.append("\",\"reason\":\"");
    append_json_escaped(line_, l.reason);
    line_.append("\",\"detail\":\"");
    append_json_escaped(line_, l.detail);
    line_.append("\",\"record\":\"");
    append_json_escaped(line_, l.record);
    line_.append("\"}\n");
  }
  if ((fd_ < 0 || file_bytes_ >= file_limit_) && !open_next()) {
    write_errors_.inc();
    return false;
  }
  std::size_t done = 0;
  while (done < line_.size()) {
    const auto n = ::write(fd_, line_.data() + done, line_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      spdlog::error("dead letters: writing to {} failed: {}; {} refused items stay pending and are retried", dir_,
                    std::strerror(errno), letters.size());
      // A partial line would break the file's NDJSON: start a new file for the retry.
      file_bytes_ = file_limit_;
      total_bytes_ += done;
      write_errors_.inc();
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fdatasync(fd_) != 0) {
    spdlog::error("dead letters: fsync of {} failed: {}; the items stay pending and are retried", dir_,
                  std::strerror(errno));
    file_bytes_ = file_limit_;
    total_bytes_ += done;
    write_errors_.inc();
    return false;
  }
  file_bytes_ += line_.size();
  total_bytes_ += line_.size();
  for (const auto& l : letters) {
    metrics_.counter("dead_letters_total", "Items written to dead letters", {{"sink", std::string(sink)},
                                                                            {"reason", std::string(l.reason)}})
        .inc();
  }
  enforce_bound();
  return true;
}

}  // namespace sluice::sinks
