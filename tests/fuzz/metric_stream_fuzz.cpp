// Fuzzes what metric senders write on TCP: Graphite plaintext lines, the JSON-RPC object stream (split
// at every possible chunk boundary the input suggests), and the metric record that carries a value on
// the bus.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "core/metric_record.hpp"
#include "sources/graphite_receiver.hpp"
#include "sources/tcp_server.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // Graphite: every line of the input.
  std::string_view rest = text;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    const auto line = rest.substr(0, nl);
    sluice::GraphiteLine out;
    sluice::GraphiteInvalid why{};
    if (sluice::parse_graphite_line(line, 1'700'000'000, out, why) == sluice::GraphiteParse::value) {
      if (out.path.empty() || std::isnan(out.value) || out.path.size() > line.size()) __builtin_trap();
    }
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  // The RPC stream, fed as it grows: objects must be found whole, in order, never past the data.
  sluice::JsonObjectSplitter splitter;
  std::size_t consumed = 0;
  for (std::size_t have = 1; have <= size; have = have * 2 + 1) {
    for (;;) {
      std::size_t end = 0;
      const auto view = text.substr(consumed, std::min(have, size) - std::min(consumed, std::min(have, size)));
      const auto r = splitter.next(view, end);
      if (r != sluice::JsonObjectSplitter::Result::object) break;
      if (end == 0 || end > view.size()) __builtin_trap();
      consumed += end;
      splitter = sluice::JsonObjectSplitter{};
    }
    if (have >= size) break;
  }
  // The bus record: whatever decodes must encode back to the same bytes.
  const auto bytes = std::as_bytes(std::span(data, size));
  if (const auto m = sluice::decode_metric(bytes)) {
    std::vector<std::byte> again;
    if (!sluice::encode_metric(*m, again) || again.size() != size || !std::equal(again.begin(), again.end(), bytes.begin())) {
      __builtin_trap();
    }
  }
  return 0;
}
