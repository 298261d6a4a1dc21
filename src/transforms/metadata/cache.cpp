#include "transforms/metadata/cache.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

namespace sluice::transforms::metadata {
namespace {

enum class Action { none, expire, remove, due, expire_and_due };

constexpr int kCacheFileVersion = 1;

std::string errno_text() { return std::strerror(errno); }

// Writes `content` to `path` so that a crash leaves either the old or the new file, never half of one.
std::string write_atomically(const std::string& path, const std::string& content) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot create " + tmp + ": " + errno_text();
  std::size_t done = 0;
  while (done < content.size()) {
    const auto n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const auto err = "cannot write " + tmp + ": " + errno_text();
      ::close(fd);
      return err;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const auto err = "cannot fsync " + tmp + ": " + errno_text();
    ::close(fd);
    return err;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return "cannot rename " + tmp + " to " + path + ": " + errno_text();
  const auto dir = target.has_parent_path() ? target.parent_path().string() : std::string(".");
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

}  // namespace

TimeMs now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

MetadataCache::MetadataCache(Options options, std::function<ExporterPolicy(const Ip6&)> resolve)
    : options_(options), resolve_(std::move(resolve)) {}

std::shared_ptr<const ExporterInfo> MetadataCache::exporter(const Ip6& address, Found& found) const {
  std::shared_lock lock(mutex_);
  const auto it = entries_.find(address);
  if (it == entries_.end()) {
    found = Found::unseen;
    return nullptr;
  }
  const Entry& e = it->second;
  e.exporter.touch();
  if (e.policy.static_entry && e.policy.static_entry->exporter) {
    found = Found::hit;
    return e.policy.static_entry->exporter;
  }
  found = e.exporter.value ? Found::hit : Found::miss;
  return e.exporter.value;
}

std::shared_ptr<const InterfaceInfo> MetadataCache::interface(const Ip6& address, std::uint32_t index,
                                                              Found& found) const {
  std::shared_lock lock(mutex_);
  const auto it = entries_.find(address);
  if (it == entries_.end()) {
    found = Found::unseen;
    return nullptr;
  }
  const Entry& e = it->second;
  if (const auto* s = e.policy.static_entry) {
    if (const auto si = s->interfaces.find(index); si != s->interfaces.end()) {
      found = Found::hit;
      return si->second;
    }
    if (s->default_interface) {
      found = Found::hit;
      return s->default_interface;
    }
  }
  const auto slot = e.interfaces.find(index);
  if (slot == e.interfaces.end()) {
    found = e.full ? Found::miss : Found::unseen;
    return nullptr;
  }
  slot->second.touch();
  found = slot->second.value ? Found::hit : Found::miss;
  return slot->second.value;
}

MetadataCache::Entry* MetadataCache::insert_entry(const Ip6& address, TimeMs /*now*/) {
  if (entries_.size() >= options_.max_exporters) {
    // Least recently refreshed goes: it is the one whose answers are the oldest anyway.
    auto victim = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.refreshed < victim->second.refreshed) victim = it;
    }
    if (victim != entries_.end()) {
      entries_.erase(victim);
      if (options_.evictions) options_.evictions->inc();
    }
  }
  auto [it, inserted] = entries_.try_emplace(address);
  if (inserted) it->second.policy = resolve_(address);
  return &it->second;
}

template <typename T>
bool MetadataCache::start_fetch(Slot<T>& slot, TimeMs now) {
  slot.attempted = now;
  slot.pending = true;
  slot.used.store(false, std::memory_order_relaxed);
  return true;
}

std::optional<FetchRequest> MetadataCache::admit_exporter(const Ip6& address, TimeMs now) {
  std::unique_lock lock(mutex_);
  if (entries_.count(address)) return std::nullopt;  // another thread got here first
  Entry* e = insert_entry(address, now);
  if (!e->policy.fetchable || (e->policy.static_entry && e->policy.static_entry->exporter)) {
    e->exporter.touch();
    return std::nullopt;
  }
  start_fetch(e->exporter, now);
  return FetchRequest{address, {}};
}

std::optional<FetchRequest> MetadataCache::admit_interface(const Ip6& address, std::uint32_t index, TimeMs now) {
  std::unique_lock lock(mutex_);
  auto it = entries_.find(address);
  Entry* e = it == entries_.end() ? insert_entry(address, now) : &it->second;
  if (const auto* s = e->policy.static_entry; s && (s->default_interface || s->interfaces.count(index))) {
    return std::nullopt;  // answered by configuration
  }
  if (e->interfaces.count(index)) return std::nullopt;
  if (e->interfaces.size() >= options_.max_interfaces) {
    e->full = true;
    return std::nullopt;
  }
  auto& slot = e->interfaces.try_emplace(index).first->second;
  if (!e->policy.fetchable) {
    slot.touch();
    return std::nullopt;
  }
  start_fetch(slot, now);
  start_fetch(e->exporter, now);  // the query carries sysName.0 too
  return FetchRequest{address, {index}};
}

