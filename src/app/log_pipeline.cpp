#include "app/log_pipeline.hpp"

#include <spdlog/spdlog.h>

#include "sinks/elasticsearch_body.hpp"
#include "sinks/elasticsearch_sink.hpp"
#include "sources/files/etcd_discovery.hpp"
#include "sources/files/file_tailer.hpp"
#include "sources/log_publisher.hpp"
#include "transforms/rules/rules.hpp"

namespace sluice::app {

// The tailer's ChunkPublisher over the bus, reporting deliveries back to the tailer.
class LogInlet::Publisher final : public sources::ChunkPublisher {
 public:
  Publisher(bus::Producer& producer, MetricsRegistry& metrics)
      : bus_(producer, metrics, [this](std::uint64_t cookie, bool delivered) {
          if (tailer_ != nullptr) tailer_->on_delivery(cookie, delivered);
        }) {}
  void attach(sources::FileTailer& tailer) { tailer_ = &tailer; }
  bool publish(std::string_view topic, std::string_view key, std::span<const std::byte> chunk,
               std::uint64_t cookie) override {
    return bus_.publish(topic, key, chunk, cookie);
  }

 private:
  sources::FileTailer* tailer_ = nullptr;
  sources::LogPublisher bus_;
};

LogInlet::LogInlet(const config::FilesInletConfig& config, const std::string& data_dir, std::string default_topic,
                   bus::Producer& producer, MetricsRegistry& metrics)
    : config_(config), metrics_(metrics), publisher_(std::make_unique<Publisher>(producer, metrics)) {
  sources::FileTailerConfig tc;
  if (!config.host.empty()) tc.host = config.host;
  tc.data_dir = data_dir;
  tc.default_topic = std::move(default_topic);
  tc.rescan_interval = config.rescan_interval;
  tc.checkpoint_interval = config.checkpoint_interval;
  tc.max_chunk_bytes = config.max_chunk_bytes;
  tc.max_in_flight_bytes = config.max_in_flight_bytes;
  tailer_ = std::make_unique<sources::FileTailer>(tc, *publisher_, metrics_);
  publisher_->attach(*tailer_);
  if (config.etcd) {
    discovery_ = std::make_unique<sources::EtcdDiscovery>(*config.etcd, metrics_, [this](std::vector<sources::FileSourceConfig> s) {
      {
        std::lock_guard lock(sources_mutex_);
        discovered_ = std::move(s);
      }
      apply_sources();
    });
  }
}

LogInlet::~LogInlet() = default;

void LogInlet::apply_sources() {
  std::vector<sources::FileSourceConfig> all = config_.sources;
  {
    std::lock_guard lock(sources_mutex_);
    all.insert(all.end(), discovered_.begin(), discovered_.end());
  }
  // One line must fit one chunk, and a chunk one bus message.
  const std::size_t line_limit = config_.max_chunk_bytes - 4096;
  for (auto& s : all) {
    if (s.max_line_bytes > line_limit) {
      spdlog::warn("file source {}: max_line_bytes {} is more than a chunk can carry; lines are cut at {} bytes "
                   "(raise inlet.files.max_chunk_bytes, and the Kafka producer's message.max.bytes with it, for "
                   "longer lines)",
                   s.name, s.max_line_bytes, line_limit);
      s.max_line_bytes = line_limit;
    }
  }
  tailer_->set_sources(std::move(all));
}

void LogInlet::start() {
  apply_sources();
  tailer_->start();
  if (discovery_) discovery_->start();
}

void LogInlet::stop(std::chrono::steady_clock::time_point deadline) {
  if (discovery_) discovery_->stop();
  tailer_->stop(deadline);
}

nlohmann::json LogInlet::status() const {
  nlohmann::json j = tailer_->status();
  if (discovery_) j["etcd"] = discovery_->status();
  return j;
}

// ---------------------------------------------------------------------------------------------------------------

LogOutlet::LogOutlet(const config::LogsOutletConfig& config, MetricsRegistry& metrics)
    : config_(config), metrics_(metrics), decoding_(metrics) {
  if (config_.rules && config_.rules.IsSequence()) {
    YAML::Node parent;
    parent["rules"] = config_.rules;
    auto reader = config::ConfigReader(parent, "outlet.logs", std::make_shared<std::vector<std::string>>());
    rules_ = std::make_unique<transforms::rules::RuleSet>(transforms::rules::RuleSet::read(reader, metrics, "rules"));
    reader.check();
  }
}

LogOutlet::~LogOutlet() = default;

pipeline::LogTransform LogOutlet::make_transform() const {
  if (!rules_ || rules_->empty()) return {};
  const auto* rules = rules_.get();
  std::shared_ptr<transforms::rules::RuleSet::Scratch> scratch = rules->make_scratch();
  return [rules, scratch](transforms::LogEvent& e) {
    return rules->apply(e, *scratch) == transforms::rules::Outcome::keep;
  };
}

pipeline::BatchBuilderFactory LogOutlet::table_builders(ClickHouseDialect dialect) {
  return [this, dialect](const bus::PartitionRef&) {
    return std::make_unique<pipeline::LogBatchBuilder>(decoding_, pipeline::make_logs_table_writer(dialect, config_.table),
                                                       make_transform());
  };
}

namespace {

class BulkWriter final : public pipeline::LogEventWriter {
 public:
  BulkWriter(const sinks::ElasticsearchConfig& config, MetricsRegistry& metrics) : writer_(config, metrics) {}
  void append(const transforms::LogEvent& event) override {
    writer_.append(event, body_);
    ++rows_;
  }
  std::uint64_t rows() const override { return rows_; }
  std::uint64_t bytes() const override { return body_.size(); }
  sinks::InsertRequest take() override {
    sinks::InsertRequest r;
    r.table = "elasticsearch";
    r.format = std::string(sinks::kBulkFormat);
    r.rows = rows_;
    r.body.swap(body_);
    rows_ = 0;
    return r;
  }

 private:
  sinks::BulkBodyWriter writer_;  // one per partition: it keeps buffers
  std::string body_;
  std::uint64_t rows_ = 0;
};

}  // namespace

pipeline::BatchBuilderFactory LogOutlet::elasticsearch_builders() {
  return [this](const bus::PartitionRef&) {
    return std::make_unique<pipeline::LogBatchBuilder>(decoding_, std::make_unique<BulkWriter>(*config_.elasticsearch, metrics_),
                                                       make_transform());
  };
}

}  // namespace sluice::app
