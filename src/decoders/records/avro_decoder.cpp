// The `avro` record decoder. avro-c parses the writer's schema (.avsc) once; datums are then read by a
// bounded decoder of our own over that schema, so that every length, count and index is checked
// against the bytes at hand and a rejection can say at which field it went wrong.
#include <avro.h>
#include <fmt/format.h>

#include <cstring>
#include <iterator>
#include <map>
#include <stdexcept>

#include "decoders/records/avro_schema.hpp"
#include "decoders/records/record_common.hpp"

namespace sluice::decoders::records::detail {
namespace {

using transforms::FieldType;
using transforms::LogEvent;

// Items of arrays and maps in one datum, all levels together, may exceed its byte count by this much:
// every item takes at least one byte except those of zero-byte types (null, empty records, fixed(0)),
// which would otherwise let a few bytes claim millions of items.
constexpr std::size_t kZeroByteItems = 1024;

class AvroDecoder final : public RecordDecoder {
 public:
  AvroDecoder(const DecoderSpec& spec, std::shared_ptr<const std::map<int, AvroSchema>> by_id,
              std::shared_ptr<const AvroSchema> plain, std::shared_ptr<SchemaRegistry> registry)
      : confluent_(spec.confluent_wire_format), max_fields_(spec.max_fields), max_depth_(spec.max_depth),
        by_id_(std::move(by_id)), plain_(std::move(plain)), registry_(std::move(registry)), out_(spec.max_fields) {}

  void decode(std::span<const std::byte> payload, LogEvent& event, RecordSink& sink) override {
    const AvroSchema* schema = plain_.get();
    std::span<const std::byte> datum = payload;
    if (confluent_) {
      if (payload.size() < 5 || payload[0] != std::byte{0}) {
        sink.reject(payload.empty() ? "avro: empty message"
                    : payload[0] != std::byte{0} ? "avro: not in Confluent wire format (the first byte is not 0)"
                                                 : "avro: shorter than the 5-byte Confluent header",
                    payload);
        return;
      }
      std::uint32_t id = 0;
      for (int i = 1; i <= 4; ++i) id = id << 8 | static_cast<std::uint8_t>(payload[static_cast<std::size_t>(i)]);
      schema = nullptr;
      if (id <= 0x7fffffffU) {
        const int key = static_cast<int>(id);
        if (const auto it = by_id_->find(key); it != by_id_->end()) {
          schema = &it->second;
        } else if (const auto f = fetched_.find(key); f != fetched_.end()) {
          schema = f->second.get();
        } else if (registry_) {
          auto fetched = registry_->fetch(key, error_);
          if (!fetched) {
            sink.reject(error_, payload);
            return;
          }
          schema = fetched.get();
          fetched_.emplace(key, std::move(fetched));
        }
      }
      if (!schema) {
        error_.clear();
        fmt::format_to(std::back_inserter(error_), "avro: unknown schema id {} (add its .avsc under decoder.schemas)", id);
        sink.reject(error_, payload);
        return;
      }
      datum = payload.subspan(5);
    }
    schema_ = schema;
    p_ = reinterpret_cast<const std::uint8_t*>(datum.data());
    end_ = p_ + datum.size();
    items_ = 0;
    datum_size_ = datum.size();
    item_budget_ = datum.size() + kZeroByteItems;
    name_.clear();
    error_.clear();
    out_.begin(event);
    bool ok;
    if (schema->nodes[schema->root].type == AvroType::record) {
      ok = flatten(schema->root, 0);
    } else {
      name_.assign("value");  // a datum that is not a record is one field
      ok = flatten(schema->root, 0);
    }
    if (ok && p_ != end_) {
      fmt::format_to(std::back_inserter(error_), "avro: {} bytes left after the datum (is {} the writer's schema?)",
                     end_ - p_, schema->file);
      ok = false;
    }
    if (!ok) {
      out_.begin(event);
      sink.reject(error_, payload);
      return;
    }
    sink.record(event);
  }

 private:
  bool fail(std::string_view what) {
    error_.clear();
    fmt::format_to(std::back_inserter(error_), "avro: {} at {}{}", what, name_.empty() ? "the top level" : "field ",
                   name_);
    return false;
  }
  bool truncated() { return fail("datum ends too early (truncated, or not written with this schema)"); }

