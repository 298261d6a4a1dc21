#include "decoders/template_cache.hpp"

#include <spdlog/spdlog.h>

#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "core/bytes.hpp"

namespace sluice {
namespace {

constexpr char kMagic[4] = {'S', 'L', 'T', 'C'};
constexpr std::uint8_t kFormatVersion = 1;
constexpr std::uint8_t kRecTemplate = 1, kRecSampler = 2, kRecExporterRate = 3, kRecInitTime = 4;

class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(std::uint16_t v) {
    std::uint8_t b[2];
    store_be16(b, v);
    out_.append(reinterpret_cast<const char*>(b), 2);
  }
  void u32(std::uint32_t v) {
    std::uint8_t b[4];
    store_be32(b, v);
    out_.append(reinterpret_cast<const char*>(b), 4);
  }
  void u64(std::uint64_t v) {
    std::uint8_t b[8];
    store_be64(b, v);
    out_.append(reinterpret_cast<const char*>(b), 8);
  }
  void ip(const Ip6& a) { out_.append(reinterpret_cast<const char*>(a.data()), a.size()); }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : p_(reinterpret_cast<const std::uint8_t*>(in.data())), left_(in.size()) {}
  bool u8(std::uint8_t& v) { return take(1) && (v = p_[-1], true); }
  bool u16(std::uint16_t& v) { return take(2) && (v = load_be16(p_ - 2), true); }
  bool u32(std::uint32_t& v) { return take(4) && (v = load_be32(p_ - 4), true); }
  bool u64(std::uint64_t& v) { return take(8) && (v = load_be64(p_ - 8), true); }
  bool ip(Ip6& a) { return take(16) && (std::memcpy(a.data(), p_ - 16, 16), true); }
  bool done() const { return left_ == 0; }

 private:
  bool take(std::size_t n) {
    if (left_ < n) return false;
    p_ += n;
    left_ -= n;
    return true;
  }
  const std::uint8_t* p_;
  std::size_t left_;
};

}  // namespace

std::size_t TemplateCache::Ip6Hash::operator()(const Ip6& a) const {
  std::uint64_t hi, lo;
  std::memcpy(&hi, a.data(), 8);
  std::memcpy(&lo, a.data() + 8, 8);
  return std::hash<std::uint64_t>{}(hi * 0x9e3779b97f4a7c15ULL ^ lo);
}

TemplateCache::TemplateCache(MetricsRegistry& metrics, TemplateCacheLimits limits)
    : limits_(limits),
      metrics_(metrics),
      evicted_(metrics.counter("flow_templates_evicted_total",
                               "NetFlow v9/IPFIX templates dropped because the template cache was full")),
      withdrawn_(metrics.counter("flow_templates_withdrawn_total", "IPFIX templates withdrawn by their exporter")),
      redefined_(metrics.counter("flow_templates_redefined_total",
                                 "NetFlow v9/IPFIX templates replaced by a different definition under the same id")),
      held_(metrics.counter("flow_template_pending_sets_total",
                            "Data sets held because their template had not arrived yet")),
      held_decoded_(metrics.counter("flow_template_pending_decoded_total",
                                    "Held data sets decoded once their template arrived")),
      unknown_dropped_(metrics.counter("decode_errors_total", "Messages rejected by decoders, by kind and reason",
                                       {{"kind", "netflow"}, {"reason", "template_unknown"}})) {
  metrics_.gauge_callback("flow_templates", "NetFlow v9/IPFIX templates cached", {},
                          [this] { return static_cast<double>(template_count()); });
  metrics_.gauge_callback("flow_template_pending_sets", "Data sets waiting for their template", {},
                          [this] { return static_cast<double>(pending_sets()); });
}

TemplateCache::~TemplateCache() {
  metrics_.remove_callbacks("flow_templates", {});
  metrics_.remove_callbacks("flow_template_pending_sets", {});
}

void TemplateCache::evict_one_locked(ExporterState& preferred) {
  ExporterState* victim = &preferred;
  if (victim->templates.empty()) {
    for (auto& [addr, st] : exporters_) {
      if (st.templates.size() > victim->templates.size()) victim = &st;
    }
    if (victim->templates.empty()) return;
  }
  auto oldest = victim->templates.begin();
  for (auto it = victim->templates.begin(); it != victim->templates.end(); ++it) {
    if (it->second.seq < oldest->second.seq) oldest = it;
  }
  victim->templates.erase(oldest);
  --total_templates_;
  evicted_.inc();
}

