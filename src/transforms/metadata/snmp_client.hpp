// SnmpClient: SNMP GETs of sysName, ifName, ifAlias and interface speeds, many in flight at once,
// driven by one thread through net-snmp's single-session API (whose headers stay in the .cpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "transforms/metadata/cache.hpp"
#include "transforms/metadata/config.hpp"

namespace sluice::transforms::metadata {

enum class FetchStatus { ok, timeout, error };

struct FetchReply {
  FetchStatus status = FetchStatus::error;
  std::string error;   // why, for logs, when not ok
  FetchResult result;  // filled when ok
};

// Not thread-safe: one thread calls send() and poll(); callbacks run on that thread, inside them.
class SnmpClient {
 public:
  using Callback = std::function<void(const FetchRequest&, FetchReply&&)>;

  SnmpClient(const SnmpConfig& config, Callback done);
  ~SnmpClient();
  SnmpClient(const SnmpClient&) = delete;
  SnmpClient& operator=(const SnmpClient&) = delete;

  // Sends one GET (sysName.0, then ifName/ifAlias/ifHighSpeed/ifSpeed per interface). The callback
  // runs from a later poll(), or at once when the query cannot be sent. Opening an SNMPv3 session
  // discovers the agent's engine ID first, which waits up to the timeout (once per exporter).
  void send(FetchRequest request, const SnmpCredentials& credentials);
  // Waits up to `max_wait` for answers and expiries, and runs the callbacks of finished queries.
  void poll(std::chrono::milliseconds max_wait);
  std::size_t in_flight() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::transforms::metadata
