// The `protobuf` record decoder: a FileDescriptorSet read with the wire reader of core, then
// payloads decoded dynamically against the message type it describes.
#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <stdexcept>

#include "core/protobuf_wire.hpp"
#include "decoders/records/record_common.hpp"

namespace sluice::decoders::records::detail {
namespace {

using protobuf::WireType;
using transforms::FieldType;
using transforms::LogEvent;

// FieldDescriptorProto.Type and .Label values.
enum PbType : int { kDouble = 1, kFloat, kInt64, kUint64, kInt32, kFixed64, kFixed32, kBool, kString, kGroup, kMessage, kBytes, kUint32, kEnum, kSfixed32, kSfixed64, kSint32, kSint64 };
constexpr int kRepeated = 3;

struct PbField {
  std::string name;
  std::uint32_t number = 0;
  int label = 1;
  int type = 0;
  std::string type_name;
  std::uint32_t target = 0;  // message or enum index once resolved
  // proto3 singular scalar without explicit presence: absent on the wire means its zero value, which
  // the record then carries (an id of 0 is an id, not a missing field).
  bool implicit_default = false;
};
struct PbMessage {
  std::string full_name;
  std::vector<PbField> fields;
  std::vector<std::uint32_t> nested;
  bool map_entry = false;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> by_number;  // sorted (number, field index)

  const PbField* field(std::uint32_t number, std::uint32_t& index) const {
    const auto it = std::lower_bound(by_number.begin(), by_number.end(), std::make_pair(number, 0U));
    if (it == by_number.end() || it->first != number) return nullptr;
    index = it->second;
    return &fields[it->second];
  }
};
struct PbEnum {
  std::string full_name;
  std::vector<std::pair<std::int32_t, std::string>> values;
};
struct PbPool {
  std::vector<PbMessage> messages;
  std::vector<PbEnum> enums;
  std::vector<std::vector<std::uint32_t>> file_messages;  // top-level message indexes of each file
  std::map<std::string, std::uint32_t, std::less<>> message_by_name, enum_by_name;
  std::uint32_t root = 0;
  std::size_t root_file = 0;
};

std::span<const std::byte> bytes_of(const std::string& s) { return as_bytes(s); }

class DescriptorLoader {
 public:
  DescriptorLoader(PbPool& pool, std::string path) : pool_(pool), path_(std::move(path)) {}

  void load(std::span<const std::byte> data) {
    protobuf::Reader r(data);
    protobuf::Field f;
    while (r.next(f)) {
      if (f.number == 1 && f.type == WireType::length_delimited) file(f.bytes);
    }
    if (r.failed()) malformed("FileDescriptorSet");
  }

  [[noreturn]] void malformed(std::string_view what) {
    throw std::runtime_error(fmt::format(
        "decoder: descriptor set {}: malformed {} (is it the output of protoc --descriptor_set_out?)", path_, what));
  }

 private:
  bool proto3_ = false;  // the syntax of the file being read
  void file(std::span<const std::byte> data) {
    std::string package;
    std::vector<std::span<const std::byte>> messages, enums;
    protobuf::Reader r(data);
    protobuf::Field f;
    proto3_ = false;
    while (r.next(f)) {
      if (f.type != WireType::length_delimited) continue;
      if (f.number == 12) proto3_ = f.text() == "proto3";
      else if (f.number == 2) package.assign(f.text());
      else if (f.number == 4) messages.push_back(f.bytes);
      else if (f.number == 5) enums.push_back(f.bytes);
    }
    if (r.failed()) malformed("FileDescriptorProto");
    const std::size_t file_index = pool_.file_messages.size();
    pool_.file_messages.emplace_back();
    for (const auto m : messages) {
      const std::uint32_t index = message(m, package);
      pool_.file_messages[file_index].push_back(index);
    }
    for (const auto e : enums) enumeration(e, package);
  }

  static std::string scoped(const std::string& scope, std::string_view name) {
    return scope.empty() ? std::string(name) : scope + "." + std::string(name);
  }

