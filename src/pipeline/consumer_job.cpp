#include "pipeline/consumer_job.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <thread>

namespace sluice::pipeline {
namespace {
constexpr std::string_view kMetadataPrefix = "sluice1:";
}

std::string encode_pending_ranges(const std::set<OffsetRange>& ranges) {
  std::string out(kMetadataPrefix);
  bool first = true;
  for (const auto& r : ranges) {
    if (!first) out += ',';
    first = false;
    out += fmt::format("{}-{}", r.first, r.last);
  }
  return out;
}

std::deque<OffsetRange> decode_pending_ranges(std::string_view metadata) {
  std::deque<OffsetRange> out;
  if (metadata.substr(0, kMetadataPrefix.size()) != kMetadataPrefix) return out;
  metadata.remove_prefix(kMetadataPrefix.size());
  while (!metadata.empty()) {
    const auto comma = metadata.find(',');
    const auto item = metadata.substr(0, comma);
    const auto dash = item.find('-');
    OffsetRange r;
    if (dash != std::string_view::npos) {
      auto a = std::from_chars(item.data(), item.data() + dash, r.first);
      auto b = std::from_chars(item.data() + dash + 1, item.data() + item.size(), r.last);
      if (a.ec == std::errc() && b.ec == std::errc() && r.first <= r.last) out.push_back(r);
    }
    if (comma == std::string_view::npos) break;
    metadata.remove_prefix(comma + 1);
  }
  std::sort(out.begin(), out.end());
  return out;
}

ConsumerJob::ConsumerJob(ConsumerJobConfig config, bus::Consumer& consumer, BatchBuilderFactory factory,
                         BatchTarget& sink, MetricsRegistry& metrics)
    : config_(std::move(config)),
      consumer_(consumer),
      factory_(std::move(factory)),
      sink_(sink),
      metrics_(metrics),
      last_commit_(std::chrono::steady_clock::now()),
      messages_(metrics.counter("outlet_messages_total", "Bus messages consumed", {{"job", config_.name}})),
      batches_(metrics.counter("outlet_batches_total", "Batches closed and sent to the sink", {{"job", config_.name}})),
      empty_batches_(metrics.counter("outlet_empty_batches_total", "Batches without rows (acknowledged at once)", {{"job", config_.name}})),
      commits_(metrics.counter("outlet_commits_total", "Offset commits", {{"job", config_.name}})),
      commit_failures_(metrics.counter("outlet_commit_failures_total", "Offset commits the bus refused", {{"job", config_.name}})),
      replayed_batches_(metrics.counter("outlet_replayed_batches_total", "Batches rebuilt on the boundaries of a previous owner", {{"job", config_.name}})),
      unrecorded_boundaries_(metrics.counter("outlet_unrecorded_boundaries_total",
                                             "Batches inserted although their boundary could not be committed first (may duplicate after a crash)",
                                             {{"job", config_.name}})),
      skipped_offsets_(metrics.counter("outlet_skipped_offsets_total",
                                       "Offsets the bus moved past before they were read (retention or an offset reset: data lost upstream)",
                                       {{"job", config_.name}})) {}

ConsumerJob::~ConsumerJob() = default;

void ConsumerJob::on_assigned(const std::vector<bus::Assignment>& assigned) {
  std::lock_guard lock(partitions_mutex_);
  for (const auto& a : assigned) {
    auto p = std::make_shared<Partition>(a.ref, factory_(a.ref), a.next_offset);
    p->plan = decode_pending_ranges(a.metadata);
    p->committed = a.next_offset;
    p->next_expected = a.next_offset >= 0 ? a.next_offset : -1;
    p->committed_metadata = a.metadata;
    if (!p->plan.empty()) {
      spdlog::info("job {}: {}/{} resumes at offset {} and rebuilds {} batches sent by its previous owner",
                   config_.name, a.ref.topic, a.ref.partition, a.next_offset, p->plan.size());
    }
    partitions_[a.ref] = std::move(p);
  }
  last_partition_ = nullptr;
}

void ConsumerJob::note_skipped(Partition& p, std::int64_t offset) {
  const auto lost = static_cast<std::uint64_t>(offset - p.next_expected);
  skipped_offsets_.inc(lost);
  if (auto suppressed = log_limiter_.allow("skipped/" + p.ref.topic)) {
    spdlog::error("job {}: {}/{} jumped from offset {} to {}: {} message(s) were removed by the bus before this "
                  "outlet read them ({} similar jump(s) since the last report). Raise the topic's retention or add "
                  "outlet capacity; see sluice_outlet_skipped_offsets_total",
                  config_.name, p.ref.topic, p.ref.partition, p.next_expected, offset, lost, *suppressed);
  }
}

void ConsumerJob::on_message(const bus::Message& m) {
  messages_.inc();
  // This thread is its only writer: a plain store is enough for readers, and cheaper than an atomic add.
  consumed_.store(consumed_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  // Messages come in runs from one partition: remember the last one instead of a map lookup each.
  if (!last_partition_ || last_partition_->ref.partition != m.partition || last_partition_->ref.topic != m.topic) {
    auto it = partitions_.find(bus::PartitionRef{std::string(m.topic), m.partition});
    if (it == partitions_.end()) return;  // not ours (late message after revocation)
    last_partition_ = it->second.get();
  }
  Partition& p = *last_partition_;
  const std::int64_t o = m.offset;
  if (p.next_expected >= 0 && o > p.next_expected) note_skipped(p, o);
  p.next_expected = o + 1;

  // Follow the previous owner's boundaries while the replay plan covers this offset.
  while (!p.plan.empty() && o > p.plan.front().last) {
    if (p.batch_first >= 0 && p.batch_first >= p.plan.front().first) close_batch(p);
    p.plan.pop_front();
  }
  const bool planned = !p.plan.empty() && o >= p.plan.front().first;
  if (planned && p.batch_first >= 0 && p.batch_first < p.plan.front().first) close_batch(p);

  if (p.batch_first < 0) {
    p.batch_first = o;
    p.batch_started = std::chrono::steady_clock::now();
  }
  p.batch_last = o;
  p.builder->add(m);

  if (planned) {
    if (o == p.plan.front().last) {
      replayed_batches_.inc();
      close_batch(p);
      p.plan.pop_front();
    }
    return;
  }
  if (!p.plan.empty() && o + 1 >= p.plan.front().first) {
    close_batch(p);  // the next offset starts a planned batch
    return;
  }
  if (p.builder->rows() >= config_.max_rows || p.builder->bytes() >= config_.max_bytes) close_batch(p);
}

std::string ConsumerJob::pending_metadata(Partition& p) {
  std::lock_guard lock(p.mutex);
  return encode_pending_ranges(p.in_flight);
}

void ConsumerJob::close_batch(Partition& p) {
  if (auto batch = seal_batch(p)) sink_.submit(std::move(batch->request), std::move(batch->on_done));
}

std::optional<BatchTarget::Batch> ConsumerJob::seal_batch(Partition& p, bool record_boundary) {
  if (p.batch_first < 0) return std::nullopt;
  const OffsetRange range{p.batch_first, p.batch_last};
  p.batch_first = p.batch_last = -1;
  p.acks.consumed_range(range.first, range.last);
  sinks::InsertRequest request = p.builder->take();
  if (request.rows == 0) {
    empty_batches_.inc();
    p.acks.acked(range.first, range.last);
    return std::nullopt;
  }
  request.dedup_token = fmt::format("{}{}/{}/{}-{}", config_.token_prefix, p.ref.topic, p.ref.partition, range.first,
                                    range.last);
  {
    std::lock_guard lock(p.mutex);
    p.in_flight.insert(range);
  }
  if (record_boundary) {
    Partition* one[] = {&p};
    record_boundaries(one);
  }
  ++p.batches;
  batches_.inc();
  std::weak_ptr<Partition> weak;
  {
    std::lock_guard lock(partitions_mutex_);
    auto it = partitions_.find(p.ref);
    if (it != partitions_.end()) weak = it->second;
  }
  return BatchTarget::Batch{std::move(request), [weak, range] {
                               if (auto part = weak.lock()) {
                                 part->acks.acked(range.first, range.last);
                                 std::lock_guard lock(part->mutex);
                                 part->in_flight.erase(range);
                               }
                             }};
}

void ConsumerJob::record_boundaries(std::span<Partition* const> parts) {
  // The boundaries must be durable before the inserts can happen: a replay then rebuilds these batches.
  // A brief bus hiccup is retried; past that the inserts proceed (at-least-once) and are counted.
  std::vector<Partition*> left(parts.begin(), parts.end());
  for (int attempt = 0; !left.empty() && attempt < 3; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
    left = commit_changed(left, true);
  }
  for (Partition* p : left) {
    unrecorded_boundaries_.inc();
    if (auto suppressed = log_limiter_.allow(p->ref.topic)) {
      OffsetRange range;  // the batch just sealed: the latest in flight
      {
        std::lock_guard lock(p->mutex);
        if (!p->in_flight.empty()) range = *p->in_flight.rbegin();
      }
      spdlog::warn("job {}: could not record the boundary of batch {}/{}/{}-{} on the bus; inserting anyway. A crash "
                   "before its commit may store it twice ({} more since the last report)",
                   config_.name, p->ref.topic, p->ref.partition, range.first, range.last, *suppressed);
    }
  }
}

std::vector<ConsumerJob::Partition*> ConsumerJob::commit_changed(std::span<Partition* const> parts, bool force) {
  std::vector<bus::Consumer::OffsetCommit> commits;
  std::vector<Partition*> committing;
  for (Partition* p : parts) {
    const auto offset = p->acks.committable();
    auto metadata = pending_metadata(*p);
    if (!force && offset == p->committed && metadata == p->committed_metadata) continue;
    commits.push_back({p->ref, offset, std::move(metadata)});
    committing.push_back(p);
  }
  const auto ok = consumer_.commit_all(commits);
  std::vector<Partition*> failed;
  for (std::size_t i = 0; i < commits.size(); ++i) {
    if (!ok[i]) {
      commit_failures_.inc();
      failed.push_back(committing[i]);
      continue;
    }
    commits_.inc();
    committing[i]->committed = commits[i].next_offset;
    committing[i]->committed_metadata = std::move(commits[i].metadata);
  }
  return failed;
}

bool ConsumerJob::commit(Partition& p, bool force) {
  Partition* one[] = {&p};
  return commit_changed(one, force).empty();
}

void ConsumerJob::on_idle() {
  messages_.flush();
  const auto now = std::chrono::steady_clock::now();
  if (sink_.coalesces()) {
    // One partition's batch is due: every open batch goes with it, so that the sink makes one insert
    // (one part) per round instead of one per partition, each closing at its own moment.
    const bool due = std::any_of(partitions_.begin(), partitions_.end(), [&](const auto& entry) {
      const Partition& p = *entry.second;
      return p.batch_first >= 0 && p.plan.empty() && now - p.batch_started >= config_.max_delay;
    });
    if (due) {
      // Their boundaries are recorded in one commit, before any of them is handed over.
      std::vector<BatchTarget::Batch> round;
      std::vector<Partition*> sealed;
      for (auto& [ref, ptr] : partitions_) {
        if (!ptr->plan.empty()) continue;
        if (auto batch = seal_batch(*ptr, false)) {
          round.push_back(std::move(*batch));
          sealed.push_back(ptr.get());
        }
      }
      record_boundaries(sealed);
      sink_.submit_all(std::move(round));
    }
  }
  for (auto& [ref, ptr] : partitions_) {
    Partition& p = *ptr;
    if (p.batch_first < 0) continue;
    // A batch that follows a replay plan waits for its last offset, unless that never comes.
    const auto limit = p.plan.empty() ? config_.max_delay : config_.max_delay * 10;
    if (now - p.batch_started >= limit) close_batch(p);
  }
  if (now - last_commit_ >= config_.commit_interval) {
    last_commit_ = now;
    // One request for every partition that moved: a refusal costs one wait for the coordinator, not
    // one per partition. The next round retries what failed.
    std::vector<Partition*> all;
    for (auto& [ref, ptr] : partitions_) all.push_back(ptr.get());
    commit_changed(all, false);
  }
}

void ConsumerJob::on_revoked(const std::vector<bus::PartitionRef>& refs) {
  std::vector<std::shared_ptr<Partition>> leaving;
  for (const auto& ref : refs) {
    auto it = partitions_.find(ref);
    if (it == partitions_.end()) continue;
    close_batch(*it->second);
    leaving.push_back(it->second);
  }
  // Give in-flight batches a chance to land so the next owner replays as little as possible.
  const auto deadline = std::chrono::steady_clock::now() + config_.revoke_timeout;
  bool bus_refused = false;
  for (auto& p : leaving) {
    while (std::chrono::steady_clock::now() < deadline && !abandoning_.load()) {
      {
        std::lock_guard lock(p->mutex);
        if (p->in_flight.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    // After one refusal the rest are not tried: each would wait as long, and the next owner replays
    // from the last commit anyway. This keeps a shutdown during a Kafka outage within its deadline.
    if (bus_refused || !commit(*p, false)) {
      if (!bus_refused) {
        spdlog::warn("job {}: the bus refused a commit while handing partitions over; the next owner replays "
                     "from the last committed offsets",
                     config_.name);
      }
      bus_refused = true;
    }
    std::lock_guard lock(p->mutex);
    if (!p->in_flight.empty()) {
      spdlog::warn("job {}: {}/{} handed over with {} batches not yet stored; the next owner rebuilds them",
                   config_.name, p->ref.topic, p->ref.partition, p->in_flight.size());
    }
  }
  std::lock_guard lock(partitions_mutex_);
  last_partition_ = nullptr;
  for (const auto& ref : refs) partitions_.erase(ref);
}

std::int64_t ConsumerJob::lag() const {
  std::int64_t total = -1;
  std::lock_guard lock(partitions_mutex_);
  for (const auto& [ref, p] : partitions_) {
    const auto l = consumer_.lag(ref);
    if (l >= 0) total = (total < 0 ? 0 : total) + l;
  }
  return total;
}

nlohmann::json ConsumerJob::status() const {
  nlohmann::json parts = nlohmann::json::array();
  std::lock_guard lock(partitions_mutex_);
  for (const auto& [ref, p] : partitions_) {
    nlohmann::json j;
    j["topic"] = ref.topic;
    j["partition"] = ref.partition;
    j["committed"] = p->committed;
    j["committable"] = p->acks.committable();
    j["in_flight_messages"] = p->acks.in_flight();
    j["lag"] = consumer_.lag(ref);
    j["batches"] = p->batches;
    {
      std::lock_guard plock(p->mutex);
      j["in_flight_batches"] = p->in_flight.size();
    }
    parts.push_back(std::move(j));
  }
  return nlohmann::json{{"name", config_.name}, {"partitions", std::move(parts)}};
}

}  // namespace sluice::pipeline
