// compile_mapping and the MappedRowWriter it makes: records to Native columns, one converter per column.
#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "core/native_block.hpp"
#include "pipeline/jobs/column_mapping.hpp"
#include "pipeline/jobs/column_types.hpp"

namespace sluice::pipeline::jobs {
namespace {

using namespace field_text;
using transforms::FieldType;
using transforms::LogField;

enum class FieldSource : std::uint8_t { field, topic, partition, offset, key, timestamp, rest };

struct MappedColumn {
  std::string name;
  ColumnType type;
  std::string wire_type;
  std::size_t width = 0;
  FieldSource source = FieldSource::field;
  std::uint32_t group = 0;  // for FieldSource::field: the slot of its field name
  std::string from;
  std::optional<std::string> default_value;
  bool required = false;
  std::string type_name;  // ClickHouse's spelling of the mapping's type, for rejection reasons
  bool dictionary = false;  // LowCardinality(String) sent as such: a number a row into the column's keys
};

bool is_array(ValueKind k) {
  return k == ValueKind::array_string || k == ValueKind::array_int64 || k == ValueKind::array_float64;
}
bool is_text(ValueKind k) {
  return k == ValueKind::string || k == ValueKind::low_cardinality_string || k == ValueKind::fixed_string;
}

class Compiled final : public CompiledMapping, public std::enable_shared_from_this<Compiled> {
 public:
  Compiled(const MappingSpec& spec, ClickHouseDialect dialect) : spec_(spec), dialect_(dialect) {
    if (spec_.table.empty()) throw std::runtime_error("column mapping: no table given");
    if (spec_.columns.empty()) throw std::runtime_error("column mapping of table " + spec_.table + ": no columns");
    std::set<std::string_view> names;
    bool has_rest = false;
    for (const auto& c : spec_.columns) {
      if (c.name.empty() || c.name.find('`') != std::string::npos) {
        throw std::runtime_error("column mapping of table " + spec_.table + ": column name \"" + c.name +
                                 "\" is empty or has a backquote");
      }
      if (!names.insert(c.name).second) {
        throw std::runtime_error("column mapping of table " + spec_.table + ": column " + c.name + " is mapped twice");
      }
      MappedColumn m;
      m.name = c.name;
      auto type = parse_column_type(c.type);
      if (!type) {
        throw std::runtime_error("column mapping of table " + spec_.table + ": column " + c.name + " has type \"" +
                                 c.type + "\", which is not supported (supported: " + supported_types_text() + ")");
      }
      m.type = *type;
      m.type_name = type->name();
      // The Native block carries the table's types; LowCardinality(String) with its dictionary, which
      // spares the server hashing every value of a String column on insert.
      m.wire_type = type->table_type(dialect);
      m.dictionary = m.type.kind == ValueKind::low_cardinality_string && dialect != ClickHouseDialect::legacy;
      m.width = type->width(dialect);
      m.from = c.from.empty() ? c.name : c.from;
      m.default_value = c.default_value;
      m.required = c.required;
      if (m.from == "*") {
        if (m.type.kind != ValueKind::map_string_string) {
          throw std::runtime_error("column mapping of table " + spec_.table + ": column " + c.name +
                                   " takes every other field (from: \"*\"), which only a Map(String, String) can hold");
        }
        if (has_rest) {
          throw std::runtime_error("column mapping of table " + spec_.table +
                                   ": only one column can take every other field (from: \"*\")");
        }
        has_rest = true;
        has_rest_ = true;
        m.source = FieldSource::rest;
      } else if (m.from == "_topic") {
        m.source = FieldSource::topic;
      } else if (m.from == "_partition") {
        m.source = FieldSource::partition;
      } else if (m.from == "_offset") {
        m.source = FieldSource::offset;
      } else if (m.from == "_key") {
        m.source = FieldSource::key;
      } else if (m.from == "_timestamp") {
        m.source = FieldSource::timestamp;
      }
      columns_.push_back(std::move(m));
    }
    // Field names point into columns_, which no longer moves.
    for (auto& m : columns_) {
      if (m.source == FieldSource::field) {
        auto [it, fresh] = groups_.try_emplace(m.from, static_cast<std::uint32_t>(groups_.size()));
        m.group = it->second;
      }
    }
    for (const auto& m : columns_) {
      if (m.source != FieldSource::field && m.source != FieldSource::rest) mapped_meta_.emplace(m.from);
    }
  }