  std::uint32_t message(std::span<const std::byte> data, const std::string& scope) {
    const auto index = static_cast<std::uint32_t>(pool_.messages.size());
    pool_.messages.emplace_back();
    std::vector<std::span<const std::byte>> fields, nested, enums;
    std::string name;
    bool map_entry = false;
    protobuf::Reader r(data);
    protobuf::Field f;
    while (r.next(f)) {
      if (f.type == WireType::length_delimited) {
        if (f.number == 1) name.assign(f.text());
        else if (f.number == 2) fields.push_back(f.bytes);
        else if (f.number == 3) nested.push_back(f.bytes);
        else if (f.number == 4) enums.push_back(f.bytes);
        else if (f.number == 7) {
          protobuf::Reader o(f.bytes);
          protobuf::Field of;
          while (o.next(of)) {
            if (of.number == 7 && of.type == WireType::varint) map_entry = of.integer != 0;
          }
          if (o.failed()) malformed("MessageOptions");
        }
      }
    }
    if (r.failed()) malformed("DescriptorProto");
    const std::string full = scoped(scope, name);
    pool_.message_by_name[full] = index;
    std::vector<std::uint32_t> nested_indexes;
    for (const auto n : nested) nested_indexes.push_back(message(n, full));
    for (const auto e : enums) enumeration(e, full);
    PbMessage& m = pool_.messages[index];
    m.full_name = full;
    m.map_entry = map_entry;
    m.nested = std::move(nested_indexes);
    for (const auto fd : fields) m.fields.push_back(field(fd));
    for (std::uint32_t i = 0; i < m.fields.size(); ++i) m.by_number.emplace_back(m.fields[i].number, i);
    std::sort(m.by_number.begin(), m.by_number.end());
    return index;
  }

  PbField field(std::span<const std::byte> data) {
    PbField out;
    protobuf::Reader r(data);
    protobuf::Field f;
    bool in_oneof = false, explicit_presence = false;
    while (r.next(f)) {
      if (f.number == 9 && f.type == WireType::varint) in_oneof = true;
      else if (f.number == 17 && f.type == WireType::varint) explicit_presence = f.integer != 0;
      else if (f.number == 1 && f.type == WireType::length_delimited) out.name.assign(f.text());
      else if (f.number == 3 && f.type == WireType::varint) out.number = static_cast<std::uint32_t>(f.integer);
      else if (f.number == 4 && f.type == WireType::varint) out.label = static_cast<int>(f.integer);
      else if (f.number == 5 && f.type == WireType::varint) out.type = static_cast<int>(f.integer);
      else if (f.number == 6 && f.type == WireType::length_delimited) out.type_name.assign(f.text());
    }
    if (r.failed()) malformed("FieldDescriptorProto");
    out.implicit_default = proto3_ && out.label != kRepeated && out.type != kMessage && out.type != kGroup &&
                           !in_oneof && !explicit_presence;
    return out;
  }

  void enumeration(std::span<const std::byte> data, const std::string& scope) {
    PbEnum e;
    protobuf::Reader r(data);
    protobuf::Field f;
    std::string name;
    while (r.next(f)) {
      if (f.number == 1 && f.type == WireType::length_delimited) name.assign(f.text());
      if (f.number != 2 || f.type != WireType::length_delimited) continue;
      std::pair<std::int32_t, std::string> value;
      protobuf::Reader v(f.bytes);
      protobuf::Field vf;
      while (v.next(vf)) {
        if (vf.number == 1 && vf.type == WireType::length_delimited) value.second.assign(vf.text());
        else if (vf.number == 2 && vf.type == WireType::varint) value.first = static_cast<std::int32_t>(vf.integer);
      }
      if (v.failed()) malformed("EnumValueDescriptorProto");
      e.values.push_back(std::move(value));
    }
    if (r.failed()) malformed("EnumDescriptorProto");
    e.full_name = scoped(scope, name);
    pool_.enum_by_name[e.full_name] = static_cast<std::uint32_t>(pool_.enums.size());
    pool_.enums.push_back(std::move(e));
  }

