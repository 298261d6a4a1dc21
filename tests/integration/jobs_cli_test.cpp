// `sluice jobs list|show|validate`: the built binary against an AdminServer running in the test.
#include <gtest/gtest.h>

#include <optional>

#include "admin/admin_server.hpp"
#include "fixtures/process.hpp"

namespace sluice::admin {
namespace {

using namespace std::chrono_literals;

const nlohmann::json kJobs = nlohmann::json::parse(R"([
  {"name": "orders", "state": "running", "processors": [
    {"id": 0, "state": "running", "total": 42, "failed": 0, "restarts": 1, "lag": 7, "last_error": null}]}
])");

class JobsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    AdminConfig config;
    config.listen = "127.0.0.1:0";
    AdminDeps deps{metrics, nullptr, nullptr, nullptr, nullptr};
    deps.jobs = [] { return kJobs; };
    deps.job = [](std::string_view name) -> std::optional<nlohmann::json> {
      if (name == "orders") return kJobs[0];
      return std::nullopt;
    };
    deps.validate_job = [](std::string_view body) {
      if (body.find("topics:") != std::string_view::npos) return nlohmann::json{{"ok", true}};
      return nlohmann::json{{"ok", false},
                            {"errors", {{{"path", "topics"}, {"message", "required"}}, "sink: unknown store \"x\""}}};
    };
    server = std::make_unique<AdminServer>(config, std::move(deps));
    server->start();
    address = "127.0.0.1:" + std::to_string(server->port());
  }

  testing::RunResult sluice(std::vector<std::string> args, const std::map<std::string, std::string>& env = {}) {
    args.insert(args.begin(), SLUICE_BINARY);
    return testing::run_command(args, 30s, env);
  }

  MetricsRegistry metrics;
  std::unique_ptr<AdminServer> server;
  std::string address;
  testing::TempDir dir{"sluice-jobs-cli"};
};

TEST_F(JobsCli, ListPrintsTheTable) {
  const auto r = sluice({"jobs", "list", "--admin", address});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "NAME    STATE    PROCESSORS  RECORDS  FAILED  RESTARTS  LAG  LAST ERROR\n"
            "orders  running  1           42       0       1         7    -\n");
}

TEST_F(JobsCli, TheAddressComesFromTheEnvironmentOrAConfiguration) {
  const auto from_env = sluice({"jobs", "list"}, {{"SLUICE_ADMIN_LISTEN", address}});
  EXPECT_EQ(from_env.exit_code, 0) << from_env.err;
  EXPECT_NE(from_env.out.find("orders  running"), std::string::npos) << from_env.out;

  const auto config = dir / "sluice.yaml";
  testing::write_file(config, "admin:\n  listen: 0.0.0.0:" + std::to_string(server->port()) + "\n");
  const auto from_config = sluice({"jobs", "list", "-c", config});
  EXPECT_EQ(from_config.exit_code, 0) << from_config.err;
  EXPECT_NE(from_config.out.find("orders  running"), std::string::npos) << from_config.out;
}

TEST_F(JobsCli, ShowPrintsPrettyJsonOrSaysTheJobIsUnknown) {
  const auto r = sluice({"jobs", "show", "orders", "--admin", address});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, kJobs[0].dump(2) + "\n");
  const auto unknown = sluice({"jobs", "show", "nope", "--admin", address});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(unknown.out, "");
  EXPECT_NE(unknown.err.find("no job named \"nope\""), std::string::npos) << unknown.err;
}

TEST_F(JobsCli, ValidateSaysOkOrListsEachError) {
  testing::write_file(dir / "good.yaml", "topics: [orders]\n");
  testing::write_file(dir / "bad.json", R"({"name": "orders"})");
  const auto good = sluice({"jobs", "validate", dir / "good.yaml", "--admin", address});
  EXPECT_EQ(good.exit_code, 0) << good.err;
  EXPECT_EQ(good.out, "ok\n");
  const auto bad = sluice({"jobs", "validate", dir / "bad.json", "--admin", address});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(bad.err, "topics: required\nsink: unknown store \"x\"\n");
  const auto missing = sluice({"jobs", "validate", dir / "missing.yaml", "--admin", address});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("cannot read"), std::string::npos) << missing.err;
}

TEST_F(JobsCli, AnUnreachableInstanceExitsWith2) {
  const auto nobody = "127.0.0.1:" + std::to_string(testing::free_port());
  for (const auto& action : std::vector<std::vector<std::string>>{
           {"jobs", "list", "--admin", nobody}, {"jobs", "show", "orders", "--admin", nobody}}) {
    const auto r = sluice(action);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("no sluice instance answers on " + nobody), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace sluice::admin
