#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "core/metrics.hpp"
#include "sinks/elasticsearch_body.hpp"

namespace sluice::sinks {
namespace {

using transforms::FieldType;
using transforms::LogEvent;

constexpr std::int64_t kNov21 = 1795274606123;  // 2026-11-21T15:23:26.123Z

LogEvent event(std::string message, std::uint64_t offset = 0) {
  LogEvent e;
  e.host = "web-1";
  e.path = "/var/log/app.log";
  e.file_id = 42;
  e.offset = offset;
  e.timestamp_ms = kNov21;
  e.message = std::move(message);
  return e;
}

ElasticsearchConfig config(std::string index = "logs-%Y.%m.%d") {
  ElasticsearchConfig c;
  c.urls = {"http://127.0.0.1:9200"};
  c.index = std::move(index);
  return c;
}

TEST(ElasticsearchBody, ExactNdjsonForAPlainLine) {
  BulkBodyWriter w(config());
  std::string body;
  w.append(event("hello \"world\""), body);
  EXPECT_EQ(body,
            "{\"create\":{\"_index\":\"logs-2026.11.21\",\"_id\":\"bac66a0aa84fb35a72bd4d50600f63ac\"}}\n"
            "{\"@timestamp\":\"2026-11-21T15:23:26.123Z\",\"message\":\"hello \\\"world\\\"\",\"host\":{\"name\":"
            "\"web-1\"},\"log\":{\"file\":{\"path\":\"/var/log/app.log\"},\"offset\":0}}\n");
}

TEST(ElasticsearchBody, FieldsKeepTheirTypes) {
  BulkBodyWriter w(config());
  LogEvent e = event("GET /", 1234);
  e.set("status", "200", FieldType::number);
  e.set("latency", "-0.5e3", FieldType::number);
  e.set("cached", "true", FieldType::boolean);
  e.set("user", "", FieldType::null);
  e.set("tags", "{\"a\":[1,\n2]}", FieldType::json);
  e.set("method", "GET");
  std::string body;
  w.append(e, body);
  const auto nl = body.find('\n');
  ASSERT_NE(nl, std::string::npos);
  EXPECT_EQ(body.substr(nl + 1),
            "{\"@timestamp\":\"2026-11-21T15:23:26.123Z\",\"message\":\"GET /\",\"host\":{\"name\":\"web-1\"},"
            "\"log\":{\"file\":{\"path\":\"/var/log/app.log\"},\"offset\":1234},\"status\":200,\"latency\":-0.5e3,"
            "\"cached\":true,\"user\":null,\"tags\":{\"a\":[1, 2]},\"method\":\"GET\"}\n");
}

TEST(ElasticsearchBody, ValuesThatAreNotWhatTheirTypeSaysBecomeStrings) {
  BulkBodyWriter w(config());
  LogEvent e = event("x");
  e.set("n1", "12abc", FieldType::number);
  e.set("n2", "01", FieldType::number);
  e.set("n3", "NaN", FieldType::number);
  e.set("b", "yes", FieldType::boolean);
  e.set("j", "{\"a\":", FieldType::json);
  std::string body;
  w.append(e, body);
  const auto doc = nlohmann::json::parse(body.substr(body.find('\n') + 1));
  EXPECT_EQ(doc["n1"], "12abc");
  EXPECT_EQ(doc["n2"], "01");
  EXPECT_EQ(doc["n3"], "NaN");
  EXPECT_EQ(doc["b"], "yes");
  EXPECT_EQ(doc["j"], "{\"a\":");
}

TEST(ElasticsearchBody, FieldsCollidingWithDocumentKeysGoUnderFields) {
  BulkBodyWriter w(config());
  LogEvent e = event("x");
  e.set("message", "other");
  e.set("host.ip", "192.0.2.1");
  e.set("log.level", "info");
  e.set("@timestamp", "yesterday");
  e.set("hostname", "kept");  // not a dotted child of host
  std::string body;
  w.append(e, body);
  const std::string doc = body.substr(body.find('\n') + 1);
  EXPECT_NE(doc.find(",\"fields.message\":\"other\",\"fields.host.ip\":\"192.0.2.1\",\"fields.log.level\":\"info\","
                     "\"fields.@timestamp\":\"yesterday\",\"hostname\":\"kept\"}"),
            std::string::npos)
      << doc;
  const auto j = nlohmann::json::parse(doc);
  EXPECT_EQ(j["message"], "x");
}

TEST(ElasticsearchBody, EscapesControlCharactersAndReplacesInvalidUtf8) {
  MetricsRegistry metrics;
  BulkBodyWriter w(config(), metrics);
  // Tab, newline, CR, NUL, 0x1f, backslash; valid 2-, 3- and 4-byte UTF-8; then invalid: a lone
  // continuation byte, a truncated sequence, an overlong '/', a surrogate.
  const std::string message = std::string("a\tb\nc\rd") + '\0' + "\x1f\\ é€😀 \x80 \xE2\x82 \xC0\xAF \xED\xA0\x80";
  LogEvent e = event(message);
  e.path = "/var/log/\xff.log";
  std::string body;
  w.append(e, body);
  const std::string doc = body.substr(body.find('\n') + 1);
  EXPECT_NE(doc.find("\"message\":\"a\\tb\\nc\\rd\\u0000\\u001f\\\\ é€😀 \xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD "
                     "\xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""),
            std::string::npos)
      << doc;
  EXPECT_NE(doc.find("\"path\":\"/var/log/\xEF\xBF\xBD.log\""), std::string::npos) << doc;
  EXPECT_EQ(w.invalid_utf8(), 9u);
  EXPECT_EQ(metrics.counter_total("elasticsearch_invalid_utf8_total"), 9u);
  // Two lines, each valid JSON.
  EXPECT_EQ(std::count(body.begin(), body.end(), '\n'), 2);
  EXPECT_TRUE(nlohmann::json::accept(doc));
  EXPECT_EQ(nlohmann::json::parse(doc)["message"].get<std::string>().substr(0, 8), std::string("a\tb\nc\rd") + '\0');
}

TEST(ElasticsearchBody, DocumentIdsFollowTheLineIdentity) {
  std::string a, b;
  LogEvent e = event("x", 100);
  BulkBodyWriter::document_id(e, a);
  e.message = "changed";  // the content is not the identity: a replay of a rewritten line is the same _id
  e.timestamp_ms += 5000;
  BulkBodyWriter::document_id(e, b);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.size(), 32u);
  std::set<std::string> ids{a};
  const auto add = [&](const LogEvent& v) {
    std::string id;
    BulkBodyWriter::document_id(v, id);
    return ids.insert(id).second;
  };
  LogEvent o = event("x", 101);
  EXPECT_TRUE(add(o));
  LogEvent f = event("x", 100);
  f.file_id = 43;  // same path, another file (after rotation)
  EXPECT_TRUE(add(f));
  LogEvent h1 = event("x", 100);
  h1.host = "web-1/";
  h1.path = "var/log/app.log";  // same concatenation, different split
  EXPECT_TRUE(add(h1));
  LogEvent h2 = event("x", 100);
  h2.host = "web-2";
  EXPECT_TRUE(add(h2));
}

TEST(ElasticsearchBody, TimestampsInUtcWithMilliseconds) {
  const auto ts = [](std::int64_t ms) {
    std::string s;
    BulkBodyWriter::append_timestamp(ms, s);
    return s;
  };
  EXPECT_EQ(ts(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(ts(kNov21), "2026-11-21T15:23:26.123Z");
  EXPECT_EQ(ts(1709251199999), "2024-02-29T23:59:59.999Z");
  EXPECT_EQ(ts(-500), "1969-12-31T23:59:59.500Z");
}

TEST(ElasticsearchIndexPattern, DatesFromTheEventTimeInUtc) {
  const auto render = [](const std::string& pattern, std::int64_t ms) {
    std::string why;
    auto p = IndexPattern::compile(pattern, &why);
    EXPECT_TRUE(p) << why;
    return p ? p->render(ms) : std::string();
  };
  EXPECT_EQ(render("sluice-logs-%Y.%m.%d", kNov21), "sluice-logs-2026.11.21");
  EXPECT_EQ(render("logs-%y%m%d-%H", kNov21), "logs-261121-15");
  EXPECT_EQ(render("logs-%Y-%j", 1709251199999), "logs-2024-060");
  EXPECT_EQ(render("logs-%Y-%j", kNov21), "logs-2026-325");
  EXPECT_EQ(render("logs-%Y.%m.%d", -500), "logs-1969.12.31");
  EXPECT_EQ(render("logs-%Y.%m.%d", 1767218400000), "logs-2025.12.31");  // 22:00 UTC, whatever the local zone
  EXPECT_EQ(render("100%%-static", kNov21), "100%-static");
  // The hour cache must not leak between hours or days.
  std::string why;
  auto p = IndexPattern::compile("l-%d-%H", &why);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->render(kNov21), "l-21-15");
  EXPECT_EQ(p->render(kNov21 + 3'600'000), "l-21-16");
  EXPECT_EQ(p->render(kNov21 + 9 * 3'600'000), "l-22-00");
  EXPECT_EQ(p->render(kNov21), "l-21-15");
}

TEST(ElasticsearchIndexPattern, RejectsUnknownFieldsAndInvalidNames) {
  std::string why;
  EXPECT_FALSE(IndexPattern::compile("logs-%Q", &why));
  EXPECT_EQ(why, "unknown field %Q (known: %Y %y %m %d %H %j %%)");
  EXPECT_FALSE(IndexPattern::compile("logs-%", &why));
  EXPECT_FALSE(IndexPattern::compile("Logs-%Y", &why));
  EXPECT_EQ(why, "makes index names like 'Logs-1970': index name must be lowercase");
  EXPECT_FALSE(IndexPattern::compile("_logs", &why));
  EXPECT_FALSE(IndexPattern::compile("logs*", &why));
  EXPECT_FALSE(IndexPattern::compile("a b", &why));
  EXPECT_FALSE(IndexPattern::compile("", &why));
  EXPECT_TRUE(IndexPattern::compile(".ds-logs-%Y", &why));
}

TEST(ElasticsearchBody, RoutesPickTheirIndex) {
  auto c = config();
  c.routes = {{"audit", "audit-%Y"}, {"web", "web-%Y.%m"}};
  BulkBodyWriter w(c);
  std::string body;
  LogEvent e = event("x");
  e.route = "audit";
  w.append(e, body);
  e.route = "web";
  w.append(e, body);
  e.route = "unknown";  // not an Elasticsearch route: the default index
  w.append(e, body);
  std::vector<std::string> indexes;
  std::size_t at = 0;
  while (at < body.size()) {
    const auto end = body.find('\n', at);
    const auto j = nlohmann::json::parse(body.substr(at, end - at));
    if (j.contains("create")) indexes.push_back(j["create"]["_index"]);
    at = end + 1;
  }
  EXPECT_EQ(indexes, (std::vector<std::string>{"audit-2026", "web-2026.11", "logs-2026.11.21"}));
}

TEST(ElasticsearchBody, WriterRefusesAnInvalidPattern) {
  EXPECT_THROW(BulkBodyWriter(config("Bad-%Y")), std::invalid_argument);
}

}  // namespace
}  // namespace sluice::sinks
