#include "coord/etcd_client.hpp"

#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <condition_variable>
#include <thread>

namespace sluice::coord {
namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string url_of(const std::string& endpoint) {
  if (endpoint.rfind("http://", 0) == 0 || endpoint.rfind("https://", 0) == 0) return endpoint;
  return "http://" + endpoint;
}

bool endpoint_ok(const std::string& endpoint) {
  auto rest = endpoint;
  for (const char* scheme : {"http://", "https://"}) {
    if (rest.rfind(scheme, 0) == 0) rest = rest.substr(std::string_view(scheme).size());
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) return false;
  for (auto i = colon + 1; i < rest.size(); ++i) {
    if (rest[i] < '0' || rest[i] > '9') return false;
  }
  return rest.find('/') == std::string::npos;
}

std::unique_ptr<httplib::Client> make_client(const std::string& endpoint, const EtcdClientConfig& config,
                                             std::chrono::milliseconds read_timeout) {
  auto client = std::make_unique<httplib::Client>(url_of(endpoint));
  client->set_connection_timeout(config.dial_timeout);
  client->set_read_timeout(read_timeout);
  client->set_write_timeout(config.request_timeout);
  client->set_keep_alive(false);
  return client;
}

// A watch is idle for as long as nothing changes, so its read timeout cannot tell a dead peer from a
// quiet one; TCP keepalive does (a crashed host or a cut link ends the stream within ~20 s).
void enable_keepalive(int sock) {
  int on = 1, idle = 10, interval = 5, count = 3;
  ::setsockopt(sock, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(sock, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(sock, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(sock, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

std::string describe(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection: return "connection refused or timed out";
    case httplib::Error::Read: return "connection closed or timed out while reading the answer";
    case httplib::Error::Write: return "connection closed while sending the request";
    case httplib::Error::ConnectionTimeout: return "connect timed out";
    case httplib::Error::SSLConnection: return "TLS handshake failed";
    case httplib::Error::SSLServerVerification: return "TLS server certificate not trusted";
    default: return httplib::to_string(error);
  }
}

struct Answer {
  int status = -1;
  std::string body;
  httplib::Error error = httplib::Error::Success;
};

// POSTs through a content receiver rather than reading the body whole: etcd's gateway ends error
// answers with HTTP trailers (Grpc-Trailer-Content-Type), which cpp-httplib 0.11 takes for a read
// failure after it has delivered the whole body. A body that parses is then etcd's answer.
Answer post(httplib::Client& client, const std::string& path, const std::string& body, const std::string& token) {
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body;
  req.set_header("Content-Type", "application/json");
  if (!token.empty()) req.set_header("Authorization", token);
  Answer out;
  req.content_receiver = [&](const char* data, std::size_t len, std::uint64_t, std::uint64_t) {
    out.body.append(data, len);
    return true;
  };
  httplib::Response res;
  client.send(req, res, out.error);
  out.status = res.status;
  if (out.error == httplib::Error::Read && out.status > 0 &&
      !nlohmann::json::parse(out.body, nullptr, false).is_discarded()) {
    out.error = httplib::Error::Success;
  }
  return out;
}

// etcd's range for "every key" is ["\0", "\0"): an empty key is refused.
std::string range_key(std::string_view prefix) { return prefix.empty() ? std::string(1, '\0') : std::string(prefix); }

bool fail_over_code(int code) { return code == kEtcdUnavailable || code == 4 /* deadline exceeded */; }

}  // namespace

namespace etcd_json {

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const std::uint32_t n = (std::uint32_t(std::uint8_t(bytes[i])) << 16) |
                            (std::uint32_t(std::uint8_t(bytes[i + 1])) << 8) | std::uint8_t(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (const auto left = bytes.size() - i; left > 0) {
    std::uint32_t n = std::uint32_t(std::uint8_t(bytes[i])) << 16;
    if (left == 2) n |= std::uint32_t(std::uint8_t(bytes[i + 1])) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += left == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::array<int, 256> value{};
  value.fill(-1);
  for (std::size_t k = 0; k < kAlphabet.size(); ++k) value[std::uint8_t(kAlphabet[k])] = int(k);
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int pad = 0;
    std::uint32_t n = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=' && last && k >= 2) {
        ++pad;
        n <<= 6;
        continue;
      }
      const int v = value[std::uint8_t(c)];
      if (v < 0 || pad > 0) return std::nullopt;  // a character after padding is not base64 either
      n = (n << 6) | std::uint32_t(v);
    }
    out += char((n >> 16) & 0xff);
    if (pad < 2) out += char((n >> 8) & 0xff);
    if (pad < 1) out += char(n & 0xff);
  }
  return out;
}

std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (std::uint8_t(end.back()) < 0xff) {
      end.back() = char(std::uint8_t(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

std::int64_t int64_field(const nlohmann::json& object, const char* name) {
  if (!object.is_object()) return 0;
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return 0;
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    std::int64_t v = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && ptr == s.data() + s.size()) return v;
  }
  throw EtcdError(fmt::format("etcd answered a non-integer {}: {}", name, it->dump()), "");
}

EtcdClient::KeyValue key_value(const nlohmann::json& kv) {
  EtcdClient::KeyValue out;
  const auto field = [&](const char* name) -> std::string {
    const auto it = kv.find(name);
    if (it == kv.end() || !it->is_string()) return {};
    auto decoded = base64_decode(it->get_ref<const std::string&>());
    if (!decoded) throw EtcdError(fmt::format("etcd answered a {} that is not base64: {}", name, it->dump()), "");
    return std::move(*decoded);
  };
  if (!kv.is_object()) throw EtcdError("etcd answered a key-value that is not an object: " + kv.dump(), "");
  out.key = field("key");
  out.value = field("value");
  out.mod_revision = int64_field(kv, "mod_revision");
  out.lease = int64_field(kv, "lease");
  return out;
}

std::optional<std::pair<int, std::string>> error_of(const nlohmann::json& answer) {
  if (!answer.is_object()) return std::nullopt;
  const auto it = answer.find("error");
  if (it == answer.end() || it->is_null()) return std::nullopt;
  if (it->is_object()) {  // a streaming call's error: {"error": {"grpc_code": 14, "message": "..."}}
    const int code = int(it->value("grpc_code", it->value("code", 2)));
    return std::pair{code, it->value("message", it->dump())};
  }
  const int code = answer.contains("code") && answer["code"].is_number_integer() ? answer["code"].get<int>() : 2;
  const std::string message = answer.value("message", it->is_string() ? it->get<std::string>() : it->dump());
  return std::pair{code, message};
}

}  // namespace etcd_json

EtcdClientConfig read_etcd_client_config(config::ConfigReader& reader) {
  EtcdClientConfig c;
  c.endpoints = reader.string_list("endpoints");
  if (c.endpoints.empty()) {
    reader.error("endpoints", "expected at least one etcd endpoint, such as http://127.0.0.1:2379 (a list, or "
                              "comma-separated as in SLUICE_ETCD_ENDPOINTS)");
  }
  for (const auto& e : c.endpoints) {
    if (!endpoint_ok(e)) {
      reader.error("endpoints", fmt::format("expected http://host:port, https://host:port or host:port, got \"{}\"", e));
    }
  }
  c.dial_timeout = reader.duration("dial_timeout", c.dial_timeout);
  c.request_timeout = reader.duration("request_timeout", c.request_timeout);
  if (c.dial_timeout.count() <= 0) reader.error("dial_timeout", "expected a duration above zero");
  if (c.request_timeout.count() <= 0) reader.error("request_timeout", "expected a duration above zero");
  c.watch_idle_timeout = reader.duration("watch_idle_timeout", c.watch_idle_timeout);
  if (c.watch_idle_timeout < std::chrono::seconds(1)) reader.error("watch_idle_timeout", "expected at least 1s");
  c.username = reader.string("username", "");
  c.password = reader.string("password", "");
  if (c.username.empty() && !c.password.empty()) reader.error("username", "a password is set but no username");
  return c;
}

EtcdClient::EtcdClient(EtcdClientConfig config, MetricsRegistry& metrics)
    : config_(std::move(config)),
      requests_ok_(metrics.counter("etcd_requests_total", "etcd requests by result", {{"result", "ok"}})),
      requests_error_(metrics.counter("etcd_requests_total", "etcd requests by result", {{"result", "error"}})),
      requests_unreachable_(
          metrics.counter("etcd_requests_total", "etcd requests by result", {{"result", "unreachable"}})) {
  if (config_.endpoints.empty()) throw std::invalid_argument("EtcdClient: no endpoints");
}

std::string EtcdClient::endpoint() const { return config_.endpoints[current_.load() % config_.endpoints.size()]; }

std::string EtcdClient::token_for(std::size_t endpoint, bool refresh) {
  if (config_.username.empty()) return {};
  {
    std::lock_guard lock(token_mutex_);
    if (auto it = tokens_.find(endpoint); it != tokens_.end() && !refresh) return it->second;
  }
  const auto& ep = config_.endpoints[endpoint];
  auto client = make_client(ep, config_, config_.request_timeout);
  const nlohmann::json body = {{"name", config_.username}, {"password", config_.password}};
  const auto res = post(*client, "/v3/auth/authenticate", body.dump(), "");
  if (res.error != httplib::Error::Success) {
    throw EtcdError(fmt::format("cannot reach etcd at {}: {}", ep, describe(res.error)), ep);
  }
  const auto answer = nlohmann::json::parse(res.body, nullptr, false);
  if (auto err = etcd_json::error_of(answer)) {
    throw EtcdError(fmt::format("etcd at {} refused user \"{}\": {}", ep, config_.username, err->second), ep,
                    err->first);
  }
  if (!answer.is_object() || !answer.contains("token") || !answer["token"].is_string()) {
    throw EtcdError(fmt::format("etcd at {} answered authenticate without a token: {}", ep, res.body.substr(0, 200)), ep);
  }
  std::lock_guard lock(token_mutex_);
  return tokens_[endpoint] = answer["token"].get<std::string>();
}

nlohmann::json EtcdClient::call(const std::string& path, const nlohmann::json& request) {
  const std::size_t n = config_.endpoints.size();
  const std::size_t start = current_.load();
  const std::string body = request.dump();
  std::string last_error, last_endpoint;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t index = (start + i) % n;
    const auto& ep = config_.endpoints[index];
    try {
      for (int attempt = 0; attempt < 2; ++attempt) {
        auto client = make_client(ep, config_, config_.request_timeout);
        const auto res = post(*client, path, body, token_for(index, attempt > 0));
        if (res.error != httplib::Error::Success) {
          throw EtcdError(fmt::format("cannot reach etcd at {}: {}", ep, describe(res.error)), ep);
        }
        auto answer = nlohmann::json::parse(res.body, nullptr, false);
        if (answer.is_discarded() || !answer.is_object()) {
          throw EtcdError(fmt::format("etcd at {} answered {} with HTTP {} and something that is not etcd's JSON: {}",
                                      ep, path, res.status, res.body.substr(0, 200)),
                          ep);
        }
        if (auto err = etcd_json::error_of(answer)) {
          // An expired token is renewed once; other answers are etcd's word on the request itself.
          if (err->first == kEtcdUnauthenticated && attempt == 0 && !config_.username.empty()) continue;
          if (fail_over_code(err->first)) throw EtcdError(fmt::format("etcd at {}: {}", ep, err->second), ep);
          requests_error_.inc();
          current_.store(index);
          throw EtcdError(fmt::format("etcd at {} refused {}: {}", ep, path, err->second), ep, err->first);
        }
        requests_ok_.inc();
        current_.store(index);
        return answer;
      }
    } catch (const EtcdError& e) {
      if (!e.unreachable()) throw;
      last_error = e.what();
      last_endpoint = ep;
    }
  }
  requests_unreachable_.inc();
  current_.store((start + 1) % n);  // start elsewhere next time
  throw EtcdError(n == 1 ? last_error : fmt::format("no etcd endpoint answered ({} tried); last: {}", n, last_error),
                  last_endpoint);
}

EtcdClient::RangeResult EtcdClient::get_prefix(std::string_view prefix) {
  const auto answer = call("/v3/kv/range", {{"key", etcd_json::base64_encode(range_key(prefix))},
                                            {"range_end", etcd_json::base64_encode(etcd_json::prefix_range_end(prefix))}});
  RangeResult out;
  out.revision = etcd_json::int64_field(answer.value("header", nlohmann::json::object()), "revision");
  if (const auto it = answer.find("kvs"); it != answer.end() && it->is_array()) {
    for (const auto& kv : *it) out.kvs.push_back(etcd_json::key_value(kv));
  }
  return out;
}

std::optional<EtcdClient::KeyValue> EtcdClient::get(std::string_view key) {
  const auto answer = call("/v3/kv/range", {{"key", etcd_json::base64_encode(key)}});
  if (const auto it = answer.find("kvs"); it != answer.end() && it->is_array() && !it->empty()) {
    return etcd_json::key_value(it->front());
  }
  return std::nullopt;
}

void EtcdClient::put(std::string_view key, std::string_view value, std::int64_t lease) {
  nlohmann::json body = {{"key", etcd_json::base64_encode(key)}, {"value", etcd_json::base64_encode(value)}};
  if (lease != 0) body["lease"] = std::to_string(lease);
  call("/v3/kv/put", body);
}

void EtcdClient::remove(std::string_view key) { call("/v3/kv/deleterange", {{"key", etcd_json::base64_encode(key)}}); }

void EtcdClient::remove_prefix(std::string_view prefix) {
  call("/v3/kv/deleterange", {{"key", etcd_json::base64_encode(range_key(prefix))},
                              {"range_end", etcd_json::base64_encode(etcd_json::prefix_range_end(prefix))}});
}

std::int64_t EtcdClient::grant_lease(std::chrono::seconds ttl) {
  const auto answer = call("/v3/lease/grant", {{"TTL", std::to_string(ttl.count())}});
  const auto id = etcd_json::int64_field(answer, "ID");
  if (id == 0) throw EtcdError("etcd granted no lease: " + answer.dump(), endpoint());
  return id;
}

std::chrono::seconds EtcdClient::keep_alive(std::int64_t lease) {
  // A streaming call on the gateway: one request message gives one response, then the stream ends.
  const auto answer = call("/v3/lease/keepalive", {{"ID", std::to_string(lease)}});
  const auto ttl = etcd_json::int64_field(answer.value("result", nlohmann::json::object()), "TTL");
  if (ttl <= 0) {
    throw EtcdError(fmt::format("etcd lease {:x} has expired or was revoked", lease), endpoint(), kEtcdNotFound);
  }
  return std::chrono::seconds(ttl);
}

void EtcdClient::revoke(std::int64_t lease) { call("/v3/lease/revoke", {{"ID", std::to_string(lease)}}); }

EtcdClient::WatchEnd EtcdClient::watch_prefix(std::string_view prefix, std::int64_t start_revision,
                                              const std::function<bool(const WatchEvent&)>& on_event,
                                              const std::atomic<bool>& cancel) {
  nlohmann::json create = {{"key", etcd_json::base64_encode(range_key(prefix))},
                           {"range_end", etcd_json::base64_encode(etcd_json::prefix_range_end(prefix))}};
  if (start_revision > 0) create["start_revision"] = std::to_string(start_revision);
  create["progress_notify"] = true;
  const std::string body = nlohmann::json{{"create_request", create}}.dump();

  WatchEnd end;
  end.next_revision = start_revision;
  const std::size_t n = config_.endpoints.size();
  const std::size_t start = current_.load();
  for (std::size_t i = 0; i < n && !cancel.load(); ++i) {
    const std::size_t index = (start + i) % n;
    const auto& ep = config_.endpoints[index];
    end.endpoint = ep;
    std::string token;
    try {
      token = token_for(index, false);
    } catch (const EtcdError& e) {
      end.error = e.what();
      if (!e.unreachable()) return end;
      continue;
    }
    // A watch waits as long as nothing changes; progress notifications keep a healthy one from
    // reaching the idle timeout. Cancellation shuts the socket down from a helper thread, which
    // wakes the blocked read.
    auto client = make_client(ep, config_, config_.watch_idle_timeout);
    client->set_socket_options([](int sock) { enable_keepalive(sock); });
    bool created = false, stopped = false, finished = false;
    std::optional<WatchEnd::Reason> outcome;
    std::string pending;
    std::mutex done_mutex;
    std::condition_variable done_cv;
    std::thread canceller([&] {
      std::unique_lock lock(done_mutex);
      while (!finished) {
        // Repeated: a stop() that comes before the connection is open has nothing to shut down yet.
        if (cancel.load()) client->stop();
        done_cv.wait_for(lock, std::chrono::milliseconds(50));
      }
    });
    const auto handle = [&](const nlohmann::json& message) -> bool {
      if (auto err = etcd_json::error_of(message)) {
        outcome = WatchEnd::Reason::error;
        end.error = fmt::format("etcd at {} ended the watch: {}", ep, err->second);
        if (err->first == kEtcdUnauthenticated) {
          std::lock_guard lock(token_mutex_);
          tokens_.erase(index);
        }
        return false;
      }
      const auto& result = message.contains("result") ? message["result"] : message;
      if (result.value("created", false)) {
        created = true;
        // Watching "from now": the store's revision at creation is where a resume must start after.
        if (start_revision <= 0) {
          const auto revision = etcd_json::int64_field(result.value("header", nlohmann::json::object()), "revision");
          end.next_revision = std::max(end.next_revision, revision + 1);
        }
      }
      if (result.value("canceled", false)) {
        end.compact_revision = etcd_json::int64_field(result, "compact_revision");
        outcome = end.compact_revision > 0 ? WatchEnd::Reason::compacted : WatchEnd::Reason::error;
        end.error = fmt::format("etcd at {} cancelled the watch: {}", ep,
                                end.compact_revision > 0
                                    ? fmt::format("revision {} is compacted (oldest kept: {})", start_revision,
                                                  end.compact_revision)
                                    : result.value("cancel_reason", std::string("no reason given")));
        return false;
      }
      const auto events = result.find("events");
      if (events == result.end() || !events->is_array() || events->empty()) {
        // A progress notification: every event up to the header's revision has been sent, so a
        // later resume can start past it (and is less likely to find it compacted).
        if (created && !result.value("created", false)) {
          const auto revision = etcd_json::int64_field(result.value("header", nlohmann::json::object()), "revision");
          if (revision > 0) end.next_revision = std::max(end.next_revision, revision + 1);
        }
        return true;
      }
      for (std::size_t k = 0; k < events->size(); ++k) {
        const auto& e = (*events)[k];
        WatchEvent event;
        event.type = e.value("type", std::string("PUT")) == "DELETE" ? WatchEvent::Type::remove : WatchEvent::Type::put;
        event.kv = etcd_json::key_value(e.value("kv", nlohmann::json::object()));
        event.last_in_batch = k + 1 == events->size();
        end.next_revision = std::max(end.next_revision, event.kv.mod_revision + 1);
        if (!on_event(event)) {
          stopped = true;
          return false;
        }
      }
      return true;
    };
    httplib::Request req;
    req.method = "POST";
    req.path = "/v3/watch";
    req.body = body;
    req.set_header("Content-Type", "application/json");
    if (!token.empty()) req.set_header("Authorization", token);
    req.content_receiver = [&](const char* data, std::size_t len, std::uint64_t, std::uint64_t) {
      pending.append(data, len);
      std::size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        const auto line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
        const auto message = nlohmann::json::parse(line, nullptr, false);
        if (message.is_discarded()) {
          outcome = WatchEnd::Reason::error;
          end.error = fmt::format("etcd at {} sent a watch message that is not JSON: {}", ep, line.substr(0, 200));
          return false;
        }
        try {
          if (!handle(message)) return false;
        } catch (const EtcdError& e) {
          outcome = WatchEnd::Reason::error;
          end.error = fmt::format("etcd at {}: {}", ep, e.what());
          return false;
        }
      }
      return !cancel.load();
    };
    httplib::Response res;
    httplib::Error error = httplib::Error::Success;
    client->send(req, res, error);
    {
      std::lock_guard lock(done_mutex);
      finished = true;
    }
    done_cv.notify_all();
    canceller.join();
    if (stopped) {
      end.reason = WatchEnd::Reason::callback;
      requests_ok_.inc();
      return end;
    }
    if (cancel.load()) {
      end.reason = WatchEnd::Reason::cancelled;
      requests_ok_.inc();
      return end;
    }
    if (outcome) {
      end.reason = *outcome;
      (created ? requests_ok_ : requests_error_).inc();
      return end;
    }
    end.reason = WatchEnd::Reason::error;
    end.error = error == httplib::Error::Success
                    ? fmt::format("etcd at {} ended the watch stream (HTTP {}; is it shutting down?)", ep, res.status)
                    : fmt::format("watch on etcd at {} broke: {}", ep, describe(error));
    if (created) {  // the stream was up: the caller resumes, possibly elsewhere
      requests_ok_.inc();
      current_.store((index + 1) % n);
      return end;
    }
  }
  if (!cancel.load()) requests_unreachable_.inc();
  else end.reason = WatchEnd::Reason::cancelled;
  if (n > 1 && end.reason == WatchEnd::Reason::error) end.error = "no etcd endpoint accepted the watch; last: " + end.error;
  current_.store((start + 1) % n);
  return end;
}

}  // namespace sluice::coord
