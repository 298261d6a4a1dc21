#include "core/metrics.hpp"

#include <fmt/format.h>

namespace sluice {

std::string render_labels(const Labels& labels) {
  if (labels.empty()) return {};
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    for (char c : v) {
      if (c == '\\' || c == '"') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& fam = families_[name];
  fam.help = help;
  fam.is_counter = true;
  auto& slot = fam.counters[render_labels(labels)];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& MetricsRegistry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& fam = families_[name];
  fam.help = help;
  fam.is_counter = false;
  auto& slot = fam.gauges[render_labels(labels)];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

void MetricsRegistry::gauge_callback(const std::string& name, const std::string& help, const Labels& labels,
                                     std::function<double()> read) {
  std::lock_guard lock(mutex_);
  auto& fam = families_[name];
  fam.help = help;
  fam.is_counter = false;
  fam.callbacks[render_labels(labels)] = std::move(read);
}

void MetricsRegistry::remove_callbacks(const std::string& name, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it != families_.end()) it->second.callbacks.erase(render_labels(labels));
}

std::string MetricsRegistry::render_prometheus() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, fam] : families_) {
    const std::string full = "sluice_" + name;
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", full, fam.help, full, fam.is_counter ? "counter" : "gauge");
    for (const auto& [labels, c] : fam.counters) out += fmt::format("{}{} {}\n", full, labels, c->value());
    for (const auto& [labels, g] : fam.gauges) out += fmt::format("{}{} {}\n", full, labels, g->value());
    for (const auto& [labels, cb] : fam.callbacks) out += fmt::format("{}{} {}\n", full, labels, cb());
  }
  return out;
}

std::uint64_t MetricsRegistry::counter_total(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  std::uint64_t sum = 0;
  for (const auto& [_, c] : it->second.counters) sum += c->value();
  return sum;
}

std::uint64_t MetricsRegistry::counter_value(const std::string& name, const Labels& labels) const {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  auto c = it->second.counters.find(render_labels(labels));
  return c == it->second.counters.end() ? 0 : c->second->value();
}

}  // namespace sluice
