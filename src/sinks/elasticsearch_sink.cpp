#include "sinks/elasticsearch_sink.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

#include "core/thread_name.hpp"

namespace sluice::sinks {
namespace {

constexpr std::size_t kMaxLogged = 500;

std::string trimmed(std::string_view s, std::size_t max = kMaxLogged) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  if (s.size() > max) return std::string(s.substr(0, max)) + "...";
  return std::string(s);
}

// A `_bulk` body as its items: each one action line and one source line, with their line breaks.
std::vector<std::string_view> split_items(std::string_view body) {
  std::vector<std::string_view> items;
  std::size_t at = 0;
  while (at < body.size()) {
    std::size_t end = body.find('\n', at);
    if (end != std::string_view::npos) end = body.find('\n', end + 1);
    end = end == std::string_view::npos ? body.size() : end + 1;
    items.push_back(body.substr(at, end - at));
    at = end;
  }
  return items;
}

// "type: reason (caused by: type: reason)" from an Elasticsearch error object.
std::string describe_error(const nlohmann::json& error) {
  if (!error.is_object()) return error.is_null() ? std::string() : error.dump();
  std::string out = error.value("type", std::string("unknown")) + ": " + error.value("reason", std::string());
  if (const auto c = error.find("caused_by"); c != error.end() && c->is_object()) {
    out += " (caused by " + c->value("type", std::string()) + ": " + c->value("reason", std::string()) + ")";
  }
  return out;
}

}  // namespace

ElasticsearchSink::ElasticsearchSink(ElasticsearchConfig config, DeadLetters& dead_letters, MetricsRegistry& metrics,
                                     std::string name)
    : config_(std::move(config)),
      name_(std::move(name)),
      dead_letters_(dead_letters),
      metrics_(metrics),
      indexed_(metrics.counter("elasticsearch_items_total", "Items sent to Elasticsearch by result", {{"result", "indexed"}})),
      duplicate_(metrics.counter("elasticsearch_items_total", "Items sent to Elasticsearch by result", {{"result", "duplicate"}})),
      retried_(metrics.counter("elasticsearch_items_total", "Items sent to Elasticsearch by result", {{"result", "retried"}})),
      dead_(metrics.counter("elasticsearch_items_total", "Items sent to Elasticsearch by result", {{"result", "dead_letter"}})),
      batches_(metrics.counter("elasticsearch_batches_total", "Batches fully delivered (every item indexed, duplicate or dead-lettered)")),
      abandoned_(metrics.counter("elasticsearch_abandoned_batches_total",
                                 "Batches not delivered at shutdown (left unacknowledged: the bus replays them)")),
      request_seconds_(metrics.gauge("elasticsearch_request_seconds",
                                     "Seconds spent in _bulk requests, summed (divide by elasticsearch_requests_total)")) {
  if (config_.urls.empty()) throw std::invalid_argument("elasticsearch sink: no urls configured");
  metrics_.gauge_callback("elasticsearch_pending_batches", "Batches submitted and not yet delivered", {{"sink", name_}},
                          [this] { return static_cast<double>(pending()); });
  for (int i = 0; i < config_.parallel_requests; ++i) {
    auto w = std::make_unique<Worker>();
    w->rng.seed(std::random_device{}());
    for (const auto& url : config_.urls) {
      std::string base = url;
      if (!base.empty() && base.back() == '/') base.pop_back();
      auto c = std::make_unique<httplib::Client>(base);
      c->set_connection_timeout(config_.connect_timeout);
      c->set_read_timeout(config_.request_timeout);
      c->set_write_timeout(config_.request_timeout);
      c->set_keep_alive(true);
      c->set_compress(config_.gzip);
      if (!config_.username.empty()) c->set_basic_auth(config_.username, config_.password);
      if (!config_.ca_file.empty()) c->set_ca_cert_path(config_.ca_file);
      c->enable_server_certificate_verification(config_.tls_verify);
      w->clients.push_back(std::move(c));
    }
    workers_.push_back(std::move(w));
  }
  for (auto& w : workers_) threads_.emplace_back([this, wp = w.get()] {
    name_this_thread("es-bulk");
    run(*wp);
  });
}

ElasticsearchSink::~ElasticsearchSink() {
  stop(std::chrono::steady_clock::now());
  metrics_.remove_callbacks("elasticsearch_pending_batches", {{"sink", name_}});
}

