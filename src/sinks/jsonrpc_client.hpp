// JsonRpcClient: calls methods on a server speaking Go's net/rpc/jsonrpc codec (Open-Falcon graph
// and judge), through a small pool of TCP connections with connect and call timeouts.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::sinks {

struct JsonRpcClientConfig {
  std::string address;  // "host:port"
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds call_timeout{5000};
  int max_conns = 4;  // connections open at once; a call waits for one beyond
  int max_idle = 4;   // connections kept open between calls
  std::size_t max_reply_bytes = 16 << 20;
};

class JsonRpcClient {
 public:
  explicit JsonRpcClient(JsonRpcClientConfig config);
  ~JsonRpcClient();
  JsonRpcClient(const JsonRpcClient&) = delete;
  JsonRpcClient& operator=(const JsonRpcClient&) = delete;

  // Sends {"method":…,"params":<params_json>,"id":N} and waits for the reply with the same id.
  // Returns an empty string on success (the reply's "result" text in `result` if given), else what
  // went wrong: connection, timeout, malformed reply, or the server's "error" string. A connection
  // that failed in any way is closed, never reused.
  std::string call(std::string_view method, std::string_view params_json, std::string* result = nullptr);

  const std::string& address() const { return config_.address; }

 private:
  int acquire(std::string& error);
  void release(int fd, bool reusable);
  int connect_now(std::string& error);

  JsonRpcClientConfig config_;
  std::mutex mutex_;
  std::condition_variable free_cv_;
  std::vector<int> idle_;
  int open_ = 0;
  std::uint64_t next_id_ = 0;
};

}  // namespace sluice::sinks
