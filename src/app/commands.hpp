// The command line: run, inlet, outlet, check, query, jobs, version.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace sluice::app {

int main(int argc, char** argv);

// `sluice jobs list`: a table NAME STATE PROCESSORS RECORDS FAILED RESTARTS LAG LAST ERROR, one row per
// element of GET /api/v0/jobs. Records, failed, restarts and lag are summed over the job's processors
// ({id, state, total, failed, restarts, lag, last_error, last_error_time}); the last error is the
// latest one by last_error_time. What no processor reports prints as "-".
std::string format_jobs_table(const nlohmann::json& jobs);

// `sluice jobs validate`: "ok\n" when the answer says "ok": true, otherwise one error per line
// (strings as they are; objects as "<path>: <message>").
std::string format_validation(const nlohmann::json& answer);

// The admin address `sluice jobs` talks to: --admin when given, else the admin.listen of the -c
// configuration, else $SLUICE_ADMIN_LISTEN, else 127.0.0.1:8080. A wildcard host becomes 127.0.0.1.
// `config_listen` is the configuration's admin.listen (nullopt: no -c).
std::string jobs_admin_address(const std::optional<std::string>& flag, const std::optional<std::string>& config_listen);

}  // namespace sluice::app
