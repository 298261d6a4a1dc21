#include "transforms/networks.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace sluice::transforms {
namespace {

bool host_bits_clear(const Ip6& a, unsigned length) {
  for (unsigned bit = length; bit < 128; ++bit) {
    if (a[bit / 8] & (0x80u >> (bit % 8))) return false;
  }
  return true;
}

}  // namespace

bool Prefix::contains(const Ip6& a) const {
  const unsigned full = length / 8;
  for (unsigned i = 0; i < full; ++i) {
    if (a[i] != address[i]) return false;
  }
  const unsigned rest = length % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xffu << (8 - rest));
  return (a[full] & mask) == (address[full] & mask);
}

std::optional<Prefix> parse_prefix(std::string_view text, std::string* error) {
  const auto slash = text.find('/');
  const auto addr_text = text.substr(0, slash);
  auto addr = ip6_parse(addr_text);
  if (!addr) {
    if (error) *error = fmt::format("'{}' is not an IPv4 or IPv6 prefix such as 192.0.2.0/24 or 2001:db8::/32", text);
    return std::nullopt;
  }
  const bool v4 = addr_text.find(':') == std::string_view::npos;
  unsigned length = 128;
  if (slash != std::string_view::npos) {
    const auto len_text = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), length);
    if (ec != std::errc() || ptr != len_text.data() + len_text.size() || length > (v4 ? 32u : 128u)) {
      if (error) *error = fmt::format("'{}' has a bad prefix length (IPv4: 0-32, IPv6: 0-128)", text);
      return std::nullopt;
    }
    if (v4) length += 96;
  }
  if (!host_bits_clear(*addr, length)) {
    if (error) *error = fmt::format("'{}' has bits set after the prefix length; write the network address", text);
    return std::nullopt;
  }
  return Prefix{*addr, static_cast<std::uint8_t>(length)};
}

NetworkTable::Key NetworkTable::key_of(const Ip6& a) {
  Key k;
  for (int i = 0; i < 8; ++i) k.hi = (k.hi << 8) | a[i];
  for (int i = 8; i < 16; ++i) k.lo = (k.lo << 8) | a[i];
  return k;
}

NetworkTable::NetworkTable(std::vector<Entry> entries) {
  struct Span {
    Key first, last;
    std::int32_t index;
  };
  std::vector<Span> spans;
  spans.reserve(entries.size());
  attributes_.reserve(entries.size());
  for (auto& e : entries) {
    Span s{key_of(e.prefix.address), {}, static_cast<std::int32_t>(attributes_.size())};
    const unsigned len = e.prefix.length;
    const std::uint64_t hi_mask = len >= 64 ? 0 : (len == 0 ? ~0ull : (~0ull >> len));
    const std::uint64_t lo_mask = len >= 128 ? 0 : (len <= 64 ? ~0ull : (~0ull >> (len - 64)));
    s.last = {s.first.hi | hi_mask, s.first.lo | lo_mask};
    spans.push_back(s);
    attributes_.push_back(std::move(e.attributes));
  }
  // Outer prefixes before the prefixes they contain: same start, larger span first.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.first != b.first ? a.first < b.first : b.last < a.last;
  });
  for (std::size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].first == spans[i - 1].first && spans[i].last == spans[i - 1].last) {
      throw std::invalid_argument("the same network is configured twice (IPv4 prefixes also count as ::ffff:a.b.c.d/96+n)");
    }
  }

  // Sweep: `open` holds the prefixes containing the cursor, innermost last.
  const auto next_of = [](Key k) {
    if (++k.lo == 0) ++k.hi;
    return k;
  };
  const auto emit = [this](Key start, std::int32_t owner) {
    if (!starts_.empty() && starts_.back() == start) {
      owner_.back() = owner;
      return;
    }
    if (!owner_.empty() && owner_.back() == owner) return;
    starts_.push_back(start);
    owner_.push_back(owner);
  };
  std::vector<const Span*> open;
  emit(Key{}, -1);
  bool exhausted = false;  // the cursor went past the last address
  const auto close_until = [&](const Key* before) {
    while (!open.empty() && (before == nullptr || open.back()->last < *before)) {
      const Span* top = open.back();
      open.pop_back();
      const Key max{~0ull, ~0ull};
      if (top->last == max) {
        exhausted = true;
        continue;
      }
      if (!exhausted) emit(next_of(top->last), open.empty() ? -1 : open.back()->index);
    }
  };
  for (const auto& s : spans) {
    close_until(&s.first);
    if (!open.empty()) {
      auto& mine = attributes_[static_cast<std::size_t>(s.index)];
      const auto& outer = attributes_[static_cast<std::size_t>(open.back()->index)];
      for (auto [field, from] : {std::pair{&mine.name, &outer.name}, {&mine.role, &outer.role},
                                 {&mine.site, &outer.site}, {&mine.region, &outer.region},
                                 {&mine.tenant, &outer.tenant}}) {
        if (field->empty()) *field = *from;
      }
    }
    emit(s.first, s.index);
    open.push_back(&s);
  }
  close_until(nullptr);
}

const NetworkAttributes* NetworkTable::lookup(const Ip6& a) const {
  if (attributes_.empty()) return nullptr;
  const Key k = key_of(a);
  const auto it = std::upper_bound(starts_.begin(), starts_.end(), k);
  const auto owner = owner_[static_cast<std::size_t>(it - starts_.begin()) - 1];
  return owner < 0 ? nullptr : &attributes_[static_cast<std::size_t>(owner)];
}

}  // namespace sluice::transforms