  std::unique_ptr<MappedRowWriter> make_writer() const override;
  const MappingSpec& spec() const override { return spec_; }

  MappingSpec spec_;
  ClickHouseDialect dialect_;
  bool has_rest_ = false;
  std::vector<MappedColumn> columns_;
  std::unordered_map<std::string_view, std::uint32_t> groups_;       // field name → slot
  std::unordered_set<std::string_view> mapped_meta_;                 // `_topic`... used by a column
};

// A column's buffers in Native layout. Maps keep keys in `data` and values in `values`; a dictionary
// column keeps its rows' numbers (UInt32) in `data` until the block is written.
struct ColumnBuffers {
  ByteBuffer data;
  LowCardinalityKeys keys;
  ByteBuffer nulls;
  ByteBuffer offsets;
  ByteBuffer values;
  std::uint64_t total = 0;  // array elements / map entries so far
};
struct Mark {
  std::size_t data = 0, nulls = 0, offsets = 0, values = 0;
  std::uint64_t total = 0;
};

template <typename T>
void put(ByteBuffer& b, T v) {
  put_native_fixed(b, v);
}
void put_string(ByteBuffer& b, std::string_view s) { put_native_string(b, s); }

// Why a value did not convert; nullptr when it did.
using Problem = const char*;

class Writer final : public MappedRowWriter {
  // A number a decoder handed over as its value (set_slot_integer, set_slot_double): no text until a
  // column needs one.
  enum class SlotNumber : std::uint8_t { none, integer, real };
  struct SlotValue {
    std::string_view text;
    FieldType type = FieldType::string;
    bool present = false;
    SlotNumber number = SlotNumber::none;
    std::int64_t integer = 0;
    double real = 0;
  };

 public:
  explicit Writer(std::shared_ptr<const Compiled> m)
      : m_(std::move(m)), buffers_(m_->columns_.size()), marks_(m_->columns_.size()), slots_(m_->groups_.size()) {
    padded_.resize(4096);
  }

  std::optional<RowRejection> append(const transforms::LogEvent& record, const MessageMeta& meta) override {
    clear_slots();
    if (!m_->groups_.empty() || m_->has_rest_) {
      const std::size_t n = record.field_count();
      if (seen_.size() < n) seen_.resize(n);
      for (std::size_t i = 0; i < n; ++i) {
        const LogField& f = record.field(i);
        // Records of one topic mostly repeat their field order: a name equal to the one last seen at
        // this position has the same slot, which is cheaper to check than to hash.
        SeenName& seen = seen_[i];
        if (seen.name != f.name) {
          auto it = m_->groups_.find(f.name);
          seen.name.assign(f.name);
          seen.slot = it == m_->groups_.end() ? kNoSlot : it->second;
          seen.taken = seen.slot != kNoSlot || m_->mapped_meta_.contains(f.name);
        }
        if (seen.slot != kNoSlot && !slots_[seen.slot].present) slots_[seen.slot] = {f.value, f.type, true};
      }
    }
    return append_row(&record, meta);
  }

  bool takes_slots() const override { return !m_->has_rest_; }
  std::uint32_t slot_of(std::string_view field) const override {
    const auto it = m_->groups_.find(field);
    return it == m_->groups_.end() ? kNoSlot : it->second;
  }
  void clear_slots() override {
    for (auto& v : slots_) v.present = false;
  }
  void set_slot(std::uint32_t slot, std::string_view text, FieldType type) override {
    slots_[slot] = {text, type, true};
  }
  void set_slot_integer(std::uint32_t slot, std::int64_t value) override {
    slots_[slot] = {{}, FieldType::number, true, SlotNumber::integer, value, 0.0};
  }
  void set_slot_double(std::uint32_t slot, double value) override {
    slots_[slot] = {{}, FieldType::number, true, SlotNumber::real, 0, value};
  }
  std::optional<RowRejection> append_slots(const MessageMeta& meta) override { return append_row(nullptr, meta); }

