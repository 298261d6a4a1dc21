#include "sources/falcon_receivers.hpp"

#include <fmt/format.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>

#include "core/log_limiter.hpp"
#include "decoders/falcon.hpp"

namespace sluice {
namespace {

constexpr std::size_t kInvalidCount = static_cast<std::size_t>(falcon::Invalid::count_) + 2;

const std::array<const char*, kInvalidCount>& invalid_names() {
  static const std::array<const char*, kInvalidCount> names = [] {
    std::array<const char*, kInvalidCount> n{};
    for (std::size_t i = 0; i < static_cast<std::size_t>(falcon::Invalid::count_); ++i) {
      n[i] = falcon::to_string(static_cast<falcon::Invalid>(i));
    }
    n[static_cast<std::size_t>(FalconExtraInvalid::unknown_command)] = "unknown_command";
    n[static_cast<std::size_t>(FalconExtraInvalid::line_too_long)] = "line_too_long";
    return n;
  }();
  return names;
}

enum class RpcBad : std::uint8_t { not_an_object, object_too_long, malformed_object, bad_params, unknown_method };
constexpr std::array<const char*, 5> kRpcBadNames = {"not_an_object", "object_too_long", "malformed_object",
                                                     "bad_params", "unknown_method"};

std::int64_t now_seconds(std::uint64_t ns) { return static_cast<std::int64_t>(ns / 1'000'000'000ULL); }

}  // namespace

std::span<const char* const> falcon_invalid_reasons() { return invalid_names(); }

// ---- line socket --------------------------------------------------------------------------------

class FalconSocketReceiver::Session final : public TcpSession {
 public:
  Session(FalconSocketReceiver& r, const TcpPeer& peer, LogLimiter& limiter)
      : receiver_(r), producer_(r.producer_, r.config_.topic, SourceKind::falcon), limiter_(limiter) {
    from_.address = peer.address;
    from_.port = peer.port;
  }

  Action on_data(std::string_view data, std::size_t& consumed, std::string&) override {
    const auto received_ns = unix_now_ns();
    const auto now = now_seconds(received_ns);
    auto& c = *receiver_.counters_;
    std::size_t at = 0;
    std::uint64_t received = 0;
    Action action = Action::keep;
    while (action == Action::keep) {
      const auto nl = data.find('\n', at);
      if (nl == std::string_view::npos) break;
      const std::string_view line = data.substr(at, nl - at);
      at = nl + 1;
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      if (line.size() > receiver_.config_.max_message) {
        ++received;
        c.invalid(static_cast<std::size_t>(FalconExtraInvalid::line_too_long)).inc();
        log_invalid("line_too_long", line);
        continue;
      }
      falcon::MetricValue v;
      falcon::Invalid why{};
      switch (falcon::parse_line(line, now, v, why)) {
        case falcon::LineKind::quit: action = Action::quit; break;
        case falcon::LineKind::unknown_command:
          ++received;
          c.invalid(static_cast<std::size_t>(FalconExtraInvalid::unknown_command)).inc();
          log_invalid("unknown_command", line);
          break;
        case falcon::LineKind::invalid:
          ++received;
          c.invalid(static_cast<std::size_t>(why)).inc();
          log_invalid(falcon::to_string(why), line);
          break;
        case falcon::LineKind::value:
          ++received;
          c.count(producer_.produce(v, from_, received_ns), static_cast<std::size_t>(falcon::Invalid::too_long));
          break;
      }
    }
    if (received != 0) c.received().inc(received);
    consumed = at;
    return action;
  }

  Oversize on_oversize() override {
    receiver_.counters_->received().inc();
    receiver_.counters_->invalid(static_cast<std::size_t>(FalconExtraInvalid::line_too_long)).inc();
    log_invalid("line_too_long", {});
    return Oversize::skip_line;
  }

 private:
  void log_invalid(const char* why, std::string_view line) {
    if (const auto suppressed = limiter_.allow(why)) {
      spdlog::warn("falcon line socket: skipped a line from {}:{} ({}): '{}'; {} similar since the last message. "
                   "Lines must be 'update <endpoint> <metric> <timestamp> <value> [<counterType>] [<step>]', at most "
                   "{} bytes",
                   ip6_to_string(from_.address), from_.port, why, log_sample(line), *suppressed,
                   receiver_.config_.max_message);
    }
  }

  FalconSocketReceiver& receiver_;
  MetricProducer producer_;
  MetricSender from_;
  LogLimiter& limiter_;
};

FalconSocketReceiver::FalconSocketReceiver(FalconTcpConfig config, bus::Producer& producer, MetricsRegistry& metrics)
    : config_(std::move(config)),
      producer_(producer),
      counters_(std::make_unique<ReceiverCounters>(metrics, "falcon_socket", falcon_invalid_reasons())) {
  const TcpServerConfig t = config_.server("falcon_socket");
  auto limiter = std::make_shared<LogLimiter>();
  server_ = std::make_unique<TcpServer>(
      t, [this, limiter](const TcpPeer& peer) { return std::make_unique<Session>(*this, peer, *limiter); }, metrics);
}

FalconSocketReceiver::~FalconSocketReceiver() { stop(); }
void FalconSocketReceiver::start() {
  server_->start();
  spdlog::info("falcon line socket on {} (port {}), producing to '{}'", config_.listen, server_->bound_port(),
               config_.topic);
}
void FalconSocketReceiver::stop() { server_->stop(); }

nlohmann::json FalconSocketReceiver::status() const {
  nlohmann::json j = counters_->status();
  j["name"] = "falcon_socket";
  j["kind"] = "falcon";
  j["tcp"] = server_->status();
  return j;
}

// ---- JSON-RPC -----------------------------------------------------------------------------------

class FalconRpcReceiver::Session final : public TcpSession {
 public:
  Session(FalconRpcReceiver& r, const TcpPeer& peer, LogLimiter& limiter)
      : receiver_(r), producer_(r.producer_, r.config_.topic, SourceKind::falcon), limiter_(limiter) {
    from_.address = peer.address;
    from_.port = peer.port;
  }

  Action on_data(std::string_view data, std::size_t& consumed, std::string& reply) override {
    while (consumed < data.size()) {
      std::size_t end = 0;
      switch (splitter_.next(data.substr(consumed), end)) {
        case JsonObjectSplitter::Result::need_more: return Action::keep;
        case JsonObjectSplitter::Result::garbage:
          bad(RpcBad::not_an_object, data.substr(consumed, 80));
          return Action::garbage;
        case JsonObjectSplitter::Result::object: break;
      }
      const auto object = data.substr(consumed, end);
      consumed += end;
      if (!handle(object, reply)) return Action::garbage;
    }
    return Action::keep;
  }

  Oversize on_oversize() override {
    bad(RpcBad::object_too_long, {});
    return Oversize::close;
  }

 private:
  void bad(RpcBad why, std::string_view sample) {
    receiver_.counters_->bad_request(static_cast<std::size_t>(why)).inc();
    const char* name = kRpcBadNames[static_cast<std::size_t>(why)];
    if (const auto suppressed = limiter_.allow(name)) {
      const bool closes = why == RpcBad::not_an_object || why == RpcBad::object_too_long || why == RpcBad::malformed_object;
      spdlog::warn("falcon RPC: {} from {}:{}{}{}{}; {} similar since the last message{}", name,
                   ip6_to_string(from_.address), from_.port, sample.empty() ? "" : ": '", log_sample(sample),
                   sample.empty() ? "" : "'", *suppressed,
                   closes ? fmt::format("; the connection is closed (requests are JSON objects of at most {} bytes)",
                                        receiver_.config_.max_message)
                          : std::string());
    }
  }

  static void reply_error(std::string& reply, std::string_view id, const std::string& message) {
    fmt::format_to(std::back_inserter(reply), R"({{"id":{},"result":null,"error":{}}})", id,
                   nlohmann::json(message).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    reply.push_back('\n');
  }

  // Answers one request object. false when it is not a well-formed request (the connection closes,
  // as Go's server does when it cannot decode a request header).
  bool handle(std::string_view object, std::string& reply) {
    const auto started = std::chrono::steady_clock::now();
    simdjson::dom::element doc;
    simdjson::dom::object obj;
    if (parser_.parse(object.data(), object.size(), true).get(doc) != simdjson::SUCCESS ||
        doc.get_object().get(obj) != simdjson::SUCCESS) {
      bad(RpcBad::malformed_object, object.substr(0, 80));
      return false;
    }
    std::string_view method;
    simdjson::dom::element id, params;
    const bool has_id = obj["id"].get(id) == simdjson::SUCCESS;
    const bool has_params = obj["params"].get(params) == simdjson::SUCCESS;
    if (obj["method"].get_string().get(method) != simdjson::SUCCESS) {
      bad(RpcBad::malformed_object, object.substr(0, 80));
      return false;
    }
    id_text_ = has_id ? simdjson::to_string(id) : std::string("null");
    if (method == "Transfer.Ping") {
      fmt::format_to(std::back_inserter(reply), R"({{"id":{},"result":{{"code":0}},"error":null}})", id_text_);
      reply.push_back('\n');
      return true;
    }
    if (method != "Transfer.Update") {
      bad(RpcBad::unknown_method, method);
      const auto dot = method.rfind('.');
      if (dot == std::string_view::npos) {
        reply_error(reply, id_text_, fmt::format("rpc: service/method request ill-formed: {}", method));
      } else if (method.substr(0, dot) != "Transfer") {
        reply_error(reply, id_text_, fmt::format("rpc: can't find service {}", method));
      } else {
        reply_error(reply, id_text_, fmt::format("rpc: can't find method {}", method));
      }
      return true;
    }
    // params is [values]: Go's client sends its one argument in a one-element array.
    simdjson::dom::array args;
    simdjson::dom::element values;
    if (!has_params || params.get_array().get(args) != simdjson::SUCCESS || args.size() != 1 ||
        args.at(0).get(values) != simdjson::SUCCESS || !(values.is_array() || values.is_null())) {
      bad(RpcBad::bad_params, object.substr(0, 80));
      reply_error(reply, id_text_, "rpc: the params of Transfer.Update must be [[metric values...]]");
      return true;
    }
    const auto received_ns = unix_now_ns();
    auto& c = *receiver_.counters_;
    falcon::ParseCounts counts;
    std::uint64_t refused = 0;
    if (values.is_array()) {
      values_text_ = simdjson::to_string(values);
      std::string error;
      const bool ok = falcon::parse_json_values(
          values_text_, now_seconds(received_ns),
          [&](const falcon::MetricValue& v) {
            if (!c.count(producer_.produce(v, from_, received_ns), static_cast<std::size_t>(falcon::Invalid::too_long))) {
              ++refused;
            }
          },
          counts, &error);
      if (!ok) {
        bad(RpcBad::bad_params, object.substr(0, 80));
        reply_error(reply, id_text_, "rpc: " + error);
        return true;
      }
    }
    c.received().inc(counts.total);
    for (std::size_t i = 0; i < counts.invalid.size(); ++i) {
      if (counts.invalid[i] != 0) c.invalid(i).inc(counts.invalid[i]);
    }
    if (refused != 0) {
      reply_error(reply, id_text_,
                  fmt::format("sluice: the bus refused {} of {} values (it is full or failing); retry the call",
                              refused, counts.total));
      return true;
    }
    const auto latency =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    fmt::format_to(std::back_inserter(reply),
                   R"({{"id":{},"result":{{"Message":"ok","Total":{},"Invalid":{},"Latency":{}}},"error":null}})",
                   id_text_, counts.total, counts.invalid_total(), latency);
    reply.push_back('\n');
    return true;
  }

  FalconRpcReceiver& receiver_;
  MetricProducer producer_;
  MetricSender from_;
  LogLimiter& limiter_;
  JsonObjectSplitter splitter_;
  simdjson::dom::parser parser_;
  std::string id_text_;
  std::string values_text_;
};

FalconRpcReceiver::FalconRpcReceiver(FalconTcpConfig config, bus::Producer& producer, MetricsRegistry& metrics)
    : config_(std::move(config)),
      producer_(producer),
      counters_(std::make_unique<ReceiverCounters>(metrics, "falcon_rpc", falcon_invalid_reasons(), kRpcBadNames)) {
  const TcpServerConfig t = config_.server("falcon_rpc");
  auto limiter = std::make_shared<LogLimiter>();
  server_ = std::make_unique<TcpServer>(
      t, [this, limiter](const TcpPeer& peer) { return std::make_unique<Session>(*this, peer, *limiter); }, metrics);
}

FalconRpcReceiver::~FalconRpcReceiver() { stop(); }
void FalconRpcReceiver::start() {
  server_->start();
  spdlog::info("falcon JSON-RPC on {} (port {}), producing to '{}'", config_.listen, server_->bound_port(),
               config_.topic);
}
void FalconRpcReceiver::stop() { server_->stop(); }

nlohmann::json FalconRpcReceiver::status() const {
  nlohmann::json j = counters_->status();
  j["name"] = "falcon_rpc";
  j["kind"] = "falcon";
  j["tcp"] = server_->status();
  return j;
}

}  // namespace sluice
