// libFuzzer target: the template cache driven by arbitrary bytes. Inputs starting with the
// serialization magic go through restore() and must round-trip; anything else is read as a program
// of cache operations (templates, withdrawals, held data, expiry, sampling) under small limits, whose
// bounds are checked after every step.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

#include "core/metrics.hpp"
#include "decoders/template_cache.hpp"

namespace {

class Reader {
 public:
  Reader(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
  bool empty() const { return n_ == 0; }
  std::uint8_t u8() {
    if (!n_) return 0;
    --n_;
    return *p_++;
  }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() << 8 | u8()); }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

[[noreturn]] void fail() { __builtin_trap(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  sluice::MetricsRegistry metrics;
  sluice::TemplateCacheLimits limits;
  limits.max_templates = 8;
  limits.max_templates_per_exporter = 4;
  limits.max_samplers_per_exporter = 4;
  limits.pending_sets_per_exporter = 3;
  limits.pending_bytes_per_exporter = 200;
  limits.pending_bytes_total = 300;
  limits.pending_max_age_ns = 5;
  sluice::TemplateCache cache(metrics, limits);

  // "SLTE" key NUL value: one topic entry, which may be refused but must leave the cache whole.
  if (size >= 4 && std::memcmp(data, "SLTE", 4) == 0) {
    const std::string_view in(reinterpret_cast<const char*>(data) + 4, size - 4);
    const auto nul = in.find('\0');
    const auto key = in.substr(0, nul);
    const auto value = nul == std::string_view::npos ? std::string_view{} : in.substr(nul + 1);
    if (cache.restore_entry(key, value) == sluice::TemplateCache::EntryResult::malformed && cache.generation() != 0) fail();
    if (cache.template_count() > 1) fail();
    for (const auto& e : cache.entries()) {
      if (e.key != key || e.value != value) fail();
    }
    return 0;
  }
  if (size >= 4 && std::memcmp(data, "SLTC", 4) == 0) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    if (!cache.restore(in)) return 0;
    if (cache.template_count() > limits.max_templates) fail();
    sluice::MetricsRegistry m2;
    sluice::TemplateCache copy(m2, limits);
    if (!copy.restore(cache.serialize())) fail();
    if (copy.template_count() != cache.template_count()) fail();
    return 0;
  }

  Reader r(data, size);
  std::uint64_t now = 0;
  while (!r.empty()) {
    const std::uint8_t op = r.u8();
    sluice::Ip6 exporter = sluice::ip6_from_v4(0xc0000200 | (op >> 5));  // 8 exporters
    const std::uint16_t version = (op & 0x10) ? 10 : 9;
    const std::uint32_t domain = r.u8() & 3;
    const std::uint16_t id = static_cast<std::uint16_t>(256 + (r.u8() & 7));
    now += r.u8();
    switch (op & 0x7) {
      case 0:
      case 1: {
        sluice::FlowTemplate tpl;
        const std::size_t count = 1 + (r.u8() & 7);
        for (std::size_t i = 0; i < count; ++i) tpl.fields.push_back({r.u16(), r.u16(), 0});
        tpl.options = op & 1;
        tpl.scope_count = tpl.options ? 1 : 0;
        if (!tpl.finalize()) break;
        for (const auto& pending : cache.add_template(exporter, version, domain, id, tpl, now)) {
          if (pending.template_id != id || pending.ctx.domain != domain || pending.ctx.version != version) fail();
        }
        if (!cache.find(exporter, version, domain, id)) fail();
        break;
      }
      case 2: cache.withdraw(exporter, version, domain, id); break;
      case 3: cache.withdraw_all(exporter, version, domain, op & 8); break;
      case 4: {
        sluice::ExportContext ctx;
        ctx.exporter = exporter;
        ctx.version = version;
        ctx.domain = domain;
        ctx.received_ns = now;
        std::uint8_t body[256] = {};
        cache.hold(ctx, id, std::span(body, r.u8()));
        break;
      }
      case 5: cache.expire(now); break;
      case 6: {
        const std::uint8_t sampler = r.u8();
        cache.learn_sampling(exporter, version, domain, sampler & 1 ? std::optional<std::uint64_t>(sampler) : std::nullopt,
                             r.u16());
        break;
      }
      case 7: {
        const std::uint8_t sampler = r.u8();
        (void)cache.sampling_rate(exporter, version, domain,
                                  sampler & 1 ? std::optional<std::uint64_t>(sampler) : std::nullopt);
        cache.learn_init_time(exporter, version, domain, now);
        break;
      }
    }
    if (cache.template_count() > limits.max_templates) fail();
    if (cache.pending_sets() > 8 * limits.pending_sets_per_exporter) fail();
  }
  sluice::MetricsRegistry m2;
  sluice::TemplateCache copy(m2, limits);
  if (!copy.restore(cache.serialize())) fail();
  if (copy.template_count() != cache.template_count()) fail();
  // Entry by entry, as outlets share them through Kafka: the same state.
  sluice::MetricsRegistry m3;
  sluice::TemplateCache by_entry(m3, limits);
  for (const auto& e : cache.entries()) {
    if (by_entry.restore_entry(e.key, e.value) != sluice::TemplateCache::EntryResult::applied) fail();
  }
  if (by_entry.template_count() != cache.template_count() || by_entry.serialize().size() != copy.serialize().size()) fail();
  return 0;
}