  PbPool& pool_;
  std::string path_;
};

PbPool load_pool(const DecoderSpec& spec) {
  const std::string& path = spec.descriptor_set_file;
  const std::string data = read_whole_file(path, "decoder: descriptor set");
  PbPool pool;
  DescriptorLoader loader(pool, path);
  loader.load(bytes_of(data));
  for (PbMessage& m : pool.messages) {
    for (PbField& f : m.fields) {
      if (f.type == kGroup)
        throw std::runtime_error(fmt::format("decoder: descriptor set {}: field {}.{} is a group, which is not supported",
                                             path, m.full_name, f.name));
      if (f.type < kDouble || f.type > kSint64 || f.number == 0)
        throw std::runtime_error(fmt::format("decoder: descriptor set {}: field {}.{} has an unknown type {}", path,
                                             m.full_name, f.name, f.type));
      if (f.type != kMessage && f.type != kEnum) continue;
      const std::string_view target = std::string_view(f.type_name).substr(f.type_name.starts_with('.') ? 1 : 0);
      const auto& names = f.type == kMessage ? pool.message_by_name : pool.enum_by_name;
      const auto it = names.find(target);
      if (it == names.end())
        throw std::runtime_error(fmt::format(
            "decoder: descriptor set {}: field {}.{} refers to {}, which is not in the set (make it with protoc "
            "--include_imports)", path, m.full_name, f.name, f.type_name));
      f.target = it->second;
    }
  }
  std::string wanted = spec.message_type;
  if (wanted.starts_with('.')) wanted.erase(0, 1);
  const auto it = pool.message_by_name.find(wanted);
  if (it == pool.message_by_name.end()) {
    std::string known;
    for (const auto& [name, index] : pool.message_by_name) {
      if (pool.messages[index].map_entry) continue;
      if (known.size() > 300) {
        known += ", ...";
        break;
      }
      known += (known.empty() ? "" : ", ") + name;
    }
    throw std::runtime_error(fmt::format("decoder: descriptor set {}: message type {} not found (it has: {})", path,
                                         spec.message_type, known.empty() ? "no messages" : known));
  }
  pool.root = it->second;
  for (std::size_t file = 0; file < pool.file_messages.size(); ++file) {
    for (const std::uint32_t top : pool.file_messages[file]) {
      // The root's file is the one whose message tree holds it.
      std::vector<std::uint32_t> todo{top};
      while (!todo.empty()) {
        const std::uint32_t m = todo.back();
        todo.pop_back();
        if (m == pool.root) pool.root_file = file;
        for (const std::uint32_t n : pool.messages[m].nested) todo.push_back(n);
      }
    }
  }
  return pool;
}

WireType wire_type_of(int type) {
  switch (type) {
    case kDouble: case kFixed64: case kSfixed64: return WireType::fixed64;
    case kFloat: case kFixed32: case kSfixed32: return WireType::fixed32;
    case kString: case kBytes: case kMessage: return WireType::length_delimited;
    default: return WireType::varint;
  }
}

std::string_view wire_type_name(WireType t) {
  switch (t) {
    case WireType::varint: return "varint";
    case WireType::fixed64: return "64-bit";
    case WireType::length_delimited: return "length-delimited";
    case WireType::fixed32: return "32-bit";
    default: return "group";
  }
}

struct Entry {
  std::uint32_t field;  // index in the message's fields
  std::uint32_t seq;    // wire position, so that a plain sort keeps wire order within a field
  protobuf::Field wire;
};

class ProtobufDecoder final : public RecordDecoder {
 public:
  ProtobufDecoder(const DecoderSpec& spec, std::shared_ptr<const PbPool> pool)
      : confluent_(spec.confluent_wire_format), max_fields_(spec.max_fields), max_depth_(spec.max_depth),
        pool_(std::move(pool)), out_(spec.max_fields), scratch_(spec.max_depth + 2) {}

  void decode(std::span<const std::byte> payload, LogEvent& event, RecordSink& sink) override {
    std::uint32_t message = pool_->root;
    std::span<const std::byte> body = payload;
    name_.clear();
    error_.clear();
    if (confluent_ && !confluent_header(body, message)) {
      sink.reject(error_, payload);
      return;
    }
    out_.begin(event);
    if (!flatten(message, body, 0)) {
      out_.begin(event);
      sink.reject(error_, payload);
      return;
    }
    sink.record(event);
  }

 private:
  bool fail(std::string_view what) {
    error_.clear();
    fmt::format_to(std::back_inserter(error_), "protobuf: {} at {}{}", what, name_.empty() ? "the top level" : "field ",
                   name_);
    return false;
  }

