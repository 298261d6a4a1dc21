// Record decoders of ingestion jobs: exact fields, types and rejections of json, json-lines, csv,
// avro (payloads written by Apache Avro for Python) and protobuf (payloads and descriptor sets made by
// protoc), and the reading of `decoder:` specs.
#include <gtest/gtest.h>
#include <httplib.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "decoders/records/record_decoder.hpp"
#include "fixtures/process.hpp"

namespace {

using namespace sluice::decoders::records;
using sluice::transforms::FieldType;
using sluice::transforms::LogEvent;

const std::string kJobs = std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/jobs";

char type_letter(FieldType t) {
  switch (t) {
    case FieldType::string: return 's';
    case FieldType::number: return 'n';
    case FieldType::boolean: return 'b';
    case FieldType::null: return 'z';
    case FieldType::json: return 'j';
  }
  return '?';
}

// Every record as "name:type=value" lines; every rejection with its reason and bytes.
struct Collect : RecordSink {
  std::vector<std::string> records;
  std::vector<std::string> reasons;
  std::vector<std::string> rejected;
  void record(LogEvent& event) override {
    std::string text;
    for (std::size_t i = 0; i < event.field_count(); ++i) {
      const auto& f = event.field(i);
      text += f.name + ":" + type_letter(f.type) + "=" + f.value + "\n";
    }
    records.push_back(text);
  }
  void reject(std::string_view reason, std::span<const std::byte> bytes) override {
    reasons.emplace_back(reason);
    rejected.emplace_back(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
};

std::span<const std::byte> bytes(std::string_view s) { return {reinterpret_cast<const std::byte*>(s.data()), s.size()}; }

Collect decode(RecordDecoder& d, std::string_view payload) {
  LogEvent event;
  Collect sink;
  d.decode(bytes(payload), event, sink);
  return sink;
}

DecoderSpec spec_of(const std::string& yaml) {
  auto root = sluice::config::ConfigReader::root(YAML::Load(yaml));
  auto decoder = root.child("decoder");
  DecoderSpec spec = read_decoder_spec(decoder);
  root.check();
  return spec;
}

std::unique_ptr<RecordDecoder> decoder_of(const std::string& yaml) {
  return make_record_decoder_factory(spec_of(yaml))->make();
}

// The errors read_decoder_spec reports for jobs[0].decoder.
std::vector<std::string> spec_errors(const std::string& decoder_yaml) {
  auto root = sluice::config::ConfigReader::root(YAML::Load("jobs:\n  - decoder: " + decoder_yaml));
  auto jobs = root.list("jobs");
  auto decoder = jobs.at(0).child("decoder");
  read_decoder_spec(decoder);
  try {
    root.check();
  } catch (const sluice::config::ConfigError& e) {
    return e.errors();
  }
  return {};
}

// ---- json ----

TEST(RecordDecodersJson, FlattensNestedObjectsWithTypes) {
  auto d = decoder_of("decoder: {kind: json}");
  const auto out = decode(*d, R"({"id":7,"user":{"name":"ann","geo":{"lat":1.5,"ok":true}},"tags":["a",2,{"k":null}],)"
                              R"("none":null,"empty":{},"big":18446744073709551615,"neg":-3,"s":"x\"y\n"})");
  ASSERT_EQ(out.records.size(), 1u);
  EXPECT_TRUE(out.reasons.empty());
  EXPECT_EQ(out.records[0],
            "id:n=7\nuser.name:s=ann\nuser.geo.lat:n=1.5\nuser.geo.ok:b=true\ntags:j=[\"a\",2,{\"k\":null}]\n"
            "none:z=\nempty:j={}\nbig:n=18446744073709551615\nneg:n=-3\ns:s=x\"y\n\n");
}

TEST(RecordDecodersJson, LargeDoublesKeepAnExponentSoJsonReadersTakeThemAsDoubles) {
  auto d = decoder_of("decoder: {kind: json}");
  const auto out = decode(*d, R"({"a":149902296004840914944.0,"b":1e20,"c":123456789012345.0,"d":[2e30]})");
  ASSERT_EQ(out.records.size(), 1u);
  EXPECT_EQ(out.records[0], "a:n=1.499022960048409e+20\nb:n=1e+20\nc:n=123456789012345\nd:j=[2e+30]\n");
}

TEST(RecordDecodersJson, TopLevelArrayIsOneRecordPerObject) {
  auto d = decoder_of("decoder: {kind: json}");
  const auto out = decode(*d, R"([{"a":1},{"a":2,"b":{"c":"d"}},3])");
  ASSERT_EQ(out.records.size(), 2u);
  EXPECT_EQ(out.records[0], "a:n=1\n");
  EXPECT_EQ(out.records[1], "a:n=2\nb.c:s=d\n");
  ASSERT_EQ(out.reasons.size(), 1u);
  EXPECT_EQ(out.reasons[0], "json: element 2 of the top-level array is a number, expected an object");
}

TEST(RecordDecodersJson, DuplicateNamesKeepTheLastValue) {
  auto d = decoder_of("decoder: {kind: json}");
  const auto out = decode(*d, R"({"a.b":1,"a":{"b":"two"},"a.b":3})");
  ASSERT_EQ(out.records.size(), 1u);
  EXPECT_EQ(out.records[0], "a.b:n=3\n");
}

TEST(RecordDecodersJson, RejectsWithReasons) {
  auto d = decoder_of("decoder: {kind: json, max_fields: 3, max_depth: 3}");
  EXPECT_EQ(decode(*d, R"({"a":1,"b":2,"c":3})").records.size(), 1u);
  const auto wide = decode(*d, R"({"a":1,"b":2,"c":3,"d":4})");
  EXPECT_TRUE(wide.records.empty());
  EXPECT_EQ(wide.reasons, std::vector<std::string>{"json: more than 3 fields in one record (max_fields)"});
  EXPECT_EQ(decode(*d, R"({"a":{"b":{"c":1}}})").records.size(), 1u);
  EXPECT_EQ(decode(*d, R"({"a":{"b":{"c":{"d":1}}}})").reasons,
            std::vector<std::string>{"json: nested deeper than 3 levels (max_depth)"});
  EXPECT_EQ(decode(*d, "\"text\"").reasons,
            std::vector<std::string>{"json: expected an object or an array of objects, got a string"});
  EXPECT_EQ(decode(*d, "").reasons, std::vector<std::string>{"json: empty input"});
  const auto bad = decode(*d, R"({"a":)");
  ASSERT_EQ(bad.reasons.size(), 1u);
  EXPECT_EQ(bad.reasons[0].rfind("json: ", 0), 0u);
  EXPECT_EQ(bad.rejected[0], R"({"a":)");
  EXPECT_EQ(decode(*d, "{\"a\":\"\xff\"}").reasons, std::vector<std::string>{"json: invalid UTF-8"});
}

TEST(RecordDecodersJson, ManyFieldsStayLinearAndDeduplicated) {
  auto d = decoder_of("decoder: {kind: json, max_fields: 2000}");
  std::string text = "{";
  for (int i = 0; i < 1500; ++i) text += "\"f" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  text += "\"f10\":\"again\"}";
  LogEvent event;
  Collect sink;
  struct Check : RecordSink {
    std::size_t fields = 0;
    std::string f10;
    void record(LogEvent& e) override {
      fields = e.field_count();
      f10 = e.find("f10")->value;
    }
    void reject(std::string_view, std::span<const std::byte>) override { ADD_FAILURE(); }
  } check;
  d->decode(bytes(text), event, check);
  EXPECT_EQ(check.fields, 1500u);
  EXPECT_EQ(check.f10, "again");
}

TEST(RecordDecodersJson, KeepsTheIdentityOfTheEventAndClearsOldFields) {
  auto d = decoder_of("decoder: {kind: json}");
  LogEvent event;
  event.source = "orders";
  event.offset = 42;
  event.set("stale", "x");
  Collect sink;
  d->decode(bytes(R"({"a":1})"), event, sink);
  EXPECT_EQ(event.source, "orders");
  EXPECT_EQ(event.offset, 42u);
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0], "a:n=1\n");
}

