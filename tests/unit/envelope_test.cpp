#include <gtest/gtest.h>

#include "core/envelope.hpp"

namespace sluice {
namespace {

TEST(Envelope, RoundTripKeepsEveryField) {
  const std::string payload = "hello netflow";
  Envelope in;
  in.received_ns = 1'700'000'000'123'456'789ULL;
  in.kind = SourceKind::sflow;
  in.source_address = *ip6_parse("192.0.2.7");
  in.source_port = 40123;
  in.payload = std::as_bytes(std::span(payload));
  std::vector<std::byte> wire;
  encode_envelope(in, wire);
  ASSERT_EQ(wire.size(), kEnvelopeHeaderSize + payload.size());

  Envelope out;
  ASSERT_EQ(decode_envelope(wire, out), EnvelopeError::none);
  EXPECT_EQ(out.received_ns, in.received_ns);
  EXPECT_EQ(out.kind, SourceKind::sflow);
  EXPECT_EQ(ip6_to_string(out.source_address), "192.0.2.7");
  EXPECT_EQ(out.source_port, 40123);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(out.payload.data()), out.payload.size()), payload);
}

TEST(Envelope, RejectsTruncatedAndUnknownVersions) {
  std::vector<std::byte> wire(kEnvelopeHeaderSize - 1);
  Envelope out;
  EXPECT_EQ(decode_envelope(wire, out), EnvelopeError::truncated);
  wire.assign(kEnvelopeHeaderSize, std::byte{0});
  EXPECT_EQ(decode_envelope(wire, out), EnvelopeError::bad_version);
  wire[0] = std::byte{1};
  wire[1] = std::byte{99};
  EXPECT_EQ(decode_envelope(wire, out), EnvelopeError::bad_kind);
}

TEST(Envelope, Ip6FormatsMappedIpv4AndIpv6) {
  EXPECT_EQ(ip6_to_string(ip6_from_v4(0x0a000001)), "10.0.0.1");
  EXPECT_EQ(ip6_to_string(*ip6_parse("2001:db8::1")), "2001:db8::1");
  EXPECT_FALSE(ip6_parse("not-an-address"));
}

}  // namespace
}  // namespace sluice
