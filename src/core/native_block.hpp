// NativeColumn / encode_native_block: columnar buffers laid out as ClickHouse's Native format.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// One column of a block, its values appended in ClickHouse's Native layout (little-endian fixed
// width, varint-prefixed strings, raw bytes for FixedString/IPv6). Arrays keep their offsets apart.
class NativeColumn {
 public:
  NativeColumn(std::string name, std::string type) : name_(std::move(name)), type_(std::move(type)) {}

  template <typename T>
  void put(T v) {
    const auto at = data_.size();
    data_.resize(at + sizeof(T));
    std::memcpy(data_.data() + at, &v, sizeof(T));  // x86-64 is little-endian, like Native
  }
  void put_bytes(const void* p, std::size_t n) { data_.append(static_cast<const char*>(p), n); }
  void put_string(std::string_view s);
  // Arrays: push the elements with put(), then close the row.
  void close_array_row(std::size_t elements) {
    array_total_ += elements;
    offsets_.push_back(array_total_);
  }

  const std::string& name() const { return name_; }
  const std::string& type() const { return type_; }
  std::size_t bytes() const { return data_.size() + offsets_.size() * 8; }
  void clear() {
    data_.clear();
    offsets_.clear();
    array_total_ = 0;
  }
  void append_to(std::string& out) const;

 private:
  std::string name_;
  std::string type_;
  std::string data_;
  std::vector<std::uint64_t> offsets_;
  std::uint64_t array_total_ = 0;
};

void put_varint(std::string& out, std::uint64_t v);

// A whole block in Native format (as sent with `INSERT ... FORMAT Native`).
void encode_native_block(const std::vector<NativeColumn>& columns, std::size_t rows, std::string& out);

}  // namespace sluice