void TemplateCache::insert_template_locked(const Ip6& exporter, std::uint64_t key, TemplatePtr tpl) {
  ExporterState& st = exporters_[exporter];
  if (auto it = st.templates.find(key); it != st.templates.end()) {
    if (!it->second.tpl->same_layout(*tpl)) {
      redefined_.inc();
      it->second.tpl = std::move(tpl);
    }
    it->second.seq = ++seq_;
    return;
  }
  if (limits_.max_templates_per_exporter == 0 || limits_.max_templates == 0) return;
  while (st.templates.size() >= limits_.max_templates_per_exporter) evict_one_locked(st);
  while (total_templates_ >= limits_.max_templates) evict_one_locked(st);
  st.templates.emplace(key, Entry{std::move(tpl), ++seq_});
  ++total_templates_;
}

std::vector<PendingSet> TemplateCache::add_template(const Ip6& exporter, std::uint16_t version, std::uint32_t domain,
                                                    std::uint16_t id, FlowTemplate tpl, std::uint64_t now_ns) {
  auto ptr = std::make_shared<const FlowTemplate>(std::move(tpl));
  std::vector<PendingSet> ready;
  std::unique_lock lock(mutex_);
  insert_template_locked(exporter, template_key(version, domain, id), std::move(ptr));
  ExporterState& st = exporters_[exporter];
  expire_exporter_locked(st, now_ns);  // what waited too long is not decoded late
  for (auto it = st.pending.begin(); it != st.pending.end();) {
    if (it->ctx.version == version && it->ctx.domain == domain && it->template_id == id) {
      st.pending_bytes -= it->body.size();
      total_pending_bytes_ -= it->body.size();
      --total_pending_sets_;
      ready.push_back(std::move(*it));
      it = st.pending.erase(it);
    } else {
      ++it;
    }
  }
  held_decoded_.inc(ready.size());
  return ready;
}

void TemplateCache::withdraw(const Ip6& exporter, std::uint16_t version, std::uint32_t domain, std::uint16_t id) {
  std::unique_lock lock(mutex_);
  auto ex = exporters_.find(exporter);
  if (ex == exporters_.end()) return;
  if (ex->second.templates.erase(template_key(version, domain, id))) {
    --total_templates_;
    withdrawn_.inc();
  }
}

void TemplateCache::withdraw_all(const Ip6& exporter, std::uint16_t version, std::uint32_t domain, bool options) {
  std::unique_lock lock(mutex_);
  auto ex = exporters_.find(exporter);
  if (ex == exporters_.end()) return;
  auto& templates = ex->second.templates;
  for (auto it = templates.begin(); it != templates.end();) {
    const std::uint64_t k = it->first;
    if ((k >> 48) == version && ((k >> 16) & 0xffffffffULL) == domain && it->second.tpl->options == options) {
      it = templates.erase(it);
      --total_templates_;
      withdrawn_.inc();
    } else {
      ++it;
    }
  }
}

TemplateCache::TemplatePtr TemplateCache::find(const Ip6& exporter, std::uint16_t version, std::uint32_t domain,
                                               std::uint16_t id) const {
  std::shared_lock lock(mutex_);
  auto ex = exporters_.find(exporter);
  if (ex == exporters_.end()) return nullptr;
  auto it = ex->second.templates.find(template_key(version, domain, id));
  return it == ex->second.templates.end() ? nullptr : it->second.tpl;
}

void TemplateCache::drop_pending_front_locked(ExporterState& st) {
  const std::size_t n = st.pending.front().body.size();
  st.pending_bytes -= n;
  total_pending_bytes_ -= n;
  --total_pending_sets_;
  st.pending.pop_front();
  unknown_dropped_.inc();
}

std::size_t TemplateCache::expire_exporter_locked(ExporterState& st, std::uint64_t now_ns) {
  std::size_t dropped = 0;
  while (!st.pending.empty() && st.pending.front().ctx.received_ns + limits_.pending_max_age_ns < now_ns) {
    drop_pending_front_locked(st);
    ++dropped;
  }
  return dropped;
}

std::size_t TemplateCache::expire_locked(std::uint64_t now_ns) {
  std::size_t dropped = 0;
  for (auto it = exporters_.begin(); it != exporters_.end();) {
    ExporterState& st = it->second;
    dropped += expire_exporter_locked(st, now_ns);
    // Addresses that only ever sent data nobody could decode leave nothing behind.
    const bool empty = st.templates.empty() && st.pending.empty() && st.samplers.empty() && st.init_times.empty() &&
                       st.exporter_rate == 0;
    it = empty ? exporters_.erase(it) : std::next(it);
  }
  last_sweep_ns_ = now_ns;
  return dropped;
}

std::size_t TemplateCache::expire(std::uint64_t now_ns) {
  std::unique_lock lock(mutex_);
  return expire_locked(now_ns);
}

