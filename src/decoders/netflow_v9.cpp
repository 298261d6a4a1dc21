#include "decoders/netflow_v9.hpp"

#include "core/bytes.hpp"
#include "decoders/flow_fields.hpp"

namespace sluice {
namespace {

constexpr std::uint16_t kTemplateFlowset = 0;
constexpr std::uint16_t kOptionsTemplateFlowset = 1;
constexpr std::uint16_t kFirstDataFlowset = 256;

DecodeStatus template_flowset(const ExportContext& ctx, std::span<const std::uint8_t> b, TemplateCache& cache,
                              FlowRecord& scratch, FlowOutput& out) {
  std::size_t o = 0;
  while (b.size() - o >= 4) {
    const std::uint16_t id = load_be16(&b[o]);
    const std::uint16_t count = load_be16(&b[o + 2]);
    if (id == 0 && count == 0) break;  // padding
    if (id < kFirstDataFlowset) return DecodeStatus::bad_template;
    o += 4;
    if (count == 0) {
      cache.withdraw(ctx.exporter, ctx.version, ctx.domain, id);
      continue;
    }
    if (count > kMaxTemplateFields) return DecodeStatus::bad_template;
    if (b.size() - o < std::size_t{count} * 4) return DecodeStatus::bad_length;
    FlowTemplate tpl;
    tpl.fields.resize(count);
    for (auto& f : tpl.fields) {
      f.id = load_be16(&b[o]);
      f.length = load_be16(&b[o + 2]);
      o += 4;
    }
    if (!tpl.finalize()) return DecodeStatus::bad_template;
    learn_template(ctx, id, std::move(tpl), cache, scratch, out);
  }
  return DecodeStatus::ok;
}

DecodeStatus options_template_flowset(const ExportContext& ctx, std::span<const std::uint8_t> b,
                                      TemplateCache& cache, FlowRecord& scratch, FlowOutput& out) {
  std::size_t o = 0;
  while (b.size() - o >= 6) {
    const std::uint16_t id = load_be16(&b[o]);
    const std::uint16_t scope_len = load_be16(&b[o + 2]);
    const std::uint16_t option_len = load_be16(&b[o + 4]);
    if (id == 0 && scope_len == 0 && option_len == 0) break;  // padding
    if (id < kFirstDataFlowset || scope_len % 4 || option_len % 4) return DecodeStatus::bad_template;
    o += 6;
    if (b.size() - o < std::size_t{scope_len} + option_len) return DecodeStatus::bad_length;
    const std::size_t count = (std::size_t{scope_len} + option_len) / 4;
    if (count == 0 || count > kMaxTemplateFields) return DecodeStatus::bad_template;
    FlowTemplate tpl;
    tpl.options = true;
    tpl.scope_count = static_cast<std::uint16_t>(scope_len / 4);
    tpl.fields.resize(count);
    for (std::size_t i = 0; i < count; ++i) {
      auto& f = tpl.fields[i];
      f.id = load_be16(&b[o]);
      f.length = load_be16(&b[o + 2]);
      if (i < tpl.scope_count) f.enterprise = kV9ScopeEnterprise;
      o += 4;
    }
    if (!tpl.finalize()) return DecodeStatus::bad_template;
    learn_template(ctx, id, std::move(tpl), cache, scratch, out);
  }
  return DecodeStatus::ok;
}

}  // namespace

DecodeStatus decode_netflow_v9(const Envelope& env, TemplateCache& cache, FlowRecord& scratch, FlowOutput& out) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(env.payload.data());
  const std::size_t size = env.payload.size();
  if (size < kNetflowV9HeaderSize) return DecodeStatus::truncated;
  if (load_be16(p) != 9) return DecodeStatus::bad_version;
  ExportContext ctx;
  ctx.received_ns = env.received_ns;
  ctx.exporter = env.source_address;
  ctx.version = 9;
  ctx.sys_uptime_ms = load_be32(p + 4);
  ctx.export_secs = load_be32(p + 8);
  ctx.domain = load_be32(p + 16);

  DecodeStatus result = DecodeStatus::ok;
  std::size_t off = kNetflowV9HeaderSize;
  // Fewer than 4 bytes left cannot be a flowset: padding after the last one.
  while (size - off >= 4) {
    const std::uint16_t id = load_be16(p + off);
    const std::uint16_t len = load_be16(p + off + 2);
    if (len < 4 || len > size - off) return DecodeStatus::bad_length;
    const std::span<const std::uint8_t> body(p + off + 4, len - 4u);
    off += len;
    DecodeStatus st = DecodeStatus::ok;
    if (id == kTemplateFlowset) {
      st = template_flowset(ctx, body, cache, scratch, out);
    } else if (id == kOptionsTemplateFlowset) {
      st = options_template_flowset(ctx, body, cache, scratch, out);
    } else if (id >= kFirstDataFlowset) {
      if (const auto tpl = cache.find(ctx.exporter, ctx.version, ctx.domain, id)) {
        st = decode_data_set(ctx, *tpl, body, cache, scratch, out);
      } else if (!cache.hold(ctx, id, body)) {
        result = DecodeStatus::template_unknown;
      }
    }  // 2..255 are reserved: skipped by length.
    if (st != DecodeStatus::ok) return st;
  }
  return result;
}

}  // namespace sluice
