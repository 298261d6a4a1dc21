// Fuzzes the JSON decoders' slot path against their event path: for any input, a mapped job's writer
// fed with slots produces the same rows, Native bytes and rejections as one fed with events.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "decoders/records/record_decoder.hpp"
#include "pipeline/jobs/column_mapping.hpp"

using namespace sluice::decoders::records;
using namespace sluice::pipeline::jobs;

namespace {

MappingSpec mapping() {
  MappingSpec spec;
  spec.table.push_back('t');
  spec.columns = {
      {"id", "UInt64", "", std::nullopt, false},
      {"a", "String", "", std::string("none"), false},
      {"b", "Nullable(Int32)", "", std::nullopt, false},
      {"c", "Float64", "c.d", std::nullopt, false},
      {"e", "Bool", "", std::nullopt, false},
      {"t", "DateTime64(3)", "", std::nullopt, false},
      {"x", "Array(String)", "", std::nullopt, false},
      {"m", "Map(String, String)", "", std::nullopt, false},
      {"k", "LowCardinality(String)", "_key", std::nullopt, false},
      // Numbers reach the slots as values: each numeric kind must take them as it takes their text.
      {"u", "UInt8", "", std::nullopt, false},
      {"i", "Int16", "", std::nullopt, false},
      {"f", "Float32", "", std::nullopt, false},
      {"d", "Date", "", std::nullopt, false},
      {"s", "DateTime", "", std::nullopt, false},
      {"n", "Nullable(DateTime64(9))", "", std::nullopt, false},
      {"v", "String", "", std::nullopt, false},
  };
  return spec;
}

struct Feed final : RecordSink {
  MappedRowWriter* writer = nullptr;
  bool use_slots = false;
  std::vector<std::string> refused;
  MessageMeta meta;
  void record(sluice::transforms::LogEvent& event) override {
    if (auto r = writer->append(event, meta)) refused.push_back(r->reason);
  }
  FieldSlots* slots() override { return use_slots ? writer : nullptr; }
  void record_slots() override {
    if (auto r = writer->append_slots(meta)) refused.push_back(r->reason);
  }
  void reject(std::string_view reason, std::span<const std::byte>) override { refused.emplace_back(reason); }
};

struct Path {
  std::unique_ptr<RecordDecoder> decoder;
  std::unique_ptr<MappedRowWriter> writer;
  Feed feed;
  sluice::transforms::LogEvent event;
  Path(const char* kind, bool use_slots) {
    DecoderSpec spec;
    spec.kind = kind;
    spec.max_fields = 8;
    spec.max_depth = 6;
    decoder = make_record_decoder_factory(spec)->make();
    writer = compile_mapping(mapping(), sluice::ClickHouseDialect::modern)->make_writer();
    feed.writer = writer.get();
    feed.use_slots = use_slots;
    feed.meta.key = "key";
  }
};

void compare(Path& events, Path& slots, std::span<const std::byte> bytes) {
  events.feed.refused.clear();
  slots.feed.refused.clear();
  events.decoder->decode(bytes, events.event, events.feed);
  slots.decoder->decode(bytes, slots.event, slots.feed);
  if (events.writer->rows() != slots.writer->rows()) __builtin_trap();
  if (events.feed.refused != slots.feed.refused) __builtin_trap();
  if (events.writer->take().body != slots.writer->take().body) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Path json_events("json", false), json_slots("json", true);
  static Path lines_events("json-lines", false), lines_slots("json-lines", true);
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  compare(json_events, json_slots, bytes);
  compare(lines_events, lines_slots, bytes);
  return 0;
}