TEST(RecordDecodersJsonLines, OneBadLineIsRejectedAlone) {
  auto d = decoder_of("decoder: {kind: json-lines}");
  const auto out = decode(*d, "{\"a\":1}\n\n  \n{bad json\r\n{\"a\":3,\"b\":[1]}\r\n[1]\n{\"a\":4}");
  ASSERT_EQ(out.records.size(), 3u);
  EXPECT_EQ(out.records[0], "a:n=1\n");
  EXPECT_EQ(out.records[1], "a:n=3\nb:j=[1]\n");
  EXPECT_EQ(out.records[2], "a:n=4\n");
  ASSERT_EQ(out.reasons.size(), 2u);
  EXPECT_EQ(out.rejected[0], "{bad json");
  EXPECT_EQ(out.reasons[0].rfind("json: ", 0), 0u);
  EXPECT_EQ(out.rejected[1], "[1]");
  EXPECT_EQ(out.reasons[1], "json: element 0 of the top-level array is a number, expected an object");
}

// ---- csv ----

TEST(RecordDecodersCsv, QuotesDoubledQuotesAndCrlf) {
  auto d = decoder_of("decoder: {kind: csv, header: true}");
  const auto out = decode(*d,
                          "name,note,n\r\n"
                          "ann,\"a, b\",1\r\n"
                          "\"bo\"\"b\",\"two\r\nlines\",\r\n"
                          "\"\",plain,3\n"
                          "\n"
                          "short,row\r\n"
                          "x,\"open\"junk,4\n"
                          "last,\"q\",5");
  ASSERT_EQ(out.records.size(), 4u);
  EXPECT_EQ(out.records[0], "name:s=ann\nnote:s=a, b\nn:s=1\n");
  EXPECT_EQ(out.records[1], "name:s=bo\"b\nnote:s=two\r\nlines\nn:s=\n");
  EXPECT_EQ(out.records[2], "name:s=\nnote:s=plain\nn:s=3\n");
  EXPECT_EQ(out.records[3], "name:s=last\nnote:s=q\nn:s=5\n");
  ASSERT_EQ(out.reasons.size(), 2u);
  EXPECT_EQ(out.reasons[0], "csv: line 7 has 2 fields, expected 3");
  EXPECT_EQ(out.rejected[0], "short,row");
  EXPECT_EQ(out.reasons[1], "csv: line 8: unexpected character 'j' after a closing quote (field 2)");
  EXPECT_EQ(out.rejected[1], "x,\"open\"junk,4");
}

