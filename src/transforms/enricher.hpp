// Enricher: fills a decoded flow with exporter and interface names, classifications, network
// attributes, AS numbers and countries, on the decode path, through one Session per decode thread.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/flow.hpp"
#include "transforms/classifier.hpp"
#include "transforms/enrich_config.hpp"
#include "transforms/geoip.hpp"
#include "transforms/metadata.hpp"
#include "transforms/networks.hpp"

namespace sluice {
class Counter;
class MetricsRegistry;
}  // namespace sluice

namespace sluice::transforms {

// Shared by every decode thread and immutable after construction (classifier caches and the GeoIP
// snapshot have their own locks, taken only on cache misses). Flows whose exporter or interfaces the
// directory does not know are enriched with what is known, never dropped, and counted.
class Enricher {
 public:
  // Throws std::runtime_error when a configured MMDB file cannot be opened, std::invalid_argument on a
  // rule or prefix that parse_enrich_config would have refused. `directory` may be null (no names).
  Enricher(const EnrichConfig& config, InterfaceDirectory* directory, MetricsRegistry& metrics);
  ~Enricher();
  Enricher(const Enricher&) = delete;
  Enricher& operator=(const Enricher&) = delete;

  // Per-thread state: bounded direct-mapped caches of exporters, interfaces and addresses, so that a
  // warm flow costs a few probes and no lock, atomic write or allocation. Not thread-safe: one per
  // decode thread (each FlowBatchBuilder holds its own). Exporter and interface entries are asked
  // again from the directory when the flow's receive second changes, so new names show within ~1 s.
  class Session {
   public:
    explicit Session(Enricher& owner);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Fills the enrichment fields of `r`. Its string views point into this session's cache entries
    // (or the Enricher) and stay valid until the next enrich() call on this session.
    void enrich(FlowRecord& r);

   private:
    struct ExporterSlot;
    struct InterfaceKey;
    struct InterfaceSlot;
    struct AddressKey;
    struct AddressSlot;

    const ExporterSlot& exporter(const Ip6& address, std::uint32_t now);
    const InterfaceSlot& interface(const Ip6& address, std::uint32_t index, const ExporterSlot& ex, std::uint32_t now);
    const AddressSlot& address(const Ip6& a);
    // Returns true when the interface is unknown to the directory.
    bool apply_interface(FlowRecord& r, bool in, std::uint32_t index, const ExporterSlot& ex);
    std::uint32_t pick_as(std::uint32_t from_flow, std::uint32_t from_geoip) const;

    Enricher& owner_;
    std::vector<ExporterSlot> exporters_;
    std::vector<InterfaceKey> interface_keys_;  // interface_keys_[i] says what interfaces_[i] holds
    std::vector<InterfaceSlot> interfaces_;
    std::vector<AddressKey> address_keys_;
    std::vector<AddressSlot> addresses_;
    unsigned rotor_ = 0;  // picks the way to evict in a full set
    const ExporterSlot* last_exporter_ = nullptr;
    std::uint64_t geo_generation_ = 0;
    std::shared_ptr<const GeoSnapshot> geo_;
  };

  std::unique_ptr<Session> session() { return std::make_unique<Session>(*this); }

  const NetworkTable& networks() const { return networks_; }

 private:
  EnrichConfig config_;
  InterfaceDirectory* directory_;
  std::unique_ptr<Classifier> exporter_classifier_;   // null: no rules
  std::unique_ptr<Classifier> interface_classifier_;  // null: no rules
  NetworkTable networks_;
  NetworkAttributes no_network_;  // empty views for addresses outside every network
  std::unique_ptr<GeoIp> geoip_;  // null: no database configured
  bool address_work_ = false;     // networks or GeoIP configured
  std::vector<AsSource> as_sources_;
  Counter& unknown_exporter_;
  Counter& unknown_interface_;
  Counter& exporter_misses_;  // session cache misses, to size the caches
  Counter& interface_misses_;
  Counter& address_misses_;
};

}  // namespace sluice::transforms