  std::uint64_t rows() const override { return rows_; }
  std::uint64_t bytes() const override {
    std::uint64_t n = 0;
    for (const auto& b : buffers_) {
      n += b.data.size() + b.nulls.size() + b.offsets.size() + b.values.size() + b.keys.bytes();
    }
    return n;
  }

  sinks::InsertRequest take() override {
    sinks::InsertRequest r;
    r.table = m_->spec_.table;
    r.format = "Native";
    r.rows = rows_;
    std::string& out = r.body;
    out.reserve(bytes() + 64 * buffers_.size() + 16);
    const bool legacy = m_->dialect_ == ClickHouseDialect::legacy;
    std::size_t wire_columns = 0;
    for (const auto& c : m_->columns_) wire_columns += (legacy && c.type.kind == ValueKind::map_string_string) ? 2 : 1;
    put_varint(out, wire_columns);
    put_varint(out, rows_);
    for (std::size_t i = 0; i < buffers_.size(); ++i) {
      const auto& c = m_->columns_[i];
      auto& b = buffers_[i];
      if (c.type.kind == ValueKind::map_string_string) {
        put_native_string_map(out, c.name, !legacy, b.offsets.view(), b.data.view(), b.values.view());
      } else if (c.dictionary) {
        put_native_column_header(out, c.name, c.wire_type);
        b.keys.append_column(out, {reinterpret_cast<const std::uint32_t*>(b.data.data()), b.data.size() / 4});
        b.keys.clear();
      } else {
        put_native_column_header(out, c.name, c.wire_type);
        out += b.nulls.view();
        out += b.offsets.view();
        out += b.data.view();
      }
      b.data.clear();
      b.nulls.clear();
      b.offsets.clear();
      b.values.clear();
      b.total = 0;
    }
    rows_ = 0;
    return r;
  }

 private:
  void rollback(std::size_t c) {
    auto& b = buffers_[c];
    const Mark& k = marks_[c];
    b.data.set_size(k.data);
    b.nulls.set_size(k.nulls);
    b.offsets.set_size(k.offsets);
    b.values.set_size(k.values);
    b.total = k.total;
  }

  static std::string shown(std::string_view v) {
    std::string out;
    std::size_t n = v.size();
    if (n > 100) {
      n = 100;
      while (n > 0 && (static_cast<unsigned char>(v[n]) & 0xC0) == 0x80) --n;  // not inside a UTF-8 character
    }
    out.reserve(n + 8);
    out += '"';
    for (std::size_t i = 0; i < n; ++i) {
      const char ch = v[i];
      if (ch == '"' || ch == '\\') out += '\\';
      out += (static_cast<unsigned char>(ch) < 0x20) ? ' ' : ch;
    }
    out += '"';
    if (n < v.size()) out += "...";
    return out;
  }

  std::optional<std::string> write_column(const MappedColumn& c, ColumnBuffers& b, const transforms::LogEvent* record,
                                          const MessageMeta& meta) {
    if (c.source == FieldSource::rest) {
      write_rest(b, *record);  // takes_slots() is false with such a column: rows come from events
      return std::nullopt;
    }
    std::string_view text;
    FieldType type = FieldType::string;
    bool present = true;
    TimeUnit unit = TimeUnit::by_magnitude;
    switch (c.source) {
      case FieldSource::field: {
        const SlotValue& f = slots_[c.group];
        if (!f.present) {
          present = false;
          break;
        }
        type = f.type;
        if (f.number == SlotNumber::none) {
          text = f.text;
        } else if (put_number(c, b, f)) {
          return std::nullopt;
        } else {
          text = f.number == SlotNumber::integer ? number_text(f.integer)
                                                 : decoders::records::json_number_text(f.real, number_buf_);
        }
        break;
      }
      case FieldSource::topic: text = meta.topic; break;
      case FieldSource::key: text = meta.key; break;
      case FieldSource::partition: text = number_text(meta.partition), type = FieldType::number; break;
      case FieldSource::offset: text = number_text(meta.offset), type = FieldType::number; break;
      case FieldSource::timestamp:
        text = number_text(meta.timestamp_ms), type = FieldType::number, unit = TimeUnit::milliseconds;
        break;
      case FieldSource::rest: break;
    }
    // Empty text is no value for the kinds that cannot hold one (an empty CSV cell, say).
    const bool is_null = present && (type == FieldType::null || (text.empty() && !is_text(c.type.kind)));
    if (present && !is_null) {
      if (c.type.nullable) put<std::uint8_t>(b.nulls, 0);
      if (Problem p = convert(c, b, text, type, unit)) {
        return "column " + c.name + " (" + c.type_name + "): field '" + c.from + "' is " + shown(text) + ", " + p;
      }
      return std::nullopt;
    }
    if (c.type.nullable && (is_null || !c.default_value) && !(c.required && !present)) {
      put<std::uint8_t>(b.nulls, 1);
      write_zero(c, b);
      return std::nullopt;
    }
    if (c.default_value) {
      if (c.type.nullable) put<std::uint8_t>(b.nulls, 0);
      if (Problem p = convert(c, b, *c.default_value, FieldType::string, TimeUnit::by_magnitude)) {
        return "column " + c.name + " (" + c.type_name + "): the default " + shown(*c.default_value) + " is " + p;
      }
      return std::nullopt;
    }
    if (c.required) {
      return "column " + c.name + " (" + c.type_name + "): field '" + c.from + "' is " +
             (!present ? "missing" : type == FieldType::null ? "null" : "empty") + " and the column is required";
    }
    write_zero(c, b);
    return std::nullopt;
  }