  // 0x00, a 4-byte schema id, then the message indexes ([0] written as one 0 byte) naming the type in
  // the file of the configured message.
  bool confluent_header(std::span<const std::byte>& body, std::uint32_t& message) {
    if (body.size() < 6 || body[0] != std::byte{0})
      return fail(body.empty() ? "empty message" : body[0] != std::byte{0}
                      ? "not in Confluent wire format (the first byte is not 0)"
                      : "shorter than the Confluent header");
    body = body.subspan(5);
    std::uint64_t raw;
    if (!protobuf::Reader::read_varint(body, raw)) return fail("truncated message index list");
    const auto count = static_cast<std::int64_t>((raw >> 1) ^ (~(raw & 1) + 1));
    if (count == 0) {
      message = pick(0, nullptr);
      return message != kNone || fail("message index 0 is not in the descriptor set's file");
    }
    if (count < 0 || static_cast<std::uint64_t>(count) > max_depth_)
      return fail(fmt::format("message index list of {} entries", count));
    std::uint32_t current = kNone;
    for (std::int64_t i = 0; i < count; ++i) {
      std::uint64_t v;
      if (!protobuf::Reader::read_varint(body, v)) return fail("truncated message index list");
      const auto index = static_cast<std::int64_t>((v >> 1) ^ (~(v & 1) + 1));
      current = index < 0 ? kNone : pick(static_cast<std::uint64_t>(index), i == 0 ? nullptr : &current);
      if (current == kNone)
        return fail(fmt::format("message index {} at position {} names no message of the descriptor set's file", index, i));
    }
    message = current;
    return true;
  }
  static constexpr std::uint32_t kNone = 0xffffffffU;
  std::uint32_t pick(std::uint64_t index, const std::uint32_t* parent) const {
    const auto& list = parent ? pool_->messages[*parent].nested : pool_->file_messages[pool_->root_file];
    return index < list.size() ? list[static_cast<std::size_t>(index)] : kNone;
  }

  // Reads the fields of one message into scratch_[depth], in declaration order (wire order within a field).
  bool collect(const PbMessage& m, std::span<const std::byte> bytes, std::size_t depth) {
    if (depth > max_depth_) return fail(fmt::format("nested deeper than {} levels (max_depth)", max_depth_));
    auto& entries = scratch_[depth];
    entries.clear();
    protobuf::Reader r(bytes);
    protobuf::Field f;
    while (r.next(f)) {
      std::uint32_t index;
      const PbField* field = m.field(f.number, index);
      if (!field) continue;  // unknown to this schema version: skipped, as protobuf readers do
      const WireType want = wire_type_of(field->type);
      const bool packed = field->label == kRepeated && f.type == WireType::length_delimited && want != WireType::length_delimited;
      if (f.type != want && !packed) {
        const std::size_t base = name_.size();
        name_ += name_.empty() ? "" : ".";
        name_ += field->name;
        fail(fmt::format("wire type {} where {} expects {}", wire_type_name(f.type), m.full_name, wire_type_name(want)));
        name_.resize(base);
        return false;
      }
      entries.push_back({index, static_cast<std::uint32_t>(entries.size()), f});
    }
    if (r.failed()) return fail(fmt::format("malformed or truncated {} (bad wire data)", m.full_name));
    // std::sort, not stable_sort: the latter takes a heap buffer on every call.
    const auto before = [](const Entry& a, const Entry& b) { return a.field != b.field ? a.field < b.field : a.seq < b.seq; };
    if (!std::is_sorted(entries.begin(), entries.end(), before)) std::sort(entries.begin(), entries.end(), before);
    return true;
  }

  bool flatten(std::uint32_t message, std::span<const std::byte> bytes, std::size_t depth) {
    const PbMessage& m = pool_->messages[message];
    if (!collect(m, bytes, depth)) return false;
    const auto& entries = scratch_[depth];
    const std::size_t base = name_.size();
    for (std::size_t i = 0; i < entries.size();) {
      std::size_t j = i + 1;
      while (j < entries.size() && entries[j].field == entries[i].field) ++j;
      const PbField& field = m.fields[entries[i].field];
      name_.resize(base);
      if (base) name_ += '.';
      name_ += field.name;
      if (field.label == kRepeated) {
        transforms::LogField* f = add();
        if (!f) return false;
        f->type = FieldType::json;
        if (!repeated_json(field, entries, i, j, depth, f->value)) return false;
      } else if (field.type == kMessage) {
        for (std::size_t k = i; k < j; ++k) {  // occurrences merge: later fields win
          if (!flatten(field.target, scratch_[depth][k].wire.bytes, depth + 1)) return false;
        }
      } else {
        transforms::LogField* f = add();
        if (!f || !scalar(field, entries[j - 1].wire, f->value, &f->type)) return false;
      }
      i = j;
    }
    // proto3 zero values are not on the wire; the record carries them like any other value.
    std::size_t e = 0;
    for (std::uint32_t k = 0; k < m.fields.size(); ++k) {
      while (e < entries.size() && entries[e].field < k) ++e;
      if (!m.fields[k].implicit_default || (e < entries.size() && entries[e].field == k)) continue;
      name_.resize(base);
      if (base) name_ += '.';
      name_ += m.fields[k].name;
      protobuf::Field zero;
      zero.type = wire_type_of(m.fields[k].type);
      transforms::LogField* f = add();
      if (!f || !scalar(m.fields[k], zero, f->value, &f->type)) return false;
    }
    name_.resize(base);
    return true;
  }

