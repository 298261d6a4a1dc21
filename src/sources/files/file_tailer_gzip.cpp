// Finishing files from their compressed rotations: a tracked file not fully read that is gone from disk (sluice
// was down while logrotate renamed, compressed and deleted it) is read on from the gzip copy that carries its
// fingerprint, with the same identity and line offsets.
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <xxhash.h>

#include <cstring>
#include <map>
#include <optional>
#include <set>

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

// `<base>.<N>` or `<base>.<N>.gz` (logrotate's numbered rotations): the base path and N.
std::optional<std::pair<std::string, unsigned long>> numbered_rotation(std::string_view path) {
  if (path.ends_with(".gz")) path.remove_suffix(3);
  auto dot = path.rfind('.');
  if (dot == std::string_view::npos || dot + 1 == path.size() || path.size() - dot > 10) return std::nullopt;
  unsigned long n = 0;
  for (char c : path.substr(dot + 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<unsigned long>(c - '0');
  }
  return std::make_pair(std::string(path.substr(0, dot)), n);
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
    std::set<std::string> prefixes;
    // The highest rotation number at which a known file is found now, by base path; and the never-seen
    // compressed rotations: read when a known file of the same base has a higher number (rotated before them).
    std::map<std::string, unsigned long> oldest_known;
    struct Unseen {
      std::string path, base;
      unsigned long n;
      std::pair<std::uint64_t, std::uint64_t> inode;
    };
    std::vector<Unseen> unseen;
    // The fingerprints of every identity of the source (a .gz matching none was never seen), by length: each
    // .gz's start is hashed once per distinct length, not once per known file.
    std::map<std::uint32_t, std::set<std::uint64_t>> known_fps;
    for (auto& [key, f] : files) {
      if (f->source != name || f->file_id == 0 || f->fp.length == 0) continue;
      known_fps[f->fp.length].insert(f->fp.hash);
      prefixes.insert(base_of(f->path));
      if (!f->fd && !f->finished) {
        pending.push_back(f.get());
        prefixes.insert(base_of(f->current_path));
      }
      if (auto r = numbered_rotation(f->current_path); r && f->fd && !f->from_gzip) {
        auto& m = oldest_known[r->first];
        m = std::max(m, r->second);
      }
    }
    if (known_fps.empty()) continue;
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
          if (!g.gzip) continue;
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
          auto rotation = numbered_rotation(path);
          bool is_known = false;
          for (const auto& [length, hashes] : known_fps) {
            if (length > g.first.size()) break;
            is_known = hashes.contains(XXH3_64bits(g.first.data(), length));
            if (is_known) break;
          }
          if (is_known && rotation) {
            auto& m = oldest_known[rotation->first];
            m = std::max(m, rotation->second);
          }
          if (!is_known) {
            if (rotation && !g.first.empty()) unseen.push_back({path, rotation->first, rotation->second, inode});
            continue;
          }
          if (g.used) continue;
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
    for (const Unseen& u : unseen) {
      auto it = oldest_known.find(u.base);
      if (it == oldest_known.end() || it->second <= u.n) continue;  // not newer than a known file: history
      GzipSeen& g = gzip_seen[u.inode];
      if (g.used || g.failed) continue;
      UniqueFd fd(::open(u.path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) continue;
      g.used = read_unseen_gzip(*s, u.base, fd.get(), u.path, g.first);
      if (!g.used && g.failed) g.since = now;
    }
  }
  for (auto it = gzip_seen.begin(); it != gzip_seen.end();) it = it->second.seen ? std::next(it) : gzip_seen.erase(it);
}

bool FileTailer::Impl::read_unseen_gzip(SourceRt& src, const std::string& rotated_from, int gz_fd,
                                        const std::string& gz_path, std::string_view first) {
  auto fp = fingerprint_of(first, src.config.fingerprint_bytes, true);
  struct stat st {};
  if (!fp || ::fstat(gz_fd, &st) != 0) return false;
  TrackedFile& f = new_file();
  f.source = src.config.name;
  f.path = rotated_from;  // where its lines were written: the same path as every other file of that log
  f.publish_key = config.host + ":" + rotated_from;
  f.current_path = gz_path;
  // The .gz's inode until it is opened: stable while it is on disk, so a second try makes the same id.
  f.dev = st.st_dev;
  f.ino = st.st_ino;
  f.acks.reset(0);
  assign_identity(f, *fp);
  if (!open_from_gzip(f, gz_fd, gz_path)) {
    files.erase(f.key);
    return false;
  }
  spdlog::info("file source {}: {} is a rotation of {} newer than a file already read, compressed before sluice saw "
               "it (created while sluice was down, or just before it stopped); reading all of it (file id {:016x})",
               src.config.name, gz_path, rotated_from, f.file_id);
  return true;
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