  // A number slot into a column that takes its value as the number's text would convert to (the same
  // value, the same range checks); false, writing nothing, when the column needs the text or refuses the
  // value (the text path then gives the same row or the same rejection).
  bool put_number(const MappedColumn& c, ColumnBuffers& b, const SlotValue& f) {
    const auto put_in_range = [&]<typename T>(T*) {
      if (f.number != SlotNumber::integer || f.integer < static_cast<__int128>(std::numeric_limits<T>::min()) ||
          f.integer > static_cast<__int128>(std::numeric_limits<T>::max())) {
        return false;
      }
      if (c.type.nullable) put<std::uint8_t>(b.nulls, 0);
      put<T>(b.data, static_cast<T>(f.integer));
      return true;
    };
    switch (c.type.kind) {
      case ValueKind::u8: return put_in_range(static_cast<std::uint8_t*>(nullptr));
      case ValueKind::u16: return put_in_range(static_cast<std::uint16_t*>(nullptr));
      case ValueKind::u32: return put_in_range(static_cast<std::uint32_t*>(nullptr));
      case ValueKind::u64: return put_in_range(static_cast<std::uint64_t*>(nullptr));
      case ValueKind::i8: return put_in_range(static_cast<std::int8_t*>(nullptr));
      case ValueKind::i16: return put_in_range(static_cast<std::int16_t*>(nullptr));
      case ValueKind::i32: return put_in_range(static_cast<std::int32_t*>(nullptr));
      case ValueKind::i64: return put_in_range(static_cast<std::int64_t*>(nullptr));
      case ValueKind::f32:
      case ValueKind::f64: {
        // Both texts read back as the value: an integer's digits round to the nearest double, as the
        // conversion does; a double's text is the shortest that reads back the same.
        const double v = f.number == SlotNumber::integer ? static_cast<double>(f.integer) : f.real;
        if (c.type.kind == ValueKind::f32 && std::fabs(v) > static_cast<double>(std::numeric_limits<float>::max())) {
          return false;
        }
        if (c.type.nullable) put<std::uint8_t>(b.nulls, 0);
        if (c.type.kind == ValueKind::f64) put<double>(b.data, v);
        else put<float>(b.data, static_cast<float>(v));
        return true;
      }
      case ValueKind::date:
      case ValueKind::datetime:
      case ValueKind::datetime64: {
        if (f.number != SlotNumber::integer || f.integer < 0 || f.integer >= 1'000'000'000'000'000'000) return false;
        // put_instant() checks the range before it writes: a refusal leaves nothing behind.
        if (put_instant(c, b, instant_of_count(f.integer, TimeUnit::by_magnitude),
                        m_->dialect_ == ClickHouseDialect::legacy)) {
          return false;
        }
        if (c.type.nullable) put<std::uint8_t>(b.nulls, 0);
        return true;
      }
      default: return false;
    }
  }

  std::string_view number_text(std::int64_t v) { return decoders::records::json_number_text(v, number_buf_); }

