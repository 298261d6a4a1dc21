// Internal pieces shared by the record decoders: bounded field output, JSON text, base64, the
// decoder constructors of each kind.
#pragma once

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "decoders/records/record_decoder.hpp"
#include "transforms/log_event.hpp"

namespace sluice::decoders::records::detail {

inline std::string_view as_text(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline std::span<const std::byte> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// Clears the fields of `event` but keeps its identity (host, path, source, offset...), which the
// caller owns. LogEvent::clear() resets both, so the identity is moved out and back (no allocation:
// swaps keep every buffer).
void clear_fields(transforms::LogEvent& event);

// Appends `s` as a JSON string literal (quotes, escapes; bytes are copied as they are).
void append_json_string(std::string_view s, std::string& out);
// Standard base64 with padding.
void append_base64(std::span<const std::byte> bytes, std::string& out);
bool valid_utf8(std::string_view s);

template <typename T>
void append_integer(T v, std::string& out) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}
// Finite doubles as the shortest JSON number that reads back the same; NaN and infinities have no
// JSON number, so callers write them as strings (returns false then, writing nothing).
inline bool append_double(double v, std::string& out) {
  if (!std::isfinite(v)) return false;
  char buf[32];
  out.append(json_number_text(v, buf));
  return true;
}
inline std::string_view non_finite_text(double v) {
  if (std::isnan(v)) return "NaN";
  return v > 0 ? "Infinity" : "-Infinity";
}

// Adds the fields of one record to an event: at most `max_fields`, a name seen again replaces the
// earlier value (last wins). Small records are searched linearly; past kLinear names a hash index
// keeps hostile records with thousands of fields linear in time.
class FieldOutput {
 public:
  explicit FieldOutput(std::size_t max_fields) : max_fields_(max_fields) {}

  void begin(transforms::LogEvent& event) {
    clear_fields(event);
    event_ = &event;
    indexed_ = 0;
    seen_ = 0;
    ++generation_;
  }
  // The field named `name`, fresh (value cleared) or the earlier one when `existed`; nullptr when the
  // record already holds max_fields fields.
  transforms::LogField* add(std::string_view name, bool* existed = nullptr);
  transforms::LogField* add_value(std::string_view name, std::string_view value, transforms::FieldType type) {
    transforms::LogField* f = add(name);
    if (f) {
      f->value.assign(value);
      f->type = type;
    }
    return f;
  }

 private:
  static constexpr std::size_t kLinear = 24;
  static unsigned quick_hash(std::string_view name) {
    if (name.empty()) return 0;
    return static_cast<unsigned>(name.size() * 31 + static_cast<unsigned char>(name.front()) * 7 +
                                 static_cast<unsigned char>(name.back())) & 63U;
  }
  std::size_t lookup(std::string_view name, std::size_t hash) const;
  void index(std::size_t i, std::size_t hash);

  std::size_t max_fields_;
  transforms::LogEvent* event_ = nullptr;
  std::uint64_t seen_ = 0;            // quick_hash bits of the names so far (linear mode)
  std::size_t indexed_ = 0;          // fields entered into the hash index so far (0: not in use)
  std::uint32_t generation_ = 0;
  struct Slot {
    std::uint32_t generation = 0;
    std::uint32_t field = 0;
  };
  std::vector<Slot> slots_;
};

// Constructors of each kind (files: json_decoder.cpp, csv_decoder.cpp, avro_decoder.cpp,
// protobuf_decoder.cpp). Each throws std::runtime_error when its files cannot be used.
std::unique_ptr<RecordDecoderFactory> make_json_factory(const DecoderSpec& spec, bool lines);
std::unique_ptr<RecordDecoderFactory> make_csv_factory(const DecoderSpec& spec);
std::unique_ptr<RecordDecoderFactory> make_avro_factory(const DecoderSpec& spec);
std::unique_ptr<RecordDecoderFactory> make_protobuf_factory(const DecoderSpec& spec);

// Reads a whole file; throws std::runtime_error "<what> <path>: <reason>".
std::string read_whole_file(const std::string& path, std::string_view what);

}  // namespace sluice::decoders::records::detail
