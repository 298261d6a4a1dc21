// Fuzzes the csv record decoder (with a header line, and with a columns list and another delimiter):
// records always have one field per column, rejections a "csv: " reason; nothing crashes or hangs.
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

struct CsvSink : RecordSink {
  std::size_t columns = 0;
  void record(LogEvent& event) override {
    if (columns && event.field_count() != columns) __builtin_trap();
    if (event.field_count() > 16) __builtin_trap();
    for (std::size_t i = 0; i < event.field_count(); ++i) {
      if (event.field(i).type != FieldType::string) __builtin_trap();
    }
  }
  void reject(std::string_view reason, std::span<const std::byte>) override {
    if (reason.rfind("csv: ", 0) != 0 || reason.size() <= 5) __builtin_trap();
  }
};

std::unique_ptr<RecordDecoder> make(bool header) {
  DecoderSpec spec;
  spec.kind = "csv";
  spec.max_fields = 16;
  if (header) {
    spec.csv_header = true;
  } else {
    spec.csv_delimiter = ';';
    spec.csv_columns = {"a", "b", "c"};
  }
  return make_record_decoder_factory(spec)->make();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static auto with_header = make(true);
  static auto with_columns = make(false);
  static LogEvent event;
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  CsvSink sink;
  with_header->decode(bytes, event, sink);
  sink.columns = 3;
  with_columns->decode(bytes, event, sink);
  return 0;
}
