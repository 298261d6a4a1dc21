// Finishing files from their compressed rotations: a tracked file not fully read that is gone from disk (sluice
// was down while logrotate renamed, compressed and deleted it) is read on from the gzip copy that carries its
// fingerprint, with the same identity and line offsets.
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstring>

#include "sources/files/file_tailer_impl.hpp"
#include "sources/files/gzip_reader.hpp"

namespace sluice::sources {
namespace {

constexpr std::size_t kGzipPrefix = 4096;  // the largest fingerprint_bytes allowed
// A gzip file that stays truncated this long (unchanged) is not being written any more: reported as an error.
constexpr auto kTruncatedFinal = std::chrono::seconds(30);

std::string dir_of(const std::string& pattern) {
  auto slash = pattern.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : pattern.substr(0, slash);
}

std::string base_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::vector<std::string> dirs_of(const std::string& pattern) {
  std::string dir = dir_of(pattern);
  if (dir.find_first_of("*?[") == std::string::npos) return {dir};
  std::vector<std::string> out;
  glob_t g{};
  if (::glob(dir.c_str(), GLOB_ONLYDIR | GLOB_NOSORT, nullptr, &g) == 0) {
    for (std::size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  }
  globfree(&g);
  return out;
}

bool write_at(int fd, const char* p, std::size_t n, std::uint64_t at) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(at));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
    at += static_cast<std::uint64_t>(w);
  }
  return true;
}

// An unnamed file in `dir` (gone when closed, also after a crash).
UniqueFd temporary_file(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (fd) return fd;
  std::string name = dir + "/.gunzip-XXXXXX";
  fd.reset(::mkostemp(name.data(), O_CLOEXEC));
  if (fd) ::unlink(name.c_str());
  return fd;
}

}  // namespace

