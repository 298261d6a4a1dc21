// The etcd gateway's encodings: base64 keys and values, int64 as strings, prefix range ends, errors.
#include <gtest/gtest.h>

#include "coord/etcd_client.hpp"

namespace sluice::coord {
namespace {

using namespace etcd_json;

TEST(EtcdJson, Base64KnownVectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("/sluice/logs/h/a"), "L3NsdWljZS9sb2dzL2gvYQ==");
  EXPECT_EQ(base64_decode("Zm9vYmE="), "fooba");
  EXPECT_EQ(base64_decode("Zg=="), "f");
  EXPECT_EQ(base64_decode(""), "");
}

TEST(EtcdJson, Base64RoundTripsEveryByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += char(i);
  for (std::size_t len = 0; len <= all.size(); len += 37) {
    const auto part = all.substr(all.size() - len);
    EXPECT_EQ(base64_decode(base64_encode(part)), part) << len;
  }
  EXPECT_EQ(base64_encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(EtcdJson, Base64RejectsWhatIsNotBase64) {
  EXPECT_EQ(base64_decode("Zg="), std::nullopt);       // length not a multiple of 4
  EXPECT_EQ(base64_decode("Z==="), std::nullopt);      // padding too early
  EXPECT_EQ(base64_decode("Zm9v!A=="), std::nullopt);  // not in the alphabet
  EXPECT_EQ(base64_decode("Zg==Zg=="), std::nullopt);  // padding in the middle
  EXPECT_EQ(base64_decode("Z=g="), std::nullopt);      // data after padding
  EXPECT_EQ(base64_decode("Zm-_"), std::nullopt);      // URL alphabet is not what etcd sends
}

TEST(EtcdJson, PrefixRangeEnd) {
  EXPECT_EQ(prefix_range_end("/sluice/logs/h/"), "/sluice/logs/h0");
  EXPECT_EQ(prefix_range_end("a"), "b");
  EXPECT_EQ(prefix_range_end("a\xff"), "b");
  EXPECT_EQ(prefix_range_end("\xff\xff"), std::string(1, '\0'));
  EXPECT_EQ(prefix_range_end(""), std::string(1, '\0'));
}

TEST(EtcdJson, Int64FieldsAsStringsOrNumbers) {
  const auto j = nlohmann::json::parse(R"({"revision":"9223372036854775807","n":42,"neg":"-7","bad":"12x","null":null})");
  EXPECT_EQ(int64_field(j, "revision"), 9223372036854775807LL);
  EXPECT_EQ(int64_field(j, "n"), 42);
  EXPECT_EQ(int64_field(j, "neg"), -7);
  EXPECT_EQ(int64_field(j, "absent"), 0);  // proto3 leaves zero values out
  EXPECT_EQ(int64_field(j, "null"), 0);
  EXPECT_THROW(int64_field(j, "bad"), EtcdError);
}

TEST(EtcdJson, KeyValueFromRangeAnswer) {
  // As etcd 3.4's gateway answers /v3/kv/range.
  const auto answer = nlohmann::json::parse(
      R"({"header":{"cluster_id":"15118495548433857066","revision":"2"},"kvs":[{"key":"L3NsdWljZS9sb2dzL2gvYQ==",)"
      R"("create_revision":"2","mod_revision":"5","version":"1","value":"eyJpbmNsdWRlIjpbIi92YXIvbG9nLyoubG9nIl19",)"
      R"("lease":"4111120150184444681"}],"count":"1"})");
  const auto kv = key_value(answer["kvs"][0]);
  EXPECT_EQ(kv.key, "/sluice/logs/h/a");
  EXPECT_EQ(kv.value, R"({"include":["/var/log/*.log"]})");
  EXPECT_EQ(kv.mod_revision, 5);
  EXPECT_EQ(kv.lease, 4111120150184444681LL);
  // A delete event carries no value.
  const auto deleted = key_value(nlohmann::json::parse(R"({"key":"YQ==","mod_revision":"4"})"));
  EXPECT_EQ(deleted.key, "a");
  EXPECT_EQ(deleted.value, "");
  EXPECT_EQ(deleted.mod_revision, 4);
  EXPECT_THROW(key_value(nlohmann::json::parse(R"({"key":"not base64!"})")), EtcdError);
}

TEST(EtcdJson, ErrorShapes) {
  const auto unary = error_of(nlohmann::json::parse(
      R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})"));
  ASSERT_TRUE(unary);
  EXPECT_EQ(unary->first, kEtcdNotFound);
  EXPECT_EQ(unary->second, "etcdserver: requested lease not found");
  const auto stream = error_of(nlohmann::json::parse(
      R"({"error":{"grpc_code":14,"http_code":503,"message":"transport is closing","http_status":"Service Unavailable"}})"));
  ASSERT_TRUE(stream);
  EXPECT_EQ(stream->first, kEtcdUnavailable);
  EXPECT_EQ(stream->second, "transport is closing");
  EXPECT_EQ(error_of(nlohmann::json::parse(R"({"result":{"created":true}})")), std::nullopt);
  EXPECT_EQ(error_of(nlohmann::json::parse(R"([1,2])")), std::nullopt);
}

}  // namespace
}  // namespace sluice::coord
