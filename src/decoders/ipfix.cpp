#include "decoders/ipfix.hpp"

#include "core/bytes.hpp"
#include "decoders/flow_fields.hpp"

namespace sluice {
namespace {

constexpr std::uint16_t kTemplateSet = 2;
constexpr std::uint16_t kOptionsTemplateSet = 3;
constexpr std::uint16_t kFirstDataSet = 256;
constexpr std::uint16_t kEnterpriseBit = 0x8000;

// Template and options template sets (RFC 7011 §3.4.1-2) and their withdrawals (§8.1).
DecodeStatus template_set(const ExportContext& ctx, bool options, std::span<const std::uint8_t> b,
                          TemplateCache& cache, FlowRecord& scratch, FlowOutput& out) {
  const std::uint16_t set_id = options ? kOptionsTemplateSet : kTemplateSet;
  std::size_t o = 0;
  while (b.size() - o >= 4) {
    const std::uint16_t id = load_be16(&b[o]);
    const std::uint16_t count = load_be16(&b[o + 2]);
    if (id == 0 && count == 0) break;  // padding
    o += 4;
    if (count == 0) {
      // The set's own id as template id withdraws every template of that kind in the domain.
      if (id == set_id) cache.withdraw_all(ctx.exporter, ctx.version, ctx.domain, options);
      else if (id >= kFirstDataSet) cache.withdraw(ctx.exporter, ctx.version, ctx.domain, id);
      else return DecodeStatus::bad_template;
      continue;
    }
    if (id < kFirstDataSet || count > kMaxTemplateFields) return DecodeStatus::bad_template;
    FlowTemplate tpl;
    tpl.options = options;
    if (options) {
      if (b.size() - o < 2) return DecodeStatus::bad_length;
      tpl.scope_count = load_be16(&b[o]);
      o += 2;
      if (tpl.scope_count == 0 || tpl.scope_count > count) return DecodeStatus::bad_template;
    }
    tpl.fields.resize(count);
    for (auto& f : tpl.fields) {
      if (b.size() - o < 4) return DecodeStatus::bad_length;
      const std::uint16_t raw = load_be16(&b[o]);
      f.id = raw & ~kEnterpriseBit;
      f.length = load_be16(&b[o + 2]);
      o += 4;
      if (raw & kEnterpriseBit) {
        if (b.size() - o < 4) return DecodeStatus::bad_length;
        f.enterprise = load_be32(&b[o]);
        o += 4;
        // PEN 0 would read as IANA; 0xffffffff is our v9 scope tag. Neither is a real enterprise here.
        if (f.enterprise == 0 || f.enterprise == kV9ScopeEnterprise) return DecodeStatus::bad_template;
      }
    }
    if (!tpl.finalize()) return DecodeStatus::bad_template;
    learn_template(ctx, id, std::move(tpl), cache, scratch, out);
  }
  return DecodeStatus::ok;
}

}  // namespace

DecodeStatus decode_ipfix(const Envelope& env, TemplateCache& cache, FlowRecord& scratch, FlowOutput& out) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(env.payload.data());
  if (env.payload.size() < kIpfixHeaderSize) return DecodeStatus::truncated;
  if (load_be16(p) != 10) return DecodeStatus::bad_version;
  const std::size_t size = load_be16(p + 2);
  if (size < kIpfixHeaderSize) return DecodeStatus::bad_length;
  if (size > env.payload.size()) return DecodeStatus::truncated;
  ExportContext ctx;
  ctx.received_ns = env.received_ns;
  ctx.exporter = env.source_address;
  ctx.version = 10;
  ctx.export_secs = load_be32(p + 4);
  ctx.domain = load_be32(p + 12);

  DecodeStatus result = DecodeStatus::ok;
  std::size_t off = kIpfixHeaderSize;
  while (off < size) {
    // Sets fill the message exactly (RFC 7011 §3.3.1); anything else is a lying length.
    if (size - off < 4) return DecodeStatus::bad_length;
    const std::uint16_t id = load_be16(p + off);
    const std::uint16_t len = load_be16(p + off + 2);
    if (len < 4 || len > size - off) return DecodeStatus::bad_length;
    const std::span<const std::uint8_t> body(p + off + 4, len - 4u);
    off += len;
    DecodeStatus st = DecodeStatus::ok;
    if (id == kTemplateSet || id == kOptionsTemplateSet) {
      st = template_set(ctx, id == kOptionsTemplateSet, body, cache, scratch, out);
    } else if (id >= kFirstDataSet) {
      if (const auto tpl = cache.find(ctx.exporter, ctx.version, ctx.domain, id)) {
        st = decode_data_set(ctx, *tpl, body, cache, scratch, out);
      } else if (!cache.hold(ctx, id, body)) {
        result = DecodeStatus::template_unknown;
      }
    }  // 0, 1 (v9 ids) and 4..255 are reserved: skipped by length.
    if (st != DecodeStatus::ok) return st;
  }
  return result;
}

}  // namespace sluice
