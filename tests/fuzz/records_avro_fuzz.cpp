// Fuzzes the avro record decoder, plain datums of a wide schema and Confluent-framed datums of three
// schemas (one recursive): records within the limits with valid JSON values, or rejections with an
// "avro: " reason; nothing crashes, hangs or allocates without bound.
#include <unistd.h>

#include <fstream>
#include <simdjson.h>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "decoders/records/record_decoder.hpp"

using namespace sluice::decoders::records;
using sluice::transforms::FieldType;
using sluice::transforms::LogEvent;
using sluice::transforms::LogField;

namespace {

// Every record within the limits with typed values that are valid JSON; every rejection with a reason.
struct CheckSink : RecordSink {
  std::size_t max_fields = 0;
  std::string_view prefix;
  simdjson::dom::parser parser;
  void record(LogEvent& event) override {
    if (event.field_count() > max_fields) __builtin_trap();
    for (std::size_t i = 0; i < event.field_count(); ++i) {
      const LogField& f = event.field(i);
      if (f.type == FieldType::null && !f.value.empty()) __builtin_trap();
      if (f.type == FieldType::string || f.type == FieldType::null) continue;
      const simdjson::padded_string copy(f.value);
      simdjson::dom::element e;
      if (parser.parse(copy).get(e) != simdjson::SUCCESS) __builtin_trap();
    }
  }
  void reject(std::string_view reason, std::span<const std::byte>) override {
    if (reason.rfind(prefix, 0) != 0 || reason.size() <= prefix.size()) __builtin_trap();
  }
};

// The same schemas as tests/fixtures/jobs/user.avsc and event.avsc (the seeds were written with them),
// and a recursive one.
constexpr const char* kUser = R"({"type": "record", "name": "User", "namespace": "sluice.test", "fields": [
  {"name": "id", "type": "long"}, {"name": "name", "type": "string"},
  {"name": "email", "type": ["null", "string"], "default": null}, {"name": "active", "type": "boolean"},
  {"name": "age", "type": "int"}, {"name": "score", "type": "double"}, {"name": "ratio", "type": "float"},
  {"name": "address", "type": {"type": "record", "name": "Address", "fields": [
    {"name": "city", "type": "string"}, {"name": "zip", "type": ["null", "int"]}]}},
  {"name": "tags", "type": {"type": "array", "items": "string"}},
  {"name": "counts", "type": {"type": "map", "values": "long"}},
  {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["ADMIN", "MEMBER", "GUEST"]}},
  {"name": "raw", "type": "bytes"}, {"name": "hash", "type": {"type": "fixed", "name": "Hash4", "size": 4}},
  {"name": "created", "type": {"type": "long", "logicalType": "timestamp-millis"}}]})";
constexpr const char* kEvent = R"({"type": "record", "name": "Event", "namespace": "sluice.test", "fields": [
  {"name": "host", "type": "string"}, {"name": "value", "type": ["null", "long", "string"]},
  {"name": "points", "type": {"type": "array", "items": {"type": "record", "name": "Point", "fields": [
    {"name": "x", "type": "int"}, {"name": "label", "type": ["null", "string"]}]}}}]})";
constexpr const char* kNode = R"({"type": "record", "name": "Node", "fields": [
  {"name": "v", "type": "int"}, {"name": "next", "type": ["null", "Node"]},
  {"name": "kids", "type": {"type": "array", "items": "Node"}},
  {"name": "nothing", "type": {"type": "array", "items": "null"}}]})";

std::string write_temp(const char* name, const char* text) {
  static std::string dir;
  if (dir.empty()) {
    char tmpl[] = "/tmp/sluice-avro-fuzz-XXXXXX";
    if (!mkdtemp(tmpl)) std::abort();
    dir = tmpl;
  }
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::unique_ptr<RecordDecoder> plain, confluent;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  DecoderSpec spec;
  spec.kind = "avro";
  spec.max_fields = 64;
  spec.max_depth = 16;
  spec.avro_schema_file = write_temp("user.avsc", kUser);
  plain = make_record_decoder_factory(spec)->make();
  spec.avro_schema_file.clear();
  spec.confluent_wire_format = true;
  spec.avro_schema_files_by_id = {{3, write_temp("user.avsc", kUser)}, {7, write_temp("event.avsc", kEvent)},
                                  {11, write_temp("node.avsc", kNode)}};
  confluent = make_record_decoder_factory(spec)->make();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static CheckSink sink;
  static LogEvent event;
  sink.max_fields = 64;
  sink.prefix = "avro: ";
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  plain->decode(bytes, event, sink);
  confluent->decode(bytes, event, sink);
  return 0;
}
