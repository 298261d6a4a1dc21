// InterfaceDirectory: what the flow enricher may ask about exporters and their interfaces, answered
// from what is known now (static configuration, SNMP cache) without ever waiting on the network.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/envelope.hpp"

namespace sluice::transforms {

struct ExporterInfo {
  std::string name;  // sysName, or the configured name
};

struct InterfaceInfo {
  std::string name;         // ifName
  std::string description;  // ifAlias (what operators type on the interface)
  std::uint32_t speed = 0;  // Mbit/s (ifHighSpeed, or ifSpeed / 1e6)
};

// Entries are immutable once published, so a caller may keep the pointer (and views into its strings)
// for as long as it holds it. A null answer means "not known yet": the directory may fetch it in the
// background, and the caller goes on with what it has.
class InterfaceDirectory {
 public:
  virtual ~InterfaceDirectory() = default;
  virtual std::shared_ptr<const ExporterInfo> exporter(const Ip6& exporter_address) = 0;
  virtual std::shared_ptr<const InterfaceInfo> interface(const Ip6& exporter_address, std::uint32_t if_index) = 0;
};

}  // namespace sluice::transforms
