#include "decoders/records/record_common.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace sluice::decoders::records::detail {

void clear_fields(transforms::LogEvent& event) {
  // Only what is set needs saving; an empty member is what clear() leaves anyway.
  std::string saved[5];
  std::string* members[5] = {&event.host, &event.path, &event.source, &event.message, &event.route};
  for (int i = 0; i < 5; ++i) {
    if (!members[i]->empty()) saved[i].swap(*members[i]);
  }
  const auto file_id = event.file_id;
  const auto offset = event.offset;
  const auto timestamp_ms = event.timestamp_ms;
  event.clear();
  for (int i = 0; i < 5; ++i) {
    if (!saved[i].empty()) saved[i].swap(*members[i]);
  }
  event.file_id = file_id;
  event.offset = offset;
  event.timestamp_ms = timestamp_ms;
}

void append_json_string(std::string_view s, std::string& out) {
  out += '"';
  std::size_t plain = 0;  // start of the run of bytes that need no escape
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + plain, i - plain);
    plain = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
    }
  }
  out.append(s.data() + plain, s.size() - plain);
  out += '"';
}

void append_base64(std::span<const std::byte> bytes, std::string& out) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::size_t i = 0;
  const auto at = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<std::uint8_t>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t v = at(i) << 16;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const std::uint32_t v = at(i) << 16 | at(i + 1) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
}

bool valid_utf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

std::size_t FieldOutput::lookup(std::string_view name, std::size_t hash) const {
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.generation != generation_) return static_cast<std::size_t>(-1);
    if (event_->field(s.field).name == name) return s.field;
  }
}

void FieldOutput::index(std::size_t field, std::size_t hash) {
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (s.generation != generation_) {
      s.generation = generation_;
      s.field = static_cast<std::uint32_t>(field);
      return;
    }
  }
}

transforms::LogField* FieldOutput::add(std::string_view name, bool* existed) {
  transforms::LogEvent& e = *event_;
  const std::size_t n = e.field_count();
  if (existed) *existed = false;
  if (n < kLinear) {
    // A 64-bit filter of the names so far: most new names are known absent without any comparison.
    const std::uint64_t bit = std::uint64_t{1} << quick_hash(name);
    if (seen_ & bit) {
      for (std::size_t i = 0; i < n; ++i) {
        const std::string& other = e.field(i).name;
        if (other.size() == name.size() && std::memcmp(other.data(), name.data(), name.size()) == 0) {
          if (existed) *existed = true;
          return &e.field(i);
        }
      }
    }
    if (n >= max_fields_) return nullptr;
    seen_ |= bit;
    return &e.append_field(name);
  } else {
    if (slots_.empty()) {
      // Twice the field limit keeps probes short; sized once, at the first wide record.
      std::size_t size = 64;
      while (size < 2 * (max_fields_ + 1)) size *= 2;
      slots_.resize(size);
    }
    if (generation_ == 0) {  // the counter wrapped: old stamps could look current
      std::fill(slots_.begin(), slots_.end(), Slot{});
      generation_ = 1;
    }
    const std::hash<std::string_view> hasher;
    for (; indexed_ < n; ++indexed_) index(indexed_, hasher(e.field(indexed_).name));
    const std::size_t found = lookup(name, hasher(name));
    if (found != static_cast<std::size_t>(-1)) {
      if (existed) *existed = true;
      return &e.field(found);
    }
  }
  if (n >= max_fields_) return nullptr;
  return &e.append_field(name);
}

std::string read_whole_file(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{} {}: cannot open: {}", what, path, std::strerror(errno)));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw std::runtime_error(fmt::format("{} {}: read failed", what, path));
  return std::move(buf).str();
}

}  // namespace sluice::decoders::records::detail
