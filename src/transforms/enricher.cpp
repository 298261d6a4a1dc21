#include "transforms/enricher.hpp"

#include <bit>
#include <cstring>
#include <stdexcept>

#include "core/metrics.hpp"

namespace sluice::transforms {
namespace {

// Every input bit reaches the low bits that pick a set (addresses differ mostly in their last bytes).
std::uint64_t mix(std::uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 33);
}

std::uint64_t hash_address(const Ip6& a) {
  std::uint64_t hi = 0, lo = 0;
  std::memcpy(&hi, a.data(), 8);
  std::memcpy(&lo, a.data() + 8, 8);
  return mix(lo ^ mix(hi));
}

std::size_t slots_for(std::size_t wanted) { return std::bit_ceil(std::max<std::size_t>(wanted, 16)); }

constexpr std::size_t kExporterSlots = 256;
constexpr std::size_t kWays = 4;  // caches are 4-way set associative: a few hot keys never evict each other

// The index of the way of the set for `h` that holds the key, or else of the way to fill (an empty
// one, or one in rotation); `found` says which. Keys are kept apart from what they map to, so that a
// probe reads one or two cache lines.
template <typename Key, typename Match, typename Empty>
std::size_t probe(const std::vector<Key>& keys, std::uint64_t h, const Match& match, const Empty& empty, unsigned& rotor,
                  bool& found) {
  const std::size_t base = (h & (keys.size() / kWays - 1)) * kWays;
  std::size_t victim = keys.size();
  for (std::size_t w = base; w < base + kWays; ++w) {
    if (match(keys[w])) {
      found = true;
      return w;
    }
    if (victim == keys.size() && empty(keys[w])) victim = w;
  }
  found = false;
  return victim != keys.size() ? victim : base + (rotor++ & (kWays - 1));
}

bool same_address(const Ip6& a, const Ip6& b) {
  std::uint64_t x[2], y[2];
  std::memcpy(x, a.data(), 16);
  std::memcpy(y, b.data(), 16);
  return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
}

}  // namespace

// Slots keep the views a flow receives ready-made, so that a hit reads the slot and nothing else; the
// shared pointers behind them (touched only on refresh) keep the strings alive.
struct Enricher::Session::ExporterSlot {
  Ip6 address{};
  bool used = false;
  std::uint32_t checked_at = 0;
  std::string_view name, group, role, site, region, tenant;
  std::shared_ptr<const ExporterInfo> info;
  std::shared_ptr<const Classification> classes;
};

struct Enricher::Session::InterfaceKey {
  Ip6 address{};
  std::uint32_t index = 0;  // 0: empty (index 0 is never looked up)
  std::uint32_t checked_at = 0;
  const ExporterInfo* exporter = nullptr;  // the exporter entry the slot was computed with
};

struct alignas(64) Enricher::Session::InterfaceSlot {
  std::string_view name, description, connectivity, provider;
  std::uint32_t speed = 0;
  Boundary boundary = Boundary::undefined;
  std::shared_ptr<const InterfaceInfo> info;
  std::shared_ptr<const ExporterInfo> exporter;  // keeps InterfaceKey::exporter alive
  std::shared_ptr<const Classification> classes;
};

struct Enricher::Session::AddressKey {
  Ip6 address{};
  std::uint64_t generation = 0;  // 0: empty; otherwise the GeoIP generation it was filled under
};

struct Enricher::Session::AddressSlot {
  const NetworkAttributes* network = nullptr;
  std::uint32_t asn = 0;
  bool has_country = false;
  char country[2] = {0, 0};
};

Enricher::Enricher(const EnrichConfig& config, InterfaceDirectory* directory, MetricsRegistry& metrics)
    : config_(config),
      directory_(directory),
      as_sources_(config.as_sources),
      unknown_exporter_(metrics.counter("enrich_unknown_exporter_total",
                                        "Flows kept without exporter name: the metadata directory does not know the exporter (yet)")),
      unknown_interface_(metrics.counter("enrich_unknown_interface_total",
                                         "Flows kept with at least one interface the metadata directory does not know (yet)")),
      exporter_misses_(metrics.counter("enrich_cache_misses_total",
                                       "Lookups not answered by a decode session's cache (raise outlet.flows.enrich.cache.* if high)",
                                       {{"cache", "exporter"}})),
      interface_misses_(metrics.counter("enrich_cache_misses_total",
                                        "Lookups not answered by a decode session's cache (raise outlet.flows.enrich.cache.* if high)",
                                        {{"cache", "interface"}})),
      address_misses_(metrics.counter("enrich_cache_misses_total",
                                      "Lookups not answered by a decode session's cache (raise outlet.flows.enrich.cache.* if high)",
                                      {{"cache", "address"}})) {
  if (!config.exporter_classifiers.empty()) {
    exporter_classifier_ = std::make_unique<Classifier>(ClassifierKind::exporter, config.exporter_classifiers,
                                                        config.classifier_cache_entries, metrics);
  }
  if (!config.interface_classifiers.empty()) {
    interface_classifier_ = std::make_unique<Classifier>(ClassifierKind::interface, config.interface_classifiers,
                                                         config.classifier_cache_entries, metrics);
  }
  std::vector<NetworkTable::Entry> entries;
  for (const auto& n : config.networks) {
    std::string error;
    auto prefix = parse_prefix(n.prefix, &error);
    if (!prefix) throw std::invalid_argument("outlet.flows.enrich.networks." + n.prefix + ": " + error);
    entries.push_back({*prefix, {n.name, n.role, n.site, n.region, n.tenant}});
  }
  networks_ = NetworkTable(std::move(entries));
  if (!config.asn_database.empty() || !config.country_database.empty()) {
    geoip_ = std::make_unique<GeoIp>(
        GeoIpConfig{config.asn_database, config.country_database, config.geoip_check_interval}, metrics);
  }
  address_work_ = !networks_.empty() || geoip_;
}

