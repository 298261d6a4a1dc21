#include "decoders/records/avro_schema.hpp"

#include <avro.h>
#include <fmt/format.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "decoders/records/record_common.hpp"

namespace sluice::decoders::records::detail {
namespace {

// Sheds the avro-c schema into plain nodes; named types are memoized so recursive schemas close
// into cycles instead of recursing forever.
class SchemaCompiler {
 public:
  explicit SchemaCompiler(AvroSchema& out) : out_(out) {}

  std::uint32_t compile(avro_schema_t s) {
    while (s && is_avro_link(s)) s = avro_schema_link_target(s);
    if (!s) throw std::runtime_error("an unresolved named type");
    if (const auto it = named_.find(s); it != named_.end()) return it->second;
    const auto index = static_cast<std::uint32_t>(out_.nodes.size());
    out_.nodes.emplace_back();
    const auto set_type = [&](AvroType t) { out_.nodes[index].type = t; };
    switch (avro_typeof(s)) {
      case AVRO_NULL: set_type(AvroType::null); break;
      case AVRO_BOOLEAN: set_type(AvroType::boolean); break;
      case AVRO_INT32: set_type(AvroType::int32); break;
      case AVRO_INT64: set_type(AvroType::int64); break;
      case AVRO_FLOAT: set_type(AvroType::float32); break;
      case AVRO_DOUBLE: set_type(AvroType::float64); break;
      case AVRO_BYTES: set_type(AvroType::bytes); break;
      case AVRO_STRING: set_type(AvroType::string); break;
      case AVRO_RECORD: {
        set_type(AvroType::record);
        named_[s] = index;
        const std::size_t n = avro_schema_record_size(s);
        for (std::size_t i = 0; i < n; ++i) {
          const char* name = avro_schema_record_field_name(s, static_cast<int>(i));
          const std::uint32_t child = compile(avro_schema_record_field_get_by_index(s, static_cast<int>(i)));
          out_.nodes[index].field_names.emplace_back(name ? name : "");
          out_.nodes[index].children.push_back(child);
        }
        break;
      }
      case AVRO_ENUM: {
        set_type(AvroType::enumeration);
        named_[s] = index;
        const int n = avro_schema_enum_number_of_symbols(s);
        for (int i = 0; i < n; ++i) {
          const char* sym = avro_schema_enum_get(s, i);
          out_.nodes[index].symbols.emplace_back(sym ? sym : "");
        }
        break;
      }
      case AVRO_FIXED:
        set_type(AvroType::fixed);
        named_[s] = index;
        out_.nodes[index].fixed_size = static_cast<std::size_t>(avro_schema_fixed_size(s));
        break;
      case AVRO_ARRAY: {
        set_type(AvroType::array);
        const std::uint32_t child = compile(avro_schema_array_items(s));
        out_.nodes[index].children.push_back(child);
        break;
      }
      case AVRO_MAP: {
        set_type(AvroType::map);
        const std::uint32_t child = compile(avro_schema_map_values(s));
        out_.nodes[index].children.push_back(child);
        break;
      }
      case AVRO_UNION: {
        set_type(AvroType::union_);
        const std::size_t n = avro_schema_union_size(s);
        for (std::size_t i = 0; i < n; ++i) {
          const std::uint32_t child = compile(avro_schema_union_branch(s, static_cast<int>(i)));
          out_.nodes[index].children.push_back(child);
        }
        break;
      }
      default: throw std::runtime_error(fmt::format("unsupported schema type '{}'", avro_schema_type_name(s)));
    }
    return index;
  }

 private:
  AvroSchema& out_;
  std::map<avro_schema_t, std::uint32_t> named_;
};

}  // namespace

AvroSchema parse_avro_schema(std::string_view json, const std::string& origin) {
  avro_schema_t schema = nullptr;
  if (avro_schema_from_json_length(json.data(), json.size(), &schema) != 0 || !schema)
    throw std::runtime_error(fmt::format("{}: not a valid Avro schema: {}", origin, avro_strerror()));
  AvroSchema out;
  try {
    SchemaCompiler compiler(out);
    out.root = compiler.compile(schema);
  } catch (const std::runtime_error& e) {
    avro_schema_decref(schema);
    throw std::runtime_error(fmt::format("{}: {}", origin, e.what()));
  }
  avro_schema_decref(schema);
  return out;
}

AvroSchema load_avro_schema(const std::string& path) {
  const std::string text = read_whole_file(path, "decoder: avro schema file");
  AvroSchema out = parse_avro_schema(text, "decoder: avro schema file " + path);
  out.file = path;
  return out;
}

SchemaRegistry::SchemaRegistry(const std::string& url) : url_(url) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos || (url.compare(0, scheme, "http") != 0 && url.compare(0, scheme, "https") != 0))
    throw std::runtime_error(fmt::format("decoder: schema_registry_url '{}' is not an http:// or https:// URL", url));
  const auto path = url.find('/', scheme + 3);
  base_ = url.substr(0, path);
  if (path != std::string::npos) prefix_ = url.substr(path);
  while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
}

std::size_t SchemaRegistry::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::shared_ptr<const AvroSchema> SchemaRegistry::fetch(int id, std::string& error) {
  // One fetch at a time: decoders that meet a new id together wait for the first answer instead of
  // asking again.
  std::lock_guard lock(mutex_);
  if (const auto it = schemas_.find(id); it != schemas_.end()) return it->second;
  const auto now = std::chrono::steady_clock::now();
  if (const auto it = failures_.find(id); it != failures_.end() && now - it->second.first < kRetryAfter) {
    error = it->second.second;
    return nullptr;
  }
  ++requests_;
  const std::string target = fmt::format("{}/schemas/ids/{}", prefix_, id);
  std::string problem;
  try {
    httplib::Client client(base_);
    client.set_connection_timeout(std::chrono::seconds(2));
    client.set_read_timeout(std::chrono::seconds(5));
    const auto res = client.Get(target);
    if (!res) {
      problem = fmt::format("the schema registry at {} did not answer ({})", url_, httplib::to_string(res.error()));
    } else if (res->status != 200) {
      problem = fmt::format("the schema registry at {} answered HTTP {} for {}", url_, res->status, target);
    } else {
      const auto body = nlohmann::json::parse(res->body, nullptr, false);
      if (body.is_discarded() || !body.is_object() || !body.contains("schema") || !body["schema"].is_string()) {
        problem = fmt::format("the schema registry at {} answered {} without a \"schema\" string", url_, target);
      } else {
        if (body.contains("schemaType") && body["schemaType"] != "AVRO")
          throw std::runtime_error(fmt::format("is a {} schema, not Avro", body["schemaType"].dump()));
        auto schema = std::make_shared<AvroSchema>(
            parse_avro_schema(body["schema"].get<std::string>(), fmt::format("{}{}", url_, target)));
        schema->file = fmt::format("schema {} of {}", id, url_);
        schemas_[id] = schema;
        failures_.erase(id);
        return schema;
      }
    }
  } catch (const std::exception& e) {
    problem = fmt::format("schema id {} from {}: {}", id, url_, e.what());
  }
  error = fmt::format("avro: schema id {}: {}", id, problem);
  failures_[id] = {now, error};
  return nullptr;
}

}  // namespace sluice::decoders::records::detail