  transforms::LogField* add() {
    transforms::LogField* f = out_.add(name_);
    if (!f) {
      fail(fmt::format("more than {} fields in one record (max_fields)", max_fields_));
      return nullptr;
    }
    f->value.clear();
    return f;
  }

  // A repeated field as a JSON array, or a map field as a JSON object.
  bool repeated_json(const PbField& field, const std::vector<Entry>& entries, std::size_t from, std::size_t to,
                     std::size_t depth, std::string& out) {
    const bool map = field.type == kMessage && pool_->messages[field.target].map_entry;
    out += map ? '{' : '[';
    bool first = true;
    for (std::size_t k = from; k < to; ++k) {
      const protobuf::Field& wire = entries[k].wire;
      if (map) {
        if (!first) out += ',';
        first = false;
        if (!map_entry_json(pool_->messages[field.target], wire.bytes, depth + 1, out)) return false;
      } else if (field.type == kMessage) {
        if (!first) out += ',';
        first = false;
        if (!message_json(field.target, wire.bytes, depth + 1, out)) return false;
      } else if (wire.type == WireType::length_delimited && wire_type_of(field.type) != WireType::length_delimited) {
        std::span<const std::byte> packed = wire.bytes;
        const WireType want = wire_type_of(field.type);
        while (!packed.empty()) {
          protobuf::Field one;
          one.number = field.number;
          one.type = want;
          if (want == WireType::varint) {
            if (!protobuf::Reader::read_varint(packed, one.integer)) return fail("truncated packed varint");
          } else {
            const std::size_t n = want == WireType::fixed64 ? 8 : 4;
            if (packed.size() < n) return fail("truncated packed fixed-width values");
            for (std::size_t b = 0; b < n; ++b) one.integer |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(packed[b])) << (8 * b);
            packed = packed.subspan(n);
          }
          if (!first) out += ',';
          first = false;
          if (!scalar(field, one, out, nullptr)) return false;
        }
      } else {
        if (!first) out += ',';
        first = false;
        if (!scalar(field, wire, out, nullptr)) return false;
      }
    }
    out += map ? '}' : ']';
    return true;
  }

  bool map_entry_json(const PbMessage& entry, std::span<const std::byte> bytes, std::size_t depth, std::string& out) {
    if (!collect(entry, bytes, depth)) return false;
    const protobuf::Field* key = nullptr;
    const protobuf::Field* value = nullptr;
    for (const Entry& e : scratch_[depth]) {
      if (entry.fields[e.field].number == 1) key = &e.wire;
      else if (entry.fields[e.field].number == 2) value = &e.wire;
    }
    std::uint32_t ki = 0, vi = 0;
    const PbField* key_field = entry.field(1, ki);
    const PbField* value_field = entry.field(2, vi);
    if (!key_field || !value_field) return fail("map entry without key or value in the descriptor");
    // JSON object keys are strings: the key's text, quoted.
    key_text_.clear();
    if (key) {
      if (!scalar(*key_field, *key, key_text_, &key_type_)) return false;
    } else if (key_field->type == kBool) {
      key_text_ = "false";
    } else if (key_field->type != kString) {
      key_text_ = "0";
    }
    append_json_string(key_text_, out);
    out += ':';
    if (value_field->type == kMessage) {
      const std::span<const std::byte> v = value ? value->bytes : std::span<const std::byte>{};
      return message_json(value_field->target, v, depth + 1, out);
    }
    if (value) return scalar(*value_field, *value, out, nullptr);
    protobuf::Field zero;  // absent: the type's default, as protobuf readers see it
    zero.type = wire_type_of(value_field->type);
    return scalar(*value_field, zero, out, nullptr);
  }