  void write_zero(const MappedColumn& c, ColumnBuffers& b) {
    if (is_array(c.type.kind) || c.type.kind == ValueKind::map_string_string) {
      put<std::uint64_t>(b.offsets, b.total);
    } else if (c.dictionary) {
      put<std::uint32_t>(b.data, 0);  // the empty string's number
    } else if (c.width == 0) {
      put<std::uint8_t>(b.data, 0);  // an empty string: its varint length
    } else {
      std::memset(b.data.tail(c.width), 0, c.width);
      b.data.commit(c.width);
    }
  }

  template <typename T>
  static Problem put_integral(ColumnBuffers& b, std::string_view text, FieldType type) {
    auto v = parse_integral(text);
    if (!v && type == FieldType::boolean) {
      if (auto flag = parse_bool(text)) v = *flag ? 1 : 0;
    }
    if (!v) return "not an integer";
    if (*v < static_cast<__int128>(std::numeric_limits<T>::min()) ||
        *v > static_cast<__int128>(std::numeric_limits<T>::max())) {
      return "out of range";
    }
    put<T>(b.data, static_cast<T>(*v));
    return nullptr;
  }

  Problem convert(const MappedColumn& c, ColumnBuffers& b, std::string_view text, FieldType type, TimeUnit unit) {
    const bool legacy = m_->dialect_ == ClickHouseDialect::legacy;
    switch (c.type.kind) {
      case ValueKind::string: put_string(b.data, text); return nullptr;
      case ValueKind::low_cardinality_string:
        if (c.dictionary) put<std::uint32_t>(b.data, b.keys.index_of(text));
        else put_string(b.data, text);
        return nullptr;
      case ValueKind::fixed_string: {
        if (text.size() > c.width) return "longer than the column's fixed size";
        std::uint8_t* p = b.data.tail(c.width);
        std::memcpy(p, text.data(), text.size());
        std::memset(p + text.size(), 0, c.width - text.size());
        b.data.commit(c.width);
        return nullptr;
      }
      case ValueKind::u8: return put_integral<std::uint8_t>(b, text, type);
      case ValueKind::u16: return put_integral<std::uint16_t>(b, text, type);
      case ValueKind::u32: return put_integral<std::uint32_t>(b, text, type);
      case ValueKind::u64: return put_integral<std::uint64_t>(b, text, type);
      case ValueKind::i8: return put_integral<std::int8_t>(b, text, type);
      case ValueKind::i16: return put_integral<std::int16_t>(b, text, type);
      case ValueKind::i32: return put_integral<std::int32_t>(b, text, type);
      case ValueKind::i64: return put_integral<std::int64_t>(b, text, type);
      case ValueKind::f32:
      case ValueKind::f64: {
        auto v = parse_double(text);
        if (!v && type == FieldType::boolean) {
          if (auto flag = parse_bool(text)) v = *flag ? 1.0 : 0.0;
        }
        if (!v) return "not a number";
        if (c.type.kind == ValueKind::f64) {
          put<double>(b.data, *v);
        } else {
          if (std::isfinite(*v) && std::fabs(*v) > static_cast<double>(std::numeric_limits<float>::max())) {
            return "out of range";
          }
          put<float>(b.data, static_cast<float>(*v));
        }
        return nullptr;
      }
      case ValueKind::boolean: {
        auto v = parse_bool(text);
        if (!v) return "not a boolean (true, false, 1 or 0)";
        put<std::uint8_t>(b.data, *v ? 1 : 0);
        return nullptr;
      }
      case ValueKind::date:
      case ValueKind::datetime:
      case ValueKind::datetime64: return put_time(c, b, text, unit, legacy);
      case ValueKind::uuid: {
        auto v = parse_uuid(text);
        if (!v) return "not a UUID";
        b.data.append(v->data(), 16);
        return nullptr;
      }
      case ValueKind::ipv4: {
        auto v = parse_ipv4(text);
        if (!v && type == FieldType::number) {
          auto n = parse_integral(text);
          if (n && *n >= 0 && *n <= 0xFFFFFFFF) v = static_cast<std::uint32_t>(*n);
        }
        if (!v) return "not an IPv4 address";
        put<std::uint32_t>(b.data, *v);
        return nullptr;
      }
      case ValueKind::ipv6: {
        auto v = parse_ipv6(text);
        if (!v) return "not an IP address";
        b.data.append(v->data(), 16);
        return nullptr;
      }
      case ValueKind::array_string:
      case ValueKind::array_int64:
      case ValueKind::array_float64: return put_array(c, b, text, type);
      case ValueKind::map_string_string: return put_map(b, text, type);
    }
    return "of an unknown type";
  }

