// The NetFlow/IPFIX version dispatcher: one entry point for every datagram of a netflow source.
#pragma once

#include "core/envelope.hpp"
#include "core/flow.hpp"
#include "decoders/flow_decoder.hpp"
#include "decoders/template_cache.hpp"

namespace sluice {

// Reads the version field and hands the datagram to its decoder: 5 → v5, 9 → NetFlow v9, 10 → IPFIX
// (both with the outlet's shared template cache); anything else → bad_version.
DecodeStatus decode_netflow(const Envelope& env, TemplateCache& cache, FlowRecord& scratch, FlowOutput& out);

}  // namespace sluice
