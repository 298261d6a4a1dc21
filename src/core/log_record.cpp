#include "core/log_record.hpp"

#include <cstring>

namespace sluice {
namespace {

void put_be(std::vector<std::byte>& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
}
void set_be(std::byte* at, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) {
    *at++ = static_cast<std::byte>((v >> (8 * i)) & 0xff);
  }
}
std::uint64_t get_be(const std::byte* at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<std::uint8_t>(at[i]);
  return v;
}
void put_varint(std::vector<std::byte>& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<std::byte>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::byte>(v));
}
bool get_varint(std::span<const std::byte> data, std::size_t& at, std::uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (at >= data.size()) return false;
    auto b = static_cast<std::uint8_t>(data[at++]);
    v |= std::uint64_t{b & 0x7fu} << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}
void append(std::vector<std::byte>& out, std::string_view s) {
  auto n = out.size();
  out.resize(n + s.size());
  if (!s.empty()) std::memcpy(out.data() + n, s.data(), s.size());
}

}  // namespace

void LogChunkWriter::begin(std::string_view host, std::string_view path, std::uint64_t file_id) {
  out_.clear();
  lines_ = 0;
  last_offset_ = 0;
  host = host.substr(0, 0xffff);
  path = path.substr(0, 0xffff);
  out_.push_back(static_cast<std::byte>(kLogChunkVersion));
  out_.push_back(std::byte{0});
  put_be(out_, host.size(), 2);
  put_be(out_, path.size(), 2);
  put_be(out_, 0, 4);
  put_be(out_, file_id, 8);
  put_be(out_, 0, 8);
  append(out_, host);
  append(out_, path);
}

void LogChunkWriter::add(std::uint64_t offset, std::string_view text, std::uint8_t flags) {
  if (lines_ == 0) {
    set_be(out_.data() + 18, offset, 8);
    last_offset_ = offset;
  }
  put_varint(out_, offset - last_offset_);
  put_varint(out_, text.size());
  out_.push_back(static_cast<std::byte>(flags));
  append(out_, text);
  last_offset_ = offset;
  ++lines_;
}

std::span<const std::byte> LogChunkWriter::bytes() {
  set_be(out_.data() + 6, lines_, 4);
  return out_;
}

const char* to_string(LogChunkError e) {
  switch (e) {
    case LogChunkError::none: return "none";
    case LogChunkError::truncated: return "truncated";
    case LogChunkError::bad_version: return "bad_version";
    case LogChunkError::bad_line: return "bad_line";
    case LogChunkError::trailing_bytes: return "trailing_bytes";
  }
  return "unknown";
}

LogChunkError LogChunkReader::open(std::span<const std::byte> bytes) {
  data_ = bytes;
  at_ = 0;
  read_ = 0;
  error_ = LogChunkError::none;
  if (bytes.size() < kLogChunkHeaderSize) return error_ = LogChunkError::truncated;
  if (static_cast<std::uint8_t>(bytes[0]) != kLogChunkVersion) return error_ = LogChunkError::bad_version;
  auto host_len = get_be(bytes.data() + 2, 2);
  auto path_len = get_be(bytes.data() + 4, 2);
  count_ = static_cast<std::uint32_t>(get_be(bytes.data() + 6, 4));
  file_id_ = get_be(bytes.data() + 10, 8);
  offset_ = get_be(bytes.data() + 18, 8);
  if (bytes.size() < kLogChunkHeaderSize + host_len + path_len) return error_ = LogChunkError::truncated;
  const char* base = reinterpret_cast<const char*>(bytes.data());
  host_ = std::string_view(base + kLogChunkHeaderSize, host_len);
  path_ = std::string_view(base + kLogChunkHeaderSize + host_len, path_len);
  at_ = kLogChunkHeaderSize + host_len + path_len;
  // Every line takes at least 3 bytes, so a count the body cannot hold is refused up front.
  if (count_ > (bytes.size() - at_) / 3) return error_ = LogChunkError::truncated;
  return error_;
}

bool LogChunkReader::next(LogLine& line) {
  if (error_ != LogChunkError::none) return false;
  if (read_ == count_) {
    if (at_ != data_.size()) error_ = LogChunkError::trailing_bytes;
    return false;
  }
  std::uint64_t delta = 0, length = 0;
  if (!get_varint(data_, at_, delta) || !get_varint(data_, at_, length) || at_ >= data_.size() ||
      length > data_.size() - at_ - 1) {
    error_ = LogChunkError::bad_line;
    return false;
  }
  line.flags = static_cast<std::uint8_t>(data_[at_++]);
  offset_ += delta;
  line.offset = offset_;
  line.text = std::string_view(reinterpret_cast<const char*>(data_.data()) + at_, length);
  at_ += length;
  ++read_;
  return true;
}

}  // namespace sluice