void ElasticsearchSink::submit(InsertRequest request, std::function<void()> on_done) {
  if (request.format != kBulkFormat) {
    // A wiring mistake, not data: refuse loudly rather than send something Elasticsearch cannot read.
    throw std::invalid_argument(fmt::format("elasticsearch sink {}: batch format '{}' is not '{}'", name_,
                                            request.format, kBulkFormat));
  }
  std::unique_lock lock(mutex_);
  space_cv_.wait(lock, [&] {
    return closing_ || queue_.size() + in_flight_ < static_cast<std::size_t>(config_.max_pending_batches);
  });
  if (closing_) {
    abandoned_.inc();
    return;
  }
  queue_.push_back(Job{std::move(request), std::move(on_done)});
  work_cv_.notify_one();
}

std::size_t ElasticsearchSink::pending() const {
  std::lock_guard lock(mutex_);
  return queue_.size() + in_flight_;
}

void ElasticsearchSink::stop(std::chrono::steady_clock::time_point deadline) {
  {
    std::unique_lock lock(mutex_);
    space_cv_.wait_until(lock, deadline, [&] { return queue_.empty() && in_flight_ == 0; });
    closing_ = true;
    if (!queue_.empty() || in_flight_ > 0) {
      spdlog::warn("elasticsearch sink {}: {} batches not delivered before the shutdown deadline; they stay "
                   "unacknowledged and are replayed from the bus on restart",
                   name_, queue_.size() + in_flight_);
      abandoned_.inc(queue_.size());
      queue_.clear();
    }
    aborted_.store(true);
  }
  work_cv_.notify_all();
  space_cv_.notify_all();
  abort_cv_.notify_all();
  // Cuts requests in flight, so that a slow server cannot hold the shutdown past its deadline. Again
  // until every worker is out: one may have been about to open a connection the first time.
  for (;;) {
    for (auto& w : workers_) {
      for (auto& c : w->clients) c->stop();
    }
    std::unique_lock lock(mutex_);
    if (exited_cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return exited_ >= threads_.size(); })) break;
  }
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

bool ElasticsearchSink::sleep_unless_aborted(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  return !abort_cv_.wait_for(lock, d, [&] { return aborted_.load(); });
}

void ElasticsearchSink::note_error(const std::string& what) {
  std::lock_guard lock(mutex_);
  last_error_ = what;
  last_error_time_ = std::chrono::system_clock::now();
}

void ElasticsearchSink::run(Worker& w) {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      work_cv_.wait(lock, [&] { return !queue_.empty() || aborted_.load(); });
      if (aborted_.load()) {
        ++exited_;
        exited_cv_.notify_all();
        return;
      }
      job = std::move(queue_.front());
      queue_.pop_front();
      ++in_flight_;
    }
    const bool done = deliver(w, job);
    if (done) {
      batches_.inc();
      if (job.on_done) job.on_done();
    }
    {
      std::lock_guard lock(mutex_);
      --in_flight_;
      if (!done) abandoned_.inc();
    }
    space_cv_.notify_all();
  }
}

bool ElasticsearchSink::deliver(Worker& w, Job& job) {
  const auto items = split_items(job.request.body);
  if (items.size() != job.request.rows) {
    spdlog::warn("elasticsearch sink {}: a batch says {} rows but its body holds {} items; sending the items",
                 name_, job.request.rows, items.size());
  }
  std::vector<std::size_t> pending(items.size());
  for (std::size_t i = 0; i < pending.size(); ++i) pending[i] = i;
  auto backoff = config_.retry_initial;
  std::vector<DeadLetter> letters;
  while (!pending.empty()) {
    if (aborted_.load()) return false;
    Round round;
    // Requests of at most max_body_bytes (one larger item still goes alone).
    std::size_t first = 0;
    while (first < pending.size()) {
      std::size_t last = first;
      std::size_t bytes = 0;
      while (last < pending.size() && (last == first || bytes + items[pending[last]].size() <= config_.max_body_bytes)) {
        bytes += items[pending[last]].size();
        ++last;
      }
      send(w, items, std::span<const std::size_t>(pending).subspan(first, last - first), round);
      if (aborted_.load()) return false;
      first = last;
    }
    if (!round.dead.empty()) {
      letters.clear();
      for (std::size_t k = 0; k < round.dead.size(); ++k) {
        std::string_view record = items[round.dead[k]];
        if (!record.empty() && record.back() == '\n') record.remove_suffix(1);
        letters.push_back(DeadLetter{round.reasons[k], record, round.details[k]});
      }
      if (dead_letters_.write(name_, letters)) {
        dead_.inc(round.dead.size());
      } else {
        // Not durable: the items stay pending and the write is tried again next round.
        round.retry.insert(round.retry.end(), round.dead.begin(), round.dead.end());
        std::sort(round.retry.begin(), round.retry.end());
      }
    }
    pending = std::move(round.retry);
    if (pending.empty()) break;
    retried_.inc(pending.size());
    std::uniform_int_distribution<std::int64_t> jitter(backoff.count() / 2, backoff.count());
    if (!sleep_unless_aborted(std::chrono::milliseconds(jitter(w.rng)))) return false;
    backoff = std::min(config_.retry_max, backoff * 2);
  }
  return true;
}

