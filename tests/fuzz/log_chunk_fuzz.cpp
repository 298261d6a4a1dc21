// Fuzzes what the log outlet reads from the bus: log chunks, and the events built from them.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/log_record.hpp"
#include "core/metrics.hpp"
#include "pipeline/log_batch_builder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = std::span(reinterpret_cast<const std::byte*>(data), size);
  sluice::LogChunkReader reader;
  if (reader.open(bytes) == sluice::LogChunkError::none) {
    sluice::LogLine line;
    const char* begin = reinterpret_cast<const char*>(data);
    std::uint32_t n = 0;
    while (reader.next(line)) {
      // Every view stays inside the input, and no more lines than announced come out.
      if (line.text.data() < begin || line.text.data() + line.text.size() > begin + size) __builtin_trap();
      if (++n > reader.line_count()) __builtin_trap();
    }
  }
  // The whole outlet path: envelope + chunk → events → rows of the logs table.
  static sluice::MetricsRegistry metrics;
  static sluice::pipeline::LogDecoding decoding(metrics);
  sluice::pipeline::LogBatchBuilder builder(decoding, sluice::pipeline::make_logs_table_writer(sluice::ClickHouseDialect::modern, "logs"), {});
  sluice::bus::Message m;
  m.topic = "sluice-logs";
  m.value = bytes;
  builder.add(m);
  if (builder.rows() > size) __builtin_trap();
  static_cast<void>(builder.take());
  return 0;
}
