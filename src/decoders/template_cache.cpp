#include "decoders/template_cache.hpp"

#include <cstring>
#include <mutex>

namespace sluice {

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
  changed_locked();
}

void TemplateCache::insert_template_locked(const Ip6& exporter, std::uint64_t key, TemplatePtr tpl) {
  ExporterState& st = exporters_[exporter];
  if (auto it = st.templates.find(key); it != st.templates.end()) {
    if (!it->second.tpl->same_layout(*tpl)) {
      redefined_.inc();
      it->second.tpl = std::move(tpl);
      changed_locked();
    }
    it->second.seq = ++seq_;
    return;
  }
  if (limits_.max_templates_per_exporter == 0 || limits_.max_templates == 0) return;
  while (st.templates.size() >= limits_.max_templates_per_exporter) evict_one_locked(st);
  while (total_templates_ >= limits_.max_templates) evict_one_locked(st);
  st.templates.emplace(key, Entry{std::move(tpl), ++seq_});
  ++total_templates_;
  changed_locked();
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
    changed_locked();
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
      changed_locked();
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
  auto it = st.samplers.find(key);
  // Exporters repeat their options data every few seconds: only a new or different rate is a change.
  if (it != st.samplers.end() && it->second == rate && (sampler || st.exporter_rate == rate)) return;
  if (it == st.samplers.end() && st.samplers.size() >= limits_.max_samplers_per_exporter) {
    st.samplers.erase(st.samplers.begin());
  }
  st.samplers[key] = rate;
  if (!sampler) st.exporter_rate = rate;
  changed_locked();
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
  auto it = times.find({version, domain});
  if (it != times.end() && it->second == ms) return;
  if (it == times.end() && times.size() >= limits_.max_samplers_per_exporter) times.erase(times.begin());
  times[{version, domain}] = ms;
  changed_locked();
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

}  // namespace sluice