Enricher::~Enricher() = default;

Enricher::Session::Session(Enricher& owner) : owner_(owner) {
  exporters_.resize(kExporterSlots);
  if (owner.directory_ || owner.interface_classifier_) {
    interface_keys_.resize(slots_for(owner.config_.interface_cache_entries));
    interfaces_.resize(interface_keys_.size());
  }
  if (owner.address_work_) {
    address_keys_.resize(slots_for(owner.config_.address_cache_entries));
    addresses_.resize(address_keys_.size());
  }
}

Enricher::Session::~Session() = default;

const Enricher::Session::ExporterSlot& Enricher::Session::exporter(const Ip6& address, std::uint32_t now) {
  bool hit = false;
  // Flows come in datagrams: most flows have the previous flow's exporter.
  if (last_exporter_ && last_exporter_->checked_at == now && same_address(last_exporter_->address, address)) {
    return *last_exporter_;
  }
  auto& slot = exporters_[probe(
      exporters_, hash_address(address), [&](const ExporterSlot& s) { return s.used && same_address(s.address, address); },
      [](const ExporterSlot& s) { return !s.used; }, rotor_, hit)];
  last_exporter_ = &slot;
  if (hit && slot.checked_at == now) return slot;
  if (!hit) owner_.exporter_misses_.inc();
  auto info = owner_.directory_ ? owner_.directory_->exporter(address) : nullptr;
  if ((!hit || info != slot.info) && owner_.exporter_classifier_) {
    ClassifierInput in;
    in.exporter_address = address;
    if (info) in.exporter_name = info->name;
    slot.classes = owner_.exporter_classifier_->classify(in);
  }
  slot.address = address;
  slot.used = true;
  slot.checked_at = now;
  slot.info = std::move(info);
  slot.name = slot.info ? std::string_view(slot.info->name) : std::string_view{};
  slot.group = slot.role = slot.site = slot.region = slot.tenant = {};
  if (const auto* c = slot.classes.get()) {
    if (c->has(ExporterField::name)) slot.name = c->get(ExporterField::name);
    slot.group = c->get(ExporterField::group);
    slot.role = c->get(ExporterField::role);
    slot.site = c->get(ExporterField::site);
    slot.region = c->get(ExporterField::region);
    slot.tenant = c->get(ExporterField::tenant);
  }
  return slot;
}

const Enricher::Session::InterfaceSlot& Enricher::Session::interface(const Ip6& address, std::uint32_t index,
                                                                     const ExporterSlot& ex, std::uint32_t now) {
  const std::uint64_t h = mix(hash_address(address) + index);
  bool hit = false;
  const auto at = probe(
      interface_keys_, h, [&](const InterfaceKey& k) { return k.index == index && same_address(k.address, address); },
      [](const InterfaceKey& k) { return k.index == 0; }, rotor_, hit);
  auto& key = interface_keys_[at];
  auto& slot = interfaces_[at];
  if (hit && key.checked_at == now && key.exporter == ex.info.get()) return slot;
  if (!hit) owner_.interface_misses_.inc();
  auto info = owner_.directory_ ? owner_.directory_->interface(address, index) : nullptr;
  if (!hit || info != slot.info || ex.info != slot.exporter) {
    if (owner_.interface_classifier_) {
      ClassifierInput in;
      in.exporter_address = address;
      if (ex.info) in.exporter_name = ex.info->name;
      if (info) {
        in.name = info->name;
        in.description = info->description;
        in.speed = info->speed;
      }
      in.index = index;
      slot.classes = owner_.interface_classifier_->classify(in);
    } else {
      slot.classes = nullptr;
    }
  }
  key.address = address;
  key.index = index;
  key.checked_at = now;
  key.exporter = ex.info.get();
  slot.info = std::move(info);
  slot.exporter = ex.info;
  slot.name = slot.description = slot.connectivity = slot.provider = {};
  slot.speed = 0;
  slot.boundary = Boundary::undefined;
  if (const auto* i = slot.info.get()) {
    slot.name = i->name;
    slot.description = i->description;
    slot.speed = i->speed;
  }
  if (const auto* c = slot.classes.get()) {
    if (c->has(InterfaceField::name)) slot.name = c->get(InterfaceField::name);
    if (c->has(InterfaceField::description)) slot.description = c->get(InterfaceField::description);
    slot.connectivity = c->get(InterfaceField::connectivity);
    slot.provider = c->get(InterfaceField::provider);
    slot.boundary = c->boundary;
  }
  return slot;
}