TEST(RecordDecodersCsv, ColumnsListDelimiterAndUnterminatedQuote) {
  auto d = decoder_of("decoder: {kind: csv, delimiter: ';', columns: [host, bytes]}");
  const auto out = decode(*d, "a;1\nb;\"2;3\"\nc;\"never closed\n");
  ASSERT_EQ(out.records.size(), 2u);
  EXPECT_EQ(out.records[0], "host:s=a\nbytes:s=1\n");
  EXPECT_EQ(out.records[1], "host:s=b\nbytes:s=2;3\n");
  EXPECT_EQ(out.reasons, std::vector<std::string>{"csv: line 3: unterminated quoted field"});
}

TEST(RecordDecodersCsv, HeaderWithDuplicateNamesRejectsTheMessage) {
  auto d = decoder_of("decoder: {kind: csv, header: true}");
  const auto out = decode(*d, "a,b,a\n1,2,3\n");
  EXPECT_TRUE(out.records.empty());
  EXPECT_EQ(out.reasons, std::vector<std::string>{"csv: the header line names column 'a' twice (columns 1 and 3)"});
  EXPECT_EQ(out.rejected[0], "a,b,a\n1,2,3\n");
}

TEST(RecordDecodersCsv, HeaderSkippedWhenColumnsAreGiven) {
  auto d = decoder_of("decoder: {kind: csv, header: true, columns: [x, y]}");
  const auto out = decode(*d, "A,B\n1,2\n");
  ASSERT_EQ(out.records.size(), 1u);
  EXPECT_EQ(out.records[0], "x:s=1\ny:s=2\n");
}

// ---- spec reading ----

TEST(RecordDecodersSpec, ReadsEveryKey) {
  const auto csv = spec_of("decoder: {kind: csv, delimiter: '\\t', header: true, max_fields: 10, max_depth: 4}");
  EXPECT_EQ(csv.kind, "csv");
  EXPECT_EQ(csv.csv_delimiter, '\t');
  EXPECT_TRUE(csv.csv_header);
  EXPECT_EQ(csv.max_fields, 10u);
  EXPECT_EQ(csv.max_depth, 4u);
  const auto avro = spec_of("decoder: {kind: avro, confluent_wire_format: true, schemas: {1: a.avsc, 22: b.avsc}}");
  EXPECT_TRUE(avro.confluent_wire_format);
  EXPECT_EQ(avro.avro_schema_files_by_id, (std::map<int, std::string>{{1, "a.avsc"}, {22, "b.avsc"}}));
  const auto pb = spec_of("decoder: {kind: protobuf, descriptor_set: x.pb, message: pkg.M}");
  EXPECT_EQ(pb.descriptor_set_file, "x.pb");
  EXPECT_EQ(pb.message_type, "pkg.M");
}

