#include "app/commands.hpp"

#include <CLI/CLI.hpp>
#include <httplib.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>

#include "app/flow_schema_config.hpp"
#include "app/runtime.hpp"
#include "app/version.hpp"
#include "config/config.hpp"
#include "config/reader.hpp"
#include "sinks/clickhouse_http_store.hpp"
#include "sinks/flow_tables.hpp"

namespace sluice::app {
namespace {

std::optional<config::Config> load(const std::string& path) {
  try {
    return config::load_config_file(path);
  } catch (const config::ConfigError& e) {
    std::fprintf(stderr, "sluice: %s is not a valid configuration:\n", path.c_str());
    for (const auto& line : e.errors()) std::fprintf(stderr, "  %s\n", line.c_str());
    return std::nullopt;
  }
}

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("sluice");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
}

// Blocks SIGTERM/SIGINT in every thread (set before any thread starts) and waits for them here, so
// that shutdown is ordinary code on the main thread rather than work in a signal handler.
int serve(const std::string& path, Role role) {
  auto cfg = load(path);
  if (!cfg) return 1;
  setup_logging(cfg->log_level);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Runtime runtime(std::move(*cfg), role);
  try {
    runtime.start();
  } catch (const std::exception& e) {
    spdlog::error("cannot start: {}", e.what());
    runtime.stop();
    return 2;
  }
  int sig = 0;
  sigwait(&set, &sig);
  spdlog::info("received {}, draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  // A second signal while draining means: stop now.
  std::thread second([&] {
    int again = 0;
    sigwait(&set, &again);
    spdlog::warn("second signal: exiting without finishing the drain; unacknowledged data is replayed on restart");
    std::_Exit(1);
  });
  second.detach();
  const bool clean = runtime.stop();
  return clean ? 0 : 1;
}

// With `ddl`, also prints the statements that create the flow tables (the dialect is only known
// once connected, so it is chosen here: "modern" for ClickHouse >= 22.2 and chDB, "legacy" for 18.16).
int check(const std::string& path, bool ddl, const std::string& dialect) {
  auto cfg = load(path);
  if (!cfg) return 1;
  if (ddl) {
    if (!cfg->outlet) {
      std::fprintf(stderr, "sluice check: %s has no outlet, so no flow tables\n", path.c_str());
      return 1;
    }
    const auto d = dialect == "legacy" ? ClickHouseDialect::legacy : ClickHouseDialect::modern;
    const auto& db = cfg->outlet->chdb ? cfg->outlet->chdb->database : cfg->outlet->clickhouse->database;
    try {
      const auto schema = FlowSchema::make(d, cfg->outlet->flows.optional_columns);
      // sluice's own sessions set this too: modern servers refuse LowCardinality(IPv6) without it.
      if (d == ClickHouseDialect::modern) std::printf("SET allow_suspicious_low_cardinality_types = 1;\n\n");
      for (const auto& s : sinks::flow_tables_ddl(schema, db, flow_tables_config(*cfg->outlet))) std::printf("%s;\n\n", s.c_str());
    } catch (const std::invalid_argument& e) {
      std::fprintf(stderr, "sluice check: outlet.flows.optional_columns: %s\n", e.what());
      return 1;
    }
    return 0;
  }
  std::printf("%s: configuration is valid\n", path.c_str());
  std::printf("  bus: %s\n", cfg->bus.kafka ? ("kafka " + cfg->bus.kafka->brokers).c_str() : "memory");
  if (cfg->inlet.netflow) std::printf("  inlet netflow: %s\n", cfg->inlet.netflow->listen.c_str());
  if (cfg->inlet.sflow) std::printf("  inlet sflow: %s\n", cfg->inlet.sflow->listen.c_str());
  if (cfg->outlet) {
    std::printf("  outlet store: %s\n",
                cfg->outlet->chdb ? ("chdb " + cfg->outlet->chdb->path).c_str()
                                  : ("clickhouse " + cfg->outlet->clickhouse->url).c_str());
  }
  return 0;
}

// Embedded stores live inside the running instance, so queries go through its admin API; a
// ClickHouse server can also be asked directly when no instance runs.
int query(const std::string& path, const std::string& sql, const std::string& format) {
  auto cfg = load(path);
  if (!cfg) return 1;
  const auto colon = cfg->admin_listen.rfind(':');
  std::string host = cfg->admin_listen.substr(0, colon);
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host.front() == '[') host = host.substr(1, host.size() - 2);
  const int port = std::stoi(cfg->admin_listen.substr(colon + 1));
  httplib::Client client(host, port);
  client.set_connection_timeout(2);
  client.set_read_timeout(300);
  httplib::Params params{{"sql", sql}, {"format", format}};
  auto res = client.Post("/api/v0/query", params);
  if (res) {
    if (res->status != 200) {
      std::fprintf(stderr, "sluice query: %s\n", res->body.c_str());
      return 1;
    }
    std::fwrite(res->body.data(), 1, res->body.size(), stdout);
    return 0;
  }
  if (cfg->outlet && cfg->outlet->clickhouse) {
    try {
      sinks::ClickHouseHttpConfig c;
      c.url = cfg->outlet->clickhouse->url;
      c.database = cfg->outlet->clickhouse->database;
      c.user = cfg->outlet->clickhouse->user;
      c.password = cfg->outlet->clickhouse->password;
      MetricsRegistry metrics;
      sinks::ClickHouseHttpStore store(c, metrics);
      auto r = store.query(sql, format);
      std::fwrite(r.data.data(), 1, r.data.size(), stdout);
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "sluice query: %s\n", e.what());
      return 1;
    }
  }
  std::fprintf(stderr,
               "sluice query: no sluice instance answers on %s (the embedded store is reached through the running "
               "instance: start it with `sluice run -c %s`)\n",
               cfg->admin_listen.c_str(), path.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sluice: one engine for telemetry pipelines (flows, metrics, logs, spans)"};
  app.require_subcommand(1);
  std::string config_path = "config/quickstart.yaml";

  auto* run = app.add_subcommand("run", "inlet and outlet in one process (memory bus, or Kafka if configured)");
  run->add_option("-c,--config", config_path, "configuration file")->required();
  auto* inlet = app.add_subcommand("inlet", "sources to Kafka only");
  inlet->add_option("-c,--config", config_path, "configuration file")->required();
  auto* outlet = app.add_subcommand("outlet", "Kafka to stores only; run several in one consumer group to scale out");
  outlet->add_option("-c,--config", config_path, "configuration file")->required();
  auto* chk = app.add_subcommand("check", "validate a configuration file; exit 1 with every error and its key path");
  chk->add_option("-c,--config", config_path, "configuration file")->required();
  bool ddl = false;
  std::string dialect = "modern";
  chk->add_flag("--ddl", ddl, "print the SQL that creates the flow tables instead");
  chk->add_option("--dialect", dialect, "for --ddl: modern (ClickHouse >= 22.2, chDB) or legacy (18.16)")
      ->check(CLI::IsMember({"modern", "legacy"}));
  auto* q = app.add_subcommand("query", "run SQL on the store a configuration names");
  std::string sql;
  std::string format = "TabSeparated";
  q->add_option("-c,--config", config_path, "configuration file");
  q->add_option("-f,--format", format, "JSONEachRow or TabSeparated");
  q->add_option("sql", sql, "the SQL statement")->required();
  app.add_subcommand("version", "version, build type and linked library versions");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (*run) return serve(config_path, Role::all_in_one);
  if (*inlet) return serve(config_path, Role::inlet);
  if (*outlet) return serve(config_path, Role::outlet);
  if (*chk) return check(config_path, ddl, dialect);
  if (*q) return query(config_path, sql, format);
  std::fputs(version_text().c_str(), stdout);
  return 0;
}

}  // namespace sluice::app