void MetadataCache::store(const FetchResult& result, TimeMs now) {
  std::unique_lock lock(mutex_);
  const auto it = entries_.find(result.exporter);
  if (it == entries_.end()) return;  // evicted while the query was out
  Entry& e = it->second;
  e.exporter.value = result.exporter_info;
  e.exporter.fetched = now;
  e.exporter.pending = false;
  for (const auto& [index, info] : result.interfaces) {
    const auto slot = e.interfaces.find(index);
    if (slot == e.interfaces.end()) continue;
    slot->second.value = info;
    slot->second.fetched = now;
    slot->second.pending = false;
  }
  e.refreshed = now;
}

void MetadataCache::fetch_failed(const FetchRequest& request) {
  std::unique_lock lock(mutex_);
  const auto it = entries_.find(request.exporter);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  e.exporter.pending = false;
  for (const auto index : request.interfaces) {
    const auto slot = e.interfaces.find(index);
    if (slot != e.interfaces.end()) slot->second.pending = false;
  }
}

namespace {

// What maintenance does to one slot; evaluated again under the exclusive lock before acting.
template <typename EntryT>
bool static_name(const EntryT& e) {
  return e.policy.static_entry && e.policy.static_entry->exporter;
}

template <typename SlotT>
Action classify(const SlotT& slot, bool fetchable, TimeMs now, TimeMs ttl, TimeMs refresh, TimeMs retry_after) {
  if (slot.pending) return Action::none;
  const bool used = slot.used.load(std::memory_order_relaxed);
  const bool expired = slot.value && slot.fetched + ttl <= now;
  const TimeMs last = std::max(slot.fetched, slot.attempted);
  if (!used) {
    if (last + ttl <= now) return Action::remove;
    return expired ? Action::expire : Action::none;
  }
  if (!fetchable) return Action::none;
  const bool retry_ok = slot.attempted + retry_after <= now;
  const bool due = retry_ok && (slot.fetched == 0 || slot.fetched + refresh <= now);
  if (due) return expired ? Action::expire_and_due : Action::due;
  return expired ? Action::expire : Action::none;
}

}  // namespace

MaintenanceResult MetadataCache::maintain(TimeMs now) {
  const auto& o = options_;
  constexpr std::uint64_t kExporterSlot = 1ULL << 32;
  // Look under the shared lock first, so that the decode path is not held up by a full scan.
  std::vector<std::pair<Ip6, std::uint64_t>> candidates;
  {
    std::shared_lock lock(mutex_);
    for (const auto& [address, e] : entries_) {
      const bool fetchable = e.policy.fetchable;
      for (const auto& [index, slot] : e.interfaces) {
        if (classify(slot, fetchable, now, o.ttl, o.refresh, o.retry_after) != Action::none) {
          candidates.emplace_back(address, index);
        }
      }
      // After the interfaces: an exporter is forgotten only once its interfaces are.
      if (classify(e.exporter, fetchable && !static_name(e), now, o.ttl, o.refresh, o.retry_after) != Action::none) {
        candidates.emplace_back(address, kExporterSlot);
      }
    }
  }
  MaintenanceResult out;
  if (candidates.empty()) return out;
  std::unique_lock lock(mutex_);
  std::unordered_map<Ip6, std::vector<std::uint32_t>, Ip6Hash> due_interfaces;
  std::vector<Ip6> due_exporters;
  for (const auto& [address, key] : candidates) {
    const auto it = entries_.find(address);
    if (it == entries_.end()) continue;
    Entry& e = it->second;
    const bool fetchable = e.policy.fetchable;
    if (key == kExporterSlot) {
      const auto action = classify(e.exporter, fetchable && !static_name(e), now, o.ttl, o.refresh, o.retry_after);
      if (action == Action::remove) {
        if (e.interfaces.empty()) {
          entries_.erase(it);
          ++out.forgotten;
        }
        continue;
      }
      if (action == Action::expire || action == Action::expire_and_due) {
        e.exporter.value = nullptr;
        ++out.expired;
      }
      if (action == Action::due || action == Action::expire_and_due) due_exporters.push_back(address);
      continue;
    }
    const auto slot_it = e.interfaces.find(key);
    if (slot_it == e.interfaces.end()) continue;
    auto& slot = slot_it->second;
    const auto action = classify(slot, fetchable, now, o.ttl, o.refresh, o.retry_after);
    if (action == Action::remove) {
      e.interfaces.erase(slot_it);
      e.full = false;
      ++out.forgotten;
      continue;
    }
    if (action == Action::expire || action == Action::expire_and_due) {
      slot.value = nullptr;
      ++out.expired;
    }
    if (action == Action::due || action == Action::expire_and_due) {
      start_fetch(slot, now);
      due_interfaces[address].push_back(static_cast<std::uint32_t>(key));
    }
  }
  for (auto& [address, indexes] : due_interfaces) {
    start_fetch(entries_.at(address).exporter, now);
    std::sort(indexes.begin(), indexes.end());
    for (std::size_t i = 0; i < indexes.size(); i += o.interfaces_per_request) {
      const auto end = std::min(indexes.size(), i + o.interfaces_per_request);
      out.due.push_back(FetchRequest{address, {indexes.begin() + static_cast<std::ptrdiff_t>(i),
                                               indexes.begin() + static_cast<std::ptrdiff_t>(end)}});
    }
  }
  for (const auto& address : due_exporters) {
    if (due_interfaces.count(address)) continue;  // sysName rides along with the interfaces
    start_fetch(entries_.at(address).exporter, now);
    out.due.push_back(FetchRequest{address, {}});
  }
  return out;
}

