#include "sinks/jsonrpc_client.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "sinks/line_client.hpp"

namespace sluice::sinks {
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

}  // namespace

JsonRpcClient::JsonRpcClient(JsonRpcClientConfig config) : config_(std::move(config)) {
  if (config_.max_conns < 1) config_.max_conns = 1;
}

JsonRpcClient::~JsonRpcClient() {
  for (int fd : idle_) ::close(fd);
}

int JsonRpcClient::connect_now(std::string& error) { return tcp_connect(config_.address, config_.connect_timeout, error); }

int JsonRpcClient::acquire(std::string& error) {
  {
    std::unique_lock lock(mutex_);
    free_cv_.wait(lock, [&] { return !idle_.empty() || open_ < config_.max_conns; });
    if (!idle_.empty()) {
      const int fd = idle_.back();
      idle_.pop_back();
      return fd;
    }
    ++open_;
  }
  const int fd = connect_now(error);
  if (fd < 0) {
    std::lock_guard lock(mutex_);
    --open_;
    free_cv_.notify_one();
  }
  return fd;
}

void JsonRpcClient::release(int fd, bool reusable) {
  std::lock_guard lock(mutex_);
  if (reusable && static_cast<int>(idle_.size()) < config_.max_idle) {
    idle_.push_back(fd);
  } else {
    ::close(fd);
    --open_;
  }
  free_cv_.notify_one();
}

std::string JsonRpcClient::call(std::string_view method, std::string_view params_json, std::string* result) {
  std::string error;
  const int fd = acquire(error);
  if (fd < 0) return fmt::format("{}: {}", config_.address, error);
  std::uint64_t id;
  {
    std::lock_guard lock(mutex_);
    id = next_id_++;
  }
  std::string request;
  request.reserve(params_json.size() + method.size() + 48);
  request.append(R"({"method":")").append(method).append(R"(","params":)").append(params_json);
  request.append(R"(,"id":)").append(std::to_string(id)).append("}\n");

  const auto deadline = Clock::now() + config_.call_timeout;
  if (!tcp_send_all(fd, request, deadline, error)) {
    release(fd, false);
    return fmt::format("{}: {}", config_.address, error);
  }
  // Go's encoder ends every reply with a newline.
  std::string reply;
  char buf[16384];
  for (;;) {
    if (const auto nl = reply.find('\n'); nl != std::string::npos) {
      const bool trailing = nl + 1 != reply.size();
      reply.resize(nl);
      if (trailing) {  // more than one reply to one request: the stream is out of step
        release(fd, false);
        return fmt::format("{}: the server sent an unexpected extra reply", config_.address);
      }
      break;
    }
    if (reply.size() > config_.max_reply_bytes) {
      release(fd, false);
      return fmt::format("{}: reply larger than {} bytes", config_.address, config_.max_reply_bytes);
    }
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, remaining_ms(deadline));
    if (ready <= 0) {
      release(fd, false);
      return fmt::format("{}: no reply within {} ms", config_.address, config_.call_timeout.count());
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      reply.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    release(fd, false);
    return fmt::format("{}: connection closed before the reply", config_.address);
  }
  const auto j = nlohmann::json::parse(reply, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("id")) {
    release(fd, false);
    return fmt::format("{}: malformed reply: {}", config_.address, reply.substr(0, 200));
  }
  if (!j["id"].is_number_unsigned() || j["id"].get<std::uint64_t>() != id) {
    release(fd, false);
    return fmt::format("{}: reply for another request", config_.address);
  }
  release(fd, true);
  if (j.contains("error") && !j["error"].is_null()) {
    return fmt::format("{}: {} failed: {}", config_.address, method,
                       j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump());
  }
  if (result) *result = j.contains("result") ? j["result"].dump() : "null";
  return {};
}

}  // namespace sluice::sinks