TEST(RecordDecodersSpec, ReportsProblemsWithKeyPaths) {
  EXPECT_EQ(spec_errors("{kind: protobuf, descriptor_set: x.pb}"),
            std::vector<std::string>{
                "jobs[0].decoder.message: required when kind is protobuf (the fully qualified message name)"});
  EXPECT_EQ(spec_errors("{kind: avro, schema_file: a.avsc, schema_registry_url: 'http://r:8081'}"),
            std::vector<std::string>{"jobs[0].decoder.schema_registry_url: only used with confluent_wire_format: true "
                                     "(plain datums carry no schema id)"});
  EXPECT_EQ(spec_errors("{kind: avro, confluent_wire_format: true, schema_registry_url: 'r:8081'}"),
            std::vector<std::string>{"jobs[0].decoder.schema_registry_url: expected an http:// or https:// URL, got 'r:8081'"});
  EXPECT_TRUE(spec_errors("{kind: avro, confluent_wire_format: true, schema_registry_url: 'http://r:8081'}").empty());
  EXPECT_EQ(spec_errors("{kind: csv}"),
            std::vector<std::string>{"jobs[0].decoder.columns: required when kind is csv and header is false (the "
                                     "names of the fields by position)"});
  EXPECT_EQ(spec_errors("{kind: json, delimiter: ';'}"),
            std::vector<std::string>{"jobs[0].decoder.delimiter: only used when kind is csv (kind is json)"});
  EXPECT_EQ(spec_errors("{kind: avro, confluent_wire_format: true, schemas: {x: a.avsc}}").at(0),
            "jobs[0].decoder.schemas.x: schema ids are non-negative integers (the Confluent schema id)");
  const auto unknown = spec_errors("{kind: json, colour: red}");
  ASSERT_EQ(unknown.size(), 1u);
  EXPECT_EQ(unknown[0].rfind("jobs[0].decoder.colour: unknown key", 0), 0u);
  EXPECT_EQ(spec_errors("{kind: xml}").at(0),
            "jobs[0].decoder.kind: expected one of json, json-lines, csv, avro, protobuf, got 'xml'");
}

TEST(RecordDecodersSpec, FactoryNamesTheFileAndTheProblem) {
  DecoderSpec avro;
  avro.kind = "avro";
  avro.avro_schema_file = "/nonexistent/x.avsc";
  try {
    make_record_decoder_factory(avro);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "decoder: avro schema file /nonexistent/x.avsc: cannot open: No such file or directory");
  }
  sluice::testing::TempDir dir;
  sluice::testing::write_file(dir.path() + "/bad.avsc", "{\"type\": \"record\"}");
  avro.avro_schema_file = dir.path() + "/bad.avsc";
  try {
    make_record_decoder_factory(avro);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("decoder: avro schema file " + dir.path() + "/bad.avsc: not a valid Avro schema", 0), 0u);
  }
  sluice::testing::write_file(dir.path() + "/junk.pb", "\x0a\xff\x01");
  DecoderSpec pb;
  pb.kind = "protobuf";
  pb.descriptor_set_file = dir.path() + "/junk.pb";
  pb.message_type = "a.B";
  try {
    make_record_decoder_factory(pb);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "decoder: descriptor set " + dir.path() +
                                         "/junk.pb: malformed FileDescriptorSet (is it the output of protoc --descriptor_set_out?)");
  }
}

// ---- avro (payloads from Apache Avro for Python) ----

// Runs a shell command line; its stdout.
std::string sh(const std::string& command) {
  const auto r = sluice::testing::run_command({"/bin/sh", "-c", command});
  EXPECT_EQ(r.exit_code, 0) << command << "\n" << r.err;
  return r.out;
}

// Encodes `records_json` with encode_avro.py; the datums, one per record.
std::vector<std::string> avro_encode(const std::string& schema, const std::string& records_json, int confluent_id = -1) {
  sluice::testing::TempDir dir;
  sluice::testing::write_file(dir.path() + "/in.json", records_json);
  std::string command = "/usr/bin/python3 " + kJobs + "/encode_avro.py " + kJobs + "/" + schema + " " + dir.path() +
                        "/in.json " + dir.path() + "/out.bin";
  if (confluent_id >= 0) command += " --confluent " + std::to_string(confluent_id);
  sh(command);
  const std::string all = sluice::testing::read_file(dir.path() + "/out.bin");
  std::vector<std::string> out;
  for (std::size_t p = 0; p + 4 <= all.size();) {
    std::uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n = n << 8 | static_cast<std::uint8_t>(all[p + static_cast<std::size_t>(i)]);
    out.push_back(all.substr(p + 4, n));
    p += 4 + n;
  }
  return out;
}