bool TemplateCache::hold(const ExportContext& ctx, std::uint16_t template_id, std::span<const std::uint8_t> body) {
  if (limits_.pending_sets_per_exporter == 0 || body.size() > limits_.pending_bytes_per_exporter ||
      body.size() > limits_.pending_bytes_total) {
    return false;
  }
  std::unique_lock lock(mutex_);
  // A sweep per second at most: holding is the slow path already, but it should not scan every exporter.
  if (ctx.received_ns >= last_sweep_ns_ + 1'000'000'000ULL) expire_locked(ctx.received_ns);
  ExporterState& st = exporters_[ctx.exporter];
  expire_exporter_locked(st, ctx.received_ns);
  while (!st.pending.empty() && (st.pending.size() >= limits_.pending_sets_per_exporter ||
                                 st.pending_bytes + body.size() > limits_.pending_bytes_per_exporter)) {
    drop_pending_front_locked(st);
  }
  // Over the global budget: the largest holders give way first.
  while (total_pending_bytes_ + body.size() > limits_.pending_bytes_total) {
    ExporterState* largest = &st;
    for (auto& [addr, other] : exporters_) {
      if (other.pending_bytes > largest->pending_bytes) largest = &other;
    }
    if (largest->pending.empty()) return false;
    drop_pending_front_locked(*largest);
  }
  st.pending.push_back(PendingSet{ctx, template_id, std::vector<std::uint8_t>(body.begin(), body.end())});
  st.pending_bytes += body.size();
  total_pending_bytes_ += body.size();
  ++total_pending_sets_;
  held_.inc();
  return true;
}

void TemplateCache::learn_sampling(const Ip6& exporter, std::uint16_t version, std::uint32_t domain,
                                   std::optional<std::uint64_t> sampler, std::uint64_t rate) {
  if (rate == 0) return;
  std::unique_lock lock(mutex_);
  ExporterState& st = exporters_[exporter];
  const SamplerKey key{version, domain, sampler.has_value(), sampler.value_or(0)};
  if (!st.samplers.contains(key) && st.samplers.size() >= limits_.max_samplers_per_exporter) {
    st.samplers.erase(st.samplers.begin());
  }
  st.samplers[key] = rate;
  if (!sampler) st.exporter_rate = rate;
}

std::uint64_t TemplateCache::sampling_rate(const Ip6& exporter, std::uint16_t version, std::uint32_t domain,
                                           std::optional<std::uint64_t> sampler) const {
  std::shared_lock lock(mutex_);
  auto ex = exporters_.find(exporter);
  if (ex == exporters_.end()) return 0;
  const ExporterState& st = ex->second;
  if (sampler) {
    if (auto it = st.samplers.find({version, domain, true, *sampler}); it != st.samplers.end()) return it->second;
  }
  if (auto it = st.samplers.find({version, domain, false, 0}); it != st.samplers.end()) return it->second;
  return st.exporter_rate;
}

void TemplateCache::learn_init_time(const Ip6& exporter, std::uint16_t version, std::uint32_t domain,
                                    std::uint64_t ms) {
  std::unique_lock lock(mutex_);
  auto& times = exporters_[exporter].init_times;
  if (!times.contains({version, domain}) && times.size() >= limits_.max_samplers_per_exporter) {
    times.erase(times.begin());
  }
  times[{version, domain}] = ms;
}

std::uint64_t TemplateCache::init_time_ms(const Ip6& exporter, std::uint16_t version, std::uint32_t domain) const {
  std::shared_lock lock(mutex_);
  auto ex = exporters_.find(exporter);
  if (ex == exporters_.end()) return 0;
  auto it = ex->second.init_times.find({version, domain});
  return it == ex->second.init_times.end() ? 0 : it->second;
}

std::size_t TemplateCache::template_count() const {
  std::shared_lock lock(mutex_);
  return total_templates_;
}

std::size_t TemplateCache::pending_sets() const {
  std::shared_lock lock(mutex_);
  return total_pending_sets_;
}

// Format: magic, format version, then tagged records to the end; all integers big-endian.
std::string TemplateCache::serialize() const {
  Writer w;
  for (char c : kMagic) w.u8(static_cast<std::uint8_t>(c));
  w.u8(kFormatVersion);
  std::shared_lock lock(mutex_);
  for (const auto& [addr, st] : exporters_) {
    for (const auto& [key, entry] : st.templates) {
      const FlowTemplate& t = *entry.tpl;
      w.u8(kRecTemplate);
      w.ip(addr);
      w.u64(key);
      w.u8(t.options ? 1 : 0);
      w.u16(t.scope_count);
      w.u16(static_cast<std::uint16_t>(t.fields.size()));
      for (const auto& f : t.fields) {
        w.u16(f.id);
        w.u16(f.length);
        w.u32(f.enterprise);
      }
    }
    for (const auto& [key, rate] : st.samplers) {
      w.u8(kRecSampler);
      w.ip(addr);
      w.u16(std::get<0>(key));
      w.u32(std::get<1>(key));
      w.u8(std::get<2>(key) ? 1 : 0);
      w.u64(std::get<3>(key));
      w.u64(rate);
    }
    if (st.exporter_rate) {
      w.u8(kRecExporterRate);
      w.ip(addr);
      w.u64(st.exporter_rate);
    }
    for (const auto& [key, ms] : st.init_times) {
      w.u8(kRecInitTime);
      w.ip(addr);
      w.u16(key.first);
      w.u32(key.second);
      w.u64(ms);
    }
  }
  return w.take();
}

bool TemplateCache::restore(std::string_view bytes) {
  Reader r(bytes);
  std::uint8_t b;
  for (char c : kMagic) {
    if (!r.u8(b) || b != static_cast<std::uint8_t>(c)) return false;
  }
  if (!r.u8(b) || b != kFormatVersion) return false;
  // Parse everything first so a bad file changes nothing.
  struct Tpl {
    Ip6 addr;
    std::uint64_t key;
    FlowTemplate tpl;
  };
  struct Smp {
    Ip6 addr;
    SamplerKey key;
    std::uint64_t rate;
  };
  std::vector<Tpl> templates;
  std::vector<Smp> samplers;
  std::vector<std::pair<Ip6, std::uint64_t>> exporter_rates;
  std::vector<std::tuple<Ip6, std::uint16_t, std::uint32_t, std::uint64_t>> init_times;
  while (!r.done()) {
    std::uint8_t tag;
    Ip6 addr;
    if (!r.u8(tag) || !r.ip(addr)) return false;
    if (tag == kRecTemplate) {
      Tpl t{addr, 0, {}};
      std::uint8_t options;
      std::uint16_t count;
      if (!r.u64(t.key) || !r.u8(options) || !r.u16(t.tpl.scope_count) || !r.u16(count)) return false;
      if (options > 1 || count > kMaxTemplateFields || t.tpl.scope_count > count) return false;
      t.tpl.options = options == 1;
      t.tpl.fields.resize(count);
      for (auto& f : t.tpl.fields) {
        if (!r.u16(f.id) || !r.u16(f.length) || !r.u32(f.enterprise)) return false;
      }
      if (!t.tpl.finalize()) return false;
      templates.push_back(std::move(t));
    } else if (tag == kRecSampler) {
      std::uint16_t version;
      std::uint32_t domain;
      std::uint8_t has;
      std::uint64_t id, rate;
      if (!r.u16(version) || !r.u32(domain) || !r.u8(has) || !r.u64(id) || !r.u64(rate) || has > 1) return false;
      samplers.push_back({addr, {version, domain, has == 1, id}, rate});
    } else if (tag == kRecExporterRate) {
      std::uint64_t rate;
      if (!r.u64(rate)) return false;
      exporter_rates.emplace_back(addr, rate);
    } else if (tag == kRecInitTime) {
      std::uint16_t version;
      std::uint32_t domain;
      std::uint64_t ms;
      if (!r.u16(version) || !r.u32(domain) || !r.u64(ms)) return false;
      init_times.emplace_back(addr, version, domain, ms);
    } else {
      return false;
    }
  }
  std::unique_lock lock(mutex_);
  for (auto& t : templates) insert_template_locked(t.addr, t.key, std::make_shared<const FlowTemplate>(std::move(t.tpl)));
  for (const auto& s : samplers) {
    auto& st = exporters_[s.addr];
    if (st.samplers.size() < limits_.max_samplers_per_exporter || st.samplers.contains(s.key)) st.samplers[s.key] = s.rate;
  }
  for (const auto& [addr, rate] : exporter_rates) exporters_[addr].exporter_rate = rate;
  for (const auto& [addr, version, domain, ms] : init_times) {
    auto& times = exporters_[addr].init_times;
    if (times.size() < limits_.max_samplers_per_exporter || times.contains({version, domain})) {
      times[{version, domain}] = ms;
    }
  }
  return true;
}

void TemplateCache::save(const std::filesystem::path& dir) const {
  const std::string bytes = serialize();
  std::filesystem::create_directories(dir);
  const auto path = dir / kFileName;
  const auto tmp = dir / (std::string(kFileName) + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) throw std::runtime_error("cannot write flow templates to " + tmp.string() + ": check the directory's space and permissions");
  }
  std::filesystem::rename(tmp, path);
}

bool TemplateCache::load(const std::filesystem::path& dir) {
  const auto path = dir / kFileName;
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  if (!restore(text.str())) {
    spdlog::warn("flow templates: {} is not a template file sluice can read; starting without saved templates "
                 "(data is decoded again once exporters resend their templates)",
                 path.string());
    return false;
  }
  spdlog::info("flow templates: loaded {} templates from {}", template_count(), path.string());
  return true;
}

}  // namespace sluice
