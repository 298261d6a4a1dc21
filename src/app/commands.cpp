#include "app/commands.hpp"

#include <CLI/CLI.hpp>
#include <httplib.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "app/flow_schema_config.hpp"
#include "app/runtime.hpp"
#include "app/version.hpp"
#include "core/memory_policy.hpp"
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
  spdlog::debug("{}", keep_freed_memory_for_reuse());
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


// Exit codes of `sluice jobs`: 0 done, 1 refused or invalid, 2 no instance answered.
constexpr int kJobsOk = 0, kJobsFailed = 1, kJobsUnreachable = 2;

std::string cell_text(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Sums a numeric key over the processors; "-" when none has it. Negative lags mean "unknown" to
// some sources and are left out.
std::string processor_sum(const nlohmann::json& job, const char* key, const char* job_key) {
  const auto processors = job.find("processors");
  bool any = false, fractional = false;
  std::int64_t whole = 0;
  double real = 0;
  if (processors != job.end() && processors->is_array()) {
    for (const auto& p : *processors) {
      const auto v = p.is_object() ? p.find(key) : p.end();
      if (v == p.end() || !v->is_number()) continue;
      if (v->is_number_float()) {
        if (v->get<double>() < 0) continue;
        fractional = true;
        real += v->get<double>();
      } else {
        if (v->is_number_integer() && v->get<std::int64_t>() < 0) continue;
        whole += v->get<std::int64_t>();
        real += v->get<double>();
      }
      any = true;
    }
  }
  if (!any) {
    // A job may report totals of its own.
    const auto v = job.find(job_key);
    if (v != job.end() && v->is_number()) return cell_text(*v);
    return "-";
  }
  return fractional ? fmt::format("{:.1f}", real) : std::to_string(whole);
}

std::string last_error_of(const nlohmann::json& job) {
  std::string best, best_time;
  if (const auto processors = job.find("processors"); processors != job.end() && processors->is_array()) {
    for (const auto& p : *processors) {
      if (!p.is_object()) continue;
      const auto e = p.find("last_error");
      if (e == p.end() || e->is_null() || (e->is_string() && e->get<std::string>().empty())) continue;
      const auto t = p.find("last_error_time");
      // RFC 3339 times in one zone sort as text; an error without a time loses to one with.
      const std::string time = t != p.end() && t->is_string() ? t->get<std::string>() : "";
      if (best.empty() || time > best_time) {
        best = cell_text(*e);
        best_time = time;
      }
    }
  }
  if (best.empty()) {
    if (const auto e = job.find("last_error"); e != job.end() && !e->is_null()) best = cell_text(*e);
  }
  std::replace(best.begin(), best.end(), '\n', ' ');
  constexpr std::size_t kMax = 120;
  if (best.size() > kMax) best = best.substr(0, kMax - 3) + "...";
  return best.empty() ? "-" : best;
}

std::optional<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct AdminTarget {
  std::string host;
  int port = 0;
};

std::optional<AdminTarget> parse_admin(std::string address) {
  for (const char* scheme : {"http://"}) {
    if (address.rfind(scheme, 0) == 0) address = address.substr(std::string_view(scheme).size());
  }
  while (!address.empty() && address.back() == '/') address.pop_back();
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  AdminTarget t;
  t.host = address.substr(0, colon);
  if (t.host.size() >= 2 && t.host.front() == '[' && t.host.back() == ']') t.host = t.host.substr(1, t.host.size() - 2);
  try {
    std::size_t used = 0;
    t.port = std::stoi(address.substr(colon + 1), &used);
    if (used != address.size() - colon - 1 || t.port <= 0 || t.port > 65535) return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return t;
}

// What an admin error answer says ({"error": ...}), or the body itself.
std::string error_text(const std::string& body) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string()) return j["error"].get<std::string>();
  return body;
}

int jobs_command(const std::string& action, const std::string& address, const std::string& argument) {
  const auto target = parse_admin(address);
  if (!target) {
    std::fprintf(stderr, "sluice jobs: \"%s\" is not an admin address (expected host:port, e.g. 127.0.0.1:8080)\n",
                 address.c_str());
    return kJobsFailed;
  }
  httplib::Client client(target->host, target->port);
  client.set_connection_timeout(2);
  // A status call answers at once; an instance silent this long is as good as absent for an operator.
  client.set_read_timeout(10);
  std::optional<std::string> body;
  if (action == "validate") {
    body = read_text_file(argument);
    if (!body) {
      std::fprintf(stderr, "sluice jobs validate: cannot read %s\n", argument.c_str());
      return kJobsFailed;
    }
  }
  const auto res = [&] {
    if (action == "list") return client.Get("/api/v0/jobs");
    if (action == "show") return client.Get(("/api/v0/jobs/" + httplib::detail::encode_query_param(argument)).c_str());
    const bool json = argument.size() >= 5 && argument.substr(argument.size() - 5) == ".json";
    return client.Post("/api/v0/jobs/validate", *body, json ? "application/json" : "application/yaml");
  }();
  if (!res) {
    std::fprintf(stderr,
                 "sluice jobs: no sluice instance answers on %s (%s); start one, or point --admin (or "
                 "SLUICE_ADMIN_LISTEN) at its admin address\n",
                 address.c_str(),
                 res.error() == httplib::Error::Connection ? "connection refused or timed out"
                                                           : httplib::to_string(res.error()).c_str());
    return kJobsUnreachable;
  }
  if (action == "validate" && (res->status == 200 || res->status == 422)) {
    const auto answer = nlohmann::json::parse(res->body, nullptr, false);
    const auto text = format_validation(answer.is_discarded() ? nlohmann::json{{"ok", false}, {"errors", {res->body}}}
                                                              : answer);
    std::fputs(text.c_str(), res->status == 200 ? stdout : stderr);
    return res->status == 200 ? kJobsOk : kJobsFailed;
  }
  if (res->status != 200) {
    std::fprintf(stderr, "sluice jobs %s: %s (HTTP %d from %s)\n", action.c_str(), error_text(res->body).c_str(),
                 res->status, address.c_str());
    return kJobsFailed;
  }
  const auto answer = nlohmann::json::parse(res->body, nullptr, false);
  if (answer.is_discarded()) {
    std::fprintf(stderr, "sluice jobs %s: %s answered something that is not JSON: %.200s\n", action.c_str(),
                 address.c_str(), res->body.c_str());
    return kJobsFailed;
  }
  const auto text =
      action == "list" ? format_jobs_table(answer)
                       : answer.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::fputs(text.c_str(), stdout);
  return kJobsOk;
}

}  // namespace