  bool read_long(std::int64_t& out) {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (p_ == end_) return truncated();
      const std::uint8_t b = *p_++;
      if (shift == 63 && b > 1) return fail("integer longer than 64 bits");
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        out = static_cast<std::int64_t>((v >> 1) ^ (~(v & 1) + 1));
        return true;
      }
    }
    return fail("integer longer than 64 bits");
  }
  bool read_int(std::int32_t& out) {
    std::int64_t v = 0;
    if (!read_long(v)) return false;
    if (v < INT32_MIN || v > INT32_MAX) return fail("int out of 32-bit range");
    out = static_cast<std::int32_t>(v);
    return true;
  }
  bool read_span(std::size_t n, std::span<const std::byte>& out) {
    if (static_cast<std::size_t>(end_ - p_) < n) return truncated();
    out = {reinterpret_cast<const std::byte*>(p_), n};
    p_ += n;
    return true;
  }
  bool read_bytes(std::span<const std::byte>& out) {
    std::int64_t n = 0;
    if (!read_long(n)) return false;
    if (n < 0) return fail("negative length");
    if (static_cast<std::uint64_t>(n) > static_cast<std::uint64_t>(end_ - p_)) return truncated();
    return read_span(static_cast<std::size_t>(n), out);
  }
  bool read_string(std::string_view& out) {
    std::span<const std::byte> b;
    if (!read_bytes(b)) return false;
    out = as_text(b);
    if (!valid_utf8(out)) return fail("string is not valid UTF-8");
    return true;
  }
  bool read_float(double& out) {
    std::span<const std::byte> b;
    if (!read_span(4, b)) return false;
    float f;
    std::memcpy(&f, b.data(), 4);  // little-endian on the hosts we build for
    out = f;
    return true;
  }
  bool read_double(double& out) {
    std::span<const std::byte> b;
    if (!read_span(8, b)) return false;
    std::memcpy(&out, b.data(), 8);
    return true;
  }
  // The item count of the next block of an array or map; 0 ends it.
  bool read_block(std::int64_t& count) {
    if (!read_long(count)) return false;
    if (count < 0) {
      if (count == INT64_MIN) return fail("invalid block count");
      count = -count;
      std::int64_t size = 0;  // the block's byte size, which we do not need
      if (!read_long(size)) return false;
      if (size < 0) return fail("negative block size");
    }
    if (static_cast<std::uint64_t>(count) > item_budget_ - items_)
      return fail(fmt::format("array or map block of {} items, more than the {}-byte datum can hold", count, datum_size_));
    items_ += static_cast<std::size_t>(count);
    return true;
  }
  bool union_branch(const AvroNode& node, std::uint32_t& branch) {
    std::int64_t index = 0;
    if (!read_long(index)) return false;
    if (index < 0 || static_cast<std::uint64_t>(index) >= node.children.size())
      return fail(fmt::format("union branch {} out of range (the union has {})", index, node.children.size()));
    branch = node.children[static_cast<std::size_t>(index)];
    return true;
  }
  bool deeper(std::size_t depth) {
    if (depth < max_depth_) return true;
    return fail(fmt::format("nested deeper than {} levels (max_depth)", max_depth_));
  }

  transforms::LogField* field() {
    transforms::LogField* f = out_.add(name_);
    if (!f) {
      fail(fmt::format("more than {} fields in one record (max_fields)", max_fields_));
      return nullptr;
    }
    f->value.clear();
    return f;
  }

  // Writes the value of `node` as the field(s) under name_.
  bool flatten(std::uint32_t index, std::size_t depth) {
    const AvroNode& node = schema_->nodes[index];
    switch (node.type) {
      case AvroType::record: {
        if (!deeper(depth)) return false;
        const std::size_t base = name_.size();
        for (std::size_t i = 0; i < node.children.size(); ++i) {
          name_.resize(base);
          if (base) name_ += '.';
          name_ += node.field_names[i];
          if (!flatten(node.children[i], depth + 1)) return false;
        }
        name_.resize(base);
        return true;
      }
      case AvroType::union_: {
        std::uint32_t branch;
        if (!deeper(depth) || !union_branch(node, branch)) return false;
        return flatten(branch, depth + 1);
      }
      case AvroType::array: case AvroType::map: {
        transforms::LogField* f = field();
        if (!f) return false;
        f->type = FieldType::json;
        return to_json(index, depth, f->value);
      }
      default: {
        transforms::LogField* f = field();
        return f && scalar(node, f->value, &f->type);
      }
    }
  }

  // A value that is not a record, union or collection: its text into `out` with its type, or (when
  // `type` is null) as JSON.
  bool scalar(const AvroNode& node, std::string& out, FieldType* type) {
    const auto set = [&](FieldType t) {
      if (type) *type = t;
    };
    switch (node.type) {
      case AvroType::null:
        set(FieldType::null);
        if (!type) out += "null";
        return true;
      case AvroType::boolean: {
        if (p_ == end_) return truncated();
        const std::uint8_t b = *p_++;
        if (b > 1) return fail(fmt::format("invalid boolean byte {}", b));
        out += b ? "true" : "false";
        set(FieldType::boolean);
        return true;
      }
      case AvroType::int32: {
        std::int32_t v = 0;
        if (!read_int(v)) return false;
        append_integer(v, out);
        set(FieldType::number);
        return true;
      }
      case AvroType::int64: {
        std::int64_t v = 0;
        if (!read_long(v)) return false;
        append_integer(v, out);
        set(FieldType::number);
        return true;
      }
      case AvroType::float32: case AvroType::float64: {
        double v = 0;
        if (!(node.type == AvroType::float32 ? read_float(v) : read_double(v))) return false;
        if (append_double(v, out)) {
          set(FieldType::number);
        } else if (type) {
          out += non_finite_text(v);
          set(FieldType::string);
        } else {
          append_json_string(non_finite_text(v), out);
        }
        return true;
      }
      case AvroType::string: {
        std::string_view s;
        if (!read_string(s)) return false;
        if (type) out += s;
        else append_json_string(s, out);
        set(FieldType::string);
        return true;
      }
      case AvroType::bytes: case AvroType::fixed: {
        std::span<const std::byte> b;
        if (!(node.type == AvroType::bytes ? read_bytes(b) : read_span(node.fixed_size, b))) return false;
        if (!type) out += '"';
        append_base64(b, out);
        if (!type) out += '"';
        set(FieldType::string);
        return true;
      }
      case AvroType::enumeration: {
        std::int32_t v = 0;
        if (!read_int(v)) return false;
        if (v < 0 || static_cast<std::size_t>(v) >= node.symbols.size())
          return fail(fmt::format("enum index {} out of range (the enum has {} symbols)", v, node.symbols.size()));
        if (type) out += node.symbols[static_cast<std::size_t>(v)];
        else append_json_string(node.symbols[static_cast<std::size_t>(v)], out);
        set(FieldType::string);
        return true;
      }
      default: return fail("internal: not a scalar");
    }
  }

