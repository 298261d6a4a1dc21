// TemplateCache: NetFlow v9 / IPFIX templates, learned sampling rates and data waiting for its
// template, per exporter and observation domain; shared by all partitions of an outlet.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "core/envelope.hpp"
#include "core/metrics.hpp"
#include "decoders/flow_fields.hpp"

namespace sluice {

namespace template_cache_detail {
struct Record;
}

struct TemplateCacheLimits {
  std::size_t max_templates = 65536;
  std::size_t max_templates_per_exporter = 2048;
  std::size_t max_samplers_per_exporter = 1024;
  // Data sets whose template has not arrived yet: held per exporter at most this many, this many
  // bytes, this long (by reception time); beyond that the oldest go and count as template_unknown.
  std::size_t pending_sets_per_exporter = 256;
  std::size_t pending_bytes_per_exporter = 1 << 20;
  std::size_t pending_bytes_total = 16 << 20;
  std::uint64_t pending_max_age_ns = 10'000'000'000ULL;
};

// A data set held until its template arrives.
struct PendingSet {
  ExportContext ctx;
  std::uint16_t template_id = 0;
  std::vector<std::uint8_t> body;  // the set without its 4-byte header
};

class TemplateCache {
 public:
  using TemplatePtr = std::shared_ptr<const FlowTemplate>;
  static constexpr const char* kFileName = "flow-templates.bin";

  explicit TemplateCache(MetricsRegistry& metrics, TemplateCacheLimits limits = {});
  ~TemplateCache();
  TemplateCache(const TemplateCache&) = delete;
  TemplateCache& operator=(const TemplateCache&) = delete;

  // Stores (or redefines) a template. Returns the held data sets it makes decodable, oldest first:
  // the caller decodes them. `tpl` must be finalized.
  std::vector<PendingSet> add_template(const Ip6& exporter, std::uint16_t version, std::uint32_t domain,
                                       std::uint16_t id, FlowTemplate tpl, std::uint64_t now_ns);
  void withdraw(const Ip6& exporter, std::uint16_t version, std::uint32_t domain, std::uint16_t id);
  // IPFIX "withdraw all (options) templates" of a domain.
  void withdraw_all(const Ip6& exporter, std::uint16_t version, std::uint32_t domain, bool options);
  TemplatePtr find(const Ip6& exporter, std::uint16_t version, std::uint32_t domain, std::uint16_t id) const;

  // Keeps a copy of a data set whose template is unknown; false when it cannot be held (too big or
  // holding disabled) — the caller reports template_unknown.
  bool hold(const ExportContext& ctx, std::uint16_t template_id, std::span<const std::uint8_t> body);
  // Drops held sets older than the limit (counted as template_unknown); returns how many went.
  std::size_t expire(std::uint64_t now_ns);

  // Sampling rates from options data: keyed by sampler/selector id when the record had one, else
  // for the whole domain (and the exporter).
  void learn_sampling(const Ip6& exporter, std::uint16_t version, std::uint32_t domain,
                      std::optional<std::uint64_t> sampler, std::uint64_t rate);
  // The sampler's rate, else the domain's, else the exporter's; 0 when nothing was learned.
  std::uint64_t sampling_rate(const Ip6& exporter, std::uint16_t version, std::uint32_t domain,
                              std::optional<std::uint64_t> sampler) const;
  // IPFIX systemInitTimeMilliseconds (160) from options data, to place flowStart/EndSysUpTime.
  void learn_init_time(const Ip6& exporter, std::uint16_t version, std::uint32_t domain, std::uint64_t ms);
  std::uint64_t init_time_ms(const Ip6& exporter, std::uint16_t version, std::uint32_t domain) const;

  // Templates, sampling rates and init times (not held data) as bytes, and back. restore() replaces
  // nothing on a malformed input and returns false.
  std::string serialize() const;
  bool restore(std::string_view bytes);

  // The same state as one entry per template, sampler rate, exporter rate and init time, for a
  // compacted Kafka topic. The key names the entry in text ("template/192.0.2.1/9/0/256",
  // "sampler/<exporter>/<version>/<domain>/<id or *>", "rate/<exporter>", "init/<exporter>/<version>/<domain>");
  // the value is the entry in the serialize() record format behind a format byte.
  struct EntryBytes {
    std::string key;
    std::string value;
  };
  std::vector<EntryBytes> entries() const;
  enum class EntryResult { applied, malformed };
  // Stores one entry from entries(), or forgets it when `value` is empty (a tombstone). A value whose
  // key does not match `key`, or any malformed key or value, changes nothing.
  EntryResult restore_entry(std::string_view key, std::string_view value);

  // Bumped whenever what serialize() would write changes (a template learned, redefined, withdrawn or
  // evicted; a sampling rate or init time learned or changed); refreshes of known state leave it alone.
  // Savers compare it to decide whether anything needs writing.
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  // Writes serialize() to dir/kFileName atomically (temp file + rename); throws on I/O errors.
  void save(const std::filesystem::path& dir) const;
  // Loads dir/kFileName if present; false when absent or unreadable (logged).
  bool load(const std::filesystem::path& dir);

  std::size_t template_count() const;
  std::size_t pending_sets() const;

 private:
  struct Entry {
    TemplatePtr tpl;
    std::uint64_t seq = 0;  // insertion/refresh order, for evicting the stalest
  };
  using SamplerKey = std::tuple<std::uint16_t, std::uint32_t, bool, std::uint64_t>;
  struct ExporterState {
    std::unordered_map<std::uint64_t, Entry> templates;  // key: template_key()
    std::map<SamplerKey, std::uint64_t> samplers;
    std::uint64_t exporter_rate = 0;
    std::map<std::pair<std::uint16_t, std::uint32_t>, std::uint64_t> init_times;
    std::deque<PendingSet> pending;
    std::size_t pending_bytes = 0;
  };
  struct Ip6Hash {
    std::size_t operator()(const Ip6& a) const;
  };

  static std::uint64_t template_key(std::uint16_t version, std::uint32_t domain, std::uint16_t id) {
    return (std::uint64_t{version} << 48) | (std::uint64_t{domain} << 16) | id;
  }
  void evict_one_locked(ExporterState& preferred);
  void drop_pending_front_locked(ExporterState& st);
  std::size_t expire_exporter_locked(ExporterState& st, std::uint64_t now_ns);
  std::size_t expire_locked(std::uint64_t now_ns);
  void insert_template_locked(const Ip6& exporter, std::uint64_t key, TemplatePtr tpl);
  void apply_locked(const template_cache_detail::Record& rec);
  void erase_locked(const template_cache_detail::Record& rec);
  void changed_locked() { generation_.fetch_add(1, std::memory_order_acq_rel); }

  TemplateCacheLimits limits_;
  MetricsRegistry& metrics_;
  Counter& evicted_;
  Counter& withdrawn_;
  Counter& redefined_;
  Counter& held_;
  Counter& held_decoded_;
  Counter& unknown_dropped_;
  mutable std::shared_mutex mutex_;
  std::unordered_map<Ip6, ExporterState, Ip6Hash> exporters_;
  std::size_t total_templates_ = 0;
  std::size_t total_pending_bytes_ = 0;
  std::size_t total_pending_sets_ = 0;
  std::uint64_t seq_ = 0;
  std::uint64_t last_sweep_ns_ = 0;
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace sluice
