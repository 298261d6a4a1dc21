// libFuzzer target: arbitrary bytes as an sFlow v5 datagram, decoded with and without VXLAN decoding.
#include <cstddef>
#include <cstdint>
#include <span>

#include "decoders/sflow.hpp"

namespace {

// Touches what it is given so the sanitizers see every field the decoder wrote.
class Discard : public sluice::FlowOutput {
 public:
  void emit(sluice::FlowRecord& record) override {
    ++emitted_;
    sink_ ^= record.bytes ^ record.src_port ^ record.dst_as ^ record.mpls_labels[record.mpls_labels_len ? record.mpls_labels_len - 1 : 0] ^
             record.dst_as_path[record.dst_as_path_len ? record.dst_as_path_len - 1 : 0] ^ record.src_addr[15];
  }
  std::uint64_t emitted_ = 0;
  std::uint64_t sink_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  sluice::Envelope env;
  env.received_ns = 1'700'000'000'000'000'000ULL;
  env.kind = sluice::SourceKind::sflow;
  env.source_address = sluice::ip6_from_v4(0xc0000201);
  env.source_port = 6343;
  env.payload = std::as_bytes(std::span(data, size));
  for (const bool vxlan : {false, true}) {
    sluice::SflowOptions options;
    options.decode_vxlan = vxlan;
    sluice::SflowCounts counts;
    sluice::FlowRecord scratch;
    Discard out;
    const auto status = sluice::decode_sflow(env, scratch, out, options, &counts);
    // Every outcome must have a label for the rejection metric, and a rejected datagram emits nothing.
    if (sluice::to_string(status)[0] == '\0') __builtin_trap();
    if (status != sluice::DecodeStatus::ok && out.emitted_ != 0) __builtin_trap();
    if (status == sluice::DecodeStatus::ok && out.emitted_ != counts.flow_samples) __builtin_trap();
    if (scratch.mpls_labels_len > sluice::FlowRecord::kMaxMplsLabels ||
        scratch.dst_as_path_len > sluice::FlowRecord::kMaxAsPath ||
        scratch.dst_communities_len > sluice::FlowRecord::kMaxCommunities) {
      __builtin_trap();
    }
  }
  return 0;
}
