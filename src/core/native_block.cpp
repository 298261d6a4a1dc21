#include "core/native_block.hpp"

namespace sluice {

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void NativeColumn::put_string(std::string_view s) {
  put_varint(data_, s.size());
  data_.append(s);
}

void NativeColumn::append_to(std::string& out) const {
  put_varint(out, name_.size());
  out += name_;
  put_varint(out, type_.size());
  out += type_;
  if (!offsets_.empty()) out.append(reinterpret_cast<const char*>(offsets_.data()), offsets_.size() * 8);
  out += data_;
}

void encode_native_block(const std::vector<NativeColumn>& columns, std::size_t rows, std::string& out) {
  put_varint(out, columns.size());
  put_varint(out, rows);
  for (const auto& c : columns) c.append_to(out);
}

}  // namespace sluice