const char* kUsers = R"([
  {"id": 1, "name": "ann", "email": "a@x.io", "active": true, "age": -30, "score": 2.5, "ratio": 0.5,
   "address": {"city": "Paris", "zip": 75001}, "tags": ["a", "b\"c"], "counts": {"x": 1}, "kind": "MEMBER",
   "raw": "\u0001\u0002\u00ff", "hash": "abcd", "created": 1700000000000},
  {"id": -9000000000, "name": "", "email": null, "active": false, "age": 0, "score": -1e300, "ratio": 0.0,
   "address": {"city": "Oslo", "zip": null}, "tags": [], "counts": {}, "kind": "GUEST",
   "raw": "", "hash": "\u0000\u0000\u0000\u0000", "created": 0}
])";

const char* kUser1 =
    "id:n=1\nname:s=ann\nemail:s=a@x.io\nactive:b=true\nage:n=-30\nscore:n=2.5\nratio:n=0.5\naddress.city:s=Paris\n"
    "address.zip:n=75001\ntags:j=[\"a\",\"b\\\"c\"]\ncounts:j={\"x\":1}\nkind:s=MEMBER\nraw:s=AQL/\nhash:s=YWJjZA==\n"
    "created:n=1700000000000\n";
const char* kUser2 =
    "id:n=-9000000000\nname:s=\nemail:z=\nactive:b=false\nage:n=0\nscore:n=-1e+300\nratio:n=0\naddress.city:s=Oslo\n"
    "address.zip:z=\ntags:j=[]\ncounts:j={}\nkind:s=GUEST\nraw:s=\nhash:s=AAAAAA==\ncreated:n=0\n";

TEST(RecordDecodersAvro, PlainDatumsFromApacheAvro) {
  const auto datums = avro_encode("user.avsc", kUsers);
  ASSERT_EQ(datums.size(), 2u);
  auto d = decoder_of("decoder: {kind: avro, schema_file: " + kJobs + "/user.avsc}");
  const auto one = decode(*d, datums[0]);
  ASSERT_EQ(one.records.size(), 1u) << (one.reasons.empty() ? "" : one.reasons[0]);
  EXPECT_EQ(one.records[0], kUser1);
  const auto two = decode(*d, datums[1]);
  ASSERT_EQ(two.records.size(), 1u) << (two.reasons.empty() ? "" : two.reasons[0]);
  EXPECT_EQ(two.records[0], kUser2);

  const auto cut = decode(*d, std::string_view(datums[0]).substr(0, 20));
  EXPECT_TRUE(cut.records.empty());
  EXPECT_EQ(cut.reasons, std::vector<std::string>{
                             "avro: datum ends too early (truncated, or not written with this schema) at field score"});
  const auto longer = decode(*d, datums[0] + "xy");
  EXPECT_EQ(longer.reasons, std::vector<std::string>{"avro: 2 bytes left after the datum (is " + kJobs +
                                                     "/user.avsc the writer's schema?)"});
}

