#include "sinks/spool_queue.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <stdexcept>
#include <system_error>

#include "core/thread_name.hpp"

namespace sluice::sinks {
namespace {

// A record on disk: payload length, item count, CRC-32 of the payload, then the payload (the
// group's ItemBatch bytes). Little-endian: the files never leave the machine that wrote them.
constexpr std::size_t kHeader = 12;
constexpr const char* kCursorFile = "cursor";

void put_u32(char* p, std::uint32_t v) { std::memcpy(p, &v, 4); }
std::uint32_t get_u32(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
std::uint32_t crc_of(std::string_view data) {
  return static_cast<std::uint32_t>(
      ::crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

std::string segment_name(std::uint64_t id) { return fmt::format("seg-{:020d}.spool", id); }

bool read_exact(int fd, char* out, std::size_t n, std::uint64_t offset) {
  while (n > 0) {
    const ssize_t got = ::pread(fd, out, n, static_cast<off_t>(offset));
    if (got <= 0) return false;
    out += got, n -= static_cast<std::size_t>(got), offset += static_cast<std::uint64_t>(got);
  }
  return true;
}

void write_all(int fd, const char* data, std::size_t n, const std::filesystem::path& path) {
  while (n > 0) {
    const ssize_t done = ::write(fd, data, n);
    if (done < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "writing " + path.string());
    }
    data += done, n -= static_cast<std::size_t>(done);
  }
}

}  // namespace

void ItemBatch::add(std::string_view item) {
  char len[4];
  put_u32(len, static_cast<std::uint32_t>(item.size()));
  data_.append(len, 4);
  data_.append(item);
  ++count_;
}

struct SpoolQueue::Group {
  std::string data;  // the ItemBatch bytes while in memory
  std::uint32_t count = 0;
  std::uint64_t bytes = 0;
  std::uint32_t sent = 0;        // items already delivered
  std::size_t read_pos = 0;      // byte position of the next unsent item in data
  bool in_memory = true;
  bool on_disk = false;
  bool spilling = false;
  bool in_flight = false;
  bool durable = false;
  bool popped = false;
  std::uint64_t segment = 0, offset = 0;  // the record, when on disk
  std::function<void()> on_durable;
  std::chrono::steady_clock::time_point queued;
};

SpoolQueue::SpoolQueue(std::string name, SpoolConfig config, SendFn send, MetricsRegistry& metrics)
    : name_(std::move(name)),
      config_(std::move(config)),
      send_(std::move(send)),
      metrics_(metrics),
      sent_items_(metrics.counter("spool_sent_items_total", "Items delivered to a destination", {{"dest", name_}})),
      send_failures_(metrics.counter("spool_send_failures_total", "Sends that failed and were retried", {{"dest", name_}})),
      spilled_bytes_(metrics.counter("spool_spilled_bytes_total", "Bytes written to a destination's disk spool", {{"dest", name_}})),
      corrupt_records_(metrics.counter("spool_corrupt_records_total",
                                       "Spool records found damaged on disk and skipped", {{"dest", name_}})) {
  if (config_.batch == 0) config_.batch = 1;
  const Labels labels{{"dest", name_}};
  metrics_.gauge_callback("spool_queued_items", "Items waiting for a destination (memory and disk)", labels,
                          [this] { return static_cast<double>(queued_items()); });
  metrics_.gauge_callback("spool_memory_bytes", "Bytes of a destination's queue held in memory", labels, [this] {
    std::lock_guard lock(mutex_);
    return static_cast<double>(memory_bytes_);
  });
  metrics_.gauge_callback("spool_disk_bytes", "Bytes of a destination's spool files on disk", labels,
                          [this] { return static_cast<double>(disk_bytes()); });
}

SpoolQueue::~SpoolQueue() {
  stop(std::chrono::steady_clock::now());
  for (const char* g : {"spool_queued_items", "spool_memory_bytes", "spool_disk_bytes"}) {
    metrics_.remove_callbacks(g, {{"dest", name_}});
  }
}

void SpoolQueue::start() {
  recover();
  std::lock_guard lock(mutex_);
  started_ = true;
  sender_thread_ = std::thread([this] {
    name_this_thread("spool-send");
    sender();
  });
  spiller_thread_ = std::thread([this] {
    name_this_thread("spool-spill");
    spiller();
  });
}

void SpoolQueue::recover() {
  std::error_code ec;
  std::filesystem::create_directories(config_.dir, ec);
  if (ec) {
    throw std::runtime_error(fmt::format("spool {}: cannot create {}: {}; check the data directory's permissions",
                                         name_, config_.dir.string(), ec.message()));
  }
  std::uint64_t cursor_segment = 0, cursor_offset = 0;
  if (std::FILE* f = std::fopen((config_.dir / kCursorFile).c_str(), "rb")) {
    std::uint64_t c[2];
    if (std::fread(c, sizeof c, 1, f) == 1) cursor_segment = c[0], cursor_offset = c[1];
    std::fclose(f);
  }
  cursor_segment_ = cursor_segment, cursor_offset_ = cursor_offset;
  std::vector<std::uint64_t> ids;
  for (const auto& entry : std::filesystem::directory_iterator(config_.dir)) {
    const auto file = entry.path().filename().string();
    std::uint64_t id = 0;
    if (std::sscanf(file.c_str(), "seg-%lu.spool", &id) == 1 && file == segment_name(id)) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  std::uint64_t recovered_items = 0;
  for (const auto id : ids) {
    const auto path = config_.dir / segment_name(id);
    if (id < cursor_segment) {
      std::filesystem::remove(path, ec);
      continue;
    }
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(fmt::format("spool {}: cannot read {}", name_, path.string()));
    struct stat st {};
    ::fstat(fd, &st);
    const auto size = static_cast<std::uint64_t>(st.st_size);
    std::uint64_t pos = id == cursor_segment ? cursor_offset : 0;
    std::string payload;
    while (pos + kHeader <= size) {
      char header[kHeader];
      if (!read_exact(fd, header, kHeader, pos)) break;
      const std::uint32_t len = get_u32(header), count = get_u32(header + 4), crc = get_u32(header + 8);
      if (pos + kHeader + len > size) break;
      payload.resize(len);
      if (!read_exact(fd, payload.data(), len, pos + kHeader) || crc_of(payload) != crc) break;
      auto g = std::make_shared<Group>();
      g->count = count;
      g->bytes = len;
      g->in_memory = false;
      g->on_disk = true;
      g->durable = true;
      g->segment = id;
      g->offset = pos;
      g->queued = std::chrono::steady_clock::now();
      groups_.push_back(std::move(g));
      queued_items_ += count;
      recovered_items += count;
      pos += kHeader + len;
    }
    if (pos < size) {
      corrupt_records_.inc();
      spdlog::error("spool {}: {} is damaged at byte {} of {}; the items after that point are lost (the disk or "
                    "the process failed while writing). Check the disk",
                    name_, path.string(), pos, size);
    }
    ::close(fd);
    segments_.emplace_back(id, size);
    disk_bytes_ += size;
    write_segment_ = id + 1;
  }
  if (write_segment_ == 0) write_segment_ = 1;
  if (recovered_items > 0) {
    spdlog::info("spool {}: {} items left on disk by the previous run will be sent first", name_, recovered_items);
  }
}

void SpoolQueue::push(ItemBatch items, std::function<void()> on_durable) {
  if (items.empty()) {
    if (on_durable) on_durable();
    return;
  }
  auto g = std::make_shared<Group>();
  g->count = items.count();
  g->data = std::move(items.data());
  g->bytes = g->data.size();
  g->on_durable = std::move(on_durable);
  g->queued = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  if (memory_bytes_ + g->bytes > config_.max_memory_bytes) spill_cv_.notify_one();
  space_cv_.wait(lock, [&] {
    return stopping_ || memory_bytes_ == 0 || memory_bytes_ + g->bytes <= config_.max_memory_bytes;
  });
  memory_bytes_ += g->bytes;
  queued_items_ += g->count;
  groups_.push_back(std::move(g));
  work_cv_.notify_one();
}

bool SpoolQueue::load_group(Group& g) {
  const auto path = config_.dir / segment_name(g.segment);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  std::string data(g.bytes, '\0');
  const bool ok = fd >= 0 && read_exact(fd, data.data(), data.size(), g.offset + kHeader);
  if (fd >= 0) ::close(fd);
  if (!ok) return false;
  // Items delivered before the group went to disk are skipped again.
  std::size_t pos = 0;
  for (std::uint32_t i = 0; i < g.sent && pos + 4 <= data.size(); ++i) pos += 4 + get_u32(data.data() + pos);
  std::lock_guard lock(mutex_);
  g.data = std::move(data);
  g.read_pos = pos;
  g.in_memory = true;
  memory_bytes_ += g.bytes;
  return true;
}

void SpoolQueue::sender() {
  auto backoff = config_.retry_initial;
  std::mt19937_64 rng(std::random_device{}());
  std::vector<GroupPtr> taking;
  std::vector<std::string_view> items;
  std::vector<std::size_t> took;  // items taken from each group
  for (;;) {
    GroupPtr head;
    {
      std::unique_lock lock(mutex_);
      work_cv_.wait(lock, [&] { return stopping_ || !groups_.empty(); });
      if (stopping_) return;
      head = groups_.front();
      head->in_flight = true;
    }
    if (!head->in_memory && !load_group(*head)) {
      corrupt_records_.inc();
      spdlog::error("spool {}: cannot read back {} items from {}; they are lost. Check the disk", name_,
                    head->count - head->sent, (config_.dir / segment_name(head->segment)).string());
      std::lock_guard lock(mutex_);
      groups_.pop_front();
      head->popped = true;
      queued_items_ -= head->count - head->sent;
      continue;
    }
    taking.clear(), items.clear(), took.clear();
    {
      std::lock_guard lock(mutex_);
      // The head, then whatever follows it in memory, up to one batch.
      for (const auto& g : groups_) {
        if (items.size() >= config_.batch || !g->in_memory) break;
        g->in_flight = true;
        std::size_t pos = g->read_pos, n = 0;
        for (std::uint32_t i = g->sent; i < g->count && items.size() < config_.batch; ++i, ++n) {
          const std::uint32_t len = get_u32(g->data.data() + pos);
          items.emplace_back(g->data.data() + pos + 4, len);
          pos += 4 + len;
        }
        taking.push_back(g);
        took.push_back(n);
      }
    }
    const std::string error = send_(items);
    std::vector<std::function<void()>> done;
    std::optional<std::pair<std::uint64_t, std::uint64_t>> cursor;
    {
      std::lock_guard lock(mutex_);
      for (std::size_t k = 0; k < taking.size(); ++k) {
        Group& g = *taking[k];
        g.in_flight = false;
        if (!error.empty()) continue;
        for (std::size_t i = 0; i < took[k]; ++i) g.read_pos += 4 + get_u32(g.data.data() + g.read_pos);
        g.sent += static_cast<std::uint32_t>(took[k]);
        queued_items_ -= took[k];
        if (g.sent < g.count) continue;
        // Fully delivered: it is the front (groups are sent in order).
        groups_.pop_front();
        g.popped = true;
        if (g.on_disk) cursor = {g.segment, g.offset + kHeader + g.bytes};
        if (!g.durable) {
          g.durable = true;
          if (g.on_durable) done.push_back(std::move(g.on_durable));
        }
        if (g.in_memory) {
          memory_bytes_ -= g.bytes;
          g.in_memory = false;
          if (!g.spilling) std::string().swap(g.data);
        }
      }
      failing_ = !error.empty();
      if (!error.empty()) {
        last_error_ = error;
        last_error_time_ = std::chrono::system_clock::now();
      }
    }
    if (error.empty()) {
      sent_items_.inc(items.size());
      backoff = config_.retry_initial;
      if (cursor) write_cursor(cursor->first, cursor->second);
      space_cv_.notify_all();
      for (auto& f : done) f();
      continue;
    }
    space_cv_.notify_all();  // a stop() waiting for the queue to drain need not wait any more
    send_failures_.inc();
    spdlog::warn("spool {}: sending {} items failed: {}; retrying in {} ms (unsent data goes to disk after {} ms)",
                 name_, items.size(), error, backoff.count(), config_.spill_after.count());
    std::uniform_int_distribution<long> jitter(0, backoff.count() / 4);
    if (!sleep_unless_stopping(backoff + std::chrono::milliseconds(jitter(rng)))) return;
    backoff = std::min(backoff * 2, config_.retry_max);
  }
}

void SpoolQueue::spiller() {
  std::vector<GroupPtr> selected;
  for (;;) {
    selected.clear();
    {
      std::unique_lock lock(mutex_);
      spill_cv_.wait_for(lock, std::chrono::milliseconds(100),
                         [&] { return stopping_ || memory_bytes_ > config_.max_memory_bytes; });
      if (stopping_) return;
      // Everything written to the current segment is delivered: start a new one, drop this one.
      if (write_fd_ >= 0 && cursor_segment_ == write_segment_ && cursor_offset_ >= write_offset_) {
        ::close(write_fd_);
        write_fd_ = -1;
        std::error_code ec;
        std::filesystem::remove(config_.dir / segment_name(write_segment_), ec);
        if (!segments_.empty() && segments_.back().first == write_segment_) {
          disk_bytes_ -= segments_.back().second;
          segments_.pop_back();
        }
        ++write_segment_;
      }
      const auto now = std::chrono::steady_clock::now();
      std::uint64_t memory = memory_bytes_, disk = disk_bytes_;
      for (const auto& g : groups_) {
        if (g->on_disk || g->spilling || !g->in_memory) continue;
        const bool old = now - g->queued >= config_.spill_after;
        if (!old && memory <= config_.max_memory_bytes / 2) break;  // the rest is younger still
        if (disk + g->bytes + kHeader > config_.max_disk_bytes) break;
        g->spilling = true;
        memory -= std::min(memory, g->bytes);
        disk += g->bytes + kHeader;
        selected.push_back(g);
      }
    }
    if (!selected.empty()) {
      try {
        spill(selected);
      } catch (const std::exception& e) {
        std::lock_guard lock(mutex_);
        for (auto& g : selected) g->spilling = false;
        last_error_ = e.what();
        spdlog::error("spool {}: cannot write to disk ({}); data waits in memory and the bus is not acknowledged "
                      "meanwhile. Free disk space in {}",
                      name_, e.what(), config_.dir.string());
      }
    }
  }
}

void SpoolQueue::spill(std::vector<GroupPtr>& groups) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> positions;
  std::uint64_t written = 0;
  for (const auto& g : groups) {
    const std::uint64_t record = kHeader + g->bytes;
    if (write_fd_ >= 0 && write_offset_ > 0 && write_offset_ + record > config_.segment_bytes) {
      ::close(write_fd_);
      write_fd_ = -1;
      std::lock_guard lock(mutex_);
      ++write_segment_;
    }
    const auto path = config_.dir / segment_name(write_segment_);
    if (write_fd_ < 0) {
      write_fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (write_fd_ < 0) throw std::system_error(errno, std::generic_category(), "creating " + path.string());
      write_offset_ = 0;
      std::lock_guard lock(mutex_);
      segments_.emplace_back(write_segment_, 0);
    }
    char header[kHeader];
    put_u32(header, static_cast<std::uint32_t>(g->bytes));
    put_u32(header + 4, g->count);
    put_u32(header + 8, crc_of(g->data));
    write_all(write_fd_, header, kHeader, path);
    write_all(write_fd_, g->data.data(), g->data.size(), path);
    positions.emplace_back(write_segment_, write_offset_);
    write_offset_ += record;
    written += record;
    std::lock_guard lock(mutex_);
    segments_.back().second = write_offset_;
    disk_bytes_ += record;
  }
  if (::fdatasync(write_fd_) != 0) throw std::system_error(errno, std::generic_category(), "syncing the spool");
  spilled_bytes_.inc(written);
  std::vector<std::function<void()>> done;
  std::optional<std::pair<std::uint64_t, std::uint64_t>> cursor;
  {
    std::lock_guard lock(mutex_);
    bool delivered_prefix = true;
    for (std::size_t i = 0; i < groups.size(); ++i) {
      Group& g = *groups[i];
      // Delivered while being written (groups are delivered in order): its record is consumed already.
      delivered_prefix = delivered_prefix && g.popped;
      if (delivered_prefix) cursor = {positions[i].first, positions[i].second + kHeader + g.bytes};
      g.spilling = false;
      g.on_disk = true;
      g.segment = positions[i].first;
      g.offset = positions[i].second;
      if (!g.durable) {
        g.durable = true;
        if (g.on_durable) done.push_back(std::move(g.on_durable));
      }
      if (g.popped) {
        std::string().swap(g.data);
      } else if (g.in_memory && !g.in_flight) {
        std::string().swap(g.data);
        g.in_memory = false;
        memory_bytes_ -= g.bytes;
      }
    }
  }
  if (cursor) write_cursor(cursor->first, cursor->second);
  space_cv_.notify_all();
  for (auto& f : done) f();
}

void SpoolQueue::write_cursor(std::uint64_t segment, std::uint64_t offset) {
  // Not synced: after a crash the queue may send again what it had sent since the last sync, never less.
  const std::uint64_t c[2] = {segment, offset};
  const auto path = config_.dir / kCursorFile;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  [[maybe_unused]] const auto n = ::pwrite(fd, c, sizeof c, 0);
  ::close(fd);
  std::lock_guard lock(mutex_);
  cursor_segment_ = segment, cursor_offset_ = offset;
  while (!segments_.empty()) {
    const auto [id, size] = segments_.front();
    const bool consumed = id < segment || (id == segment && offset >= size && id != write_segment_);
    if (!consumed) break;
    std::error_code ec;
    std::filesystem::remove(config_.dir / segment_name(id), ec);
    disk_bytes_ -= size;
    segments_.pop_front();
  }
}

bool SpoolQueue::sleep_unless_stopping(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  return !work_cv_.wait_for(lock, d, [&] { return stopping_; });
}

void SpoolQueue::stop(std::chrono::steady_clock::time_point deadline) {
  {
    std::unique_lock lock(mutex_);
    if (!started_) return;
    // A destination that is down is not waited for: its queue goes to disk at once.
    space_cv_.wait_until(lock, deadline, [&] { return groups_.empty() || failing_; });
    stopping_ = true;
    started_ = false;
  }
  work_cv_.notify_all();
  spill_cv_.notify_all();
  space_cv_.notify_all();
  if (sender_thread_.joinable()) sender_thread_.join();
  if (spiller_thread_.joinable()) spiller_thread_.join();
  // What is still only in memory goes to disk, so the next start sends it.
  std::vector<GroupPtr> rest;
  std::uint64_t disk = disk_bytes_, left_items = 0;
  for (const auto& g : groups_) {
    if (g->on_disk) continue;
    if (disk + kHeader + g->bytes > config_.max_disk_bytes) {
      left_items += g->count - g->sent;
      continue;
    }
    disk += kHeader + g->bytes;
    rest.push_back(g);
  }
  if (!rest.empty()) {
    try {
      spill(rest);
    } catch (const std::exception& e) {
      spdlog::error("spool {}: cannot write the queue to disk at shutdown ({}); it is not acknowledged on the bus "
                    "and will be read again from there",
                    name_, e.what());
    }
  }
  if (left_items > 0) {
    spdlog::warn("spool {}: {} items did not fit on disk at shutdown; they are not acknowledged on the bus and will "
                 "be read again from there",
                 name_, left_items);
  }
  if (write_fd_ >= 0) {
    ::close(write_fd_);
    write_fd_ = -1;
  }
}

std::uint64_t SpoolQueue::queued_items() const {
  std::lock_guard lock(mutex_);
  return queued_items_;
}

std::uint64_t SpoolQueue::disk_bytes() const {
  std::lock_guard lock(mutex_);
  return disk_bytes_;
}

nlohmann::json SpoolQueue::status() const {
  std::lock_guard lock(mutex_);
  nlohmann::json j{{"name", name_},
                   {"queued_items", queued_items_},
                   {"memory_bytes", memory_bytes_},
                   {"spooled_bytes", disk_bytes_},
                   {"sent_items", sent_items_.value()},
                   {"send_failures", send_failures_.value()}};
  if (!last_error_.empty()) {
    j["last_error"] = last_error_;
    j["last_error_time"] = std::chrono::duration_cast<std::chrono::seconds>(last_error_time_.time_since_epoch()).count();
  }
  return j;
}

}  // namespace sluice::sinks
