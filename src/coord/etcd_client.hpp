// EtcdClient: an etcd v3 client over its JSON gateway (key ranges, puts, deletes, watches, leases), failing over between endpoints.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/reader.hpp"
#include "core/metrics.hpp"

namespace sluice::coord {

struct EtcdClientConfig {
  // "http://host:port", "https://host:port" or "host:port" (taken as http). Tried in order; the one
  // that answered last is tried first next time.
  std::vector<std::string> endpoints;
  std::chrono::milliseconds dial_timeout{2000}, request_timeout{5000};
  std::string username, password;  // empty username: etcd without authentication
  // A watch asks etcd for progress notifications (every 10 min by default, etcd's
  // --experimental-watch-progress-notify-interval); one that hears nothing at all for this long is
  // taken as dead (a hung server or a dropped link that TCP keepalive cannot see through a proxy).
  std::chrono::milliseconds watch_idle_timeout{std::chrono::minutes(15)};
};

// Reads `endpoints` (a YAML list, or one comma-separated string such as ${SLUICE_ETCD_ENDPOINTS}),
// `dial_timeout`, `request_timeout`, `watch_idle_timeout`, `username` and `password` from a mapping. Does not call finish():
// the caller reads its own keys from the same mapping first.
EtcdClientConfig read_etcd_client_config(config::ConfigReader& reader);

// A failed etcd call. code() is etcd's gRPC status code (5 not found, 11 out of range / compacted,
// 16 unauthenticated...), or -1 when no endpoint could be reached or what came back was not etcd's JSON.
class EtcdError : public std::runtime_error {
 public:
  EtcdError(const std::string& message, std::string endpoint, int code = -1)
      : std::runtime_error(message), endpoint_(std::move(endpoint)), code_(code) {}
  const std::string& endpoint() const { return endpoint_; }
  int code() const { return code_; }
  bool unreachable() const { return code_ < 0; }

 private:
  std::string endpoint_;
  int code_;
};

// gRPC status codes that etcd answers with and callers branch on.
inline constexpr int kEtcdNotFound = 5;
inline constexpr int kEtcdOutOfRange = 11;  // "required revision has been compacted"
inline constexpr int kEtcdUnavailable = 14;
inline constexpr int kEtcdUnauthenticated = 16;

// Thread-safe: every call is one HTTP request of its own (coordination traffic is a few requests a
// second), so calls from several threads do not wait for each other.
class EtcdClient {
 public:
  struct KeyValue {
    std::string key, value;
    std::int64_t mod_revision = 0;
    std::int64_t lease = 0;
    bool operator==(const KeyValue&) const = default;
  };
  struct RangeResult {
    std::vector<KeyValue> kvs;
    std::int64_t revision = 0;  // the store's revision the range was read at: watch from revision + 1
  };
  struct WatchEvent {
    enum class Type { put, remove };
    Type type = Type::put;
    KeyValue kv;                // for remove: key and mod_revision only
    bool last_in_batch = true;  // last event of one watch response: a consistent point to act on
  };
  struct WatchEnd {
    enum class Reason {
      cancelled,   // `cancel` became true
      callback,    // on_event returned false
      compacted,   // start_revision is older than the compacted revision: range again, then watch
      error        // no endpoint reachable, stream broken, or etcd refused the watch
    };
    Reason reason = Reason::error;
    std::int64_t next_revision = 0;     // watch again from here to miss nothing (start_revision if no event came)
    std::int64_t compact_revision = 0;  // for compacted
    std::string error;                  // for error
    std::string endpoint;
  };

  EtcdClient(EtcdClientConfig config, MetricsRegistry& metrics);

  // Every key starting with `prefix`, sorted by key, with the revision they were read at.
  RangeResult get_prefix(std::string_view prefix);
  std::optional<KeyValue> get(std::string_view key);
  // `lease` 0: the key lives until deleted; otherwise it is deleted when the lease expires or is revoked.
  void put(std::string_view key, std::string_view value, std::int64_t lease = 0);
  void remove(std::string_view key);
  void remove_prefix(std::string_view prefix);
  std::int64_t grant_lease(std::chrono::seconds ttl);
  // Renews a lease to its full TTL; returns the TTL. Throws EtcdError with code kEtcdNotFound when the
  // lease has expired or was revoked (whatever was put under it is gone: put it again under a new one).
  std::chrono::seconds keep_alive(std::int64_t lease);
  void revoke(std::int64_t lease);

  // Blocks streaming events for keys starting with `prefix` from start_revision (0: from now) until
  // cancelled, on_event returns false, the revision is compacted or the stream fails; returns why it
  // stopped. It does not fail over mid-stream: the caller decides whether to watch again from
  // next_revision or to range again.
  WatchEnd watch_prefix(std::string_view prefix, std::int64_t start_revision,
                        const std::function<bool(const WatchEvent&)>& on_event, const std::atomic<bool>& cancel);

  // The endpoint that answered last (or will be tried first).
  std::string endpoint() const;
  const EtcdClientConfig& config() const { return config_; }

 private:
  // POSTs a JSON body to `path` on the endpoints in turn; returns the JSON answer of the first that
  // answers. Throws EtcdError: etcd's own error at once, unreachable after every endpoint failed.
  nlohmann::json call(const std::string& path, const nlohmann::json& body);
  std::string token_for(std::size_t endpoint, bool refresh);

  EtcdClientConfig config_;
  std::atomic<std::size_t> current_{0};
  mutable std::mutex token_mutex_;
  std::map<std::size_t, std::string> tokens_;  // simple auth tokens are per member
  Counter& requests_ok_;
  Counter& requests_error_;
  Counter& requests_unreachable_;
};

// The gateway's encodings, public for tests.
namespace etcd_json {
std::string base64_encode(std::string_view bytes);
// nullopt when `text` is not valid standard base64 (with padding).
std::optional<std::string> base64_decode(std::string_view text);
// The smallest key greater than every key starting with `prefix` (etcd's range_end for a prefix):
// the last byte below 0xff incremented, the rest dropped; "\0" (every key) when there is none.
std::string prefix_range_end(std::string_view prefix);
// int64 fields come as JSON strings ("42"), sometimes as numbers; absent means 0 (proto3 default).
std::int64_t int64_field(const nlohmann::json& object, const char* name);
// A gateway "kv" object; throws EtcdError when key or value are not base64.
EtcdClient::KeyValue key_value(const nlohmann::json& kv);
// The error of an answer or stream message ({"error": "...", "code": 5} or {"error": {"grpc_code": 14,
// "message": ...}}), nullopt when it is not one.
std::optional<std::pair<int, std::string>> error_of(const nlohmann::json& answer);
}  // namespace etcd_json

}  // namespace sluice::coord