std::string MetadataCache::save(const std::string& path) const {
  nlohmann::json doc;
  doc["version"] = kCacheFileVersion;
  auto& exporters = doc["exporters"] = nlohmann::json::array();
  {
    std::shared_lock lock(mutex_);
    for (const auto& [address, e] : entries_) {
      nlohmann::json ex;
      ex["address"] = ip6_to_string(address);
      ex["refreshed"] = e.refreshed;
      if (e.exporter.fetched > 0) {
        nlohmann::json s{{"fetched", e.exporter.fetched}};
        if (e.exporter.value) s["name"] = e.exporter.value->name;
        ex["exporter"] = std::move(s);
      }
      auto& ifs = ex["interfaces"] = nlohmann::json::array();
      for (const auto& [index, slot] : e.interfaces) {
        if (slot.fetched == 0) continue;
        nlohmann::json s{{"index", index}, {"fetched", slot.fetched}};
        if (slot.value) {
          s["name"] = slot.value->name;
          s["description"] = slot.value->description;
          s["speed"] = slot.value->speed;
        }
        ifs.push_back(std::move(s));
      }
      if (ex.contains("exporter") || !ifs.empty()) exporters.push_back(std::move(ex));
    }
  }
  return write_atomically(path, doc.dump(1));
}

std::size_t MetadataCache::load(const std::string& path, TimeMs now, std::string* error) {
  std::ifstream in(path);
  if (!in) return 0;  // first start: nothing saved yet
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
    if (doc.value("version", 0) != kCacheFileVersion) {
      if (error) *error = "unknown cache file version";
      return 0;
    }
  } catch (const std::exception& e) {
    if (error) *error = e.what();
    return 0;
  }
  std::size_t loaded = 0;
  std::unique_lock lock(mutex_);
  try {
    for (const auto& ex : doc.at("exporters")) {
      if (entries_.size() >= options_.max_exporters) break;
      const auto address = ip6_parse(ex.at("address").get<std::string>());
      if (!address) continue;
      auto [it, inserted] = entries_.try_emplace(*address);
      Entry& e = it->second;
      if (inserted) e.policy = resolve_(*address);
      e.refreshed = std::max(e.refreshed, ex.value("refreshed", TimeMs{0}));
      if (ex.contains("exporter")) {
        const auto& s = ex["exporter"];
        const TimeMs fetched = s.at("fetched").get<TimeMs>();
        if (fetched + options_.ttl > now && fetched > e.exporter.fetched) {
          e.exporter.fetched = fetched;
          e.exporter.attempted = fetched;
          e.exporter.value = s.contains("name") ? std::make_shared<const ExporterInfo>(ExporterInfo{s["name"].get<std::string>()}) : nullptr;
          ++loaded;
        }
      }
      for (const auto& s : ex.value("interfaces", nlohmann::json::array())) {
        const TimeMs fetched = s.at("fetched").get<TimeMs>();
        if (fetched + options_.ttl <= now) continue;
        if (e.interfaces.size() >= options_.max_interfaces) break;
        auto& slot = e.interfaces[s.at("index").get<std::uint32_t>()];
        slot.fetched = fetched;
        slot.attempted = fetched;
        if (s.contains("name")) {
          slot.value = std::make_shared<const InterfaceInfo>(
              InterfaceInfo{s["name"].get<std::string>(), s.value("description", std::string()),
                            s.value("speed", std::uint32_t{0})});
        }
        ++loaded;
      }
      if (e.interfaces.empty() && e.exporter.fetched == 0) entries_.erase(it);
    }
  } catch (const std::exception& e) {
    if (error) *error = e.what();
  }
  return loaded;
}

CacheSizes MetadataCache::sizes() const {
  std::shared_lock lock(mutex_);
  CacheSizes s;
  s.exporters = entries_.size();
  for (const auto& [address, e] : entries_) {
    s.interfaces += e.interfaces.size();
    s.values += e.exporter.value ? 1 : 0;
    for (const auto& [index, slot] : e.interfaces) s.values += slot.value ? 1 : 0;
  }
  return s;
}

}  // namespace sluice::transforms::metadata
