// Metrics: a registry of named, labelled counters and gauges, rendered in Prometheus text format.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// A count kept by one thread and added to its Counter in bulk by flush() (and on destruction): on a
// path taken per message, an atomic add each time costs more than some of the message's own work.
class CounterTally {
 public:
  explicit CounterTally(Counter& counter) : counter_(&counter) {}
  ~CounterTally() { flush(); }
  CounterTally(const CounterTally&) = delete;
  CounterTally& operator=(const CounterTally&) = delete;
  void inc(std::uint64_t n = 1) { pending_ += n; }
  void flush() {
    if (pending_ != 0) {
      counter_->inc(pending_);
      pending_ = 0;
    }
  }

 private:
  Counter* counter_;
  std::uint64_t pending_ = 0;
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double d) {
    double cur = value_.load(std::memory_order_relaxed);
    while (!value_.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
    }
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Owns every metric of the process; components keep references, which stay valid for its lifetime.
// Metric names are given without the `sluice_` prefix, which rendering adds.
class MetricsRegistry {
 public:
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  // A gauge computed when scraped (queue depth, lag, kernel drops). The callback must be thread-safe.
  void gauge_callback(const std::string& name, const std::string& help, const Labels& labels,
                      std::function<double()> read);
  void remove_callbacks(const std::string& name, const Labels& labels);

  std::string render_prometheus() const;
  // Sum of a counter over all label sets (tests and status pages).
  std::uint64_t counter_total(const std::string& name) const;
  std::uint64_t counter_value(const std::string& name, const Labels& labels) const;

 private:
  struct Family {
    std::string help;
    bool is_counter = true;
    std::map<std::string, std::unique_ptr<Counter>> counters;  // key: rendered label set
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::function<double()>> callbacks;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
};

std::string render_labels(const Labels& labels);

}  // namespace sluice
