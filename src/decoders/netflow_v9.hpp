// NetFlow v9 decoder (RFC 3954): template, options template and data flowsets with a shared template cache.
#pragma once

#include <cstddef>

#include "core/envelope.hpp"
#include "core/flow.hpp"
#include "decoders/flow_decoder.hpp"
#include "decoders/template_cache.hpp"

namespace sluice {

inline constexpr std::size_t kNetflowV9HeaderSize = 20;

// Decodes one v9 datagram. Templates are learned into `cache` (and any data held for them is decoded
// and emitted here); data flowsets without a known template are held in the cache. Flowsets are
// processed in order: one whose length does not fit stops the datagram (earlier ones stay emitted).
// The header's count is not trusted (exporters disagree on what it counts).
DecodeStatus decode_netflow_v9(const Envelope& env, TemplateCache& cache, FlowRecord& scratch, FlowOutput& out);

}  // namespace sluice
