// The jobs and cluster endpoints of AdminServer over real HTTP, and the `sluice jobs` text formatting.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <string>

#include "admin/admin_server.hpp"
#include "app/commands.hpp"

namespace sluice::admin {
namespace {

using namespace std::chrono_literals;

nlohmann::json sample_jobs() {
  return nlohmann::json::parse(R"([
    {"name": "orders", "state": "running", "processors": [
      {"id": 0, "state": "running", "total": 1200, "failed": 3, "restarts": 0, "lag": 10,
       "last_error": "row 17: column price: not a number", "last_error_time": "2026-11-21T10:00:00Z"},
      {"id": 1, "state": "running", "total": 800, "failed": 1, "restarts": 2, "lag": 5,
       "last_error": "broker down", "last_error_time": "2026-11-21T11:00:00Z"}]},
    {"name": "clicks", "state": "stopped", "processors": []}
  ])");
}

class AdminJobsTest : public ::testing::Test {
 protected:
  void start(bool with_callbacks) {
    AdminConfig config;
    config.listen = "127.0.0.1:0";
    AdminDeps deps{metrics, nullptr, nullptr, nullptr, nullptr};
    if (with_callbacks) {
      deps.jobs = [] { return sample_jobs(); };
      deps.job = [](std::string_view name) -> std::optional<nlohmann::json> {
        for (const auto& j : sample_jobs()) {
          if (j["name"] == name) return j;
        }
        return std::nullopt;
      };
      deps.validate_job = [this](std::string_view body) {
        {
          std::lock_guard lock(mutex);
          validated.emplace_back(body);
        }
        if (body.find("topics") != std::string_view::npos) return nlohmann::json{{"ok", true}};
        return nlohmann::json{{"ok", false}, {"errors", {"topics: required", "sink: required"}}};
      };
      deps.cluster = [] { return nlohmann::json{{"instances", {{{"id", "a:8080"}}, {{"id", "b:8080"}}}}}; };
    }
    server = std::make_unique<AdminServer>(config, std::move(deps));
    server->start();
    ASSERT_GT(server->port(), 0);
  }

  httplib::Client client() {
    httplib::Client c("127.0.0.1", server->port());
    c.set_read_timeout(10s);
    return c;
  }

  MetricsRegistry metrics;
  std::mutex mutex;
  std::vector<std::string> validated;
  std::unique_ptr<AdminServer> server;
};

TEST_F(AdminJobsTest, ListAndShowJobs) {
  start(true);
  auto c = client();
  auto list = c.Get("/api/v0/jobs");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->status, 200);
  EXPECT_EQ(list->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(nlohmann::json::parse(list->body), sample_jobs());

  auto one = c.Get("/api/v0/jobs/clicks");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  EXPECT_EQ(nlohmann::json::parse(one->body), sample_jobs()[1]);

  auto unknown = c.Get("/api/v0/jobs/nope");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_EQ(nlohmann::json::parse(unknown->body)["error"], "no job named \"nope\" (GET /api/v0/jobs lists them)");
}

TEST_F(AdminJobsTest, ValidateAnswers200WhenOkAnd422Otherwise) {
  start(true);
  auto c = client();
  auto good = c.Post("/api/v0/jobs/validate", "topics: [orders]\n", "application/yaml");
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 200);
  EXPECT_EQ(nlohmann::json::parse(good->body), (nlohmann::json{{"ok", true}}));

  auto bad = c.Post("/api/v0/jobs/validate", R"({"name": "x"})", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 422);
  EXPECT_EQ(nlohmann::json::parse(bad->body)["errors"], (nlohmann::json{"topics: required", "sink: required"}));

  auto empty = c.Post("/api/v0/jobs/validate", "  \n", "application/yaml");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 400);

  std::lock_guard lock(mutex);
  EXPECT_EQ(validated, (std::vector<std::string>{"topics: [orders]\n", R"({"name": "x"})"}));
}

