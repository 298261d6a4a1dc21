#include "sources/graphite_receiver.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <charconv>
#include <cmath>
#include <ctime>

#include "core/log_limiter.hpp"

namespace sluice {
namespace {

constexpr std::array<const char*, static_cast<std::size_t>(GraphiteInvalid::count_)> kReasons = {
    "field_count", "bad_value", "nan_value", "bad_timestamp", "line_too_long"};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// Python's float() as carbon uses it, for the forms senders actually write: an optional sign, decimal
// or exponent notation, inf and nan.
bool parse_number(std::string_view text, double& out) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return false;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size();
}

}  // namespace

const char* to_string(GraphiteInvalid reason) {
  const auto i = static_cast<std::size_t>(reason);
  return i < kReasons.size() ? kReasons[i] : "unknown";
}

GraphiteParse parse_graphite_line(std::string_view line, std::int64_t now, GraphiteLine& out, GraphiteInvalid& why) {
  std::array<std::string_view, 3> f{};
  std::size_t n = 0;
  std::size_t i = 0;
  while (true) {
    while (i < line.size() && is_space(line[i])) ++i;
    if (i == line.size()) break;
    const std::size_t start = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    if (n == f.size()) {
      why = GraphiteInvalid::field_count;
      return GraphiteParse::invalid;
    }
    f[n++] = line.substr(start, i - start);
  }
  if (n == 0) return GraphiteParse::empty;
  if (n < 2) {
    why = GraphiteInvalid::field_count;
    return GraphiteParse::invalid;
  }
  if (!parse_number(f[1], out.value)) {
    why = GraphiteInvalid::bad_value;
    return GraphiteParse::invalid;
  }
  if (std::isnan(out.value)) {
    why = GraphiteInvalid::nan_value;
    return GraphiteParse::invalid;
  }
  out.timestamp = now;
  if (n == 3) {
    std::int64_t ts = 0;
    std::string_view t = f[2];
    if (!t.empty() && t.front() == '+') t.remove_prefix(1);
    const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), ts);
    if (ec != std::errc() || p != t.data() + t.size()) {
      double d = 0;
      if (!parse_number(f[2], d) || !std::isfinite(d) || std::fabs(d) > 9.2e18) {
        why = GraphiteInvalid::bad_timestamp;
        return GraphiteParse::invalid;
      }
      ts = static_cast<std::int64_t>(d);
    }
    if (ts != -1) out.timestamp = ts;
  }
  out.path = f[0];
  return GraphiteParse::value;
}

class GraphiteReceiver::Session final : public TcpSession {
 public:
  Session(GraphiteReceiver& r, const TcpPeer& peer, LogLimiter& limiter)
      : receiver_(r), producer_(r.producer_, r.config_.topic, SourceKind::graphite), limiter_(limiter) {
    from_.address = peer.address;
    from_.port = peer.port;
  }

  Action on_data(std::string_view data, std::size_t& consumed, std::string&) override {
    const auto received_ns = unix_now_ns();
    const auto now = static_cast<std::int64_t>(received_ns / 1'000'000'000ULL);
    auto& c = *receiver_.counters_;
    std::size_t at = 0;
    std::uint64_t received = 0;
    while (true) {
      const auto nl = data.find('\n', at);
      if (nl == std::string_view::npos) break;
      std::string_view line = data.substr(at, nl - at);
      at = nl + 1;
      if (line.size() > receiver_.config_.max_message) {
        ++received;
        c.invalid(static_cast<std::size_t>(GraphiteInvalid::line_too_long)).inc();
        log_invalid(GraphiteInvalid::line_too_long, line);
        continue;
      }
      GraphiteLine g;
      GraphiteInvalid why{};
      switch (parse_graphite_line(line, now, g, why)) {
        case GraphiteParse::empty: continue;
        case GraphiteParse::invalid:
          ++received;
          c.invalid(static_cast<std::size_t>(why)).inc();
          log_invalid(why, line);
          continue;
        case GraphiteParse::value: break;
      }
      ++received;
      MetricView m;
      m.origin = MetricOrigin::graphite;
      m.metric = g.path;
      m.value = g.value;
      m.timestamp = g.timestamp;
      c.count(producer_.produce(m, from_, received_ns), static_cast<std::size_t>(GraphiteInvalid::line_too_long));
    }
    if (received != 0) c.received().inc(received);
    consumed = at;
    return Action::keep;
  }

  Oversize on_oversize() override {
    receiver_.counters_->received().inc();
    receiver_.counters_->invalid(static_cast<std::size_t>(GraphiteInvalid::line_too_long)).inc();
    log_invalid(GraphiteInvalid::line_too_long, {});
    return Oversize::skip_line;
  }

 private:
  void log_invalid(GraphiteInvalid why, std::string_view line) {
    if (const auto suppressed = limiter_.allow(to_string(why))) {
      spdlog::warn("graphite receiver: refused a line from {}:{} ({}{}): '{}'; {} similar since the last message. "
                   "Lines must be 'path value [timestamp]' and at most {} bytes",
                   ip6_to_string(from_.address), from_.port, to_string(why),
                   why == GraphiteInvalid::line_too_long ? ", the rest of it is skipped" : "",
                   log_sample(line), *suppressed, receiver_.config_.max_message);
    }
  }

  GraphiteReceiver& receiver_;
  MetricProducer producer_;
  MetricSender from_;
  LogLimiter& limiter_;
};

GraphiteReceiver::GraphiteReceiver(GraphiteReceiverConfig config, bus::Producer& producer, MetricsRegistry& metrics)
    : config_(std::move(config)),
      producer_(producer),
      counters_(std::make_unique<ReceiverCounters>(metrics, "graphite", kReasons)) {
  const TcpServerConfig t = config_.server("graphite");
  auto limiter = std::make_shared<LogLimiter>();
  server_ = std::make_unique<TcpServer>(
      t, [this, limiter](const TcpPeer& peer) { return std::make_unique<Session>(*this, peer, *limiter); }, metrics);
}

GraphiteReceiver::~GraphiteReceiver() { stop(); }

void GraphiteReceiver::start() {
  server_->start();
  spdlog::info("graphite receiver: plaintext on {} (port {}), producing to '{}'", config_.listen, server_->bound_port(),
               config_.topic);
}

void GraphiteReceiver::stop() { server_->stop(); }

nlohmann::json GraphiteReceiver::status() const {
  nlohmann::json j = counters_->status();
  j["name"] = "graphite";
  j["kind"] = "graphite";
  j["tcp"] = server_->status();
  return j;
}

}  // namespace sluice
