#include "admin/flow_tail.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <string_view>
#include <utility>

namespace sluice::admin {

struct FlowSubscription::State {
  std::mutex mutex;
  std::condition_variable cv;
  std::optional<Ip6> exporter;
  std::size_t limit = 1;
  // A ring of reusable strings: slots keep their capacity, so queueing a flow does not allocate once warm.
  std::vector<std::string> ring;
  std::size_t head = 0;
  std::size_t count = 0;
  std::uint64_t accepted = 0;  // queued, whether read yet or not; reaching `limit` retires the subscription
  std::uint64_t delivered = 0;
  std::uint64_t dropped = 0;
  bool closed = false;
};

// ---------------------------------------------------------------------------------------------------

FlowSubscription::FlowSubscription(FlowTail* tail, std::shared_ptr<State> state)
    : tail_(tail), state_(std::move(state)) {}

FlowSubscription::FlowSubscription(FlowSubscription&& other) noexcept
    : tail_(std::exchange(other.tail_, nullptr)), state_(std::move(other.state_)) {}

FlowSubscription& FlowSubscription::operator=(FlowSubscription&& other) noexcept {
  if (this != &other) {
    release();
    tail_ = std::exchange(other.tail_, nullptr);
    state_ = std::move(other.state_);
  }
  return *this;
}

FlowSubscription::~FlowSubscription() { release(); }

void FlowSubscription::release() {
  if (tail_ != nullptr && state_) tail_->unsubscribe(state_);
  tail_ = nullptr;
  state_.reset();
}

std::optional<std::string> FlowSubscription::next(std::chrono::milliseconds timeout) {
  if (!state_) return std::nullopt;
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  s.cv.wait_for(lock, timeout, [&] { return s.count > 0 || s.closed || s.accepted >= s.limit; });
  if (s.count == 0) return std::nullopt;
  // Copy rather than move so the slot keeps its buffer for the publisher.
  std::string line = s.ring[s.head];
  s.head = (s.head + 1) % s.ring.size();
  --s.count;
  ++s.delivered;
  return line;
}

bool FlowSubscription::finished() const {
  if (!state_) return true;
  std::lock_guard lock(state_->mutex);
  return state_->closed || (state_->accepted >= state_->limit && state_->count == 0);
}

void FlowSubscription::close() {
  if (!state_) return;
  {
    std::lock_guard lock(state_->mutex);
    state_->closed = true;
  }
  state_->cv.notify_all();
  if (tail_ != nullptr) tail_->unsubscribe(state_);
}

std::uint64_t FlowSubscription::dropped() const {
  if (!state_) return 0;
  std::lock_guard lock(state_->mutex);
  return state_->dropped;
}

std::uint64_t FlowSubscription::delivered() const {
  if (!state_) return 0;
  std::lock_guard lock(state_->mutex);
  return state_->delivered;
}

// ---------------------------------------------------------------------------------------------------

FlowTail::FlowTail(MetricsRegistry& metrics)
    : published_(metrics.counter("flow_tail_queued_total", "Flows queued for live tail readers (admin /api/v0/flows)")),
      dropped_(metrics.counter("flow_tail_dropped_total",
                               "Flows not shown to a live tail reader because it read too slowly")) {}

FlowSubscription FlowTail::subscribe(std::size_t limit, std::optional<Ip6> exporter, std::size_t queue_capacity) {
  auto state = std::make_shared<FlowSubscription::State>();
  state->exporter = exporter;
  state->limit = std::max<std::size_t>(limit, 1);
  state->ring.resize(std::max<std::size_t>(std::min(state->limit, queue_capacity), 1));
  {
    std::lock_guard lock(mutex_);
    subscribers_.push_back(state);
    listeners_.fetch_add(1, std::memory_order_relaxed);
  }
  return FlowSubscription(this, std::move(state));
}

void FlowTail::unsubscribe(const std::shared_ptr<FlowSubscription::State>& state) {
  std::lock_guard lock(mutex_);
  // Absent when already retired after accepting all the flows it wanted.
  auto it = std::find(subscribers_.begin(), subscribers_.end(), state);
  if (it == subscribers_.end()) return;
  subscribers_.erase(it);
  listeners_.fetch_sub(1, std::memory_order_relaxed);
}

void FlowTail::publish(const FlowRecord& flow) {
  if (!active()) return;
  std::lock_guard lock(mutex_);
  bool formatted = false;
  // From the back, so that retiring (erasing) a subscriber does not skip the next one.
  for (std::size_t i = subscribers_.size(); i-- > 0;) {
    FlowSubscription::State* state = subscribers_[i].get();
    if (state->exporter && *state->exporter != flow.exporter_address) continue;
    if (!formatted) {
      line_.clear();
      format_json(flow, line_);
      formatted = true;
    }
    bool complete = false;
    bool queued = false;
    {
      std::lock_guard slock(state->mutex);
      if (state->closed) continue;
      if (state->count == state->ring.size()) {
        ++state->dropped;
        dropped_.inc();
      } else {
        state->ring[(state->head + state->count) % state->ring.size()].assign(line_);
        ++state->count;
        ++state->accepted;
        published_.inc();
        queued = true;
        complete = state->accepted >= state->limit;
      }
    }
    if (queued) state->cv.notify_one();
    if (complete) {
      // It has all it wants: stop formatting for it, and let active() turn false when it was the last.
      subscribers_.erase(subscribers_.begin() + static_cast<std::ptrdiff_t>(i));
      listeners_.fetch_sub(1, std::memory_order_relaxed);
    }
  }
}

// ---------------------------------------------------------------------------------------------------

namespace {

using Out = std::back_insert_iterator<std::string>;

// Appends one JSON object's members to `out`; the caller writes the braces.
class JsonFields {
 public:
  explicit JsonFields(std::string& out) : out_(out) {}

