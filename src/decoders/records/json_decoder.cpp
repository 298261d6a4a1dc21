// The `json` and `json-lines` record decoders: simdjson DOM, objects flattened to dotted names.
#include <fmt/format.h>
#include <simdjson.h>

#include <cmath>
#include <cstring>
#include <deque>
#include <iterator>
#include <new>

#include "core/same_text.hpp"
#include "decoders/records/record_common.hpp"

namespace sluice::decoders::records::detail {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using transforms::FieldType;
using transforms::LogEvent;

const char* type_name(element_type t) {
  switch (t) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::STRING: return "a string";
    case element_type::INT64: case element_type::UINT64: case element_type::DOUBLE: return "a number";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

// Compact JSON text of a value that is kept whole (arrays).
void write_json(element e, std::string& out) {
  switch (e.type()) {
    case element_type::ARRAY: {
      out += '[';
      bool first = true;
      const simdjson::dom::array array = e.get_array().value_unsafe();
      for (element child : array) {
        if (!first) out += ',';
        first = false;
        write_json(child, out);
      }
      out += ']';
      break;
    }
    case element_type::OBJECT: {
      out += '{';
      bool first = true;
      const simdjson::dom::object object = e.get_object().value_unsafe();
      for (auto field : object) {
        if (!first) out += ',';
        first = false;
        append_json_string(field.key, out);
        out += ':';
        write_json(field.value, out);
      }
      out += '}';
      break;
    }
    case element_type::STRING: append_json_string(e.get_string().value_unsafe(), out); break;
    case element_type::INT64: append_integer(e.get_int64().value_unsafe(), out); break;
    case element_type::UINT64: append_integer(e.get_uint64().value_unsafe(), out); break;
    case element_type::DOUBLE: append_double(e.get_double().value_unsafe(), out); break;
    case element_type::BOOL: out += e.get_bool().value_unsafe() ? "true" : "false"; break;
    case element_type::NULL_VALUE: out += "null"; break;
  }
}

// A field's value as text, appended to `out`, and its type: numbers, booleans, null (no text), and
// arrays or empty objects as JSON. Strings are left to the caller, which may take them without a copy.
FieldType leaf_text(element v, element_type type, std::string& out) {
  switch (type) {
    case element_type::INT64: append_integer(v.get_int64().value_unsafe(), out); return FieldType::number;
    case element_type::UINT64: append_integer(v.get_uint64().value_unsafe(), out); return FieldType::number;
    case element_type::DOUBLE: append_double(v.get_double().value_unsafe(), out); return FieldType::number;
    case element_type::BOOL: out += v.get_bool().value_unsafe() ? "true" : "false"; return FieldType::boolean;
    case element_type::NULL_VALUE: return FieldType::null;
    case element_type::ARRAY: case element_type::OBJECT: write_json(v, out); return FieldType::json;
    case element_type::STRING: break;
  }
  return FieldType::string;
}

class JsonDecoder final : public RecordDecoder {
 public:
  JsonDecoder(const DecoderSpec& spec, bool lines) : lines_(lines), max_fields_(spec.max_fields), out_(spec.max_fields) {
    // The depth is fixed here; later growth of the capacity keeps it. simdjson refuses a document
    // that reaches its limit, so max_depth levels need one more.
    if (parser_.allocate(4096, spec.max_depth + 1) != simdjson::SUCCESS) throw std::bad_alloc();
    max_depth_ = spec.max_depth;
  }

  void decode(std::span<const std::byte> payload, LogEvent& event, RecordSink& sink) override {
    const std::string_view text = as_text(payload);
    if (!lines_) {
      document(text, event, sink);
      return;
    }
    std::size_t start = 0;
    while (start < text.size()) {
      const void* nl = std::memchr(text.data() + start, '\n', text.size() - start);
      const std::size_t end = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - text.data()) : text.size();
      std::string_view line = text.substr(start, end - start);
      start = end + 1;
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      if (line.back() == '\r') line.remove_suffix(1);
      document(line, event, sink);
    }
  }

 private:
  void document(std::string_view text, LogEvent& event, RecordSink& sink) {
    padded_.resize(text.size() + simdjson::SIMDJSON_PADDING);
    if (!text.empty()) std::memcpy(padded_.data(), text.data(), text.size());
    element root;
    const auto err = parser_.parse(padded_.data(), text.size(), false).get(root);
    if (err) {
      error_.clear();
      if (err == simdjson::DEPTH_ERROR)
        fmt::format_to(std::back_inserter(error_), "json: nested deeper than {} levels (max_depth)", max_depth_);
      else if (err == simdjson::EMPTY)
        error_.assign("json: empty input");
      else if (err == simdjson::UTF8_ERROR)
        error_.assign("json: invalid UTF-8");
      else
        fmt::format_to(std::back_inserter(error_), "json: {}", simdjson::error_message(err));
      sink.reject(error_, as_bytes(text));
      return;
    }
    if (root.type() == element_type::OBJECT) {
      record(root, text, nullptr, event, sink);
      return;
    }
    if (root.type() != element_type::ARRAY) {
      error_.clear();
      fmt::format_to(std::back_inserter(error_), "json: expected an object or an array of objects, got {}",
                     type_name(root.type()));
      sink.reject(error_, as_bytes(text));
      return;
    }
    std::size_t index = 0;
    const simdjson::dom::array items = root.get_array().value_unsafe();
    for (element item : items) {
      if (item.type() == element_type::OBJECT) {
        record(item, text, &index, event, sink);
      } else {
        error_.clear();
        fmt::format_to(std::back_inserter(error_), "json: element {} of the top-level array is {}, expected an object",
                       index, type_name(item.type()));
        sink.reject(error_, as_bytes(text));
      }
      ++index;
    }
  }

  void record(element object, std::string_view text, const std::size_t* index, LogEvent& event, RecordSink& sink) {
    if (FieldSlots* slots = sink.slots()) {
      slots->clear_slots();
      name_.clear();
      leaves_ = 0;
      if (fill_slots(object.get_object().value_unsafe(), *slots)) {
        sink.record_slots();
        return;
      }
      // More values than max_fields: the event decides, where a repeated name counts once.
    }
    out_.begin(event);
    name_.clear();
    if (!flatten(object.get_object().value_unsafe())) {
      error_.clear();
      if (index) fmt::format_to(std::back_inserter(error_), "json: element {} of the top-level array: ", *index);
      else error_.assign("json: ");
      fmt::format_to(std::back_inserter(error_), "more than {} fields in one record (max_fields)", max_fields_);
      out_.begin(event);  // nothing half-decoded stays in the event
      sink.reject(error_, as_bytes(text));
      return;
    }
    sink.record(event);
  }

  // Visits the leaves of `object` depth-first with their dotted names: a non-empty object is descended
  // into, anything else (an empty object too) is a leaf. `leaf(name, value, type)` returns false to stop
  // the walk, which then returns false. A top-level name is the key itself; nested ones are built in
  // name_, and a leaf's name is valid only during its call.
  template <typename Leaf>
  bool walk(simdjson::dom::object object, bool top, const Leaf& leaf) {
    const std::size_t base = name_.size();
    for (auto member : object) {
      std::string_view name = member.key;
      if (!top) {
        name_.resize(base);
        name_ += '.';
        name_.append(member.key);
        name = name_;
      }
      const element v = member.value;
      const element_type type = v.type();
      if (type == element_type::OBJECT) {
        const auto child = v.get_object().value_unsafe();
        if (child.size() > 0) {
          if (top) name_.assign(member.key);  // the prefix of its children's names
          if (!walk(child, false, leaf)) return false;
          continue;
        }
      }
      if (!leaf(name, v, type)) return false;
    }
    name_.resize(base);
    return true;
  }

  // Writes the leaves of `object` to the event; false when the field limit is reached.
  bool flatten(simdjson::dom::object object) {
    return walk(object, true, [this](std::string_view name, element v, element_type type) {
      transforms::LogField* f = out_.add(name);
      if (!f) return false;
      f->value.clear();
      if (type == element_type::STRING) {
        f->value.assign(v.get_string().value_unsafe());
        f->type = FieldType::string;
      } else {
        f->type = leaf_text(v, type, f->value);
      }
      return true;
    });
  }

  // flatten() for a sink that takes slots: the same names and values, without the event. False past
  // max_fields values.
  bool fill_slots(simdjson::dom::object object, FieldSlots& slots) {
    return walk(object, true, [this, &slots](std::string_view name, element v, element_type type) {
      if (++leaves_ > max_fields_) return false;
      const std::uint32_t slot = slot_at(leaves_ - 1, name, slots);
      if (slot == FieldSlots::none) return true;
      switch (type) {
        case element_type::STRING: slots.set_slot(slot, v.get_string().value_unsafe(), FieldType::string); return true;
        case element_type::INT64: slots.set_slot_integer(slot, v.get_int64().value_unsafe()); return true;
        case element_type::DOUBLE:
          if (const double d = v.get_double().value_unsafe(); std::isfinite(d)) {
            slots.set_slot_double(slot, d);
            return true;
          }
          break;
        default: break;
      }
      if (slot >= slot_text_.size()) slot_text_.resize(slot + 1);
      std::string& buf = slot_text_[slot];
      buf.clear();
      const FieldType text_type = leaf_text(v, type, buf);  // before the view of buf is taken
      slots.set_slot(slot, buf, text_type);
      return true;
    });
  }

  // Records of one topic mostly repeat their names in order: the slot of the name last seen at this
  // position is reused when the name is the same, which is cheaper than asking the sink.
  std::uint32_t slot_at(std::size_t position, std::string_view name, const FieldSlots& slots) {
    if (&slots != slots_owner_) {
      seen_.clear();
      slots_owner_ = &slots;
    }
    if (seen_.size() <= position) seen_.resize(position + 1);
    SeenName& seen = seen_[position];
    if (!seen.known || !same_text(seen.name, name)) {
      seen.name.assign(name);
      seen.slot = slots.slot_of(name);
      seen.known = true;
    }
    return seen.slot;
  }

  struct SeenName {
    std::string name;
    std::uint32_t slot = FieldSlots::none;
    bool known = false;
  };
  std::vector<SeenName> seen_;
  const FieldSlots* slots_owner_ = nullptr;
  std::deque<std::string> slot_text_;  // numbers and JSON text, by slot; a deque, so that growing it
                                       // leaves the texts already handed over where they are
  std::size_t leaves_ = 0;

  bool lines_;
  std::size_t max_fields_;
  std::size_t max_depth_ = 0;
  simdjson::dom::parser parser_;
  std::string padded_;
  std::string name_;
  std::string error_;
  FieldOutput out_;
};

class JsonFactory final : public RecordDecoderFactory {
 public:
  JsonFactory(const DecoderSpec& spec, bool lines) : spec_(spec), lines_(lines) {}
  std::unique_ptr<RecordDecoder> make() const override { return std::make_unique<JsonDecoder>(spec_, lines_); }

 private:
  DecoderSpec spec_;
  bool lines_;
};

}  // namespace

std::unique_ptr<RecordDecoderFactory> make_json_factory(const DecoderSpec& spec, bool lines) {
  return std::make_unique<JsonFactory>(spec, lines);
}

}  // namespace sluice::decoders::records::detail
