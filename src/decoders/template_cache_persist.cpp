// TemplateCache persistence: the file format, topic entries, save() and load().
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "core/bytes.hpp"
#include "decoders/template_cache.hpp"

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

// Format: magic, format version, then tagged records to the end; all integers big-endian. A topic
// entry's value is kEntryFormat then one such record.
namespace template_cache_detail {

// One record of the file format or of a topic entry, parsed.
struct Record {
  std::uint8_t tag = 0;
  Ip6 addr{};
  std::uint16_t version = 0;
  std::uint32_t domain = 0;
  std::uint16_t id = 0;  // template id
  bool has_sampler = false;
  std::uint64_t sampler = 0;
  std::uint64_t value = 0;  // sampling rate or init time (ms)
  FlowTemplate tpl;
};

}  // namespace template_cache_detail

using template_cache_detail::Record;

namespace {

constexpr std::uint8_t kEntryFormat = 1;

void write_template(Writer& w, const Ip6& addr, std::uint64_t key, const FlowTemplate& t) {
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

void write_sampler(Writer& w, const Ip6& addr, std::uint16_t version, std::uint32_t domain, bool has, std::uint64_t id,
                   std::uint64_t rate) {
  w.u8(kRecSampler);
  w.ip(addr);
  w.u16(version);
  w.u32(domain);
  w.u8(has ? 1 : 0);
  w.u64(id);
  w.u64(rate);
}

void write_rate(Writer& w, const Ip6& addr, std::uint64_t rate) {
  w.u8(kRecExporterRate);
  w.ip(addr);
  w.u64(rate);
}

void write_init(Writer& w, const Ip6& addr, std::uint16_t version, std::uint32_t domain, std::uint64_t ms) {
  w.u8(kRecInitTime);
  w.ip(addr);
  w.u16(version);
  w.u32(domain);
  w.u64(ms);
}

bool parse_record(Reader& r, Record& rec) {
  if (!r.u8(rec.tag) || !r.ip(rec.addr)) return false;
  switch (rec.tag) {
    case kRecTemplate: {
      std::uint64_t key;
      std::uint8_t options;
      std::uint16_t count;
      if (!r.u64(key) || !r.u8(options) || !r.u16(rec.tpl.scope_count) || !r.u16(count)) return false;
      if (options > 1 || count > kMaxTemplateFields || rec.tpl.scope_count > count) return false;
      rec.version = static_cast<std::uint16_t>(key >> 48);
      rec.domain = static_cast<std::uint32_t>(key >> 16);
      rec.id = static_cast<std::uint16_t>(key);
      rec.tpl.options = options == 1;
      rec.tpl.fields.resize(count);
      for (auto& f : rec.tpl.fields) {
        if (!r.u16(f.id) || !r.u16(f.length) || !r.u32(f.enterprise)) return false;
      }
      return rec.tpl.finalize();
    }
    case kRecSampler: {
      std::uint8_t has;
      if (!r.u16(rec.version) || !r.u32(rec.domain) || !r.u8(has) || !r.u64(rec.sampler) || !r.u64(rec.value) ||
          has > 1) {
        return false;
      }
      rec.has_sampler = has == 1;
      return true;
    }
    case kRecExporterRate: return r.u64(rec.value);
    case kRecInitTime: return r.u16(rec.version) && r.u32(rec.domain) && r.u64(rec.value);
    default: return false;
  }
}

std::string template_entry_key(const Ip6& addr, std::uint16_t version, std::uint32_t domain, std::uint16_t id) {
  return fmt::format("template/{}/{}/{}/{}", ip6_to_string(addr), version, domain, id);
}
std::string sampler_entry_key(const Ip6& addr, std::uint16_t version, std::uint32_t domain, bool has, std::uint64_t id) {
  return has ? fmt::format("sampler/{}/{}/{}/{}", ip6_to_string(addr), version, domain, id)
             : fmt::format("sampler/{}/{}/{}/*", ip6_to_string(addr), version, domain);
}
std::string rate_entry_key(const Ip6& addr) { return "rate/" + ip6_to_string(addr); }
std::string init_entry_key(const Ip6& addr, std::uint16_t version, std::uint32_t domain) {
  return fmt::format("init/{}/{}/{}", ip6_to_string(addr), version, domain);
}

std::string entry_key(const Record& r) {
  switch (r.tag) {
    case kRecTemplate: return template_entry_key(r.addr, r.version, r.domain, r.id);
    case kRecSampler: return sampler_entry_key(r.addr, r.version, r.domain, r.has_sampler, r.sampler);
    case kRecExporterRate: return rate_entry_key(r.addr);
    default: return init_entry_key(r.addr, r.version, r.domain);
  }
}

template <typename T>
bool parse_number(std::string_view text, T& out) {
  const auto* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc{} && p == end && !text.empty();
}

// The identity part of a Record from an entry key (for tombstones); the value part stays empty.
bool parse_entry_key(std::string_view key, Record& rec) {
  std::vector<std::string_view> parts;
  while (parts.size() < 6) {
    const auto slash = key.find('/');
    parts.push_back(key.substr(0, slash));
    if (slash == std::string_view::npos) break;
    key.remove_prefix(slash + 1);
  }
  if (parts.size() < 2) return false;
  const auto addr = ip6_parse(parts[1]);
  if (!addr) return false;
  rec.addr = *addr;
  const auto kind = parts[0];
  if (kind == "rate") {
    rec.tag = kRecExporterRate;
    return parts.size() == 2;
  }
  if (parts.size() < 4 || !parse_number(parts[2], rec.version) || !parse_number(parts[3], rec.domain)) return false;
  if (kind == "init") {
    rec.tag = kRecInitTime;
    return parts.size() == 4;
  }
  if (parts.size() != 5) return false;
  if (kind == "template") {
    rec.tag = kRecTemplate;
    return parse_number(parts[4], rec.id);
  }
  if (kind == "sampler") {
    rec.tag = kRecSampler;
    rec.has_sampler = parts[4] != "*";
    return !rec.has_sampler || parse_number(parts[4], rec.sampler);
  }
  return false;
}

}  // namespace

void TemplateCache::apply_locked(const Record& rec) {
  ExporterState& st = exporters_[rec.addr];
  switch (rec.tag) {
    case kRecTemplate:
      insert_template_locked(rec.addr, template_key(rec.version, rec.domain, rec.id),
                             std::make_shared<const FlowTemplate>(rec.tpl));
      break;
    case kRecSampler: {
      const SamplerKey key{rec.version, rec.domain, rec.has_sampler, rec.sampler};
      auto it = st.samplers.find(key);
      if (it != st.samplers.end() && it->second == rec.value) break;
      if (it == st.samplers.end() && st.samplers.size() >= limits_.max_samplers_per_exporter) break;
      st.samplers[key] = rec.value;
      changed_locked();
      break;
    }
    case kRecExporterRate:
      if (st.exporter_rate != rec.value) {
        st.exporter_rate = rec.value;
        changed_locked();
      }
      break;
    default: {
      auto it = st.init_times.find({rec.version, rec.domain});
      if (it != st.init_times.end() && it->second == rec.value) break;
      if (it == st.init_times.end() && st.init_times.size() >= limits_.max_samplers_per_exporter) break;
      st.init_times[{rec.version, rec.domain}] = rec.value;
      changed_locked();
      break;
    }
  }
}

void TemplateCache::erase_locked(const Record& rec) {
  auto ex = exporters_.find(rec.addr);
  if (ex == exporters_.end()) return;
  ExporterState& st = ex->second;
  bool erased = false;
  switch (rec.tag) {
    case kRecTemplate:
      erased = st.templates.erase(template_key(rec.version, rec.domain, rec.id)) > 0;
      if (erased) --total_templates_;
      break;
    case kRecSampler: erased = st.samplers.erase({rec.version, rec.domain, rec.has_sampler, rec.sampler}) > 0; break;
    case kRecExporterRate:
      erased = st.exporter_rate != 0;
      st.exporter_rate = 0;
      break;
    default: erased = st.init_times.erase({rec.version, rec.domain}) > 0; break;
  }
  if (erased) changed_locked();
}

std::string TemplateCache::serialize() const {
  Writer w;
  for (char c : kMagic) w.u8(static_cast<std::uint8_t>(c));
  w.u8(kFormatVersion);
  std::shared_lock lock(mutex_);
  for (const auto& [addr, st] : exporters_) {
    for (const auto& [key, entry] : st.templates) write_template(w, addr, key, *entry.tpl);
    for (const auto& [key, rate] : st.samplers) {
      write_sampler(w, addr, std::get<0>(key), std::get<1>(key), std::get<2>(key), std::get<3>(key), rate);
    }
    if (st.exporter_rate) write_rate(w, addr, st.exporter_rate);
    for (const auto& [key, ms] : st.init_times) write_init(w, addr, key.first, key.second, ms);
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
  std::vector<Record> records;
  while (!r.done()) {
    if (!parse_record(r, records.emplace_back())) return false;
  }
  std::unique_lock lock(mutex_);
  for (const auto& rec : records) apply_locked(rec);
  return true;
}

std::vector<TemplateCache::EntryBytes> TemplateCache::entries() const {
  std::vector<EntryBytes> out;
  const auto entry_writer = [] {
    Writer w;
    w.u8(kEntryFormat);
    return w;
  };
  std::shared_lock lock(mutex_);
  for (const auto& [addr, st] : exporters_) {
    for (const auto& [key, entry] : st.templates) {
      const auto version = static_cast<std::uint16_t>(key >> 48);
      const auto domain = static_cast<std::uint32_t>(key >> 16);
      Writer w = entry_writer();
      write_template(w, addr, key, *entry.tpl);
      out.push_back({template_entry_key(addr, version, domain, static_cast<std::uint16_t>(key)), w.take()});
    }
    for (const auto& [key, rate] : st.samplers) {
      const auto& [version, domain, has, id] = key;
      Writer w = entry_writer();
      write_sampler(w, addr, version, domain, has, id, rate);
      out.push_back({sampler_entry_key(addr, version, domain, has, id), w.take()});
    }
    if (st.exporter_rate) {
      Writer w = entry_writer();
      write_rate(w, addr, st.exporter_rate);
      out.push_back({rate_entry_key(addr), w.take()});
    }
    for (const auto& [key, ms] : st.init_times) {
      Writer w = entry_writer();
      write_init(w, addr, key.first, key.second, ms);
      out.push_back({init_entry_key(addr, key.first, key.second), w.take()});
    }
  }
  return out;
}

TemplateCache::EntryResult TemplateCache::restore_entry(std::string_view key, std::string_view value) {
  Record rec;
  if (value.empty()) {
    if (!parse_entry_key(key, rec)) return EntryResult::malformed;
    std::unique_lock lock(mutex_);
    erase_locked(rec);
    return EntryResult::applied;
  }
  Reader r(value);
  std::uint8_t format;
  if (!r.u8(format) || format != kEntryFormat || !parse_record(r, rec) || !r.done()) return EntryResult::malformed;
  if (entry_key(rec) != key) return EntryResult::malformed;
  std::unique_lock lock(mutex_);
  apply_locked(rec);
  return EntryResult::applied;
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
