#include "bus/kafka_client.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>

namespace sluice::bus::kafka {
namespace {

// librdkafka logs with syslog levels from its own threads; spdlog is thread-safe.
void log_to_spdlog(const rd_kafka_t* rk, int level, const char* facility, const char* message) {
  const char* name = rk != nullptr ? rd_kafka_name(rk) : "kafka";
  spdlog::level::level_enum lvl = spdlog::level::debug;
  if (level <= 3) {
    lvl = spdlog::level::err;
  } else if (level == 4) {
    lvl = spdlog::level::warn;
  } else if (level <= 6) {
    lvl = spdlog::level::info;
  }
  spdlog::log(lvl, "kafka {} [{}]: {}", name, facility, message);
}

}  // namespace

ConfPtr make_conf(std::string_view brokers, std::string_view client_id) {
  ConfPtr conf(rd_kafka_conf_new());
  set_property(conf.get(), "bootstrap.servers", std::string(brokers));
  set_property(conf.get(), "client.id", std::string(client_id));
  rd_kafka_conf_set_log_cb(conf.get(), log_to_spdlog);
  return conf;
}

void set_property(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    throw std::runtime_error("kafka: librdkafka rejects property " + name + "=" + value + ": " + err +
                             " (fix it in the Kafka producer/consumer properties of the configuration)");
  }
}

void set_properties(rd_kafka_conf_t* conf, const std::map<std::string, std::string>& properties) {
  for (const auto& [name, value] : properties) set_property(conf, name, value);
}

HandlePtr make_handle(rd_kafka_type_t type, ConfPtr conf, std::string_view brokers) {
  char err[512];
  HandlePtr rk(rd_kafka_new(type, conf.get(), err, sizeof err));
  if (!rk) {
    throw std::runtime_error(std::string("kafka: cannot create a ") +
                             (type == RD_KAFKA_PRODUCER ? "producer" : "consumer") + " for brokers " +
                             std::string(brokers) + ": " + err + " (check the Kafka settings)");
  }
  (void)conf.release();  // rd_kafka_new() took ownership
  return rk;
}

std::string err_name(rd_kafka_resp_err_t err) { return rd_kafka_err2name(err); }

std::optional<std::uint64_t> LogRateLimiter::allow() {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (now < next_) {
    ++suppressed_;
    return std::nullopt;
  }
  next_ = now + period_;
  const auto held = suppressed_;
  suppressed_ = 0;
  return held;
}

}  // namespace sluice::bus::kafka
