#include "core/flow_batch.hpp"

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <type_traits>

namespace sluice {
namespace {

// Columns point into FlowRecord by offset, which is well-defined only for standard-layout types.
static_assert(std::is_standard_layout_v<FlowRecord>);
static_assert(std::is_trivially_copyable_v<std::string_view>);

// The wire type's width must be the field's: values are copied byte for byte.
template <typename Wire, typename Field>
consteval std::uint16_t fixed_width() {
  static_assert(sizeof(Wire) == sizeof(Field) && std::is_trivially_copyable_v<Field>);
  return sizeof(Wire);
}
template <typename Field, typename Len>
consteval std::uint16_t u32_array_field() {
  static_assert(std::is_same_v<std::remove_extent_t<Field>, std::uint32_t> && std::is_same_v<Len, std::uint8_t>);
  return sizeof(std::uint32_t);
}
template <typename Field>
consteval std::uint16_t string_field() {
  static_assert(std::is_same_v<Field, std::string_view>);
  return 0;
}

#define SLUICE_OFF(field) static_cast<std::uint16_t>(offsetof(FlowRecord, field))
#define SLUICE_U(field, T) FlowColumnKind::fixed, SLUICE_OFF(field), fixed_width<T, decltype(FlowRecord::field)>(), 0
#define SLUICE_IP(field) SLUICE_U(field, Ip6)
#define SLUICE_FIX2(field) SLUICE_U(field, char[2])
#define SLUICE_STR(field) \
  FlowColumnKind::string, SLUICE_OFF(field), string_field<decltype(FlowRecord::field)>(), 0
#define SLUICE_EMPTY_ARRAY FlowColumnKind::empty_array, 0, 0, 0
#define SLUICE_U32_ARRAY(field, len)                                                                     \
  FlowColumnKind::u32_array, SLUICE_OFF(field), u32_array_field<decltype(FlowRecord::field), decltype(FlowRecord::len)>(), \
      SLUICE_OFF(len)

constexpr const char* kLcString = "LowCardinality(String)";
constexpr const char* kBoundary = "Enum8('undefined' = 0, 'external' = 1, 'internal' = 2)";
constexpr const char* kDirection = "Enum8('undefined' = 0, 'ingress' = 1, 'egress' = 2)";

std::vector<FlowColumnSpec> build_columns() {
  return {
      {"TimeReceived", "DateTime", "DateTime", "DateTime", false, SLUICE_U(time_received, std::uint32_t)},
      {"TimeFlowStart", "DateTime", "DateTime", "DateTime", false, SLUICE_U(time_flow_start, std::uint32_t)},
      {"TimeFlowEnd", "DateTime", "DateTime", "DateTime", false, SLUICE_U(time_flow_end, std::uint32_t)},
      {"SamplingRate", "UInt64", "UInt64", "UInt64", false, SLUICE_U(sampling_rate, std::uint64_t)},
      {"ExporterAddress", "IPv6", "LowCardinality(IPv6)", "FixedString(16)", false, SLUICE_IP(exporter_address)},
      {"ExporterName", "String", kLcString, "String", false, SLUICE_STR(exporter_name)},
      {"ExporterGroup", "String", kLcString, "String", false, SLUICE_STR(exporter_group)},
      {"ExporterRole", "String", kLcString, "String", false, SLUICE_STR(exporter_role)},
      {"ExporterSite", "String", kLcString, "String", false, SLUICE_STR(exporter_site)},
      {"ExporterRegion", "String", kLcString, "String", false, SLUICE_STR(exporter_region)},
      {"ExporterTenant", "String", kLcString, "String", false, SLUICE_STR(exporter_tenant)},
      {"SrcAddr", "IPv6", "IPv6", "FixedString(16)", false, SLUICE_IP(src_addr)},
      {"DstAddr", "IPv6", "IPv6", "FixedString(16)", false, SLUICE_IP(dst_addr)},
      {"SrcNetMask", "UInt8", "UInt8", "UInt8", false, SLUICE_U(src_net_mask, std::uint8_t)},
      {"DstNetMask", "UInt8", "UInt8", "UInt8", false, SLUICE_U(dst_net_mask, std::uint8_t)},
      {"SrcAS", "UInt32", "UInt32", "UInt32", false, SLUICE_U(src_as, std::uint32_t)},
      {"DstAS", "UInt32", "UInt32", "UInt32", false, SLUICE_U(dst_as, std::uint32_t)},
      {"SrcNetName", "String", kLcString, "String", false, SLUICE_STR(src_net_name)},
      {"DstNetName", "String", kLcString, "String", false, SLUICE_STR(dst_net_name)},
      {"SrcNetRole", "String", kLcString, "String", false, SLUICE_STR(src_net_role)},
      {"DstNetRole", "String", kLcString, "String", false, SLUICE_STR(dst_net_role)},
      {"SrcNetSite", "String", kLcString, "String", false, SLUICE_STR(src_net_site)},
      {"DstNetSite", "String", kLcString, "String", false, SLUICE_STR(dst_net_site)},
      {"SrcNetRegion", "String", kLcString, "String", false, SLUICE_STR(src_net_region)},
      {"DstNetRegion", "String", kLcString, "String", false, SLUICE_STR(dst_net_region)},
      {"SrcNetTenant", "String", kLcString, "String", false, SLUICE_STR(src_net_tenant)},
      {"DstNetTenant", "String", kLcString, "String", false, SLUICE_STR(dst_net_tenant)},
      {"SrcCountry", "FixedString(2)", "FixedString(2)", "FixedString(2)", false, SLUICE_FIX2(src_country)},
      {"DstCountry", "FixedString(2)", "FixedString(2)", "FixedString(2)", false, SLUICE_FIX2(dst_country)},
      {"DstASPath", "Array(UInt32)", "Array(UInt32)", "Array(UInt32)", false, SLUICE_U32_ARRAY(dst_as_path, dst_as_path_len)},
      {"DstCommunities", "Array(UInt32)", "Array(UInt32)", "Array(UInt32)", false,
       SLUICE_U32_ARRAY(dst_communities, dst_communities_len)},
      {"DstLargeCommunities", "Array(UInt128)", "Array(UInt128)", "Array(FixedString(16))", false,
       SLUICE_EMPTY_ARRAY},
      {"InIf", "UInt32", "UInt32", "UInt32", false, SLUICE_U(in_if, std::uint32_t)},
      {"OutIf", "UInt32", "UInt32", "UInt32", false, SLUICE_U(out_if, std::uint32_t)},
      {"InIfName", "String", kLcString, "String", false, SLUICE_STR(in_if_name)},
      {"OutIfName", "String", kLcString, "String", false, SLUICE_STR(out_if_name)},
      {"InIfDescription", "String", kLcString, "String", false, SLUICE_STR(in_if_description)},
      {"OutIfDescription", "String", kLcString, "String", false, SLUICE_STR(out_if_description)},
      {"InIfSpeed", "UInt32", "UInt32", "UInt32", false, SLUICE_U(in_if_speed, std::uint32_t)},
      {"OutIfSpeed", "UInt32", "UInt32", "UInt32", false, SLUICE_U(out_if_speed, std::uint32_t)},
      {"InIfConnectivity", "String", kLcString, "String", false, SLUICE_STR(in_if_connectivity)},
      {"OutIfConnectivity", "String", kLcString, "String", false, SLUICE_STR(out_if_connectivity)},
      {"InIfProvider", "String", kLcString, "String", false, SLUICE_STR(in_if_provider)},
      {"OutIfProvider", "String", kLcString, "String", false, SLUICE_STR(out_if_provider)},
      {"InIfBoundary", kBoundary, kBoundary, kBoundary, false, SLUICE_U(in_if_boundary, std::int8_t)},
      {"OutIfBoundary", kBoundary, kBoundary, kBoundary, false, SLUICE_U(out_if_boundary, std::int8_t)},
      {"EType", "UInt32", "UInt32", "UInt32", false, SLUICE_U(etype, std::uint32_t)},
      {"Proto", "UInt32", "UInt32", "UInt32", false, SLUICE_U(proto, std::uint32_t)},
      {"SrcPort", "UInt16", "UInt16", "UInt16", false, SLUICE_U(src_port, std::uint16_t)},
      {"DstPort", "UInt16", "UInt16", "UInt16", false, SLUICE_U(dst_port, std::uint16_t)},
      {"Bytes", "UInt64", "UInt64", "UInt64", false, SLUICE_U(bytes, std::uint64_t)},
      {"Packets", "UInt64", "UInt64", "UInt64", false, SLUICE_U(packets, std::uint64_t)},
      {"ForwardingStatus", "UInt32", "UInt32", "UInt32", false, SLUICE_U(forwarding_status, std::uint32_t)},
      {"FlowDirection", kDirection, kDirection, kDirection, false, SLUICE_U(flow_direction, std::int8_t)},
      // Optional columns.
      {"NextHop", "IPv6", "IPv6", "FixedString(16)", true, SLUICE_IP(next_hop)},
      {"TCPFlags", "UInt8", "UInt8", "UInt8", true, SLUICE_U(tcp_flags, std::uint8_t)},
      {"IPTos", "UInt8", "UInt8", "UInt8", true, SLUICE_U(ip_tos, std::uint8_t)},
      {"IPTTL", "UInt8", "UInt8", "UInt8", true, SLUICE_U(ip_ttl, std::uint8_t)},
      {"SrcVlan", "UInt16", "UInt16", "UInt16", true, SLUICE_U(src_vlan, std::uint16_t)},
      {"DstVlan", "UInt16", "UInt16", "UInt16", true, SLUICE_U(dst_vlan, std::uint16_t)},
      {"SrcMAC", "UInt64", "UInt64", "UInt64", true, SLUICE_U(src_mac, std::uint64_t)},
      {"DstMAC", "UInt64", "UInt64", "UInt64", true, SLUICE_U(dst_mac, std::uint64_t)},
      {"ICMPType", "UInt8", "UInt8", "UInt8", true, SLUICE_U(icmp_type, std::uint8_t)},
      {"ICMPCode", "UInt8", "UInt8", "UInt8", true, SLUICE_U(icmp_code, std::uint8_t)},
      {"IPv6FlowLabel", "UInt32", "UInt32", "UInt32", true, SLUICE_U(ipv6_flow_label, std::uint32_t)},
      {"MPLSLabels", "Array(UInt32)", "Array(UInt32)", "Array(UInt32)", true, SLUICE_U32_ARRAY(mpls_labels, mpls_labels_len)},
      {"SrcAddrNAT", "IPv6", "IPv6", "FixedString(16)", true, SLUICE_IP(src_addr_nat)},
      {"DstAddrNAT", "IPv6", "IPv6", "FixedString(16)", true, SLUICE_IP(dst_addr_nat)},
      {"SrcPortNAT", "UInt16", "UInt16", "UInt16", true, SLUICE_U(src_port_nat, std::uint16_t)},
      {"DstPortNAT", "UInt16", "UInt16", "UInt16", true, SLUICE_U(dst_port_nat, std::uint16_t)},
  };
}

#undef SLUICE_OFF
#undef SLUICE_U
#undef SLUICE_IP
#undef SLUICE_STR
#undef SLUICE_FIX2
#undef SLUICE_EMPTY_ARRAY
#undef SLUICE_U32_ARRAY

std::size_t width_group(std::uint16_t width) {
  switch (width) {
    case 1: return 0;
    case 2: return 1;
    case 4: return 2;
    case 8: return 3;
    case 16: return 4;
    default: throw std::logic_error("flow column of unsupported width " + std::to_string(width));
  }
}

constexpr std::size_t kFirstRowCapacity = 1024;

}  // namespace

const std::vector<FlowColumnSpec>& flow_columns() {
  static const std::vector<FlowColumnSpec> columns = build_columns();
  return columns;
}

FlowSchema FlowSchema::make(ClickHouseDialect dialect, const std::vector<std::string>& enabled_optional) {
  FlowSchema s;
  s.dialect = dialect;
  for (const auto& name : enabled_optional) {
    const auto& all = flow_columns();
    auto it = std::find_if(all.begin(), all.end(), [&](const auto& c) { return name == c.name; });
    if (it == all.end() || !it->optional) {
      throw std::invalid_argument("unknown optional flow column '" + name + "'");
    }
  }
  for (const auto& c : flow_columns()) {
    if (!c.optional ||
        std::find(enabled_optional.begin(), enabled_optional.end(), c.name) != enabled_optional.end()) {
      s.columns.push_back(&c);
    }
  }
  return s;
}

FlowBatch::FlowBatch(const FlowSchema& schema) {
  auto add_fixed = [this](std::uint16_t width) {
    fixed_.emplace_back();
    fixed_width_.push_back(width);
    fixed_row_bytes_ += width;
    return static_cast<std::uint32_t>(fixed_.size() - 1);
  };
  for (const auto* c : schema.columns) {
    ColumnRef ref{c->kind, 0, c->width, {}};
    put_native_column_header(ref.header, c->name, schema.wire_type(*c));
    switch (c->kind) {
      case FlowColumnKind::fixed:
        ref.index = add_fixed(c->width);
        by_width_[width_group(c->width)].push_back(FixedSlot{c->offset, nullptr, ref.index});
        break;
      case FlowColumnKind::string:
        ref.index = static_cast<std::uint32_t>(strings_.size());
        strings_.push_back(StringSlot{c->offset, {}});
        break;
      case FlowColumnKind::u32_array:
      case FlowColumnKind::empty_array: {
        ref.index = static_cast<std::uint32_t>(arrays_.size());
        ArraySlot a;
        a.offset = c->offset;
        a.len_offset = c->len_offset;
        a.always_empty = c->kind == FlowColumnKind::empty_array;
        a.offsets_buffer = add_fixed(sizeof(std::uint64_t));
        arrays_.push_back(std::move(a));
        break;
      }
    }
    refs_.push_back(std::move(ref));
  }
}

void FlowBatch::grow_rows(std::size_t capacity) {
  for (std::size_t i = 0; i < fixed_.size(); ++i) {
    fixed_[i].set_size(rows_ * fixed_width_[i]);
    fixed_[i].reserve(capacity * fixed_width_[i]);
  }
  for (auto& group : by_width_) {
    for (auto& s : group) s.base = fixed_[s.buffer].data();
  }
  for (auto& a : arrays_) a.offsets = fixed_[a.offsets_buffer].data();
  row_capacity_ = capacity;
}

void FlowBatch::reserve(std::size_t rows) {
  if (rows > row_capacity_) grow_rows(rows);
}

namespace {

// Constant-size copies compile to single moves; one tight loop per width.
template <std::size_t W, typename Slots>
inline void copy_fixed(const Slots& slots, const std::uint8_t* src, std::size_t row) {
  for (const auto& s : slots) std::memcpy(s.base + row * W, src + s.offset, W);
}

}  // namespace

void FlowBatch::append(const FlowRecord& r) {
  if (rows_ == row_capacity_) [[unlikely]]
    grow_rows(std::max(kFirstRowCapacity, row_capacity_ * 2));
  const auto* src = reinterpret_cast<const std::uint8_t*>(&r);
  const std::size_t row = rows_;
  copy_fixed<1>(by_width_[0], src, row);
  copy_fixed<2>(by_width_[1], src, row);
  copy_fixed<4>(by_width_[2], src, row);
  copy_fixed<8>(by_width_[3], src, row);
  copy_fixed<16>(by_width_[4], src, row);
  for (auto& s : strings_) {
    std::string_view v;
    std::memcpy(&v, src + s.offset, sizeof v);
    const std::size_t n = v.size();
    std::uint8_t* start = s.data.tail(n + 10);
    std::uint8_t* p = start;
    if (n < 0x80) [[likely]] {
      *p++ = static_cast<std::uint8_t>(n);  // a one-byte varint; for an empty string, all there is
    } else {
      p = write_varint(p, n);
    }
    if (n) std::memcpy(p, v.data(), n);
    s.data.commit(static_cast<std::size_t>(p - start) + n);
  }
  for (auto& a : arrays_) {
    if (!a.always_empty) {
      const std::size_t n = src[a.len_offset];
      if (n) a.data.append(src + a.offset, n * sizeof(std::uint32_t));
      a.total += n;
    }
    std::memcpy(a.offsets + row * sizeof a.total, &a.total, sizeof a.total);
  }
  ++rows_;
  sum_bytes_ += r.bytes;
  sum_packets_ += r.packets;
}

std::size_t FlowBatch::bytes() const {
  std::size_t n = rows_ * fixed_row_bytes_;
  for (const auto& s : strings_) n += s.data.size();
  for (const auto& a : arrays_) n += a.data.size();
  return n;
}

void FlowBatch::take_native(std::string& out) {
  std::size_t headers = 20;
  for (const auto& ref : refs_) headers += ref.header.size();
  out.reserve(out.size() + headers + bytes());
  put_varint(out, refs_.size());
  put_varint(out, rows_);
  auto put = [&out](const std::uint8_t* p, std::size_t n) {
    if (n) out.append(reinterpret_cast<const char*>(p), n);
  };
  for (const auto& ref : refs_) {
    out += ref.header;
    switch (ref.kind) {
      case FlowColumnKind::fixed: put(fixed_[ref.index].data(), rows_ * ref.width); break;
      case FlowColumnKind::string: out += strings_[ref.index].data.view(); break;
      case FlowColumnKind::u32_array:
      case FlowColumnKind::empty_array: {
        const auto& a = arrays_[ref.index];
        put(fixed_[a.offsets_buffer].data(), rows_ * sizeof(std::uint64_t));
        out += a.data.view();
        break;
      }
    }
  }
  clear();
}

void FlowBatch::clear() {
  for (auto& s : strings_) s.data.clear();
  for (auto& a : arrays_) {
    a.data.clear();
    a.total = 0;
  }
  rows_ = 0;
  sum_bytes_ = sum_packets_ = 0;
}

}  // namespace sluice
