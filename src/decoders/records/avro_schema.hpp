// Avro schemas as the record decoder walks them (compiled once from avro-c's parse), and the
// Confluent schema registry client that fetches schemas of unknown ids.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::decoders::records::detail {

enum class AvroType : std::uint8_t { null, boolean, int32, int64, float32, float64, bytes, string, record, enumeration, array, map, union_, fixed };

struct AvroNode {
  AvroType type = AvroType::null;
  std::vector<std::string> field_names;   // record
  std::vector<std::uint32_t> children;    // record fields, union branches, array items, map values
  std::vector<std::string> symbols;       // enum
  std::size_t fixed_size = 0;
};

struct AvroSchema {
  std::vector<AvroNode> nodes;
  std::uint32_t root = 0;
  std::string file;
};

// Parses and compiles an Avro schema (JSON text); throws std::runtime_error "<origin>: <problem>".
AvroSchema parse_avro_schema(std::string_view json, const std::string& origin);
AvroSchema load_avro_schema(const std::string& path);

// Schemas by Confluent id from a schema registry (GET <url>/schemas/ids/<id>), shared by the decoders
// of a job. A fetched schema is kept for good (ids are immutable); a failed fetch is not retried for
// kRetryAfter, so that a stream of messages with an unknown id costs one request, not one each.
class SchemaRegistry {
 public:
  static constexpr std::chrono::seconds kRetryAfter{30};
  // `url`: http://host:port or https://host:port, optionally with a path prefix.
  explicit SchemaRegistry(const std::string& url);
  // The schema, or null with `error` saying why (for the rejection of the message).
  std::shared_ptr<const AvroSchema> fetch(int id, std::string& error);
  std::size_t requests() const;

 private:
  std::string base_;    // scheme://host:port
  std::string prefix_;  // path before /schemas
  std::string url_;
  mutable std::mutex mutex_;
  std::map<int, std::shared_ptr<const AvroSchema>> schemas_;
  std::map<int, std::pair<std::chrono::steady_clock::time_point, std::string>> failures_;
  std::size_t requests_ = 0;
};

}  // namespace sluice::decoders::records::detail
