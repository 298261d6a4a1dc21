#include "sources/files/file_tailer.hpp"

#include <poll.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "core/thread_name.hpp"
#include "sources/files/file_tailer_impl.hpp"

namespace sluice::sources {
namespace {

std::string default_host() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

FileTailer::Impl::Impl(FileTailerConfig c, ChunkPublisher& p, MetricsRegistry& m)
    : config(std::move(c)),
      publisher(p),
      metrics(m),
      store(config.data_dir + "/files"),
      lines_read(m.counter("files_lines_read_total", "Lines (and multiline events) read from tailed files")),
      bytes_read(m.counter("files_bytes_read_total", "Bytes consumed from tailed files")),
      lines_split(m.counter("files_lines_split_total", "Pieces cut from lines longer than max_line_bytes")),
      lines_truncated(m.counter("files_lines_truncated_total", "Lines truncated to max_line_bytes")),
      lines_invalid(m.counter("files_lines_invalid_utf8_total", "Lines that are not valid UTF-8 (kept as bytes)")),
      rot_rename(m.counter("files_rotations_total", "File rotations seen", {{"kind", "rename"}})),
      rot_truncate(m.counter("files_rotations_total", "File rotations seen", {{"kind", "truncate"}})),
      rot_copy(m.counter("files_rotations_total", "File rotations seen", {{"kind", "copy"}})),
      rot_compressed(m.counter("files_rotations_total", "File rotations seen", {{"kind", "compressed"}})),
      gzip_errors(m.counter("files_gzip_errors_total", "Compressed rotated files that could not be read (corrupt, "
                                                       "truncated for good, unreadable)")),
      ckpt_writes(m.counter("files_checkpoint_writes_total", "Checkpoint files written")),
      ckpt_failures(m.counter("files_checkpoint_failures_total", "Checkpoint writes that failed")),
      publish_refused(m.counter("files_publish_refused_total", "Chunks the bus refused (kept and retried)")),
      rewinds(m.counter("files_rewinds_total", "Files read again from their acknowledged offset after a failed "
                                               "delivery")),
      lines_lost(m.counter("files_truncated_unread_bytes_total",
                           "Bytes of truncated files that were not read before the truncation and had no copy")),
      files_open(m.gauge("files_open", "Files held open by the file source")) {
  if (config.host.empty()) config.host = default_host();
  if (config.max_chunk_bytes < 1024) config.max_chunk_bytes = 1024;
}

FileTailer::FileTailer(FileTailerConfig config, ChunkPublisher& publisher, MetricsRegistry& metrics)
    : impl_(std::make_unique<Impl>(std::move(config), publisher, metrics)) {}

FileTailer::~FileTailer() {
  if (impl_->thread.joinable()) {
    impl_->quit = true;
    std::uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(impl_->wake_fd, &one, sizeof one);
    impl_->thread.join();
  }
  if (impl_->inotify_fd >= 0) ::close(impl_->inotify_fd);
  if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
}

void FileTailer::set_sources(std::vector<FileSourceConfig> sources) {
  {
    std::lock_guard lock(impl_->sources_mutex);
    impl_->pending_sources = std::move(sources);
  }
  if (impl_->wake_fd >= 0) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(impl_->wake_fd, &one, sizeof one);
  }
}

void FileTailer::start() {
  Impl& d = *impl_;
  if (d.started) return;
  d.store.open();
  d.inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (d.inotify_fd < 0) {
    spdlog::warn("file source: inotify unavailable ({}); files are found by rescans every {} ms only",
                 std::strerror(errno), d.config.rescan_interval.count());
  }
  d.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (d.wake_fd < 0) throw std::runtime_error(std::string("file source: eventfd failed: ") + std::strerror(errno));
  {
    std::lock_guard lock(d.mutex);
    d.load_checkpoints();
  }
  d.started = true;
  d.thread = std::thread([&d] {
    name_this_thread("file-tailer");
    d.run();
  });
}

void FileTailer::stop(std::chrono::steady_clock::time_point deadline) {
  Impl& d = *impl_;
  if (!d.thread.joinable()) return;
  d.stop_deadline = deadline;
  d.stopping = true;
  std::uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(d.wake_fd, &one, sizeof one);
  d.thread.join();
  std::lock_guard lock(d.mutex);
  for (auto& [key, f] : d.files) f->fd.reset();
  d.files_open.set(0);
}

void FileTailer::on_delivery(std::uint64_t cookie, bool delivered) {
  Impl& d = *impl_;
  {
    std::lock_guard lock(d.deliveries_mutex);
    d.deliveries.emplace_back(cookie, delivered);
  }
  std::uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(d.wake_fd, &one, sizeof one);
}

nlohmann::json FileTailer::status() const {
  const Impl& d = *impl_;
  std::lock_guard lock(d.mutex);
  nlohmann::json out = nlohmann::json::object();
  out["in_flight_bytes"] = d.in_flight_bytes;
  nlohmann::json sources = nlohmann::json::array();
  std::map<std::string, nlohmann::json> by_source;
  for (const auto& [name, s] : d.sources) {
    by_source[name] = {{"name", name}, {"topic", s->topic}, {"removed", s->removed}, {"files", nlohmann::json::array()}};
  }
  for (const auto& [key, f] : d.files) {
    auto& s = by_source[f->source];
    if (s.is_null()) s = {{"name", f->source}, {"removed", true}, {"files", nlohmann::json::array()}};
    std::uint64_t acked = f->acks.acked();
    s["files"].push_back({{"path", f->path},
                          {"current_path", f->current_path},
                          {"file_id", f->file_id},
                          {"state", f->fd ? (f->live ? "open" : "rotated") : (f->truncated ? "awaiting_copy" : "closed")},
                          {"read_offset", f->read_pos},
                          {"acked_offset", acked},
                          {"size", f->size},
                          {"lag_bytes", f->size > acked ? f->size - acked : 0}});
  }
  for (auto& [name, s] : by_source) sources.push_back(std::move(s));
  out["sources"] = std::move(sources);
  return out;
}

void FileTailer::Impl::run() {
  while (!quit) {
    bool more = false;
    int timeout_ms = 250;
    {
      std::unique_lock lock(mutex);
      auto now = Clock::now();
      apply_sources();
      drain_deliveries();
      handle_inotify();
      if (stopping) {
        bool idle = std::all_of(files.begin(), files.end(), [](const auto& kv) { return kv.second->acks.empty(); });
        if (idle || now >= stop_deadline) {
          save_checkpoints();
          return;
        }
        timeout_ms = 5;
      } else {
        // Open files are read before a scan: lines written just before a copytruncate must be read before the
        // truncation, and a burst of events (a copy being written) must not delay them.
        bool verify = now - last_scan >= config.rescan_interval;
        bool refused = false, pending = false;
        auto poll_all = [&](bool check) {
          for (auto& [key, f] : files) {
            if (!f->fd) continue;
            retry_refused(*f);
            more |= poll_file(*f, now, check);
            refused |= !f->refused.empty();
            pending |= f->cut.pending_event.has_value() || !f->live;
          }
        };
        poll_all(false);
        if (verify || (scan_requested && now - last_event_scan >= std::chrono::milliseconds(10))) {
          scan(now);
          finish_from_gzip(now);
          poll_all(verify);
        }
        housekeeping(now);
        if (now - last_checkpoint >= config.checkpoint_interval) save_checkpoints();
        update_metrics();
        if (refused || scan_requested) timeout_ms = 10;
        if (pending) timeout_ms = std::min(timeout_ms, 50);
        if (in_flight_bytes >= config.max_in_flight_bytes) more = false;
      }
    }
    if (more) continue;
    pollfd fds[2] = {{wake_fd, POLLIN, 0}, {inotify_fd, POLLIN, 0}};
    ::poll(fds, inotify_fd >= 0 ? 2 : 1, timeout_ms);
    std::uint64_t v;
    [[maybe_unused]] auto r = ::read(wake_fd, &v, sizeof v);
  }
}

void FileTailer::Impl::drain_deliveries() {
  {
    std::lock_guard lock(deliveries_mutex);
    deliveries_work.swap(deliveries);
  }
  for (auto [cookie, ok] : deliveries_work) {
    auto it = cookies.find(cookie);
    if (it == cookies.end()) continue;
    auto fit = files.find(it->second);
    cookies.erase(it);
    if (fit == files.end()) continue;
    TrackedFile& f = *fit->second;
    if (!f.acks.contains(cookie)) continue;  // from before a rewind: its lines are being read again
    if (ok) {
      in_flight_bytes -= f.acks.delivered(cookie);
      dirty = true;
    } else {
      rewind(f, "the bus could not deliver a chunk");
    }
  }
  deliveries_work.clear();
}

void FileTailer::Impl::rewind(TrackedFile& f, const char* why) {
  in_flight_bytes -= f.acks.clear();
  if (auto suppressed = log_limiter.allow(f.path)) {
    spdlog::warn("file source: {}; reading {} again from offset {} (was at {}); the store drops the duplicates by "
                 "line identity ({} more such rewinds of this file not logged)",
                 why, f.path, f.acks.acked(), f.read_pos, *suppressed);
  }
  f.read_pos = f.acks.acked();
  f.cut = CutterState{};
  f.refused.clear();
  f.at_eof = false;
  rewinds.inc();
}

bool FileTailer::Impl::publish_chunk(TrackedFile& f, std::span<const std::byte> bytes, std::uint64_t end) {
  SourceRt* src = source_of(f);
  const std::string& topic = src && !src->topic.empty() ? src->topic : config.default_topic;
  std::uint64_t cookie = next_cookie++;
  if (!publisher.publish(topic, f.publish_key, bytes, cookie)) {
    publish_refused.inc();
    return false;
  }
  cookies.emplace(cookie, f.key);
  f.acks.add(cookie, end, bytes.size());
  in_flight_bytes += bytes.size();
  return true;
}

void FileTailer::Impl::retry_refused(TrackedFile& f) {
  if (f.refused.empty()) return;
  if (publish_chunk(f, f.refused, f.refused_end)) f.refused.clear();
}

void FileTailer::Impl::apply_sources() {
  std::optional<std::vector<FileSourceConfig>> next;
  {
    std::lock_guard lock(sources_mutex);
    next.swap(pending_sources);
  }
  if (!next) return;
  for (auto& [name, s] : sources) s->removed = true;
  for (auto& c : *next) {
    auto existing = sources.find(c.name);
    if (existing != sources.end() && existing->second->config == c) {
      existing->second->removed = false;
      continue;
    }
    auto rt = std::make_unique<SourceRt>();
    rt->config = c;
    rt->cutter = std::make_unique<LineCutter>(c);
    rt->topic = c.topic;
    // start_at is for a source seen for the first time: once it has files (checkpoints), a file it has not
    // seen is new (created by a rotation while sluice was down) and read from its start.
    for (auto& [key, f] : files) rt->scanned |= f->source == c.name;
    if (existing != sources.end()) {
      update_metrics();  // the old cutter's counts go to the metrics before it is replaced
      existing->second = std::move(rt);
    } else {
      sources.emplace(c.name, std::move(rt));
    }
    spdlog::info("file source {}: tailing {} (excluding {} patterns), start_at {}", c.name,
                 fmt::join(c.include, ", "), c.exclude.size(), c.start_at == StartAt::end ? "end" : "beginning");
  }
  for (auto& [name, s] : sources) {
    if (s->removed) spdlog::info("file source {}: removed; its open files are read to their end, then closed", name);
  }
  scan_requested = true;
}

SourceRt* FileTailer::Impl::source_of(const TrackedFile& f) {
  auto it = sources.find(f.source);
  return it == sources.end() ? nullptr : it->second.get();
}

TrackedFile& FileTailer::Impl::new_file() {
  auto f = std::make_unique<TrackedFile>();
  f->key = next_key++;
  f->last_seen_ms = wall_ms();
  auto& ref = *f;
  files.emplace(ref.key, std::move(f));
  dirty = true;
  return ref;
}

void FileTailer::Impl::load_checkpoints() {
  auto now = Clock::now();
  for (auto& c : store.load()) {
    TrackedFile& f = new_file();
    f.source = c.source;
    f.path = c.path;
    f.publish_key = config.host + ":" + c.path;
    f.current_path = c.path;
    f.file_id = c.file_id;
    f.dev = c.dev;
    f.ino = c.ino;
    f.fp = c.fingerprint;
    f.read_pos = f.size = c.offset;
    f.acks.reset(c.offset);
    f.truncated = c.truncated;
    f.finished = c.finished;
    f.copy_deadline = now + config.copy_window;
    f.live = false;
    // forget_after counts from this start: while sluice was down, nothing could be seen.
    f.last_seen_ms = std::max(c.last_seen_ms, wall_ms());
  }
  spdlog::info("file source: {} checkpoints loaded from {}", files.size(), store.file());
}

void FileTailer::Impl::save_checkpoints() {
  last_checkpoint = Clock::now();
  if (!dirty) return;
  std::vector<Checkpoint> out;
  out.reserve(files.size());
  for (const auto& [key, f] : files) {
    if (f->file_id == 0) continue;
    out.push_back(Checkpoint{f->source, f->path, f->file_id, f->dev, f->ino, f->fp, f->acks.acked(), f->truncated,
                             f->last_seen_ms, f->finished});
  }
  if (store.save(out)) {
    ckpt_writes.inc();
    dirty = false;
  } else {
    ckpt_failures.inc();
  }
}

void FileTailer::Impl::housekeeping(Clock::time_point now) {
  const std::int64_t now_ms = wall_ms();
  std::size_t closed = 0;
  for (auto it = files.begin(); it != files.end();) {
    TrackedFile& f = *it->second;
    if (f.fd) {
      f.last_seen_ms = now_ms;
      SourceRt* src = source_of(f);
      // A file finished from its gzip copy cannot grow: no grace.
      auto grace = (!src || src->removed || f.from_gzip || f.unmatched) ? std::chrono::milliseconds(0)
                                                                           : config.rotated_grace;
      if (!f.live && f.at_eof && f.refused.empty() && now - f.idle_since >= grace) {
        read_file(f, LineCutter::Flush::all);  // the last line, even without its newline
        if (f.at_eof && f.refused.empty() && f.acks.empty()) {
          spdlog::info("file source: closing {} (found as {}): read to its end at offset {} and acknowledged",
                       f.current_path, f.path, f.read_pos);
          f.fd.reset();
          f.finished = true;
          f.from_gzip = false;
          dirty = true;
        }
      }
    } else if (f.truncated && now >= f.copy_deadline) {
      if (f.size > f.read_pos) {
        spdlog::warn("file source: {} was truncated before its last {} bytes were read, and no copy of it "
                     "appeared; they are lost. Rotate with `create` rather than `copytruncate`, or rotate less often",
                     f.path, f.size - f.read_pos);
        lines_lost.inc(f.size - f.read_pos);
      }
      f.truncated = false;
      dirty = true;
    }
    if (!f.fd) ++closed;
    bool forget = !f.fd && !f.truncated && f.acks.empty() &&
                  now_ms - f.last_seen_ms > config.forget_after.count();
    if (forget) {
      it = files.erase(it);
      dirty = true;
      --closed;
    } else {
      ++it;
    }
  }
  if (closed > config.max_checkpoints) {
    std::vector<std::pair<std::int64_t, std::uint64_t>> old;
    for (auto& [key, f] : files) {
      if (!f->fd && !f->truncated && f->acks.empty()) old.emplace_back(f->last_seen_ms, key);
    }
    std::sort(old.begin(), old.end());
    for (std::size_t i = 0; i + config.max_checkpoints < closed && i < old.size(); ++i) files.erase(old[i].second);
    dirty = true;
  }
}

void FileTailer::Impl::update_metrics() {
  std::size_t open = 0;
  for (auto& [key, f] : files) open += f->fd ? 1 : 0;
  files_open.set(static_cast<double>(open));
  for (auto& [name, s] : sources) {
    const CutCounts& c = s->cutter->counts();
    lines_read.inc(c.lines - s->reported.lines);
    lines_split.inc(c.split - s->reported.split);
    lines_truncated.inc(c.truncated - s->reported.truncated);
    lines_invalid.inc(c.invalid_utf8 - s->reported.invalid_utf8);
    s->reported = c;
  }
}

}  // namespace sluice::sources