ElasticsearchSink::HttpResult ElasticsearchSink::post(Worker& w, const std::string& body) {
  const std::size_t u = next_url_.fetch_add(1, std::memory_order_relaxed) % w.clients.size();
  httplib::Headers headers;
  if (!config_.api_key.empty()) headers.emplace("Authorization", "ApiKey " + config_.api_key);
  HttpResult r;
  r.url = config_.urls[u];
  if (aborted_.load()) {
    r.error = "sink stopping";
    return r;
  }
  const auto start = std::chrono::steady_clock::now();
  auto res = w.clients[u]->Post("/_bulk", headers, body, "application/x-ndjson");
  request_seconds_.add(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (!res) {
    r.error = httplib::to_string(res.error());
    metrics_.counter("elasticsearch_requests_total", "_bulk requests by HTTP status (error: no response)",
                     {{"status", "error"}}).inc();
    return r;
  }
  r.status = res->status;
  r.body = std::move(res->body);
  metrics_.counter("elasticsearch_requests_total", "_bulk requests by HTTP status (error: no response)",
                   {{"status", std::to_string(r.status)}}).inc();
  return r;
}

void ElasticsearchSink::send(Worker& w, std::span<const std::string_view> items, std::span<const std::size_t> which,
                             Round& round) {
  w.body.clear();
  for (const std::size_t i : which) w.body.append(items[i]);
  if (!w.body.empty() && w.body.back() != '\n') w.body.push_back('\n');  // the protocol ends every line
  const HttpResult r = post(w, w.body);
  const auto retry_all = [&] { round.retry.insert(round.retry.end(), which.begin(), which.end()); };
  const auto halves = [&] {
    const std::size_t mid = which.size() / 2;
    send(w, items, which.subspan(0, mid), round);
    send(w, items, which.subspan(mid), round);
  };
  const auto dead_all = [&](const std::string& reason, const std::string& detail) {
    for (const std::size_t i : which) {
      round.dead.push_back(i);
      round.reasons.push_back(reason);
      round.details.push_back(detail);
    }
  };
  if (r.status == 200) {
    read_items(r, which, round);
    return;
  }
  std::string error_type;
  std::string detail = trimmed(r.body);
  if (auto j = nlohmann::json::parse(r.body, nullptr, false); j.is_object() && j.contains("error")) {
    const auto& e = j["error"];
    if (e.is_object()) error_type = e.value("type", std::string());
    detail = describe_error(e);
  }
  if (r.status == 0) {
    const auto what = fmt::format("{}: no response ({}); {} items kept and retried", r.url, r.error, which.size());
    note_error(what);
    if (auto n = log_limiter_.allow("connect " + r.url)) {
      spdlog::warn("elasticsearch sink {}: {} [{} similar messages suppressed]", name_, what, *n);
    }
    retry_all();
  } else if (r.status == 413) {
    if (which.size() > 1) {
      spdlog::info("elasticsearch sink {}: {} refused a body of {} bytes as too large (413); splitting it in halves "
                   "(lower max_body_bytes below the server's http.max_content_length to avoid this)",
                   name_, r.url, w.body.size());
      halves();
    } else {
      dead_all("request_entity_too_large",
               fmt::format("413: one item of {} bytes is larger than the server accepts (http.max_content_length)",
                           items[which.front()].size()));
    }
  } else if (r.status == 400 && which.size() > 1) {
    // The body as a whole was unreadable: halving isolates the item at fault, the rest gets indexed.
    halves();
  } else if (r.status == 400) {
    dead_all(error_type.empty() ? "bad_request" : error_type, "400: " + detail);
  } else if (r.status == 401 || r.status == 403) {
    const auto what = fmt::format("{} refused the credentials ({}: {}); check username/password or api_key in the "
                                  "elasticsearch sink config and the user's index privileges (create_doc on the "
                                  "target indices); {} items are kept and retried until it works",
                                  r.url, r.status, detail, which.size());
    note_error(what);
    if (auto n = log_limiter_.allow("auth " + r.url)) {
      spdlog::error("elasticsearch sink {}: {} [{} similar messages suppressed]", name_, what, *n);
    }
    retry_all();
  } else {
    // 429 (es_rejected_execution_exception), 5xx, and anything unexpected: never lose, retry.
    const auto what = fmt::format("{} answered {} to a _bulk request of {} items: {}; retrying with backoff", r.url,
                                  r.status, which.size(), detail);
    note_error(what);
    if (auto n = log_limiter_.allow(fmt::format("status {} {}", r.status, r.url))) {
      spdlog::warn("elasticsearch sink {}: {} [{} similar messages suppressed]", name_, what, *n);
    }
    retry_all();
  }
}

void ElasticsearchSink::read_items(const HttpResult& r, std::span<const std::size_t> which, Round& round) {
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  const auto bad = [&](const char* why) {
    const auto what = fmt::format("{} answered 200 to a _bulk request but {}: {}; retrying its {} items", r.url, why,
                                  trimmed(r.body, 200), which.size());
    note_error(what);
    if (auto n = log_limiter_.allow("bad response " + r.url)) {
      spdlog::error("elasticsearch sink {}: {} [{} similar messages suppressed]", name_, what, *n);
    }
    round.retry.insert(round.retry.end(), which.begin(), which.end());
  };
  if (!j.is_object()) return bad("the response is not a JSON object");
  const auto items = j.find("items");
  if (items == j.end() || !items->is_array()) return bad("the response has no items");
  if (items->size() != which.size()) return bad("the response has a different number of items");
  for (std::size_t k = 0; k < which.size(); ++k) {
    const auto& wrapper = (*items)[k];
    if (!wrapper.is_object() || wrapper.empty() || !wrapper.begin()->is_object()) {
      round.retry.push_back(which[k]);
      continue;
    }
    const auto& item = *wrapper.begin();  // keyed by the action: {"create":{...}}
    const int status = item.value("status", 0);
    if (status == 200 || status == 201) {
      indexed_.inc();
    } else if (status == 409) {
      duplicate_.inc();  // create of an _id that exists: this line was indexed before (a replay)
    } else if (status == 429 || status >= 500 || status == 0) {
      round.retry.push_back(which[k]);
    } else {
      const auto e = item.find("error");
      std::string reason = "status_" + std::to_string(status);
      if (e != item.end() && e->is_object() && e->contains("type") && (*e)["type"].is_string()) {
        reason = (*e)["type"].get<std::string>();
      }
      std::string detail = fmt::format("{}: {}", status, e != item.end() ? describe_error(*e) : std::string());
      if (auto n = log_limiter_.allow("item " + reason)) {
        spdlog::warn("elasticsearch sink {}: {} refused an item ({}); writing it to dead letters in {} "
                     "[{} similar messages suppressed]",
                     name_, r.url, trimmed(detail, 300), dead_letters_.dir(), *n);
      }
      round.dead.push_back(which[k]);
      round.reasons.push_back(std::move(reason));
      round.details.push_back(std::move(detail));
    }
  }
}

nlohmann::json ElasticsearchSink::status() const {
  std::lock_guard lock(mutex_);
  nlohmann::json j;
  j["name"] = name_;
  j["urls"] = config_.urls;
  j["pending_batches"] = queue_.size() + in_flight_;
  j["batches"] = batches_.value();
  j["indexed"] = indexed_.value();
  j["duplicates"] = duplicate_.value();
  j["retried"] = retried_.value();
  j["dead_letters"] = dead_.value();
  j["dead_letter_dir"] = dead_letters_.dir();
  j["last_error"] = last_error_;
  if (!last_error_.empty()) {
    j["last_error_time"] = fmt::format("{:%FT%TZ}", std::chrono::floor<std::chrono::seconds>(last_error_time_));
  }
  return j;
}

}  // namespace sluice::sinks
