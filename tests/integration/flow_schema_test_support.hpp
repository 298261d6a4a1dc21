// A known flow stream for the schema tests: inserted through flows_raw like the outlet does, and its exact
// aggregates computed here to compare with what the tables hold.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <ctime>
#include <map>
#include <string>
#include <tuple>

#include "core/flow_batch.hpp"
#include "sinks/store.hpp"

namespace sluice::sinks::schema_test {

// Two exporters, three input interfaces each (output interface = input + 100), four source ASes:
// every minute holds all 24 combinations, 2000 flows a minute, from the start of the previous hour
// (recent: modern servers drop rows already past the rollups' TTL when they are inserted).
inline std::uint32_t stream_start() {
  static const auto start = static_cast<std::uint32_t>((std::time(nullptr) / 3600 - 1) * 3600);
  return start;
}
constexpr std::uint32_t kPerMinute = 2000;

struct Names {
  std::string exporter[2], site[2], in_name[2][3], in_desc[2][3], out_name[2][3], out_desc[2][3];
  Names() {
    for (int e = 0; e < 2; ++e) {
      exporter[e] = fmt::format("edge{}", e + 1);
      site[e] = e == 0 ? "par" : "ams";
      for (int k = 0; k < 3; ++k) {
        in_name[e][k] = fmt::format("Gi0/{}", k + 1);
        in_desc[e][k] = fmt::format("transit {} of edge{}", k + 1, e + 1);
        out_name[e][k] = fmt::format("Te1/{}", k + 1);
        out_desc[e][k] = fmt::format("core {} of edge{}", k + 1, e + 1);
      }
    }
  }
};

inline const Names& names() {
  static const Names n;
  return n;
}

struct Extra {
  std::uint16_t src_vlan = 0;
  std::uint8_t tcp_flags = 0;
};

inline void fill(FlowRecord& r, std::uint32_t i, const Extra& extra) {
  const auto& n = names();
  const std::uint32_t e = i % 2, k = (i / 2) % 3, as = (i / 6) % 4;
  r.reset();
  r.time_received = stream_start() + (i / kPerMinute) * 60 + (i % 60);
  r.time_flow_start = r.time_flow_end = r.time_received;
  r.sampling_rate = 1000;
  r.exporter_address = ip6_from_v4(0xc0000201 + e);
  r.exporter_name = n.exporter[e];
  r.exporter_group = "edge";
  r.exporter_site = n.site[e];
  r.src_addr = ip6_from_v4(0x0a000000 + i);
  r.dst_addr = ip6_from_v4(0xc6336401);
  r.src_as = 64500 + as;
  r.dst_as = 65000;
  r.src_country[0] = 'F', r.src_country[1] = 'R';
  r.in_if = 1 + k;
  r.out_if = 101 + k;
  r.in_if_name = n.in_name[e][k];
  r.in_if_description = n.in_desc[e][k];
  r.out_if_name = n.out_name[e][k];
  r.out_if_description = n.out_desc[e][k];
  r.in_if_speed = 10'000;
  r.out_if_speed = 100'000;
  r.in_if_connectivity = "transit";
  r.in_if_provider = "telia";
  r.in_if_boundary = Boundary::external;
  r.out_if_boundary = Boundary::internal;
  r.etype = 0x800;
  r.proto = 6;
  r.src_port = static_cast<std::uint16_t>(1024 + i % 50'000);
  r.dst_port = 443;
  r.bytes = 100 + i % 1000;
  r.packets = 1 + i % 3;
  r.src_vlan = extra.src_vlan;
  r.tcp_flags = extra.tcp_flags;
}

// Inserts flows [first, first + n) into flows_raw as Native blocks of at most one minute each.
inline void insert_stream(Store& store, const FlowSchema& schema, std::uint32_t first, std::uint32_t n,
                          const Extra& extra = {}, const std::string& dedup_token = {}) {
  FlowBatch batch(schema);
  FlowRecord r;
  auto flush = [&] {
    if (batch.empty()) return;
    InsertRequest req;
    req.table = "flows_raw";
    req.format = "Native";
    req.rows = batch.rows();
    req.dedup_token = dedup_token;
    batch.take_native(req.body);
    store.insert(req);
  };
  for (std::uint32_t i = first; i < first + n; ++i) {
    if (i != first && i % kPerMinute == 0) flush();
    fill(r, i, extra);
    batch.append(r);
  }
  flush();
}

// sum(Bytes), sum(Packets) per (minute, exporter name, InIf, SrcAS), as TabSeparated rows.
inline std::string expected_per_minute(std::uint32_t first, std::uint32_t n) {
  std::map<std::tuple<std::uint32_t, std::string, std::uint32_t, std::uint32_t>, std::pair<std::uint64_t, std::uint64_t>> sums;
  FlowRecord r;
  for (std::uint32_t i = first; i < first + n; ++i) {
    fill(r, i, {});
    auto& s = sums[{r.time_received / 60 * 60, std::string(r.exporter_name), r.in_if, r.src_as}];
    s.first += r.bytes;
    s.second += r.packets;
  }
  std::string out;
  for (const auto& [k, v] : sums) {
    out += fmt::format("{}\t{}\t{}\t{}\t{}\t{}\n", std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), v.first,
                       v.second);
  }
  return out;
}

// The same aggregate read from a table, bucketed with `bucket` (toStartOfMinute, ...).
inline std::string per_bucket(Store& store, const std::string& table, const std::string& bucket = "toStartOfMinute") {
  return store
      .query(fmt::format("SELECT toUInt32({}(TimeReceived)) AS t, ExporterName, InIf, SrcAS, sum(Bytes), sum(Packets) "
                         "FROM {}.{} GROUP BY t, ExporterName, InIf, SrcAS ORDER BY t, ExporterName, InIf, SrcAS",
                         bucket, store.database(), table))
      .data;
}

// Rows the server read for a query, from the JSON format's statistics (both dialects report them).
inline std::uint64_t rows_read(Store& store, const std::string& sql) {
  const auto r = store.query(sql, "JSON");
  const auto at = r.data.find("\"rows_read\":");
  if (at == std::string::npos) return r.rows_read;
  return std::stoull(r.data.substr(at + 12));
}

inline std::string scalar(Store& store, const std::string& sql) {
  auto s = store.query(sql).data;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace sluice::sinks::schema_test