  static Problem put_time(const MappedColumn& c, ColumnBuffers& b, std::string_view text, TimeUnit unit, bool legacy) {
    auto t = parse_instant(text, unit);
    if (!t) return "not a time (unix seconds/milliseconds/microseconds/nanoseconds, or RFC 3339 text)";
    return put_instant(c, b, *t, legacy);
  }

  static Problem put_instant(const MappedColumn& c, ColumnBuffers& b, const Instant& t, bool legacy) {
    if (c.type.kind == ValueKind::date) {
      const std::int64_t days = t.seconds >= 0 ? t.seconds / 86400 : (t.seconds - 86399) / 86400;
      if (days < 0 || days > 65535) return "out of range for Date (1970-01-01 to 2149-06-06)";
      put<std::uint16_t>(b.data, static_cast<std::uint16_t>(days));
      return nullptr;
    }
    if (c.type.kind == ValueKind::datetime || legacy) {
      if (t.seconds < 0 || t.seconds > 0xFFFFFFFFLL) return "out of range for DateTime (1970 to 2106)";
      put<std::uint32_t>(b.data, static_cast<std::uint32_t>(t.seconds));
      return nullptr;
    }
    static constexpr std::int64_t kPow10[] = {1, 10, 100, 1'000, 10'000, 100'000, 1'000'000, 10'000'000,
                                              100'000'000, 1'000'000'000};
    const int p = c.type.param;
    const __int128 ticks = static_cast<__int128>(t.seconds) * kPow10[p] + t.nanos / kPow10[9 - p];
    if (ticks > std::numeric_limits<std::int64_t>::max() || ticks < std::numeric_limits<std::int64_t>::min()) {
      return "out of range for DateTime64";
    }
    put<std::int64_t>(b.data, static_cast<std::int64_t>(ticks));
    return nullptr;
  }

  // Parses JSON text into the reused parser; nullptr when it is not JSON.
  const char* parse_json(std::string_view text, simdjson::dom::element& out) {
    if (padded_.size() < text.size() + simdjson::SIMDJSON_PADDING) padded_.resize(text.size() + simdjson::SIMDJSON_PADDING);
    std::memcpy(padded_.data(), text.data(), text.size());
    if (parser_.parse(padded_.data(), text.size(), false).get(out) != simdjson::SUCCESS) return nullptr;
    return "";
  }

  // An element of a JSON array or object as text: strings unescaped, others as compact JSON.
  std::string_view element_text(simdjson::dom::element e) {
    using simdjson::dom::element_type;
    switch (e.type()) {
      case element_type::STRING: return e.get_string().value_unsafe();
      case element_type::NULL_VALUE: return {};
      case element_type::BOOL: return e.get_bool().value_unsafe() ? "true" : "false";
      case element_type::INT64: return number_text(e.get_int64().value_unsafe());
      case element_type::UINT64: {
        auto [p, ec] = std::to_chars(number_buf_, number_buf_ + sizeof(number_buf_), e.get_uint64().value_unsafe());
        return {number_buf_, static_cast<std::size_t>(p - number_buf_)};
      }
      case element_type::DOUBLE: {
        auto [p, ec] = std::to_chars(number_buf_, number_buf_ + sizeof(number_buf_), e.get_double().value_unsafe());
        return {number_buf_, static_cast<std::size_t>(p - number_buf_)};
      }
      default:
        nested_ = simdjson::minify(e);  // nested arrays and objects are rare: a copy is fine
        return nested_;
    }
  }

  Problem put_array(const MappedColumn& c, ColumnBuffers& b, std::string_view text, FieldType type) {
    static constexpr const char* kNotArray = "not a JSON array";
    simdjson::dom::element root;
    if ((type != FieldType::json && !text.starts_with('[')) || !parse_json(text, root)) return kNotArray;
    simdjson::dom::array array;
    if (root.get_array().get(array) != simdjson::SUCCESS) return kNotArray;
    std::uint64_t n = 0;
    for (auto e : array) {
      ++n;
      if (c.type.kind == ValueKind::array_string) {
        put_string(b.data, element_text(e));
        continue;
      }
      using simdjson::dom::element_type;
      const auto t = e.type();
      if (c.type.kind == ValueKind::array_int64) {
        std::optional<__int128> v;
        if (t == element_type::INT64) v = e.get_int64().value_unsafe();
        else if (t == element_type::UINT64) v = e.get_uint64().value_unsafe();
        else if (t == element_type::DOUBLE || t == element_type::STRING) v = parse_integral(element_text(e));
        if (!v) return "not a JSON array of integers";
        if (*v > std::numeric_limits<std::int64_t>::max()) return "out of range for Array(Int64)";
        put<std::int64_t>(b.data, static_cast<std::int64_t>(*v));
      } else {
        std::optional<double> v;
        if (t == element_type::INT64 || t == element_type::UINT64 || t == element_type::DOUBLE) {
          v = e.get_double().value_unsafe();
        } else if (t == element_type::STRING) {
          v = parse_double(e.get_string().value_unsafe());
        }
        if (!v) return "not a JSON array of numbers";
        put<double>(b.data, *v);
      }
    }
    b.total += n;
    put<std::uint64_t>(b.offsets, b.total);
    return nullptr;
  }

  Problem put_map(ColumnBuffers& b, std::string_view text, FieldType type) {
    static constexpr const char* kNotObject = "not a JSON object";
    simdjson::dom::element root;
    if ((type != FieldType::json && !text.starts_with('{')) || !parse_json(text, root)) return kNotObject;
    simdjson::dom::object object;
    if (root.get_object().get(object) != simdjson::SUCCESS) return kNotObject;
    std::uint64_t n = 0;
    for (auto field : object) {
      ++n;
      put_string(b.data, field.key);
      put_string(b.values, element_text(field.value));
    }
    b.total += n;
    put<std::uint64_t>(b.offsets, b.total);
    return nullptr;
  }

  // `from: "*"`: every field no other column takes.
  void write_rest(ColumnBuffers& b, const transforms::LogEvent& record) {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < record.field_count(); ++i) {
      const LogField& f = record.field(i);
      if (seen_[i].taken) continue;  // append() looked every name up already
      put_string(b.data, f.name);
      put_string(b.values, f.value);
      ++n;
    }
    b.total += n;
    put<std::uint64_t>(b.offsets, b.total);
  }