std::string format_jobs_table(const nlohmann::json& jobs) {
  static const std::vector<std::string> kHeader = {"NAME",     "STATE", "PROCESSORS", "RECORDS",
                                                   "FAILED",   "RESTARTS", "LAG",    "LAST ERROR"};
  std::vector<std::vector<std::string>> rows{kHeader};
  if (jobs.is_array()) {
    for (const auto& job : jobs) {
      if (!job.is_object()) continue;
      const auto processors = job.find("processors");
      rows.push_back({cell_text(job.value("name", nlohmann::json())), cell_text(job.value("state", nlohmann::json())),
                      processors != job.end() && processors->is_array() ? std::to_string(processors->size()) : "-",
                      processor_sum(job, "total", "total"), processor_sum(job, "failed", "failed"),
                      processor_sum(job, "restarts", "restarts"), processor_sum(job, "lag", "lag"),
                      last_error_of(job)});
    }
  }
  std::vector<std::size_t> width(kHeader.size(), 0);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  if (rows.size() == 1) out += "(no jobs)\n";
  return out;
}

std::string format_validation(const nlohmann::json& answer) {
  if (answer.is_object() && answer.value("ok", nlohmann::json(false)) == nlohmann::json(true)) return "ok\n";
  std::string out;
  const auto line = [&](const nlohmann::json& e) {
    if (e.is_object()) {
      const auto path = e.contains("path") ? e["path"] : e.contains("key") ? e["key"] : nlohmann::json();
      const auto message = e.contains("message") ? e["message"] : e.contains("error") ? e["error"] : nlohmann::json();
      if (!message.is_null()) {
        out += (path.is_null() ? "" : cell_text(path) + ": ") + cell_text(message) + "\n";
        return;
      }
    }
    out += cell_text(e) + "\n";
  };
  if (answer.is_object()) {
    if (const auto errors = answer.find("errors"); errors != answer.end()) {
      if (errors->is_array()) {
        for (const auto& e : *errors) line(e);
      } else {
        line(*errors);
      }
    }
    if (out.empty() && answer.contains("error")) line(answer["error"]);
  }
  if (out.empty()) out = "invalid (the instance gave no details: " + cell_text(answer) + ")\n";
  return out;
}

std::string jobs_admin_address(const std::optional<std::string>& flag, const std::optional<std::string>& config_listen) {
  std::string address = "127.0.0.1:8080";
  if (flag) {
    address = *flag;
  } else if (config_listen) {
    address = *config_listen;
  } else if (const char* env = std::getenv("SLUICE_ADMIN_LISTEN"); env != nullptr && *env != '\0') {
    address = env;
  }
  // A server listening on every interface is reached on loopback.
  for (const char* wildcard : {"0.0.0.0:", "[::]:", ":"}) {
    if (address.rfind(wildcard, 0) == 0) return "127.0.0.1:" + address.substr(std::string_view(wildcard).size());
  }
  return address;
}

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

  auto* jobs = app.add_subcommand("jobs", "ingestion jobs of a running instance, through its admin API");
  jobs->require_subcommand(1);
  std::string jobs_admin, jobs_config, job_name, job_file;
  const auto add_jobs_options = [&](CLI::App* sub) {
    sub->add_option("--admin", jobs_admin, "admin address host:port (default: $SLUICE_ADMIN_LISTEN or 127.0.0.1:8080)");
    sub->add_option("-c,--config", jobs_config, "take the admin address from this configuration's admin.listen");
  };
  auto* jobs_list = jobs->add_subcommand("list", "a table of the jobs with their state, records, errors and lag");
  add_jobs_options(jobs_list);
  auto* jobs_show = jobs->add_subcommand("show", "one job's full status as JSON");
  add_jobs_options(jobs_show);
  jobs_show->add_option("name", job_name, "job name")->required();
  auto* jobs_validate = jobs->add_subcommand("validate", "check a job definition (YAML or JSON) against a running instance");
  add_jobs_options(jobs_validate);
  jobs_validate->add_option("file", job_file, "job definition file")->required();

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
  if (*jobs) {
    CLI::App* sub = *jobs_list ? jobs_list : *jobs_show ? jobs_show : jobs_validate;
    std::optional<std::string> config_listen;
    if (sub->count("--config") > 0) {
      auto cfg = load(jobs_config);
      if (!cfg) return 1;
      config_listen = cfg->admin_listen;
    }
    const auto address =
        jobs_admin_address(sub->count("--admin") > 0 ? std::optional(jobs_admin) : std::nullopt, config_listen);
    return jobs_command(sub->get_name(), address, sub == jobs_show ? job_name : job_file);
  }
  std::fputs(version_text().c_str(), stdout);
  return 0;
}

}  // namespace sluice::app
