// Templates of NetFlow v9 / IPFIX and the one mapping of IANA information elements onto FlowRecord.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/envelope.hpp"
#include "core/flow.hpp"
#include "decoders/flow_decoder.hpp"

namespace sluice {

class TemplateCache;

// IPFIX variable-length marker (RFC 7011 §7): the record carries a 1- or 3-byte length before the value.
inline constexpr std::uint16_t kVariableLength = 0xffff;
// NetFlow v9 options scope fields (system, interface, line card, ...) live in their own numbering,
// which overlaps element ids 1..5; they are tagged with this pseudo enterprise so they are never mapped.
inline constexpr std::uint32_t kV9ScopeEnterprise = 0xffffffff;
// At most this many fields per template: bounds the work per record and the cache's memory.
inline constexpr std::size_t kMaxTemplateFields = 512;

struct TemplateField {
  std::uint16_t id = 0;  // element id without the enterprise bit
  std::uint16_t length = 0;
  std::uint32_t enterprise = 0;  // 0: IANA
  bool operator==(const TemplateField&) const = default;
};

struct FlowTemplate {
  std::vector<TemplateField> fields;
  std::uint16_t scope_count = 0;  // options templates: how many leading fields are scope fields
  bool options = false;
  std::size_t min_record_length = 0;  // fixed lengths plus one byte per variable-length field

  // Computes min_record_length; false when a record could be empty (it would never advance).
  bool finalize();
  bool same_layout(const FlowTemplate& o) const {
    return fields == o.fields && scope_count == o.scope_count && options == o.options;
  }
};

// What a data set needs from its datagram's header, kept with a set that waits for its template.
struct ExportContext {
  std::uint64_t received_ns = 0;
  Ip6 exporter{};
  std::uint16_t version = 0;  // 9 or 10
  std::uint32_t domain = 0;   // v9 source id / IPFIX observation domain
  std::uint32_t export_secs = 0;
  std::uint32_t sys_uptime_ms = 0;  // v9 only
};

// Decodes the records of one data set (the bytes after the 4-byte set header) with `tpl`. Flow
// templates emit every record; options templates teach `cache` sampling rates and system init times.
// Trailing bytes shorter than a record are padding. A variable length running past the set gives
// bad_length (records before it have been emitted).
DecodeStatus decode_data_set(const ExportContext& ctx, const FlowTemplate& tpl, std::span<const std::uint8_t> body,
                             TemplateCache& cache, FlowRecord& scratch, FlowOutput& out);

// Stores a (re)defined template and decodes the data sets that were held waiting for it. Held data
// was accepted when it arrived, so a fault in it now is not reported against the current export.
void learn_template(const ExportContext& ctx, std::uint16_t id, FlowTemplate tpl, TemplateCache& cache,
                    FlowRecord& scratch, FlowOutput& out);

}  // namespace sluice