TEST(RecordDecodersAvro, ConfluentWireFormatWithSchemasById) {
  const auto users = avro_encode("user.avsc", kUsers, 3);
  const auto events = avro_encode("event.avsc", R"([
    {"host": "h", "value": 5, "points": [{"x": 1, "label": null}, {"x": -2, "label": "L"}]},
    {"host": "g", "value": "five", "points": []},
    {"host": "f", "value": null, "points": []}])", 7);
  const auto unknown = avro_encode("event.avsc", R"([{"host": "h", "value": 5, "points": []}])", 9);
  auto d = decoder_of("decoder: {kind: avro, confluent_wire_format: true, schemas: {3: " + kJobs + "/user.avsc, 7: " +
                      kJobs + "/event.avsc}}");
  EXPECT_EQ(decode(*d, users[0]).records, std::vector<std::string>{kUser1});
  EXPECT_EQ(decode(*d, events[0]).records,
            std::vector<std::string>{"host:s=h\nvalue:n=5\npoints:j=[{\"x\":1,\"label\":null},{\"x\":-2,\"label\":\"L\"}]\n"});
  EXPECT_EQ(decode(*d, events[1]).records, std::vector<std::string>{"host:s=g\nvalue:s=five\npoints:j=[]\n"});
  EXPECT_EQ(decode(*d, events[2]).records, std::vector<std::string>{"host:s=f\nvalue:z=\npoints:j=[]\n"});
  EXPECT_EQ(decode(*d, unknown[0]).reasons,
            std::vector<std::string>{"avro: unknown schema id 9 (add its .avsc under decoder.schemas)"});
  EXPECT_EQ(decode(*d, std::string("\x01\x00\x00\x00\x07", 5)).reasons,
            std::vector<std::string>{"avro: not in Confluent wire format (the first byte is not 0)"});
  // host "h", then union branch 5 of a 3-branch union.
  EXPECT_EQ(decode(*d, std::string("\x00\x00\x00\x00\x07\x02h\x0a", 8)).reasons,
            std::vector<std::string>{"avro: union branch 5 out of range (the union has 3) at field value"});
  // host "h", value null, then an array block claiming 2^40 items.
  EXPECT_EQ(decode(*d, std::string("\x00\x00\x00\x00\x07\x02h\x00\x80\x80\x80\x80\x80\x40", 14)).reasons,
            std::vector<std::string>{
                "avro: array or map block of 1099511627776 items, more than the 9-byte datum can hold at field points"});
}

