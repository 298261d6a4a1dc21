#include "decoders/records/record_decoder.hpp"

#include <fmt/format.h>

#include <charconv>
#include <stdexcept>

#include "decoders/records/record_common.hpp"

namespace sluice::decoders::records {

namespace {
constexpr std::int64_t kMaxFieldsLimit = 100000;
constexpr std::int64_t kMaxDepthLimit = 256;
}  // namespace

DecoderSpec read_decoder_spec(config::ConfigReader& reader) {
  DecoderSpec spec;
  spec.kind = reader.one_of("kind", spec.kind, {"json", "json-lines", "csv", "avro", "protobuf"});
  const std::string& kind = spec.kind;

  if (const auto d = reader.optional_string("delimiter")) {
    if (d->size() == 1 && *d != "\"" && *d != "\n" && *d != "\r") spec.csv_delimiter = (*d)[0];
    else if (*d == "\\t" || *d == "tab") spec.csv_delimiter = '\t';
    else reader.error("delimiter", fmt::format("expected one character other than a quote or line end (or \"\\t\"), got '{}'", *d));
  }
  spec.csv_header = reader.boolean("header", false);
  spec.csv_columns = reader.string_list("columns");

  spec.avro_schema_file = reader.string("schema_file", "");
  for (const auto& [id_text, file] : reader.string_map("schemas")) {
    int id = 0;
    const auto [end, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
    if (ec != std::errc() || end != id_text.data() + id_text.size() || id < 0) {
      reader.error("schemas." + id_text, "schema ids are non-negative integers (the Confluent schema id)");
      continue;
    }
    spec.avro_schema_files_by_id[id] = file;
  }
  spec.schema_registry_url = reader.string("schema_registry_url", "");
  spec.confluent_wire_format = reader.boolean("confluent_wire_format", false);
  spec.descriptor_set_file = reader.string("descriptor_set", "");
  spec.message_type = reader.string("message", "");
  spec.max_fields = static_cast<std::size_t>(reader.integer("max_fields", static_cast<std::int64_t>(spec.max_fields), 1, kMaxFieldsLimit));
  spec.max_depth = static_cast<std::size_t>(reader.integer("max_depth", static_cast<std::int64_t>(spec.max_depth), 1, kMaxDepthLimit));

  // Options of one kind given to another are mistakes worth reporting: they would be silently ignored.
  const auto only_for = [&](const char* key, bool given, std::string_view kinds) {
    if (given) reader.error(key, fmt::format("only used when kind is {} (kind is {})", kinds, kind));
  };
  const bool csv = kind == "csv", avro = kind == "avro", proto = kind == "protobuf";
  only_for("delimiter", !csv && reader.has("delimiter"), "csv");
  only_for("header", !csv && reader.has("header"), "csv");
  only_for("columns", !csv && reader.has("columns"), "csv");
  only_for("schema_file", !avro && reader.has("schema_file"), "avro");
  only_for("schemas", !avro && reader.has("schemas"), "avro");
  only_for("schema_registry_url", !avro && reader.has("schema_registry_url"), "avro");
  only_for("confluent_wire_format", !avro && !proto && reader.has("confluent_wire_format"), "avro or protobuf");
  only_for("descriptor_set", !proto && reader.has("descriptor_set"), "protobuf");
  only_for("message", !proto && reader.has("message"), "protobuf");

  if (csv && !spec.csv_header && spec.csv_columns.empty())
    reader.error("columns", "required when kind is csv and header is false (the names of the fields by position)");
  if (avro) {
    if (!spec.schema_registry_url.empty() && !spec.confluent_wire_format)
      reader.error("schema_registry_url", "only used with confluent_wire_format: true (plain datums carry no schema id)");
    else if (!spec.schema_registry_url.empty() && spec.schema_registry_url.rfind("http://", 0) != 0 &&
             spec.schema_registry_url.rfind("https://", 0) != 0)
      reader.error("schema_registry_url", fmt::format("expected an http:// or https:// URL, got '{}'", spec.schema_registry_url));
    if (spec.confluent_wire_format) {
      if (spec.avro_schema_files_by_id.empty() && spec.schema_registry_url.empty())
        reader.error("schemas", "required when confluent_wire_format is true and there is no schema_registry_url (schema id: .avsc file)");
    } else {
      if (spec.avro_schema_file.empty())
        reader.error("schema_file", "required when kind is avro (or set confluent_wire_format: true with schemas)");
      if (!spec.avro_schema_files_by_id.empty())
        reader.error("schemas", "only used with confluent_wire_format: true (plain datums use schema_file)");
    }
    if (spec.confluent_wire_format && !spec.avro_schema_file.empty())
      reader.error("schema_file", "not used with confluent_wire_format: true (give the schema under schemas by id)");
  }
  if (proto) {
    if (spec.descriptor_set_file.empty())
      reader.error("descriptor_set", "required when kind is protobuf (made by protoc --include_imports --descriptor_set_out)");
    if (spec.message_type.empty()) reader.error("message", "required when kind is protobuf (the fully qualified message name)");
  }
  reader.finish();
  return spec;
}

std::unique_ptr<RecordDecoderFactory> make_record_decoder_factory(const DecoderSpec& spec) {
  if (spec.kind == "json") return detail::make_json_factory(spec, false);
  if (spec.kind == "json-lines") return detail::make_json_factory(spec, true);
  if (spec.kind == "csv") return detail::make_csv_factory(spec);
  if (spec.kind == "avro") return detail::make_avro_factory(spec);
  if (spec.kind == "protobuf") return detail::make_protobuf_factory(spec);
  throw std::runtime_error(fmt::format("decoder: unknown kind '{}' (json, json-lines, csv, avro, protobuf)", spec.kind));
}

std::string_view json_number_text(std::int64_t value, std::span<char, 32> buffer) {
  const auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  return {buffer.data(), static_cast<std::size_t>(end - buffer.data())};
}

std::string_view json_number_text(double value, std::span<char, 32> buffer) {
  char* const begin = buffer.data();
  char* end = std::to_chars(begin, begin + buffer.size(), value).ptr;
  const std::string_view shortest(begin, static_cast<std::size_t>(end - begin));
  if (shortest.size() > 16 && shortest.find_first_of(".e") == std::string_view::npos) {
    end = std::to_chars(begin, begin + buffer.size(), value, std::chars_format::scientific).ptr;
  }
  return {begin, static_cast<std::size_t>(end - begin)};
}

}  // namespace sluice::decoders::records
