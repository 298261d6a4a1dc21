#include "sources/log_publisher.hpp"

#include <cstring>

#include "core/envelope.hpp"
#include "sources/metric_producer.hpp"

namespace sluice::sources {

LogPublisher::LogPublisher(bus::Producer& producer, MetricsRegistry& metrics, OnDelivery on_delivery)
    : producer_(producer),
      on_delivery_(std::move(on_delivery)),
      published_(metrics.counter("files_chunks_published_total", "Log chunks the bus accepted")),
      published_bytes_(metrics.counter("files_chunk_bytes_published_total", "Bytes of log chunks the bus accepted")),
      refused_(metrics.counter("files_chunks_refused_total",
                               "Log chunks the bus refused for now (full or error); they are sent again later")),
      failed_(metrics.counter("files_chunks_delivery_failed_total",
                              "Log chunks the bus accepted but did not deliver; their lines are read again")) {}

bool LogPublisher::publish(std::string_view topic, std::string_view key, std::span<const std::byte> chunk,
                           std::uint64_t cookie) {
  // One buffer per thread: publishing is called from the tailer's threads, and chunks are large.
  thread_local std::vector<std::byte> message;
  message.resize(kEnvelopeHeaderSize + chunk.size());
  Envelope env;
  env.received_ns = unix_now_ns();
  env.kind = SourceKind::log;
  encode_envelope_header(env, std::span<std::byte, kEnvelopeHeaderSize>(message.data(), kEnvelopeHeaderSize));
  if (!chunk.empty()) std::memcpy(message.data() + kEnvelopeHeaderSize, chunk.data(), chunk.size());
  const auto status = producer_.produce_tracked(
      topic, std::as_bytes(std::span<const char>(key.data(), key.size())), message, *this, cookie);
  if (status != bus::ProduceStatus::ok) {
    refused_.inc();
    return false;
  }
  published_.inc();
  published_bytes_.inc(chunk.size());
  return true;
}

void LogPublisher::on_delivered(std::uint64_t cookie, bool delivered) {
  if (!delivered) failed_.inc();
  on_delivery_(cookie, delivered);
}

}  // namespace sluice::sources