// A schema registry answering GET /registry/schemas/ids/<id> as Confluent's does: the event schema
// for id 7, 404 for the others. (The registry itself, a Java service, cannot run here.)
struct Registry {
  httplib::Server server;
  std::atomic<int> requests{0};
  std::thread thread;
  int port = 0;
  Registry() {
    const std::string event = sluice::testing::read_file(kJobs + "/event.avsc");
    server.Get(R"(/registry/schemas/ids/(\d+))", [this, event](const httplib::Request& req, httplib::Response& res) {
      ++requests;
      if (req.matches[1] == "7") {
        res.set_content(nlohmann::json{{"schema", event}}.dump(), "application/vnd.schemaregistry.v1+json");
      } else {
        res.status = 404;
        res.set_content(R"({"error_code":40403,"message":"Schema not found"})", "application/vnd.schemaregistry.v1+json");
      }
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
    EXPECT_TRUE(sluice::testing::eventually([this] { return server.is_running(); }, std::chrono::seconds(5)));
  }
  ~Registry() {
    server.stop();
    thread.join();
  }
};

TEST(RecordDecodersAvro, SchemaRegistryLookupsAreCached) {
  Registry registry;
  const std::string url = "http://127.0.0.1:" + std::to_string(registry.port) + "/registry";
  const auto users = avro_encode("user.avsc", kUsers, 3);
  const auto events = avro_encode("event.avsc", R"([{"host": "h", "value": 5, "points": []}])", 7);
  const auto unknown = avro_encode("event.avsc", R"([{"host": "h", "value": 5, "points": []}])", 8);
  auto factory = make_record_decoder_factory(spec_of("decoder: {kind: avro, confluent_wire_format: true, schemas: {3: " +
                                                     kJobs + "/user.avsc}, schema_registry_url: '" + url + "'}"));
  auto d = factory->make();
  auto other = factory->make();
  EXPECT_EQ(decode(*d, users[0]).records, std::vector<std::string>{kUser1});  // from the file: no request
  EXPECT_EQ(registry.requests.load(), 0);
  const std::vector<std::string> event{"host:s=h\nvalue:n=5\npoints:j=[]\n"};
  EXPECT_EQ(decode(*d, events[0]).records, event);
  EXPECT_EQ(decode(*d, events[0]).records, event);
  EXPECT_EQ(decode(*other, events[0]).records, event);  // another partition's decoder shares the fetch
  EXPECT_EQ(registry.requests.load(), 1);
  const std::string reason = "avro: schema id 8: the schema registry at " + url +
                             " answered HTTP 404 for /registry/schemas/ids/8";
  EXPECT_EQ(decode(*d, unknown[0]).reasons, std::vector<std::string>{reason});
  EXPECT_EQ(decode(*d, unknown[0]).reasons, std::vector<std::string>{reason});  // not asked again right away
  EXPECT_EQ(registry.requests.load(), 2);
}

// ---- protobuf (descriptor sets and payloads from protoc) ----

struct Protoc {
  sluice::testing::TempDir dir;
  std::string set = dir.path() + "/telemetry.pb";
  Protoc() { sh("protoc --include_imports --descriptor_set_out=" + set + " -I" + kJobs + " " + kJobs + "/telemetry.proto"); }
  std::string encode(const std::string& type, const std::string& text) {
    sluice::testing::write_file(dir.path() + "/in.txtpb", text);
    return sh("protoc --encode=" + type + " -I" + kJobs + " " + kJobs + "/telemetry.proto < " + dir.path() + "/in.txtpb");
  }
  std::unique_ptr<RecordDecoder> decoder(const std::string& message, bool confluent = false) {
    return decoder_of("decoder: {kind: protobuf, descriptor_set: " + set + ", message: " + message +
                      (confluent ? ", confluent_wire_format: true}" : "}"));
  }
};

const char* kReading =
    "name:s=cpu\nvalue:n=0.25\nratio:n=1.5\ndelta:n=-7\ntotal:n=9000000000\ncount:n=42\nbig:n=18446744073709551615\n"
    "zig:n=-3\nzig64:n=-9000000000\nf32:n=4000000000\nf64:n=12345678901234\nsf32:n=-12\nsf64:n=-34\nok:b=true\n"
    "blob:s=AQL/\nlevel:s=LEVEL_ERROR\norigin.host:s=web-1\norigin.port:n=8080\norigin.region.name:s=eu\n"
    "samples:j=[1,-2,300]\nlabels:j=[\"a\",\"b\\\"q\"]\nunpacked:j=[5,6]\ncounters:j={\"rx\":10,\"tx\":-1}\n"
    "hops:j=[{\"host\":\"h1\",\"port\":1},{\"host\":\"h2\"}]\ninner.note:s=n\ninner.level:s=LEVEL_INFO\n";

TEST(RecordDecodersProtobuf, EveryFieldKindFromProtoc) {
  Protoc protoc;
  const std::string payload = protoc.encode("sluice.test.Reading", sluice::testing::read_file(kJobs + "/reading.txtpb"));
  auto d = protoc.decoder("sluice.test.Reading");
  const auto out = decode(*d, payload);
  ASSERT_EQ(out.records.size(), 1u) << (out.reasons.empty() ? "" : out.reasons[0]);
  EXPECT_EQ(out.records[0], kReading);
  // Nested messages may be chosen as the root too.
  auto inner = protoc.decoder("sluice.test.Reading.Inner");
  // proto3: an absent singular scalar is its zero value (an enum's first value), and the record says so.
  EXPECT_EQ(decode(*inner, protoc.encode("sluice.test.Reading.Inner", "note: \"x\"")).records,
            std::vector<std::string>{"note:s=x\nlevel:s=LEVEL_UNSPECIFIED\n"});
}

TEST(RecordDecodersProtobuf, ConfluentFramingSelectsTheMessageByIndexes) {
  Protoc protoc;
  const std::string reading = protoc.encode("sluice.test.Reading", sluice::testing::read_file(kJobs + "/reading.txtpb"));
  const std::string other = protoc.encode("sluice.test.Other", "text: \"hi\"");
  const std::string inner = protoc.encode("sluice.test.Reading.Inner", "note: \"deep\" level: LEVEL_ERROR");
  auto d = protoc.decoder("sluice.test.Reading", true);
  const std::string header("\x00\x00\x00\x00\x05", 5);
  EXPECT_EQ(decode(*d, header + std::string(1, '\0') + reading).records, std::vector<std::string>{kReading});
  EXPECT_EQ(decode(*d, header + "\x02\x02" + other).records, std::vector<std::string>{"text:s=hi\n"});
  // [0, 1]: the second nested type of Reading (the first is the generated CountersEntry of the map).
  EXPECT_EQ(decode(*d, header + std::string("\x04\x00\x02", 3) + inner).records,
            std::vector<std::string>{"note:s=deep\nlevel:s=LEVEL_ERROR\n"});
  EXPECT_EQ(decode(*d, header + "\x02\x08" + other).reasons,
            std::vector<std::string>{
                "protobuf: message index 4 at position 0 names no message of the descriptor set's file at the top level"});
}

TEST(RecordDecodersProtobuf, RejectsWithReasons) {
  Protoc protoc;
  auto d = protoc.decoder("sluice.test.Reading");
  // level = 9: newer than the descriptor, kept as its number.
  // The other scalars are absent, hence their proto3 zero values.
  EXPECT_EQ(decode(*d, std::string("\x80\x01\x09", 3)).records,
            std::vector<std::string>{"level:n=9\nname:s=\nvalue:n=0\nratio:n=0\ndelta:n=0\ntotal:n=0\ncount:n=0\nbig:n=0\n"
                                     "zig:n=0\nzig64:n=0\nf32:n=0\nf64:n=0\nsf32:n=0\nsf64:n=0\nok:b=false\nblob:s=\n"});
  EXPECT_EQ(decode(*d, std::string("\x08\x01", 2)).reasons,
            std::vector<std::string>{
                "protobuf: wire type varint where sluice.test.Reading expects length-delimited at field name"});
  EXPECT_EQ(decode(*d, std::string("\x0a\x05" "a", 3)).reasons,
            std::vector<std::string>{"protobuf: malformed or truncated sluice.test.Reading (bad wire data) at the top level"});
  EXPECT_EQ(decode(*d, std::string("\x0a\x01\xff", 3)).reasons,
            std::vector<std::string>{"protobuf: string is not valid UTF-8 at field name"});
  // origin.region nested inside itself is not possible; depth is exercised with a small max_depth.
  auto shallow = decoder_of("decoder: {kind: protobuf, descriptor_set: " + protoc.set +
                            ", message: sluice.test.Reading, max_depth: 1}");
  const std::string payload = protoc.encode("sluice.test.Reading", "origin { region { name: \"eu\" } }");
  EXPECT_EQ(decode(*shallow, payload).reasons,
            std::vector<std::string>{"protobuf: nested deeper than 1 levels (max_depth) at field origin.region"});
}

TEST(RecordDecodersProtobuf, FactoryErrorsNameTheFile) {
  Protoc protoc;
  try {
    protoc.decoder("sluice.test.Nope");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "decoder: descriptor set " + protoc.set +
                                         ": message type sluice.test.Nope not found (it has: common.Origin, "
                                         "common.Origin.Region, sluice.test.Other, sluice.test.Reading, "
                                         "sluice.test.Reading.Inner)");
  }
  const std::string partial = protoc.dir.path() + "/partial.pb";
  sh("protoc --descriptor_set_out=" + partial + " -I" + kJobs + " " + kJobs + "/telemetry.proto");
  try {
    decoder_of("decoder: {kind: protobuf, descriptor_set: " + partial + ", message: sluice.test.Reading}");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "decoder: descriptor set " + partial +
                                         ": field sluice.test.Reading.origin refers to .common.Origin, which is not in "
                                         "the set (make it with protoc --include_imports)");
  }
}

