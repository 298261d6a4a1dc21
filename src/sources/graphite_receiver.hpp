// GraphiteReceiver: Graphite plaintext over TCP ("path value timestamp\n"), validated as carbon does,
// one MetricRecord per valid line on the bus, keyed by the path.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "bus/bus.hpp"
#include "core/metrics.hpp"
#include "sources/metric_producer.hpp"
#include "sources/tcp_server.hpp"

namespace sluice {

// Why a line was refused; each is a label of inlet_metrics_invalid_total{receiver="graphite"}.
enum class GraphiteInvalid : std::uint8_t {
  field_count,    // not "path value [timestamp]"
  bad_value,      // not a number
  nan_value,      // NaN (carbon drops it)
  bad_timestamp,  // not a number
  line_too_long,  // longer than max_line
  count_,
};
const char* to_string(GraphiteInvalid reason);

struct GraphiteLine {
  std::string_view path;
  double value = 0;
  std::int64_t timestamp = 0;
};

enum class GraphiteParse { value, empty, invalid };

// One line without its newline. Fields are separated by spaces or tabs. A timestamp of -1, or none,
// becomes `now`; a fractional timestamp is truncated (carbon reads it as a float).
GraphiteParse parse_graphite_line(std::string_view line, std::int64_t now, GraphiteLine& out, GraphiteInvalid& why);

using GraphiteReceiverConfig = TcpReceiverConfig;  // max_message is the longest line

class GraphiteReceiver {
 public:
  GraphiteReceiver(GraphiteReceiverConfig config, bus::Producer& producer, MetricsRegistry& metrics);
  ~GraphiteReceiver();
  void start();
  void stop();
  std::uint16_t bound_port() const { return server_->bound_port(); }
  nlohmann::json status() const;

 private:
  class Session;
  GraphiteReceiverConfig config_;
  bus::Producer& producer_;
  std::unique_ptr<ReceiverCounters> counters_;
  std::unique_ptr<TcpServer> server_;
};

}  // namespace sluice