  // A message as a JSON object (elements of repeated message fields, map values).
  bool message_json(std::uint32_t message, std::span<const std::byte> bytes, std::size_t depth, std::string& out) {
    const PbMessage& m = pool_->messages[message];
    if (!collect(m, bytes, depth)) return false;
    const auto& entries = scratch_[depth];
    out += '{';
    for (std::size_t i = 0; i < entries.size();) {
      std::size_t j = i + 1;
      while (j < entries.size() && entries[j].field == entries[i].field) ++j;
      const PbField& field = m.fields[entries[i].field];
      if (i) out += ',';
      append_json_string(field.name, out);
      out += ':';
      bool ok;
      if (field.label == kRepeated) ok = repeated_json(field, entries, i, j, depth, out);
      else if (field.type == kMessage) ok = message_json(field.target, entries[j - 1].wire.bytes, depth + 1, out);
      else ok = scalar(field, entries[j - 1].wire, out, nullptr);
      if (!ok) return false;
      i = j;
    }
    out += '}';
    return true;
  }

  // One scalar value: its text and type into a field (`type` set), or as JSON (`type` null).
  bool scalar(const PbField& field, const protobuf::Field& wire, std::string& out, FieldType* type) {
    FieldType t = FieldType::number;
    const std::uint64_t v = wire.integer;
    switch (field.type) {
      case kDouble: case kFloat: {
        const double d = field.type == kDouble ? wire.as_double() : static_cast<double>(wire.as_float());
        if (!append_double(d, out)) {
          if (type) out += non_finite_text(d);
          else append_json_string(non_finite_text(d), out);
          t = FieldType::string;
        }
        break;
      }
      case kInt64: case kSfixed64: append_integer(static_cast<std::int64_t>(v), out); break;
      case kUint64: case kFixed64: append_integer(v, out); break;
      case kInt32: case kSfixed32: append_integer(static_cast<std::int32_t>(static_cast<std::uint32_t>(v)), out); break;
      case kUint32: case kFixed32: append_integer(static_cast<std::uint32_t>(v), out); break;
      case kSint32: {
        const auto u = static_cast<std::uint32_t>(v);
        append_integer(static_cast<std::int32_t>((u >> 1) ^ (~(u & 1) + 1)), out);
        break;
      }
      case kSint64: append_integer(wire.as_sint64(), out); break;
      case kBool:
        out += v ? "true" : "false";
        t = FieldType::boolean;
        break;
      case kEnum: {
        const auto number = static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
        const std::string* symbol = nullptr;
        for (const auto& [n, name] : pool_->enums[field.target].values) {
          if (n == number) {
            symbol = &name;
            break;
          }
        }
        if (symbol) {
          if (type) out += *symbol;
          else append_json_string(*symbol, out);
          t = FieldType::string;
        } else {
          append_integer(number, out);  // a value newer than the descriptor: kept as its number
        }
        break;
      }
      case kString: {
        const std::string_view s = wire.text();
        if (!valid_utf8(s)) return fail("string is not valid UTF-8");
        if (type) out += s;
        else append_json_string(s, out);
        t = FieldType::string;
        break;
      }
      case kBytes:
        if (!type) out += '"';
        append_base64(wire.bytes, out);
        if (!type) out += '"';
        t = FieldType::string;
        break;
      default: return fail("internal: not a scalar type");
    }
    if (type) *type = t;
    return true;
  }

  bool confluent_;
  std::size_t max_fields_;
  std::size_t max_depth_;
  std::shared_ptr<const PbPool> pool_;
  FieldOutput out_;
  std::vector<std::vector<Entry>> scratch_;  // one list of fields per nesting level, reused
  std::string name_;
  std::string error_;
  std::string key_text_;
  FieldType key_type_ = FieldType::string;
};

class ProtobufFactory final : public RecordDecoderFactory {
 public:
  explicit ProtobufFactory(const DecoderSpec& spec) : spec_(spec), pool_(std::make_shared<const PbPool>(load_pool(spec))) {}
  std::unique_ptr<RecordDecoder> make() const override { return std::make_unique<ProtobufDecoder>(spec_, pool_); }

 private:
  DecoderSpec spec_;
  std::shared_ptr<const PbPool> pool_;
};

}  // namespace

std::unique_ptr<RecordDecoderFactory> make_protobuf_factory(const DecoderSpec& spec) {
  if (spec.descriptor_set_file.empty()) throw std::runtime_error("decoder: protobuf needs descriptor_set");
  if (spec.message_type.empty()) throw std::runtime_error("decoder: protobuf needs message");
  return std::make_unique<ProtobufFactory>(spec);
}

}  // namespace sluice::decoders::records::detail
