// Discovery (globs, inotify), identity resolution, rotation and truncation, and reading of tailed files.
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "sources/files/file_tailer_impl.hpp"

namespace sluice::sources {
namespace {

constexpr std::size_t kReadBuffer = 4 << 20;
constexpr std::size_t kReadBudget = 32 << 20;  // per file and turn, so that one busy file does not starve others

bool has_glob_chars(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

std::vector<std::string> expand(const std::string& pattern, int flags) {
  std::vector<std::string> out;
  glob_t g{};
  if (::glob(pattern.c_str(), flags | GLOB_NOSORT, nullptr, &g) == 0) {
    for (std::size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  }
  globfree(&g);
  return out;
}

// Where reading starts for start_at: end: after the last complete line, so that no half line is read.
std::uint64_t end_start(int fd, std::uint64_t size) {
  constexpr std::size_t kLook = 64 << 10;
  std::uint64_t from = size > kLook ? size - kLook : 0;
  std::vector<char> tail(size - from);
  ssize_t n = pread(fd, tail.data(), tail.size(), static_cast<off_t>(from));
  if (n <= 0) return size;
  const void* nl = memrchr(tail.data(), '\n', static_cast<std::size_t>(n));
  if (!nl) return from == 0 ? 0 : size;
  return from + static_cast<std::uint64_t>(static_cast<const char*>(nl) - tail.data()) + 1;
}

// Groups lines into chunks of at most max_chunk_bytes and publishes them.
class ChunkSink final : public LineSink {
 public:
  ChunkSink(FileTailer::Impl& d, TrackedFile& f) : d_(d), f_(f) {}
  bool line(const CutLine& l) override {
    if (lines_ > 0 && d_.writer.size() + l.text.size() + 24 > d_.config.max_chunk_bytes && !finish()) {
      stopped = true;
      return false;
    }
    if (lines_ == 0) {
      // Beyond max_in_flight_bytes no new chunk is started: reading resumes as acknowledgements come.
      if (d_.in_flight_bytes >= d_.config.max_in_flight_bytes) {
        stopped = true;
        return false;
      }
      d_.writer.begin(d_.config.host, f_.path, f_.file_id);
    }
    d_.writer.add(l.offset, l.text, l.flags);
    ++lines_;
    end_ = l.end;
    return true;
  }
  // Publishes what is gathered; a refused chunk is kept in the file for a later retry.
  bool finish() {
    if (lines_ == 0) return true;
    lines_ = 0;
    auto bytes = d_.writer.bytes();
    if (d_.publish_chunk(f_, bytes, end_)) return true;
    f_.refused.assign(bytes.begin(), bytes.end());
    f_.refused_end = end_;
    return false;
  }
  bool stopped = false;  // backpressure stopped the cutter before the end of the data

 private:
  FileTailer::Impl& d_;
  TrackedFile& f_;
  std::uint32_t lines_ = 0;
  std::uint64_t end_ = 0;
};

}  // namespace

void FileTailer::Impl::add_watches() {
  if (inotify_fd < 0) return;
  constexpr std::uint32_t kMask = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_MODIFY | IN_DELETE | IN_ATTRIB |
                                  IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF;
  for (auto& [name, s] : sources) {
    if (s->removed) continue;
    for (const auto& pattern : s->config.include) {
      auto slash = pattern.rfind('/');
      std::string dir = slash == 0 ? "/" : pattern.substr(0, slash);
      std::vector<std::string> dirs = has_glob_chars(dir) ? expand(dir, GLOB_ONLYDIR) : std::vector<std::string>{dir};
      for (const auto& dd : dirs) {
        if (watches.contains(dd)) continue;
        int wd = inotify_add_watch(inotify_fd, dd.c_str(), kMask);
        if (wd < 0) continue;  // not there yet: the next rescan tries again
        watches[dd] = wd;
        watch_dirs[wd] = dd;
      }
    }
  }
}

void FileTailer::Impl::handle_inotify() {
  if (inotify_fd < 0) return;
  alignas(inotify_event) char buf[64 << 10];
  for (;;) {
    ssize_t n = ::read(inotify_fd, buf, sizeof buf);
    if (n <= 0) return;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        scan_requested = true;
        continue;
      }
      auto wit = watch_dirs.find(ev->wd);
      if (ev->mask & IN_IGNORED) {
        if (wit != watch_dirs.end()) {
          watches.erase(wit->second);
          watch_dirs.erase(wit);
        }
        scan_requested = true;
        continue;
      }
      if ((ev->mask & (IN_MODIFY | IN_CLOSE_WRITE)) && ev->len > 0 && wit != watch_dirs.end()) {
        // Growth of a file already open is read by the poll that follows; an unknown one may be new.
        std::string path = wit->second + "/" + ev->name;
        bool known = false;
        for (auto& [key, f] : files) {
          if (f->fd && f->current_path == path) {
            known = true;
            break;
          }
        }
        if (!known) scan_requested = true;
        continue;
      }
      scan_requested = true;
    }
  }
}

void FileTailer::Impl::scan(Clock::time_point now) {
  scan_requested = false;
  last_event_scan = now;
  if (now - last_scan >= config.rescan_interval) last_scan = now;
  add_watches();

  struct Found {
    SourceRt* src;
    std::string path;
  };
  std::map<std::pair<std::uint64_t, std::uint64_t>, Found> found;
  for (auto& [name, s] : sources) {
    if (s->removed) continue;
    for (const auto& pattern : s->config.include) {
      for (auto& path : expand(pattern, 0)) {
        bool excluded = false;
        for (const auto& ex : s->config.exclude) excluded |= fnmatch(ex.c_str(), path.c_str(), 0) == 0;
        struct stat st {};
        if (excluded || ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        found.emplace(std::make_pair(std::uint64_t(st.st_dev), std::uint64_t(st.st_ino)), Found{s.get(), path});
      }
    }
  }

  std::map<std::pair<std::uint64_t, std::uint64_t>, TrackedFile*> open;
  for (auto& [key, f] : files) {
    if (f->fd) open[{f->dev, f->ino}] = f.get();
  }
  for (auto& [inode, f] : open) {
    bool was_live = f->live;
    auto it = found.find(inode);
    f->live = it != found.end();
    if (f->live) {
      f->current_path = it->second.path;
      f->unmatched = false;
      found.erase(it);
    } else if (was_live) {
      f->idle_since = now;
      struct stat at_path {};
      if (::stat(f->current_path.c_str(), &at_path) == 0 && std::uint64_t(at_path.st_dev) == f->dev &&
          std::uint64_t(at_path.st_ino) == f->ino) {
        // Still there, but the configuration (or etcd) no longer lists it: drain what is written, then close.
        f->unmatched = true;
        spdlog::info("file source: {} is no longer matched by its source; reading it to its end, then closing it",
                     f->current_path);
      } else {
        // Renamed away or deleted: read on to its end, close it when it stays idle.
        rot_rename.inc();
        spdlog::info("file source: {} was rotated away (renamed or deleted); reading it to its end", f->current_path);
      }
    }
  }
  // Files with a remembered inode first, so that a truncation found there makes its copy recognizable.
  std::vector<std::pair<bool, const Found*>> order;
  for (auto& [inode, fd_found] : found) {
    bool known = false;
    for (auto& [key, f] : files) known |= !f->fd && f->dev == inode.first && f->ino == inode.second;
    order.emplace_back(!known, &fd_found);
  }
  std::stable_sort(order.begin(), order.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (auto& [unknown, found_ptr] : order) {
    const Found& fd_found = *found_ptr;
    UniqueFd fd(::open(fd_found.path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    adopt_found(*fd_found.src, fd_found.path, std::move(fd), st, now);
  }
  for (auto it = copy_candidates.begin(); it != copy_candidates.end();) {
    it = now - it->second.since < config.copy_window ? std::next(it) : copy_candidates.erase(it);
  }
  for (auto& [name, s] : sources) s->scanned |= !s->removed;
}

TrackedFile* FileTailer::Impl::adopt_found(SourceRt& src, const std::string& path, UniqueFd fd,
                                           const struct stat& st, Clock::time_point now) {
  const std::uint64_t dev = st.st_dev, ino = st.st_ino, size = static_cast<std::uint64_t>(st.st_size);
  auto attach = [&](TrackedFile& f) -> TrackedFile* {
    f.fd = std::move(fd);
    f.live = true;
    f.at_eof = false;
    f.finished = false;
    f.from_gzip = false;
    f.current_path = path;
    f.source = src.config.name;
    f.size = size;
    dirty = true;
    return &f;
  };
  // The same file seen before (restart, or reopened after it was closed): resume where it was acknowledged.
  // Several remembered files can share the inode (a deleted file's inode handed to a new one): the one whose
  // first bytes match is this file. Same first bytes but shorter than the offset is kept as the same file:
  // the copy of a copytruncated file can end before what was read from the original.
  TrackedFile* changed = nullptr;
  for (auto& [key, owner] : files) {
    TrackedFile& f = *owner;
    if (f.fd || f.truncated || f.dev != dev || f.ino != ino) continue;
    if (fingerprint_matches(fd.get(), f.fp)) {
      spdlog::info("file source: resuming {} (found as {}) at offset {}", path, f.path, f.read_pos);
      return attach(f);
    }
    if (changed == nullptr) changed = &f;
  }
  // Same inode with other first bytes, or shorter than the offset: truncated (or the inode was reused) while
  // not tailed; the old content may be in a copy.
  if (changed != nullptr) {
    spdlog::info("file source: {} changed while not tailed (size {}, offset {}, first bytes {}); looking for a "
                 "copy of its old content, reading the file as new",
                 path, size, changed->read_pos, size < changed->fp.length ? "gone" : "differ");
    changed->truncated = true;
    changed->copy_deadline = now + config.copy_window;
    rot_truncate.inc();
    dirty = true;
  }
  auto fp = read_fingerprint(fd.get(), src.config.fingerprint_bytes);
  if (!fp) return nullptr;  // no complete first line yet: it gets its identity when it has one

  // The copy of a truncated file (copytruncate): its old content goes on from where it was read.
  for (auto& [key, owner] : files) {
    TrackedFile& f = *owner;
    // A copy shorter than the read offset was made before lines the tailer read from the original: it holds
    // nothing new, and is kept (not read as a new file) until it goes away.
    if (f.fd || !f.truncated || (f.dev == dev && f.ino == ino) || !(f.fp == *fp)) continue;
    spdlog::info("file source: {} is the copy of truncated {}; reading it on from offset {}", path, f.path, f.read_pos);
    rot_copy.inc();
    copy_candidates.erase({dev, ino});
    f.dev = dev;
    f.ino = ino;
    f.truncated = false;
    return attach(f);
  }
  // Same first bytes as a file being tailed: a copy being made before a truncation. Wait to tell.
  for (auto& [key, owner] : files) {
    TrackedFile& f = *owner;
    if (!f.fd || !f.live || !(f.fp == *fp)) continue;
    auto [it, fresh] = copy_candidates.try_emplace({dev, ino});
    if (fresh) {
      it->second = CopyCandidate{now, std::move(fd), path};
      return nullptr;
    }
    if (now - it->second.since < config.copy_window) return nullptr;
    break;
  }
  copy_candidates.erase({dev, ino});

  TrackedFile& f = new_file();
  f.source = src.config.name;
  f.path = path;
  f.publish_key = config.host + ":" + path;
  f.dev = dev;
  f.ino = ino;
  f.read_pos = (!src.scanned && src.config.start_at == StartAt::end) ? end_start(fd.get(), size) : 0;
  f.acks.reset(f.read_pos);
  assign_identity(f, *fp);
  spdlog::info("file source {}: tailing {} from offset {} (file id {:016x})", src.config.name, path, f.read_pos,
               f.file_id);
  return attach(f);
}

void FileTailer::Impl::assign_identity(TrackedFile& f, const Fingerprint& fp) {
  f.fp = fp;
  for (std::uint32_t salt = 0;; ++salt) {
    std::uint64_t id = make_file_id(f.dev, f.ino, fp, salt);
    bool taken = false;
    for (auto& [key, other] : files) taken |= other.get() != &f && other->file_id == id;
    if (!taken) {
      f.file_id = id;
      return;
    }
  }
}

void FileTailer::Impl::truncated(TrackedFile& f, Clock::time_point now) {
  rot_truncate.inc();
  spdlog::info("file source: {} was truncated (read up to offset {}); its old content is read from a copy if one "
               "appears within {} ms, its new content as a new file",
               f.current_path, f.read_pos, config.copy_window.count());
  f.fd.reset();
  f.truncated = true;
  f.live = false;
  f.copy_deadline = now + config.copy_window;
  dirty = true;
  scan_requested = true;
  last_event_scan = {};
  // A copy made just before (held open, even if it has been compressed and deleted since).
  for (auto it = copy_candidates.begin(); it != copy_candidates.end(); ++it) {
    struct stat st {};
    if (::fstat(it->second.fd.get(), &st) != 0 || !fingerprint_matches(it->second.fd.get(), f.fp)) {
      continue;
    }
    spdlog::info("file source: {} is the copy of truncated {}; reading it on from offset {}", it->second.path, f.path,
                 f.read_pos);
    rot_copy.inc();
    f.fd = std::move(it->second.fd);
    f.dev = st.st_dev;
    f.ino = st.st_ino;
    f.truncated = false;
    f.live = true;  // the next scan tells whether it is still matched
    f.at_eof = false;
    f.current_path = it->second.path;
    f.size = static_cast<std::uint64_t>(st.st_size);
    copy_candidates.erase(it);
    return;
  }
}

bool FileTailer::Impl::poll_file(TrackedFile& f, Clock::time_point now, bool verify) {
  if (!f.refused.empty()) return false;
  struct stat st {};
  if (::fstat(f.fd.get(), &st) != 0) return false;
  const auto size = static_cast<std::uint64_t>(st.st_size);
  // Shrunk since the last look, or other first bytes: truncated. (Not "smaller than the read offset": the copy
  // of a copytruncated file may end before what was read from the original.)
  const bool shrunk = size < f.size;
  if ((shrunk || verify) && (shrunk || !fingerprint_matches(f.fd.get(), f.fp))) {
    truncated(f, now);
    return false;
  }
  if (size > f.size && !f.live) f.idle_since = now;
  f.size = size;
  auto flush = LineCutter::Flush::none;
  SourceRt* src = source_of(f);
  if (src && f.cut.pending_event && now - f.cut.pending_since >= src->cutter->multiline_timeout()) {
    flush = LineCutter::Flush::events;
  }
  if (size > f.read_pos || flush != LineCutter::Flush::none) return read_file(f, flush);
  f.at_eof = true;
  return false;
}

bool FileTailer::Impl::read_file(TrackedFile& f, LineCutter::Flush flush) {
  SourceRt* src = source_of(f);
  if (!src || !f.fd || !f.refused.empty()) return false;
  const std::size_t cap = std::max(kReadBuffer, 2 * src->cutter->max_line_bytes() + (64 << 10));
  if (buffer.size() < cap) buffer.resize(cap);
  ChunkSink sink(*this, f);
  std::size_t budget = kReadBudget;
  for (;;) {
    if (in_flight_bytes >= config.max_in_flight_bytes) return false;
    ssize_t n = ::pread(f.fd.get(), buffer.data(), cap, static_cast<off_t>(f.read_pos));
    if (n < 0) {
      if (auto suppressed = log_limiter.allow("read " + f.current_path)) {
        spdlog::warn("file source: cannot read {}: {} (retried; {} more not logged)", f.current_path,
                     std::strerror(errno), *suppressed);
      }
      return false;
    }
    const bool eof = static_cast<std::size_t>(n) < cap;
    if (n == 0 && flush != LineCutter::Flush::all && !f.cut.skipping) {
      f.at_eof = true;
      return false;
    }
    std::size_t used = src->cutter->cut({buffer.data(), static_cast<std::size_t>(n)}, f.read_pos, f.cut, sink,
                                        eof ? flush : LineCutter::Flush::none);
    sink.finish();
    f.read_pos += used;
    bytes_read.inc(used);
    if (!f.refused.empty()) return false;
    f.at_eof = eof && !sink.stopped;
    if (eof || used == 0 || sink.stopped) return false;
    budget -= std::min(budget, used);
    if (budget == 0) return true;
  }
}

}  // namespace sluice::sources
