#include "pipeline/batch_sink.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "core/native_merge.hpp"
#include "core/native_sort.hpp"
#include "core/thread_name.hpp"

namespace sluice::pipeline {

BatchSink::BatchSink(std::string name, sinks::Store& store, BatchSinkPolicy policy, MetricsRegistry& metrics)
    : name_(std::move(name)),
      store_(store),
      policy_(std::move(policy)),
      batches_ok_(metrics.counter("sink_batches_total", "Batches stored", {{"sink", name_}})),
      rows_ok_(metrics.counter("sink_rows_total", "Rows stored", {{"sink", name_}})),
      coalesced_(metrics.counter("sink_coalesced_batches_total", "Batches inserted together with an earlier one (policy coalesce)", {{"sink", name_}})),
      unmerged_(metrics.counter("sink_unmerged_inserts_total",
                                "Coalesced inserts sent as several blocks: their blocks could not be merged into one (a column type the merge does not know)",
                                {{"sink", name_}})),
      sorted_(metrics.counter("sink_sorted_inserts_total",
                              "Inserts sent in the table's sorting-key order (sorted here, or found in order), sparing the embedded store its sort",
                              {{"sink", name_}})),
      unsorted_(metrics.counter("sink_unsortable_inserts_total",
                                "Inserts sent in their rows' order because the block could not be sorted here (a key type not compared here); the store sorts them",
                                {{"sink", name_}})),
      body_bytes_(metrics.counter("sink_body_bytes_total", "Encoded bytes of stored batches", {{"sink", name_}})),
      retries_(metrics.counter("sink_retries_total", "Insert attempts that failed and were retried", {{"sink", name_}})),
      dead_batches_(metrics.counter("sink_dead_letter_batches_total", "Batches refused permanently and written to dead letters", {{"sink", name_}})),
      dead_rows_(metrics.counter("sink_dead_letter_rows_total", "Rows written to dead letters", {{"sink", name_}})),
      abandoned_(metrics.counter("sink_abandoned_batches_total", "Batches not stored at shutdown (replayed from the bus on restart)", {{"sink", name_}})),
      metrics_(metrics) {
  metrics_.gauge_callback("sink_pending_batches", "Batches submitted and not yet stored", {{"sink", name_}},
                          [this] { return static_cast<double>(pending()); });
  metrics_.gauge_callback("sink_pending_bytes", "Bytes of batches submitted and not yet stored", {{"sink", name_}},
                          [this] {
                            std::lock_guard lock(mutex_);
                            return static_cast<double>(pending_bytes_);
                          });
  for (int i = 0; i < policy_.parallel_inserts; ++i) workers_.emplace_back([this] {
    name_this_thread("sink:" + name_);
    worker();
  });
}

BatchSink::~BatchSink() {
  stop(std::chrono::steady_clock::now());
  metrics_.remove_callbacks("sink_pending_batches", {{"sink", name_}});
  metrics_.remove_callbacks("sink_pending_bytes", {{"sink", name_}});
}

void BatchSink::submit(sinks::InsertRequest request, std::function<void()> on_done) {
  std::unique_lock lock(mutex_);
  const std::uint64_t size = request.body.size();
  space_cv_.wait(lock, [&] {
    const std::size_t pending = queue_.size() + in_flight_;
    return closing_ || (pending < static_cast<std::size_t>(policy_.max_pending_batches) &&
                        (pending == 0 || pending_bytes_ + size <= policy_.max_pending_bytes));
  });
  if (closing_) {
    abandoned_.inc();
    return;
  }
  pending_bytes_ += size;
  queue_.push_back(Job{std::move(request), std::move(on_done)});
  work_cv_.notify_one();
}

void BatchSink::submit_all(std::vector<Batch> batches) {
  if (batches.empty()) return;
  std::uint64_t size = 0;
  for (const auto& b : batches) size += b.request.body.size();
  std::unique_lock lock(mutex_);
  // The round goes in whole: it waits for room for all of it, or for an empty queue when it is larger
  // than the bounds by itself (its size is bounded by the builders' max_rows and max_bytes).
  space_cv_.wait(lock, [&] {
    const std::size_t pending = queue_.size() + in_flight_;
    return closing_ || pending == 0 ||
           (pending + batches.size() <= static_cast<std::size_t>(policy_.max_pending_batches) &&
            pending_bytes_ + size <= policy_.max_pending_bytes);
  });
  if (closing_) {
    abandoned_.inc(batches.size());
    return;
  }
  pending_bytes_ += size;
  for (auto& b : batches) queue_.push_back(std::move(b));
  work_cv_.notify_all();
}

std::size_t BatchSink::pending() const {
  std::lock_guard lock(mutex_);
  return queue_.size() + in_flight_;
}

void BatchSink::stop(std::chrono::steady_clock::time_point deadline) {
  {
    std::unique_lock lock(mutex_);
    space_cv_.wait_until(lock, deadline, [&] { return queue_.empty() && in_flight_ == 0; });
    closing_ = true;
    if (!queue_.empty() || in_flight_ > 0) {
      spdlog::warn("sink {}: {} batches not stored before the shutdown deadline; they stay unacknowledged "
                   "and are replayed from the bus on restart",
                   name_, queue_.size() + in_flight_);
      abandoned_.inc(queue_.size());
      for (const auto& job : queue_) pending_bytes_ -= job.request.body.size();
      queue_.clear();
    }
    aborted_.store(true);
  }
  work_cv_.notify_all();
  space_cv_.notify_all();
  abort_cv_.notify_all();
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
}

bool BatchSink::sleep_unless_aborted(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  return !abort_cv_.wait_for(lock, d, [&] { return aborted_.load(); });
}

std::string BatchSink::take_buffer() {
  std::lock_guard lock(mutex_);
  if (spare_buffers_.empty()) return {};
  auto largest = std::max_element(spare_buffers_.begin(), spare_buffers_.end(),
                                  [](const auto& a, const auto& b) { return a.capacity() < b.capacity(); });
  std::string buffer = std::move(*largest);
  spare_buffers_.erase(largest);
  return buffer;
}

void BatchSink::keep_buffer(std::string buffer) {
  buffer.clear();
  std::lock_guard lock(mutex_);
  spare_buffers_.push_back(std::move(buffer));
}

void BatchSink::worker() {
  for (;;) {
    Job job;
    std::vector<Job> more;  // queued batches of the same table, inserted together with `job`
    std::uint64_t taken_bytes = 0;  // as submitted (counted in pending_bytes_): a merged body is smaller
    {
      std::unique_lock lock(mutex_);
      work_cv_.wait(lock, [&] { return !queue_.empty() || aborted_.load(); });
      if (aborted_.load()) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      taken_bytes = job.request.body.size();
      while (policy_.coalesce && job.request.format == "Native" && !queue_.empty() &&
             queue_.front().request.table == job.request.table && queue_.front().request.format == job.request.format &&
             taken_bytes + queue_.front().request.body.size() <= policy_.coalesce_max_bytes) {
        taken_bytes += queue_.front().request.body.size();
        more.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      in_flight_ += 1 + more.size();
    }
    const std::size_t taken = 1 + more.size();
    const bool sorts = !policy_.sort_by.empty() && job.request.format == "Native";
    auto order = NativeSorter::Outcome::unsupported;  // what sorting did, when it sorts
    // What is inserted: the job's own request, or one made from it (merged, sorted) in buffers of tens
    // of megabytes that are kept from one insert to the next, as fresh ones would be memory the kernel
    // has to hand out (and clear) page by page.
    sinks::InsertRequest made{job.request.table, job.request.format, {}, job.request.rows, job.request.dedup_token};
    bool insert_made = false;
    if (!more.empty()) {
      // One insert, which ClickHouse writes as one part: the bodies' blocks merged into one block
      // (the store pays for every block), or else following one another, as a Native body is a stream
      // of blocks. The combination is not rebuilt on replay, so it carries no deduplication token
      // (at-least-once). With a sorting key, they are merged and sorted in one pass.
      made.body = take_buffer();
      std::vector<std::string_view> bodies{job.request.body};
      for (const auto& m : more) bodies.push_back(m.request.body);
      if (sorts) order = sort(bodies, made.body);
      if (order != NativeSorter::Outcome::sorted && !merge_native_blocks(bodies, made.body)) {
        unmerged_.inc();
        std::size_t total = 0;
        for (const auto body : bodies) total += body.size();
        made.body.clear();
        made.body.reserve(total);
        for (const auto body : bodies) made.body += body;
      }
      for (const auto& m : more) made.rows += m.request.rows;
      made.dedup_token.clear();
      insert_made = true;
      coalesced_.inc(more.size());
    } else if (sorts) {
      made.body = take_buffer();
      const std::string_view body = job.request.body;
      order = sort({&body, 1}, made.body);
      insert_made = order == NativeSorter::Outcome::sorted;
    }
    if (sorts) (order == NativeSorter::Outcome::unsupported ? unsorted_ : sorted_).inc();
    const bool done = deliver(insert_made ? made : job.request);
    if (done) {
      if (job.on_done) job.on_done();
      for (const auto& m : more) {
        if (m.on_done) m.on_done();
      }
    }
    {
      std::lock_guard lock(mutex_);
      in_flight_ -= taken;
      pending_bytes_ -= taken_bytes;
      if (!done) abandoned_.inc(taken);
    }
    if (made.body.capacity() > 0) keep_buffer(std::move(made.body));
    space_cv_.notify_all();
  }
}

NativeSorter::Outcome BatchSink::sort(std::span<const std::string_view> bodies, std::string& out) {
  // One sorter for all workers: its working memory (several arrays a row) is then warmed once, and
  // sorting is short beside the insert it precedes.
  std::lock_guard lock(sort_mutex_);
  return sorter_.sort(bodies, policy_.sort_by, out);
}

bool BatchSink::deliver(const sinks::InsertRequest& request) {
  std::mt19937_64 rng(std::random_device{}());
  auto backoff = policy_.retry_initial;
  int attempts = 0;
  const auto exhausted = [&](const std::string& reason) {
    if (policy_.max_attempts <= 0 || ++attempts < policy_.max_attempts) return false;
    spdlog::error("sink {}: giving up on a batch of {} rows for table {} after {} attempts: {}", name_,
                  request.rows, request.table, attempts, reason);
    if (policy_.on_exhausted) policy_.on_exhausted(reason);
    return true;
  };
  for (;;) {
    if (aborted_.load()) return false;
    try {
      store_.insert(request);
      batches_ok_.inc();
      rows_ok_.inc(request.rows);
      body_bytes_.inc(request.body.size());
      return true;
    } catch (const sinks::StoreError& e) {
      {
        std::lock_guard lock(mutex_);
        last_error_ = e.what();
        last_error_time_ = std::chrono::system_clock::now();
      }
      if (!e.retryable()) {
        spdlog::error("sink {}: {} refused a batch of {} rows for table {} permanently: {}; writing it to dead letters in {}",
                      name_, store_.describe(), request.rows, request.table, e.what(), policy_.dead_letter_dir);
        if (dead_letter(request, e.what())) return true;
      } else {
        if (exhausted(e.what())) return false;
        spdlog::warn("sink {}: insert of {} rows into {} failed, retrying in {} ms: {}", name_, request.rows,
                     request.table, backoff.count(), e.what());
      }
      retries_.inc();
      // Full jitter keeps many outlets from retrying in lockstep after an outage.
      std::uniform_int_distribution<std::int64_t> jitter(backoff.count() / 2, backoff.count());
      if (!sleep_unless_aborted(std::chrono::milliseconds(jitter(rng)))) return false;
      backoff = std::min(policy_.retry_max, backoff * 2);
    } catch (const std::exception& e) {
      // Anything else is a bug or a transport surprise: keep the batch and retry, loudly.
      if (exhausted(e.what())) return false;
      spdlog::error("sink {}: unexpected error inserting into {}: {}; retrying in {} ms", name_, request.table,
                    e.what(), backoff.count());
      retries_.inc();
      if (!sleep_unless_aborted(backoff)) return false;
      backoff = std::min(policy_.retry_max, backoff * 2);
    }
  }
}

bool BatchSink::dead_letter(const sinks::InsertRequest& request, const std::string& reason) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(policy_.dead_letter_dir, ec);
  const auto now = std::chrono::system_clock::now();
  std::string token = request.dedup_token.empty() ? fmt::format("{}", now.time_since_epoch().count()) : request.dedup_token;
  for (char& c : token) {
    if (c == '/' || c == ' ') c = '_';
  }
  const auto base = fmt::format("{}/{}-{}", policy_.dead_letter_dir, request.table, token);
  {
    std::ofstream body(base + "." + request.format, std::ios::binary | std::ios::trunc);
    body.write(request.body.data(), static_cast<std::streamsize>(request.body.size()));
    std::ofstream why(base + ".reason", std::ios::trunc);
    why << fmt::format("time: {:%FT%TZ}\nstore: {}\ntable: {}\nformat: {}\nrows: {}\ntoken: {}\nreason: {}\n",
                       std::chrono::floor<std::chrono::seconds>(now), store_.describe(), request.table,
                       request.format, request.rows, request.dedup_token, reason);
    if (!body || !why) {
      spdlog::error("sink {}: cannot write dead letter {}: keeping the batch unacknowledged and retrying", name_, base);
      return false;
    }
  }
  dead_batches_.inc();
  dead_rows_.inc(request.rows);
  return true;
}

nlohmann::json BatchSink::status() const {
  std::lock_guard lock(mutex_);
  nlohmann::json j;
  j["name"] = name_;
  j["store"] = store_.describe();
  j["pending_batches"] = queue_.size() + in_flight_;
  j["pending_bytes"] = pending_bytes_;
  j["batches"] = batches_ok_.value();
  j["rows"] = rows_ok_.value();
  j["retries"] = retries_.value();
  j["dead_letter_batches"] = dead_batches_.value();
  j["last_error"] = last_error_;
  if (!last_error_.empty()) {
    j["last_error_time"] = fmt::format("{:%FT%TZ}", std::chrono::floor<std::chrono::seconds>(last_error_time_));
  }
  return j;
}

}  // namespace sluice::pipeline
