#include "core/native_block.hpp"

#include <xxhash.h>

#include <algorithm>

namespace sluice {

ByteBuffer& ByteBuffer::operator=(const ByteBuffer& other) {
  if (this != &other) {
    size_ = 0;
    reserve(other.size_);
    if (other.size_) std::memcpy(data_.get(), other.data_.get(), other.size_);
    size_ = other.size_;
  }
  return *this;
}

void ByteBuffer::grow(std::size_t need) { reallocate(std::max({need, capacity_ * 2, std::size_t{256}})); }

void ByteBuffer::reallocate(std::size_t capacity) {
  auto fresh = std::make_unique_for_overwrite<std::uint8_t[]>(capacity);
  if (size_) std::memcpy(fresh.get(), data_.get(), size_);
  data_ = std::move(fresh);
  capacity_ = capacity;
}

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_native_column_header(std::string& out, std::string_view name, std::string_view type) {
  put_varint(out, name.size());
  out += name;
  put_varint(out, type.size());
  out += type;
}

void put_native_string(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

void put_native_string_map(std::string& out, std::string_view name, bool as_map, std::string_view offsets,
                           std::string_view keys, std::string_view values) {
  if (as_map) {
    // Map(K, V) travels as Array(Tuple(K, V)): offsets, then every key, then every value.
    put_native_column_header(out, name, "Map(String, String)");
    out.append(offsets);
    out.append(keys);
    out.append(values);
    return;
  }
  const std::string key_column = std::string(name) + ".Key";
  const std::string value_column = std::string(name) + ".Value";
  put_native_column_header(out, key_column, "Array(String)");
  out.append(offsets);
  out.append(keys);
  put_native_column_header(out, value_column, "Array(String)");
  out.append(offsets);
  out.append(values);
}

// XXH3: several times quicker than std::hash on the short keys a dictionary holds.
std::size_t LowCardinalityKeys::Hash::operator()(std::string_view s) const { return XXH3_64bits(s.data(), s.size()); }

std::uint32_t LowCardinalityKeys::index_of(std::string_view value) {
  if (value.empty()) return 0;
  if (auto it = numbers_.find(value); it != numbers_.end()) return it->second;
  const auto number = static_cast<std::uint32_t>(numbers_.size() + 1);
  numbers_.emplace(value, number);
  put_native_string(keys_, value);
  return number;
}

void LowCardinalityKeys::clear() {
  numbers_.clear();
  keys_.clear();
}

void LowCardinalityKeys::append_column(std::string& out, std::span<const std::uint32_t> rows) const {
  if (rows.empty()) return;
  // The index type: its width code in the low byte, with "has additional keys" and "needs a dictionary
  // update", as a block without a global dictionary carries every key as an additional one.
  const std::size_t keys = size();
  const std::uint64_t width_code = keys <= 0x100 ? 0 : keys <= 0x10000 ? 1 : 2;
  put_native_fixed(out, kKeysVersion);
  put_native_fixed(out, width_code | kHasAdditionalKeys | kNeedUpdateDictionary);
  put_native_fixed(out, static_cast<std::uint64_t>(keys));
  out.push_back('\0');  // key 0: the empty string
  out += keys_.view();
  put_native_fixed(out, static_cast<std::uint64_t>(rows.size()));
  const auto put_rows = [&]<typename T>(T) {
    const std::size_t at = out.size();
    out.resize(at + rows.size() * sizeof(T));
    auto* p = out.data() + at;
    for (const std::uint32_t r : rows) {
      const auto v = static_cast<T>(r);
      std::memcpy(p, &v, sizeof(T));
      p += sizeof(T);
    }
  };
  if (width_code == 0) put_rows(std::uint8_t{});
  else if (width_code == 1) put_rows(std::uint16_t{});
  else put_rows(std::uint32_t{});
}

void NativeColumn::append_to(std::string& out) const {
  put_native_column_header(out, name_, type_);
  if (!offsets_.empty()) out.append(reinterpret_cast<const char*>(offsets_.data()), offsets_.size() * 8);
  out += data_.view();
}

void encode_native_block(const std::vector<NativeColumn>& columns, std::size_t rows, std::string& out) {
  put_varint(out, columns.size());
  put_varint(out, rows);
  for (const auto& c : columns) c.append_to(out);
}

}  // namespace sluice