void FileTailer::Impl::finish_from_gzip(Clock::time_point now) {
  for (auto& [key, g] : gzip_seen) g.seen = false;
  for (auto& [name, s] : sources) {
    if (s->removed) continue;
    // Files of this source with unread content possibly only in a compressed rotation: not open, not known to
    // be finished. (A file loaded from a checkpoint and not found by the scan is one.)
    std::vector<TrackedFile*> pending;
    for (auto& [key, f] : files) {
      if (f->source == name && !f->fd && !f->finished && f->file_id != 0 && f->fp.length > 0) {
        pending.push_back(f.get());
      }
    }
    if (pending.empty()) continue;
    std::vector<std::string> prefixes;
    for (TrackedFile* f : pending) {
      prefixes.push_back(base_of(f->path));
      prefixes.push_back(base_of(f->current_path));
    }
    for (const auto& pattern : s->config.include) {
      for (const auto& dir : dirs_of(pattern)) {
        std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
        if (!d) continue;
        while (dirent* e = ::readdir(d.get())) {
          std::string entry = e->d_name;
          if (entry == "." || entry == "..") continue;
          std::string path = dir + "/" + entry;
          // Excludes are ignored on purpose: `exclude: ['*.gz']` must not hide the compressed copy of a file
          // not finished.
          bool named = false;
          for (const auto& inc : s->config.include) named |= fnmatch(inc.c_str(), path.c_str(), FNM_PATHNAME) == 0;
          for (const auto& p : prefixes) named |= !p.empty() && entry.starts_with(p);
          struct stat st {};
          if (!named || ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
          std::pair<std::uint64_t, std::uint64_t> inode{st.st_dev, st.st_ino};
          bool tailed = false;
          for (auto& [key, f] : files) tailed |= f->fd && f->dev == inode.first && f->ino == inode.second;
          if (tailed) continue;
          GzipSeen& g = gzip_seen[inode];
          g.seen = true;
          const std::int64_t mtime_ns = std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
          const auto size = static_cast<std::uint64_t>(st.st_size);
          if (g.size != size || g.mtime_ns != mtime_ns) {
            g = GzipSeen{};
            g.seen = true;
            UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
            if (!fd) continue;  // gone meanwhile, or not readable: looked at again next scan
            g.size = size;
            g.mtime_ns = mtime_ns;
            g.gzip = is_gzip(fd.get());
            if (g.gzip) {
              auto r = gunzip_prefix(fd.get(), kGzipPrefix, g.first);
              if (r.status == GzipStatus::corrupt || r.status == GzipStatus::io_error) {
                g.failed = true;
                g.reported = true;
                gzip_errors.inc();
                spdlog::warn("file source: {} looks like gzip but cannot be decompressed ({}); it is ignored. If it "
                             "holds a rotated log sluice had not finished, its lines are lost: check the file with "
                             "`gzip -t`",
                             path, r.error);
              }
            }
          }
          if (!g.gzip || g.used) continue;
          if (g.failed) {
            if (!g.reported && now - g.since >= kTruncatedFinal) {
              g.reported = true;
              gzip_errors.inc();
              spdlog::warn("file source: {} is a truncated gzip file and has not changed for {} s; the rest of the "
                           "rotated log it holds cannot be read. Check the disk and the rotation (`gzip -t {}`)",
                           path, std::chrono::duration_cast<std::chrono::seconds>(kTruncatedFinal).count(), path);
            }
            continue;
          }
          TrackedFile* match = nullptr;
          for (TrackedFile* f : pending) {
            if (!f->fd && fingerprint_matches(g.first, f->fp)) {
              match = f;
              break;
            }
          }
          if (!match) continue;
          UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
          if (!fd) continue;
          g.used = open_from_gzip(*match, fd.get(), path);
          if (!g.used && g.failed) g.since = now;
        }
      }
    }
  }
  for (auto it = gzip_seen.begin(); it != gzip_seen.end();) it = it->second.seen ? std::next(it) : gzip_seen.erase(it);
}

bool FileTailer::Impl::open_from_gzip(TrackedFile& f, int gz_fd, const std::string& gz_path) {
  const std::string dir = config.data_dir + "/files";
  UniqueFd tmp = temporary_file(dir);
  struct stat gz_st {};
  ::fstat(gz_fd, &gz_st);
  GzipSeen& g = gzip_seen[{std::uint64_t(gz_st.st_dev), std::uint64_t(gz_st.st_ino)}];
  if (!tmp) {
    if (auto suppressed = log_limiter.allow("gunzip " + dir)) {
      spdlog::warn("file source: cannot create a temporary file in {} to read {} from {}: {}; retried on the next "
                   "scan. Free space or fix permissions there ({} more not logged)",
                   dir, f.path, gz_path, std::strerror(errno), *suppressed);
    }
    g.size = 0;  // looked at again
    return false;
  }
  // Only the fingerprinted start and what is not acknowledged are written: the rest stays a hole, never read.
  const std::uint64_t keep_head = f.fp.length, from = f.acks.acked();
  bool write_ok = true;
  auto r = gunzip(gz_fd, [&](std::uint64_t at, std::span<const char> b) {
    std::uint64_t end = at + b.size();
    if (at < keep_head) {
      write_ok &= write_at(tmp.get(), b.data(), std::min<std::uint64_t>(end, keep_head) - at, at);
    }
    std::uint64_t lo = std::max({at, from, keep_head});
    if (end > lo) write_ok &= write_at(tmp.get(), b.data() + (lo - at), end - lo, lo);
    return write_ok;
  });
  if (!write_ok || r.status == GzipStatus::io_error) {
    if (auto suppressed = log_limiter.allow("gunzip " + dir)) {
      spdlog::warn("file source: cannot decompress {} into {} ({}); retried on the next scan. Free space there "
                   "({} more not logged)",
                   gz_path, dir, write_ok ? r.error : std::strerror(errno), *suppressed);
    }
    g.size = 0;
    return false;
  }
  if (r.status == GzipStatus::truncated) {
    // Most likely logrotate is still compressing it: the next change of the file brings a new try.
    spdlog::info("file source: {} holds the rest of {} but ends before its gzip trailer (still being written?); "
                 "read again when it changes",
                 gz_path, f.path);
    g.failed = true;
    return false;
  }
  if (r.status != GzipStatus::complete) {
    g.failed = g.reported = true;
    gzip_errors.inc();
    spdlog::warn("file source: {} holds the rest of {} but cannot be decompressed ({}); lines after offset {} of that "
                 "file are lost. Check it with `gzip -t`",
                 gz_path, f.path, r.error, from);
    return false;
  }
  struct stat st {};
  if (::ftruncate(tmp.get(), static_cast<off_t>(r.size)) != 0 || ::fstat(tmp.get(), &st) != 0) {
    g.size = 0;
    return false;
  }
  if (r.size > f.read_pos) {
    spdlog::info("file source: {} was compressed to {} before it was read to its end; reading it on from offset {} "
                 "of {} decompressed bytes",
                 f.path, gz_path, f.read_pos, r.size);
  } else {
    spdlog::info("file source: {} (compressed to {}) had been read to its end ({} bytes); nothing left to read",
                 f.path, gz_path, r.size);
  }
  rot_compressed.inc();
  f.fd = std::move(tmp);
  // The temporary file's inode: the original's may be reused by a new file, which must not be mistaken for it.
  f.dev = st.st_dev;
  f.ino = st.st_ino;
  f.from_gzip = true;
  f.truncated = false;
  f.live = false;
  f.at_eof = false;
  f.current_path = gz_path;
  f.size = r.size;
  f.idle_since = Clock::now();
  dirty = true;
  return true;
}

}  // namespace sluice::sources
