// NetFlow v5 decoder (fixed 24-byte header, 48-byte records); the version dispatcher is in netflow.hpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/envelope.hpp"
#include "core/flow.hpp"
#include "decoders/flow_decoder.hpp"
#include "decoders/netflow.hpp"

namespace sluice {

inline constexpr std::size_t kNetflowV5HeaderSize = 24;
inline constexpr std::size_t kNetflowV5RecordSize = 48;
inline constexpr std::uint16_t kNetflowV5MaxCount = 30;

// Decodes one NetFlow v5 datagram (the envelope payload). Every record is written into `scratch`
// (reset first) and emitted. The whole datagram is validated before the first emit, so a rejected
// datagram emits nothing.
DecodeStatus decode_netflow_v5(const Envelope& env, FlowRecord& scratch, FlowOutput& out);

}  // namespace sluice
