// Flow decoder interface: what every flow decoder (NetFlow v5/v9, IPFIX, sFlow) reports and emits into.
#pragma once

#include "core/flow.hpp"

namespace sluice {

// Receives each decoded flow. The record is the decoder's scratch: the sink copies what it keeps
// (FlowBatch::append does) and may enrich it in place before that.
class FlowOutput {
 public:
  virtual ~FlowOutput() = default;
  virtual void emit(FlowRecord& record) = 0;
};

// The outcome of decoding one datagram. Anything but `ok` means nothing (or, for errors found after
// the header, nothing further) was emitted, and the outlet counts it under to_string(status). NetFlow v9
// and IPFIX go on past a data set whose template is unknown and report template_unknown at the end.
enum class DecodeStatus {
  ok,
  truncated,            // shorter than its header or its declared records
  bad_version,          // not a flow export version sluice knows at all
  unsupported_version,  // a known version whose decoder is not wired in (yet)
  bad_count,            // header record count outside what the format allows
  bad_length,           // a set/sample length that does not fit the datagram
  template_unknown,     // data set whose template has not been seen (NetFlow v9 / IPFIX)
  bad_template,         // a (options) template record that cannot describe a record
  malformed,            // any other structural error
  bad_address_type,     // an address type outside what the format defines (sFlow agent/next hop)
};

// A short label for metrics ("truncated", "bad_version", ...).
inline const char* to_string(DecodeStatus status) {
  switch (status) {
    case DecodeStatus::ok: return "ok";
    case DecodeStatus::truncated: return "truncated";
    case DecodeStatus::bad_version: return "bad_version";
    case DecodeStatus::unsupported_version: return "unsupported_version";
    case DecodeStatus::bad_count: return "bad_count";
    case DecodeStatus::bad_length: return "bad_length";
    case DecodeStatus::template_unknown: return "template_unknown";
    case DecodeStatus::bad_template: return "bad_template";
    case DecodeStatus::malformed: return "malformed";
    case DecodeStatus::bad_address_type: return "bad_address_type";
  }
  return "unknown";
}

}  // namespace sluice