  // Writes the value of `index` as JSON text (arrays, maps and what they hold).
  bool to_json(std::uint32_t index, std::size_t depth, std::string& out) {
    const AvroNode& node = schema_->nodes[index];
    switch (node.type) {
      case AvroType::record: {
        if (!deeper(depth)) return false;
        out += '{';
        for (std::size_t i = 0; i < node.children.size(); ++i) {
          if (i) out += ',';
          append_json_string(node.field_names[i], out);
          out += ':';
          if (!to_json(node.children[i], depth + 1, out)) return false;
        }
        out += '}';
        return true;
      }
      case AvroType::union_: {
        std::uint32_t branch;
        if (!deeper(depth) || !union_branch(node, branch)) return false;
        return to_json(branch, depth + 1, out);
      }
      case AvroType::array: case AvroType::map: {
        if (!deeper(depth)) return false;
        const bool map = node.type == AvroType::map;
        out += map ? '{' : '[';
        bool first = true;
        while (true) {
          std::int64_t count = 0;
          if (!read_block(count)) return false;
          if (count == 0) break;
          for (std::int64_t i = 0; i < count; ++i) {
            if (!first) out += ',';
            first = false;
            if (map) {
              std::string_view key;
              if (!read_string(key)) return false;
              append_json_string(key, out);
              out += ':';
            }
            if (!to_json(node.children[0], depth + 1, out)) return false;
          }
        }
        out += map ? '}' : ']';
        return true;
      }
      default: return scalar(node, out, nullptr);
    }
  }

  bool confluent_;
  std::size_t max_fields_;
  std::size_t max_depth_;
  std::shared_ptr<const std::map<int, AvroSchema>> by_id_;
  std::shared_ptr<const AvroSchema> plain_;
  std::shared_ptr<SchemaRegistry> registry_;
  std::map<int, std::shared_ptr<const AvroSchema>> fetched_;  // from the registry, kept here to skip its lock
  FieldOutput out_;
  const AvroSchema* schema_ = nullptr;
  const std::uint8_t* p_ = nullptr;
  const std::uint8_t* end_ = nullptr;
  std::size_t items_ = 0;
  std::size_t item_budget_ = 0;
  std::size_t datum_size_ = 0;
  std::string name_;
  std::string error_;
};

class AvroFactory final : public RecordDecoderFactory {
 public:
  explicit AvroFactory(const DecoderSpec& spec) : spec_(spec) {
    if (!spec.schema_registry_url.empty()) {
      if (!spec.confluent_wire_format)
        throw std::runtime_error("decoder: avro schema_registry_url needs confluent_wire_format: true");
      registry_ = std::make_shared<SchemaRegistry>(spec.schema_registry_url);
    }
    auto by_id = std::make_shared<std::map<int, AvroSchema>>();
    if (spec.confluent_wire_format) {
      if (spec.avro_schema_files_by_id.empty() && !registry_)
        throw std::runtime_error("decoder: avro with confluent_wire_format needs schemas (id: .avsc file) or schema_registry_url");
      for (const auto& [id, file] : spec.avro_schema_files_by_id) (*by_id)[id] = load_avro_schema(file);
    } else {
      if (spec.avro_schema_file.empty()) throw std::runtime_error("decoder: avro needs schema_file");
      plain_ = std::make_shared<const AvroSchema>(load_avro_schema(spec.avro_schema_file));
    }
    by_id_ = std::move(by_id);
  }
  std::unique_ptr<RecordDecoder> make() const override { return std::make_unique<AvroDecoder>(spec_, by_id_, plain_, registry_); }

 private:
  DecoderSpec spec_;
  std::shared_ptr<const std::map<int, AvroSchema>> by_id_;
  std::shared_ptr<const AvroSchema> plain_;
  std::shared_ptr<SchemaRegistry> registry_;
};

}  // namespace

std::unique_ptr<RecordDecoderFactory> make_avro_factory(const DecoderSpec& spec) {
  return std::make_unique<AvroFactory>(spec);
}

}  // namespace sluice::decoders::records::detail