// ---- hostile input ----

// Random and mutated payloads through every kind: decoders must return (records or rejections with a
// reason), never crash; the fuzz targets under tests/fuzz go further.
TEST(RecordDecodersHostile, RandomAndMutatedInputNeverCrashes) {
  Protoc protoc;
  const std::string reading = protoc.encode("sluice.test.Reading", sluice::testing::read_file(kJobs + "/reading.txtpb"));
  const auto users = avro_encode("user.avsc", kUsers);
  std::vector<std::pair<std::unique_ptr<RecordDecoder>, std::string>> cases;
  cases.emplace_back(decoder_of("decoder: {kind: json}"), R"([{"a":{"b":[1,2,{"c":"d"}]}},{"e":null}])");
  cases.emplace_back(decoder_of("decoder: {kind: json-lines}"), "{\"a\":1}\n{\"b\":\"x\"}\n");
  cases.emplace_back(decoder_of("decoder: {kind: csv, header: true}"), "a,b\n\"x\"\"y\",2\r\n3,4\n");
  cases.emplace_back(decoder_of("decoder: {kind: avro, schema_file: " + kJobs + "/user.avsc}"), users[0]);
  cases.emplace_back(protoc.decoder("sluice.test.Reading"), reading);
  std::mt19937 rng(12345);
  std::size_t outcomes = 0;
  for (auto& [decoder, seed] : cases) {
    for (int round = 0; round < 3000; ++round) {
      std::string input = seed;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !input.empty(); ++e) {
        const std::size_t at = rng() % input.size();
        switch (rng() % 3) {
          case 0: input[at] = static_cast<char>(rng()); break;
          case 1: input.erase(at, 1 + rng() % 3); break;
          default: input.insert(at, 1, static_cast<char>(rng())); break;
        }
      }
      const auto out = decode(*decoder, input);
      for (const auto& reason : out.reasons) EXPECT_FALSE(reason.empty());
      outcomes += out.records.size() + out.reasons.size();
    }
  }
  EXPECT_GT(outcomes, 0u);
}

}  // namespace