TEST_F(AdminJobsTest, ClusterShowsTheCallbackAnswer) {
  start(true);
  auto res = client().Get("/api/v0/cluster");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(nlohmann::json::parse(res->body)["instances"].size(), 2u);
}

TEST_F(AdminJobsTest, MissingCallbacksAnswer503AndOtherEndpointsStillWork) {
  start(false);
  auto c = client();
  for (const char* path : {"/api/v0/jobs", "/api/v0/jobs/orders", "/api/v0/cluster"}) {
    auto res = c.Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 503) << path;
    EXPECT_TRUE(nlohmann::json::parse(res->body).contains("error")) << path;
  }
  auto validate = c.Post("/api/v0/jobs/validate", "topics: [a]", "application/yaml");
  ASSERT_TRUE(validate);
  EXPECT_EQ(validate->status, 503);
  auto health = c.Get("/api/v0/healthcheck");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto version = c.Get("/api/v0/version");
  ASSERT_TRUE(version);
  EXPECT_EQ(version->status, 200);
}

TEST(JobsCliFormat, TableSumsProcessorsAndShowsTheLatestError) {
  EXPECT_EQ(app::format_jobs_table(sample_jobs()),
            "NAME    STATE    PROCESSORS  RECORDS  FAILED  RESTARTS  LAG  LAST ERROR\n"
            "orders  running  2           2000     4       2         15   broker down\n"
            "clicks  stopped  0           -        -       -         -    -\n");
}

TEST(JobsCliFormat, TablePrintsWhatIsPresent) {
  const auto jobs = nlohmann::json::parse(R"([
    {"name": "logs", "processors": [{"id": 0, "total": 5}, {"id": 1, "lag": -1, "last_error": "first\nsecond"}]},
    {"state": "failed", "last_error": "cannot reach the store"}
  ])");
  EXPECT_EQ(app::format_jobs_table(jobs),
            "NAME  STATE   PROCESSORS  RECORDS  FAILED  RESTARTS  LAG  LAST ERROR\n"
            "logs  -       2           5        -       -         -    first second\n"
            "-     failed  -           -        -       -         -    cannot reach the store\n");
  EXPECT_EQ(app::format_jobs_table(nlohmann::json::array()),
            "NAME  STATE  PROCESSORS  RECORDS  FAILED  RESTARTS  LAG  LAST ERROR\n(no jobs)\n");
}

TEST(JobsCliFormat, Validation) {
  EXPECT_EQ(app::format_validation({{"ok", true}}), "ok\n");
  EXPECT_EQ(app::format_validation(nlohmann::json::parse(
                R"({"ok": false, "errors": ["topics: required", {"path": "mapping.columns[2]", "message": "unknown column"}]})")),
            "topics: required\nmapping.columns[2]: unknown column\n");
  EXPECT_EQ(app::format_validation({{"ok", false}, {"error", "not YAML"}}), "not YAML\n");
  EXPECT_EQ(app::format_validation({{"ok", false}}), "invalid (the instance gave no details: {\"ok\":false})\n");
}

TEST(JobsCliFormat, AdminAddressPrecedence) {
  ::setenv("SLUICE_ADMIN_LISTEN", "10.0.0.5:9000", 1);
  EXPECT_EQ(app::jobs_admin_address("127.0.0.1:7000", "0.0.0.0:8081"), "127.0.0.1:7000");
  EXPECT_EQ(app::jobs_admin_address(std::nullopt, "0.0.0.0:8081"), "127.0.0.1:8081");
  EXPECT_EQ(app::jobs_admin_address(std::nullopt, std::nullopt), "10.0.0.5:9000");
  ::unsetenv("SLUICE_ADMIN_LISTEN");
  EXPECT_EQ(app::jobs_admin_address(std::nullopt, std::nullopt), "127.0.0.1:8080");
}

}  // namespace
}  // namespace sluice::admin