  void num(std::string_view name, std::uint64_t v) {
    key(name);
    fmt::format_to(Out(out_), "{}", v);
  }

  void str(std::string_view name, std::string_view v) {
    key(name);
    out_ += '"';
    for (char c : v) {
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\r':
          out_ += "\\r";
          break;
        case '\t':
          out_ += "\\t";
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            fmt::format_to(Out(out_), "\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
          } else {
            out_ += c;
          }
      }
    }
    out_ += '"';
  }

  void addr(std::string_view name, const Ip6& a) {
    key(name);
    out_ += '"';
    out_ += ip6_to_string(a);
    out_ += '"';
  }

  // FixedString(2): unset is two NUL bytes, shown as an empty string.
  void country(std::string_view name, const char (&c)[2]) {
    const std::size_t n = c[0] == 0 ? 0 : (c[1] == 0 ? 1 : 2);
    str(name, std::string_view(c, n));
  }

  void mac(std::string_view name, std::uint64_t m) {
    key(name);
    fmt::format_to(Out(out_), "\"{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}\"", (m >> 40) & 0xff, (m >> 32) & 0xff,
                   (m >> 24) & 0xff, (m >> 16) & 0xff, (m >> 8) & 0xff, m & 0xff);
  }

 private:
  void key(std::string_view name) {
    out_ += first_ ? "\"" : ",\"";
    first_ = false;
    out_ += name;
    out_ += "\":";
  }

  std::string& out_;
  bool first_ = true;
};

std::string_view boundary_name(Boundary b) {
  switch (b) {
    case Boundary::external:
      return "external";
    case Boundary::internal:
      return "internal";
    case Boundary::undefined:
      break;
  }
  return "undefined";
}

std::string_view direction_name(FlowDirection d) {
  switch (d) {
    case FlowDirection::ingress:
      return "ingress";
    case FlowDirection::egress:
      return "egress";
    case FlowDirection::undefined:
      break;
  }
  return "undefined";
}

}  // namespace

