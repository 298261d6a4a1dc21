#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "config/reader.hpp"
#include "sinks/elasticsearch_config.hpp"

namespace sluice::sinks {
namespace {

using namespace std::chrono_literals;

ElasticsearchConfig parse(const std::string& yaml, std::vector<std::string>* errors = nullptr) {
  auto root = config::ConfigReader::root(YAML::Load(yaml));
  auto outlet = root.child("outlet");
  auto section = outlet.child("elasticsearch");
  auto c = read_elasticsearch_config(section);
  outlet.finish();
  root.finish();
  try {
    root.check();
  } catch (const config::ConfigError& e) {
    if (errors) *errors = e.errors();
    else ADD_FAILURE() << e.what();
  }
  return c;
}

TEST(ElasticsearchConfig, ReadsEveryKey) {
  const auto c = parse(R"(
outlet:
  elasticsearch:
    urls: [http://10.0.0.1:9200, "https://es.example:9243/"]
    index: app-%Y.%m
    routes:
      audit: audit-%Y
    username: sluice
    password: secret
    ca_file: /etc/sluice/es-ca.pem
    tls_verify: false
    connect_timeout: 2s
    request_timeout: 45s
    parallel_requests: 4
    max_pending_batches: 8
    max_body_bytes: 5MiB
    retry_initial: 100ms
    retry_max: 1m
    gzip: true
    dead_letter_dir: /var/lib/sluice/dead
    dead_letter_max_bytes: 64MiB
)");
  EXPECT_EQ(c.urls, (std::vector<std::string>{"http://10.0.0.1:9200", "https://es.example:9243/"}));
  EXPECT_EQ(c.index, "app-%Y.%m");
  EXPECT_EQ(c.routes, (std::map<std::string, std::string>{{"audit", "audit-%Y"}}));
  EXPECT_EQ(c.username, "sluice");
  EXPECT_EQ(c.password, "secret");
  EXPECT_EQ(c.ca_file, "/etc/sluice/es-ca.pem");
  EXPECT_FALSE(c.tls_verify);
  EXPECT_EQ(c.connect_timeout, 2s);
  EXPECT_EQ(c.request_timeout, 45s);
  EXPECT_EQ(c.parallel_requests, 4);
  EXPECT_EQ(c.max_pending_batches, 8);
  EXPECT_EQ(c.max_body_bytes, 5ull << 20);
  EXPECT_EQ(c.retry_initial, 100ms);
  EXPECT_EQ(c.retry_max, 60s);
  EXPECT_TRUE(c.gzip);
  EXPECT_EQ(c.dead_letter_dir, "/var/lib/sluice/dead");
  EXPECT_EQ(c.dead_letter_max_bytes, 64ull << 20);
}

TEST(ElasticsearchConfig, DefaultsAndCommaSeparatedUrlsFromTheEnvironment) {
  setenv("SLUICE_TEST_ES_URLS", "http://a:9200, http://b:9200", 1);
  const auto c = parse("outlet:\n  elasticsearch:\n    urls: ${SLUICE_TEST_ES_URLS}\n    api_key: abc==\n");
  unsetenv("SLUICE_TEST_ES_URLS");
  EXPECT_EQ(c.urls, (std::vector<std::string>{"http://a:9200", "http://b:9200"}));
  EXPECT_EQ(c.index, "sluice-logs-%Y.%m.%d");
  EXPECT_EQ(c.api_key, "abc==");
  EXPECT_EQ(c.parallel_requests, 2);
  EXPECT_EQ(c.max_body_bytes, 10ull << 20);
  EXPECT_FALSE(c.gzip);
  EXPECT_TRUE(c.tls_verify);
}

TEST(ElasticsearchConfig, ErrorsNameTheirKeyPaths) {
  std::vector<std::string> errors;
  parse(R"(
outlet:
  elasticsearch:
    urls: [http://ok:9200, "ftp://x:21", "http://h:99999", "http://h:9200/es"]
    index: Logs-%Y
    routes:
      audit: audit-%q
    username: u
    api_key: k
    parallel_requests: 0
    max_body_bytes: 10
    retry_initial: 5s
    retry_max: 1s
    colour: blue
)",
        &errors);
  const std::vector<std::string> expected = {
      "outlet.elasticsearch.urls[1]: 'ftp://x:21': scheme must be http or https",
      "outlet.elasticsearch.urls[2]: 'http://h:99999': bad port",
      "outlet.elasticsearch.urls[3]: 'http://h:9200/es': paths are not supported (expected http://host:9200)",
      "outlet.elasticsearch.index: 'Logs-%Y': makes index names like 'Logs-1970': index name must be lowercase",
      "outlet.elasticsearch.routes.audit: 'audit-%q': unknown field %q (known: %Y %y %m %d %H %j %%)",
      "outlet.elasticsearch.api_key: set either username/password or api_key, not both",
  };
  for (const auto& e : expected) {
    EXPECT_NE(std::find(errors.begin(), errors.end(), e), errors.end()) << "missing: " << e;
  }
  const auto has_prefix = [&](const std::string& prefix) {
    return std::any_of(errors.begin(), errors.end(), [&](const std::string& e) { return e.rfind(prefix, 0) == 0; });
  };
  EXPECT_TRUE(has_prefix("outlet.elasticsearch.parallel_requests: "));
  EXPECT_TRUE(has_prefix("outlet.elasticsearch.max_body_bytes: must be at least 1KiB"));
  EXPECT_TRUE(has_prefix("outlet.elasticsearch.retry_max: must not be shorter than retry_initial"));
  EXPECT_TRUE(has_prefix("outlet.elasticsearch.colour: unknown key"));
  EXPECT_EQ(errors.size(), expected.size() + 4) << ::testing::PrintToString(errors);
}

TEST(ElasticsearchConfig, UrlsAreRequired) {
  std::vector<std::string> errors;
  parse("outlet:\n  elasticsearch:\n    index: logs\n", &errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "outlet.elasticsearch.urls: at least one Elasticsearch URL is required (http://host:9200)");
}

TEST(ElasticsearchConfig, IndexNameRules) {
  EXPECT_EQ(check_index_name("sluice-logs-2026.11.21"), "");
  EXPECT_EQ(check_index_name("-x"), "index name cannot start with '-', '_' or '+'");
  EXPECT_EQ(check_index_name(".."), "index name cannot be '.' or '..'");
  EXPECT_EQ(check_index_name("a#b"), "index name cannot contain '#'");
  EXPECT_EQ(check_index_name(std::string(256, 'a')), "index name is longer than 255 bytes");
}

}  // namespace
}  // namespace sluice::sinks