const Enricher::Session::AddressSlot& Enricher::Session::address(const Ip6& a) {
  bool hit = false;
  const auto g = geo_generation_;
  const auto at = probe(
      address_keys_, hash_address(a), [&](const AddressKey& k) { return k.generation == g && same_address(k.address, a); },
      [&](const AddressKey& k) { return k.generation != g; }, rotor_, hit);
  auto& slot = addresses_[at];
  if (hit) return slot;
  owner_.address_misses_.inc();
  address_keys_[at] = {a, g};
  slot.network = owner_.networks_.lookup(a);
  slot.asn = geo_ && geo_->asn ? geo_->asn->asn(a) : 0;
  slot.has_country = geo_ && geo_->country && geo_->country->country(a, slot.country);
  return slot;
}

bool Enricher::Session::apply_interface(FlowRecord& r, bool in, std::uint32_t index, const ExporterSlot& ex) {
  const auto& slot = interface(r.exporter_address, index, ex, r.time_received);
  if (in) {
    r.in_if_name = slot.name;
    r.in_if_description = slot.description;
    r.in_if_speed = slot.speed;
    r.in_if_connectivity = slot.connectivity;
    r.in_if_provider = slot.provider;
    r.in_if_boundary = slot.boundary;
  } else {
    r.out_if_name = slot.name;
    r.out_if_description = slot.description;
    r.out_if_speed = slot.speed;
    r.out_if_connectivity = slot.connectivity;
    r.out_if_provider = slot.provider;
    r.out_if_boundary = slot.boundary;
  }
  return owner_.directory_ && !slot.info;
}

std::uint32_t Enricher::Session::pick_as(std::uint32_t from_flow, std::uint32_t from_geoip) const {
  for (const auto source : owner_.as_sources_) {
    const auto v = source == AsSource::flow ? from_flow : from_geoip;
    if (v) return v;
  }
  return 0;
}

void Enricher::Session::enrich(FlowRecord& r) {
  const auto& ex = exporter(r.exporter_address, r.time_received);
  if (!ex.info && owner_.directory_) owner_.unknown_exporter_.inc();
  r.exporter_name = ex.name;
  r.exporter_group = ex.group;
  r.exporter_role = ex.role;
  r.exporter_site = ex.site;
  r.exporter_region = ex.region;
  r.exporter_tenant = ex.tenant;

  if (!interfaces_.empty()) {
    bool unknown = false;
    if (r.in_if) unknown |= apply_interface(r, true, r.in_if, ex);
    if (r.out_if) unknown |= apply_interface(r, false, r.out_if, ex);
    if (unknown) owner_.unknown_interface_.inc();
  }

  if (owner_.address_work_) {
    if (owner_.geoip_) {
      if (const auto g = owner_.geoip_->generation(); g != geo_generation_) {
        geo_ = owner_.geoip_->snapshot();
        geo_generation_ = g;
      }
    } else {
      geo_generation_ = 1;
    }
    const auto& src = address(r.src_addr);
    const auto* src_net = src.network ? src.network : &owner_.no_network_;
    r.src_net_name = src_net->name;
    r.src_net_role = src_net->role;
    r.src_net_site = src_net->site;
    r.src_net_region = src_net->region;
    r.src_net_tenant = src_net->tenant;
    r.src_country[0] = src.has_country ? src.country[0] : '\0';
    r.src_country[1] = src.has_country ? src.country[1] : '\0';
    r.src_as = pick_as(r.src_as, src.asn);
    const auto& dst = address(r.dst_addr);
    const auto* dst_net = dst.network ? dst.network : &owner_.no_network_;
    r.dst_net_name = dst_net->name;
    r.dst_net_role = dst_net->role;
    r.dst_net_site = dst_net->site;
    r.dst_net_region = dst_net->region;
    r.dst_net_tenant = dst_net->tenant;
    r.dst_country[0] = dst.has_country ? dst.country[0] : '\0';
    r.dst_country[1] = dst.has_country ? dst.country[1] : '\0';
    r.dst_as = pick_as(r.dst_as, dst.asn);
  } else {
    r.src_as = pick_as(r.src_as, 0);
    r.dst_as = pick_as(r.dst_as, 0);
  }
}

}  // namespace sluice::transforms
