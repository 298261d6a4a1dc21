#include "decoders/netflow.hpp"

#include "core/bytes.hpp"
#include "decoders/ipfix.hpp"
#include "decoders/netflow_v5.hpp"
#include "decoders/netflow_v9.hpp"

namespace sluice {

DecodeStatus decode_netflow(const Envelope& env, TemplateCache& cache, FlowRecord& scratch, FlowOutput& out) {
  if (env.payload.size() < 2) return DecodeStatus::truncated;
  const auto* p = reinterpret_cast<const std::uint8_t*>(env.payload.data());
  switch (load_be16(p)) {
    case 5: return decode_netflow_v5(env, scratch, out);
    case 9: return decode_netflow_v9(env, cache, scratch, out);
    case 10: return decode_ipfix(env, cache, scratch, out);
    default: return DecodeStatus::bad_version;
  }
}

}  // namespace sluice
