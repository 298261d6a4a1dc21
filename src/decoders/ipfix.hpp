// IPFIX decoder (RFC 7011): template, options template and data sets, variable-length and enterprise
// fields, template withdrawals; shares its template cache and field mapping with NetFlow v9.
#pragma once

#include <cstddef>

#include "core/envelope.hpp"
#include "core/flow.hpp"
#include "decoders/flow_decoder.hpp"
#include "decoders/template_cache.hpp"

namespace sluice {

inline constexpr std::size_t kIpfixHeaderSize = 16;

// Decodes one IPFIX message. Same contract as decode_netflow_v9; the message length in the header
// bounds the sets (a datagram shorter than it is truncated, bytes after it are ignored).
DecodeStatus decode_ipfix(const Envelope& env, TemplateCache& cache, FlowRecord& scratch, FlowOutput& out);

}  // namespace sluice
