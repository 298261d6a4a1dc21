// RecordDecoder: turns one bus message of an ingestion job into records of flattened, typed fields.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/reader.hpp"
#include "transforms/log_event.hpp"

namespace sluice::decoders::records {

// What a job's `decoder:` section says (docs/jobs.md has the schema).
//   kind: json | json-lines | csv | avro | protobuf
struct DecoderSpec {
  std::string kind = "json";
  // csv
  char csv_delimiter = ',';
  bool csv_header = false;                 // the first line of each message names the columns
  std::vector<std::string> csv_columns;    // field names by position (when there is no header)
  // avro
  std::string avro_schema_file;            // the writer's schema (.avsc); plain binary datums
  bool confluent_wire_format = false;      // avro/protobuf: 0x00, 4-byte schema id, [protobuf indexes], datum
  std::map<int, std::string> avro_schema_files_by_id;  // Confluent schema ids known from files
  std::string schema_registry_url;         // where other ids are looked up (GET /schemas/ids/<id>)
  // protobuf
  std::string descriptor_set_file;         // a FileDescriptorSet (protoc --descriptor_set_out --include_imports)
  std::string message_type;                // fully qualified, "pkg.Message"
  // all
  std::size_t max_fields = 1024;           // per record; more is a rejection
  std::size_t max_depth = 32;
};

// Reads `decoder:` of a job, reporting problems with their key paths through the reader.
DecoderSpec read_decoder_spec(config::ConfigReader& reader);

// Takes a record's fields as values instead of an event, for a destination that only reads some named
// fields (a job without rules, mapped to columns): building the event would cost more than decoding.
// `text` stays valid until the record is handed over.
class FieldSlots {
 public:
  static constexpr std::uint32_t none = UINT32_MAX;
  virtual ~FieldSlots() = default;
  virtual std::uint32_t slot_of(std::string_view field) const = 0;  // none: nothing reads this field
  virtual void clear_slots() = 0;                                   // a new record: every slot empty
  virtual void set_slot(std::uint32_t slot, std::string_view text, transforms::FieldType type) = 0;
  // A number as its value: the same as set_slot() with its text (json_number_text) and FieldType::number,
  // but a column of a numeric type takes it without printing and parsing it. Doubles are finite.
  virtual void set_slot_integer(std::uint32_t slot, std::int64_t value) = 0;
  virtual void set_slot_double(std::uint32_t slot, double value) = 0;
};

// The text of a number in a decoded record: decimal digits for an integer; for a finite double the
// shortest text that reads back the same, in exponent form when it would be a long digit string
// ("149902296004840914944" is taken for a 64-bit integer by JSON readers and refused).
std::string_view json_number_text(std::int64_t value, std::span<char, 32> buffer);
std::string_view json_number_text(double value, std::span<char, 32> buffer);

// Told about every record of a message, in order. `event` is reused after the call returns.
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void record(transforms::LogEvent& event) = 0;
  // Decoders that can (JSON) fill these slots and call record_slots() instead of record(); the result
  // must be the same as the event's would be.
  virtual FieldSlots* slots() { return nullptr; }
  virtual void record_slots() {}
  // One record (or the whole message) could not be decoded: `reason` says why, for an operator
  // ("avro: union branch 7 out of range at field user.id"); `bytes` is what was rejected.
  virtual void reject(std::string_view reason, std::span<const std::byte> bytes) = 0;
};

// One per partition (keeps scratch state; not thread-safe). Fields are named by their dotted path
// ("user.address.city"); numbers, booleans and nulls carry their FieldType, arrays and maps are
// written as JSON text with FieldType::json. The event's fields are cleared before each record;
// identity members (source, offset...) are left to the caller.
class RecordDecoder {
 public:
  virtual ~RecordDecoder() = default;
  virtual void decode(std::span<const std::byte> payload, transforms::LogEvent& event, RecordSink& sink) = 0;
};

// Shared, read-only state built once per job (parsed schemas, descriptor pools); makes decoders.
// Throws std::runtime_error naming the file and what is wrong with it when a schema cannot be loaded.
class RecordDecoderFactory {
 public:
  virtual ~RecordDecoderFactory() = default;
  virtual std::unique_ptr<RecordDecoder> make() const = 0;
};
std::unique_ptr<RecordDecoderFactory> make_record_decoder_factory(const DecoderSpec& spec);

}  // namespace sluice::decoders::records