  // `record` is null for rows from slots (no column then takes every other field).
  std::optional<RowRejection> append_row(const transforms::LogEvent* record, const MessageMeta& meta) {
    const auto& cols = m_->columns_;
    for (std::size_t c = 0; c < cols.size(); ++c) {
      auto& b = buffers_[c];
      marks_[c] = {b.data.size(), b.nulls.size(), b.offsets.size(), b.values.size(), b.total};
      if (auto reason = write_column(cols[c], b, record, meta)) {
        for (std::size_t k = 0; k <= c; ++k) rollback(k);
        return RowRejection{std::move(*reason)};
      }
    }
    ++rows_;
    return std::nullopt;
  }

  std::shared_ptr<const Compiled> m_;
  std::vector<ColumnBuffers> buffers_;
  std::vector<Mark> marks_;
  std::vector<SlotValue> slots_;
  static constexpr std::uint32_t kNoSlot = UINT32_MAX;
  struct SeenName {
    std::string name;
    std::uint32_t slot = kNoSlot;
    bool taken = false;  // by a column other than `from: "*"`
  };
  std::vector<SeenName> seen_;  // by field position: the name last seen there and its slot
  std::uint64_t rows_ = 0;
  simdjson::dom::parser parser_;
  std::string padded_;
  std::string nested_;
  char number_buf_[32];
};

std::unique_ptr<MappedRowWriter> Compiled::make_writer() const {
  return std::make_unique<Writer>(shared_from_this());
}

}  // namespace

std::shared_ptr<const CompiledMapping> compile_mapping(const MappingSpec& spec, ClickHouseDialect dialect) {
  return std::make_shared<Compiled>(spec, dialect);
}

}  // namespace sluice::pipeline::jobs
