// HttpListener: an httplib server bound the way every sluice HTTP endpoint needs, on its own named thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace sluice {

// Routes and limits are set on server() before start(). Bound without SO_REUSEPORT (httplib's default
// would let a second instance share the port silently) and listening with a real backlog (httplib's
// 5 makes a burst of clients wait for SYN retransmits).
class HttpListener {
 public:
  // `thread_name` names the loop's thread; `worker_threads` sizes the pool that answers requests.
  HttpListener(std::string thread_name, int worker_threads);
  ~HttpListener();  // stop()
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  httplib::Server& server() { return *server_; }

  // Binds host:port (port 0: any free port), starts answering and returns the bound port. Throws
  // std::runtime_error "<who>: cannot listen on <listen>: <reason>; is another process using it?
  // <hint>" when the port cannot be had.
  // `on_failure` runs on the loop's thread if the loop ends without stop() (the listening socket failed).
  std::uint16_t start(const std::string& host, int port, int backlog, const std::string& who,
                      const std::string& listen, const std::string& hint, std::function<void()> on_failure = {});
  // Stops answering and joins the loop; safe to call twice, or without start().
  void stop();
  std::uint16_t port() const { return port_; }

 private:
  std::string thread_name_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int listen_fd_ = -1;  // seen through httplib's socket options hook
  std::uint16_t port_ = 0;
  bool started_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> loop_exited_{false};
};

}  // namespace sluice
