// Metric items: one metric point written the way each backend reads it — Open-Falcon graph and judge
// items (JSON for Graph.Send / Judge.Send), OpenTSDB puts (HTTP JSON and telnet), Graphite lines.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/metric_record.hpp"

namespace sluice::sinks {

// The outlet converts decoded bus records (views into the message) straight into items.
using MetricPoint = MetricView;

struct ItemOptions {
  std::int32_t min_step = 30;  // Open-Falcon's minStep: smaller steps are raised to it
};

// {"endpoint":…,"metric":…,"tags":{…},"value":…,"timestamp":…,"dstype":…,"step":…,"heartbeat":…,"min":…,"max":…}
// step raised to min_step, heartbeat 2 × step, the timestamp aligned down to the step; GAUGE keeps
// min/max "U", COUNTER and DERIVE become DERIVE with min "0".
void append_graph_item(std::string& out, const MetricPoint& m, const ItemOptions& options);
// {"endpoint":…,"metric":…,"value":…,"valueRaw":…,"timestamp":…,"judgeType":…,"tags":{…}}, the
// timestamp aligned down to max(step, min_step).
void append_judge_item(std::string& out, const MetricPoint& m, const ItemOptions& options);
// {"metric":…,"timestamp":…,"value":…,"tags":{"endpoint":…,…}} for OpenTSDB's /api/put.
void append_tsdb_json(std::string& out, const MetricPoint& m);
// "put <metric> <timestamp> <value> endpoint=<endpoint> k=v…\n" for OpenTSDB's telnet interface.
void append_tsdb_line(std::string& out, const MetricPoint& m);
// "<path> <value> <timestamp>\n"
void append_graphite_line(std::string& out, const MetricPoint& m);

// A JSON string literal (quotes included) with the escapes JSON requires.
void append_json_string(std::string& out, std::string_view s);
// The shortest text that reads back as the same double; non-finite values become 0, which JSON
// and every backend here can read.
void append_number(std::string& out, double v);

}  // namespace sluice::sinks