void FlowTail::format_json(const FlowRecord& f, std::string& out) {
  out += '{';
  JsonFields o(out);
  o.num("TimeReceived", f.time_received);
  o.num("TimeFlowStart", f.time_flow_start);
  o.num("TimeFlowEnd", f.time_flow_end);
  o.num("SamplingRate", f.sampling_rate);
  o.addr("ExporterAddress", f.exporter_address);
  o.str("ExporterName", f.exporter_name);
  o.str("ExporterGroup", f.exporter_group);
  o.str("ExporterRole", f.exporter_role);
  o.str("ExporterSite", f.exporter_site);
  o.str("ExporterRegion", f.exporter_region);
  o.str("ExporterTenant", f.exporter_tenant);
  o.addr("SrcAddr", f.src_addr);
  o.addr("DstAddr", f.dst_addr);
  o.addr("NextHop", f.next_hop);
  o.num("SrcNetMask", f.src_net_mask);
  o.num("DstNetMask", f.dst_net_mask);
  o.num("SrcAS", f.src_as);
  o.num("DstAS", f.dst_as);
  o.str("SrcNetName", f.src_net_name);
  o.str("SrcNetRole", f.src_net_role);
  o.str("SrcNetSite", f.src_net_site);
  o.str("SrcNetRegion", f.src_net_region);
  o.str("SrcNetTenant", f.src_net_tenant);
  o.str("DstNetName", f.dst_net_name);
  o.str("DstNetRole", f.dst_net_role);
  o.str("DstNetSite", f.dst_net_site);
  o.str("DstNetRegion", f.dst_net_region);
  o.str("DstNetTenant", f.dst_net_tenant);
  o.country("SrcCountry", f.src_country);
  o.country("DstCountry", f.dst_country);
  o.num("InIf", f.in_if);
  o.num("OutIf", f.out_if);
  o.str("InIfName", f.in_if_name);
  o.str("InIfDescription", f.in_if_description);
  o.num("InIfSpeed", f.in_if_speed);
  o.str("InIfConnectivity", f.in_if_connectivity);
  o.str("InIfProvider", f.in_if_provider);
  o.str("InIfBoundary", boundary_name(f.in_if_boundary));
  o.str("OutIfName", f.out_if_name);
  o.str("OutIfDescription", f.out_if_description);
  o.num("OutIfSpeed", f.out_if_speed);
  o.str("OutIfConnectivity", f.out_if_connectivity);
  o.str("OutIfProvider", f.out_if_provider);
  o.str("OutIfBoundary", boundary_name(f.out_if_boundary));
  o.num("EType", f.etype);
  o.num("Proto", f.proto);
  o.num("SrcPort", f.src_port);
  o.num("DstPort", f.dst_port);
  o.num("Bytes", f.bytes);
  o.num("Packets", f.packets);
  o.num("ForwardingStatus", f.forwarding_status);
  o.str("FlowDirection", direction_name(f.flow_direction));
  o.num("TCPFlags", f.tcp_flags);
  o.num("IPTos", f.ip_tos);
  o.num("IPTTL", f.ip_ttl);
  o.num("SrcVlan", f.src_vlan);
  o.num("DstVlan", f.dst_vlan);
  o.mac("SrcMAC", f.src_mac);
  o.mac("DstMAC", f.dst_mac);
  // The record has one ICMP type/code pair; Akvorado splits the columns by IP version.
  const bool v4 = f.proto == 1, v6 = f.proto == 58;
  o.num("ICMPv4Type", v4 ? f.icmp_type : 0);
  o.num("ICMPv4Code", v4 ? f.icmp_code : 0);
  o.num("ICMPv6Type", v6 ? f.icmp_type : 0);
  o.num("ICMPv6Code", v6 ? f.icmp_code : 0);
  out += '}';
}

}  // namespace sluice::admin
