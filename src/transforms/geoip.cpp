#include "transforms/geoip.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "core/metrics.hpp"
#include "core/thread_name.hpp"

namespace sluice::transforms {

struct MmdbFile::Handle {
  MMDB_s db{};
};

MmdbFile::MmdbFile(std::unique_ptr<Handle> h) : handle_(std::move(h)) {}

MmdbFile::~MmdbFile() { MMDB_close(&handle_->db); }

std::unique_ptr<MmdbFile> MmdbFile::open(const std::string& path, std::string* error) {
  auto h = std::make_unique<Handle>();
  const int status = MMDB_open(path.c_str(), MMDB_MODE_MMAP, &h->db);
  if (status != MMDB_SUCCESS) {
    if (error) {
      *error = (status == MMDB_IO_ERROR || status == MMDB_FILE_OPEN_ERROR) ? fmt::format("{} ({})", MMDB_strerror(status), std::strerror(errno))
                                       : std::string(MMDB_strerror(status));
    }
    return nullptr;
  }
  return std::unique_ptr<MmdbFile>(new MmdbFile(std::move(h)));
}

namespace {

// IPv4-mapped addresses are looked up as IPv4, which is where MMDB files keep IPv4 data.
bool lookup(const MMDB_s& db, const Ip6& a, MMDB_lookup_result_s& result) {
  int mmdb_error = MMDB_SUCCESS;
  if (ip6_is_v4_mapped(a)) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    std::memcpy(&sin.sin_addr, a.data() + 12, 4);
    result = MMDB_lookup_sockaddr(&db, reinterpret_cast<const sockaddr*>(&sin), &mmdb_error);
  } else {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    std::memcpy(&sin6.sin6_addr, a.data(), 16);
    result = MMDB_lookup_sockaddr(&db, reinterpret_cast<const sockaddr*>(&sin6), &mmdb_error);
  }
  return mmdb_error == MMDB_SUCCESS && result.found_entry;
}

}  // namespace

std::uint32_t MmdbFile::asn(const Ip6& a) const {
  MMDB_lookup_result_s result{};
  if (!lookup(handle_->db, a, result)) return 0;
  MMDB_entry_data_s data{};
  if (MMDB_get_value(&result.entry, &data, "autonomous_system_number", nullptr) != MMDB_SUCCESS || !data.has_data) return 0;
  switch (data.type) {
    case MMDB_DATA_TYPE_UINT16: return data.uint16;
    case MMDB_DATA_TYPE_UINT32: return data.uint32;
    case MMDB_DATA_TYPE_INT32: return data.int32 > 0 ? static_cast<std::uint32_t>(data.int32) : 0;
    case MMDB_DATA_TYPE_UINT64: return data.uint64 <= 0xffffffffu ? static_cast<std::uint32_t>(data.uint64) : 0;
    default: return 0;
  }
}

bool MmdbFile::country(const Ip6& a, char out[2]) const {
  MMDB_lookup_result_s result{};
  if (!lookup(handle_->db, a, result)) return false;
  MMDB_entry_data_s data{};
  if (MMDB_get_value(&result.entry, &data, "country", "iso_code", nullptr) != MMDB_SUCCESS || !data.has_data ||
      data.type != MMDB_DATA_TYPE_UTF8_STRING || data.data_size != 2) {
    return false;
  }
  out[0] = data.utf8_string[0];
  out[1] = data.utf8_string[1];
  return true;
}

GeoIp::GeoIp(GeoIpConfig config, MetricsRegistry& metrics) : config_(std::move(config)) {
  asn_file_.path = config_.asn_database;
  asn_file_.label = "asn";
  country_file_.path = config_.country_database;
  country_file_.label = "country";
  auto snap = std::make_shared<GeoSnapshot>();
  for (auto* f : {&asn_file_, &country_file_}) {
    f->reloads = &metrics.counter("enrich_geoip_reloads_total", "GeoIP databases reopened after their file changed",
                                  {{"database", f->label}});
    f->failures = &metrics.counter("enrich_geoip_reload_errors_total",
                                   "GeoIP database files that changed but failed to open (the previous one stays in use)",
                                   {{"database", f->label}});
    if (f->path.empty()) continue;
    struct stat st {};
    if (::stat(f->path.c_str(), &st) == 0) {
      f->dev = st.st_dev;
      f->ino = st.st_ino;
      f->size = st.st_size;
      f->mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    }
    std::string error;
    auto db = MmdbFile::open(f->path, &error);
    if (!db) {
      throw std::runtime_error(fmt::format("outlet.flows.enrich.geoip.{}_database: cannot open '{}' as an MMDB "
                                           "database: {}; fix the path or remove the key",
                                           f->label, f->path, error));
    }
    (f == &asn_file_ ? snap->asn : snap->country) = std::move(db);
  }
  snapshot_ = std::move(snap);
  if (config_.check_interval.count() > 0 && (!asn_file_.path.empty() || !country_file_.path.empty())) {
    thread_ = std::thread([this] {
      name_this_thread("geoip-reload");
      run();
    });
  }
}

GeoIp::~GeoIp() {
  {
    std::lock_guard lock(stop_mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<const GeoSnapshot> GeoIp::snapshot() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

std::shared_ptr<const MmdbFile> GeoIp::reload_if_changed(FileState& f) {
  struct stat st {};
  if (::stat(f.path.c_str(), &st) != 0) {
    // A missing file at start is reported by the caller; later, the old database stays in use.
    if (!f.failed_signature) {
      f.failed_signature = true;
      f.failures->inc();
      spdlog::error("geoip: the {} database {} disappeared ({}); still using the copy loaded before. Put the file "
                    "back (replace it by renaming a complete file over it)",
                    f.label, f.path, std::strerror(errno));
    }
    return nullptr;
  }
  const std::int64_t mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  const bool same = st.st_dev == f.dev && st.st_ino == f.ino && st.st_size == f.size && mtime_ns == f.mtime_ns;
  if (same) return nullptr;
  f.dev = st.st_dev;
  f.ino = st.st_ino;
  f.size = st.st_size;
  f.mtime_ns = mtime_ns;
  std::string error;
  auto db = MmdbFile::open(f.path, &error);
  if (!db) {
    f.failed_signature = true;
    f.failures->inc();
    spdlog::error("geoip: the {} database {} changed but cannot be opened ({}); still using the copy loaded "
                  "before. Replace it with a complete MMDB file (write it elsewhere, then rename it over)",
                  f.label, f.path, error);
    return nullptr;
  }
  f.failed_signature = false;
  f.reloads->inc();
  spdlog::info("geoip: reloaded the {} database {}", f.label, f.path);
  return db;
}

bool GeoIp::check_now() {
  std::lock_guard check(check_mutex_);
  std::shared_ptr<const MmdbFile> asn, country;
  if (!asn_file_.path.empty()) asn = reload_if_changed(asn_file_);
  if (!country_file_.path.empty()) country = reload_if_changed(country_file_);
  if (!asn && !country) return false;
  auto next = std::make_shared<GeoSnapshot>(*snapshot());
  if (asn) next->asn = std::move(asn);
  if (country) next->country = std::move(country);
  {
    std::lock_guard lock(mutex_);
    snapshot_ = std::move(next);
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return true;
}

void GeoIp::run() {
  std::unique_lock lock(stop_mutex_);
  while (!stop_cv_.wait_for(lock, config_.check_interval, [this] { return stopping_; })) {
    lock.unlock();
    check_now();
    lock.lock();
  }
}

}  // namespace sluice::transforms
