#include "core/http_listener.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "core/thread_name.hpp"

namespace sluice {

HttpListener::HttpListener(std::string thread_name, int worker_threads)
    : thread_name_(std::move(thread_name)), server_(std::make_unique<httplib::Server>()) {
  const auto threads = static_cast<std::size_t>(worker_threads);
  // httplib owns and deletes the queue it is handed.
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_socket_options([this](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd_ = sock;
  });
}

HttpListener::~HttpListener() { stop(); }

std::uint16_t HttpListener::start(const std::string& host, int port, int backlog, const std::string& who,
                                  const std::string& listen, const std::string& hint,
                                  std::function<void()> on_failure) {
  if (started_) return port_;
  errno = 0;
  int bound = -1;
  if (port == 0) bound = server_->bind_to_any_port(host);
  else if (server_->bind_to_port(host, port)) bound = port;
  if (bound <= 0) {
    const int err = errno;
    throw std::runtime_error(fmt::format("{}: cannot listen on {}{}{}; is another process using it? {}", who, listen,
                                         err != 0 ? ": " : "", err != 0 ? std::strerror(err) : "", hint));
  }
  // Listening again on Linux only resizes the accept queue.
  if (listen_fd_ >= 0) ::listen(listen_fd_, backlog);
  port_ = static_cast<std::uint16_t>(bound);
  started_ = true;
  thread_ = std::thread([this, on_failure = std::move(on_failure)] {
    name_this_thread(thread_name_);
    server_->listen_after_bind();
    if (!stopping_.load() && on_failure) on_failure();
    loop_exited_ = true;
  });
  // httplib's stop() is a no-op until its loop runs; wait so that an early stop() is never lost.
  while (!server_->is_running() && !loop_exited_.load()) std::this_thread::yield();
  return port_;
}

void HttpListener::stop() {
  if (!started_ || stopping_.exchange(true)) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace sluice
