// Fuzzes the json and json-lines record decoders: any input gives records within the field limit whose
// typed values are valid JSON again, or rejections with a "json: " reason; nothing crashes or hangs.
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

std::unique_ptr<RecordDecoder> make(const char* kind) {
  DecoderSpec spec;
  spec.kind = kind;
  spec.max_fields = 64;
  spec.max_depth = 8;
  return make_record_decoder_factory(spec)->make();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static auto json = make("json");
  static auto lines = make("json-lines");
  static CheckSink sink;
  static LogEvent event;
  sink.max_fields = 64;
  sink.prefix = "json: ";
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  json->decode(bytes, event, sink);
  lines->decode(bytes, event, sink);
  return 0;
}
